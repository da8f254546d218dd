package runtime

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
)

// idleWait bounds how long an idle worker sleeps without news, so that
// work made due by another process (with a store that cannot wake us) or
// an expired lease is picked up.
const idleWait = time.Second

// Run handles work until ctx is done, running at most workers task
// attempts at once, with one worker more for instance work (events,
// timer firings, results), so that long tasks do not hold back timers.
// Idle workers sleep until the next due time or until the store reports
// new work. When ctx is cancelled workers stop claiming and finish what
// they hold: running tasks get Options.StopGrace to finish and record
// their results; after that their handlers see the cancellation and
// their attempts are given back. Then Run returns nil. A store that has
// been closed (ErrClosed) ends the run too, and Run returns that error.
func (e *Engine) Run(ctx context.Context, workers int) error {
	if workers < 1 {
		workers = 1
	}
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	b := make(wakeups, 1)
	stopForward, forwarded := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(forwarded)
		for {
			select {
			case <-e.store.Wake():
				b.signal()
			case <-stopForward:
				return
			}
		}
	}()
	defer func() { close(stopForward); <-forwarded }()
	work, stopWork := e.graceful(ctx)
	defer stopWork()
	// One worker more than task attempts may run, for instance work.
	slots := &taskSlots{limit: int32(workers)}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.keepRegistered(ctx)
	}()
	for i := 0; i <= workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.workLoop(ctx, work, b, slots, stop)
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); errors.Is(err, ErrClosed) {
		return err
	}
	return nil
}

// graceful returns the context work runs on (handlers, commits): it ends
// Options.StopGrace after ctx does (at once if it is negative), or when
// stop is called.
func (e *Engine) graceful(ctx context.Context) (work context.Context, stop func()) {
	work, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
			return
		}
		if e.opts.StopGrace > 0 {
			// Said at once: the grace may last a while.
			e.opts.Logger.Info("stopping: claiming no more work; tasks still running may finish within the grace", "grace", e.opts.StopGrace)
		}
		grace := time.NewTimer(max(e.opts.StopGrace, 0))
		defer grace.Stop()
		select {
		case <-grace.C:
			e.opts.Logger.Info("stopping: cancelling the tasks still running", "grace", max(e.opts.StopGrace, 0))
			cancel()
		case <-done:
		}
	}()
	return work, func() { close(done); cancel() }
}

// taskSlots keeps one of Run's workers for instance work (events, timer
// firings, task results) while the others run task attempts, so that
// long tasks do not hold back another instance's timer: Run(ctx, n) runs
// n+1 workers, of which at most n run task attempts at once.
type taskSlots struct {
	running atomic.Int32
	limit   int32
}

// take takes a slot for a task attempt, if one is free.
func (t *taskSlots) take() bool {
	for {
		n := t.running.Load()
		if n >= t.limit {
			return false
		}
		if t.running.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func (t *taskSlots) give() { t.running.Add(-1) }

// free reports whether a slot is free.
func (t *taskSlots) free() bool { return t.running.Load() < t.limit }

// workLoop claims work until ctx ends, and handles it on work. A worker
// claims task attempts only while it holds one of slots. It asks for
// its next work in the write that finishes each item (Lease.Then), and
// claims on its own only when that write did not claim (see Chain). A
// closed store stops the run: the worker calls stop with the error.
func (e *Engine) workLoop(ctx, work context.Context, b wakeups, slots *taskSlots, stop context.CancelCauseFunc) {
	w := e.newWorker()
	retry := 10 * time.Millisecond
	slot, chained := false, false
	for ctx.Err() == nil {
		var ok bool
		f, own := e.filter(), !chained
		if chained {
			// Claimed with the last write; the worker is busy still.
			chained, ok = false, w.chain.Found
			f.NoTasks = w.chain.Filter.NoTasks
			w.lease = w.chain.Next
		} else {
			var err error
			ok, slot, err = e.claimAlone(ctx, w, &f, slots)
			if err != nil {
				if errors.Is(err, ErrClosed) {
					stop(err)
				}
				if ctx.Err() != nil {
					return
				}
				e.claimFailed(err, retry)
				e.opts.Clock.Sleep(retry, ctx.Done())
				retry = min(retry*2, time.Second) // resume within a second of the store's return
				continue
			}
			retry = 10 * time.Millisecond
		}
		if slot && (!ok || w.lease.Work.Kind != WorkTask) {
			slots.give()
			slot = false
		}
		if ok {
			e.opts.Observer.Claimed(w.lease.Work.Kind, e.opts.Clock.Now().Sub(w.lease.Work.Due))
			if w.lease.More && (!w.lease.MoreTasks || slots.free()) || slot && own {
				// Let an idle worker take the next (when that is task
				// attempts alone, only while a worker may take a slot for
				// one: else the idle worker, which may run only instance
				// work, would claim and find nothing, again on every
				// claim while a backlog of tasks lasts); or, as a task
				// attempt may run long, look at what comes due meanwhile:
				// the news of this work may have reached only this worker,
				// and an idle one's sleep may have been set before it (a
				// timer of the same instance would wait for the attempt).
				// A claim made with a write took no news from the idle
				// workers: this worker was busy, and they know what they
				// knew.
				b.signal()
			}
			// The next claim, made by the write that finishes this work,
			// may take a task attempt if this one is: the slot passes on.
			w.chain = Chain{Filter: f}
			w.chain.Filter.NoTasks = !slot
			w.lease.Then = &w.chain
			e.claims.Add(1)
			err := e.process(work, w)
			// A claim for instance work only that found nothing did not
			// look at task attempts: the worker claims again, for a slot.
			chained = w.chain.Done && (w.chain.Found || !w.chain.Filter.NoTasks)
			if chained && ctx.Err() != nil {
				// Stopping: what the write claimed goes back.
				chained = false
				if w.chain.Found {
					e.giveBackStopping(ctx, &w.chain.Next)
				}
			}
			if !chained {
				if slot {
					slots.give()
					slot = false
				}
				e.busy.Add(-1)
			}
			if err != nil && work.Err() == nil {
				e.opts.Logger.Error("handling work", "instance", w.lease.Work.Instance, "err", err)
			}
			continue
		}
		e.busy.Add(-1)
		wait := idleWait
		next, found := w.lease.Next, !w.lease.Next.IsZero()
		if !w.lease.NextKnown {
			var err error
			next, found, err = e.store.NextDue(ctx, f)
			if err != nil {
				found = false
			}
		}
		if found {
			wait = min(wait, next.Sub(e.opts.Clock.Now()))
		}
		if wait > 0 {
			e.sleep(ctx, wait, b)
		}
	}
}

// claimAlone is a worker's claim of its own, made busy (for Idle), with
// a task slot if one is free (slot), filtered by f (whose NoTasks it
// sets). A failed claim leaves the worker idle and without a slot.
func (e *Engine) claimAlone(ctx context.Context, w *worker, f *ClaimFilter, slots *taskSlots) (ok, slot bool, err error) {
	w.lease.NextKnown = false
	e.busy.Add(1) // before the claim, for Idle
	e.claims.Add(1)
	slot = slots.take()
	f.NoTasks = !slot
	ok, err = e.store.Claim(ctx, *f, &w.lease)
	if err != nil {
		if slot {
			slots.give()
		}
		e.busy.Add(-1)
		if ctx.Err() == nil {
			e.opts.Observer.StoreError(err)
			e.claimFails.Store(true)
		}
		return false, false, err
	}
	// A plain load first: the swap writes the line every worker shares,
	// and a claim is the hot path.
	if e.claimFails.Load() && e.claimFails.CompareAndSwap(true, false) {
		e.claimSaid.Store(0) // the next outage is said at once
		e.opts.Logger.Info("claiming work again: the store answers")
		select {
		case e.recovered <- struct{}{}:
		default:
		}
	}
	return ok, slot, nil
}

// claimSaidEvery is how often, at most, an engine logs as an error that
// its workers' claims fail.
const claimSaidEvery = 10 * time.Second

// claimFailed logs a worker's failed claim (it tries again in retry).
// In an outage every worker fails at once, and again at each step of its
// backoff, so the engine says it in one error line, at once and again
// every claimSaidEvery while it lasts; the other failures are debug
// lines. The recovery is one line too (claimAlone).
func (e *Engine) claimFailed(err error, retry time.Duration) {
	now := e.opts.Clock.Now().UnixNano()
	last := e.claimSaid.Load()
	if (last == 0 || now-last >= int64(claimSaidEvery)) && e.claimSaid.CompareAndSwap(last, now) {
		e.opts.Logger.Error("claiming work", "err", err, "retry_in", retry)
		return
	}
	e.opts.Logger.Debug("claiming work", "err", err, "retry_in", retry)
}

// keepRegistered registers the engine's machines again every
// RegistryCheck, and when the store answers after failing, until ctx
// ends: a store that lost its data (a Redis restarted without
// persistence) would otherwise have no machine for `fsmc start` to
// start until a worker restarts. A SettingsKeeper puts back the
// deployment's settings then too, and looks at them once at the start,
// so that it knows them from the start.
func (e *Engine) keepRegistered(ctx context.Context) {
	e.keepSettings(ctx)
	tick := time.NewTicker(e.opts.RegistryCheck)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-e.recovered:
		}
		e.mu.RLock()
		machines := make([]*ir.Machine, 0, len(e.hashes))
		for _, h := range e.hashes {
			machines = append(machines, e.byHash[h].ir)
		}
		e.mu.RUnlock()
		for _, m := range machines {
			if err := e.store.PutMachine(ctx, m); err != nil && ctx.Err() == nil {
				e.opts.Logger.Warn("could not check the machine's registration; trying again later", "machine", m.Name, "err", err)
			}
		}
		e.keepSettings(ctx)
	}
}

// keepSettings has a SettingsKeeper store check the deployment's
// settings, and put back what it lost.
func (e *Engine) keepSettings(ctx context.Context) {
	k, ok := e.store.(SettingsKeeper)
	if !ok {
		return
	}
	n, err := k.KeepSettings(ctx)
	switch {
	case err != nil && ctx.Err() == nil:
		e.opts.Logger.Warn("could not check the deployment's settings; trying again later", "err", err)
	case n > 0:
		e.opts.Logger.Warn("the store had lost the deployment's settings (a restart without its data?): restored", "partitions", n)
	}
}

// sleep waits for d, a wake-up or cancellation.
func (e *Engine) sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) {
	merged := make(chan struct{})
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-wake:
		case <-ctx.Done():
		case <-stop:
			return
		}
		close(merged)
	}()
	e.opts.Clock.Sleep(d, merged)
}

// wakeups wakes one idle worker at a time: on the store's news, or when
// a worker has just claimed something (there may be more), so a worker
// that finds work passes the word on and one that finds none stops the
// chain. Waking every idle worker at once would send them all to claim
// the one new item, all but one of them for nothing. A signal no worker
// waits for stays in the buffer for the next to go idle.
type wakeups chan struct{}

func (w wakeups) signal() {
	select {
	case w <- struct{}{}:
	default:
	}
}
