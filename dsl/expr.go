package dsl

import (
	"fmt"
	"math"
	"math/big"

	"github.com/fsmc/fsmc/grammar"
)

// exprScope is what an expression may read besides the context.
type exprScope struct {
	event      *Event // the event of an `on` transition
	eventKnown bool   // false when the event name itself was wrong
	timer      bool   // inside `after`: there is no event
}

// checkExpr types a parsed expression. A subexpression with an error has
// type Invalid, which every operator accepts silently, so one mistake is
// reported once.
func (mc *machineChecker) checkExpr(e *grammar.Expr, scope exprScope) Expr {
	r := rangeOf(mc.file, e.Pos, e.End)
	switch e.Kind {
	case grammar.ExprValue:
		v, ok := mc.value(e.Value)
		if !ok {
			return &invalidExpr{Range: r}
		}
		return &Literal{Value: v, Range: r}
	case grammar.ExprField:
		f := mc.m.fields[e.Name.Text]
		if f == nil {
			d := mc.errorf(r, UndefinedName, "undefined name %q: no context field has that name", e.Name.Text)
			d.Suggestion = spell(mc.checker, e.Name.Text, mc.m.fields)
			return &invalidExpr{Range: r}
		}
		return &FieldRef{Field: f, Range: r}
	case grammar.ExprPayload:
		return mc.checkPayload(e, r, scope)
	case grammar.ExprParen:
		return mc.checkExpr(e.X, scope)
	case grammar.ExprUnary:
		if e.Op == "-" && e.X.Kind == grammar.ExprValue && isMinIntMagnitude(e.X.Value) {
			return &Literal{Value: Value{Type: Int, I: math.MinInt64}, Range: r}
		}
		x := mc.checkExpr(e.X, scope)
		u := &Unary{Op: e.Op, X: x, Range: r, T: x.Type()}
		switch {
		case x.Type() == Invalid:
		case e.Op == "!" && x.Type() != Bool:
			mc.errorf(r, TypeMismatch, "operator ! needs a bool, not %s", x.Type())
			u.T = Invalid
		case e.Op == "-" && x.Type() != Int && x.Type() != Float && x.Type() != Duration:
			mc.errorf(r, TypeMismatch, "operator - needs an int, float or duration, not %s", x.Type())
			u.T = Invalid
		}
		return u
	case grammar.ExprBinary:
		x := mc.checkExpr(e.X, scope)
		y := mc.checkExpr(e.Y, scope)
		b := &Binary{Op: e.Op, X: x, Y: y, Range: r}
		b.T = mc.binaryType(b)
		return b
	}
	return &invalidExpr{Range: r}
}

func (mc *machineChecker) checkPayload(e *grammar.Expr, r Range, scope exprScope) Expr {
	name := e.Name.Text
	switch {
	case scope.timer:
		mc.errorf(r, NoPayload, "event.%s in a timer: timers have no event payload", name)
	case !scope.eventKnown:
	case scope.event == mc.m.Done:
		mc.errorf(r, NoPayload, "event.%s in `on done`: done has no payload", name)
	case len(scope.event.Params) == 0:
		d := mc.errorf(r, NoPayload, "event.%s: event %q has no payload", name, scope.event.Name)
		d.Related = []Note{{Range: scope.event.Range, Message: fmt.Sprintf("event %q declared here", scope.event.Name)}}
	default:
		p := scope.event.Param(name)
		if p != nil {
			return &PayloadRef{Event: scope.event, Param: p, Range: r}
		}
		d := mc.errorf(r, UndefinedName, "event %q has no payload field %q", scope.event.Name, name)
		d.Suggestion = spell(mc.checker, name, scope.event.params)
		if !scope.event.Builtin {
			d.Related = []Note{{Range: scope.event.Range, Message: fmt.Sprintf("event %q declared here", scope.event.Name)}}
		}
	}
	return &invalidExpr{Range: r}
}

// binaryType applies the typing rules of language.md "Expressions".
func (mc *machineChecker) binaryType(b *Binary) Type {
	x, y := b.X.Type(), b.Y.Type()
	if x == Invalid || y == Invalid {
		return Invalid
	}
	bad := func(format string, args ...any) Type {
		mc.errorf(b.Range, TypeMismatch, format, args...)
		return Invalid
	}
	switch b.Op {
	case "&&", "||":
		if x != Bool || y != Bool {
			return bad("operator %s needs two bools, not %s and %s", b.Op, x, y)
		}
		return Bool
	case "==", "!=":
		if x != y {
			return bad("cannot compare %s with %s", x, y)
		}
		return Bool
	case "<", "<=", ">", ">=":
		if x != y {
			return bad("cannot compare %s with %s", x, y)
		}
		if x == Bool {
			return bad("operator %s does not order bools", b.Op)
		}
		return Bool
	case "%":
		if x != Int || y != Int {
			return bad("operator %% needs two ints, not %s and %s", x, y)
		}
		return Int
	case "*":
		if x == Duration && y == Int || x == Int && y == Duration {
			return Duration
		}
	}
	// + - * /
	if x != y {
		return bad("mismatched types %s and %s for operator %s", x, y, b.Op)
	}
	switch x {
	case Int, Float, Duration:
		return x
	case String:
		if b.Op == "+" {
			return String
		}
	}
	return bad("operator %s is not defined on %s", b.Op, x)
}

// constValue folds an expression made only of literals, unary minus and
// duration arithmetic (durations added and subtracted, a duration times
// an int); ok is false when it reads any field, or when the runtime
// would find it out of range (a fault there, not a value here).
func constValue(e Expr) (Value, bool) {
	switch e := e.(type) {
	case *Literal:
		return e.Value, true
	case *Unary:
		v, ok := constValue(e.X)
		if !ok || e.Op != "-" || v.Type != Duration && v.Type != Int || v.I == math.MinInt64 {
			return v, false
		}
		v.I = -v.I
		return v, true
	case *Binary:
		x, ok := constValue(e.X)
		y, oky := constValue(e.Y)
		if !ok || !oky {
			return Value{}, false
		}
		var r *big.Int
		switch {
		case e.Op == "+" && x.Type == Duration && y.Type == Duration:
			r = new(big.Int).Add(big.NewInt(x.I), big.NewInt(y.I))
		case e.Op == "-" && x.Type == Duration && y.Type == Duration:
			r = new(big.Int).Sub(big.NewInt(x.I), big.NewInt(y.I))
		case e.Op == "*" && (x.Type == Duration && y.Type == Int || x.Type == Int && y.Type == Duration):
			r = new(big.Int).Mul(big.NewInt(x.I), big.NewInt(y.I))
		default:
			return Value{}, false
		}
		if !r.IsInt64() {
			return Value{}, false
		}
		return Value{Type: Duration, I: r.Int64()}, true
	}
	return Value{}, false
}
