package redisstore

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestWakeMessageWithoutRedisIsQuiet: a wake message that cannot go out
// because Redis is out of reach is a debug line, not a warning: the
// commands that need Redis fail too, and say so. So is the last one,
// which Close sends as a short-lived command ends, when Redis went away
// under that command. (Redis refusing the channel is a warning:
// TestWakeChannelRefusedIsLogged.)
func TestWakeMessageWithoutRedisIsQuiet(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	var logged strings.Builder
	logger := slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	quiet := func(s *Store) {
		t.Helper()
		logged.Reset()
		if s.publishWake(false) {
			t.Error("Redis out of reach counts as the messages failing, which the log has not said")
		}
		out := logged.String()
		if strings.Contains(out, "WARN") || !strings.Contains(out, `level=DEBUG msg="a wake message did not go out: Redis is out of reach"`) {
			t.Errorf("want one debug line, logged:\n%s", out)
		}
	}

	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	s := New(c, Options{Prefix: "wake", NoRedlock: true, Logger: logger})
	t.Cleanup(func() { s.Close() })
	quiet(s)

	// A store Open made, closed: its client's failures are ErrClosed.
	opened, err := Open(context.Background(), redistest.URL(t), Options{Prefix: "wake", NoRedlock: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	opened.Close()
	quiet(opened)
}

// TestClientLogLevels: the client's lines about the wake channel's
// connection breaking (it dials again by itself) are debug lines, its
// other lines (a Sentinel naming a new master, say) stay at info.
func TestClientLogLevels(t *testing.T) {
	var logged strings.Builder
	c := clientLog{slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	c.Printf(context.Background(), "redis: discarding bad PubSub connection: %s", "EOF")
	c.Printf(context.Background(), "sentinel: new master=%q addr=%q", "mymaster", "10.0.0.2:6379")
	out := logged.String()
	for _, want := range []string{
		`level=DEBUG msg="redis: discarding bad PubSub connection: EOF" from="redis client"`,
		`level=INFO msg="sentinel: new master=\"mymaster\" addr=\"10.0.0.2:6379\"" from="redis client"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
}
