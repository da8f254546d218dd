package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
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
		said  string // who says that the output cannot be written
	}{
		{"fmt", []string{"fmt", "../examples/order.fsm"}, "", 0, "fsmc fmt"},
		{"fmt from stdin", []string{"fmt", "-"}, "machine M {\ninitial state A\n}\n", 0, "fsmc fmt"},
		{"version", []string{"--version"}, "", 0, "fsmc"},
		{"compile", []string{"compile", "../examples/order.fsm"}, "", 100, "fsmc compile"},
		{"visualize, by its alias", []string{"viz", "../examples/order.fsm"}, "", 100, "fsmc visualize"},
		{"help", []string{"check", "--help"}, "", 10, "fsmc check"},
		{"run, partly written", []string{"run", "--virtual-time", "../examples/order.fsm"}, string(scenario), 100, "fsmc run"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr strings.Builder
			code := Main(append([]string{"fsmc"}, tc.args...), strings.NewReader(tc.stdin), &fullWriter{room: tc.room}, &stderr)
			if code != ExitUsage || !strings.Contains(stderr.String(), tc.said+": cannot write the output: no space left on device") {
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

// intoClosedPipe runs fsmc as a process with args, stdin as its input,
// writing to a pipe whose reader has gone, and returns how it ended and
// what it said on stderr.
func intoClosedPipe(t *testing.T, stdin string, args ...string) (*exec.ExitError, string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the reader has gone
	defer w.Close()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "FSMC_TEST_PROCESS=1")
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout = w
	var stderr strings.Builder
	cmd.Stderr = &stderr
	var exit *exec.ExitError
	if err := cmd.Run(); !errors.As(err, &exit) {
		t.Fatalf("fsmc %s into a closed pipe: %v, want it to fail; stderr:\n%s", args[0], err, stderr.String())
	}
	return exit, stderr.String()
}

// TestBrokenPipe: fsmc as a process, writing to a pipe whose reader has
// gone (fsmc run | head -1), says that its output cannot be written and
// exits 2, where Go's runtime would end it by SIGPIPE.
func TestBrokenPipe(t *testing.T) {
	var starts strings.Builder
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&starts, "start Order o%d\n", i)
	}
	exit, stderr := intoClosedPipe(t, starts.String(), "run", "--virtual-time", "../examples/order.fsm")
	if exit.ExitCode() != ExitUsage {
		t.Fatalf("fsmc run into a closed pipe: %v, want exit status %d; stderr:\n%s", exit, ExitUsage, stderr)
	}
	if !strings.Contains(stderr, "fsmc run: cannot write the output:") || !strings.Contains(stderr, "broken pipe") {
		t.Fatalf("stderr does not say the output was lost:\n%s", stderr)
	}
}

// TestReaderGone: any other command, writing to a pipe whose reader has
// gone (fsmc ls | head -1, fsmc watch | head), ends quietly by SIGPIPE,
// as other Unix tools do: no message, and a shell sees status 141.
func TestReaderGone(t *testing.T) {
	exit, stderr := intoClosedPipe(t, "", "compile", "--emit", "go", "../examples/order.fsm")
	if status, ok := exit.Sys().(syscall.WaitStatus); !ok || !status.Signaled() || status.Signal() != syscall.SIGPIPE {
		t.Fatalf("fsmc compile into a closed pipe: %v, want an end by SIGPIPE; stderr:\n%s", exit, stderr)
	}
	if stderr != "" {
		t.Fatalf("fsmc compile into a closed pipe said:\n%s", stderr)
	}
}

// TestOutputToDescriptors: -o /dev/stdout, /dev/fd/N and the like write
// to the descriptor fsmc was given, as it is: a file the shell opened to
// append to keeps what it held, and a pipe is written, not replaced.
func TestOutputToDescriptors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ path, fd string }{
		{"/dev/stdout", "1"}, {"/dev/fd/1", "1"}, {"/proc/self/fd/1", "1"}, {"/dev/stderr", "2"}, {"/dev/fd/3", "3"},
	} {
		if _, err := os.Stat(tc.path); err != nil {
			continue // no such name on this system
		}
		name := filepath.Join(dir, "log")
		if err := os.WriteFile(name, []byte("EXISTING\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		log, err := os.OpenFile(name, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "compile", "../examples/order.fsm", "-o", tc.path)
		cmd.Env = append(os.Environ(), "FSMC_TEST_PROCESS=1")
		var stderr strings.Builder
		cmd.Stdout, cmd.Stderr = io.Discard, &stderr
		switch tc.fd {
		case "1":
			cmd.Stdout = log
		case "2":
			cmd.Stderr = log
		case "3":
			cmd.ExtraFiles = []*os.File{log}
		}
		err = cmd.Run()
		log.Close()
		got, _ := os.ReadFile(name)
		if err != nil || !strings.HasPrefix(string(got), "EXISTING\n{") || !strings.Contains(string(got), `"format_version"`) {
			t.Errorf("compile -o %s into a file opened to append: %v\n%s\nthe file holds:\n%.60s", tc.path, err, stderr.String(), got)
		}
	}
	// A pipe is written through.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "compile", "../examples/order.fsm", "-o", "/dev/fd/3")
	cmd.Env = append(os.Environ(), "FSMC_TEST_PROCESS=1")
	cmd.ExtraFiles = []*os.File{w}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, _ := io.ReadAll(r)
	if err := cmd.Wait(); err != nil || !strings.Contains(string(got), `"format_version"`) {
		t.Errorf("compile -o /dev/fd/3 into a pipe: %v\n%s", err, stderr.String())
	}
}
