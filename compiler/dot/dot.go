// Package dot draws IR machines as Graphviz DOT, and renders DOT to SVG
// and PNG in-process with go-graphviz (Graphviz compiled to WebAssembly,
// so no Graphviz installation is needed).
//
//	*ir.File -> Write -> DOT text -> Render -> SVG | PNG
//
// Conventions: the initial state has an entry arrow from a dot, final
// states are double circles, a state's task is written inside it, edge
// labels carry the event, the guard in brackets and the set effects,
// timers are dashed, and transitions on error are red. Several machines
// are drawn as one cluster each. Every identifier is quoted, and every
// label escaped (entities included), so any name and any string literal
// gives valid DOT that Graphviz draws as written.
package dot

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/fsmc/fsmc/compiler"
	"github.com/fsmc/fsmc/compiler/ir"
)

// A drawing of more than LargeStates states or LargeEdges edges bounds
// Graphviz's layout effort (see largeLayout); one of more than
// MaxRenderStates states or MaxRenderEdges edges is not rendered as SVG
// or PNG. Edges count as much as states: a machine whose every state
// links to every state is slow to lay out even bounded
// (BenchmarkRenderLarge's dense cases), and far slower with the default
// layout (docs/visualize.md gives the figures, and how to reproduce
// them).
const (
	LargeStates     = 50
	LargeEdges      = 250
	MaxRenderStates = 500
	MaxRenderEdges  = 1000
)

// largeLayout bounds the work of dot's layout for a large drawing:
// network simplex passes (nslimit, nslimit1), crossing reduction
// (mclimit, remincross) and straight edges instead of routed splines.
// The default layout's cost grows steeply with back and cross edges: on
// fsmgen's machines (internal/fsmgen), 70 states took 15 s and 100 over
// 7 min; bounded, 70 take 0.09 s, 100 0.2 s and 300 5.4 s
// (BenchmarkRenderLarge).
const largeLayout = `nslimit=1, nslimit1=1, mclimit=0.01, remincross=false, splines=line, `

// States counts the states of machines.
func States(machines []*ir.Machine) int {
	n := 0
	for _, m := range machines {
		n += len(m.States)
	}
	return n
}

// Edges counts the edges a drawing of machines has: transitions (one per
// target) and timers.
func Edges(machines []*ir.Machine) int {
	n := 0
	for _, m := range machines {
		for i := range m.States {
			for _, row := range m.States[i].On {
				n += len(row.Candidates)
			}
			n += len(m.States[i].Timers)
		}
	}
	return n
}

// Large reports whether a drawing of machines gets the bounded layout.
func Large(machines []*ir.Machine) bool {
	return States(machines) > LargeStates || Edges(machines) > LargeEdges
}

// Write draws machines as one digraph.
func Write(w io.Writer, machines []*ir.Machine) error {
	var b bytes.Buffer
	name := "fsmc"
	if len(machines) == 1 {
		name = machines[0].Name
	}
	fmt.Fprintf(&b, "digraph %s {\n", quote(name))
	b.WriteString(`    graph [`)
	if Large(machines) {
		b.WriteString(largeLayout)
	}
	b.WriteString(`rankdir=LR, fontname="Helvetica", fontsize=13, nodesep=0.4, ranksep=0.6, pad=0.2];
    node [shape=box, style="rounded,filled", fillcolor="#f5f7fa", color="#4a5568", fontname="Helvetica", fontsize=11, margin="0.2,0.08"];
    edge [fontname="Helvetica", fontsize=9, color="#4a5568", fontcolor="#2d3748"];
`)
	for _, m := range machines {
		indent := "    "
		if len(machines) > 1 {
			fmt.Fprintf(&b, "    subgraph %s {\n        label=%s;\n        style=\"rounded,dashed\";\n        color=\"#a0aec0\";\n",
				quote("cluster_"+m.Name), quote(m.Name))
			indent = "        "
		}
		writeMachine(&b, m, indent)
		if len(machines) > 1 {
			b.WriteString("    }\n")
		}
	}
	b.WriteString("}\n")
	_, err := w.Write(b.Bytes())
	return err
}

func writeMachine(b *bytes.Buffer, m *ir.Machine, in string) {
	id := func(state int) string { return quote(m.Name + "." + m.States[state].Name) }
	// The start marker's id has a space, which no state name has.
	start := quote(m.Name + " start")
	fmt.Fprintf(b, "%s%s [shape=point, width=0.14, label=\"\"];\n", in, start)
	fmt.Fprintf(b, "%s%s -> %s;\n", in, start, id(m.Initial))
	for i := range m.States {
		s := &m.States[i]
		lines := []string{s.Name}
		if s.Task != nil {
			lines = append(lines, compiler.TaskLines(m, s.Task)...)
		}
		attrs := "label=" + quoteLines(lines)
		if s.Final {
			attrs += `, shape=doublecircle, style=filled, fillcolor="#e6fffa", color="#2c7a7b"`
		} else if s.Task != nil {
			attrs += `, fillcolor="#ebf4ff"`
		}
		fmt.Fprintf(b, "%s%s [%s];\n", in, id(i), attrs)
	}
	for i := range m.States {
		s := &m.States[i]
		for _, row := range s.On {
			for k := range row.Candidates {
				t := &row.Candidates[k]
				attrs := "label=" + quoteLines(compiler.EdgeLabel(m, row.Event, t))
				if row.Event == ir.EventError {
					attrs += `, color="#c53030", fontcolor="#c53030"`
				}
				fmt.Fprintf(b, "%s%s -> %s [%s];\n", in, id(i), id(t.Target), attrs)
			}
		}
		for k := range s.Timers {
			t := &s.Timers[k]
			fmt.Fprintf(b, "%s%s -> %s [label=%s, style=dashed];\n", in, id(i), id(t.Target), quoteLines(compiler.TimerLabel(m, t)))
		}
	}
}

// quote makes a DOT quoted string: backslashes and quotes escaped, line
// breaks written as \n, and an "&" that would begin an HTML entity as
// "&amp;", since Graphviz reads entities in every label (a string
// literal "&lt;" would be drawn "<").
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\', '"':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '&':
			if compiler.StartsEntity(s[i+1:]) {
				b.WriteString("&amp;")
			} else {
				b.WriteByte(c)
			}
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// quoteLines joins lines with centred line breaks.
func quoteLines(lines []string) string {
	q := make([]string, len(lines))
	for i, l := range lines {
		q[i] = strings.TrimSuffix(strings.TrimPrefix(quote(l), `"`), `"`)
	}
	return `"` + strings.Join(q, `\n`) + `"`
}
