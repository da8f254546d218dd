package dsl

import (
	"bytes"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
	"github.com/fsmc/fsmc/grammar"
)

// Format returns the canonical layout of a file (language.md
// "Formatting"), or the E001 diagnostic when it does not parse.
//
// The formatter only ever changes white space. The syntax tree decides
// where lines break and how deep they are indented: every declaration and
// item starts a line, blocks indent their contents by four spaces. The
// tokens themselves, comments included, are then written out in their
// original order with canonical spacing between them. So comments stay
// where they were, and re-lexing the output gives the same tokens.
//
// Two line breaks are the author's choice and are kept: before `set`,
// and between assignments of a `set` list; such continuation lines are
// indented once more than their item. Blank lines between items are kept,
// at most one, except right after `{` and right before `}`.
func Format(file string, src []byte) ([]byte, Diagnostics) {
	source, err := grammar.Parse(file, src)
	if err != nil {
		return nil, Diagnostics{syntaxDiagnostic(file, source, err)}
	}
	f := &formatter{src: source, layout: make([]tokenLayout, len(source.Tokens))}
	f.planFile(source.Tree)
	return f.emit(), nil
}

// tokenLayout says how a token is placed relative to the one before it.
type tokenLayout struct {
	newline bool // starts a line
	closing bool // a block's closing brace: comments before it indent one deeper
	indent  int  // depth when newline is set
}

type formatter struct {
	src    *grammar.Source
	layout []tokenLayout
}

// index returns the index of the token at pos.
func (f *formatter) index(pos lexer.Position) int { return f.src.TokenIndex(pos.Offset) }

// lastBefore returns the index of the last non-comment token before pos.
func (f *formatter) lastBefore(pos lexer.Position) int {
	i := f.index(pos) - 1
	for i > 0 && f.src.Tokens[i].Type == grammar.Comment {
		i--
	}
	return i
}

func (f *formatter) line(pos lexer.Position, indent int) {
	f.layout[f.index(pos)] = tokenLayout{newline: true, indent: indent}
}

// block lays out the closing brace of a block that ends just before
// next; an empty block stays `{}`.
func (f *formatter) block(next lexer.Position, indent int, empty bool) {
	i := f.lastBefore(next)
	if empty && f.src.Tokens[i-1].Value == "{" && f.src.Tokens[i-1].Type == grammar.Punct {
		return
	}
	f.layout[i] = tokenLayout{newline: true, closing: true, indent: indent}
}

func (f *formatter) planFile(file *grammar.File) {
	for _, m := range file.Machines {
		f.line(m.Pos, 0)
		for _, d := range m.Decls {
			switch {
			case d.Context != nil:
				f.line(d.Context.Pos, 1)
				for _, field := range d.Context.Fields {
					f.line(field.Pos, 2)
				}
				f.block(d.Context.EndPos, 1, len(d.Context.Fields) == 0)
			case d.Event != nil:
				f.line(d.Event.Pos, 1)
			case d.Action != nil:
				f.line(d.Action.Pos, 1)
			case d.State != nil:
				f.line(d.State.Pos, 1)
				if d.State.Body != nil {
					f.planItems(d.State.Body)
				}
			}
		}
		f.block(m.EndPos, 0, len(m.Decls) == 0)
	}
}

func (f *formatter) planItems(body *grammar.StateBody) {
	for _, item := range body.Items {
		switch item := item.(type) {
		case *grammar.Transition:
			f.line(item.Pos, 2)
			f.planSets(item.Sets, 2)
		case *grammar.Timer:
			f.line(item.Pos, 2)
			f.planSets(item.Sets, 2)
		case *grammar.Ignore:
			f.line(item.Pos, 2)
		case *grammar.Do:
			f.line(item.Pos, 2)
			if p := item.Policy; p != nil {
				for _, pi := range p.Items {
					f.line(pi.Pos, 3)
				}
				f.block(p.EndPos, 2, len(p.Items) == 0)
			}
		}
	}
	f.block(body.EndPos, 1, len(body.Items) == 0)
}

// planSets keeps the author's line breaks before `set` and between
// assignments. An assignment on a line of its own goes one deeper than
// the line `set` is on.
func (f *formatter) planSets(sets []*grammar.Assign, indent int) {
	continued := indent + 1
	for _, a := range sets {
		i := f.index(a.Pos)
		before := f.lastBefore(a.Pos) // `set` or `,`
		prev := f.lastBeforeIndex(before)
		if f.src.Tokens[before].Value == "set" {
			if f.src.Tokens[before].Pos.Line != grammar.TokenEnd(f.src.Tokens[prev]).Line {
				f.layout[before] = tokenLayout{newline: true, indent: indent + 1}
				continued = indent + 2
			}
		} else if f.src.Tokens[i].Pos.Line != f.src.Tokens[before].Pos.Line {
			f.layout[i] = tokenLayout{newline: true, indent: continued}
		}
	}
}

func (f *formatter) lastBeforeIndex(i int) int {
	i--
	for i > 0 && f.src.Tokens[i].Type == grammar.Comment {
		i--
	}
	return i
}

// emit writes the tokens and comments with the planned layout.
func (f *formatter) emit() []byte {
	var out bytes.Buffer
	out.Grow(len(f.src.Text) + len(f.src.Text)/8)
	tokens := f.src.Tokens
	text := f.src.Text
	indent := 0                  // depth of the current item
	started := false             // anything written yet
	mustBreak := false           // a line comment ended the line
	lastLine := 0                // source line where the last written token or comment ended
	lastEnd := 0                 // source offset where it ended
	var prev, prev2 *lexer.Token // last two non-comment tokens written
	afterOpen := false           // the last thing written is `{`
	afterComment := false        // the last thing written is a comment

	newline := func(depth int, pos lexer.Position, closing bool) {
		if !started {
			return
		}
		out.WriteByte('\n')
		if !afterOpen && !closing && bytes.Count(text[lastEnd:pos.Offset], []byte("\n")) >= 2 {
			out.WriteByte('\n')
		}
		out.WriteString(strings.Repeat("    ", depth))
	}
	for i := range tokens {
		t := &tokens[i]
		if t.Type == grammar.EOF {
			break
		}
		if t.Type == grammar.Comment {
			if started && t.Pos.Line == lastLine && !mustBreak {
				if afterComment || prev == nil || prev.Value != "(" { // (/* c */ n
					out.WriteByte(' ')
				}
			} else {
				newline(f.commentIndent(i, indent), t.Pos, false)
			}
			out.WriteString(commentText(t.Value))
			end := grammar.TokenEnd(*t)
			// What follows a comment stays on its line unless the
			// author broke the line there (a line comment always does).
			next := &tokens[i+1] // the EOF token at the latest
			// Comments before the first token end their line, but for
			// one followed by another on the same line (/* a */ /* b */).
			head := !started && !(next.Type == grammar.Comment && next.Pos.Line == end.Line)
			mustBreak = strings.HasPrefix(t.Value, "//") || head || next.Type != grammar.EOF && next.Pos.Line > end.Line
			started, afterComment = true, true
			lastLine, lastEnd = end.Line, end.Offset
			continue
		}
		l := f.layout[i]
		isClose := t.Type == grammar.Punct && t.Value == "}"
		switch {
		case l.newline:
			if isClose {
				afterOpen = false
			}
			newline(l.indent, t.Pos, l.closing)
			indent = l.indent
		case mustBreak:
			afterOpen = false
			newline(indent+1, t.Pos, false)
		case afterComment:
			// A block comment is set off by a space from what follows,
			// but for punctuation that closes or separates: /* c */ n, /* c */)
			if !hugsLeft(t) {
				out.WriteByte(' ')
			}
		case started && spaceBetween(prev2, prev, t):
			out.WriteByte(' ')
		}
		out.WriteString(t.Value)
		started, mustBreak, afterComment = true, false, false
		afterOpen = t.Type == grammar.Punct && t.Value == "{"
		prev2, prev = prev, t
		end := grammar.TokenEnd(*t)
		lastLine, lastEnd = end.Line, end.Offset
	}
	if started {
		out.WriteByte('\n')
	}
	return out.Bytes()
}

// commentText is a comment as fmt writes it: each of its lines without
// trailing blanks (a CR before a line break is one), so a block comment
// of a CRLF file keeps its lines, in LF.
func commentText(comment string) string {
	if !strings.ContainsAny(comment, " \t\r") {
		return comment
	}
	lines := strings.Split(comment, "\n")
	for i, line := range lines {
		lines[i] = strings.TrimRight(line, " \t\r")
	}
	return strings.Join(lines, "\n")
}

// commentIndent is the depth of a comment on its own line: that of the
// next token's line, one deeper before a closing brace, and a
// continuation inside an item.
func (f *formatter) commentIndent(i, current int) int {
	for j := i + 1; j < len(f.src.Tokens); j++ {
		t := f.src.Tokens[j]
		if t.Type == grammar.Comment {
			continue
		}
		if t.Type == grammar.EOF {
			return 0
		}
		l := f.layout[j]
		switch {
		case l.closing:
			return l.indent + 1
		case l.newline:
			return l.indent
		}
		return current + 1
	}
	return 0
}

// spaceBetween decides the spacing between two tokens on one line.
func spaceBetween(prev2, prev, cur *lexer.Token) bool {
	if prev == nil {
		return false
	}
	pv, cv := prev.Value, cur.Value
	if hugsLeft(cur) {
		return false
	}
	if cur.Type == grammar.Punct && cv == "}" {
		return pv != "{"
	}
	if prev.Type == grammar.Punct {
		switch pv {
		case "(", ".", "!":
			return false
		case "-":
			if isUnaryMinus(prev2) {
				return cv == "-" // - -b, not --b
			}
		}
	}
	if cur.Type == grammar.Punct && cv == "(" {
		return !(prev.Type == grammar.Ident || pv == "exponential" || pv == "constant" || pv == "linear")
	}
	return true
}

// hugsLeft reports whether t is punctuation written with no space
// before it, whatever precedes it: , ) : .
func hugsLeft(t *lexer.Token) bool {
	if t.Type != grammar.Punct {
		return false
	}
	switch t.Value {
	case ",", ")", ":", ".":
		return true
	}
	return false
}

// isUnaryMinus reports whether a `-` after before is a prefix operator.
func isUnaryMinus(before *lexer.Token) bool {
	if before == nil {
		return true
	}
	switch before.Type {
	case grammar.Ident, grammar.Int, grammar.Float, grammar.Duration, grammar.String:
		return false
	case grammar.Keyword:
		return before.Value != "true" && before.Value != "false"
	case grammar.Punct:
		return before.Value != ")"
	}
	return true
}
