package ir_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/compiler"
	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/dsl"
	"github.com/fsmc/fsmc/internal/fsmgen"
	"github.com/fsmc/fsmc/internal/irtest"
)

var (
	compile  = irtest.Compile
	encode   = irtest.Encode
	examples = irtest.Examples
)

// TestRoundTrip: compiling is deterministic, and loading what was
// emitted gives back the same IR.
func TestRoundTrip(t *testing.T) {
	for name, src := range examples(t) {
		first := encode(t, compile(t, name, src))
		if again := encode(t, compile(t, name, src)); !bytes.Equal(first, again) {
			t.Errorf("%s: compiling twice gives different bytes", name)
		}
		loaded, err := ir.Load(first)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if re := encode(t, loaded); !bytes.Equal(first, re) {
			t.Errorf("%s: load(emit(m)) re-emits differently", name)
		}
	}
}

// TestHashIgnoresLayout: moving a machine's source (comments, blank
// lines, formatting) keeps its hash; changing its meaning does not.
func TestHashIgnoresLayout(t *testing.T) {
	src := examples(t)["order.fsm"]
	base := compile(t, "order.fsm", src)
	encode(t, base)
	moved := append([]byte("// a comment\n\n\n"), bytes.ReplaceAll(src, []byte("\n    "), []byte("\n  "))...)
	other := compile(t, "elsewhere/order.fsm", moved)
	encode(t, other)
	if base.Machines[0].Hash != other.Machines[0].Hash || base.Hash != other.Hash {
		t.Errorf("layout changed the hash: %s vs %s", base.Machines[0].Hash, other.Machines[0].Hash)
	}
	if *base.Machines[0].Pos == *other.Machines[0].Pos {
		t.Error("positions should differ in this test")
	}
	changed := compile(t, "order.fsm", bytes.Replace(src, []byte("retry 5"), []byte("retry 6"), 1))
	encode(t, changed)
	if changed.Machines[0].Hash == base.Machines[0].Hash {
		t.Error("a different retry count kept the hash")
	}
}

// orderIR returns a fresh copy of the order example's IR, decoded.
func orderIR(t *testing.T) *ir.File {
	f, err := ir.Load(encode(t, compile(t, "order.fsm", examples(t)["order.fsm"])))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func stateNamed(m *ir.Machine, name string) *ir.State {
	for i := range m.States {
		if m.States[i].Name == name {
			return &m.States[i]
		}
	}
	return nil
}

// TestLoadRejects corrupts valid IR in many ways: each must be a clear
// error, never a panic and never a machine that would misbehave.
func TestLoadRejects(t *testing.T) {
	structural := []struct {
		name   string
		break_ func(m *ir.Machine)
		want   string
	}{
		{"target out of range", func(m *ir.Machine) { stateNamed(m, "Draft").On[0].Candidates[0].Target = 99 }, "target: index 99 is out of range"},
		{"initial out of range", func(m *ir.Machine) { m.Initial = -1 }, "initial: index -1"},
		{"guard of wrong type", func(m *ir.Machine) {
			g := stateNamed(m, "Charging").On[2].Candidates[0].Guard
			g.Code = []ir.Instr{{Op: ir.OpCtx, A: 0}}
		}, "code leaves [int], want one bool"},
		{"operand type mismatch", func(m *ir.Machine) {
			g := stateNamed(m, "Charging").On[2].Candidates[0].Guard
			g.Code = []ir.Instr{{Op: ir.OpCtx, A: 1}, {Op: ir.OpInt, A: 3}, {Op: ir.OpLtI}}
		}, "operands of types [string int]"},
		{"stack underflow", func(m *ir.Machine) {
			stateNamed(m, "Charging").On[2].Candidates[0].Guard.Code = []ir.Instr{{Op: ir.OpLtI}}
		}, "needs 2 operands, the stack has 0"},
		{"context index", func(m *ir.Machine) {
			stateNamed(m, "Charging").On[2].Candidates[0].Guard.Code = []ir.Instr{{Op: ir.OpCtx, A: 42}}
		}, "context field 42 does not exist"},
		{"payload in a timer", func(m *ir.Machine) {
			stateNamed(m, "Charging").Timers[0].Delay.Code = []ir.Instr{{Op: ir.OpEvt, A: 0}}
		}, "payload field 0 does not exist"},
		{"backward jump", func(m *ir.Machine) {
			stateNamed(m, "Charging").On[2].Candidates[0].Guard.Code = []ir.Instr{{Op: ir.OpBool, A: 1}, {Op: ir.OpJumpFalse, A: 0}}
		}, "jump target 0 is not ahead"},
		{"negative timeout", func(m *ir.Machine) { stateNamed(m, "Charging").Task.Timeout = -1 }, "timeout must be positive"},
		{"zero factor", func(m *ir.Machine) { stateNamed(m, "Charging").Task.Backoff.Factor = 0 }, "factor must be positive"},
		{"unknown jitter", func(m *ir.Machine) { stateNamed(m, "Charging").Task.Jitter = "some" }, `unknown jitter "some"`},
		{"action out of range", func(m *ir.Machine) { stateNamed(m, "Charging").Task.Action = 7 }, "task.action: index 7"},
		{"unsorted rows", func(m *ir.Machine) {
			on := stateNamed(m, "Charging").On
			on[0], on[1] = on[1], on[0]
		}, "rows must be sorted"},
		{"bad name", func(m *ir.Machine) { m.States[0].Name = "not a name" }, `"not a name" is not a valid name`},
		{"duplicate state", func(m *ir.Machine) { m.States[1].Name = m.States[0].Name }, "duplicate state"},
		{"final with task", func(m *ir.Machine) { stateNamed(m, "Done").Task = stateNamed(m, "Charging").Task }, "a final state has no task"},
		{"built-ins missing", func(m *ir.Machine) { m.Events = m.Events[1:] }, "the first two must be the built-in done"},
		{"event emitted twice", func(m *ir.Machine) {
			a := &m.Actions[0]
			a.Emits = append(a.Emits, a.Emits[0])
		}, "is listed twice"},
		{"set of wrong type", func(m *ir.Machine) { stateNamed(m, "Charging").On[1].Candidates[0].Sets[0].Field = 0 }, "type string, want int"},
	}
	for _, c := range structural {
		t.Run(c.name, func(t *testing.T) {
			f := orderIR(t)
			c.break_(f.Machines[0])
			_, err := ir.Load(encode(t, f)) // Encode rehashes: the validator must catch it
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load error %v, want it to contain %q", err, c.want)
			}
		})
	}
	good := string(encode(t, orderIR(t)))
	textual := []struct{ name, from, to, want string }{
		{"not JSON", `"format_version"`, `format_version`, "IR is not valid: line 2, column 3"},
		{"unknown field", `"initial":`, `"initially": 0, "initial":`, `unknown field "initially"`},
		{"format version", `"format_version": 1`, `"format_version": 2`, "format_version 2 is not supported"},
		{"unknown operation", `["lt_i"]`, `["frob"]`, `unknown operation "frob"`},
		{"missing operand", `["ctx", 2]`, `["ctx"]`, `operation "ctx" needs an operand`},
		{"bad default", `"default": 0`, `"default": "zero"`, `default "zero" is not a int`},
		{"bad type", `"type": "int"`, `"type": "integer"`, `unknown type "integer"`},
		{"edited constant", `["int", 3]`, `["int", 4]`, "does not match its content"},
		{"trailing data", "}\n", "}\n{}", "data after the JSON document"},
	}
	for _, c := range textual {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(good, c.from) {
				t.Fatalf("IR has no %q", c.from)
			}
			bad := strings.Replace(good, c.from, c.to, 1)
			if c.name == "trailing data" {
				bad = strings.TrimSuffix(good, "\n") + "\n{}"
			}
			_, err := ir.Load([]byte(bad))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Load error %v, want it to contain %q", err, c.want)
			}
		})
	}
}

// exprMachine compiles a machine whose single guarded transition has
// guard expr, over context fields of every type.
func exprMachine(t *testing.T, expr string) (*ir.Machine, *ir.Expr) {
	src := `machine M {
    context {
        i: int = 7
        f: float = 2.5
        s: string = "ab"
        b: bool = true
        d: duration = 90s
        z: int = 0
    }
    event E(n: int, tag: string)
    initial state A {
        on E if ` + expr + ` -> Z
    }
    final state Z
}`
	f := compile(t, "m.fsm", []byte(src))
	m := f.Machines[0]
	return m, m.States[0].On[0].Candidates[0].Guard
}

func TestEval(t *testing.T) {
	for _, c := range []struct {
		expr string
		want bool
	}{
		{"i + 1 == 8", true},
		{"i - 10 == -3", true},
		{"i * 2 + 1 == 15", true},
		{"i / 2 == 3 && i % 2 == 1", true},
		{"-7 % 3 == -1", true},
		{"1 + 2 * 3 == 7 && (1 + 2) * 3 == 9", true},
		{"f * 2.0 == 5.0 && f / 2.0 > 1.2 && -f < 0.0", true},
		{`s + "c" == "abc" && s < "b" && s >= "ab"`, true},
		{"d * 2 == 3m && 2 * d > d && d - 30s == 1m && d / 30s * 30s == 90s", true},
		{"!b && z / z == 0", false},
		{"b && i > 100", false},
		{"false && i / z == 0", false},
		{"true || i / z == 0", true},
		{"event.n == 4 && event.tag != \"\"", true},
		{"b == true && b != false", true},
	} {
		m, g := exprMachine(t, c.expr)
		ctx := make([]ir.Value, len(m.Context))
		for i, f := range m.Context {
			ctx[i] = *f.Default
		}
		payload := []ir.Value{{T: ir.TypeInt, I: 4}, {T: ir.TypeString, S: "x"}}
		v, err := g.Eval(ctx, payload, make([]ir.Value, 0, m.MaxStack()))
		if err != nil {
			t.Errorf("%s: %v", c.expr, err)
			continue
		}
		if v.T != ir.TypeBool || (v.I != 0) != c.want {
			t.Errorf("%s = %v, want %v", c.expr, v, c.want)
		}
	}
}

func TestEvalFaultAndAllocations(t *testing.T) {
	m, g := exprMachine(t, "i / z > 0")
	ctx := make([]ir.Value, len(m.Context))
	for i, f := range m.Context {
		ctx[i] = *f.Default
	}
	stack := make([]ir.Value, 0, m.MaxStack())
	_, err := g.Eval(ctx, nil, stack)
	var fault *ir.Fault
	if err == nil || !strings.Contains(err.Error(), `integer division by zero in "i / z > 0" at 12:17`) || !asFault(err, &fault) {
		t.Fatalf("got %v, want a division fault naming the expression and place", err)
	}
	_, guard := exprMachine(t, "i * 2 > 10 && (d > 1m || s == \"x\") && !(f < 0.0)")
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := guard.Eval(ctx, nil, stack); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a guard allocates %v times per evaluation, want 0", allocs)
	}
}

// TestEvalOverflow: int and duration arithmetic out of the 64-bit range
// is a fault, as a division by zero is; results at the edges of the
// range are not.
func TestEvalOverflow(t *testing.T) {
	const maxInt = "9223372036854775807"
	for _, c := range []struct{ expr, fault string }{
		{maxInt + " + i > 0", "integer overflow"},
		{"-" + maxInt + " - i < 0", "integer overflow"},
		{maxInt + " * i > 0", "integer overflow"},
		{"-(-" + maxInt + " - 1) > 0", "integer overflow"},
		{"(-" + maxInt + " - 1) / -1 > 0", "integer overflow"},
		{"(-" + maxInt + " - 1) * -1 > 0", "integer overflow"},
		{"-1 * (-" + maxInt + " - 1) > 0", "integer overflow"},
		{"d * 102481912 > 0s", "duration overflow"},
		{"1h * 9223372036 > 0s", "duration overflow"},
		{maxInt + " - i > 0", ""},
		{"-" + maxInt + " - 1 < 0", ""},
		{"(-" + maxInt + " - 1) * 1 < 0 && (-" + maxInt + " - 1) % -1 == 0", ""},
		{"d * 102481911 > 0s && -" + maxInt + " * -1 > 0", ""},
	} {
		m, g := exprMachine(t, c.expr)
		ctx := make([]ir.Value, len(m.Context))
		for i, f := range m.Context {
			ctx[i] = *f.Default
		}
		v, err := g.Eval(ctx, nil, make([]ir.Value, 0, m.MaxStack()))
		switch {
		case c.fault == "" && (err != nil || v.I != 1):
			t.Errorf("%s = %v, %v; want true", c.expr, v, err)
		case c.fault != "" && (err == nil || !strings.Contains(err.Error(), c.fault)):
			t.Errorf("%s: %v, want a fault %q", c.expr, err, c.fault)
		}
	}
}

// TestEvalStringLimit: a concatenation longer than ir.MaxString is a
// fault (a loop of s = s + s would otherwise take all the memory there
// is); one of exactly that length is not.
func TestEvalStringLimit(t *testing.T) {
	for _, c := range []struct {
		expr  string
		n     int // the length of s
		fault bool
	}{
		{"s + s != \"\"", ir.MaxString / 2, false},
		{"s + s != \"\"", ir.MaxString/2 + 1, true},
		{"s + \"x\" != \"\"", ir.MaxString, true},
		{"s + \"\" != \"\"", ir.MaxString, false},
	} {
		m, g := exprMachine(t, c.expr)
		ctx := make([]ir.Value, len(m.Context))
		for i, f := range m.Context {
			ctx[i] = *f.Default
		}
		ctx[2] = ir.Value{T: ir.TypeString, S: strings.Repeat("a", c.n)}
		_, err := g.Eval(ctx, nil, make([]ir.Value, 0, m.MaxStack()))
		if got := err != nil && strings.Contains(err.Error(), "string too long"); got != c.fault || !c.fault && err != nil {
			t.Errorf("%s with s of %d bytes: %v, want a fault: %v", c.expr, c.n, err, c.fault)
		}
	}
}

func asFault(err error, f **ir.Fault) bool {
	v, ok := err.(*ir.Fault)
	*f = v
	return ok
}

func TestBackoffDelay(t *testing.T) {
	for _, c := range []struct {
		b    ir.Backoff
		n    int
		want time.Duration
	}{
		{ir.Backoff{Kind: "constant", Initial: ir.Duration(10 * time.Second)}, 5, 10 * time.Second},
		{ir.Backoff{Kind: "linear", Initial: ir.Duration(time.Second), Step: ir.Duration(2 * time.Second)}, 3, 5 * time.Second},
		{ir.Backoff{Kind: "linear", Initial: ir.Duration(time.Second), Step: ir.Duration(2 * time.Second), Max: ir.Duration(4 * time.Second)}, 3, 4 * time.Second},
		{ir.Backoff{Kind: "exponential", Initial: ir.Duration(time.Second), Factor: 2}, 4, 8 * time.Second},
		{ir.Backoff{Kind: "exponential", Initial: ir.Duration(time.Second), Factor: 2, Max: ir.Duration(time.Minute)}, 40, time.Minute},
		{ir.Backoff{Kind: "exponential", Initial: ir.Duration(time.Second), Factor: 10}, 400, 1 << 62},
	} {
		if got := c.b.Delay(c.n); got != c.want {
			t.Errorf("%+v retry %d: %v, want %v", c.b, c.n, got, c.want)
		}
	}
}

// FuzzLoad feeds arbitrary bytes and mutated IR to Load. Whatever it
// accepts must be safe: every expression runs on zero values without a
// panic (a division fault is fine).
func FuzzLoad(f *testing.F) {
	// A small machine that uses every part of the IR: Go's fuzzer slows to
	// a crawl on inputs the size of the examples' IR.
	seed := `machine S {
    context {
        n: int = 1
        s: string = "a"
        d: duration = 1s
    }
    event E(x: int)
    action A emits E
    initial state P {
        do A { retry 2 backoff linear(initial: 1s, step: 1s) }
        on E if event.x > n && s != "b" || !(d < 2s) -> Q set n = n * 2 + event.x % 3
        on error -> Q
        after d * 3 -> Q
        ignore done
    }
    final state Q
}`
	f.Add(encode(f, compile(f, "seed.fsm", []byte(seed))))
	f.Add([]byte(`{"format_version":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := ir.Load(data)
		if err != nil {
			return
		}
		for _, m := range file.Machines {
			ctx := make([]ir.Value, len(m.Context))
			for i, fld := range m.Context {
				ctx[i] = ir.Zero(fld.Type)
			}
			stack := make([]ir.Value, 0, m.MaxStack())
			run := func(e *ir.Expr, payload []ir.Field) {
				p := make([]ir.Value, len(payload))
				for i, fld := range payload {
					p[i] = ir.Zero(fld.Type)
				}
				v, err := e.Eval(ctx, p, stack)
				if err == nil && v.T != e.Type {
					t.Fatalf("%q gave a %s, declared %s", e.Src, v.T, e.Type)
				}
			}
			for _, s := range m.States {
				for _, row := range s.On {
					for _, c := range row.Candidates {
						if c.Guard != nil {
							run(c.Guard, m.Events[row.Event].Params)
						}
						for _, a := range c.Sets {
							run(&a.Value, m.Events[row.Event].Params)
						}
					}
				}
				for _, tm := range s.Timers {
					run(&tm.Delay, nil)
				}
			}
		}
	})
}

// BenchmarkCompile lowers the checked 10,000-state machine to IR and
// encodes it.
func BenchmarkCompile(b *testing.B) {
	src := fsmgen.Machine(10000)
	model, diags := dsl.Check("big.fsm", src)
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	b.Run("lower", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := compiler.Compile(model, "big.fsm"); err != nil {
				b.Fatal(err)
			}
		}
	})
	f, err := compiler.Compile(model, "big.fsm")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := f.Encode(); err != nil {
				b.Fatal(err)
			}
		}
	})
	data, _ := f.Encode()
	b.Run("load", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := ir.Load(data); err != nil {
				b.Fatal(err)
			}
		}
	})
}
