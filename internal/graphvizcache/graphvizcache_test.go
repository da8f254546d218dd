//go:build linux

package graphvizcache_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	_ "github.com/fsmc/fsmc/compiler/dot" // go-graphviz, started as in fsmc
)

// TestMain: run with FSMC_GRAPHVIZ_CHILD=1, the test binary is a program
// that has just started go-graphviz, as every fsmc command does; it
// prints the TMPDIR it then sees.
func TestMain(m *testing.M) {
	if os.Getenv("FSMC_GRAPHVIZ_CHILD") == "1" {
		fmt.Print("TMPDIR=" + os.Getenv("TMPDIR"))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestAnotherUsersCache: a user whose temporary directory already holds
// another user's go-graphviz cache still starts (the compile would
// panic there), caching in a directory of their own, and the commands
// they run see TMPDIR as they set it.
func TestAnotherUsersCache(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root, to run a program as two users")
	}
	// Not t.TempDir: the other user must reach the program, and its
	// parent is private.
	root, err := os.MkdirTemp("", "graphvizcache")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(root) })
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	shared := filepath.Join(root, "tmp")
	home := filepath.Join(root, "home")
	bin := filepath.Join(root, "prog")
	for _, dir := range []string{shared, home} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(shared, 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	copyFile(t, os.Args[0], bin)

	run := func(uid int) string {
		t.Helper()
		cmd := exec.Command(bin)
		cmd.Env = []string{"FSMC_GRAPHVIZ_CHILD=1", "TMPDIR=" + shared, "HOME=" + home}
		if uid != 0 {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("as uid %d: %v\n%s", uid, err, out)
		}
		return string(out)
	}
	// root starts first and leaves the shared cache, private to root.
	if out := run(0); out != "TMPDIR="+shared {
		t.Fatalf("as root: %q", out)
	}
	if out := run(65534); out != "TMPDIR="+shared {
		t.Fatalf("as another user: %q, want TMPDIR=%s as it was given", out, shared)
	}
	entries, err := os.ReadDir(filepath.Join(home, ".cache", "fsmc", "go-graphviz"))
	if err != nil || len(entries) == 0 {
		t.Fatalf("the other user's own cache: %v %v", entries, err)
	}
	if !strings.HasPrefix(entries[0].Name(), "wazero") {
		t.Errorf("the other user's own cache holds %s", entries[0].Name())
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
