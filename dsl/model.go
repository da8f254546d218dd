package dsl

import "time"

// Type is the type of a context field, payload field or expression.
type Type uint8

// The value types. Invalid marks an expression whose type could not be
// determined because of an earlier error; it matches everything, so one
// mistake is reported once.
const (
	Invalid Type = iota
	Int
	Float
	String
	Bool
	Duration
)

var typeNames = [...]string{"invalid", "int", "float", "string", "bool", "duration"}

func (t Type) String() string { return typeNames[t] }

// TypeNamed returns the type with the given name, or Invalid.
func TypeNamed(name string) Type {
	for i, n := range typeNames {
		if n == name && i > 0 {
			return Type(i)
		}
	}
	return Invalid
}

// Value is a constant of one type. Int, Bool (0/1) and Duration
// (nanoseconds) live in I, Float in F, String in S.
type Value struct {
	Type Type
	I    int64
	F    float64
	S    string
}

// Zero returns the zero value of t.
func Zero(t Type) Value { return Value{Type: t} }

// Model is a checked file: its machines with every name resolved and
// every expression typed.
type Model struct {
	File     string
	Machines []*Machine
}

// Machine is a checked machine. Slices keep declaration order; the Index
// field of each element is its position in its slice.
type Machine struct {
	Name    string
	Range   Range // the name
	Context []*Field
	Events  []*Event // declared events
	Actions []*Action
	States  []*State
	Initial *State
	Done    *Event // the built-in done event (no payload)
	Error   *Event // the built-in error event (message, attempts)

	fields  map[string]*Field
	events  map[string]*Event
	actions map[string]*Action
	states  map[string]*State
}

// Field is a context field or an event payload field.
type Field struct {
	Name    string
	Type    Type
	Default Value
	Index   int
	Range   Range
}

// Event is a declared or built-in event.
type Event struct {
	Name    string
	Params  []*Field
	Builtin bool
	Index   int
	Range   Range

	params map[string]*Field
}

// Param returns the payload field called name, or nil.
func (e *Event) Param(name string) *Field { return e.params[name] }

// Action is a handler the host implements.
type Action struct {
	Name  string
	Emits []*Event
	Index int
	Range Range
}

// State is a checked state.
type State struct {
	Name        string
	Initial     bool
	Final       bool
	Index       int
	Range       Range // the name
	Task        *Task
	Transitions []*Transition // in source order
	Timers      []*Timer      // in source order
	Ignores     []*Event

	written int      // on and after items in the source, checked or not
	targets []*State // every resolved target, also of items with other errors
}

// BackoffKind is the shape of the retry delay schedule.
type BackoffKind uint8

// The backoff kinds.
const (
	Exponential BackoffKind = iota
	Constant
	Linear
)

func (k BackoffKind) String() string {
	return [...]string{"exponential", "constant", "linear"}[k]
}

// Backoff is the delay before retry n (n = 1, 2, ...):
// constant: Initial; linear: Initial + (n-1)*Step; exponential:
// Initial * Factor^(n-1); each capped at Max when Max > 0.
type Backoff struct {
	Kind    BackoffKind
	Initial time.Duration
	Step    time.Duration
	Factor  float64
	Max     time.Duration
}

// Jitter randomises retry delays.
type Jitter uint8

// The jitter modes.
const (
	JitterFull Jitter = iota
	JitterNone
	JitterEqual
)

func (j Jitter) String() string { return [...]string{"full", "none", "equal"}[j] }

// Task is a state's `do`, with its policy (defaults filled in).
type Task struct {
	Action  *Action // nil when the action is undefined
	Timeout time.Duration
	Retry   int
	Backoff Backoff
	Jitter  Jitter
	Range   Range // the `do` keyword through the action name
}

// The policy defaults of language.md.
const (
	DefaultTimeout = time.Minute
	DefaultRetry   = 0
)

// DefaultBackoff is exponential(initial: 1s, factor: 2, max: 5m).
var DefaultBackoff = Backoff{Kind: Exponential, Initial: time.Second, Factor: 2, Max: 5 * time.Minute}

// Transition is `on Event [if Guard] -> Target [set ...]`.
type Transition struct {
	Event  *Event
	Guard  Expr // nil when unguarded
	Target *State
	Sets   []*Assign
	Range  Range
}

// Timer is `after Delay -> Target [set ...]`.
type Timer struct {
	Delay  Expr
	Target *State
	Sets   []*Assign
	Range  Range
}

// Assign is one `field = value` of a set clause.
type Assign struct {
	Field *Field
	Value Expr
	Range Range
}

// Expr is a typed expression.
type Expr interface {
	Type() Type
	Span() Range
}

// Literal is a constant.
type Literal struct {
	Value Value
	Range Range
}

// FieldRef reads a context field.
type FieldRef struct {
	Field *Field
	Range Range
}

// PayloadRef reads a payload field of the event being handled.
type PayloadRef struct {
	Event *Event
	Param *Field
	Range Range
}

// Unary is `!X` or `-X`.
type Unary struct {
	Op    string
	X     Expr
	T     Type
	Range Range
}

// Binary is `X Op Y`.
type Binary struct {
	Op    string
	X, Y  Expr
	T     Type
	Range Range
}

func (e *Literal) Type() Type    { return e.Value.Type }
func (e *FieldRef) Type() Type   { return e.Field.Type }
func (e *PayloadRef) Type() Type { return e.Param.Type }
func (e *Unary) Type() Type      { return e.T }
func (e *Binary) Type() Type     { return e.T }

func (e *Literal) Span() Range    { return e.Range }
func (e *FieldRef) Span() Range   { return e.Range }
func (e *PayloadRef) Span() Range { return e.Range }
func (e *Unary) Span() Range      { return e.Range }
func (e *Binary) Span() Range     { return e.Range }

// invalidExpr stands for an expression that could not be checked.
type invalidExpr struct{ Range Range }

func (e *invalidExpr) Type() Type  { return Invalid }
func (e *invalidExpr) Span() Range { return e.Range }

// State returns the state called name, or nil.
func (m *Machine) State(name string) *State { return m.states[name] }

// Event returns the declared or built-in event called name, or nil.
func (m *Machine) Event(name string) *Event {
	switch name {
	case "done":
		return m.Done
	case "error":
		return m.Error
	}
	return m.events[name]
}

// Action returns the action called name, or nil.
func (m *Machine) Action(name string) *Action { return m.actions[name] }

// Field returns the context field called name, or nil.
func (m *Machine) Field(name string) *Field { return m.fields[name] }

// Machine returns the machine called name, or nil.
func (f *Model) Machine(name string) *Machine {
	for _, m := range f.Machines {
		if m.Name == name {
			return m
		}
	}
	return nil
}
