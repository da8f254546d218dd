package runtime_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
	"github.com/fsmc/fsmc/runtime/storetest"
)

// TestIdleWorkersAllWake: one wake-up from the store starts a chain in
// which each worker that finds work wakes the next idle one, so work that
// arrives at once runs on every worker at once. Each handler here waits
// until all four run together: a broken chain leaves them waiting.
func TestIdleWorkersAllWake(t *testing.T) {
	m := compileMachine(t, `machine Job {
    action Work
    initial state Queued {
        do Work { timeout 1m }
        on done -> Finished
    }
    final state Finished
}`)
	const workers, tasks = 4, 4
	var running atomic.Int32
	together := make(chan struct{})
	// A clock that stands still (the test never moves it): an idle
	// worker wakes only when told to, never at the end of its idle wait.
	clock := newSteppedClock()
	store := &onceWoken{Store: memstore.New(memstore.Options{}), wake: make(chan struct{}, 1)}
	e := runtime.New(store, runtime.Options{Clock: clock})
	err := e.Register(context.Background(), m, map[string]runtime.Handler{
		"Work": func(ctx context.Context, _ *runtime.Call) (runtime.Result, error) {
			if running.Add(1) == tasks {
				close(together)
			}
			select {
			case <-together:
				return runtime.Result{}, nil
			case <-time.After(5 * time.Second):
				return runtime.Result{}, runtime.Permanent(fmt.Errorf("only %d of %d workers took work", running.Load(), tasks))
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunInBackground(t, e, workers)
	time.Sleep(50 * time.Millisecond) // every worker idle, waiting
	for i := 0; i < tasks; i++ {
		if err := e.Start(context.Background(), "Job", fmt.Sprintf("j%d", i), nil, runtime.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	store.wake <- struct{}{} // one wake-up for all four: the workers pass it on
	select {
	case <-together:
	case <-time.After(10 * time.Second):
		t.Fatalf("only %d of %d workers took work", running.Load(), tasks)
	}
}

// onceWoken is a store whose wake-ups the test sends itself.
type onceWoken struct {
	*memstore.Store
	wake chan struct{}
}

func (s *onceWoken) Wake() <-chan struct{} { return s.wake }

// steppedClock moves only when the test moves it; Sleep returns when
// woken or when the clock reaches the sleep's end.
type steppedClock struct {
	mu       sync.Mutex
	now      time.Time
	moved    chan struct{} // closed, and replaced, when the clock moves
	sleepers int
}

func newSteppedClock() *steppedClock {
	return &steppedClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), moved: make(chan struct{})}
}

func (c *steppedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *steppedClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	close(c.moved)
	c.moved = make(chan struct{})
}

// Sleeping says how many callers are in Sleep.
func (c *steppedClock) Sleeping() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sleepers
}

func (c *steppedClock) Sleep(d time.Duration, wake <-chan struct{}) bool {
	c.mu.Lock()
	end := c.now.Add(d)
	c.sleepers++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.sleepers--
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		now, moved := c.now, c.moved
		c.mu.Unlock()
		if !now.Before(end) {
			return true
		}
		select {
		case <-wake:
			return false
		case <-moved:
		}
	}
}

const slowJob = `machine Job {
    action Work
    initial state Working {
        do Work { timeout 1m }
        on done -> Finished
    }
    final state Finished
}`

// runOne starts one Job instance on an engine with opts running one
// worker, and returns once its handler is running; stop cancels Run and
// waits for it to return.
func runOne(t *testing.T, opts runtime.Options, work runtime.Handler) (e *runtime.Engine, running <-chan struct{}, stop func()) {
	t.Helper()
	started := make(chan struct{})
	e = runtime.New(memstore.New(memstore.Options{}), opts)
	err := e.Register(context.Background(), compileMachine(t, slowJob), map[string]runtime.Handler{
		"Work": func(ctx context.Context, c *runtime.Call) (runtime.Result, error) {
			close(started)
			return work(ctx, c)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop = storetest.RunInBackground(t, e, 1)
	if err := e.Start(context.Background(), "Job", "j", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return e, started, stop
}

// TestStopLetsRunningTasksFinish: told to stop, Run says so at once, lets
// a running task finish, within the grace period, and records its
// result.
func TestStopLetsRunningTasksFinish(t *testing.T) {
	release := make(chan struct{})
	var log redistest.Output
	logger := slog.New(slog.NewTextHandler(&log, nil))
	e, running, stop := runOne(t, runtime.Options{StopGrace: time.Minute, Logger: logger}, func(ctx context.Context, _ *runtime.Call) (runtime.Result, error) {
		<-release
		if ctx.Err() != nil {
			return runtime.Result{}, fmt.Errorf("cancelled within the grace period: %w", ctx.Err())
		}
		return runtime.Result{}, nil
	})
	<-running
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(20 * time.Millisecond) // the stop is under way
	if !strings.Contains(log.String(), `msg="stopping: claiming no more work; tasks still running may finish within the grace" grace=1m0s`) {
		t.Errorf("while the task runs, the log does not say that the worker is stopping:\n%s", log.String())
	}
	close(release)
	<-stopped
	v, err := e.Get(context.Background(), "j")
	if err != nil {
		t.Fatal(err)
	}
	if n := storetest.CountKind(v, runtime.HistAttempt); n != 1 {
		t.Fatalf("the task's result was not recorded: %+v", v.History)
	}
	// Its done event waits for the next run.
	if _, err := e.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	if v, _ = e.Get(context.Background(), "j"); v.StateName != "Finished" {
		t.Fatalf("the instance is in %s (%s), want Finished: %+v", v.StateName, v.Status, v.History)
	}
}

// TestStopGivesBackAfterTheGrace: a task still running when the grace
// period ends is cancelled and its attempt given back, not failed.
func TestStopGivesBackAfterTheGrace(t *testing.T) {
	e, running, stop := runOne(t, runtime.Options{StopGrace: 50 * time.Millisecond}, func(ctx context.Context, _ *runtime.Call) (runtime.Result, error) {
		<-ctx.Done()
		return runtime.Result{}, ctx.Err()
	})
	<-running
	stop()
	v, err := e.Get(context.Background(), "j")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range v.History {
		if h.Kind == runtime.HistAttemptFailed {
			t.Fatalf("the cancelled attempt was recorded as failed: %+v", h)
		}
	}
	if v.StateName != "Working" || v.Status != runtime.Active {
		t.Fatalf("after the stop the instance is in %s (%s), want Working (active)", v.StateName, v.Status)
	}
	if next, found, err := e.NextDue(context.Background()); !found || err != nil || next.After(time.Now()) {
		t.Fatalf("the given-back attempt is not due: %v %v %v", next, found, err)
	}
}

// TestStopWaitsForCancelledHandlers: once the grace period ends, Run
// returns only after the cancelled handlers have (up to a short wait for
// those that ignore their context): a command handler kills its command
// then, which must happen before the process exits. With no grace (a
// negative StopGrace, as `--grace 0` gives) the log says it was 0.
func TestStopWaitsForCancelledHandlers(t *testing.T) {
	var returned atomic.Bool
	var log redistest.Output
	logger := slog.New(slog.NewTextHandler(&log, nil))
	_, running, stop := runOne(t, runtime.Options{StopGrace: -1, Logger: logger}, func(ctx context.Context, _ *runtime.Call) (runtime.Result, error) {
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // killing a command and reaping it
		returned.Store(true)
		return runtime.Result{}, ctx.Err()
	})
	<-running
	stop()
	if !returned.Load() {
		t.Fatal("Run returned while a cancelled handler was still running")
	}
	if !strings.Contains(log.String(), `msg="stopping: cancelling the tasks still running" grace=0s`) {
		t.Fatalf("log:\n%s", log.String())
	}
}

// noRenew is a store whose leases cannot be extended, so a slow handler
// outlives its lease.
type noRenew struct{ *memstore.Store }

func (noRenew) Extend(context.Context, *runtime.Lease, time.Time) error { return nil }

// TestLateResultIsCounted: a task result that comes back after its lease
// ran out (another worker took the attempt over) is discarded, logged
// and counted as a refused commit.
func TestLateResultIsCounted(t *testing.T) {
	var calls atomic.Int32
	obs := &storetest.StaleCount{}
	e := runtime.New(noRenew{memstore.New(memstore.Options{})}, runtime.Options{Lease: 50 * time.Millisecond, Observer: obs})
	err := e.Register(context.Background(), compileMachine(t, slowJob), map[string]runtime.Handler{
		"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
			if calls.Add(1) == 1 {
				time.Sleep(300 * time.Millisecond) // past the lease: the other worker takes over
			}
			return runtime.Result{}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunInBackground(t, e, 2)
	if err := e.Start(context.Background(), "Job", "j", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for obs.N.Load() == 0 || calls.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("%d calls, %d refused commits; want 2 calls and the late one refused", calls.Load(), obs.N.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
	v, err := e.Get(context.Background(), "j")
	if err != nil || v.StateName != "Finished" || storetest.CountKind(v, runtime.HistAttempt) != 1 {
		t.Fatalf("%v: state %s, history %+v; want Finished with one recorded attempt", err, v.StateName, v.History)
	}
}

// TestErrPendingLeavesTheAttemptOpen: a handler may return ErrPending
// (wrapped or not) as its error, as typed handlers do, instead of
// Pending: nothing is delivered and nothing failed.
func TestErrPendingLeavesTheAttemptOpen(t *testing.T) {
	e := runtime.New(memstore.New(memstore.Options{}), runtime.Options{})
	err := e.Register(context.Background(), compileMachine(t, slowJob), map[string]runtime.Handler{
		"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
			return runtime.Result{}, fmt.Errorf("waiting for the bank: %w", runtime.ErrPending)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background(), "Job", "j", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunDue(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, err := e.Get(context.Background(), "j")
	if err != nil {
		t.Fatal(err)
	}
	if v.StateName != "Working" || v.Status != runtime.Active || storetest.CountKind(v, runtime.HistAttemptFailed) != 0 {
		t.Fatalf("state %s (%s), history %+v; want Working, active, no failed attempt", v.StateName, v.Status, v.History)
	}
}

// TestTimersFireWhileTasksRun: Run keeps a worker for instance work, so
// a timer fires while long task attempts hold all the others (here, two
// workers and three attempts that run until the end of the test).
func TestTimersFireWhileTasksRun(t *testing.T) {
	job := compileMachine(t, slowJob)
	wait := compileMachine(t, `machine Wait {
    initial state Waiting {
        after 1s -> Done
    }
    final state Done
}`)
	var running atomic.Int32
	release := make(chan struct{})
	e := runtime.New(memstore.New(memstore.Options{}), runtime.Options{Clock: runtime.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))})
	ctx := context.Background()
	err := e.Register(ctx, job, map[string]runtime.Handler{
		"Work": func(ctx context.Context, _ *runtime.Call) (runtime.Result, error) {
			running.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return runtime.Result{}, nil
		},
	})
	if err == nil {
		err = e.Register(ctx, wait, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"j1", "j2", "j3"} {
		if err := e.Start(ctx, "Job", id, nil, runtime.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Start(ctx, "Wait", "w", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	stop := storetest.RunInBackground(t, e, 2)
	defer func() { close(release); stop() }()
	// The timer fires, and both workers run an attempt (whichever comes
	// first: idle workers move the fake clock on).
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, err := e.Get(ctx, "w")
		if err != nil {
			t.Fatal(err)
		}
		n := running.Load()
		if n > 2 {
			t.Fatalf("%d task attempts ran at once on two workers, want 2", n)
		}
		if v.StateName == "Done" && n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10 s the timer's instance is in %s, and %d task attempts run (want Done, and 2)", v.StateName, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestTimerFiresWhileItsInstanceRunsATask: a worker that claims a task
// attempt, which may run long, passes the news on, so that an idle
// worker whose sleep was set before the instance started watches for
// the instance's timer, due while the attempt runs. The clock moves only
// when the test moves it: a worker left asleep would not wake at all.
func TestTimerFiresWhileItsInstanceRunsATask(t *testing.T) {
	m := compileMachine(t, irtest.TaskOrTimer)
	clock := newSteppedClock()
	e := runtime.New(memstore.New(memstore.Options{}), runtime.Options{Clock: clock})
	running, release := make(chan struct{}), make(chan struct{})
	err := e.Register(context.Background(), m, map[string]runtime.Handler{
		"Work": func(ctx context.Context, _ *runtime.Call) (runtime.Result, error) {
			close(running)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return runtime.Result{}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := storetest.RunInBackground(t, e, 1)
	defer func() { close(release); stop() }()
	waitUntil(t, "both workers to go idle", func() bool { return clock.Sleeping() == 2 })
	if err := e.Start(context.Background(), "Slow", "s", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	<-running
	late := func() bool {
		v, err := e.Get(context.Background(), "s")
		if err != nil {
			t.Fatal(err)
		}
		return v.StateName == "Late"
	}
	// The clock moves on in steps, while a worker may be between reading
	// it and going to sleep; it stops short of the second an idle worker
	// sleeps when nothing is due, which would wake a worker left asleep.
	for i := 0; i < 90 && !late(); i++ {
		clock.Advance(10 * time.Millisecond)
		time.Sleep(time.Millisecond)
	}
	waitUntil(t, "the timer to fire while the attempt runs", late)
}

// waitUntil polls cond for up to 10 s of real time, and fails the test
// with what it waited for if cond does not come to hold.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// keeperStore is the embedded store with a SettingsKeeper that counts
// its checks.
type keeperStore struct {
	*memstore.Store
	checks atomic.Int32
}

func (s *keeperStore) KeepSettings(context.Context) (int, error) {
	s.checks.Add(1)
	return 0, nil
}

// TestRunChecksSettingsAtStart: Run has a SettingsKeeper look at the
// deployment's settings as it starts, not only at the first registry
// check: a worker that did not set them learns them at once, and can put
// them back if the store loses them soon after.
func TestRunChecksSettingsAtStart(t *testing.T) {
	store := &keeperStore{Store: memstore.New(memstore.Options{})}
	e := runtime.New(store, runtime.Options{RegistryCheck: time.Hour})
	storetest.RunInBackground(t, e, 1)
	for deadline := time.Now().Add(10 * time.Second); store.checks.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no settings check as Run started")
		}
	}
}

// downStore is the embedded store whose claims fail while down is set,
// counting them.
type downStore struct {
	*memstore.Store
	down  atomic.Bool
	fails atomic.Int32
}

func (s *downStore) Claim(ctx context.Context, f runtime.ClaimFilter, l *runtime.Lease) (bool, error) {
	if s.down.Load() {
		s.fails.Add(1)
		return false, fmt.Errorf("store down")
	}
	return s.Store.Claim(ctx, f, l)
}

// TestOutageSaidOnce: when the store stops answering, every worker's
// claims fail, again and again as each backs off; the engine says so in
// one error line, not one per worker and failure, and in one line that
// it works again. The next outage is said at once.
func TestOutageSaidOnce(t *testing.T) {
	store := &downStore{Store: memstore.New(memstore.Options{})}
	store.down.Store(true)
	var logged strings.Builder
	var mu sync.Mutex
	count := func(s string) int {
		mu.Lock()
		defer mu.Unlock()
		return strings.Count(logged.String(), s)
	}
	e := runtime.New(store, runtime.Options{
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))})
	storetest.RunInBackground(t, e, 4)
	waitUntil(t, "twenty failed claims", func() bool { return store.fails.Load() >= 20 })
	if n := count(`level=ERROR msg="claiming work"`); n != 1 {
		t.Fatalf("%d failed claims said in %d error lines, want 1:\n%s", store.fails.Load(), n, logged.String())
	}
	store.down.Store(false)
	waitUntil(t, "the recovery said", func() bool { return count("claiming work again: the store answers") > 0 })
	store.down.Store(true)
	waitUntil(t, "the next outage said", func() bool { return count(`level=ERROR msg="claiming work"`) == 2 })
	if n := count("claiming work again"); n != 1 {
		t.Errorf("the recovery said %d times, want once:\n%s", n, logged.String())
	}
}
