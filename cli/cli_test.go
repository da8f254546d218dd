package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain makes the test binary serve as the fsmc command inside the
// scripts, so they run the real Main end to end.
func TestMain(m *testing.M) {
	os.Exit(testscript.RunMain(m, map[string]func() int{
		"fsmc": func() int { return Main(os.Args, os.Stdin, os.Stdout, os.Stderr) },
		// status N ARGS... runs fsmc ARGS and succeeds only if it exits
		// with status N, so scripts can assert the exact status.
		"status": func() int {
			want, err := strconv.Atoi(os.Args[1])
			if err != nil {
				fmt.Fprintln(os.Stderr, "usage: status N fsmc-args...")
				return 100
			}
			got := Main(append([]string{"fsmc"}, os.Args[2:]...), os.Stdin, os.Stdout, os.Stderr)
			if got != want {
				fmt.Fprintf(os.Stderr, "exit status %d, want %d\n", got, want)
				return 101
			}
			return 0
		},
	}))
}

// TestScripts runs testdata/script/<command>_<case>.txtar.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			// go-graphviz caches its compiled WebAssembly under TMPDIR; a
			// fresh TMPDIR per script would compile it again every time.
			env.Setenv("TMPDIR", os.TempDir())
			return nil
		},
	})
}

// TestExampleScenarios runs every examples/*.scenario against its
// machine in virtual time: every expectation must hold.
func TestExampleScenarios(t *testing.T) {
	scenarios, _ := filepath.Glob("../examples/*.scenario")
	if len(scenarios) < 5 {
		t.Fatalf("found %d scenarios", len(scenarios))
	}
	for _, path := range scenarios {
		t.Run(filepath.Base(path), func(t *testing.T) {
			in, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			var stdout, stderr strings.Builder
			machine := strings.TrimSuffix(path, ".scenario") + ".fsm"
			if code := Main([]string{"fsmc", "run", "--virtual-time", machine}, in, &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), "--start-->") {
				t.Fatalf("no changelog:\n%s", stdout.String())
			}
		})
	}
}
