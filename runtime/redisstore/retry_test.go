package redisstore_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/redis/go-redis/v9"
)

// faultProxy forwards TCP connections to upstream, with a fault for
// the first client write that contains marker: it is held for hold
// before it is passed on (the command runs late, after the client has
// given up waiting), and with cut its reply is never delivered (the
// connection breaks as it comes back: the command ran, and the client
// never hears).
func faultProxy(t *testing.T, upstream, marker string, hold time.Duration, cut bool) string {
	t.Helper()
	var once sync.Once
	return redistest.Proxy(t, upstream, func(client, server net.Conn) {
		var cutting atomic.Bool // this connection's next reply is lost
		go func() {
			defer client.Close()
			defer server.Close()
			buf := make([]byte, 64<<10)
			for {
				n, err := server.Read(buf)
				if n > 0 && cutting.Load() {
					return
				}
				if n > 0 {
					client.Write(buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				if bytes.Contains(buf[:n], []byte(marker)) {
					once.Do(func() {
						time.Sleep(hold)
						cutting.Store(cut)
					})
				}
				server.Write(buf[:n])
			}
			if err != nil {
				time.Sleep(100 * time.Millisecond) // let Redis run what it was sent
				server.Close()
				return
			}
		}
	})
}

// TestLateReplyIsNotRetried: when the reply to an enqueue comes too late,
// Send reports the error, and the event is queued once: the client does
// not send the script again (it had run), so one send never delivers its
// event twice.
func TestLateReplyIsNotRetried(t *testing.T) {
	ctx := context.Background()
	direct := redisClient(t)
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	e := irtest.StartToggle(t, redisstore.New(direct, redisstore.Options{Prefix: prefix, NoRedlock: true}), "t")
	upstream := strings.TrimSuffix(strings.TrimPrefix(redistest.URL(t), "redis://"), "/0")
	addr := faultProxy(t, upstream, "_enqueue\r\n", 600*time.Millisecond, false) // the FCALL, not the library
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	store, err := redisstore.Open(ctx, "redis://"+addr+"/0?read_timeout=200ms", redisstore.Options{Prefix: prefix, NoRedlock: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if strings.Contains(log.String(), "MaxRetries") {
		t.Fatalf("Open's client retries: %s", log.String())
	}
	// A client made with go-redis's defaults retries: New says so.
	retrying := redis.NewClient(&redis.Options{Addr: upstream})
	defer retrying.Close()
	redisstore.New(retrying, redisstore.Options{Prefix: prefix, Logger: logger})
	if !strings.Contains(log.String(), "set MaxRetries to -1") {
		t.Fatalf("no warning about a client that retries: %q", log.String())
	}
	sender := runtime.New(store, runtime.Options{})
	if err := sender.Register(ctx, irtest.Compile(t, "toggle.fsm", []byte(irtest.Toggle)).Machines[0], nil); err != nil {
		t.Fatal(err)
	}
	if err := sender.Send(ctx, "t", "Flip", nil); err == nil {
		t.Fatal("Send succeeded although its reply came after the read timeout")
	}
	time.Sleep(time.Second) // the held command runs
	if _, err := e.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := e.Get(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != 2 {
		t.Fatalf("instance at version %d after one Flip (history %v); want 2: the event was queued %d times", v.Version, v.History, v.Version-1)
	}
}
