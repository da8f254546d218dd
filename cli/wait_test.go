//go:build unix

package cli

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime/redisstore"
)

// TestWorkerWaitsForRedis: a worker started before its Redis says it is
// waiting, and starts serving when Redis answers, as a worker whose
// Redis goes away carries on when it returns.
func TestWorkerWaitsForRedis(t *testing.T) {
	srv := redistest.Own(t)
	b := runInBackground("", "run", "--redis", srv.URL(), writeToggle(t))
	b.waitFor(t, &b.stderr, "waiting for Redis")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, &b.stderr, "worker started")
	if code := b.interrupt(t); code != 0 {
		t.Fatalf("exit %d:\n%s", code, b.stderr.String())
	}
}

// TestWorkerWithoutStdout: a worker whose changelog cannot be written
// says so once and goes on with its work; a graceful stop still exits 0
// (docs/distributed.md, "Stopping").
func TestWorkerWithoutStdout(t *testing.T) {
	url := redistest.URL(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("nostdout%d", time.Now().UnixNano())
	b := &background{exited: make(chan int, 1)}
	file := writeToggle(t)
	go func() {
		b.exited <- Main([]string{"fsmc", "run", "--redis", url, "--prefix", prefix, file}, strings.NewReader(""), &fullWriter{}, &b.stderr)
	}()
	b.waitFor(t, &b.stderr, "worker started")
	store, err := redisstore.Open(ctx, url, redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	operator := startToggle(t, store, "a")
	for i := 0; i < 2; i++ {
		if err := operator.Send(ctx, "a", "Flip", nil); err != nil {
			t.Fatal(err)
		}
	}
	b.waitFor(t, &b.stderr, "cannot write the changelog to stdout; the worker goes on without it")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if v, err := operator.Get(ctx, "a"); err == nil && v.Version == 3 {
			break // both events handled
		} else if time.Now().After(deadline) {
			t.Fatalf("the worker did not go on: %+v, %v", v, err)
		}
	}
	if code := b.interrupt(t); code != 0 {
		t.Fatalf("exit %d after a graceful stop:\n%s", code, b.stderr.String())
	}
	if n := strings.Count(b.stderr.String(), "cannot write the changelog"); n != 1 {
		t.Errorf("said %d times that the changelog is lost:\n%s", n, b.stderr.String())
	}
}
