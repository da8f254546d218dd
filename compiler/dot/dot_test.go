package dot_test

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"github.com/fsmc/fsmc/compiler/dot"
	"github.com/fsmc/fsmc/internal/fsmgen"
	"github.com/fsmc/fsmc/internal/irtest"
)

// TestNodesAreDistinct: every state, and each machine's start marker,
// is a node of its own, whatever the states are called (a state named
// like the marker once became the marker).
func TestNodesAreDistinct(t *testing.T) {
	f := irtest.Compile(t, "start.fsm", []byte(`machine M {
    event Go
    initial state __start {
        on Go -> start
    }
    final state start
}

machine M__start {
    event Go
    initial state A {
        on Go -> B
    }
    final state B
}`))
	var buf bytes.Buffer
	if err := dot.Write(&buf, f.Machines); err != nil {
		t.Fatal(err)
	}
	// Node statements: a quoted id followed by its attributes.
	declared := map[string]int{}
	for _, m := range regexp.MustCompile(`(?m)^\s*("(?:[^"\\]|\\.)*") \[`).FindAllStringSubmatch(buf.String(), -1) {
		declared[m[1]]++
	}
	if len(declared) != 6 { // 4 states and 2 markers
		t.Errorf("%d nodes, want 6:\n%s", len(declared), buf.String())
	}
	for id, n := range declared {
		if n > 1 {
			t.Errorf("node %s declared %d times:\n%s", id, n, buf.String())
		}
	}
}

// TestLargeLayout checks that only a drawing of more than LargeStates
// states, or more than LargeEdges edges, bounds the layout's effort, so
// small drawings keep the default.
func TestLargeLayout(t *testing.T) {
	for _, c := range []struct {
		src     []byte
		states  int
		bounded bool
	}{
		{fsmgen.Machine(dot.LargeStates), dot.LargeStates, false}, // 245 edges
		{fsmgen.Machine(dot.LargeStates + 1), dot.LargeStates + 1, true},
		{fsmgen.Dense(15), 15, false}, // 225 edges
		{fsmgen.Dense(16), 16, true},  // 256 edges
	} {
		f := irtest.Compile(t, "big.fsm", c.src)
		if got := dot.States(f.Machines); got != c.states {
			t.Fatalf("States: %d, want %d", got, c.states)
		}
		var buf bytes.Buffer
		if err := dot.Write(&buf, f.Machines); err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(buf.String(), "nslimit=1"); got != c.bounded {
			t.Errorf("%d states: bounded layout %v, want %v", c.states, got, c.bounded)
		}
	}
}
