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
			asNobody(t, dir, "TestReadOnlyNotReplaced")
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

// TestFmtKeepsTheFile: fmt -w of a file with another hard link writes
// the file itself, so the link sees the new text; as root it leaves the
// owner as it was.
func TestFmtKeepsTheFile(t *testing.T) {
	dir := t.TempDir()
	path, link := filepath.Join(dir, "a.fsm"), filepath.Join(dir, "b.fsm")
	if err := os.WriteFile(path, []byte("machine M {\ninitial state A {}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(path, link); err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0
	if root {
		if err := os.Chown(path, asuser.Nobody, asuser.Nobody); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr strings.Builder
	if code := Main([]string{"fsmc", "fmt", "-w", path}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("fmt -w: exit %d: %s", code, stderr.String())
	}
	got, _ := os.ReadFile(link)
	if !strings.Contains(string(got), "    initial state A {}") {
		t.Errorf("the other link holds:\n%s", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); root && (st.Uid != asuser.Nobody || st.Gid != asuser.Nobody) {
		t.Errorf("owner %d:%d, want %d", st.Uid, st.Gid, asuser.Nobody)
	}
	// A file with one link is replaced whole, and as root keeps its
	// owner too.
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("machine M {\ninitial state A {}\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code := Main([]string{"fsmc", "fmt", "-w", path}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("fmt -w: exit %d: %s", code, stderr.String())
	}
	if fi, err = os.Stat(path); err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); root && (st.Uid != asuser.Nobody || st.Gid != asuser.Nobody) {
		t.Errorf("replaced: owner %d:%d, want %d", st.Uid, st.Gid, asuser.Nobody)
	}
}

// TestFmtInReadOnlyDirectory: fmt -w of a file its user may write, in a
// directory where it may not make a temporary file, writes the file in
// place. root may write anywhere, so as root the test runs itself again
// as nobody.
func TestFmtInReadOnlyDirectory(t *testing.T) {
	dir := os.Getenv("FSMC_TEST_READONLY_DIR")
	if dir == "" {
		dir = asuser.Dir(t, 0o755)
		rw := filepath.Join(dir, "rw.fsm")
		if err := os.WriteFile(rw, []byte("machine M {\ninitial state A {}\n}\n"), 0o666); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(rw, 0o666); err != nil { // past the umask
			t.Fatal(err)
		}
		if os.Geteuid() != 0 {
			if err := os.Chmod(dir, 0o555); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o755) })
		} else {
			asNobody(t, dir, "TestFmtInReadOnlyDirectory")
			return
		}
	}
	path := filepath.Join(dir, "rw.fsm")
	var stdout, stderr strings.Builder
	if code := Main([]string{"fsmc", "fmt", "-w", path}, strings.NewReader(""), &stdout, &stderr); code != 0 {
		t.Fatalf("fmt -w in a read-only directory: exit %d: %s", code, stderr.String())
	}
	if got, _ := os.ReadFile(path); !strings.Contains(string(got), "    initial state A {}") {
		t.Errorf("the file holds:\n%s", got)
	}
}

// asNobody runs test again as the user nobody, with dir for its
// FSMC_TEST_READONLY_DIR (root may write anywhere), and requires it to
// pass.
func asNobody(t *testing.T, dir, test string) {
	t.Helper()
	cmd := asuser.Command(t, dir, asuser.Nobody, "-test.run=^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), "FSMC_TEST_READONLY_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}
