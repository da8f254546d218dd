//go:build unix

package cli

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/redistest"
)

// TestScenarioInterrupted: a scenario stopped by a signal did not reach
// its expectations, so it fails (exit 1) and says where it stopped.
func TestScenarioInterrupted(t *testing.T) {
	file := writeToggle(t)
	var stdout, stderr redistest.Output
	exited := make(chan int, 1)
	go func() {
		in := strings.NewReader("start Toggle t\nsleep 1h\nexpect t On\n")
		exited <- Main([]string{"fsmc", "run", file}, in, &stdout, &stderr)
	}()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(stdout.String(), "--start-->"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the scenario did not start:\n%s", stderr.String())
		}
	}
	// The scenario's signal handler takes the interrupt (it is registered
	// before the first line runs).
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-exited:
		if code != ExitFound || !strings.Contains(stderr.String(), "fsmc run: stopped by a signal at line 2: the scenario did not finish") {
			t.Fatalf("exit %d:\n%s", code, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the scenario did not stop on SIGINT")
	}
}
