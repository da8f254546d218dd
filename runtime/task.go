package runtime

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
)

// attempt runs one task attempt and turns its outcome into follow-up
// work: the action's event (or done), a retry after the backoff, or
// error once retries are exhausted.
func (e *Engine) attempt(ctx context.Context, w *worker) error {
	item := &w.lease.Work
	handed, err := e.loadFor(ctx, w)
	if err != nil {
		return e.drop(ctx, w, err)
	}
	inst := &w.inst
	m, err := e.machineFor(ctx, inst)
	if err != nil {
		_ = e.store.Release(ctx, &w.lease)
		return err
	}
	late, isLate := deferredTimeout(item)
	from, seen := inst.State, inst.Version
	switch {
	case isLate && (inst.Status == Active || inst.Status == Failed):
		// The attempt ran and timed out; it fails now, at its deadline,
		// as it would have on the real clock, though the instance may
		// have moved on since it ran: the failure is recorded with the
		// state and version the attempt saw, and an error it leads to is
		// then discarded as from an earlier visit.
		from, seen = late.from, late.version
	case inst.Status != Active || inst.Visit != item.Visit:
		return e.complete(ctx, w) // the instance has moved on
	}
	st := &m.ir.States[from]
	task := st.Task
	if task == nil || task.Action != item.Action {
		return e.complete(ctx, w)
	}
	action := &m.ir.Actions[item.Action]
	var result Result
	var runErr error
	var took time.Duration
	if isLate {
		runErr, took = errors.New(late.msg), time.Duration(task.Timeout)
	} else {
		handler := m.handlers[item.Action]
		if handler == nil {
			if _, ok := e.store.(HandlerDirectory); !ok {
				_ = e.store.Release(ctx, &w.lease) // for an engine that has one
				return nil
			}
			// The store gave it out because no engine has a handler.
			handler = func(context.Context, *Call) (Result, error) {
				return Result{}, fmt.Errorf("no handler for action %s", action.Name)
			}
		}
		timeout := time.Duration(task.Timeout)
		call := &Call{
			Machine:        m.ir.Name,
			Instance:       inst.ID,
			State:          st.Name,
			Action:         action.Name,
			Context:        Fields{schema: m.ir.Context, values: append([]ir.Value(nil), inst.Context...)},
			Attempt:        item.Attempt,
			IdempotencyKey: IdempotencyKey(inst),
			Deadline:       e.opts.Clock.Now().Add(timeout),
		}
		began := time.Now()
		result, runErr = e.runHandler(ctx, w, handler, call, timeout)
		took = time.Since(began)
		if ctx.Err() != nil {
			e.giveBackStopping(ctx, &w.lease)
			return ctx.Err()
		}
		if errors.Is(runErr, errTimedOut) && call.Deadline.After(e.opts.Clock.Now()) {
			// A timed-out attempt fails at its deadline. On a virtual
			// clock, which a handler's run does not move, that is still
			// ahead: the failure is recorded then, as work due at the
			// deadline, and what is due before it (a shorter timer)
			// comes first.
			w.schedule = append(w.schedule, lateFailure(item, call.Deadline, runErr.Error(), inst))
			return e.complete(ctx, w)
		}
	}
	now := e.opts.Clock.Now()
	if runErr == nil && result.pending || errors.Is(runErr, ErrPending) {
		return e.complete(ctx, w)
	}
	var event int
	var payload []ir.Value
	if runErr == nil {
		event, payload, runErr = e.checkResult(m, action, result)
	}
	e.opts.Observer.Attempted(m.ir.Name, action.Name, runErr, took)
	if runErr == nil {
		w.history = append(w.history, HistoryEntry{Time: now, Kind: HistAttempt, Version: inst.Version, From: inst.State, To: -1, Event: event, Attempt: item.Attempt})
		result := Work{Kind: WorkEvent, Due: now, Visit: item.Visit, Event: event, Payload: payload}
		if handed {
			if done, err := e.deliver(ctx, w, m, &result); done || err != nil {
				return err
			}
		}
		w.schedule = append(w.schedule, result)
		return e.complete(ctx, w)
	}
	msg := runErr.Error()
	noted := msg
	if IsPermanent(runErr) {
		noted += " (permanent: no retries)"
	}
	w.history = append(w.history, HistoryEntry{Time: now, Kind: HistAttemptFailed, Version: seen, From: from, To: -1, Event: -1, Attempt: item.Attempt, Message: noted})
	if item.Attempt > task.Retry || IsPermanent(runErr) {
		errPayload := []ir.Value{{T: ir.TypeString, S: msg}, {T: ir.TypeInt, I: int64(item.Attempt)}}
		w.schedule = append(w.schedule, Work{Kind: WorkEvent, Due: now, Visit: item.Visit, Event: ir.EventError, Payload: errPayload})
	} else {
		delay := e.jitter(task.Jitter, task.Backoff.Delay(item.Attempt))
		w.schedule = append(w.schedule, Work{Kind: WorkTask, Due: now.Add(delay), Visit: item.Visit, Action: item.Action, Attempt: item.Attempt + 1})
	}
	return e.complete(ctx, w)
}

// deliver commits a task's result and the transition it takes in the
// write that finishes the attempt, on a DirectStore, when nothing else
// of the instance comes first. It decides on w.inst, the instance as the
// claim handed it over, after the attempt's entry in w.history; done is
// false (and w's history and schedule as they were) when the result must
// be queued instead: the store said so, or the result does not simply
// take a transition.
func (e *Engine) deliver(ctx context.Context, w *worker, m *machine, result *Work) (done bool, err error) {
	ds, ok := e.store.(DirectStore)
	if !ok {
		return false, nil
	}
	entry := w.history[len(w.history)-1]
	queue := func() (bool, error) {
		w.history, w.schedule = append(w.history[:0], entry), w.schedule[:0]
		return false, nil
	}
	// A fault (which parks the instance) goes the queue's way, where it
	// is decided with the instance's lock held.
	if w.decide(m, &w.inst, result, result.Due) != changed || w.inst.Status == Failed {
		return queue()
	}
	w.commitOf(&w.inst, &w.commit)
	err, retried := e.whileLeased(ctx, w, func() (err error) {
		done, err = ds.CompleteDirect(ctx, &w.lease, &w.commit, result.Due)
		return err
	})
	switch {
	case err == nil && done:
		e.notify(w.inst.ID, &w.inst, w.history)
		return true, nil
	case retried && (errors.Is(err, ErrStale) || errors.Is(err, ErrLostLease)) && e.notifyIfLanded(ctx, w):
		return true, nil // an earlier try, whose reply was lost, wrote it
	case err == nil, errors.Is(err, ErrStale):
		return queue()
	case errors.Is(err, ErrLostLease):
		e.rejected(ctx, w, err)
		return true, nil // the attempt is someone else's now
	case errors.Is(err, ErrNotFound):
		return true, e.removed(ctx, w)
	}
	return true, e.unanswered(ctx, w, err)
}

// errTimedOut marks an attempt that ran past its task's timeout;
// errLateResult is why one whose handler succeeded failed all the same.
var (
	errTimedOut   = errors.New("timed out")
	errLateResult = errors.New("the handler returned its result after the deadline")
)

// IdempotencyKey is the key of inst's task attempts in its current
// visit to a state: INSTANCE/CREATED/VISIT, with the instance's creation
// time in Unix milliseconds, so that an instance started later under an
// ID that was freed (an ended instance past the retention) has keys of
// its own.
func IdempotencyKey(inst *Instance) string {
	return inst.ID + "/" + strconv.FormatInt(inst.Created.UnixMilli(), 10) + "/" + strconv.FormatUint(inst.Visit, 10)
}

// late is a task attempt that already ran and timed out before its
// deadline came on the engine's clock: the failure to record at the
// deadline, with the state and version the attempt saw.
type late struct {
	msg     string
	from    int
	version uint64
}

// lateFailure is the work that records attempt item's failure (msg) at
// its deadline; inst is the instance as the attempt saw it.
func lateFailure(item *Work, deadline time.Time, msg string, inst *Instance) Work {
	return Work{Kind: WorkTask, Due: deadline, Visit: item.Visit, Action: item.Action, Attempt: item.Attempt,
		Payload: []ir.Value{{T: ir.TypeString, S: msg}, {T: ir.TypeInt, I: int64(inst.State)}, {T: ir.TypeInt, I: int64(inst.Version)}}}
}

// deferredTimeout reads the work lateFailure makes.
func deferredTimeout(item *Work) (l late, ok bool) {
	p := item.Payload
	if item.Kind != WorkTask || len(p) != 3 || p[0].T != ir.TypeString || p[1].T != ir.TypeInt || p[2].T != ir.TypeInt {
		return late{}, false
	}
	return late{msg: p[0].S, from: int(p[1].I), version: uint64(p[2].I)}, true
}

// handlerGrace is how long a handler whose deadline passed, or whose
// engine is stopping, has to return: so that what it says (a command's
// stderr) reaches the failure message, and a command is killed before
// its worker exits. One that ignores its context is abandoned after it.
const handlerGrace = 250 * time.Millisecond

// runHandler calls handler with a deadline, renewing the lease while it
// runs. A handler still running at the deadline gets handlerGrace to
// return, then is abandoned (its goroutine finishes on its own); either
// way the attempt fails.
func (e *Engine) runHandler(ctx context.Context, w *worker, handler Handler, call *Call, timeout time.Duration) (Result, error) {
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type outcome struct {
		r   Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- outcome{err: fmt.Errorf("handler panicked: %v", p)}
			}
		}()
		r, err := handler(hctx, call)
		done <- outcome{r, usableError(err)}
	}()
	// timedOut is the attempt's error when its deadline passed, with
	// what the handler said (why), if anything.
	timedOut := func(why error) error {
		if why == nil {
			return fmt.Errorf("%w after %s", errTimedOut, ir.FormatDuration(timeout))
		}
		return fmt.Errorf("%w after %s: %w", errTimedOut, ir.FormatDuration(timeout), why)
	}
	renew := time.NewTicker(max(e.opts.Lease/3, time.Millisecond))
	defer renew.Stop()
	for {
		select {
		case o := <-done:
			if o.err != nil && errors.Is(hctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil {
				return Result{}, timedOut(o.err)
			}
			return o.r, o.err
		case <-hctx.Done():
			select {
			case o := <-done: // it finished at the same moment
				switch {
				case ctx.Err() != nil:
					return Result{}, ctx.Err()
				case o.err != nil:
					return Result{}, timedOut(o.err)
				}
				return o.r, nil
			default:
			}
			// Stopping or timed out: the handler has handlerGrace to see
			// it and return (a command handler kills its command, which
			// must happen before a stopping process exits), so that what
			// it says reaches the failure's message. What it returns then
			// came too late: a success past the deadline fails too.
			grace := time.NewTimer(handlerGrace)
			defer grace.Stop()
			select {
			case o := <-done:
				switch {
				case ctx.Err() != nil:
					return Result{}, ctx.Err()
				case o.err != nil:
					return Result{}, timedOut(o.err)
				}
				return Result{}, timedOut(errLateResult)
			case <-grace.C:
			}
			if ctx.Err() != nil {
				return Result{}, ctx.Err()
			}
			return Result{}, timedOut(nil)
		case <-renew.C:
			_ = e.store.Extend(ctx, &w.lease, e.opts.Clock.Now().Add(e.opts.Lease))
		}
	}
}

// checkResult validates what a handler returned against the action's
// declaration: an event it emits with a valid payload, or nothing when it
// emits none.
func (e *Engine) checkResult(m *machine, action *ir.Action, r Result) (event int, payload []ir.Value, err error) {
	defer func() {
		if err != nil && r.note != "" {
			err = fmt.Errorf("%w%s", err, r.note)
		}
	}()
	if r.Event == "" {
		if len(action.Emits) > 0 {
			return 0, nil, fmt.Errorf("handler for %s returned no event, but the action emits %s", action.Name, emitsList(m, action))
		}
		return ir.EventDone, nil, nil
	}
	ev, ok := m.events[r.Event]
	declared := false
	for _, id := range action.Emits {
		declared = declared || id == ev
	}
	if !ok || !declared {
		if len(action.Emits) == 0 {
			return 0, nil, fmt.Errorf("handler for %s returned event %q, but the action emits nothing", action.Name, r.Event)
		}
		return 0, nil, fmt.Errorf("handler for %s returned event %q, which the action does not emit (it emits %s)", action.Name, r.Event, emitsList(m, action))
	}
	payload, err = Values(m.ir.Events[ev].Params, nil, r.Payload)
	if err != nil {
		return 0, nil, fmt.Errorf("handler for %s returned event %s with a bad payload: %v", action.Name, r.Event, err)
	}
	return ev, payload, nil
}

func emitsList(m *machine, a *ir.Action) string {
	s := ""
	for i, id := range a.Emits {
		if i > 0 {
			s += ", "
		}
		s += m.ir.Events[id].Name
	}
	return s
}

// jitter randomises a retry delay: full picks from [0, d], equal from
// [d/2, d], none keeps d.
func (e *Engine) jitter(mode string, d time.Duration) time.Duration {
	r := e.opts.Jitter
	if r == nil {
		r = rand.Float64
	}
	switch mode {
	case "full":
		return time.Duration(r() * float64(d))
	case "equal":
		return d/2 + time.Duration(r()*float64(d-d/2))
	}
	return d
}

// usableError is err, or, when err's Error method panics (a nil pointer
// of an error type, returned as a non-nil error), an error saying so,
// permanent if err is.
func usableError(err error) (out error) {
	if err == nil {
		return nil
	}
	defer func() {
		if p := recover(); p != nil {
			out = fmt.Errorf("handler returned an error (%T) whose Error method panicked: %v", err, p)
			if IsPermanent(err) {
				out = Permanent(out)
			}
		}
	}()
	_ = err.Error()
	return err
}
