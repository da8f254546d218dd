//go:build linux

package cli

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/asuser"
)

// TestReadOnlyNotReplaced checks that fmt -w refuses a file its user may
// not write, rather than replacing it through the directory. root may
// write any file, so as root the test runs itself again as nobody.
func TestReadOnlyNotReplaced(t *testing.T) {
	dir := os.Getenv("FSMC_TEST_READONLY_DIR")
	if dir == "" {
		dir = readOnlySetup(t)
		if os.Geteuid() == 0 {
			cmd := asuser.Command(t, dir, asuser.Nobody, "-test.run=^TestReadOnlyNotReplaced$", "-test.v")
			cmd.Env = append(os.Environ(), "FSMC_TEST_READONLY_DIR="+dir)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--- PASS: TestReadOnlyNotReplaced") {
				t.Fatalf("as nobody: %v\n%s", err, out)
			}
			return
		}
	}
	path := filepath.Join(dir, "ro.fsm")
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stdout, stderr strings.Builder
	code := Main([]string{"fsmc", "fmt", "-w", path}, strings.NewReader(""), &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "permission denied") {
		t.Fatalf("fmt -w of a read-only file: exit %d, stderr %q", code, stderr.String())
	}
	if after, _ := os.ReadFile(path); string(after) != string(before) {
		t.Fatalf("the read-only file was replaced:\n%s", after)
	}
}

// readOnlySetup makes a directory anyone may write, holding ro.fsm (not
// canonical, so fmt -w would rewrite it) that nobody may write.
func readOnlySetup(t *testing.T) string {
	dir := asuser.Dir(t, 0o777)
	src := "machine M {\ninitial state A {}\n}\n"
	if err := os.WriteFile(filepath.Join(dir, "ro.fsm"), []byte(src), 0o444); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestSignalRemovesTemporaryFile checks that a signal during a write
// removes the temporary file before the process ends by it.
func TestSignalRemovesTemporaryFile(t *testing.T) {
	tmp := filepath.Join(t.TempDir(), ".out.json.1.tmp")
	if err := os.WriteFile(tmp, []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	died := make(chan os.Signal, 1)
	saved := dieBy
	dieBy = func(sig os.Signal) { died <- sig }
	defer func() { dieBy = saved }()
	stop := removeOnSignal(tmp)
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case sig := <-died:
		if sig != syscall.SIGTERM {
			t.Fatalf("ended by %v, want SIGTERM", sig)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the signal was not handled")
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("the temporary file is still there: %v", err)
	}
}
