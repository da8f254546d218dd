package runtime

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
)

// worker is the scratch space of one goroutine handling work: it is
// reused for every item, so the steady state allocates nothing.
type worker struct {
	e        *Engine
	lease    Lease
	inst     Instance
	commit   Commit
	history  []HistoryEntry
	schedule []Work
	changes  []Change
	sets     []ir.Value
	stack    []ir.Value
}

func (e *Engine) newWorker() *worker {
	return &worker{e: e, stack: make([]ir.Value, 0, 16)}
}

func (w *worker) reset() {
	w.history = w.history[:0]
	w.schedule = w.schedule[:0]
	w.changes = w.changes[:0]
	w.commit = Commit{}
}

// process handles the work w holds a lease on.
func (e *Engine) process(ctx context.Context, w *worker) error {
	w.reset()
	if w.lease.Work.Kind == WorkTask {
		return e.attempt(ctx, w)
	}
	return e.step(ctx, w)
}

// eval runs an expression with w's stack.
func (w *worker) eval(m *machine, x *ir.Expr, ctxValues, payload []ir.Value) (ir.Value, error) {
	if cap(w.stack) < m.ir.MaxStack() {
		w.stack = make([]ir.Value, 0, m.ir.MaxStack())
	}
	return x.Eval(ctxValues, payload, w.stack)
}

// step handles one item of instance work: an event, a timer firing or a
// task result.
func (e *Engine) step(ctx context.Context, w *worker) error {
	item := &w.lease.Work
	if err := e.store.Load(ctx, item.Instance, &w.inst); err != nil {
		return e.drop(ctx, w, err)
	}
	inst := &w.inst
	m, err := e.machineFor(ctx, inst)
	if err != nil {
		_ = e.store.Release(ctx, &w.lease)
		return err
	}
	now := e.opts.Clock.Now()
	if inst.Status != Active {
		return e.complete(ctx, w)
	}
	if item.Visit != 0 && item.Visit != inst.Visit {
		w.history = append(w.history, HistoryEntry{Time: now, Kind: HistStale, Version: inst.Version,
			From: inst.State, To: -1, Event: eventOf(item), Timer: item.Timer})
		return e.complete(ctx, w)
	}
	st := &m.ir.States[inst.State]
	if item.Kind == WorkTimer {
		t := &st.Timers[item.Timer]
		return e.transition(ctx, w, m, now, -1, item.Timer, t.Target, t.Sets, nil)
	}
	candidates := st.Candidates(item.Event)
	for i := range candidates {
		c := &candidates[i]
		if c.Guard != nil {
			v, err := w.eval(m, c.Guard, inst.Context, item.Payload)
			if err != nil {
				return e.fail(ctx, w, now, err.Error(), false)
			}
			if v.I == 0 {
				continue
			}
		}
		return e.transition(ctx, w, m, now, item.Event, -1, c.Target, c.Sets, item.Payload)
	}
	if st.Ignores(item.Event) {
		return e.complete(ctx, w)
	}
	if item.Event == ir.EventError && item.Visit != 0 {
		// The state's task failed for good and nothing handles error.
		msg := "task failed"
		if len(item.Payload) > 0 {
			msg = fmt.Sprintf("task %s failed after %d attempt(s): %s", actionName(m, st), item.Payload[1].I, item.Payload[0].S)
		}
		return e.fail(ctx, w, now, msg, true)
	}
	w.history = append(w.history, HistoryEntry{Time: now, Kind: HistUnhandled, Version: inst.Version, From: inst.State, To: -1, Event: item.Event})
	return e.complete(ctx, w)
}

func actionName(m *machine, st *ir.State) string {
	if st.Task == nil {
		return "?"
	}
	return m.ir.Actions[st.Task.Action].Name
}

func eventOf(item *Work) int {
	if item.Kind == WorkEvent {
		return item.Event
	}
	return -1
}

// transition takes a transition (event >= 0) or timer (timer >= 0):
// evaluates every set against the state before it, assigns them
// together, enters the target and commits.
func (e *Engine) transition(ctx context.Context, w *worker, m *machine, now time.Time, event, timer, target int, sets []ir.Assign, payload []ir.Value) error {
	inst := &w.inst
	w.sets = w.sets[:0]
	for i := range sets {
		v, err := w.eval(m, &sets[i].Value, inst.Context, payload)
		if err != nil {
			return e.fail(ctx, w, now, err.Error(), false)
		}
		w.sets = append(w.sets, v)
	}
	for i := range sets {
		inst.Context[sets[i].Field] = w.sets[i]
	}
	from := inst.State
	inst.State = target
	inst.Visit++
	inst.Updated = now
	if err := w.enter(m, inst, now); err != nil {
		// A timer delay faulted: the transition is abandoned.
		if reload := e.store.Load(ctx, inst.ID, inst); reload != nil {
			return e.drop(ctx, w, reload)
		}
		w.schedule = w.schedule[:0]
		return e.fail(ctx, w, now, err.Error(), false)
	}
	kind := HistTransition
	if event < 0 {
		kind = HistTimer
	}
	version := inst.Version + 1
	w.history = append(w.history, HistoryEntry{Time: now, Kind: kind, Version: version, From: from, To: target, Event: event, Timer: timer})
	w.changes = append(w.changes, Change{Time: now, Instance: inst.ID, Machine: inst.Machine, From: from, To: target,
		Event: event, Timer: timer, Version: version, Status: inst.Status})
	w.commit = Commit{Instance: inst, History: w.history, Schedule: w.schedule, Changes: w.changes, DropWork: inst.Status == Completed}
	return e.commit(ctx, w)
}

// enter schedules what entering inst's current state starts: its task's
// first attempt and its timers; a final state completes the instance.
func (w *worker) enter(m *machine, inst *Instance, now time.Time) error {
	st := &m.ir.States[inst.State]
	if st.Final {
		inst.Status = Completed
		return nil
	}
	if st.Task != nil {
		w.schedule = append(w.schedule, Work{Kind: WorkTask, Due: now, Visit: inst.Visit, Action: st.Task.Action, Attempt: 1})
	}
	for i := range st.Timers {
		d, err := w.eval(m, &st.Timers[i].Delay, inst.Context, nil)
		if err != nil {
			return err
		}
		w.schedule = append(w.schedule, Work{Kind: WorkTimer, Due: now.Add(max(time.Duration(d.I), 0)), Visit: inst.Visit, Timer: i})
	}
	return nil
}

// fail parks the instance: it keeps its state and context.
func (e *Engine) fail(ctx context.Context, w *worker, now time.Time, msg string, task bool) error {
	inst := &w.inst
	inst.Status = Failed
	inst.Failure = msg
	inst.FailedTask = task
	inst.Updated = now
	w.history = append(w.history[:0], HistoryEntry{Time: now, Kind: HistFault, Version: inst.Version + 1, From: inst.State, To: -1, Event: -1, Message: msg})
	w.commit = Commit{Instance: inst, History: w.history}
	return e.commit(ctx, w)
}

// commit writes w.commit fenced by the version read. A stale commit is
// dropped: the instance changed, and the work is still queued for the
// worker that holds it now.
func (e *Engine) commit(ctx context.Context, w *worker) error {
	err := e.store.Commit(ctx, &w.lease, &w.commit)
	switch {
	case err == nil:
		e.notify(w.inst.ID, w.history, w.changes)
		return nil
	case errors.Is(err, ErrStale), errors.Is(err, ErrLostLease):
		e.opts.Logger.Warn("commit rejected", "instance", w.inst.ID, "version", w.inst.Version, "reason", err)
		return nil
	}
	return err
}

// complete finishes w's work without changing the instance.
func (e *Engine) complete(ctx context.Context, w *worker) error {
	err := e.store.Complete(ctx, &w.lease, w.history, w.schedule)
	if err == nil {
		e.notify(w.lease.Work.Instance, w.history, nil)
		return nil
	}
	if errors.Is(err, ErrLostLease) {
		return nil
	}
	return err
}

// drop finishes work whose instance is gone.
func (e *Engine) drop(ctx context.Context, w *worker, cause error) error {
	if errors.Is(cause, ErrNotFound) {
		w.history = w.history[:0]
		_ = e.store.Complete(ctx, &w.lease, nil, nil)
		return nil
	}
	return cause
}
