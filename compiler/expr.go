package compiler

import (
	"fmt"
	"strings"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/dsl"
)

// compileExpr turns a typed expression tree into stack bytecode. Operand
// types are known here, so each operation is specialised (add_i, add_f,
// concat); && and || become forward jumps that keep the deciding value.
func compileExpr(e dsl.Expr) ir.Expr {
	g := &codegen{}
	g.emit(e)
	return ir.Expr{Type: irType(e.Type()), Code: g.code, Src: ExprString(e), Pos: pos(e.Span())}
}

type codegen struct{ code []ir.Instr }

func (g *codegen) op(op ir.Op) { g.code = append(g.code, ir.Instr{Op: op}) }

func (g *codegen) emit(e dsl.Expr) {
	switch e := e.(type) {
	case *dsl.Literal:
		v := e.Value
		switch v.Type {
		case dsl.Int:
			g.code = append(g.code, ir.Instr{Op: ir.OpInt, A: v.I})
		case dsl.Float:
			g.code = append(g.code, ir.Instr{Op: ir.OpFloat, F: v.F})
		case dsl.String:
			g.code = append(g.code, ir.Instr{Op: ir.OpStr, S: v.S})
		case dsl.Bool:
			g.code = append(g.code, ir.Instr{Op: ir.OpBool, A: v.I})
		case dsl.Duration:
			g.code = append(g.code, ir.Instr{Op: ir.OpDur, A: v.I})
		}
	case *dsl.FieldRef:
		g.code = append(g.code, ir.Instr{Op: ir.OpCtx, A: int64(e.Field.Index)})
	case *dsl.PayloadRef:
		g.code = append(g.code, ir.Instr{Op: ir.OpEvt, A: int64(e.Param.Index)})
	case *dsl.Unary:
		g.emit(e.X)
		switch {
		case e.Op == "!":
			g.op(ir.OpNot)
		case e.X.Type() == dsl.Float:
			g.op(ir.OpNegF)
		default:
			g.op(ir.OpNegI)
		}
	case *dsl.Binary:
		if e.Op == "&&" || e.Op == "||" {
			g.emit(e.X)
			jump := len(g.code)
			op := ir.OpJumpFalse
			if e.Op == "||" {
				op = ir.OpJumpTrue
			}
			g.code = append(g.code, ir.Instr{Op: op})
			g.emit(e.Y)
			g.code[jump].A = int64(len(g.code))
			return
		}
		g.emit(e.X)
		g.emit(e.Y)
		g.op(binaryOp(e.Op, e.X.Type()))
	default:
		panic(fmt.Sprintf("compiler: unexpected expression %T", e))
	}
}

// binaryOp picks the operation for op on operands of type t (the left
// one; the checker has made the pair valid).
func binaryOp(op string, t dsl.Type) ir.Op {
	arith := map[string][2]ir.Op{
		"+": {ir.OpAddI, ir.OpAddF}, "-": {ir.OpSubI, ir.OpSubF},
		"*": {ir.OpMulI, ir.OpMulF}, "/": {ir.OpDivI, ir.OpDivF},
	}
	if op == "%" {
		return ir.OpModI
	}
	if pair, ok := arith[op]; ok {
		switch t {
		case dsl.Float:
			return pair[1]
		case dsl.String:
			return ir.OpConcat
		}
		return pair[0]
	}
	offset := map[string]ir.Op{"==": 0, "!=": 1, "<": 2, "<=": 3, ">": 4, ">=": 5}[op]
	switch t {
	case dsl.Float:
		return ir.OpEqF + offset
	case dsl.String:
		return ir.OpEqS + offset
	case dsl.Bool:
		return ir.OpEqB + offset
	}
	return ir.OpEqI + offset
}

// ExprString renders e in .fsm syntax with only the parentheses its
// meaning needs.
func ExprString(e dsl.Expr) string {
	switch e := e.(type) {
	case *dsl.Literal:
		return irValue(e.Value).String()
	case *dsl.FieldRef:
		return e.Field.Name
	case *dsl.PayloadRef:
		return "event." + e.Param.Name
	case *dsl.Unary:
		x := operand(e.X, 6)
		if e.Op == "-" && strings.HasPrefix(x, "-") {
			return "- " + x // not "--x"
		}
		return e.Op + x
	case *dsl.Binary:
		p := precedence[e.Op]
		return operand(e.X, p) + " " + e.Op + " " + operand(e.Y, p+1)
	}
	return fmt.Sprintf("<%T>", e)
}

var precedence = map[string]int{
	"||": 1, "&&": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3,
	"+": 4, "-": 4, "*": 5, "/": 5, "%": 5,
}

func operand(e dsl.Expr, min int) string {
	if b, ok := e.(*dsl.Binary); ok && precedence[b.Op] < min {
		return "(" + ExprString(e) + ")"
	}
	return ExprString(e)
}
