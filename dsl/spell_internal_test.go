package dsl

import (
	"fmt"
	"strings"
	"testing"
)

// TestSuggestionsWithinBudget checks a file with many misspelt
// references to many states: the first references get their "did you
// mean", and once the file's comparisons are spent the rest come
// without one, instead of each comparing every name again.
func TestSuggestionsWithinBudget(t *testing.T) {
	const states, refs = 3000, 500
	var b strings.Builder
	b.WriteString("machine M {\n    event E\n    initial state S0 {\n")
	for i := 0; i < refs; i++ {
		fmt.Fprintf(&b, "        on E if %d > 0 -> S0x\n", i)
	}
	b.WriteString("    }\n")
	for i := 1; i < states; i++ {
		fmt.Fprintf(&b, "    state S%d {\n        on E -> S0\n    }\n", i)
	}
	b.WriteString("}\n")
	_, diags := Check("many.fsm", []byte(b.String()))
	var undefined, suggested int
	for _, d := range diags {
		if d.Code != UndefinedState {
			continue
		}
		if undefined == 0 && d.Suggestion != "S0" {
			t.Fatalf("the first reference: suggestion %q, want S0", d.Suggestion)
		}
		undefined++
		if d.Suggestion != "" {
			suggested++
		}
	}
	if undefined != refs {
		t.Fatalf("%d undefined-state errors, want %d", undefined, refs)
	}
	if want := spellComparisons / states; suggested != want {
		t.Fatalf("%d references got a suggestion, want the %d the budget allows", suggested, want)
	}
}
