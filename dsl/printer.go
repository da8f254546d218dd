package dsl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fsmc/fsmc/internal/cells"
)

// Report is what the printers render: diagnostics and the sources they
// point into (by file name), for the snippets of the text format, and
// the paths that could not be read. A report with unreadable paths is
// not the whole answer, and the machine-read formats say so: json lists
// them, sarif marks its run as not successful, github annotates them.
// (The text format leaves them to the command, which names them on
// stderr.)
type Report struct {
	Diagnostics Diagnostics
	Sources     map[string][]byte
	Unreadable  []Unreadable
}

// Unreadable is a path that was given or found and could not be read
// (Path is empty when the failure names no one path).
type Unreadable struct {
	Path    string `json:"path"`
	Message string `json:"message"`
}

// Formats lists the names accepted by Write.
var Formats = []string{"text", "json", "sarif", "github"}

// Write renders r in the named format. color applies to text only.
func Write(w io.Writer, format string, r *Report, color bool, version string) error {
	switch format {
	case "text":
		return WriteText(w, r, color)
	case "json":
		return WriteJSON(w, r)
	case "sarif":
		return WriteSARIF(w, r, version)
	case "github":
		return WriteGitHub(w, r)
	}
	return fmt.Errorf("unknown format %q (want text, json, sarif or github)", format)
}

// ANSI styles for the text format.
type palette struct{ bold, red, yellow, blue, green, reset string }

var (
	plain   = palette{}
	colored = palette{bold: "\x1b[1m", red: "\x1b[1;31m", yellow: "\x1b[1;33m", blue: "\x1b[1;34m", green: "\x1b[1;32m", reset: "\x1b[0m"}
)

// WriteText renders each diagnostic as
//
//	FILE:LINE:COL: error[E003]: undefined state "Shiped"
//	   12 |         on Ship -> Shiped
//	      |                    ^^^^^^
//	   note: FILE:3:5: ...
//	   help: did you mean "Shipped"?
//
// followed by a count of errors and warnings.
func WriteText(w io.Writer, r *Report, color bool) error {
	p := plain
	if color {
		p = colored
	}
	var b bytes.Buffer
	var shown snippetLine
	for _, d := range r.Diagnostics {
		sevColor := p.red
		if d.Severity == Warning {
			sevColor = p.yellow
		}
		fmt.Fprintf(&b, "%s%s:%d:%d:%s %s%s[%s]%s: %s%s%s\n", p.bold, terminalSafe(d.Range.File), d.Range.Start.Line, d.Range.Start.Column, p.reset,
			sevColor, d.Severity, d.Code, p.reset, p.bold, terminalSafe(d.Message), p.reset)
		writeSnippet(&b, &shown, r.Sources[d.Range.File], d.Range, p, sevColor)
		for _, n := range d.Related {
			fmt.Fprintf(&b, "   %snote%s: %s: %s\n", p.blue, p.reset, terminalSafe(n.Range.String()), terminalSafe(n.Message))
		}
		if d.Suggestion != "" {
			fmt.Fprintf(&b, "   %shelp%s: did you mean %q?\n", p.green, p.reset, d.Suggestion)
		}
		b.WriteByte('\n')
	}
	if errs, warns := r.Diagnostics.Count(); errs+warns > 0 {
		fmt.Fprintf(&b, "%s%s%s\n", p.bold, plural(errs, "error")+", "+plural(warns, "warning"), p.reset)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// terminalSafe replaces the control characters of s (a name from the
// source may hold escape sequences) with U+FFFD, so that a diagnostic
// cannot drive the terminal it is printed on.
func terminalSafe(s string) string {
	if strings.IndexFunc(s, unicode.IsControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return '\uFFFD'
		}
		return r
	}, s)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// snippetWidth is how many characters of a long line the snippet shows.
const snippetWidth = 120

// snippetLine is the source line a snippet showed, as characters, kept
// for the next diagnostic: thousands on one long line would otherwise
// each find and decode it again.
type snippetLine struct {
	file  string
	line  int
	runes []rune
}

// read returns the characters of r's first line in src.
func (l *snippetLine) read(src []byte, r Range) ([]rune, bool) {
	if l.runes != nil && l.file == r.File && l.line == r.Start.Line {
		return l.runes, true
	}
	lineStart := r.Start.Offset - 1
	for lineStart >= 0 && lineStart < len(src) && src[lineStart] != '\n' {
		lineStart--
	}
	lineStart++
	if lineStart == 0 && bytes.HasPrefix(src, []byte("\uFEFF")) {
		lineStart = 3 // a byte order mark is not on the line: columns count from after it
	}
	if lineStart > len(src) {
		return nil, false
	}
	lineEnd := bytes.IndexByte(src[lineStart:], '\n')
	if lineEnd < 0 {
		lineEnd = len(src)
	} else {
		lineEnd += lineStart
	}
	l.file, l.line, l.runes = r.File, r.Start.Line, []rune(string(src[lineStart:lineEnd]))
	return l.runes, true
}

// writeSnippet prints the source line of r and a caret line under the
// range (to the end of the line when the range spans lines), in the
// colour of the diagnostic's severity (caret). Tabs become four spaces,
// and characters that would garble a terminal are replaced.
func writeSnippet(b *bytes.Buffer, shown *snippetLine, src []byte, r Range, p palette, caret string) {
	if src == nil || r.Start.Line < 1 {
		return
	}
	line, ok := shown.read(src, r)
	if !ok {
		return
	}
	startCol := r.Start.Column - 1
	endCol := r.End.Column - 1
	if r.End.Line != r.Start.Line || endCol > len(line) {
		endCol = len(line)
	}
	if startCol > len(line) {
		startCol = len(line)
	}
	if endCol <= startCol {
		endCol = startCol + 1
	}
	// A window around the range for very long lines.
	from, to := 0, len(line)
	if len(line) > snippetWidth {
		from = max(0, startCol-snippetWidth/2)
		to = min(len(line), from+snippetWidth)
	}
	var text, marks strings.Builder
	if from > 0 {
		text.WriteString("...")
		marks.WriteString("   ")
	}
	for i := from; i < to; i++ {
		c := line[i]
		shown := string(c)
		switch {
		case c == '\t':
			shown = "    "
		case c == '\r':
			shown = " "
		case c == utf8.RuneError || !unicode.IsPrint(c):
			shown = "\uFFFD"
		}
		text.WriteString(shown)
		mark := " "
		if i >= startCol && i < endCol {
			mark = "^"
		}
		marks.WriteString(strings.Repeat(mark, cells.Width(shown)))
	}
	if to < len(line) {
		text.WriteString("...")
	}
	if startCol >= len(line) && startCol >= from {
		marks.WriteString("^")
	}
	gutter := fmt.Sprint(r.Start.Line)
	pad := strings.Repeat(" ", len(gutter))
	fmt.Fprintf(b, " %s%s |%s %s\n", p.blue, gutter, p.reset, strings.TrimRight(text.String(), " "))
	fmt.Fprintf(b, " %s%s |%s %s%s%s\n", p.blue, pad, p.reset, caret, strings.TrimRight(marks.String(), " "), p.reset)
}

// jsonDiagnostic is one element of the json format.
type jsonDiagnostic struct {
	jsonLocation
	Severity   string         `json:"severity"`
	Code       Code           `json:"code"`
	Message    string         `json:"message"`
	Related    []jsonLocation `json:"related"`
	Suggestion string         `json:"suggestion,omitempty"`
}

type jsonLocation struct {
	File      string `json:"file"`
	Line      int    `json:"line"`
	Column    int    `json:"column"`
	EndLine   int    `json:"end_line"`
	EndColumn int    `json:"end_column"`
	Message   string `json:"message,omitempty"`
}

func locationOf(r Range, msg string) jsonLocation {
	return jsonLocation{File: r.File, Line: r.Start.Line, Column: r.Start.Column, EndLine: r.End.Line, EndColumn: r.End.Column, Message: msg}
}

// WriteJSON renders {"diagnostics":[...]} on one line, with
// "unreadable":[{"path","message"}] after it when paths could not be
// read.
func WriteJSON(w io.Writer, r *Report) error {
	out := struct {
		Diagnostics []jsonDiagnostic `json:"diagnostics"`
		Unreadable  []Unreadable     `json:"unreadable,omitempty"`
	}{Diagnostics: []jsonDiagnostic{}, Unreadable: r.Unreadable}
	for _, d := range r.Diagnostics {
		jd := jsonDiagnostic{jsonLocation: locationOf(d.Range, ""), Severity: d.Severity.String(), Code: d.Code,
			Message: d.Message, Related: []jsonLocation{}, Suggestion: d.Suggestion}
		for _, n := range d.Related {
			jd.Related = append(jd.Related, locationOf(n.Range, n.Message))
		}
		out.Diagnostics = append(out.Diagnostics, jd)
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(out)
}

// WriteGitHub renders GitHub Actions workflow commands:
//
//	::error file=F,line=L,col=C,title=E003::message
//
// and, for a path that could not be read, ::error file=F,title=fsmc::message.
func WriteGitHub(w io.Writer, r *Report) error {
	var b bytes.Buffer
	for _, u := range r.Unreadable {
		file := ""
		if u.Path != "" {
			file = "file=" + githubProperty(u.Path) + ","
		}
		fmt.Fprintf(&b, "::error %stitle=fsmc::%s\n", file, githubData(u.Message))
	}
	for _, d := range r.Diagnostics {
		msg := d.Message
		if d.Suggestion != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", d.Suggestion)
		}
		fmt.Fprintf(&b, "::%s file=%s,line=%d,col=%d,title=%s::%s\n", d.Severity,
			githubProperty(d.Range.File), d.Range.Start.Line, d.Range.Start.Column, d.Code, githubData(msg))
	}
	_, err := w.Write(b.Bytes())
	return err
}

// githubData escapes a workflow command's message.
func githubData(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A").Replace(s)
}

// githubProperty escapes a workflow command's property value.
func githubProperty(s string) string {
	return strings.NewReplacer("%", "%25", "\r", "%0D", "\n", "%0A", ":", "%3A", ",", "%2C").Replace(s)
}
