//go:build linux

package graphvizcache_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
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

// TestDamagedCache: a compiled module in the cache that is cut short,
// or whose code no longer matches its checksum, no longer stops every
// command (go-graphviz panics on it): it is dropped and compiled again.
func TestDamagedCache(t *testing.T) {
	tmp := t.TempDir()
	start := func(t *testing.T) {
		t.Helper()
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "FSMC_GRAPHVIZ_CHILD=1", "TMPDIR="+tmp)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("start: %v\n%.600s", err, out)
		}
	}
	start(t)
	files, _ := filepath.Glob(filepath.Join(tmp, "go-graphviz", "wazero-*", "*"))
	if len(files) != 1 {
		t.Fatalf("the cache holds %v, want one compiled module", files)
	}
	module := files[0]
	whole, err := os.ReadFile(module)
	if err != nil {
		t.Fatal(err)
	}
	for name, damaged := range map[string][]byte{
		"cut short":    whole[:len(whole)/2],
		"header only":  whole[:20],
		"empty":        nil,
		"code altered": append(append(append([]byte{}, whole[:len(whole)/2]...), ^whole[len(whole)/2]), whole[len(whole)/2+1:]...),
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(module, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			start(t)
			again, err := os.ReadFile(module)
			if err != nil || !bytes.Equal(again, whole) {
				t.Fatalf("the module was not compiled again (%d bytes, %v)", len(again), err)
			}
		})
	}
	// The next start finds it intact, and notes it so, by size and
	// time, so that later starts need not read it through again.
	start(t)
	record, err := os.ReadFile(filepath.Join(filepath.Dir(module), ".fsmc-checked"))
	if want := fmt.Sprintf("%s %d ", filepath.Base(module), len(whole)); err != nil || !strings.HasPrefix(string(record), want) {
		t.Fatalf("the list of intact modules reads %q (%v), want a line starting %q", record, err, want)
	}
}
