//go:build unix

package cli

import (
	"testing"

	"github.com/fsmc/fsmc/internal/redistest"
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
