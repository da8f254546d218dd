package dsl

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/alecthomas/participle/v2/lexer"
)

// Pos is a place in a source file. Line and Column are 1-based; Column
// counts characters; Offset counts bytes from the start of the file.
type Pos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Offset int `json:"offset"`
}

// Range is a span of a file, End exclusive.
type Range struct {
	File  string
	Start Pos
	End   Pos
}

func posOf(p lexer.Position) Pos { return Pos{Line: p.Line, Column: p.Column, Offset: p.Offset} }

func rangeOf(file string, start, end lexer.Position) Range {
	return Range{File: file, Start: posOf(start), End: posOf(end)}
}

// String renders the start of r as FILE:LINE:COL.
func (r Range) String() string { return fmt.Sprintf("%s:%d:%d", r.File, r.Start.Line, r.Start.Column) }

// Severity says whether a diagnostic rejects the file.
type Severity int

// The severities.
const (
	Error Severity = iota + 1
	Warning
)

func (s Severity) String() string {
	if s == Error {
		return "error"
	}
	return "warning"
}

// Note is a related location attached to a diagnostic, such as the first
// of two duplicate declarations.
type Note struct {
	Range   Range
	Message string
}

// Diagnostic is one finding of the checker.
type Diagnostic struct {
	Severity   Severity
	Code       Code
	Message    string
	Range      Range
	Related    []Note
	Suggestion string // a near name for "did you mean", or ""
}

func (d Diagnostic) Error() string {
	return fmt.Sprintf("%s: %s[%s]: %s", d.Range, d.Severity, d.Code, d.Message)
}

// Diagnostics is a list of findings, in any order until sorted.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

// Count returns the number of errors and of warnings.
func (ds Diagnostics) Count() (errs, warnings int) {
	for _, d := range ds {
		if d.Severity == Error {
			errs++
		} else {
			warnings++
		}
	}
	return errs, warnings
}

// Sort orders diagnostics by file, then position, then code.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.Range.File != b.Range.File {
			return a.Range.File < b.Range.File
		}
		if a.Range.Start.Offset != b.Range.Start.Offset {
			return a.Range.Start.Offset < b.Range.Start.Offset
		}
		return a.Code < b.Code
	})
}

// Err returns nil when there are no errors, else an error listing them.
func (ds Diagnostics) Err() error {
	var msgs []string
	for _, d := range ds {
		if d.Severity == Error {
			msgs = append(msgs, d.Error())
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return errors.New(strings.Join(msgs, "\n"))
}
