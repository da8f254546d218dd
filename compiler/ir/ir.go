// Package ir is the transition-table form of a checked machine: what the
// runtime executes and what every emitter (Go, DOT, Mermaid) reads.
//
//	dsl.Model -> compiler.Compile -> *ir.File -> Encode -> JSON
//	                                     ^                   |
//	                                     +------ Load <------+
//
// Everything is indexed by dense integer ids: events (0 is the built-in
// done, 1 the built-in error, then the declared events), states, actions
// and context fields. Each state lists, per event, its candidate
// transitions in source order; guards, set values and timer delays are
// typed stack bytecode (code.go) that Program.Eval runs on a
// caller-provided stack without allocating, except to concatenate
// strings.
//
// Load treats its input as untrusted: it decodes strictly and validates
// every index, name, type, policy value and instruction (abstract
// interpretation of the bytecode) before returning a machine, and checks
// the hashes. A Machine that Load or Compile returned is safe to run.
//
// The hash of a machine is the sha256 of its canonical form: its compact
// JSON with source positions left out, so that moving or commenting a
// machine's source does not make it a new version. The file's hash
// covers the format version and its machines' hashes.
//
// This package does not import the front end (grammar, dsl), so programs
// that only run machines do not link the parser; that is why it is a
// package of its own rather than a file of package compiler.
package ir

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FormatVersion is the IR format this package reads and writes.
const FormatVersion = 1

// The built-in events' ids.
const (
	EventDone  = 0
	EventError = 1
)

// File is the IR of one .fsm file.
type File struct {
	FormatVersion int        `json:"format_version"`
	Hash          string     `json:"hash"`
	Source        string     `json:"source,omitempty"` // the .fsm path it was compiled from
	Machines      []*Machine `json:"machines"`
}

// Machine is one compiled machine.
type Machine struct {
	Name    string   `json:"name"`
	Hash    string   `json:"hash"`
	Pos     *Pos     `json:"pos,omitempty"`
	Context []Field  `json:"context"`
	Events  []Event  `json:"events"`
	Actions []Action `json:"actions"`
	States  []State  `json:"states"`
	Initial int      `json:"initial"`

	maxStack int // the deepest stack any expression needs
}

// Pos is a place in the .fsm source.
type Pos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

func (p *Pos) String() string {
	if p == nil {
		return "?"
	}
	return fmt.Sprintf("%d:%d", p.Line, p.Column)
}

// Field is a context field or a payload field. Payload fields have no
// default.
type Field struct {
	Name    string `json:"name"`
	Type    Type   `json:"type"`
	Default *Value `json:"-"`
	Pos     *Pos   `json:"pos,omitempty"`
}

// Event is an event; Params is its payload.
type Event struct {
	Name    string  `json:"name"`
	Builtin bool    `json:"builtin,omitempty"`
	Params  []Field `json:"params"`
	Pos     *Pos    `json:"pos,omitempty"`
}

// Action is a handler the host implements; Emits lists event ids.
type Action struct {
	Name  string `json:"name"`
	Emits []int  `json:"emits"`
	Pos   *Pos   `json:"pos,omitempty"`
}

// State is a state and everything that happens in it.
type State struct {
	Name   string  `json:"name"`
	Final  bool    `json:"final,omitempty"`
	Pos    *Pos    `json:"pos,omitempty"`
	Task   *Task   `json:"task,omitempty"`
	On     []Row   `json:"on"`     // sorted by event id, one row per event
	Timers []Timer `json:"timers"` // in source order
	Ignore []int   `json:"ignore"` // event ids discarded quietly
}

// Candidates returns the transitions of s for event, in the order they
// are tried, or nil.
func (s *State) Candidates(event int) []Transition {
	rows := s.On
	lo, hi := 0, len(rows)
	for lo < hi {
		mid := (lo + hi) / 2
		if rows[mid].Event < event {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	if lo < len(rows) && rows[lo].Event == event {
		return rows[lo].Candidates
	}
	return nil
}

// Ignores reports whether s discards event quietly.
func (s *State) Ignores(event int) bool {
	for _, e := range s.Ignore {
		if e == event {
			return true
		}
	}
	return false
}

// Row is the candidate transitions of one state for one event, in the
// order they are tried.
type Row struct {
	Event      int          `json:"event"`
	Candidates []Transition `json:"candidates"`
}

// Transition is one candidate: taken when Guard is nil or true.
type Transition struct {
	Guard  *Expr    `json:"guard,omitempty"`
	Target int      `json:"target"`
	Sets   []Assign `json:"sets"`
	Pos    *Pos     `json:"pos,omitempty"`
}

// Timer fires Delay after the state is entered, unless it is left first.
type Timer struct {
	Delay  Expr     `json:"delay"`
	Target int      `json:"target"`
	Sets   []Assign `json:"sets"`
	Pos    *Pos     `json:"pos,omitempty"`
}

// Assign sets context field Field to Value; all of a transition's
// assignments are evaluated first, then applied together.
type Assign struct {
	Field int  `json:"field"`
	Value Expr `json:"value"`
}

// Task is a state's `do`: the action and its retry policy.
type Task struct {
	Action  int      `json:"action"`
	Timeout Duration `json:"timeout"`
	Retry   int      `json:"retry"`
	Backoff Backoff  `json:"backoff"`
	Jitter  string   `json:"jitter"` // none, full or equal
	Pos     *Pos     `json:"pos,omitempty"`
}

// Backoff is the delay before retry n (1, 2, ...): constant: Initial;
// linear: Initial + (n-1)*Step; exponential: Initial * Factor^(n-1);
// each capped at Max when Max > 0.
type Backoff struct {
	Kind    string   `json:"kind"` // constant, linear or exponential
	Initial Duration `json:"initial"`
	Step    Duration `json:"step,omitempty"`
	Factor  float64  `json:"factor,omitempty"`
	Max     Duration `json:"max,omitempty"`
}

// Delay returns the backoff before retry n (n >= 1), before jitter.
func (b Backoff) Delay(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	var d float64
	switch b.Kind {
	case "constant":
		d = float64(b.Initial)
	case "linear":
		d = float64(b.Initial) + float64(n-1)*float64(b.Step)
	default:
		d = float64(b.Initial)
		for i := 1; i < n && (b.Max <= 0 || d < float64(b.Max)) && d < 1<<62; i++ {
			d *= b.Factor
		}
	}
	if b.Max > 0 && d > float64(b.Max) {
		d = float64(b.Max)
	}
	if d > 1<<62 {
		d = 1 << 62
	}
	return time.Duration(d)
}

// Expr is a typed expression: bytecode, plus its source text for
// diagrams and messages.
type Expr struct {
	Type Type    `json:"type"`
	Code []Instr `json:"code"`
	Src  string  `json:"src"`
	Pos  *Pos    `json:"pos,omitempty"`
}

// Type is a value type.
type Type uint8

// The value types.
const (
	TypeInvalid Type = iota
	TypeInt
	TypeFloat
	TypeString
	TypeBool
	TypeDuration
)

var typeNames = [...]string{"invalid", "int", "float", "string", "bool", "duration"}

func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "type(" + strconv.Itoa(int(t)) + ")"
}

// MarshalText implements encoding.TextMarshaler.
func (t Type) MarshalText() ([]byte, error) {
	if t == TypeInvalid || int(t) >= len(typeNames) {
		return nil, fmt.Errorf("invalid type %d", t)
	}
	return []byte(typeNames[t]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *Type) UnmarshalText(b []byte) error {
	for i, n := range typeNames {
		if i > 0 && n == string(b) {
			*t = Type(i)
			return nil
		}
	}
	return fmt.Errorf("unknown type %q (want int, float, string, bool or duration)", b)
}

// TypeNamed returns the type called name, or TypeInvalid.
func TypeNamed(name string) Type {
	var t Type
	if t.UnmarshalText([]byte(name)) != nil {
		return TypeInvalid
	}
	return t
}

// Duration is a time.Duration written as Go writes it ("1m30s").
type Duration time.Duration

// MarshalText implements encoding.TextMarshaler.
func (d Duration) MarshalText() ([]byte, error) { return []byte(FormatDuration(time.Duration(d))), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q", b)
	}
	*d = Duration(v)
	return nil
}

// Value is a runtime value. Int, Bool (0 or 1) and Duration
// (nanoseconds) live in I, Float in F, String in S.
type Value struct {
	T Type
	I int64
	F float64
	S string
}

// Zero returns the zero value of t.
func Zero(t Type) Value { return Value{T: t} }

// Equal reports whether two values are the same.
func (v Value) Equal(w Value) bool {
	return v.T == w.T && v.I == w.I && v.S == w.S && (v.F == w.F || v.F != v.F && w.F != w.F)
}

// String renders v as a .fsm literal.
func (v Value) String() string {
	switch v.T {
	case TypeInt:
		return strconv.FormatInt(v.I, 10)
	case TypeFloat:
		// A float keeps its dot, as a .fsm float literal does (1.0, not
		// the int-looking 1).
		s := strconv.FormatFloat(v.F, 'g', -1, 64)
		if !strings.ContainsAny(s, ".eIN") {
			s += ".0"
		}
		return s
	case TypeString:
		return strconv.Quote(v.S)
	case TypeBool:
		return strconv.FormatBool(v.I != 0)
	case TypeDuration:
		return FormatDuration(time.Duration(v.I))
	}
	return "invalid"
}

// FormatDuration writes d as a .fsm duration: Go's form without zero
// trailing units (1h30m, not 1h30m0s).
func FormatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
