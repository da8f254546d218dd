// Package mermaid draws IR machines as Mermaid stateDiagram-v2, for
// Markdown pages that render Mermaid (GitHub, GitLab, many wikis).
//
//	*ir.File -> Write -> stateDiagram-v2 text
//
// States get generated ids (s0, s1, ... or m0_s0 with several machines)
// and their names as display text, so no state name can collide with
// Mermaid's keywords. Labels are written as they are, except for what
// Mermaid 11 misreads in state diagram labels (found by rendering them in
// a browser): it reads backslash escapes, so backslashes are doubled; a
// ";" ends the statement, so it is written as U+037E, which looks the
// same; "<" followed by a letter, "/", "!" or "?" is taken as an HTML
// tag, and "%%" starts a comment or (as "%%{") a directive that runs to
// the end of the diagram, so a zero-width space follows the "<" or the
// first "%"; the labels are HTML, where "&lt;" or "&#38;" is an entity,
// so a zero-width space follows an "&" that a letter or "#" follows; and
// line breaks become spaces.
// Its #code; entities are not decoded there, so they are no help.
// Several machines are drawn as one composite state each. Mermaid has no
// dashed or coloured transitions, so timers read "after ..." and error
// edges "error".
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

// escape rewrites what Mermaid would misread (see the package doc).
func escape(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case ';':
			b.WriteRune('\u037e')
		case '\n', '\r':
			b.WriteByte(' ')
		case '<':
			b.WriteByte('<')
			if next := s[i+1:]; next != "" && (isLetter(next[0]) || strings.ContainsRune("/!?", rune(next[0]))) {
				b.WriteRune('\u200b')
			}
		case '%':
			b.WriteByte('%')
			if strings.HasPrefix(s[i+1:], "%") {
				b.WriteRune('\u200b')
			}
		case '&':
			b.WriteByte('&')
			if compiler.StartsEntity(s[i+1:]) {
				b.WriteRune('\u200b')
			}
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// label joins a transition's label lines on one line.
func label(lines []string) string { return escape(strings.Join(lines, " / ")) }
