//go:build unix

package cli

import (
	"context"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
)

// TestWatchWaitsOutAnOutage: watch says when Redis goes away, waits, and
// goes on printing the changelog when Redis is back, as workers do.
func TestWatchWaitsOutAnOutage(t *testing.T) {
	srv := redistest.Own(t)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// start registers Toggle (again, on a Redis that lost it) and starts
	// instance id, trying until Redis answers.
	start := func(id string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			store, err := redisstore.Open(ctx, srv.URL(), redisstore.Options{})
			if err == nil {
				e := runtime.New(store, runtime.Options{})
				err = e.Register(ctx, irtest.Compile(t, "toggle.fsm", []byte(irtest.Toggle)).Machines[0], nil)
				if err == nil {
					err = e.Start(ctx, "Toggle", id, nil, runtime.StartOptions{})
				}
				store.Close()
			}
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("start %s: %v", id, err)
			}
		}
	}
	start("a")
	b := runInBackground("", "watch", "--redis", srv.URL(), "--since", "start")
	b.waitFor(t, &b.stdout, "a Toggle * --start--> Off")
	srv.Kill()
	b.waitFor(t, &b.stderr, "fsmc watch: Redis: ")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	start("b")
	b.waitFor(t, &b.stdout, "b Toggle * --start--> Off")
	b.waitFor(t, &b.stderr, "fsmc watch: Redis answers again")
	if code := b.interrupt(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, b.stderr.String())
	}
}
