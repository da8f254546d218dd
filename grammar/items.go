package grammar

import (
	"github.com/alecthomas/participle/v2"
	"github.com/alecthomas/participle/v2/lexer"
)

// Hand-written parsers for the items of a state body, which make up most
// of a machine:
//
//	StateItem   = Transition | Timer | Do | Ignore .
//	Transition  = "on" EventName ("if" Expr)? "->" Name ("set" Assign ("," Assign)*)? .
//	Timer       = "after" Expr "->" Name ("set" Assign ("," Assign)*)? .
//	Do          = "do" Name PolicyBlock? .
//	PolicyBlock = "{" PolicyItem* "}" .
//	Ignore      = "ignore" EventName ("," EventName)* .
//
// participle's reflective engine spends about a microsecond and ten
// allocations per token; these build the same nodes directly. They fill
// every field exactly as Reference does, Pos and EndPos included (EndPos
// is the raw token after the node, which may be a comment), and fail at
// the same token with the same message; TestItemsMatchReference and
// FuzzItemsMatchReference hold them to that.

// parseStateItem dispatches on the item's keyword.
func parseStateItem(lex *lexer.PeekingLexer) (StateItem, error) {
	t := lex.Peek()
	if t.Type != Keyword {
		return nil, participle.NextMatch
	}
	switch t.Value {
	case "on":
		return parseTransition(lex)
	case "after":
		return parseTimer(lex)
	case "do":
		return parseDo(lex)
	case "ignore":
		return parseIgnore(lex)
	}
	return nil, participle.NextMatch
}

// expect consumes a token with the given text or fails naming it.
func expect(lex *lexer.PeekingLexer, text string) error {
	if t := lex.Next(); t.Value != text || t.Type == String {
		return unexpected(t, `"`+text+`"`)
	}
	return nil
}

// eventName consumes a declared or built-in event name.
func eventName(lex *lexer.PeekingLexer) (*EventName, error) {
	t := lex.Next()
	if t.Type != Ident && !(t.Type == Keyword && (t.Value == "done" || t.Value == "error")) {
		return nil, unexpected(t, "an event name")
	}
	return &EventName{Pos: t.Pos, Text: t.Value}, nil
}

// name consumes an identifier.
func name(lex *lexer.PeekingLexer) (*Name, error) {
	t := lex.Next()
	if t.Type != Ident {
		return nil, unexpected(t, "a name")
	}
	return &Name{Pos: t.Pos, Text: t.Value}, nil
}

func parseTransition(lex *lexer.PeekingLexer) (*Transition, error) {
	t := &Transition{Pos: lex.Next().Pos}
	var err error
	if t.Event, err = eventName(lex); err != nil {
		return nil, err
	}
	if k := lex.Peek(); k.Type == Keyword && k.Value == "if" {
		lex.Next()
		guard, err := parseOperand(lex)
		if err != nil {
			return nil, err
		}
		t.Guard = guard
	}
	if t.Target, t.Sets, err = parseArrowTail(lex); err != nil {
		return nil, err
	}
	t.EndPos = lex.RawPeek().Pos
	return t, nil
}

func parseTimer(lex *lexer.PeekingLexer) (*Timer, error) {
	t := &Timer{Pos: lex.Next().Pos}
	delay, err := parseOperand(lex)
	if err != nil {
		return nil, err
	}
	t.Delay = delay
	if t.Target, t.Sets, err = parseArrowTail(lex); err != nil {
		return nil, err
	}
	t.EndPos = lex.RawPeek().Pos
	return t, nil
}

// parseOperand parses a required expression.
func parseOperand(lex *lexer.PeekingLexer) (*Expr, error) {
	e := &Expr{}
	if err := e.Parse(lex); err != nil {
		if err == participle.NextMatch {
			return nil, unexpected(lex.Peek(), "an expression")
		}
		return nil, err
	}
	return e, nil
}

// parseArrowTail parses `-> Target [set f = Expr, ...]`.
func parseArrowTail(lex *lexer.PeekingLexer) (*Name, []*Assign, error) {
	if err := expect(lex, "->"); err != nil {
		return nil, nil, err
	}
	target, err := name(lex)
	if err != nil {
		return nil, nil, err
	}
	if k := lex.Peek(); k.Type != Keyword || k.Value != "set" {
		return target, nil, nil
	}
	lex.Next()
	var sets []*Assign
	for {
		field := lex.Next()
		if field.Type != Ident {
			return nil, nil, unexpected(field, "a field name")
		}
		if err := expect(lex, "="); err != nil {
			return nil, nil, err
		}
		value, err := parseOperand(lex)
		if err != nil {
			return nil, nil, err
		}
		sets = append(sets, &Assign{Pos: field.Pos, EndPos: lex.RawPeek().Pos, Field: &Name{Pos: field.Pos, Text: field.Value}, Value: value})
		if c := lex.Peek(); c.Type != Punct || c.Value != "," {
			return target, sets, nil
		}
		lex.Next()
	}
}

func parseIgnore(lex *lexer.PeekingLexer) (*Ignore, error) {
	ig := &Ignore{Pos: lex.Next().Pos}
	for {
		e, err := eventName(lex)
		if err != nil {
			return nil, err
		}
		ig.Events = append(ig.Events, e)
		if c := lex.Peek(); c.Type != Punct || c.Value != "," {
			break
		}
		lex.Next()
	}
	ig.EndPos = lex.RawPeek().Pos
	return ig, nil
}

func parseDo(lex *lexer.PeekingLexer) (*Do, error) {
	do := &Do{Pos: lex.Next().Pos}
	var err error
	if do.Action, err = name(lex); err != nil {
		return nil, err
	}
	if open := lex.Peek(); open.Type == Punct && open.Value == "{" {
		block := &PolicyBlock{Pos: open.Pos}
		lex.Next()
		for {
			t := lex.Peek()
			if t.Type == Punct && t.Value == "}" {
				lex.Next()
				break
			}
			if t.Type != Keyword {
				return nil, unexpected(t, `a policy item (timeout, retry, backoff or jitter) or "}"`)
			}
			item, err := parsePolicyItem(lex)
			if err != nil {
				return nil, err
			}
			block.Items = append(block.Items, item)
		}
		block.EndPos = lex.RawPeek().Pos
		do.Policy = block
	}
	do.EndPos = lex.RawPeek().Pos
	return do, nil
}

func parsePolicyItem(lex *lexer.PeekingLexer) (*PolicyItem, error) {
	t := lex.Peek()
	item := &PolicyItem{Pos: t.Pos}
	var err error
	switch t.Value {
	case "timeout":
		lex.Next()
		item.Timeout, err = parseLiteral(lex)
	case "retry":
		lex.Next()
		item.Retry, err = parseLiteral(lex)
	case "backoff":
		lex.Next()
		item.Backoff, err = parseBackoff(lex)
	case "jitter":
		lex.Next()
		j := lex.Next()
		if j.Type != Ident || j.Value != "none" && j.Value != "full" && j.Value != "equal" {
			return nil, unexpected(j, `"none", "full" or "equal"`)
		}
		mode := j.Value
		item.Jitter = &mode
	default:
		return nil, unexpected(t, `a policy item (timeout, retry, backoff or jitter) or "}"`)
	}
	if err != nil {
		return nil, err
	}
	item.EndPos = lex.RawPeek().Pos
	return item, nil
}

func parseBackoff(lex *lexer.PeekingLexer) (*Backoff, error) {
	kind := lex.Next()
	b := &Backoff{Pos: kind.Pos}
	if kind.Type != Keyword || kind.Value != "constant" && kind.Value != "linear" && kind.Value != "exponential" {
		return nil, unexpected(kind, `"constant", "linear" or "exponential"`)
	}
	if err := expect(lex, "("); err != nil {
		return nil, err
	}
	// named parses `, word: Literal` (or `word: Literal` first).
	named := func(comma bool, word string) (*Literal, error) {
		if comma {
			if err := expect(lex, ","); err != nil {
				return nil, err
			}
		}
		if err := expect(lex, word); err != nil {
			return nil, err
		}
		if err := expect(lex, ":"); err != nil {
			return nil, err
		}
		return parseLiteral(lex)
	}
	// optionalMax parses `, max: Literal` when a comma follows.
	optionalMax := func() (*Literal, error) {
		if c := lex.Peek(); c.Type != Punct || c.Value != "," {
			return nil, nil
		}
		return named(true, "max")
	}
	var err error
	switch kind.Value {
	case "constant":
		b.Constant, err = parseLiteral(lex)
	case "linear":
		l := &LinearBackoff{}
		if l.Initial, err = named(false, "initial"); err == nil {
			if l.Step, err = named(true, "step"); err == nil {
				l.Max, err = optionalMax()
			}
		}
		b.Linear = l
	case "exponential":
		e := &ExponentialBackoff{}
		if e.Initial, err = named(false, "initial"); err == nil {
			if e.Factor, err = named(true, "factor"); err == nil {
				e.Max, err = optionalMax()
			}
		}
		b.Exponential = e
	}
	if err != nil {
		return nil, err
	}
	if err := expect(lex, ")"); err != nil {
		return nil, err
	}
	return b, nil
}

// parseLiteral parses `"-"? Value` for defaults and policy values.
func parseLiteral(lex *lexer.PeekingLexer) (*Literal, error) {
	first := lex.Peek()
	lit := &Literal{Pos: first.Pos}
	if first.Type == Punct && first.Value == "-" {
		lex.Next()
		lit.Neg = true
	}
	t := lex.Next()
	v := &Value{Pos: t.Pos}
	text := t.Value
	switch {
	case t.Type == Int:
		v.Int = &text
	case t.Type == Float:
		v.Float = &text
	case t.Type == Duration:
		v.Duration = &text
	case t.Type == String:
		v.String = &text
	case t.Type == Keyword && (text == "true" || text == "false"):
		v.Bool = &text
	default:
		return nil, unexpected(t, "a literal")
	}
	v.EndPos = lex.RawPeek().Pos
	lit.Value = v
	lit.EndPos = v.EndPos
	return lit, nil
}
