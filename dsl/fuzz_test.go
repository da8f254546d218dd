package dsl_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"unicode/utf8"

	"github.com/fsmc/fsmc/dsl"
)

// FuzzCheckFormat feeds arbitrary files through parse, check and fmt:
// no panic, every diagnostic range inside the source, formatting
// idempotent and changing white space only, and the formatted file
// checking to the same diagnostics.
func FuzzCheckFormat(f *testing.F) {
	seeds, _ := filepath.Glob("../examples/*.fsm")
	more, _ := filepath.Glob("testdata/*/*.txtar")
	for _, path := range append(seeds, more...) {
		if src, err := os.ReadFile(path); err == nil {
			f.Add(src)
		}
	}
	f.Add([]byte("machine M { initial state A { on E -> A } event E }"))
	f.Fuzz(func(t *testing.T, src []byte) {
		_, diags := dsl.Check("f.fsm", src)
		checkRanges(t, src, diags)
		out, fdiags := dsl.Format("f.fsm", src)
		if fdiags != nil {
			if !fdiags.HasErrors() {
				t.Fatal("Format failed without an error")
			}
			return
		}
		checkSameMeaning(t, src, out)
		again, _ := dsl.Format("f.fsm", out)
		if !bytes.Equal(again, out) {
			t.Fatalf("not idempotent:\nfirst  %q\nsecond %q", out, again)
		}
		_, after := dsl.Check("f.fsm", out)
		if codes(after) != codes(diags) {
			t.Fatalf("formatting changed the diagnostics: %s -> %s", codes(diags), codes(after))
		}
	})
}

func codes(ds dsl.Diagnostics) string {
	var b bytes.Buffer
	for _, d := range ds {
		b.WriteString(string(d.Code) + " " + d.Message + "\n")
	}
	return b.String()
}

// checkRanges asserts that every range lies inside src and that its
// line and column agree with its offset. It reads src once, whatever
// the number of ranges.
func checkRanges(t testing.TB, src []byte, diags dsl.Diagnostics) {
	t.Helper()
	type start struct {
		pos  dsl.Pos
		diag *dsl.Diagnostic
	}
	var starts []start
	for i := range diags {
		d := &diags[i]
		ranges := []dsl.Range{d.Range}
		for _, n := range d.Related {
			ranges = append(ranges, n.Range)
		}
		for _, r := range ranges {
			s, e := r.Start, r.End
			if s.Offset < 0 || s.Offset > len(src) || e.Offset < s.Offset || e.Offset > len(src) {
				t.Fatalf("%s: range %d..%d outside a source of %d bytes", d, s.Offset, e.Offset, len(src))
			}
			starts = append(starts, start{s, d})
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i].pos.Offset < starts[j].pos.Offset })
	line, col, at, valid := 1, 1, 0, true
	if bytes.HasPrefix(src, []byte("\ufeff")) {
		at = 3 // a leading byte order mark is ignored, as Go does: 1:1 follows it
	}
	for _, s := range starts {
		inside := false // the offset is inside a character
		for at < s.pos.Offset {
			c, size := utf8.DecodeRune(src[at:])
			if at+size > s.pos.Offset {
				inside = true
				break
			}
			if c == utf8.RuneError && size == 1 {
				valid = false
			}
			if c == '\n' {
				line, col = line+1, 1
			} else {
				col++
			}
			at += size
		}
		if !valid || inside {
			continue // columns after an invalid byte count its bytes
		}
		if line != s.pos.Line || col != s.pos.Column {
			t.Fatalf("%s: start %d:%d, but offset %d is at %d:%d", s.diag, s.pos.Line, s.pos.Column, s.pos.Offset, line, col)
		}
	}
}
