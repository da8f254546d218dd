//go:build unix

package cli

import (
	"context"
	"os"
	"strings"
	"syscall"
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
	srv, err := redistest.NewServer()
	if err != nil {
		if os.Getenv("FSMC_REQUIRE_REDIS") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	defer os.RemoveAll(srv.Dir)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Kill()
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
	var stdout, stderr redistest.Output
	exited := make(chan int, 1)
	go func() {
		exited <- Main([]string{"fsmc", "watch", "--redis", srv.URL(), "--since", "start"}, strings.NewReader(""), &stdout, &stderr)
	}()
	waitFor := func(out *redistest.Output, text string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), text); time.Sleep(20 * time.Millisecond) {
			select {
			case code := <-exited:
				t.Fatalf("watch exited (%d) before %q:\n%s", code, text, stderr.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q:\nstdout:\n%s\nstderr:\n%s", text, stdout.String(), stderr.String())
			}
		}
	}
	start("a")
	waitFor(&stdout, "a Toggle * --start--> Off")
	srv.Kill()
	waitFor(&stderr, "fsmc watch: Redis: ")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	start("b")
	waitFor(&stdout, "b Toggle * --start--> Off")
	waitFor(&stderr, "fsmc watch: Redis answers again")
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != 0 {
			t.Fatalf("exit %d:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("watch did not stop on SIGINT")
	}
}
