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
	chain    Chain // the next claim, made by the write that finishes lease's work
	inst     Instance
	commit   Commit
	history  []HistoryEntry
	schedule []Work
	sets     []ir.Value
	next     []ir.Value // the context a transition builds
	stack    []ir.Value

	// Fire's inline path: the event to deliver and what came of it.
	fire     Work
	fireName string
	firePay  map[string]any
	// firePayload holds the typed payload of Fire's event (valuesInto).
	firePayload []ir.Value
	fireErr     error
	fireQueue   bool // the engine does not know the machine: use the queue
	stamped     bool // the time deciding uses is a stamp (RealClock.Stamp)
	stampsLeft  int  // stamps Fire may take before it reads the clock
	inlineCall  func(*Instance, *Commit) bool
	cached      *machine
	cachedHash  string
	cachedGen   uint64
	// Fire's last event, by name, of machine cachedEventOf
	cachedEventOf   *machine
	cachedEventName string
	cachedEvent     int
	noted           Instance // Fire's committed instance, as notify reads it
}

func (e *Engine) newWorker() *worker {
	w := &worker{e: e, stack: make([]ir.Value, 0, 16)}
	w.inlineCall = w.inlineDecide
	return w
}

func (w *worker) reset() {
	w.history = w.history[:0]
	w.schedule = w.schedule[:0]
	w.commit = Commit{}
	w.stamped = false
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

// outcome is what deciding on a work item came to.
type outcome uint8

const (
	// consumed: the item is used up; only w.history and w.schedule are
	// recorded, the instance is unchanged.
	consumed outcome = iota
	// changed: the instance changed and is committed as a new version.
	changed
)

// step handles one item of instance work: an event, a timer firing or a
// task result. It loads the instance, decides, and commits fenced by the
// version it read.
func (e *Engine) step(ctx context.Context, w *worker) error {
	item := &w.lease.Work
	if err, _ := e.whileLeased(ctx, w, func() error { _, err := e.loadFor(ctx, w); return err }); err != nil {
		return e.drop(ctx, w, err)
	}
	m, err := e.machineFor(ctx, &w.inst)
	if err != nil {
		_ = e.store.Release(ctx, &w.lease)
		return err
	}
	if w.decide(m, &w.inst, item, e.opts.Clock.Now()) == changed {
		w.commitOf(&w.inst, &w.commit)
		return e.commit(ctx, w)
	}
	return e.complete(ctx, w)
}

// commitOf fills c with the commit of what w decided for inst: its
// history and schedule, dropping all of its pending work when it has
// completed, and its queued timers when it entered a state (a
// transition, by event or timer, always starts a new visit).
func (w *worker) commitOf(inst *Instance, c *Commit) {
	c.Instance, c.History, c.Schedule = inst, w.history, w.schedule
	c.DropWork, c.DropTimers = inst.Status == Completed, false
	for i := range w.history {
		if k := w.history[i].Kind; k == HistTransition || k == HistTimer {
			c.DropTimers = true
		}
	}
}

// loadFor fills w.inst with the instance of w's leased work: the one the
// claim handed over (handed), or else a Load.
func (e *Engine) loadFor(ctx context.Context, w *worker) (handed bool, err error) {
	snap := w.lease.Instance
	w.lease.Instance = nil // used once: a store that does not fill it leaves it be
	if snap != nil && snap.ID == w.lease.Work.Instance {
		w.inst.CopyFrom(snap)
		return true, nil
	}
	return false, e.store.Load(ctx, w.lease.Work.Instance, &w.inst)
}

// decide applies language.md "Meaning" to one item of instance work:
// it may change inst, and fills w's history and schedule. It
// never touches the store, so it runs the same on a loaded copy (step)
// and in place under a store's lock (Fire's inline path).
func (w *worker) decide(m *machine, inst *Instance, item *Work, now time.Time) outcome {
	if inst.Status != Active {
		if inst.Status == Completed && KeptAtEnd(item) {
			// Queued before the instance completed: its final state
			// takes no transition for it (language.md "Meaning").
			w.unhandled(inst, item, now)
		}
		return consumed
	}
	out := w.decideActive(m, inst, item, now)
	if inst.Status == Failed && item.Kind == WorkEvent && item.Visit != 0 {
		// A fault on the state's task's result: the result is consumed,
		// so nothing would run in this state again. As after a task that
		// failed for good, Retry runs the task again.
		inst.FailedTask = true
	}
	if inst.Status == Failed && item.Kind == WorkTimer && item.Visit == inst.Visit {
		// A fault as one of the state's timers fired (in its transition,
		// or entering the target): the firing is consumed, and the state
		// may have nothing else to move it on. Retry fires it again.
		inst.FailedTimer = item.Timer + 1
	}
	return out
}

// decideActive is decide for an active instance.
func (w *worker) decideActive(m *machine, inst *Instance, item *Work, now time.Time) outcome {
	if item.Visit != 0 && item.Visit != inst.Visit {
		w.history = append(w.history, HistoryEntry{Time: now, Kind: HistStale, Version: inst.Version,
			From: inst.State, To: -1, Event: eventOf(item), Timer: item.Timer})
		return consumed
	}
	st := &m.ir.States[inst.State]
	if item.Kind == WorkTimer {
		t := &st.Timers[item.Timer]
		return w.transition(m, inst, now, -1, item.Timer, t.Target, t.Sets, nil)
	}
	candidates := st.Candidates(item.Event)
	for i := range candidates {
		c := &candidates[i]
		if c.Guard != nil {
			v, err := w.eval(m, c.Guard, inst.Context, item.Payload)
			if err != nil {
				return w.fail(inst, now, err.Error(), false)
			}
			if v.I == 0 {
				continue
			}
		}
		return w.transition(m, inst, now, item.Event, -1, c.Target, c.Sets, item.Payload)
	}
	if st.Ignores(item.Event) {
		return consumed
	}
	if item.Event == ir.EventError && item.Visit != 0 {
		// The state's task failed for good and nothing handles error.
		msg := "task failed"
		if len(item.Payload) > 0 {
			msg = fmt.Sprintf("task %s failed after %d attempt(s): %s", actionName(m, st), item.Payload[1].I, item.Payload[0].S)
		}
		return w.fail(inst, now, msg, true)
	}
	w.unhandled(inst, item, now)
	return consumed
}

// unhandled records that inst's state took no transition for the event.
func (w *worker) unhandled(inst *Instance, item *Work, now time.Time) {
	w.history = append(w.history, HistoryEntry{Time: now, Kind: HistUnhandled, Version: inst.Version, From: inst.State, To: -1, Event: item.Event})
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

// transition takes a transition (event >= 0) or timer (timer >= 0).
// Every set is evaluated against the state before it; the new context is
// built in scratch space and the target's timers are evaluated against
// it, so a fault anywhere leaves inst as it was.
func (w *worker) transition(m *machine, inst *Instance, now time.Time, event, timer, target int, sets []ir.Assign, payload []ir.Value) outcome {
	if w.stamped && len(m.ir.States[target].Timers) > 0 {
		// A stamp may lag the clock: timers are due from a reading of it.
		now = w.e.opts.Clock.Now()
	}
	w.sets = w.sets[:0]
	for i := range sets {
		v, err := w.eval(m, &sets[i].Value, inst.Context, payload)
		if err != nil {
			return w.fail(inst, now, err.Error(), false)
		}
		w.sets = append(w.sets, v)
	}
	next := inst.Context
	if len(sets) > 0 {
		w.next = append(w.next[:0], inst.Context...)
		for i := range sets {
			w.next[sets[i].Field] = w.sets[i]
		}
		next = w.next
	}
	status, err := w.enter(m, target, inst.Visit+1, next, now)
	if err != nil {
		return w.fail(inst, now, err.Error(), false)
	}
	copy(inst.Context, next)
	from := inst.State
	inst.State = target
	inst.Visit++
	inst.Status = status
	inst.Updated = now
	kind := HistTransition
	if event < 0 {
		kind = HistTimer
	}
	version := inst.Version + 1
	h := w.record()
	h.Time, h.Kind, h.Version, h.From, h.To, h.Event, h.Timer = now, kind, version, from, target, event, timer
	return changed
}

// record appends a zero history entry for the caller to fill in place.
// (A composite literal is built on the stack and then copied, and on
// Fire's path the copy, which reads the fields just written, cost more
// than the rest of the entry.)
func (w *worker) record() *HistoryEntry {
	w.history = append(w.history, HistoryEntry{})
	return &w.history[len(w.history)-1]
}

// enter schedules what entering state (in the given visit, with the
// given context) starts: its task's first attempt and its timers. It
// returns the status the instance has there: Completed in a final state.
func (w *worker) enter(m *machine, state int, visit uint64, ctxValues []ir.Value, now time.Time) (Status, error) {
	st := &m.ir.States[state]
	if st.Final {
		return Completed, nil
	}
	mark := len(w.schedule)
	if st.Task != nil {
		w.schedule = append(w.schedule, Work{Kind: WorkTask, Due: now, Visit: visit, Action: st.Task.Action, Attempt: 1})
	}
	for i := range st.Timers {
		d, err := w.eval(m, &st.Timers[i].Delay, ctxValues, nil)
		if err != nil {
			w.schedule = w.schedule[:mark]
			return Active, err
		}
		w.schedule = append(w.schedule, Work{Kind: WorkTimer, Due: now.Add(max(time.Duration(d.I), 0)), Visit: visit, Timer: i})
	}
	return Active, nil
}

// fail parks the instance: it keeps its state and context.
func (w *worker) fail(inst *Instance, now time.Time, msg string, task bool) outcome {
	inst.Status = Failed
	inst.Failure = msg
	inst.FailedTask = task
	inst.FailedTimer = 0
	inst.Updated = now
	w.history = append(w.history[:0], HistoryEntry{Time: now, Kind: HistFault, Version: inst.Version + 1, From: inst.State, To: -1, Event: -1, Message: msg})
	w.schedule = w.schedule[:0]
	return changed
}

// commit writes w.commit fenced by the version read. A rejected commit
// is dropped: the instance changed since it was read (stale: the work
// is still ours, and is given back to be decided again on the new
// version), or the lease was lost (the work belongs to its new holder).
func (e *Engine) commit(ctx context.Context, w *worker) error {
	err, retried := e.whileLeased(ctx, w, func() error { return e.store.Commit(ctx, &w.lease, &w.commit) })
	switch {
	case err == nil:
		e.notify(w.inst.ID, &w.inst, w.history)
		return nil
	case errors.Is(err, ErrStale), errors.Is(err, ErrLostLease):
		if retried && e.notifyIfLanded(ctx, w) {
			return nil // an earlier try, whose reply was lost, wrote it
		}
		e.rejected(ctx, w, err)
		if errors.Is(err, ErrStale) {
			_ = e.store.Release(ctx, &w.lease)
		}
		return nil
	case errors.Is(err, ErrNotFound):
		return e.removed(ctx, w)
	}
	return e.unanswered(ctx, w, err)
}

// removed drops w's result: its instance ended and was removed (past
// the retention) while its work ran, which is no fault of the store's.
func (e *Engine) removed(ctx context.Context, w *worker) error {
	e.opts.Logger.Info(endedAndRemoved+" while its work ran; the result is dropped", "instance", w.lease.Work.Instance)
	return e.drop(ctx, w, ErrNotFound)
}

const endedAndRemoved = "the instance ended and was removed"

// unanswered ends w's write that failed for want of the store (err)
// until its lease ran out or the worker stopped: it gives the lease
// back, and reports the write if it landed all the same (its reply was
// lost), which then is no error: the work is done.
func (e *Engine) unanswered(ctx context.Context, w *worker, err error) error {
	e.opts.Observer.StoreError(err)
	landed := e.notifyIfLanded(ctx, w)
	e.giveUp(ctx, w)
	if landed {
		e.opts.Logger.Info("the store did not answer a write, which landed all the same", "instance", w.inst.ID, "err", err)
		return nil
	}
	return err
}

// giveUp gives back w's lease after a write that failed for want of the
// store until the lease ran out (or the worker stopped), freeing what
// the store holds for it: the work is another worker's to do now.
func (e *Engine) giveUp(ctx context.Context, w *worker) { _ = e.giveBack(ctx, &w.lease) }

// giveBack releases l, trying for up to a second even when ctx is done.
func (e *Engine) giveBack(ctx context.Context, l *Lease) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	return e.store.Release(ctx, l)
}

// giveBackStopping gives back l as the worker stops. One it cannot give
// back (the store is away) is logged: its work waits until the lease
// ends, and nobody would know why.
func (e *Engine) giveBackStopping(ctx context.Context, l *Lease) {
	if err := e.giveBack(ctx, l); err != nil && !errors.Is(err, ErrLostLease) {
		e.opts.Logger.Warn("stopping: could not give back work; it is due again when its lease ends",
			"instance", l.Work.Instance, "lease_until", l.Until.UTC().Format(time.RFC3339Nano), "err", err)
	}
}

// whileLeased runs call, a store read or write for w's leased work, and
// runs it again with backoff while it fails for want of the store (not
// refused by it) and w's lease lasts: a short outage then delays the
// work by the outage, instead of leaving it until the lease runs out
// and another worker takes it (a task's side effects again). retried
// says whether call ran more than once: an earlier run whose reply was
// lost may have written what a later one is refused for.
func (e *Engine) whileLeased(ctx context.Context, w *worker, call func() error) (err error, retried bool) {
	delay := 10 * time.Millisecond
	for {
		if w.lease.Then != nil {
			w.lease.Then.Filter.Now = e.opts.Clock.Now() // the time of the write
		}
		err = call()
		if err == nil || refusal(err) || ctx.Err() != nil || !e.opts.Clock.Now().Add(delay).Before(w.lease.Until) {
			return err, retried
		}
		if !retried {
			e.opts.Logger.Warn("the store could not take this now (unreachable, or refusing for a while); trying again while the lease lasts",
				"instance", w.lease.Work.Instance, "err", err, "lease_until", w.lease.Until)
		}
		e.opts.Observer.StoreError(err)
		retried = true
		e.opts.Clock.Sleep(delay, ctx.Done())
		delay = min(2*delay, time.Second)
	}
}

// refusal reports whether err is the store's answer, which trying again
// would not change, rather than a failure to reach it.
func refusal(err error) bool {
	return errors.Is(err, ErrStale) || errors.Is(err, ErrLostLease) || errors.Is(err, ErrNotFound) ||
		errors.Is(err, ErrExists) || errors.Is(err, ErrRejected) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// notifyIfLanded reports w's commit (metrics, OnChange, OnHistory), and
// says so, when it is in the store although the store failed to answer
// it (a lost connection, a timeout): the instance has the version the
// commit wrote, and its history the commit's first entry. Otherwise the
// work is done again later, and reported then.
func (e *Engine) notifyIfLanded(ctx context.Context, w *worker) bool {
	if len(w.history) == 0 || w.commit.Instance == nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	var inst Instance
	if err := e.store.Load(ctx, w.inst.ID, &inst); err != nil || inst.Version != w.commit.Instance.Version+1 {
		return false
	}
	history, err := e.store.History(ctx, w.inst.ID)
	if err != nil {
		return false
	}
	ours := w.history[0]
	for _, h := range history {
		if h.Kind == ours.Kind && h.Version == ours.Version && h.Time.UnixMilli() == ours.Time.UnixMilli() &&
			h.From == ours.From && h.To == ours.To && h.Event == ours.Event && h.Attempt == ours.Attempt {
			e.notify(w.inst.ID, &w.inst, w.history)
			return true
		}
	}
	return false
}

// complete finishes w's work without changing the instance.
func (e *Engine) complete(ctx context.Context, w *worker) error {
	err, retried := e.whileLeased(ctx, w, func() error { return e.store.Complete(ctx, &w.lease, w.history, w.schedule) })
	switch {
	case err == nil:
		e.notify(w.lease.Work.Instance, nil, w.history)
		return nil
	case errors.Is(err, ErrLostLease) && retried:
		e.opts.Logger.Info("the store refused a write that an earlier try, whose reply was lost, may have made", "instance", w.lease.Work.Instance)
		return nil
	case errors.Is(err, ErrLostLease):
		e.rejected(ctx, w, err)
		return nil
	}
	e.giveUp(ctx, w)
	return err
}

// rejected logs and counts a commit the store refused: the instance
// moved on since w read it, or w's lease ran out (a paused or slow
// worker) and the work is someone else's. A lease that ended before its
// time because the instance ended (an event took it to a final state, or
// an operator cancelled it) is no fence at work: that is logged plainly,
// and not counted as stale. One that expired is, and the log says
// whether the instance has ended since.
func (e *Engine) rejected(ctx context.Context, w *worker, err error) {
	id := w.lease.Work.Instance
	reason := err.Error()
	if errors.Is(err, ErrLostLease) {
		var now Instance
		lerr := e.store.Load(ctx, id, &now)
		ended := ""
		switch {
		case lerr == nil && (now.Status == Completed || now.Status == Cancelled):
			ended = "the instance ended (" + now.Status.String() + ")"
		case errors.Is(lerr, ErrNotFound): // ended, and removed (Retention)
			ended = endedAndRemoved
		}
		switch {
		case ended != "" && e.opts.Clock.Now().Before(w.lease.Until):
			e.opts.Logger.Info(ended+" while its work ran; the result is dropped", "instance", id)
			return
		case ended != "":
			reason = "the lease on this work expired while it ran, and " + ended + " since"
		}
	}
	machine := ""
	if w.inst.ID == id {
		machine = w.inst.Machine
	}
	e.opts.Logger.Warn("commit rejected", "instance", id, "version", w.inst.Version, "reason", reason)
	e.opts.Observer.Stale(machine)
}

// drop finishes work whose instance is gone, or gives the work back
// when the instance could not be read.
func (e *Engine) drop(ctx context.Context, w *worker, cause error) error {
	if errors.Is(cause, ErrNotFound) {
		w.history = w.history[:0]
		_ = e.store.Complete(ctx, &w.lease, nil, nil)
		return nil
	}
	e.giveUp(ctx, w)
	return cause
}
