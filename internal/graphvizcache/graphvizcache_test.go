//go:build linux

package graphvizcache_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/fsmc/fsmc/compiler/dot" // go-graphviz, started as in fsmc
	"github.com/fsmc/fsmc/internal/asuser"
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
	root := asuser.Dir(t, 0o755)
	shared := filepath.Join(root, "tmp")
	home := filepath.Join(root, "home")
	for _, dir := range []string{shared, home} {
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(shared, 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, asuser.Nobody, asuser.Nobody); err != nil {
		t.Fatal(err)
	}

	run := func(uid int) string {
		t.Helper()
		cmd := asuser.Command(t, root, uid)
		cmd.Env = []string{"FSMC_GRAPHVIZ_CHILD=1", "TMPDIR=" + shared, "HOME=" + home}
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
	if out := run(asuser.Nobody); out != "TMPDIR="+shared {
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
