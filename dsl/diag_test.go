package dsl_test

// Golden tests for diagnostics. Each testdata/diag/*.txtar archive holds
//
//	optional comment lines, among them any number of
//	want: LINE[:COLUMN] CODE...      (for lines that cannot carry a comment)
//	-- in.fsm --
//	the file to check, with expected codes as trailing comments:
//	    on Go -> Shiped // ERROR E003
//	    state Stuck     // WARNING W102 W105
//	-- want.diag --
//	the exact plain-text output of dsl.WriteText for in.fsm
//
// A line announces a code once per diagnostic it must produce there
// (`// ERROR E012 E012` for two). `ERROR` is followed by E codes and
// `WARNING` by W codes; both may appear on one line
// (`// ERROR E004 WARNING W103`). Every diagnostic must start on a line
// that announces its code, and every announced code must be produced on
// its line, as many times as announced. A `want:` line with a column also
// requires the diagnostic to start at that column.
//
// go test ./dsl -run TestDiagnostics -update rewrites want.diag from the
// checker's output (except in cases whose other checks fail); read the
// diff before committing it.

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/fsmc/fsmc/dsl"
	"github.com/rogpeppe/go-internal/txtar"
)

var updateDiag = flag.Bool("update", false, "rewrite testdata/diag/*.txtar want.diag sections from the checker's output")

const (
	diagInName   = "in.fsm"
	diagWantName = "want.diag"
)

// diagSection returns the data of the archive's file called name.
func diagSection(a *txtar.Archive, name string) ([]byte, bool) {
	for _, f := range a.Files {
		if f.Name == name {
			return f.Data, true
		}
	}
	return nil, false
}

// diagSetSection replaces (or adds) the archive's file called name.
func diagSetSection(a *txtar.Archive, name string, data []byte) {
	for i := range a.Files {
		if a.Files[i].Name == name {
			a.Files[i].Data = data
			return
		}
	}
	a.Files = append(a.Files, txtar.File{Name: name, Data: data})
}

// diagExpectation is one announced code on one line.
type diagExpectation struct {
	line   int
	column int // 0: any column
	code   string
}

var (
	// diagAnnotationRE finds `ERROR E003 E007` / `WARNING W101` groups in a
	// comment on a line of in.fsm.
	diagAnnotationRE = regexp.MustCompile(`\b(ERROR|WARNING)((?:[ \t]+[EW][0-9]{3}\b)+)`)
	// diagWantRE is a `want: LINE[:COLUMN] CODE...` line of the comment.
	diagWantRE   = regexp.MustCompile(`^want:[ \t]+([0-9]+)(?::([0-9]+))?((?:[ \t]+[EW][0-9]{3})+)[ \t]*$`)
	diagCodeWord = regexp.MustCompile(`[EW][0-9]{3}`)
)

// diagExpectations reads the announced codes of an archive: trailing
// comments in src and `want:` lines in the comment.
func diagExpectations(comment, src []byte) ([]diagExpectation, error) {
	var out []diagExpectation
	for i, line := range strings.Split(string(comment), "\n") {
		line = strings.TrimRight(line, "\r")
		if !strings.HasPrefix(line, "want:") {
			continue
		}
		m := diagWantRE.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("comment line %d: malformed %q (want: LINE[:COLUMN] CODE...)", i+1, line)
		}
		ln, _ := strconv.Atoi(m[1])
		col := 0
		if m[2] != "" {
			col, _ = strconv.Atoi(m[2])
		}
		for _, code := range diagCodeWord.FindAllString(m[3], -1) {
			out = append(out, diagExpectation{line: ln, column: col, code: code})
		}
	}
	for i, line := range bytes.Split(src, []byte("\n")) {
		c := diagCommentStart(line)
		if c < 0 {
			continue
		}
		for _, m := range diagAnnotationRE.FindAllSubmatch(line[c:], -1) {
			kind := string(m[1])
			for _, code := range diagCodeWord.FindAll(m[2], -1) {
				if (kind == "ERROR") != (code[0] == 'E') {
					return nil, fmt.Errorf("%s:%d: %s announced as %s", diagInName, i+1, code, kind)
				}
				out = append(out, diagExpectation{line: i + 1, code: string(code)})
			}
		}
	}
	known := map[string]bool{}
	for _, info := range dsl.Codes {
		known[string(info.Code)] = true
	}
	for _, e := range out {
		if !known[e.code] {
			return nil, fmt.Errorf("%s:%d: announced code %s is not in dsl.Codes", diagInName, e.line, e.code)
		}
	}
	return out, nil
}

// diagCommentStart returns the index of the first `//` or `/*` of line that
// is outside a string literal, or -1. Lines with an unterminated string
// or broken bytes get their expectations from `want:` lines instead.
func diagCommentStart(line []byte) int {
	inString := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case inString && c == '\\':
			i++
		case c == '"':
			inString = !inString
		case !inString && c == '/' && i+1 < len(line) && (line[i+1] == '/' || line[i+1] == '*'):
			return i
		}
	}
	return -1
}

func diagArchives(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "diag", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no testdata/diag/*.txtar files")
	}
	return files
}

func TestDiagnostics(t *testing.T) {
	for _, path := range diagArchives(t) {
		name := strings.TrimSuffix(filepath.Base(path), ".txtar")
		t.Run(name, func(t *testing.T) { runDiagCase(t, path) })
	}
}

// diagCheck runs dsl.Check, turning a panic into a test failure.
func diagCheck(t *testing.T, src []byte) (ds dsl.Diagnostics) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("dsl.Check panicked: %v\n%s", r, debug.Stack())
		}
	}()
	_, ds = dsl.Check(diagInName, src)
	return ds
}

func runDiagCase(t *testing.T, path string) {
	base := filepath.Base(path)
	a, err := txtar.ParseFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range a.Files {
		if f.Name != diagInName && f.Name != diagWantName {
			t.Errorf("%s: unknown section -- %s -- (want only %s and %s)", base, f.Name, diagInName, diagWantName)
		}
	}
	src, ok := diagSection(a, diagInName)
	if !ok {
		t.Fatalf("%s: no -- %s -- section", base, diagInName)
	}
	want, haveWant := diagSection(a, diagWantName)
	if !haveWant && !*updateDiag {
		t.Fatalf("%s: no -- %s -- section (run with -update to create it)", base, diagWantName)
	}
	exps, err := diagExpectations(a.Comment, src)
	if err != nil {
		t.Fatalf("%s: %v", base, err)
	}

	ds := diagCheck(t, src)

	for _, d := range ds {
		checkDiagRange(t, base, src, d.Range, fmt.Sprintf("%s[%s] %q", d.Severity, d.Code, d.Message))
		for _, n := range d.Related {
			checkDiagRange(t, base, src, n.Range, fmt.Sprintf("note of %s[%s] %q", d.Severity, d.Code, n.Message))
		}
		if sev := d.Code.Info().Severity; sev != 0 && sev != d.Severity {
			t.Errorf("%s: %s:%d:%d: %s has severity %s, dsl.Codes says %s", base, diagInName,
				d.Range.Start.Line, d.Range.Start.Column, d.Code, d.Severity, sev)
		}
	}
	checkDiagExpectations(t, base, exps, ds)

	var got bytes.Buffer
	if err := dsl.WriteText(&got, &dsl.Report{Diagnostics: ds, Sources: map[string][]byte{diagInName: src}}, false); err != nil {
		t.Fatalf("%s: WriteText: %v", base, err)
	}
	if *updateDiag {
		if t.Failed() {
			// The announced codes say the output is wrong: keep the
			// expected text rather than record the wrong output.
			t.Logf("%s: %s not rewritten, since the checks above failed", base, diagWantName)
			return
		}
		if !haveWant || !bytes.Equal(got.Bytes(), want) {
			diagSetSection(a, diagWantName, got.Bytes())
			if err := os.WriteFile(path, txtar.Format(a), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: rewrote %s", base, diagWantName)
		}
		return
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Errorf("%s: %s differs from dsl.WriteText output (- want, + got):\n%s", base, diagWantName, diagLineDiff(want, got.Bytes()))
	}
}

type diagLineCode struct {
	line int
	code string
}

func checkDiagExpectations(t *testing.T, base string, exps []diagExpectation, ds dsl.Diagnostics) {
	t.Helper()
	want := map[diagLineCode]int{}
	for _, e := range exps {
		want[diagLineCode{e.line, e.code}]++
	}
	got := map[diagLineCode][]dsl.Diagnostic{}
	for _, d := range ds {
		k := diagLineCode{d.Range.Start.Line, string(d.Code)}
		got[k] = append(got[k], d)
	}
	var keys []diagLineCode
	for k := range want {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].line != keys[j].line {
			return keys[i].line < keys[j].line
		}
		return keys[i].code < keys[j].code
	})
	for _, k := range keys {
		w, g := want[k], got[k]
		switch {
		case len(g) == w:
			continue
		case w == 0:
			for _, d := range g {
				t.Errorf("%s: %s:%d: unexpected %s (not announced on this line): %s:%d:%d: %s", base, diagInName, k.line, k.code,
					diagInName, d.Range.Start.Line, d.Range.Start.Column, d.Message)
			}
		case len(g) == 0:
			t.Errorf("%s: %s:%d: want %d %s, got none%s", base, diagInName, k.line, w, k.code, diagElsewhere(ds, k.code))
		default:
			var msgs []string
			for _, d := range g {
				msgs = append(msgs, fmt.Sprintf("%d:%d: %s", d.Range.Start.Line, d.Range.Start.Column, d.Message))
			}
			t.Errorf("%s: %s:%d: want %d %s, got %d:\n\t%s", base, diagInName, k.line, w, k.code, len(g), strings.Join(msgs, "\n\t"))
		}
	}
	for _, e := range exps {
		if e.column == 0 {
			continue
		}
		found := false
		var cols []string
		for _, d := range got[diagLineCode{e.line, e.code}] {
			cols = append(cols, strconv.Itoa(d.Range.Start.Column))
			found = found || d.Range.Start.Column == e.column
		}
		if !found && len(cols) > 0 {
			t.Errorf("%s: %s:%d: want %s at column %d, got column %s", base, diagInName, e.line, e.code, e.column, strings.Join(cols, ", "))
		}
	}
}

// diagElsewhere describes diagnostics with code that start on other lines,
// for a failure message.
func diagElsewhere(ds dsl.Diagnostics, code string) string {
	var lines []string
	for _, d := range ds {
		if string(d.Code) == code {
			lines = append(lines, fmt.Sprintf("%d:%d", d.Range.Start.Line, d.Range.Start.Column))
		}
	}
	if len(lines) == 0 {
		return ""
	}
	return " (" + code + " reported at " + strings.Join(lines, ", ") + ")"
}

// checkDiagRange verifies that r lies inside src and that its lines and
// columns agree with its byte offsets.
func checkDiagRange(t *testing.T, base string, src []byte, r dsl.Range, what string) {
	t.Helper()
	fail := func(format string, args ...any) {
		t.Errorf("%s: %s:%d:%d: %s: %s", base, diagInName, r.Start.Line, r.Start.Column, what, fmt.Sprintf(format, args...))
	}
	if r.File != diagInName {
		fail("range file is %q, want %q", r.File, diagInName)
	}
	if r.Start.Line < 1 || r.Start.Column < 1 {
		fail("start %d:%d is before the file", r.Start.Line, r.Start.Column)
		return
	}
	if r.Start.Offset < 0 || r.End.Offset > len(src) {
		fail("offsets %d..%d outside the source (%d bytes)", r.Start.Offset, r.End.Offset, len(src))
		return
	}
	if r.Start.Offset > r.End.Offset || r.Start.Line > r.End.Line ||
		r.Start.Line == r.End.Line && r.Start.Column > r.End.Column {
		fail("start %d:%d (offset %d) is after end %d:%d (offset %d)",
			r.Start.Line, r.Start.Column, r.Start.Offset, r.End.Line, r.End.Column, r.End.Offset)
		return
	}
	for _, p := range []struct {
		name string
		pos  dsl.Pos
	}{{"start", r.Start}, {"end", r.End}} {
		line, col := diagLineCol(src, p.pos.Offset)
		if line != p.pos.Line || col != p.pos.Column {
			fail("%s offset %d is at %d:%d, but the range says %d:%d", p.name, p.pos.Offset, line, col, p.pos.Line, p.pos.Column)
		}
	}
}

// diagLineCol returns the 1-based line and character column of a byte offset.
func diagLineCol(src []byte, off int) (line, col int) {
	before := src[:off]
	line = 1 + bytes.Count(before, []byte("\n"))
	lineStart := bytes.LastIndexByte(before, '\n') + 1
	return line, 1 + utf8.RuneCount(before[lineStart:])
}

// diagLineDiff shows want and got line by line ("-" only in want, "+" only
// in got), aligned on their longest common subsequence of lines.
func diagLineDiff(want, got []byte) string {
	w := strings.Split(string(want), "\n")
	g := strings.Split(string(got), "\n")
	// lcs[i][j] is the length of the LCS of w[i:] and g[j:].
	lcs := make([][]int, len(w)+1)
	for i := range lcs {
		lcs[i] = make([]int, len(g)+1)
	}
	for i := len(w) - 1; i >= 0; i-- {
		for j := len(g) - 1; j >= 0; j-- {
			if w[i] == g[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	i, j := 0, 0
	for i < len(w) || j < len(g) {
		switch {
		case i < len(w) && j < len(g) && w[i] == g[j]:
			fmt.Fprintf(&b, "   %s\n", w[i])
			i++
			j++
		case i < len(w) && (j == len(g) || lcs[i+1][j] >= lcs[i][j+1]):
			fmt.Fprintf(&b, " - %s\n", w[i])
			i++
		default:
			fmt.Fprintf(&b, " + %s\n", g[j])
			j++
		}
	}
	return b.String()
}

func TestEveryCodeCovered(t *testing.T) {
	announced := map[string][]string{}
	for _, path := range diagArchives(t) {
		a, err := txtar.ParseFile(path)
		if err != nil {
			t.Fatal(err)
		}
		src, ok := diagSection(a, diagInName)
		if !ok {
			t.Errorf("%s: no -- %s -- section", filepath.Base(path), diagInName)
			continue
		}
		exps, err := diagExpectations(a.Comment, src)
		if err != nil {
			t.Errorf("%s: %v", filepath.Base(path), err)
			continue
		}
		for _, e := range exps {
			announced[e.code] = append(announced[e.code], filepath.Base(path))
		}
	}
	for _, info := range dsl.Codes {
		if len(announced[string(info.Code)]) == 0 {
			t.Errorf("code %s (%s) is announced by no testdata/diag case", info.Code, info.Name)
		}
	}
}
