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

// background is fsmc's Main running on a goroutine, as a process would:
// tests read its output as it comes and stop it with SIGINT.
type background struct {
	stdout, stderr redistest.Output
	exited         chan int
}

func runInBackground(stdin string, args ...string) *background {
	return readInBackground(strings.NewReader(stdin), args...)
}

// readInBackground is runInBackground with stdin read from r.
func readInBackground(r io.Reader, args ...string) *background {
	b := &background{exited: make(chan int, 1)}
	go func() {
		b.exited <- Main(append([]string{"fsmc"}, args...), r, &b.stdout, &b.stderr)
	}()
	return b
}

// waitFor waits until out (b.stdout or b.stderr) holds text; it fails if
// the command exits first.
func (b *background) waitFor(t *testing.T, out *redistest.Output, text string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(out.String(), text); time.Sleep(10 * time.Millisecond) {
		select {
		case code := <-b.exited:
			t.Fatalf("exit %d before %q:\nstdout:\n%s\nstderr:\n%s", code, text, b.stdout.String(), b.stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q:\nstdout:\n%s\nstderr:\n%s", text, b.stdout.String(), b.stderr.String())
		}
	}
}

// interrupt sends SIGINT, which the command's signal handler takes (it
// is registered while the command runs), and returns the exit status.
func (b *background) interrupt(t *testing.T) int {
	t.Helper()
	if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-b.exited:
		return code
	case <-time.After(20 * time.Second):
		t.Fatalf("no stop on SIGINT:\n%s", b.stderr.String())
		return 0
	}
}

// TestScenarioInterrupted: a scenario stopped by a signal did not reach
// its expectations, so it fails (exit 1) and says where it stopped.
func TestScenarioInterrupted(t *testing.T) {
	b := runInBackground("start Toggle t\nsleep 1h\nexpect t On\n", "run", writeToggle(t))
	b.waitFor(t, &b.stdout, "--start-->")
	if code := b.interrupt(t); code != ExitFound || !strings.Contains(b.stderr.String(), "fsmc run: stopped by a signal at line 2: the scenario did not finish") {
		t.Fatalf("exit %d:\n%s", code, b.stderr.String())
	}
}

// TestScenarioInterruptedWhileWaiting: a signal that comes while the
// scenario waits for its next line says so, rather than blaming the
// line before (whose work was done).
func TestScenarioInterruptedWhileWaiting(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	b := readInBackground(r, "run", writeToggle(t))
	if _, err := io.WriteString(w, "start Toggle t\ninspect t\n"); err != nil {
		t.Fatal(err)
	}
	b.waitFor(t, &b.stdout, "history") // what inspect prints last
	if code := b.interrupt(t); code != ExitFound || !strings.Contains(b.stderr.String(), "fsmc run: stopped by a signal while waiting for line 3: the scenario did not finish") {
		t.Fatalf("exit %d:\n%s", code, b.stderr.String())
	}
}
