package compiler

import (
	"fmt"
	"strings"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/dsl"
)

// The words that diagrams put on edges and inside states, shared by the
// DOT and Mermaid emitters so both say the same thing.

// EdgeLabel describes a transition: the event with its guard in
// brackets, then, if it sets fields, `set a = x, b = y`.
func EdgeLabel(m *ir.Machine, event int, t *ir.Transition) []string {
	head := m.Events[event].Name
	if t.Guard != nil {
		head += " [" + t.Guard.Src + "]"
	}
	return withSets(m, head, t.Sets)
}

// TimerLabel describes a timer: `after delay`, then its sets.
func TimerLabel(m *ir.Machine, t *ir.Timer) []string {
	return withSets(m, "after "+t.Delay.Src, t.Sets)
}

func withSets(m *ir.Machine, head string, sets []ir.Assign) []string {
	if len(sets) == 0 {
		return []string{head}
	}
	parts := make([]string, len(sets))
	for i, a := range sets {
		parts[i] = m.Context[a.Field].Name + " = " + a.Value.Src
	}
	return []string{head, "set " + strings.Join(parts, ", ")}
}

// TaskLines describes a state's task: `do Action` and its policy, as it
// differs from the defaults.
func TaskLines(m *ir.Machine, t *ir.Task) []string {
	lines := []string{"do " + m.Actions[t.Action].Name}
	var policy []string
	if t.Timeout != ir.Duration(dsl.DefaultTimeout) {
		policy = append(policy, "timeout "+durationText(t.Timeout))
	}
	if t.Retry > 0 {
		policy = append(policy, fmt.Sprintf("retry %d", t.Retry))
	}
	if len(policy) > 0 {
		lines = append(lines, strings.Join(policy, ", "))
	}
	if t.Retry > 0 {
		var retry []string
		if b, def := t.Backoff, dsl.DefaultBackoff; b.Kind != def.Kind.String() || b.Initial != ir.Duration(def.Initial) ||
			b.Factor != def.Factor || b.Max != ir.Duration(def.Max) {
			retry = append(retry, backoffText(b))
		}
		if t.Jitter != dsl.JitterFull.String() {
			retry = append(retry, "jitter "+t.Jitter)
		}
		if len(retry) > 0 {
			lines = append(lines, strings.Join(retry, ", "))
		}
	}
	return lines
}

// backoffText is a backoff as a drawing shows it: its kind, numbers and
// cap (no cap: it grows without bound).
func backoffText(b ir.Backoff) string {
	var text string
	switch b.Kind {
	case "constant":
		return "backoff constant(" + durationText(b.Initial) + ")"
	case "linear":
		text = "backoff linear(" + durationText(b.Initial) + " + " + durationText(b.Step) + "/retry"
	default:
		text = fmt.Sprintf("backoff exponential(%s × %g", durationText(b.Initial), b.Factor)
	}
	if b.Max > 0 {
		text += ", max " + durationText(b.Max)
	}
	return text + ")"
}

func durationText(d ir.Duration) string { return ir.FormatDuration(time.Duration(d)) }

// Select returns the machines to draw: the one named, or all.
func Select(f *ir.File, name string) ([]*ir.Machine, error) {
	if name == "" {
		return f.Machines, nil
	}
	var names []string
	for _, m := range f.Machines {
		if m.Name == name {
			return []*ir.Machine{m}, nil
		}
		names = append(names, m.Name)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("no machine %q: this file has none", name)
	}
	return nil, fmt.Errorf("no machine %q in this file (it has %s)", name, strings.Join(names, ", "))
}

// StartsEntity reports whether an "&" followed by rest would begin an
// HTML entity (&lt;, &#38;) where HTML entities are read, as in
// Graphviz's labels and Mermaid's: a letter or "#" follows it. An "&"
// elsewhere (a && b) is read as itself.
func StartsEntity(rest string) bool {
	if rest == "" {
		return false
	}
	c := rest[0]
	return c == '#' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}
