package grammar

import "github.com/alecthomas/participle/v2/lexer"

// The syntax tree. Every node records Pos (its first token) and EndPos
// (the token after it); Source.End turns EndPos into the end of the node's
// last token. Struct tags are the grammar: grammar.ebnf is generated from
// them.

// File is a whole .fsm file: any number of machines.
type File struct {
	Pos      lexer.Position
	EndPos   lexer.Position
	Machines []*Machine `parser:"@@*"`
}

// Machine is `parser:"machine Name { decl... }"`.
type Machine struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Name   *Name   `parser:"\"machine\" @@ \"{\""`
	Decls  []*Decl `parser:"@@* \"}\""`
}

// Decl is one declaration inside a machine.
type Decl struct {
	State   *StateDecl    `parser:"  @@"`
	Event   *EventDecl    `parser:"| @@"`
	Action  *ActionDecl   `parser:"| @@"`
	Context *ContextBlock `parser:"| @@"`
}

// Name is an identifier with its position.
type Name struct {
	Pos  lexer.Position
	Text string `parser:"@Ident"`
}

// EventName names an event: a declared one, or the built-in done and error.
type EventName struct {
	Pos  lexer.Position
	Text string `parser:"@(Ident | \"done\" | \"error\")"`
}

// ContextBlock is `parser:"context { field... }"`.
type ContextBlock struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Fields []*Field `parser:"\"context\" \"{\" @@* \"}\""`
}

// Field is `parser:"name: type [= literal]"`.
type Field struct {
	Pos     lexer.Position
	EndPos  lexer.Position
	Name    *Name    `parser:"@@ \":\""`
	Type    *Type    `parser:"@@"`
	Default *Literal `parser:"(\"=\" @@)?"`
}

// Type is one of the five value types.
type Type struct {
	Pos  lexer.Position
	Name string `parser:"@(\"int\" | \"float\" | \"string\" | \"bool\" | \"duration\")"`
}

// EventDecl is `parser:"event Name"` or `parser:"event Name(field: type, ...)"`.
type EventDecl struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Name   *Name    `parser:"\"event\" @@"`
	Params []*Param `parser:"(\"(\" (@@ (\",\" @@)*)? \")\")?"`
}

// Param is one payload field of an event.
type Param struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Name   *Name `parser:"@@ \":\""`
	Type   *Type `parser:"@@"`
}

// ActionDecl is `parser:"action Name [emits E1, E2]"`.
type ActionDecl struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Name   *Name        `parser:"\"action\" @@"`
	Emits  []*EventName `parser:"(\"emits\" @@ (\",\" @@)*)?"`
}

// StateDecl is `parser:"[initial] [final] state Name [{ item... }]"`.
type StateDecl struct {
	Pos     lexer.Position
	EndPos  lexer.Position
	Initial bool       `parser:"@\"initial\"?"`
	Final   bool       `parser:"@\"final\"?"`
	Name    *Name      `parser:"\"state\" @@"`
	Body    *StateBody `parser:"@@?"`
}

// StateBody is the braces of a state and the items inside them.
type StateBody struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Items  []StateItem `parser:"\"{\" @@* \"}\""`
}

// StateItem is one item of a state body: *Transition, *Timer, *Do or
// *Ignore. It is an interface so that the production Parser can parse
// items by hand (items.go) while Reference builds them from the struct
// tags of the four types.
type StateItem interface{ stateItem() }

func (*Transition) stateItem() {}
func (*Timer) stateItem()      {}
func (*Do) stateItem()         {}
func (*Ignore) stateItem()     {}

// Do is the state's task: `parser:"do Action [{ policy... }]"`.
type Do struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Action *Name        `parser:"\"do\" @@"`
	Policy *PolicyBlock `parser:"@@?"`
}

// PolicyBlock is the braces after `parser:"do Action"`.
type PolicyBlock struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Items  []*PolicyItem `parser:"\"{\" @@* \"}\""`
}

// PolicyItem is one of timeout, retry, backoff and jitter.
type PolicyItem struct {
	Pos     lexer.Position
	EndPos  lexer.Position
	Timeout *Literal `parser:"  \"timeout\" @@"`
	Retry   *Literal `parser:"| \"retry\" @@"`
	Backoff *Backoff `parser:"| \"backoff\" @@"`
	Jitter  *string  `parser:"| \"jitter\" @(\"none\" | \"full\" | \"equal\")"`
}

// Backoff is the delay schedule between retries.
type Backoff struct {
	Pos         lexer.Position
	Constant    *Literal            `parser:"  \"constant\" \"(\" @@ \")\""`
	Linear      *LinearBackoff      `parser:"| \"linear\" \"(\" @@ \")\""`
	Exponential *ExponentialBackoff `parser:"| \"exponential\" \"(\" @@ \")\""`
}

// LinearBackoff is `parser:"initial: D, step: D [, max: D]"`.
type LinearBackoff struct {
	Initial *Literal `parser:"\"initial\" \":\" @@"`
	Step    *Literal `parser:"\",\" \"step\" \":\" @@"`
	Max     *Literal `parser:"(\",\" \"max\" \":\" @@)?"`
}

// ExponentialBackoff is `parser:"initial: D, factor: F [, max: D]"`.
type ExponentialBackoff struct {
	Initial *Literal `parser:"\"initial\" \":\" @@"`
	Factor  *Literal `parser:"\",\" \"factor\" \":\" @@"`
	Max     *Literal `parser:"(\",\" \"max\" \":\" @@)?"`
}

// Transition is `parser:"on Event [if Expr] -> Target [set f = Expr, ...]"`.
type Transition struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Event  *EventName `parser:"\"on\" @@"`
	Guard  *Expr      `parser:"(\"if\" @@)?"`
	Target *Name      `parser:"\"->\" @@"`
	Sets   []*Assign  `parser:"(\"set\" @@ (\",\" @@)*)?"`
}

// Timer is `parser:"after Expr -> Target [set f = Expr, ...]"`.
type Timer struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Delay  *Expr     `parser:"\"after\" @@"`
	Target *Name     `parser:"\"->\" @@"`
	Sets   []*Assign `parser:"(\"set\" @@ (\",\" @@)*)?"`
}

// Ignore is `parser:"ignore E1, E2, ..."`.
type Ignore struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Events []*EventName `parser:"\"ignore\" @@ (\",\" @@)*"`
}

// Assign is one `parser:"field = Expr"` of a set clause.
type Assign struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Field  *Name `parser:"@@ \"=\""`
	Value  *Expr `parser:"@@"`
}

// Literal is a constant, optionally negated: defaults and policy values.
type Literal struct {
	Pos    lexer.Position
	EndPos lexer.Position
	Neg    bool   `parser:"@\"-\"?"`
	Value  *Value `parser:"@@"`
}

// Value is an unsigned constant of one of the five types.
type Value struct {
	Pos      lexer.Position
	EndPos   lexer.Position
	Int      *string `parser:"  @Int"`
	Float    *string `parser:"| @Float"`
	Duration *string `parser:"| @Duration"`
	String   *string `parser:"| @String"`
	Bool     *string `parser:"| @(\"true\" | \"false\")"`
}
