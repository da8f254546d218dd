package ir

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Op is a bytecode operation. Expressions compile to a straight-line
// sequence over a stack of Values; && and || short-circuit with forward
// jumps that keep the deciding value on the stack.
type Op uint8

// The operations. Each comment shows the stack effect.
const (
	OpInvalid Op = iota
	OpInt        // -> int constant A
	OpFloat      // -> float constant F
	OpStr        // -> string constant S
	OpBool       // -> bool constant A (0 or 1)
	OpDur        // -> duration constant A (nanoseconds)
	OpCtx        // -> context field A
	OpEvt        // -> payload field A of the event being handled
	OpNot        // bool -> bool
	OpNegI       // int|duration -> same
	OpNegF       // float -> float
	OpAddI       // x y -> x+y, on two ints or two durations
	OpSubI       // x y -> x-y
	OpMulI       // x y -> x*y, ints and durations in any mix
	OpDivI       // x y -> x/y, ints or two durations; faults on y == 0
	OpModI       // int int -> int; faults on y == 0
	OpAddF       // float float -> float
	OpSubF
	OpMulF
	OpDivF
	OpConcat // string string -> string
	OpEqI    // x y -> bool, on ints or durations (also OpNeI ... OpGeI)
	OpNeI
	OpLtI
	OpLeI
	OpGtI
	OpGeI
	OpEqF // float float -> bool (also OpNeF ... OpGeF)
	OpNeF
	OpLtF
	OpLeF
	OpGtF
	OpGeF
	OpEqS // string string -> bool (also OpNeS ... OpGeS)
	OpNeS
	OpLtS
	OpLeS
	OpGtS
	OpGeS
	OpEqB // bool bool -> bool
	OpNeB
	OpJumpFalse // bool -> bool: if false jump to A keeping it, else pop it
	OpJumpTrue  // bool -> bool: if true jump to A keeping it, else pop it
	opCount
)

var opNames = [opCount]string{
	"invalid", "int", "float", "str", "bool", "dur", "ctx", "evt", "not", "neg_i", "neg_f",
	"add_i", "sub_i", "mul_i", "div_i", "mod_i", "add_f", "sub_f", "mul_f", "div_f", "concat",
	"eq_i", "ne_i", "lt_i", "le_i", "gt_i", "ge_i",
	"eq_f", "ne_f", "lt_f", "le_f", "gt_f", "ge_f",
	"eq_s", "ne_s", "lt_s", "le_s", "gt_s", "ge_s",
	"eq_b", "ne_b", "jf", "jt",
}

func (o Op) String() string {
	if o < opCount {
		return opNames[o]
	}
	return fmt.Sprintf("op(%d)", o)
}

// Instr is one instruction with its operand: A for integers, indices,
// booleans, durations and jump targets; F for floats; S for strings.
type Instr struct {
	Op Op
	A  int64
	F  float64
	S  string
}

// MarshalJSON writes an instruction as ["op"] or ["op", operand]; a
// duration operand is written as Go writes durations.
func (in Instr) MarshalJSON() ([]byte, error) {
	name := in.Op.String()
	switch in.Op {
	case OpInt, OpCtx, OpEvt, OpJumpFalse, OpJumpTrue:
		// The common case, written directly: operation names need no
		// escaping.
		b := make([]byte, 0, len(name)+24)
		b = append(append(append(b, `["`...), name...), `",`...)
		return append(strconv.AppendInt(b, in.A, 10), ']'), nil
	case OpFloat:
		return json.Marshal([]any{name, in.F})
	case OpStr:
		return json.Marshal([]any{name, in.S})
	case OpBool:
		return json.Marshal([]any{name, in.A != 0})
	case OpDur:
		return json.Marshal([]any{name, FormatDuration(time.Duration(in.A))})
	}
	return json.Marshal([]any{name})
}

// UnmarshalJSON reads what MarshalJSON writes; an unknown operation or a
// wrong operand is an error.
func (in *Instr) UnmarshalJSON(b []byte) error {
	var parts []json.RawMessage
	if err := json.Unmarshal(b, &parts); err != nil || len(parts) == 0 || len(parts) > 2 {
		return fmt.Errorf("instruction %s: want [\"op\"] or [\"op\", operand]", b)
	}
	var name string
	if err := json.Unmarshal(parts[0], &name); err != nil {
		return fmt.Errorf("instruction %s: the operation must be a string", b)
	}
	op := OpInvalid
	for i, n := range opNames {
		if n == name && i > 0 {
			op = Op(i)
		}
	}
	if op == OpInvalid {
		return fmt.Errorf("unknown operation %q", name)
	}
	*in = Instr{Op: op}
	needs := op <= OpEvt || op == OpJumpFalse || op == OpJumpTrue
	if needs != (len(parts) == 2) {
		if needs {
			return fmt.Errorf("operation %q needs an operand", name)
		}
		return fmt.Errorf("operation %q takes no operand", name)
	}
	if !needs {
		return nil
	}
	var err error
	switch op {
	case OpFloat:
		err = json.Unmarshal(parts[1], &in.F)
	case OpStr:
		err = json.Unmarshal(parts[1], &in.S)
	case OpBool:
		var v bool
		err = json.Unmarshal(parts[1], &v)
		if v {
			in.A = 1
		}
	case OpDur:
		var d Duration
		err = json.Unmarshal(parts[1], &d)
		in.A = int64(d)
	default:
		err = json.Unmarshal(parts[1], &in.A)
	}
	if err != nil {
		return fmt.Errorf("operation %q: bad operand %s", name, parts[1])
	}
	return nil
}

// signature is what an operation pops and pushes, for verification.
type signature struct {
	pops   int
	result func(in []Type) (Type, bool) // nil for constants and loads
}

func same(allowed ...Type) func([]Type) (Type, bool) {
	return func(in []Type) (Type, bool) {
		for _, t := range in[1:] {
			if t != in[0] {
				return TypeInvalid, false
			}
		}
		for _, a := range allowed {
			if in[0] == a {
				return in[0], true
			}
		}
		return TypeInvalid, false
	}
}

func compare(allowed ...Type) func([]Type) (Type, bool) {
	s := same(allowed...)
	return func(in []Type) (Type, bool) {
		if _, ok := s(in); !ok {
			return TypeInvalid, false
		}
		return TypeBool, true
	}
}

var signatures = func() [opCount]signature {
	var s [opCount]signature
	intLike := []Type{TypeInt, TypeDuration}
	s[OpNot] = signature{1, same(TypeBool)}
	s[OpNegI] = signature{1, same(intLike...)}
	s[OpNegF] = signature{1, same(TypeFloat)}
	for _, op := range []Op{OpAddI, OpSubI} {
		s[op] = signature{2, same(intLike...)}
	}
	s[OpMulI] = signature{2, func(in []Type) (Type, bool) {
		switch {
		case in[0] == TypeInt && in[1] == TypeInt:
			return TypeInt, true
		case (in[0] == TypeDuration || in[0] == TypeInt) && (in[1] == TypeDuration || in[1] == TypeInt):
			return TypeDuration, true
		}
		return TypeInvalid, false
	}}
	s[OpDivI] = signature{2, same(intLike...)}
	s[OpModI] = signature{2, same(TypeInt)}
	for _, op := range []Op{OpAddF, OpSubF, OpMulF, OpDivF} {
		s[op] = signature{2, same(TypeFloat)}
	}
	s[OpConcat] = signature{2, same(TypeString)}
	for i := Op(0); i < 6; i++ {
		s[OpEqI+i] = signature{2, compare(intLike...)}
		s[OpEqF+i] = signature{2, compare(TypeFloat)}
		s[OpEqS+i] = signature{2, compare(TypeString)}
	}
	s[OpEqB] = signature{2, compare(TypeBool)}
	s[OpNeB] = signature{2, compare(TypeBool)}
	return s
}()

// verify checks code against the context and payload schemas: every
// operation known, every index in range, every operand of the right
// type, jumps forward and consistent, and exactly one value of type want
// left at the end. It returns the deepest stack the code needs.
func verify(code []Instr, context, payload []Field, want Type) (int, error) {
	if len(code) == 0 {
		return 0, errors.New("empty code")
	}
	var stack []Type
	atTarget := map[int][]Type{} // the stack a jump brings to an instruction
	maxDepth := 0
	for pc, in := range code {
		if want, ok := atTarget[pc]; ok && !equalTypes(want, stack) {
			return 0, fmt.Errorf("instruction %d: the stack differs on the paths that meet here", pc)
		}
		bad := func(format string, args ...any) (int, error) {
			return 0, fmt.Errorf("instruction %d (%s): %s", pc, in.Op, fmt.Sprintf(format, args...))
		}
		switch in.Op {
		case OpInt:
			stack = append(stack, TypeInt)
		case OpFloat:
			stack = append(stack, TypeFloat)
		case OpStr:
			stack = append(stack, TypeString)
		case OpBool:
			if in.A != 0 && in.A != 1 {
				return bad("bool operand %d", in.A)
			}
			stack = append(stack, TypeBool)
		case OpDur:
			stack = append(stack, TypeDuration)
		case OpCtx:
			if in.A < 0 || in.A >= int64(len(context)) {
				return bad("context field %d does not exist (the machine has %d)", in.A, len(context))
			}
			stack = append(stack, context[in.A].Type)
		case OpEvt:
			if in.A < 0 || in.A >= int64(len(payload)) {
				return bad("payload field %d does not exist (the event has %d here)", in.A, len(payload))
			}
			stack = append(stack, payload[in.A].Type)
		case OpJumpFalse, OpJumpTrue:
			if len(stack) == 0 || stack[len(stack)-1] != TypeBool {
				return bad("needs a bool on the stack")
			}
			if in.A <= int64(pc) || in.A > int64(len(code)) {
				return bad("jump target %d is not ahead of it within the code", in.A)
			}
			target := int(in.A)
			if prev, ok := atTarget[target]; ok && !equalTypes(prev, stack) {
				return bad("jumps to %d bring different stacks", target)
			}
			atTarget[target] = append([]Type(nil), stack...)
			stack = stack[:len(stack)-1]
		default:
			if in.Op == OpInvalid || in.Op >= opCount {
				return bad("unknown operation")
			}
			sig := signatures[in.Op]
			if len(stack) < sig.pops {
				return bad("needs %d operands, the stack has %d", sig.pops, len(stack))
			}
			args := stack[len(stack)-sig.pops:]
			t, ok := sig.result(args)
			if !ok {
				return bad("operands of types %v", args)
			}
			stack = append(stack[:len(stack)-sig.pops], t)
		}
		maxDepth = max(maxDepth, len(stack))
	}
	if want, ok := atTarget[len(code)]; ok && !equalTypes(want, stack) {
		return 0, errors.New("the stack differs on the paths that end the code")
	}
	if len(stack) != 1 || stack[0] != want {
		return 0, fmt.Errorf("code leaves %v, want one %s", stack, want)
	}
	return maxDepth, nil
}

func equalTypes(a, b []Type) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Fault is a runtime error in an expression, such as an integer division
// by zero. The transition it happened in is abandoned.
type Fault struct {
	Msg string
	Src string // the expression
	Pos *Pos
}

func (f *Fault) Error() string {
	return fmt.Sprintf("%s in %q at %s", f.Msg, f.Src, f.Pos)
}

// Eval runs e with the given context and payload, using stack (which
// needs room for Machine.MaxStack values; it grows otherwise). Verified
// code cannot fail except by a Fault.
func (e *Expr) Eval(context, payload []Value, stack []Value) (Value, error) {
	stack = stack[:0]
	code := e.Code
	for pc := 0; pc < len(code); pc++ {
		in := &code[pc]
		switch in.Op {
		case OpInt:
			stack = append(stack, Value{T: TypeInt, I: in.A})
		case OpFloat:
			stack = append(stack, Value{T: TypeFloat, F: in.F})
		case OpStr:
			stack = append(stack, Value{T: TypeString, S: in.S})
		case OpBool:
			stack = append(stack, Value{T: TypeBool, I: in.A})
		case OpDur:
			stack = append(stack, Value{T: TypeDuration, I: in.A})
		case OpCtx:
			stack = append(stack, context[in.A])
		case OpEvt:
			stack = append(stack, payload[in.A])
		case OpNot:
			stack[len(stack)-1].I ^= 1
		case OpNegI:
			top := &stack[len(stack)-1]
			if top.I == math.MinInt64 {
				return Value{}, &Fault{Msg: overflow(top.T).Error(), Src: e.Src, Pos: e.Pos}
			}
			top.I = -top.I
		case OpNegF:
			stack[len(stack)-1].F = -stack[len(stack)-1].F
		case OpJumpFalse, OpJumpTrue:
			if (stack[len(stack)-1].I != 0) == (in.Op == OpJumpTrue) {
				pc = int(in.A) - 1
			} else {
				stack = stack[:len(stack)-1]
			}
		default:
			x, y := &stack[len(stack)-2], stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if err := binary(in.Op, x, y); err != nil {
				return Value{}, &Fault{Msg: err.Error(), Src: e.Src, Pos: e.Pos}
			}
		}
	}
	return stack[0], nil
}

var (
	errDivZero          = errors.New("integer division by zero")
	errIntOverflow      = errors.New("integer overflow (beyond the 64-bit range)")
	errDurationOverflow = errors.New("duration overflow (beyond about 292 years)")
	errStringTooLong    = fmt.Errorf("string too long (a concatenation beyond %d MiB)", MaxString>>20)
)

// MaxString is the longest string a concatenation may make: beyond it,
// the expression faults, so that a loop of `s = s + s` stops the
// instance rather than the process.
const MaxString = 16 << 20

// overflow is the fault of an int or duration result out of range.
func overflow(t Type) error {
	if t == TypeDuration {
		return errDurationOverflow
	}
	return errIntOverflow
}

// binary applies op to x and y, leaving the result in x. Int and
// duration arithmetic is checked: a result out of the 64-bit range is a
// fault, as a division by zero is, rather than a wrapped value (a timer
// that wrapped negative would fire at once).
func binary(op Op, x *Value, y Value) error {
	switch op {
	case OpAddI:
		r := x.I + y.I
		if (r > x.I) != (y.I > 0) {
			return overflow(x.T)
		}
		x.I = r
	case OpSubI:
		r := x.I - y.I
		if (r < x.I) != (y.I > 0) {
			return overflow(x.T)
		}
		x.I = r
	case OpMulI:
		if x.T != y.T {
			x.T = TypeDuration
		}
		r := x.I * y.I
		if x.I != 0 && (r/x.I != y.I || (x.I == -1 && y.I == math.MinInt64)) {
			return overflow(x.T)
		}
		x.I = r
	case OpDivI:
		if y.I == 0 {
			return errDivZero
		}
		if x.I == math.MinInt64 && y.I == -1 {
			return overflow(x.T)
		}
		x.I /= y.I
	case OpModI:
		if y.I == 0 {
			return errDivZero
		}
		x.I %= y.I
	case OpAddF:
		x.F += y.F
	case OpSubF:
		x.F -= y.F
	case OpMulF:
		x.F *= y.F
	case OpDivF:
		x.F /= y.F
	case OpConcat:
		if len(x.S)+len(y.S) > MaxString {
			return errStringTooLong
		}
		x.S += y.S
	case OpEqI, OpNeI, OpLtI, OpLeI, OpGtI, OpGeI:
		*x = boolValue(order(op-OpEqI, cmpInt(x.I, y.I)))
	case OpEqF, OpNeF, OpLtF, OpLeF, OpGtF, OpGeF:
		*x = boolValue(compareFloat(op-OpEqF, x.F, y.F))
	case OpEqS, OpNeS, OpLtS, OpLeS, OpGtS, OpGeS:
		*x = boolValue(order(op-OpEqS, strings.Compare(x.S, y.S)))
	case OpEqB:
		*x = boolValue(x.I == y.I)
	case OpNeB:
		*x = boolValue(x.I != y.I)
	}
	return nil
}

func boolValue(b bool) Value {
	if b {
		return Value{T: TypeBool, I: 1}
	}
	return Value{T: TypeBool}
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// order applies comparison k (0 ==, 1 !=, 2 <, 3 <=, 4 >, 5 >=) to the
// result of a three-way comparison.
func order(k Op, c int) bool {
	switch k {
	case 0:
		return c == 0
	case 1:
		return c != 0
	case 2:
		return c < 0
	case 3:
		return c <= 0
	case 4:
		return c > 0
	}
	return c >= 0
}

// compareFloat compares with IEEE semantics (NaN is unequal to all).
func compareFloat(k Op, a, b float64) bool {
	switch k {
	case 0:
		return a == b
	case 1:
		return a != b
	case 2:
		return a < b
	case 3:
		return a <= b
	case 4:
		return a > b
	}
	return a >= b
}
