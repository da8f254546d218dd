package redisstore_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/redis/go-redis/v9"
)

// replyCutter is a TCP proxy in front of Redis that, when armed, lets
// the next claim script through and breaks its connection as the reply
// comes back: Redis has run it, and the client never hears.
type replyCutter struct {
	ln    net.Listener
	armed atomic.Bool
	wg    sync.WaitGroup
}

func newReplyCutter(t *testing.T, upstream string) *replyCutter {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &replyCutter{ln: ln}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial("tcp", upstream)
			if err != nil {
				client.Close()
				continue
			}
			var cut atomic.Bool // this connection's next reply is lost
			p.wg.Add(2)
			go func() { defer p.wg.Done(); p.commands(server, client, &cut) }()
			go func() { defer p.wg.Done(); replies(client, server, &cut) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

// commands copies client's commands to server, marking the connection
// to cut when an armed cutter sees a claim script (FCALL fsmc_..._claim)
// go by.
func (p *replyCutter) commands(server, client net.Conn, cut *atomic.Bool) {
	defer server.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 && bytes.Contains(buf[:n], []byte("_claim\r\n")) && p.armed.CompareAndSwap(true, false) {
			cut.Store(true)
		}
		if n > 0 {
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// replies copies server's replies to client, and closes both instead
// when the connection is marked to cut.
func replies(client, server net.Conn, cut *atomic.Bool) {
	defer client.Close()
	defer server.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 && cut.Load() {
			return
		}
		if n > 0 {
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestLostClaimReplyGivesBack: a claim that ran in Redis but whose reply
// was lost gives back what it leased, with the instance's lock, at once:
// another claim gets the work, not only after the lease (a minute here).
func TestLostClaimReplyGivesBack(t *testing.T) {
	direct := redisClient(t)
	cutter := newReplyCutter(t, direct.(*redis.Client).Options().Addr)
	viaCutter := redis.NewClient(&redis.Options{Addr: cutter.ln.Addr().String(), MaxRetries: -1})
	t.Cleanup(func() { viaCutter.Close() })
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	lossy := redisstore.New(viaCutter, redisstore.Options{Prefix: prefix})
	t.Cleanup(func() { lossy.Close() })
	other := redisstore.New(direct, redisstore.Options{Prefix: prefix})
	t.Cleanup(func() { other.Close() })
	ctx := context.Background()
	m := irtest.Compile(t, "toggle.fsm", []byte(irtest.Toggle)).Machines[0]
	if err := lossy.PutMachine(ctx, m); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	inst, start := irtest.NewInstance(m, "a", 0, now)
	if err := lossy.Create(ctx, inst, []runtime.Work{{Kind: runtime.WorkEvent, Instance: "a", Due: now, Event: 2}}, start); err != nil {
		t.Fatal(err)
	}
	f := runtime.ClaimFilter{Now: now, Lease: time.Minute}
	var l runtime.Lease
	cutter.armed.Store(true)
	if ok, err := lossy.Claim(ctx, f, &l); ok || err == nil || !redisstore.Unreachable(err) {
		t.Fatalf("claim whose reply was cut: %v %v, want a lost connection", ok, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, err := other.Claim(ctx, f, &l)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if l.Work.Instance != "a" {
				t.Fatalf("claimed %+v", l.Work)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("5 s after the claim whose reply was lost, its work is still leased")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
