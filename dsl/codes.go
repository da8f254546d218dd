package dsl

// Code is a stable diagnostic code. A code never changes meaning once
// published. Each constant's comment shows a tiny file that triggers it.
type Code string

const (
	// SyntaxError: the file does not follow the grammar.
	//
	//	machine M { state A { on -> B } }   // E001: expected an event name
	SyntaxError Code = "E001"

	// Duplicate: a machine, state, event, action, context field or payload
	// field is declared twice.
	//
	//	event Paid
	//	event Paid            // E002
	Duplicate Code = "E002"

	// UndefinedState: a transition or timer targets an unknown state.
	//
	//	on Ship -> Shiped     // E003, did you mean "Shipped"?
	UndefinedState Code = "E003"

	// UndefinedEvent: `on` or `ignore` names an unknown event.
	//
	//	on Payed -> Done      // E004
	UndefinedEvent Code = "E004"

	// UndefinedAction: `do` names an unknown action.
	//
	//	do Chrage             // E005
	UndefinedAction Code = "E005"

	// UndefinedName: an expression or `set` names an unknown context field,
	// or a payload field the event does not have.
	//
	//	on Paid -> Done set tx = event.txid   // E006
	UndefinedName Code = "E006"

	// TypeMismatch: operand, guard, `set`, default or policy of the wrong
	// type.
	//
	//	on Go if amount + "1" > 0 -> Done     // E007
	TypeMismatch Code = "E007"

	// InitialState: a machine has no initial state, or more than one.
	//
	//	machine M { state A }                 // E008
	InitialState Code = "E008"

	// FinalWithBody: a final state has items.
	//
	//	final state Done { on Go -> A }       // E009
	FinalWithBody Code = "E009"

	// AmbiguousTransition: one state has two unguarded transitions for one
	// event.
	//
	//	on Go -> A
	//	on Go -> B            // E010
	AmbiguousTransition Code = "E010"

	// InvalidPolicy: a policy or duration value is invalid: negative, zero
	// factor, zero timeout, or an item given twice.
	//
	//	do Work { retry -1 }  // E011
	InvalidPolicy Code = "E011"

	// UnhandledEmit: a state's task may emit an event the state neither
	// handles nor ignores.
	//
	//	action Charge emits Paid, Declined
	//	state S { do Charge  on Paid -> Done }   // E012: Declined
	UnhandledEmit Code = "E012"

	// MisplacedDoneError: `on done` or `on error` in a state without a
	// task, or `on done` when the task's action declares `emits`.
	//
	//	state Idle { on done -> Next }        // E013
	MisplacedDoneError Code = "E013"

	// NoPayload: `event.x` where there is no payload: in a timer, in
	// `on done`, or for an event declared without fields.
	//
	//	after 5m -> Late set n = event.n      // E014
	NoPayload Code = "E014"

	// MultipleTasks: a state has more than one `do`.
	//
	//	state S { do A  do B }                // E015
	MultipleTasks Code = "E015"

	// BadEmits: an action's `emits` names an undeclared event, or done or
	// error.
	//
	//	action Charge emits Payed             // E016
	BadEmits Code = "E016"

	// Unreachable: a state cannot be reached from the initial state.
	//
	//	state Orphan { on Go -> Done }        // W101
	Unreachable Code = "W101"

	// NoPathToFinal: no path leads from this state to a final state.
	//
	//	state Loop { on Go -> Loop }          // W102
	NoPathToFinal Code = "W102"

	// Unused: an event or action is declared but never used.
	//
	//	event Never                           // W103
	Unused Code = "W103"

	// Shadowed: an earlier unguarded transition for the same event makes
	// this one unreachable.
	//
	//	on Go -> A
	//	on Go if n > 0 -> B                   // W104
	Shadowed Code = "W104"

	// DeadEnd: a non-final state with no transitions, timers or task.
	//
	//	state Stuck                           // W105
	DeadEnd Code = "W105"

	// NoErrorHandler: a state has a task but no `on error`.
	//
	//	state S { do Charge  on done -> Done } // W106
	NoErrorHandler Code = "W106"

	// NoFinalState: the machine has no final state.
	//
	//	machine Forever { initial state A { after 1s -> A } }  // W107
	NoFinalState Code = "W107"

	// SetTwice: a transition or timer sets one context field twice. The
	// assignments are simultaneous, so only the last one takes effect.
	//
	//	on Go -> A set n = 1, n = 2          // W108
	SetTwice Code = "W108"

	// ZeroDelayLoop: timers with no delay lead from a state back to it,
	// so an instance that enters the loop goes round it for ever without
	// waiting.
	//
	//	state A { after 0s -> B }  state B { after 0s -> A }  // W109
	ZeroDelayLoop Code = "W109"
)

// CodeInfo describes a code for documentation and SARIF rules.
type CodeInfo struct {
	Code     Code
	Name     string // a short PascalCase name
	Severity Severity
	Summary  string // one sentence
}

// Codes lists every code in order.
var Codes = []CodeInfo{
	{SyntaxError, "SyntaxError", Error, "The file does not follow the grammar."},
	{Duplicate, "DuplicateDeclaration", Error, "A machine, state, event, action, context field or payload field is declared twice."},
	{UndefinedState, "UndefinedState", Error, "A transition or timer targets a state that is not declared."},
	{UndefinedEvent, "UndefinedEvent", Error, "A transition or ignore names an event that is not declared."},
	{UndefinedAction, "UndefinedAction", Error, "A state's task names an action that is not declared."},
	{UndefinedName, "UndefinedName", Error, "An expression or set names a context field or payload field that does not exist."},
	{TypeMismatch, "TypeMismatch", Error, "A value has the wrong type for its operator, guard, field or policy."},
	{InitialState, "InitialState", Error, "A machine must have exactly one initial state."},
	{FinalWithBody, "FinalStateWithBody", Error, "A final state cannot have items."},
	{AmbiguousTransition, "AmbiguousTransition", Error, "A state has two transitions for one event without guards."},
	{InvalidPolicy, "InvalidPolicy", Error, "A policy or duration value is invalid (negative, zero factor, zero timeout, or given twice)."},
	{UnhandledEmit, "UnhandledEmit", Error, "A state's task may emit an event that the state neither handles nor ignores."},
	{MisplacedDoneError, "MisplacedDoneOrError", Error, "on done / on error in a state without a task, or on done for an action that declares emits."},
	{NoPayload, "NoPayload", Error, "event.x is used where there is no event payload (timers, done, events without fields)."},
	{MultipleTasks, "MultipleTasks", Error, "A state has more than one do."},
	{BadEmits, "BadEmits", Error, "An action's emits names an undeclared event, or done or error."},
	{Unreachable, "UnreachableState", Warning, "The state cannot be reached from the initial state."},
	{NoPathToFinal, "NoPathToFinal", Warning, "No path leads from this state to any final state."},
	{Unused, "UnusedDeclaration", Warning, "An event or action is declared but never used."},
	{Shadowed, "ShadowedTransition", Warning, "The transition can never be taken: an earlier one for the same event has no guard."},
	{DeadEnd, "DeadEnd", Warning, "A non-final state has no transitions, no timers and no task."},
	{NoErrorHandler, "NoErrorHandler", Warning, "A state with a task has no on error, so a permanent failure parks the instance."},
	{NoFinalState, "NoFinalState", Warning, "The machine has no final state."},
	{SetTwice, "SetTwice", Warning, "A transition or timer sets one context field twice, so only the last assignment takes effect."},
	{ZeroDelayLoop, "ZeroDelayLoop", Warning, "Timers with no delay lead from a state back to it, so an instance goes round the loop for ever without waiting."},
}

// Info returns the description of c.
func (c Code) Info() CodeInfo {
	for _, info := range Codes {
		if info.Code == c {
			return info
		}
	}
	return CodeInfo{Code: c, Name: string(c)}
}
