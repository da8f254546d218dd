package grammar

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// The expression grammar as plain participle productions, one per
// precedence level. It is the reference for the hand-written precedence
// climber in expr.go: grammar.ebnf prints it, and TestExprMatchesReference
// and FuzzExprReference check that both accept the same inputs and group
// them the same way.

// OrExpr is a chain of ||.
type OrExpr struct {
	Left *AndExpr   `parser:"@@"`
	Rest []*AndExpr `parser:"(\"||\" @@)*"`
}

// AndExpr is a chain of &&.
type AndExpr struct {
	Left *CmpExpr   `parser:"@@"`
	Rest []*CmpExpr `parser:"(\"&&\" @@)*"`
}

// CmpExpr is a chain of comparisons.
type CmpExpr struct {
	Left *AddExpr `parser:"@@"`
	Rest []*CmpOp `parser:"@@*"`
}

// CmpOp is a comparison operator and its right operand.
type CmpOp struct {
	Op    string   `parser:"@(\"==\" | \"!=\" | \"<=\" | \">=\" | \"<\" | \">\")"`
	Right *AddExpr `parser:"@@"`
}

// AddExpr is a chain of + and -.
type AddExpr struct {
	Left *MulExpr `parser:"@@"`
	Rest []*AddOp `parser:"@@*"`
}

// AddOp is + or - and its right operand.
type AddOp struct {
	Op    string   `parser:"@(\"+\" | \"-\")"`
	Right *MulExpr `parser:"@@"`
}

// MulExpr is a chain of *, / and %.
type MulExpr struct {
	Left *UnaryExpr `parser:"@@"`
	Rest []*MulOp   `parser:"@@*"`
}

// MulOp is *, / or % and its right operand.
type MulOp struct {
	Op    string     `parser:"@(\"*\" | \"/\" | \"%\")"`
	Right *UnaryExpr `parser:"@@"`
}

// UnaryExpr is prefix operators and an operand.
type UnaryExpr struct {
	Ops     []string `parser:"@(\"!\" | \"-\")*"`
	Operand *Operand `parser:"@@"`
}

// Operand is a literal, event.field, a context field or a parenthesised
// expression.
type Operand struct {
	Value   *string `parser:"  @(Int | Float | Duration | String | \"true\" | \"false\")"`
	Payload *string `parser:"| \"event\" \".\" @Ident"`
	Field   *string `parser:"| @Ident"`
	Paren   *OrExpr `parser:"| \"(\" @@ \")\""`
}

// ExprReference parses a whole expression with the reference grammar.
var ExprReference = participle.MustBuild[OrExpr](
	participle.Lexer(lexDefinition{symbols}),
	participle.Elide("Comment"),
)

// ParseExprReference parses src as one expression with ExprReference.
func ParseExprReference(src []byte) (*OrExpr, error) {
	peek, err := peekAll(src)
	if err != nil {
		return nil, err
	}
	return ExprReference.ParseFromLexer(peek)
}

// ParseExpr parses src as one expression with the fast parser.
func ParseExpr(src []byte) (*Expr, error) {
	peek, err := peekAll(src)
	if err != nil {
		return nil, err
	}
	e := &Expr{}
	if err := e.Parse(peek); err != nil {
		if err == participle.NextMatch {
			return nil, unexpected(peek.Peek(), operandWords)
		}
		return nil, err
	}
	if t := peek.Peek(); !t.EOF() {
		return nil, unexpected(t, "an operator or end of expression")
	}
	return e, nil
}

// peekAll lexes src into participle's token buffer, failing on the
// first lexical error.
func peekAll(src []byte) (*lexer.PeekingLexer, error) {
	scan := newScanner("", src)
	peek, err := lexer.Upgrade(scan, Comment)
	if err == nil {
		err = scan.err
	}
	return peek, err
}

// EBNF is the whole grammar as participle prints it: the Reference file
// grammar, in which Expr is the hand-parsed expression, then Expr's
// reference productions. grammar.ebnf holds this text.
func EBNF() string {
	return Reference.String() + "\nExpr = OrExpr .\n" + ExprReference.String() + "\n"
}
