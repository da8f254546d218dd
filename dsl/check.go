package dsl

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/alecthomas/participle/v2/lexer"
	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/grammar"
)

// Check parses and checks one file. It returns the model and every
// diagnostic found; the model is nil only when the file does not parse,
// and is partial (unusable by the compiler) when there are errors.
func Check(file string, src []byte) (*Model, Diagnostics) {
	source, err := grammar.Parse(file, src)
	if err != nil {
		return nil, Diagnostics{syntaxDiagnostic(file, source, err)}
	}
	c := &checker{src: source, file: file, spellBudget: spellComparisons}
	model := c.checkFile(source.Tree)
	c.diags.Sort()
	return model, c.diags
}

// syntaxDiagnostic turns a parse error into an E001 whose range covers
// the offending token.
func syntaxDiagnostic(file string, source *grammar.Source, err error) Diagnostic {
	d := Diagnostic{Severity: Error, Code: SyntaxError, Message: err.Error()}
	var pos lexer.Position
	if e, ok := err.(*grammar.Error); ok {
		d.Message = e.Msg
		pos = e.Pos
	}
	if pos.Line == 0 {
		pos = lexer.Position{Line: 1, Column: 1}
	}
	pos.Filename = file
	end := pos
	for _, t := range source.Tokens {
		if t.Pos.Offset == pos.Offset && t.Type != grammar.EOF {
			end = grammar.TokenEnd(t)
			if end.Line != pos.Line {
				end = pos
				end.Column++
				end.Offset++
			}
			break
		}
	}
	if end == pos && pos.Offset < len(source.Text) {
		end.Column++
		end.Offset++
	}
	d.Range = rangeOf(file, pos, end)
	return d
}

// checker builds the model from the syntax tree. It does not change the
// tree. Every finding goes through errorf/warnf.
type checker struct {
	src   *grammar.Source
	file  string
	diags Diagnostics
	// spellBudget is how many more candidate names "did you mean"
	// searches may compare (see spell).
	spellBudget int
}

func (c *checker) report(sev Severity, r Range, code Code, format string, args ...any) *Diagnostic {
	c.diags = append(c.diags, Diagnostic{Severity: sev, Code: code, Range: r, Message: fmt.Sprintf(format, args...)})
	return &c.diags[len(c.diags)-1]
}

func (c *checker) errorf(r Range, code Code, format string, args ...any) *Diagnostic {
	return c.report(Error, r, code, format, args...)
}

func (c *checker) warnf(r Range, code Code, format string, args ...any) *Diagnostic {
	return c.report(Warning, r, code, format, args...)
}

// span is the range from start to the end of the node whose EndPos is
// next.
func (c *checker) span(start, next lexer.Position) Range {
	return rangeOf(c.file, start, c.src.End(next))
}

// nameRange is the range of an identifier token.
func (c *checker) nameRange(pos lexer.Position, text string) Range {
	end := pos
	end.Offset += len(text)
	end.Column += len([]rune(text))
	return rangeOf(c.file, pos, end)
}

// keywordRange is the range of a keyword at pos.
func (c *checker) keywordRange(pos lexer.Position, word string) Range {
	return c.nameRange(pos, word)
}

func (c *checker) checkFile(f *grammar.File) *Model {
	model := &Model{File: c.file}
	seen := map[string]Range{}
	for _, m := range f.Machines {
		r := c.nameRange(m.Name.Pos, m.Name.Text)
		if first, dup := seen[m.Name.Text]; dup {
			c.duplicate(r, first, "machine", m.Name.Text)
		} else {
			seen[m.Name.Text] = r
		}
		model.Machines = append(model.Machines, c.checkMachine(m))
	}
	return model
}

func (c *checker) duplicate(r, first Range, kind, name string) {
	d := c.errorf(r, Duplicate, "duplicate %s %q", kind, name)
	d.Related = []Note{{Range: first, Message: fmt.Sprintf("%s %q first declared here", kind, name)}}
}

// machineChecker holds what is known about one machine while checking it.
type machineChecker struct {
	*checker
	m            *Machine
	usedEvents   map[*Event]bool
	usedActions  map[*Action]bool
	stateDecls   []*grammar.StateDecl
	firstInitial *State
}

func (c *checker) checkMachine(gm *grammar.Machine) *Machine {
	m := &Machine{
		Name:    gm.Name.Text,
		Range:   c.nameRange(gm.Name.Pos, gm.Name.Text),
		fields:  map[string]*Field{},
		events:  map[string]*Event{},
		actions: map[string]*Action{},
		states:  map[string]*State{},
	}
	m.Done = &Event{Name: "done", Builtin: true, Index: -1, params: map[string]*Field{}}
	m.Error = &Event{Name: "error", Builtin: true, Index: -2, params: map[string]*Field{}}
	for i, p := range []struct {
		name string
		t    Type
	}{{"message", String}, {"attempts", Int}} {
		f := &Field{Name: p.name, Type: p.t, Index: i, Default: Zero(p.t)}
		m.Error.Params = append(m.Error.Params, f)
		m.Error.params[p.name] = f
	}
	mc := &machineChecker{checker: c, m: m, usedEvents: map[*Event]bool{}, usedActions: map[*Action]bool{}}

	// Pass 1: declare every name, so that uses may come before
	// declarations.
	for _, d := range gm.Decls {
		switch {
		case d.Context != nil:
			for _, f := range d.Context.Fields {
				mc.declareField(f)
			}
		case d.Event != nil:
			mc.declareEvent(d.Event)
		case d.State != nil:
			mc.declareState(d.State)
		}
	}
	for _, d := range gm.Decls {
		if d.Action != nil {
			mc.declareAction(d.Action)
		}
	}
	// Pass 2: state bodies.
	for i, sd := range mc.stateDecls {
		mc.checkState(m.States[i], sd)
	}
	if m.Initial == nil {
		c.errorf(m.Range, InitialState, "machine %q has no initial state; mark one state `initial`", m.Name)
	}
	mc.checkUnused()
	checkGraph(c, m)
	return m
}

func (mc *machineChecker) declareField(gf *grammar.Field) {
	m := mc.m
	f := &Field{Name: gf.Name.Text, Type: TypeNamed(gf.Type.Name), Range: mc.nameRange(gf.Name.Pos, gf.Name.Text)}
	f.Default = Zero(f.Type)
	if gf.Default != nil {
		if v, ok := mc.literal(gf.Default); ok {
			switch {
			case v.Type != f.Type:
				mc.errorf(mc.span(gf.Default.Pos, gf.Default.EndPos), TypeMismatch,
					"default of field %q must be %s, not %s", f.Name, f.Type, v.Type)
			case v.Type == Duration && v.I < 0:
				mc.errorf(mc.span(gf.Default.Pos, gf.Default.EndPos), InvalidPolicy,
					"default of field %q is a negative duration", f.Name)
			default:
				f.Default = v
			}
		}
	}
	if first, dup := m.fields[f.Name]; dup {
		mc.duplicate(f.Range, first.Range, "context field", f.Name)
		return
	}
	f.Index = len(m.Context)
	m.Context = append(m.Context, f)
	m.fields[f.Name] = f
}

func (mc *machineChecker) declareEvent(ge *grammar.EventDecl) {
	m := mc.m
	e := &Event{Name: ge.Name.Text, Range: mc.nameRange(ge.Name.Pos, ge.Name.Text), params: map[string]*Field{}}
	for _, p := range ge.Params {
		f := &Field{Name: p.Name.Text, Type: TypeNamed(p.Type.Name), Range: mc.nameRange(p.Name.Pos, p.Name.Text)}
		f.Default = Zero(f.Type)
		if first, dup := e.params[f.Name]; dup {
			mc.duplicate(f.Range, first.Range, "payload field", f.Name)
			continue
		}
		f.Index = len(e.Params)
		e.Params = append(e.Params, f)
		e.params[f.Name] = f
	}
	if first, dup := m.events[e.Name]; dup {
		mc.duplicate(e.Range, first.Range, "event", e.Name)
		return
	}
	e.Index = len(m.Events)
	m.Events = append(m.Events, e)
	m.events[e.Name] = e
}

func (mc *machineChecker) declareAction(ga *grammar.ActionDecl) {
	m := mc.m
	a := &Action{Name: ga.Name.Text, Range: mc.nameRange(ga.Name.Pos, ga.Name.Text)}
	listed := map[*Event]bool{}
	for _, en := range ga.Emits {
		r := mc.nameRange(en.Pos, en.Text)
		if en.Text == "done" || en.Text == "error" {
			mc.errorf(r, BadEmits, "action %q cannot emit the built-in event %q; an action without emits returns done, and a failure is error", a.Name, en.Text)
			continue
		}
		e := m.events[en.Text]
		if e == nil {
			d := mc.errorf(r, BadEmits, "action %q emits undeclared event %q", a.Name, en.Text)
			d.Suggestion = spell(mc.checker, en.Text, m.events)
			continue
		}
		mc.usedEvents[e] = true
		if !listed[e] {
			listed[e] = true
			a.Emits = append(a.Emits, e)
		}
	}
	if first, dup := m.actions[a.Name]; dup {
		mc.duplicate(a.Range, first.Range, "action", a.Name)
		return
	}
	a.Index = len(m.Actions)
	m.Actions = append(m.Actions, a)
	m.actions[a.Name] = a
}

func (mc *machineChecker) declareState(gs *grammar.StateDecl) {
	m := mc.m
	s := &State{Name: gs.Name.Text, Initial: gs.Initial, Final: gs.Final, Range: mc.nameRange(gs.Name.Pos, gs.Name.Text)}
	if first, dup := m.states[s.Name]; dup {
		mc.duplicate(s.Range, first.Range, "state", s.Name)
		return
	}
	if s.Initial {
		if m.Initial != nil {
			d := mc.errorf(s.Range, InitialState, "machine %q has more than one initial state: %q and %q", m.Name, m.Initial.Name, s.Name)
			d.Related = []Note{{Range: m.Initial.Range, Message: fmt.Sprintf("state %q is already initial", m.Initial.Name)}}
		} else {
			m.Initial = s
		}
	}
	s.Index = len(m.States)
	m.States = append(m.States, s)
	m.states[s.Name] = s
	mc.stateDecls = append(mc.stateDecls, gs)
}

func (mc *machineChecker) checkState(s *State, gs *grammar.StateDecl) {
	if gs.Body == nil {
		return
	}
	if s.Final && len(gs.Body.Items) > 0 {
		mc.errorf(s.Range, FinalWithBody, "final state %q cannot have items; a final state completes the instance", s.Name)
		return
	}
	var taskDo *grammar.Do
	for _, item := range gs.Body.Items {
		do, ok := item.(*grammar.Do)
		if !ok {
			continue
		}
		if taskDo != nil {
			d := mc.errorf(mc.keywordRange(do.Pos, "do"), MultipleTasks, "state %q has more than one task", s.Name)
			d.Related = []Note{{Range: s.Task.Range, Message: "first task here"}}
			if a := mc.m.actions[do.Action.Text]; a != nil {
				mc.usedActions[a] = true
			}
			continue
		}
		taskDo = do
		s.Task = mc.checkTask(do)
	}
	for _, item := range gs.Body.Items {
		switch item := item.(type) {
		case *grammar.Transition:
			s.written++
			if t := mc.checkTransition(s, item); t != nil {
				s.Transitions = append(s.Transitions, t)
			}
		case *grammar.Timer:
			s.written++
			timer := mc.checkTimer(item)
			if timer.Target != nil {
				s.targets = append(s.targets, timer.Target)
			}
			s.Timers = append(s.Timers, timer)
		case *grammar.Ignore:
			for _, en := range item.Events {
				if e := mc.eventRef(s, en); e != nil {
					s.Ignores = append(s.Ignores, e)
				}
			}
		}
	}
	mc.checkTransitionOrder(s)
	mc.checkTaskEvents(s, taskDo)
}

// eventRef resolves an event name in `on` or `ignore` of state s.
func (mc *machineChecker) eventRef(s *State, en *grammar.EventName) *Event {
	e := mc.m.Event(en.Text)
	if e == nil {
		d := mc.errorf(mc.nameRange(en.Pos, en.Text), UndefinedEvent, "undefined event %q", en.Text)
		var builtin []string
		if s.Task != nil { // the built-in events, where they may be used
			builtin = []string{"done", "error"}
		}
		d.Suggestion = spell(mc.checker, en.Text, mc.m.events, builtin...)
		return nil
	}
	mc.usedEvents[e] = true
	return e
}

func (mc *machineChecker) stateRef(n *grammar.Name) *State {
	s := mc.m.states[n.Text]
	if s == nil {
		d := mc.errorf(mc.nameRange(n.Pos, n.Text), UndefinedState, "undefined state %q", n.Text)
		d.Suggestion = spell(mc.checker, n.Text, mc.m.states)
	}
	return s
}

func (mc *machineChecker) checkTransition(s *State, gt *grammar.Transition) *Transition {
	r := mc.span(gt.Pos, gt.EndPos)
	e := mc.eventRef(s, gt.Event)
	t := &Transition{Event: e, Range: r}
	scope := exprScope{event: e, eventKnown: e != nil}
	if gt.Guard != nil {
		t.Guard = mc.checkExpr(gt.Guard, scope)
		if ty := t.Guard.Type(); ty != Bool && ty != Invalid {
			mc.errorf(t.Guard.Span(), TypeMismatch, "guard must be bool, not %s", ty)
		}
	}
	t.Target = mc.stateRef(gt.Target)
	if t.Target != nil {
		s.targets = append(s.targets, t.Target)
	}
	t.Sets = mc.checkSets(gt.Sets, scope)
	if e == nil {
		return nil
	}
	if e.Builtin && s.Task == nil {
		mc.errorf(r, MisplacedDoneError, "`on %s` in state %q, which has no task", e.Name, s.Name)
	} else if e == mc.m.Done && s.Task != nil && s.Task.Action != nil && len(s.Task.Action.Emits) > 0 {
		d := mc.errorf(r, MisplacedDoneError, "`on done` can never happen: action %q declares emits, so it always returns one of its events", s.Task.Action.Name)
		d.Related = []Note{{Range: s.Task.Action.Range, Message: "action declared here"}}
	}
	return t
}

func (mc *machineChecker) checkTimer(gt *grammar.Timer) *Timer {
	t := &Timer{Range: mc.span(gt.Pos, gt.EndPos)}
	scope := exprScope{timer: true, eventKnown: true}
	t.Delay = mc.checkExpr(gt.Delay, scope)
	if ty := t.Delay.Type(); ty != Duration && ty != Invalid {
		mc.errorf(t.Delay.Span(), TypeMismatch, "timer delay must be a duration, not %s", ty)
	} else if v, ok := constValue(t.Delay); ok && v.I < 0 {
		mc.errorf(t.Delay.Span(), InvalidPolicy, "timer delay %s is negative", ir.FormatDuration(time.Duration(v.I)))
	}
	t.Target = mc.stateRef(gt.Target)
	t.Sets = mc.checkSets(gt.Sets, scope)
	return t
}

// checkSets checks a transition's or timer's `set` list: each field and
// value, and a field set twice (W108: the assignments are simultaneous,
// so only the last one has any effect).
func (mc *machineChecker) checkSets(sets []*grammar.Assign, scope exprScope) []*Assign {
	var out []*Assign
	for _, ga := range sets {
		a := &Assign{Range: mc.span(ga.Pos, ga.EndPos)}
		a.Value = mc.checkExpr(ga.Value, scope)
		f := mc.m.fields[ga.Field.Text]
		if f == nil {
			d := mc.errorf(mc.nameRange(ga.Field.Pos, ga.Field.Text), UndefinedName, "undefined context field %q", ga.Field.Text)
			d.Suggestion = spell(mc.checker, ga.Field.Text, mc.m.fields)
			continue
		}
		a.Field = f
		if ty := a.Value.Type(); ty != f.Type && ty != Invalid {
			mc.errorf(a.Value.Span(), TypeMismatch, "cannot set %s field %q to %s", f.Type, f.Name, withArticle(ty.String()))
		}
		for i := len(out) - 1; i >= 0; i-- {
			if out[i].Field == f {
				d := mc.warnf(a.Range, SetTwice, "field %q is set again: the earlier assignment has no effect", f.Name)
				d.Related = []Note{{Range: out[i].Range, Message: "the earlier assignment"}}
				break
			}
		}
		out = append(out, a)
	}
	return out
}

// checkTransitionOrder reports ambiguous (E010) and shadowed (W104)
// transitions: after an unguarded transition for an event, a later
// unguarded one is ambiguous and a later guarded one is never taken.
func (mc *machineChecker) checkTransitionOrder(s *State) {
	unguarded := map[*Event]*Transition{}
	for _, t := range s.Transitions {
		first := unguarded[t.Event]
		switch {
		case first != nil && t.Guard == nil:
			d := mc.errorf(t.Range, AmbiguousTransition, "state %q has two transitions on %q without guards", s.Name, t.Event.Name)
			d.Related = []Note{{Range: first.Range, Message: "the first one is here"}}
		case first != nil:
			d := mc.warnf(t.Range, Shadowed, "this transition on %q is never taken: an earlier one has no guard", t.Event.Name)
			d.Related = []Note{{Range: first.Range, Message: "the earlier transition without a guard"}}
		case t.Guard == nil:
			unguarded[t.Event] = t
		}
	}
}

// checkTaskEvents reports what a state's task may emit that the state
// does not handle (E012), and a missing `on error` (W106).
func (mc *machineChecker) checkTaskEvents(s *State, do *grammar.Do) {
	if s.Task == nil {
		return
	}
	handled := map[*Event]bool{}
	for _, t := range s.Transitions {
		handled[t.Event] = true
	}
	for _, e := range s.Ignores {
		handled[e] = true
	}
	if a := s.Task.Action; a != nil {
		for _, e := range a.Emits {
			if !handled[e] {
				d := mc.errorf(s.Task.Range, UnhandledEmit, "task %q may emit %q, which state %q neither handles nor ignores", a.Name, e.Name, s.Name)
				d.Related = []Note{{Range: a.Range, Message: fmt.Sprintf("action %q declared here", a.Name)}}
			}
		}
	}
	onError := false
	for _, t := range s.Transitions {
		onError = onError || t.Event == mc.m.Error
	}
	switch {
	case onError:
	case slices.Contains(s.Ignores, mc.m.Error):
		mc.warnf(s.Task.Range, NoErrorHandler, "state %q has a task but no `on error`: it ignores error, so a permanent failure leaves the instance here, active with nothing to do", s.Name)
	default:
		mc.warnf(s.Task.Range, NoErrorHandler, "state %q has a task but no `on error`: a permanent failure parks the instance", s.Name)
	}
}

func (mc *machineChecker) checkUnused() {
	for _, e := range mc.m.Events {
		if !mc.usedEvents[e] {
			mc.warnf(e.Range, Unused, "event %q is declared but never used", e.Name)
		}
	}
	for _, a := range mc.m.Actions {
		if !mc.usedActions[a] {
			mc.warnf(a.Range, Unused, "action %q is declared but never used", a.Name)
		}
	}
}

func (mc *machineChecker) checkTask(gd *grammar.Do) *Task {
	t := &Task{Timeout: DefaultTimeout, Retry: DefaultRetry, Backoff: DefaultBackoff, Jitter: JitterFull,
		Range: rangeOf(mc.file, gd.Pos, mc.nameRange(gd.Action.Pos, gd.Action.Text).endPosition())}
	t.Action = mc.m.actions[gd.Action.Text]
	if t.Action == nil {
		d := mc.errorf(mc.nameRange(gd.Action.Pos, gd.Action.Text), UndefinedAction, "undefined action %q", gd.Action.Text)
		d.Suggestion = spell(mc.checker, gd.Action.Text, mc.m.actions)
	} else {
		mc.usedActions[t.Action] = true
	}
	if gd.Policy == nil {
		return t
	}
	seen := map[string]Range{}
	for _, item := range gd.Policy.Items {
		r := mc.span(item.Pos, item.EndPos)
		name := mc.src.Tokens[mc.src.TokenIndex(item.Pos.Offset)].Value
		if first, dup := seen[name]; dup {
			d := mc.errorf(r, InvalidPolicy, "policy item %q given twice", name)
			d.Related = []Note{{Range: first, Message: "first given here"}}
			continue
		}
		seen[name] = r
		switch {
		case item.Timeout != nil:
			if d, ok := mc.policyDuration(item.Timeout, r, "timeout"); ok {
				if d == 0 {
					mc.errorf(r, InvalidPolicy, "timeout must be positive")
				} else {
					t.Timeout = d
				}
			}
		case item.Retry != nil:
			if v, ok := mc.literal(item.Retry); ok {
				switch {
				case v.Type != Int:
					mc.errorf(r, TypeMismatch, "retry takes a whole number of retries, not a %s", v.Type)
				case v.I < 0:
					mc.errorf(r, InvalidPolicy, "retry %d is negative", v.I)
				case v.I > 1<<31-1:
					mc.errorf(r, InvalidPolicy, "retry %d is too large", v.I)
				default:
					t.Retry = int(v.I)
				}
			}
		case item.Backoff != nil:
			if b, ok := mc.checkBackoff(item.Backoff, r); ok {
				t.Backoff = b
			}
		case item.Jitter != nil:
			t.Jitter = map[string]Jitter{"none": JitterNone, "full": JitterFull, "equal": JitterEqual}[*item.Jitter]
		}
	}
	return t
}

func (r Range) endPosition() lexer.Position {
	return lexer.Position{Filename: r.File, Offset: r.End.Offset, Line: r.End.Line, Column: r.End.Column}
}

func (mc *machineChecker) checkBackoff(gb *grammar.Backoff, r Range) (Backoff, bool) {
	ok := true
	dur := func(l *grammar.Literal, what string) time.Duration {
		d, good := mc.policyDuration(l, r, what)
		ok = ok && good
		return d
	}
	var b Backoff
	switch {
	case gb.Constant != nil:
		b = Backoff{Kind: Constant, Initial: dur(gb.Constant, "backoff delay")}
	case gb.Linear != nil:
		b = Backoff{Kind: Linear, Initial: dur(gb.Linear.Initial, "initial"), Step: dur(gb.Linear.Step, "step")}
		if gb.Linear.Max != nil {
			b.Max = dur(gb.Linear.Max, "max")
		}
	case gb.Exponential != nil:
		b = Backoff{Kind: Exponential, Initial: dur(gb.Exponential.Initial, "initial")}
		if v, good := mc.literal(gb.Exponential.Factor); good {
			switch v.Type {
			case Int:
				b.Factor = float64(v.I)
			case Float:
				b.Factor = v.F
			default:
				mc.errorf(r, TypeMismatch, "backoff factor must be a number, not a %s", v.Type)
				ok = false
			}
			if ok && b.Factor <= 0 {
				mc.errorf(r, InvalidPolicy, "backoff factor must be positive, not %s", strconv.FormatFloat(b.Factor, 'g', -1, 64))
				ok = false
			}
		} else {
			ok = false
		}
		if gb.Exponential.Max != nil {
			b.Max = dur(gb.Exponential.Max, "max")
		}
	}
	return b, ok
}

// policyDuration checks a literal that must be a non-negative duration.
func (mc *machineChecker) policyDuration(l *grammar.Literal, r Range, what string) (time.Duration, bool) {
	v, ok := mc.literal(l)
	if !ok {
		return 0, false
	}
	if v.Type == Int && v.I == 0 {
		return 0, true // a bare 0 is a zero duration
	}
	if v.Type != Duration {
		if v.Type == Int {
			mc.errorf(r, InvalidPolicy, "%s %d needs a unit, such as %ds", what, v.I, v.I)
		} else {
			mc.errorf(r, TypeMismatch, "%s must be a duration, not a %s", what, v.Type)
		}
		return 0, false
	}
	if v.I < 0 {
		mc.errorf(r, InvalidPolicy, "%s %s is negative", what, ir.FormatDuration(time.Duration(v.I)))
		return 0, false
	}
	return time.Duration(v.I), true
}

// literal evaluates a signed literal.
func (c *checker) literal(l *grammar.Literal) (Value, bool) {
	if l.Neg && isMinIntMagnitude(l.Value) {
		return Value{Type: Int, I: math.MinInt64}, true
	}
	v, ok := c.value(l.Value)
	if !ok || !l.Neg {
		return v, ok
	}
	switch v.Type {
	case Int, Duration:
		v.I = -v.I
	case Float:
		v.F = -v.F
	default:
		c.errorf(c.span(l.Pos, l.EndPos), TypeMismatch, "cannot negate a %s", v.Type)
		return v, false
	}
	return v, true
}

// isMinIntMagnitude reports whether gv is the integer 9223372036854775808,
// which is in range only negated.
func isMinIntMagnitude(gv *grammar.Value) bool {
	return gv.Int != nil && *gv.Int == strconv.FormatUint(grammar.MinIntMagnitude, 10)
}

// value converts a literal token, which the lexer has validated. It
// takes 9223372036854775808 only after a unary minus, which the callers
// handle before they get here.
func (c *checker) value(gv *grammar.Value) (Value, bool) {
	switch {
	case gv.Int != nil:
		n, _ := strconv.ParseInt(*gv.Int, 10, 64)
		return Value{Type: Int, I: n}, true
	case gv.Float != nil:
		f, _ := strconv.ParseFloat(*gv.Float, 64)
		return Value{Type: Float, F: f}, true
	case gv.Duration != nil:
		d, _ := time.ParseDuration(*gv.Duration)
		return Value{Type: Duration, I: int64(d)}, true
	case gv.String != nil:
		s, _ := strconv.Unquote(*gv.String)
		return Value{Type: String, S: s}, true
	case gv.Bool != nil:
		if *gv.Bool == "true" {
			return Value{Type: Bool, I: 1}, true
		}
		return Value{Type: Bool}, true
	}
	return Value{}, false
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// withArticle puts "a" or "an" before a type's name: "an int".
func withArticle(name string) string {
	if name != "" && (name[0] == 'a' || name[0] == 'e' || name[0] == 'i' || name[0] == 'o' || name[0] == 'u') {
		return "an " + name
	}
	return "a " + name
}
