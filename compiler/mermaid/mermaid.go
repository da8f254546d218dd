// Package mermaid draws IR machines as Mermaid stateDiagram-v2, for
// Markdown pages that render Mermaid (GitHub, GitLab, many wikis).
//
//	*ir.File -> Write -> stateDiagram-v2 text
//
// States get generated ids (s0, s1, ... or m0_s0 with several machines)
// and their names as display text, so no state name can collide with
// Mermaid's keywords. Labels use Mermaid's #code; entities for the
// characters its parser treats specially. Several machines are drawn as
// one composite state each. Mermaid has no dashed or coloured
// transitions, so timers read "after ..." and error edges "error".
package mermaid

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/fsmc/fsmc/compiler"
	"github.com/fsmc/fsmc/compiler/ir"
)

// Write draws machines as one stateDiagram-v2.
func Write(w io.Writer, machines []*ir.Machine) error {
	var b bytes.Buffer
	b.WriteString("stateDiagram-v2\n")
	for mi, m := range machines {
		prefix, in := "s", "    "
		if len(machines) > 1 {
			prefix = fmt.Sprintf("m%d_s", mi)
			fmt.Fprintf(&b, "    state \"%s\" as m%d {\n", escape(m.Name), mi)
			in = "        "
		}
		writeMachine(&b, m, prefix, in)
		if len(machines) > 1 {
			b.WriteString("    }\n")
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

func writeMachine(b *bytes.Buffer, m *ir.Machine, prefix, in string) {
	id := func(i int) string { return fmt.Sprintf("%s%d", prefix, i) }
	for i := range m.States {
		s := &m.States[i]
		fmt.Fprintf(b, "%sstate \"%s\" as %s\n", in, escape(s.Name), id(i))
		if s.Task != nil {
			for _, line := range compiler.TaskLines(m, s.Task) {
				fmt.Fprintf(b, "%s%s : %s\n", in, id(i), escape(line))
			}
		}
	}
	fmt.Fprintf(b, "%s[*] --> %s\n", in, id(m.Initial))
	for i := range m.States {
		s := &m.States[i]
		for _, row := range s.On {
			for k := range row.Candidates {
				t := &row.Candidates[k]
				fmt.Fprintf(b, "%s%s --> %s : %s\n", in, id(i), id(t.Target), label(compiler.EdgeLabel(m, row.Event, t)))
			}
		}
		for k := range s.Timers {
			t := &s.Timers[k]
			fmt.Fprintf(b, "%s%s --> %s : %s\n", in, id(i), id(t.Target), label(compiler.TimerLabel(m, t)))
		}
		if s.Final {
			fmt.Fprintf(b, "%s%s --> [*]\n", in, id(i))
		}
	}
}

// escape replaces the characters Mermaid would read as syntax with its
// #code; entities, and line breaks with spaces.
var escaper = strings.NewReplacer(
	"#", "#35;", ";", "#59;", ":", "#58;", "\"", "#quot;", "<", "#lt;", ">", "#gt;",
	"&", "#amp;", "{", "#123;", "}", "#125;", "%", "#37;", "\n", " ", "\r", " ", "`", "#96;",
)

func escape(s string) string { return escaper.Replace(s) }

// label joins a transition's label lines on one line.
func label(lines []string) string { return escape(strings.Join(lines, " / ")) }
