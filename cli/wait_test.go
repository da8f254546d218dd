//go:build unix

package cli

import (
	"io"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/redistest"
)

// TestWorkerWaitsForRedis: a worker started before its Redis says it is
// waiting, and starts serving when Redis answers, as a worker whose
// Redis goes away carries on when it returns.
func TestWorkerWaitsForRedis(t *testing.T) {
	srv, err := redistest.NewServer()
	if err != nil {
		if os.Getenv("FSMC_REQUIRE_REDIS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer os.RemoveAll(srv.Dir)
	file := writeToggle(t)
	var stderr redistest.Output
	exited := make(chan int, 1)
	go func() {
		exited <- Main([]string{"fsmc", "run", "--redis", srv.URL(), file}, strings.NewReader(""), io.Discard, &stderr)
	}()
	waitForText := func(text string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			select {
			case code := <-exited:
				t.Fatalf("the worker exited (%d) before %q:\n%s", code, text, stderr.String())
			default:
			}
			if strings.Contains(stderr.String(), text) {
				return
			}
		}
		t.Fatalf("no %q in the worker's log:\n%s", text, stderr.String())
	}
	waitForText("waiting for Redis")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
	waitForText("worker started")
	// The worker's signal handler takes the interrupt (it is registered
	// while the worker runs).
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the worker did not stop on SIGINT")
	}
}
