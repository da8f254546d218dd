// Package fsmgen writes large, valid .fsm machines for benchmarks and
// stress tests. The shape follows the order example of the language spec:
// per state one guarded transition that updates the context, plain
// transitions, a cancel path and a timer, and every tenth state a task
// with a retry policy, so every pass of the checker and compiler has the
// work a real machine gives it.
package fsmgen

import (
	"bytes"
	"fmt"
)

// Machine returns the source of one machine named Big with the given
// number of states (at least 2) and five transitions or timers in each
// non-final state: states*5 transitions in all.
func Machine(states int) []byte {
	if states < 2 {
		states = 2
	}
	var b bytes.Buffer
	b.Grow(states * 200)
	b.WriteString(`machine Big {
    context {
        count: int = 0
        label: string = "start"
        wait: duration = 5m
    }

    event Next(n: int, tag: string)
    event Skip
    event Back
    event Cancel
    action Work emits Next

`)
	for s := 0; s < states-1; s++ {
		if s == 0 {
			b.WriteString("    initial ")
		} else {
			b.WriteString("    ")
		}
		fmt.Fprintf(&b, "state S%d {\n", s)
		if s%10 == 0 {
			b.WriteString("        do Work { timeout 30s retry 3 backoff exponential(initial: 1s, factor: 2, max: 1m) }\n        on error -> Done\n")
		} else {
			b.WriteString("        on Cancel -> Done\n")
		}
		fmt.Fprintf(&b, "        on Next if event.n > 0 -> S%d\n            set count = count + event.n, label = event.tag\n", (s+1)%(states-1))
		fmt.Fprintf(&b, "        on Skip -> S%d\n", (s+2)%(states-1))
		fmt.Fprintf(&b, "        on Back -> S%d\n", (s+states-2)%(states-1))
		fmt.Fprintf(&b, "        after wait -> S%d\n    }\n", (s+1)%(states-1))
	}
	b.WriteString("    final state Done\n}\n")
	return b.Bytes()
}

// Dense writes a machine of n states, each with a transition to every
// state (n*n edges): the worst case of a drawing's layout.
func Dense(n int) []byte {
	var b bytes.Buffer
	b.WriteString("machine Dense {\n")
	for j := 0; j < n; j++ {
		fmt.Fprintf(&b, "    event E%d\n", j)
	}
	for i := 0; i < n; i++ {
		initial := ""
		if i == 0 {
			initial = "initial "
		}
		fmt.Fprintf(&b, "    %sstate S%d {", initial, i)
		for j := 0; j < n; j++ {
			fmt.Fprintf(&b, " on E%d -> S%d", j, j)
		}
		b.WriteString(" }\n")
	}
	b.WriteString("}\n")
	return b.Bytes()
}
