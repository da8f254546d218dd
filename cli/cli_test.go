package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/redistest"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestMain makes the test binary serve as the fsmc command inside the
// scripts, so they run the real Main end to end.
func TestMain(m *testing.M) {
	if os.Getenv("FSMC_TEST_READONLY_DIR") != "" {
		// TestReadOnlyNotReplaced, run again as nobody: no scripts, and
		// no copy of this binary to make.
		os.Exit(m.Run())
	}
	if os.Getenv("FSMC_TEST_PROCESS") == "1" {
		os.Exit(Process()) // TestBrokenPipe's fsmc, with the test binary's name as args[0]
	}
	code := testscript.RunMain(m, map[string]func() int{
		"fsmc": Process,
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
	})
	redistest.Stop()
	os.Exit(code)
}

// TestScripts runs testdata/script/<command>_<case>.txtar.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata/script",
		Setup: func(env *testscript.Env) error {
			// go-graphviz caches its compiled WebAssembly under TMPDIR; a
			// fresh TMPDIR per script would compile it again every time.
			env.Setenv("TMPDIR", os.TempDir())
			if strings.HasPrefix(filepath.Base(env.WorkDir), "script-redis_") {
				url, err := redisForScript()
				if err != nil {
					return err
				}
				env.Setenv("FSMC_REDIS_URL", url)
			}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"sleep":      sleepCmd,
			"eventually": eventuallyCmd,
			"waitstate":  waitStateCmd,
		},
		Condition: func(cond string) (bool, error) {
			if cond != "redis" {
				return false, fmt.Errorf("unknown condition %q", cond)
			}
			_, err := redistest.Available()
			if err != nil && os.Getenv("FSMC_REQUIRE_REDIS") == "1" {
				return false, fmt.Errorf("Redis is required (FSMC_REQUIRE_REDIS=1): %v", err)
			}
			return err == nil, nil
		},
	})
}

// sleepCmd is `sleep DURATION`.
func sleepCmd(ts *testscript.TestScript, neg bool, args []string) {
	d, err := time.ParseDuration(args[0])
	ts.Check(err)
	time.Sleep(d)
}

// fsmcInScript runs fsmc in the script's directory and environment, with
// the script's Redis, returning its exit status and output. (It runs as
// a process: scripts run in parallel, so none may change the test's
// working directory.)
func fsmcInScript(ts *testscript.TestScript, args []string) (int, string) {
	full := args
	if url := ts.Getenv("FSMC_REDIS_URL"); url != "" {
		full = append(args[:1:1], append([]string{"--redis", url}, args[1:]...)...)
	}
	err := ts.Exec("fsmc", full...)
	out := ts.ReadFile("stdout") + ts.ReadFile("stderr")
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), out
	case err != nil:
		ts.Fatalf("running fsmc: %v", err)
	}
	return 0, out
}

// eventuallyCmd is `eventually TIMEOUT ARGS...`: run fsmc ARGS until it
// succeeds (for waiting on a worker that is starting).
func eventuallyCmd(ts *testscript.TestScript, neg bool, args []string) {
	timeout, err := time.ParseDuration(args[0])
	ts.Check(err)
	deadline := time.Now().Add(timeout)
	for {
		code, out := fsmcInScript(ts, args[1:])
		if code == 0 {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("fsmc %s still fails after %s: %s", strings.Join(args[1:], " "), timeout, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStateCmd is `waitstate TIMEOUT ID STATE`: wait until instance ID is
// in STATE.
func waitStateCmd(ts *testscript.TestScript, neg bool, args []string) {
	timeout, err := time.ParseDuration(args[0])
	ts.Check(err)
	deadline := time.Now().Add(timeout)
	for {
		_, out := fsmcInScript(ts, []string{"inspect", "--json", args[1]})
		if strings.Contains(out, `"state":"`+args[2]+`"`) {
			return
		}
		if time.Now().After(deadline) {
			ts.Fatalf("%s did not reach %s within %s: %s", args[1], args[2], timeout, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// redisForScript gives each redis_*.txtar script its own, emptied
// database on the test Redis ("" when there is none: the script's
// [!redis] condition then skips it).
func redisForScript() (string, error) {
	if _, err := redistest.Available(); err != nil {
		return "", nil
	}
	return redistest.FreshDatabase()
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

// TestExampleExecScenario runs the order example with its card charger,
// as docs/runtime.md shows: every expectation must hold.
func TestExampleExecScenario(t *testing.T) {
	if goruntime.GOOS == "windows" {
		t.Skip("the charger is a shell script")
	}
	in, err := os.Open("../examples/actions/order.scenario")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var stdout, stderr strings.Builder
	args := []string{"fsmc", "run", "--virtual-time", "--exec", "ChargeCard=../examples/actions/charge-card", "../examples/order.fsm"}
	if code := Main(args, in, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "o1 Order Charging --Paid--> Receipt") {
		t.Fatalf("the charger's event did not drive o1:\n%s", stdout.String())
	}
}
