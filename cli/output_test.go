package cli

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime/redisstore"
)

// fullWriter takes room bytes, then fails as a full disk does.
type fullWriter struct{ room int }

func (w *fullWriter) Write(p []byte) (int, error) {
	if len(p) > w.room {
		n := w.room
		w.room = 0
		return n, errors.New("no space left on device")
	}
	w.room -= len(p)
	return len(p), nil
}

// TestLostOutput: output that cannot be written is an error (exit 2,
// saying so), never a success.
func TestLostOutput(t *testing.T) {
	scenario, err := os.ReadFile("../examples/order.scenario")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		room  int
	}{
		{"fmt", []string{"fmt", "../examples/order.fsm"}, "", 0},
		{"fmt from stdin", []string{"fmt", "-"}, "machine M {\ninitial state A\n}\n", 0},
		{"version", []string{"--version"}, "", 0},
		{"help", []string{"check", "--help"}, "", 10},
		{"run, partly written", []string{"run", "--virtual-time", "../examples/order.fsm"}, string(scenario), 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			code := Main(append([]string{"fsmc"}, tc.args...), strings.NewReader(tc.stdin), &fullWriter{room: tc.room}, &stderr)
			if code != ExitUsage || !strings.Contains(stderr.String(), "fsmc: cannot write the output: no space left on device") {
				t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
			}
		})
	}
}

// TestWatchStopsWhenOutputIsLost: watch, which prints for ever, stops
// (exit 2) when its output cannot be written.
func TestWatchStopsWhenOutputIsLost(t *testing.T) {
	redistest.URL(t) // skips, or fails, without a Redis
	url, err := redistest.FreshDatabase()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := redisstore.Open(ctx, url, redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	startToggle(t, store, "t")
	exited := make(chan int, 1)
	var stderr redistest.Output
	go func() {
		exited <- Main([]string{"fsmc", "watch", "--redis", url, "--since", "start"}, strings.NewReader(""), &fullWriter{}, &stderr)
	}()
	select {
	case code := <-exited:
		if code != ExitUsage || !strings.Contains(stderr.String(), "fsmc watch: cannot write the output: no space left on device") {
			t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch went on with its output lost")
	}
}
