package compiler_test

import (
	"fmt"
	"testing"

	"github.com/fsmc/fsmc/compiler"
)

// TestExprSource checks the source text the IR keeps for an expression
// (shown in faults and drawings): minus signs stay apart, so the text
// reads as the expression it came from.
func TestExprSource(t *testing.T) {
	for _, c := range []struct{ src, want string }{
		{"- -x", "- -x"},
		{"-(-x)", "- -x"},
		{"- -1", "- -1"},
		{"-x - -1", "-x - -1"},
		{"!(x > 1)", "!(x > 1)"},
		{"-(x + 1)", "-(x + 1)"},
	} {
		src := fmt.Sprintf(`machine M {
    context {
        x: int = 0
        y: int = 0
        b: bool = false
    }
    event Go
    initial state A {
        on Go -> B set %s
    }
    final state B
}`, assign(c.src))
		f, diags, err := compiler.CompileSource("m.fsm", []byte(src))
		if err != nil || diags.HasErrors() {
			t.Fatalf("%s: %v %v", c.src, diags, err)
		}
		if got := f.Machines[0].States[0].On[0].Candidates[0].Sets[0].Value.Src; got != c.want {
			t.Errorf("%s: source %q, want %q", c.src, got, c.want)
		}
	}
}

// assign sets y, or b for a bool expression.
func assign(expr string) string {
	if expr[0] == '!' {
		return "b = " + expr
	}
	return "y = " + expr
}
