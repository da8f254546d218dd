package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fsmc/fsmc/internal/irtest"
)

// writeToggle writes the toggle machine to a file and returns its path.
func writeToggle(t *testing.T) string {
	t.Helper()
	file := filepath.Join(t.TempDir(), "toggle.fsm")
	if err := os.WriteFile(file, []byte(irtest.Toggle), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

func TestStripComment(t *testing.T) {
	for line, want := range map[string]string{
		"expect o1 Done # done by now":                  "expect o1 Done ",
		"expect o1 Done\t# after a tab":                 "expect o1 Done\t",
		"# a whole line":                                "",
		"inspect order#7":                               "inspect order#7",
		`send o1 Note {"text": "a # b"} # c`:            `send o1 Note {"text": "a # b"} `,
		`send o1 Note {"text": "} # \" #", "n": {}} #c`: `send o1 Note {"text": "} # \" #", "n": {}} `,
		`start M m1 {"a": 1}`:                           `start M m1 {"a": 1}`,
	} {
		if got := stripComment(line); got != want {
			t.Errorf("stripComment(%q) = %q, want %q", line, got, want)
		}
	}
}

// TestScenarioLineTooLong: a line past the limit is refused with its
// number, and the scenario stops (exit 1).
func TestScenarioLineTooLong(t *testing.T) {
	in := "start Toggle t\n" + strings.Repeat("x", maxLine+1) + "\nexpect t On\n"
	var stdout, stderr bytes.Buffer
	code := Main([]string{"fsmc", "run", "--virtual-time", writeToggle(t)}, strings.NewReader(in), &stdout, &stderr)
	if code != ExitFound || !strings.Contains(stderr.String(), "line 2: longer than 16 MiB; the scenario stops here") {
		t.Fatalf("exit %d:\n%s", code, stderr.String())
	}
}

// TestRefusalsAreText: a refused line's message echoes its words with
// control characters and bytes that are not UTF-8 escaped, so that the
// terminal shows what was written.
func TestRefusalsAreText(t *testing.T) {
	for in, want := range map[string]string{
		"start a\x01b":   `start a\x01b`,
		"start \xff\xfe": `start \xff\xfe`,
		"send \x1b[2J x": `send \x1b[2J x`,
		"start é�":       "start é�",
	} {
		if got := graphic(in); got != want {
			t.Errorf("graphic(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBacklogIsNotALoop: events the scenario sent to a failed instance
// wait, and are handled at one instant once it is retried. More of them
// than a loop's limit is not a loop; a loop of timers still is.
func TestBacklogIsNotALoop(t *testing.T) {
	file := filepath.Join(t.TempDir(), "backlog.fsm")
	src := `machine B {
    context {
        z: int
        n: int
    }
    event Boom
    event Inc
    initial state A {
        on Boom -> A set z = 1 / z
        on Inc -> A set n = n + 1
    }
}`
	if err := os.WriteFile(file, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	in := "start B b\nsend b Boom\n" + strings.Repeat("send b Inc\n", loopLimit+1) + "retry b\nexpect b A\n"
	var stdout, stderr bytes.Buffer
	code := Main([]string{"fsmc", "run", "--virtual-time", file}, strings.NewReader(in), &stdout, &stderr)
	if code != ExitOK || strings.Contains(stderr.String(), "steps") || strings.Count(stdout.String(), "--Inc--> A") != loopLimit+1 {
		t.Fatalf("exit %d, %d transitions on Inc:\n%s", code, strings.Count(stdout.String(), "--Inc--> A"), lastLines(stderr.String(), 3))
	}
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
