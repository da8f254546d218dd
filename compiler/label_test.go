package compiler_test

import (
	"strings"
	"testing"

	"github.com/fsmc/fsmc/compiler"
	"github.com/fsmc/fsmc/internal/irtest"
)

// TestTaskLines: a drawing shows a task's policy where it differs from
// the defaults, a backoff with its cap.
func TestTaskLines(t *testing.T) {
	for policy, want := range map[string]string{
		"retry 3": "do Work | retry 3",
		"retry 3 backoff exponential(initial: 1s, factor: 2, max: 5m)": "do Work | retry 3",
		"retry 3 jitter none": "do Work | retry 3 | jitter none",
		"retry 3 backoff exponential(initial: 1s, factor: 2)":                 "do Work | retry 3 | backoff exponential(1s × 2)",
		"retry 3 backoff exponential(initial: 1s, factor: 2, max: 1m)":        "do Work | retry 3 | backoff exponential(1s × 2, max 1m)",
		"retry 2 backoff linear(initial: 1s, step: 2s, max: 9s) jitter equal": "do Work | retry 2 | backoff linear(1s + 2s/retry, max 9s), jitter equal",
		"timeout 5s": "do Work | timeout 5s",
	} {
		src := "machine M {\n    action Work\n    initial state A {\n        do Work {\n            " +
			strings.ReplaceAll(policy, " backoff", "\n            backoff") + "\n        }\n        on done -> B\n        on error -> B\n    }\n    final state B\n}\n"
		src = strings.ReplaceAll(src, " jitter", "\n            jitter")
		m := irtest.Compile(t, "m.fsm", []byte(src)).Machines[0]
		got := strings.Join(compiler.TaskLines(m, m.States[0].Task), " | ")
		if got != want {
			t.Errorf("%s: got %q, want %q", policy, got, want)
		}
	}
}
