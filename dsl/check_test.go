package dsl_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/fsmc/fsmc/dsl"
	"github.com/fsmc/fsmc/internal/fsmgen"
)

// TestHostileInput feeds inputs that must give a clear diagnostic or a
// clean result, never a panic or a pathological run time.
func TestHostileInput(t *testing.T) {
	big := fsmgen.Machine(45000) // about 10 MB
	nested := "machine M { context { n: int } event E initial state A { on E if " +
		strings.Repeat("(", 10000) + "n" + strings.Repeat(")", 10000) + " > 0 -> A } final state Z }"
	longString := `machine M { context { s: string = "` + strings.Repeat("x", 1<<20) + `" } initial state A {} }`
	longExpr := "machine M { context { n: int } event E initial state A { on E if n" + strings.Repeat(" + n", 300000) + " > 0 -> A } }"
	var oneLine strings.Builder // 20,000 errors on one line, each printed with it
	oneLine.WriteString("machine M { event E initial state S {")
	for i := 0; i < 20000; i++ {
		fmt.Fprintf(&oneLine, " on E if true -> Nope%d", i)
	}
	oneLine.WriteString(" } final state F }")
	garbage := make([]byte, 4096)
	for i := range garbage {
		garbage[i] = byte(i*7919 + i/13)
	}
	for _, c := range []struct {
		name string
		src  []byte
		want string // the first diagnostic's code and message prefix, or "" for none
	}{
		{"empty", nil, ""},
		{"only comments", []byte("// nothing here\n/* at all */"), ""},
		{"binary garbage", garbage, "E001"},
		{"invalid UTF-8", []byte("machine M\xc3\x28 {}"), "E001 invalid UTF-8"},
		{"NUL bytes", []byte("machine M {\x00}"), "E001 unexpected control character"},
		{"10 MB file", big, ""},
		{"10,000 nested parentheses", []byte(nested), "E001 parentheses nested too deeply"},
		{"1 MB string line", []byte(longString), "W"},
		{"1 MB expression line", []byte(longExpr), "E001 expression too long"},
		{"20,000 errors on one line", []byte(oneLine.String()), "W102"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, diags := dsl.Check("in.fsm", c.src)
			checkRanges(t, c.src, diags)
			got := ""
			if len(diags) > 0 {
				got = string(diags[0].Code) + " " + diags[0].Message
			}
			if c.want == "" && got != "" || !strings.HasPrefix(got, c.want) {
				t.Fatalf("first diagnostic %q, want %q", got, c.want)
			}
			var text bytes.Buffer
			if err := dsl.WriteText(&text, &dsl.Report{Diagnostics: diags, Sources: map[string][]byte{"in.fsm": c.src}}, false); err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(text.String(), "\n") {
				if len(line) > 400 {
					t.Fatalf("text output has a line of %d bytes", len(line))
				}
			}
		})
	}
}

// BenchmarkCheck parses and checks generated machines of growing size;
// 10,000 states carry 50,000 transitions and timers.
func BenchmarkCheck(b *testing.B) {
	for _, states := range []int{1000, 10000, 20000} {
		src := fsmgen.Machine(states)
		b.Run(fmt.Sprintf("states=%d", states), func(b *testing.B) {
			b.SetBytes(int64(len(src)))
			for i := 0; i < b.N; i++ {
				if _, diags := dsl.Check("big.fsm", src); diags.HasErrors() {
					b.Fatal(diags)
				}
			}
		})
	}
}
