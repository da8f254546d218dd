// Package compiler lowers a checked model to the transition-table IR of
// package ir, and holds the emitters that read the IR:
//
//	dsl.Model -> Compile -> *ir.File -> Encode (JSON), dot, mermaid, (gogen)
//
// Compile assigns dense ids (events: done, error, then the declared ones
// in order; states, actions and context fields in declaration order),
// groups each state's transitions by event in source order, fills in the
// policy defaults the checker resolved, and turns every guard, set value
// and timer delay into typed stack bytecode (expr.go). Its output passes
// ir's own validation, the same as IR loaded from a file.
package compiler

import (
	"fmt"
	"sort"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/dsl"
)

// Compile lowers a model without errors. source is the .fsm path
// recorded in the IR.
func Compile(model *dsl.Model, source string) (*ir.File, error) {
	f := &ir.File{FormatVersion: ir.FormatVersion, Source: source}
	for _, m := range model.Machines {
		im, err := compileMachine(m)
		if err != nil {
			return nil, fmt.Errorf("machine %s: %w", m.Name, err)
		}
		f.Machines = append(f.Machines, im)
	}
	if err := f.SetHashes(); err != nil {
		return nil, err
	}
	return f, nil
}

// CompileSource checks and compiles one file; diagnostics come back when
// it has errors (and the file is then nil).
func CompileSource(path string, src []byte) (*ir.File, dsl.Diagnostics, error) {
	model, diags := dsl.Check(path, src)
	if diags.HasErrors() {
		return nil, diags, nil
	}
	f, err := Compile(model, path)
	return f, diags, err
}

func pos(r dsl.Range) *ir.Pos { return &ir.Pos{Line: r.Start.Line, Column: r.Start.Column} }

// eventID maps a model event to its IR id.
func eventID(m *dsl.Machine, e *dsl.Event) int {
	switch e {
	case m.Done:
		return ir.EventDone
	case m.Error:
		return ir.EventError
	}
	return e.Index + 2
}

func fields(fs []*dsl.Field, withDefaults bool) []ir.Field {
	out := make([]ir.Field, 0, len(fs))
	for _, f := range fs {
		field := ir.Field{Name: f.Name, Type: irType(f.Type), Pos: pos(f.Range)}
		if withDefaults {
			v := irValue(f.Default)
			field.Default = &v
		}
		out = append(out, field)
	}
	return out
}

func irValue(v dsl.Value) ir.Value { return ir.Value{T: irType(v.Type), I: v.I, F: v.F, S: v.S} }

// irType maps the checker's types to the IR's.
func irType(t dsl.Type) ir.Type {
	switch t {
	case dsl.Int:
		return ir.TypeInt
	case dsl.Float:
		return ir.TypeFloat
	case dsl.String:
		return ir.TypeString
	case dsl.Bool:
		return ir.TypeBool
	case dsl.Duration:
		return ir.TypeDuration
	}
	return ir.TypeInvalid
}

func compileMachine(m *dsl.Machine) (*ir.Machine, error) {
	im := &ir.Machine{Name: m.Name, Pos: pos(m.Range), Context: fields(m.Context, true), Initial: m.Initial.Index,
		Events: []ir.Event{
			{Name: "done", Builtin: true, Params: []ir.Field{}},
			{Name: "error", Builtin: true, Params: fields(m.Error.Params, false)},
		}}
	for i := range im.Events[1].Params { // built in: no source position
		im.Events[1].Params[i].Pos = nil
	}
	for _, e := range m.Events {
		im.Events = append(im.Events, ir.Event{Name: e.Name, Params: fields(e.Params, false), Pos: pos(e.Range)})
	}
	for _, a := range m.Actions {
		act := ir.Action{Name: a.Name, Emits: []int{}, Pos: pos(a.Range)}
		for _, e := range a.Emits {
			act.Emits = append(act.Emits, eventID(m, e))
		}
		im.Actions = append(im.Actions, act)
	}
	for _, s := range m.States {
		im.States = append(im.States, compileState(m, s))
	}
	if err := im.Validate(); err != nil {
		return nil, fmt.Errorf("compiled IR does not validate: %v", err)
	}
	return im, nil
}

func compileState(m *dsl.Machine, s *dsl.State) ir.State {
	st := ir.State{Name: s.Name, Final: s.Final, Pos: pos(s.Range), On: []ir.Row{}, Timers: []ir.Timer{}, Ignore: []int{}}
	if t := s.Task; t != nil {
		st.Task = &ir.Task{
			Action:  t.Action.Index,
			Timeout: ir.Duration(t.Timeout),
			Retry:   t.Retry,
			Backoff: ir.Backoff{Kind: t.Backoff.Kind.String(), Initial: ir.Duration(t.Backoff.Initial),
				Step: ir.Duration(t.Backoff.Step), Factor: t.Backoff.Factor, Max: ir.Duration(t.Backoff.Max)},
			Jitter: t.Jitter.String(),
			Pos:    pos(t.Range),
		}
	}
	rows := map[int]*ir.Row{}
	for _, t := range s.Transitions {
		id := eventID(m, t.Event)
		row := rows[id]
		if row == nil {
			row = &ir.Row{Event: id}
			rows[id] = row
		}
		tr := ir.Transition{Target: t.Target.Index, Sets: assigns(t.Sets), Pos: pos(t.Range)}
		if t.Guard != nil {
			g := compileExpr(t.Guard)
			tr.Guard = &g
		}
		row.Candidates = append(row.Candidates, tr)
	}
	for _, row := range rows {
		st.On = append(st.On, *row)
	}
	sort.Slice(st.On, func(a, b int) bool { return st.On[a].Event < st.On[b].Event })
	for _, t := range s.Timers {
		st.Timers = append(st.Timers, ir.Timer{Delay: compileExpr(t.Delay), Target: t.Target.Index, Sets: assigns(t.Sets), Pos: pos(t.Range)})
	}
	for _, e := range s.Ignores {
		st.Ignore = append(st.Ignore, eventID(m, e))
	}
	return st
}

func assigns(sets []*dsl.Assign) []ir.Assign {
	out := make([]ir.Assign, 0, len(sets))
	for _, a := range sets {
		out = append(out, ir.Assign{Field: a.Field.Index, Value: compileExpr(a.Value)})
	}
	return out
}
