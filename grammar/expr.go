package grammar

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// ExprKind says which form an Expr node has.
type ExprKind uint8

// The expression forms.
const (
	ExprValue   ExprKind = iota + 1 // a literal: Value
	ExprField                       // a context field: Name
	ExprPayload                     // event.Name
	ExprParen                       // ( X )
	ExprUnary                       // Op X
	ExprBinary                      // X Op Y
)

// Expr is an expression node. Expressions are parsed by precedence
// climbing (Parse below) rather than by participle's reflective engine:
// they are most of a file's tokens, and a flat loop is many times faster
// than one struct level per precedence level. The grammar it accepts is
// the Expr section of grammar.ebnf; a test keeps the two in step.
type Expr struct {
	Kind  ExprKind
	Pos   lexer.Position // first token
	End   lexer.Position // just after the last token
	Op    string         // ExprUnary, ExprBinary
	Value *Value         // ExprValue
	Name  *Name          // ExprField, ExprPayload
	X, Y  *Expr          // operands
}

// MaxOperators bounds the operators in one expression, so that a
// megabyte-long expression is a clear error and not a deep tree.
const MaxOperators = 10000

// Precedence of the binary operators, lowest first.
var precedence = map[string]int{
	"||": 1,
	"&&": 2,
	"==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
	"+": 4, "-": 4,
	"*": 5, "/": 5, "%": 5,
}

type exprParser struct {
	lex       *lexer.PeekingLexer
	operators int
}

// Parse implements participle.Parseable.
func (e *Expr) Parse(lex *lexer.PeekingLexer) error {
	p := exprParser{lex: lex}
	t := lex.Peek()
	if !startsOperand(t) {
		return participle.NextMatch
	}
	x, err := p.binary(1)
	if err != nil {
		return err
	}
	*e = *x
	return nil
}

func startsOperand(t *lexer.Token) bool {
	switch t.Type {
	case Ident, Int, Float, Duration, String:
		return true
	case Keyword:
		return t.Value == "event" || t.Value == "true" || t.Value == "false"
	case Punct:
		return t.Value == "(" || t.Value == "!" || t.Value == "-"
	}
	return false
}

func unexpected(t *lexer.Token, expect string) error {
	return &participle.UnexpectedTokenError{Unexpected: *t, Expect: expect}
}

func (p *exprParser) count(t *lexer.Token) error {
	p.operators++
	if p.operators > MaxOperators {
		return &Error{Pos: t.Pos, Msg: "expression too long (more than 10000 operators)"}
	}
	return nil
}

// binary parses operands joined by operators of precedence >= min.
func (p *exprParser) binary(min int) (*Expr, error) {
	x, err := p.unary()
	if err != nil {
		return nil, err
	}
	for {
		t := p.lex.Peek()
		prec, ok := precedence[t.Value]
		if t.Type != Punct || !ok || prec < min {
			return x, nil
		}
		if err := p.count(t); err != nil {
			return nil, err
		}
		p.lex.Next()
		y, err := p.binary(prec + 1)
		if err != nil {
			return nil, err
		}
		x = &Expr{Kind: ExprBinary, Pos: x.Pos, End: y.End, Op: t.Value, X: x, Y: y}
	}
}

// unary parses prefix operators and a primary.
func (p *exprParser) unary() (*Expr, error) {
	t := p.lex.Peek()
	if t.Type == Punct && (t.Value == "!" || t.Value == "-") {
		if err := p.count(t); err != nil {
			return nil, err
		}
		op := *p.lex.Next()
		x, err := p.unary()
		if err != nil {
			return nil, err
		}
		return &Expr{Kind: ExprUnary, Pos: op.Pos, End: x.End, Op: op.Value, X: x}, nil
	}
	return p.primary()
}

const operandWords = `a literal, a name, "event", "(", "!" or "-"`

// primary parses a literal, a field, event.field or a parenthesised
// expression.
func (p *exprParser) primary() (*Expr, error) {
	t := p.lex.Next()
	switch t.Type {
	case Int, Float, Duration, String:
		v := &Value{Pos: t.Pos}
		text := t.Value
		switch t.Type {
		case Int:
			v.Int = &text
		case Float:
			v.Float = &text
		case Duration:
			v.Duration = &text
		default:
			v.String = &text
		}
		v.EndPos = TokenEnd(*t)
		return &Expr{Kind: ExprValue, Pos: t.Pos, End: v.EndPos, Value: v}, nil
	case Ident:
		end := TokenEnd(*t)
		return &Expr{Kind: ExprField, Pos: t.Pos, End: end, Name: &Name{Pos: t.Pos, Text: t.Value}}, nil
	case Keyword:
		switch t.Value {
		case "true", "false":
			text := t.Value
			end := TokenEnd(*t)
			return &Expr{Kind: ExprValue, Pos: t.Pos, End: end, Value: &Value{Pos: t.Pos, EndPos: end, Bool: &text}}, nil
		case "event":
			dot := p.lex.Next()
			if dot.Value != "." || dot.Type != Punct {
				return nil, unexpected(dot, `"." after "event" (event.field)`)
			}
			name := p.lex.Next()
			if name.Type != Ident {
				return nil, unexpected(name, "a payload field name after \"event.\"")
			}
			end := TokenEnd(*name)
			return &Expr{Kind: ExprPayload, Pos: t.Pos, End: end, Name: &Name{Pos: name.Pos, Text: name.Value}}, nil
		}
	case Punct:
		if t.Value == "(" {
			x, err := p.binary(1)
			if err != nil {
				return nil, err
			}
			closing := p.lex.Next()
			if closing.Value != ")" || closing.Type != Punct {
				return nil, unexpected(closing, `an operator or ")"`)
			}
			return &Expr{Kind: ExprParen, Pos: t.Pos, End: TokenEnd(*closing), X: x}, nil
		}
	}
	return nil, unexpected(t, operandWords)
}
