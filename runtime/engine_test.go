package runtime_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	goruntime "runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
	"github.com/fsmc/fsmc/runtime/storetest"
)

func compileMachine(t testing.TB, src string) *ir.Machine {
	return irtest.Compile(t, "m.fsm", []byte(src)).Machines[0]
}

const toggle = irtest.Toggle

// toggleEngine is an engine on the embedded store with one Toggle
// instance, warmed up.
func toggleEngine(t testing.TB) *runtime.Engine {
	e := runtime.New(memstore.New(memstore.Options{}), runtime.Options{})
	if err := e.Register(context.Background(), compileMachine(t, toggle), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background(), "Toggle", "t", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 300; i++ { // fill the history ring and grow every buffer
		if err := e.Fire(context.Background(), "t", "Flip", nil); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

func TestFireAllocatesNothing(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector drops pooled scratch workers at random")
	}
	e := toggleEngine(t)
	ctx := context.Background()
	allocs := testing.AllocsPerRun(1000, func() {
		if err := e.Fire(ctx, "t", "Flip", nil); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Fire allocates %v times per event, want 0", allocs)
	}
	v, err := e.Get(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != 1+300+1000+1 { // AllocsPerRun runs once more to warm up
		t.Fatalf("version %d: not every event was handled", v.Version)
	}

	// An event with a payload, which a guard and a set read.
	const counter = `machine Counter {
    context {
        n: int = 0
    }
    event Add(k: int)
    initial state Counting {
        on Add if event.k > 0 -> Counting set n = n + event.k
    }
}`
	if err := e.Register(ctx, compileMachine(t, counter), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "Counter", "c", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	payload := map[string]any{"k": 2}
	for i := 0; i < 300; i++ {
		if err := e.Fire(ctx, "c", "Add", payload); err != nil {
			t.Fatal(err)
		}
	}
	allocs = testing.AllocsPerRun(1000, func() {
		if err := e.Fire(ctx, "c", "Add", payload); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Fire with a payload allocates %v times per event, want 0", allocs)
	}
	v, err = e.Get(ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	if n := v.Context[0].I; n != 2*(300+1000+1) {
		t.Fatalf("n = %v: not every payload was added", n)
	}
}

// TestFireTimersDueFromTheClock: Fire stamps the transitions it takes
// with RealClock.Stamp, which may lag the clock by up to a refresh; a
// timer such a transition sets is due its delay after a reading of the
// clock, never earlier.
func TestFireTimersDueFromTheClock(t *testing.T) {
	const blink = `machine Blink {
    event Flip
    initial state Off {
        on Flip -> On
    }
    state On {
        after 50ms -> Off
        on Flip -> Off
    }
}`
	ctx := context.Background()
	e := runtime.New(memstore.New(memstore.Options{}), runtime.Options{})
	if err := e.Register(ctx, compileMachine(t, blink), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "Blink", "b", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i++ {
		runtime.RealClock{}.Stamp() // stamps are being taken: they come from the refresh
		before := time.Now()
		if err := e.Fire(ctx, "b", "Flip", nil); err != nil {
			t.Fatal(err)
		}
		due, found, err := e.NextDue(ctx)
		if err != nil || !found {
			t.Fatalf("no timer after entering On: %v", err)
		}
		if want := before.Add(50 * time.Millisecond); due.Before(want) {
			t.Fatalf("the timer is due %v before its delay has passed", want.Sub(due))
		}
		if err := e.Fire(ctx, "b", "Flip", nil); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFireStampsKeepUpWithABusyLoop: a loop of Fire calls that holds the
// only processor keeps the goroutine refreshing the stamps from running
// until the scheduler preempts it; the stamps still keep close to the
// clock (it read about 10 ms behind at the median before Fire read the
// clock itself every so often).
func TestFireStampsKeepUpWithABusyLoop(t *testing.T) {
	defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(1))
	e := toggleEngine(t)
	ctx := context.Background()
	var lags []time.Duration
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
		for i := 0; i < 999; i++ {
			if err := e.Fire(ctx, "t", "Flip", nil); err != nil {
				t.Fatal(err)
			}
		}
		before := time.Now()
		if err := e.Fire(ctx, "t", "Flip", nil); err != nil {
			t.Fatal(err)
		}
		h, err := e.Store().History(ctx, "t")
		if err != nil {
			t.Fatal(err)
		}
		lags = append(lags, before.Sub(h[len(h)-1].Time))
	}
	slices.Sort(lags)
	t.Logf("stamps behind the clock over %d samples: median %v, p99 %v, max %v", len(lags), lags[len(lags)/2], lags[len(lags)*99/100], lags[len(lags)-1])
	if median := lags[len(lags)/2]; median > time.Millisecond {
		t.Fatalf("Fire's stamps lag the clock by %v at the median (of %d), want well under a millisecond", median, len(lags))
	}
}

// TestFireNotifies: the transitions Fire takes reach OnChange and
// OnHistory once each, naming the instance and its machine.
func TestFireNotifies(t *testing.T) {
	ctx := context.Background()
	var changes []runtime.Change
	var history []runtime.HistoryEntry
	e := runtime.New(memstore.New(memstore.Options{}), runtime.Options{
		OnChange:  func(c runtime.Change) { changes = append(changes, c) },
		OnHistory: func(_ string, h runtime.HistoryEntry) { history = append(history, h) },
	})
	if err := e.Register(ctx, compileMachine(t, toggle), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "Toggle", "t", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if err := e.Fire(ctx, "t", "Flip", nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(changes) != 4 || len(history) != 4 { // the start and three transitions
		t.Fatalf("%d changes and %d history entries, want 4 of each", len(changes), len(history))
	}
	for i, c := range changes[1:] {
		if c.Instance != "t" || c.Machine != "Toggle" || c.Version != uint64(i+2) || c.From != i%2 || c.To != 1-i%2 || c.Status != runtime.Active {
			t.Errorf("change %d: %+v", i+1, c)
		}
	}
}

// TestFireAndSendNameAMissingInstance: both say which instance is missing,
// as ErrNotFound.
func TestFireAndSendNameAMissingInstance(t *testing.T) {
	e := toggleEngine(t)
	ctx := context.Background()
	for name, send := range map[string]func(context.Context, string, string, map[string]any) error{"Fire": e.Fire, "Send": e.Send} {
		err := send(ctx, "nope", "Flip", nil)
		if !errors.Is(err, runtime.ErrNotFound) || err.Error() != `instance "nope": no such instance` {
			t.Errorf("%s to a missing instance: %v", name, err)
		}
	}
}

// TestStartNamesATakenID: a second start of an ID says which instance
// exists, and still matches ErrExists; with IfAbsent it is no error.
func TestStartNamesATakenID(t *testing.T) {
	e := toggleEngine(t)
	ctx := context.Background()
	if err := e.Start(ctx, "Toggle", "t1", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	err := e.Start(ctx, "Toggle", "t1", nil, runtime.StartOptions{})
	if !errors.Is(err, runtime.ErrExists) || err.Error() != `instance "t1" already exists` {
		t.Errorf("second start: %v", err)
	}
	if err := e.Start(ctx, "Toggle", "t1", nil, runtime.StartOptions{IfAbsent: true}); err != nil {
		t.Errorf("second start with IfAbsent: %v", err)
	}
}

// TestUnknownNames: a start of a machine the engine does not run, and an
// event the machine does not have (sent, or fired), match their
// sentinels and name what was unknown.
func TestUnknownNames(t *testing.T) {
	e := toggleEngine(t)
	ctx := context.Background()
	err := e.Start(ctx, "Toggel", "t1", nil, runtime.StartOptions{})
	if !errors.Is(err, runtime.ErrUnknownMachine) || !strings.Contains(err.Error(), `"Toggel"`) {
		t.Errorf("start of an unknown machine: %v", err)
	}
	if err := e.Start(ctx, "Toggle", "t1", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	for name, send := range map[string]func(context.Context, string, string, map[string]any) error{"Fire": e.Fire, "Send": e.Send} {
		err := send(ctx, "t1", "Flop", nil)
		if !errors.Is(err, runtime.ErrUnknownEvent) || err.Error() != `machine Toggle has no event "Flop"` {
			t.Errorf("%s of an unknown event: %v", name, err)
		}
	}
	// A newer version has Flop; the instance's does not, and the error
	// names the instance's version.
	old := compileMachine(t, toggle)
	newer := compileMachine(t, strings.Replace(toggle, "event Flip", "event Flip\n    event Flop", 1))
	if err := e.Register(ctx, newer, nil); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`machine Toggle@%s, the instance's version, has no event "Flop" (new instances start Toggle@%s)`,
		ir.ShortHash(old.Hash), ir.ShortHash(newer.Hash))
	for name, send := range map[string]func(context.Context, string, string, map[string]any) error{"Fire": e.Fire, "Send": e.Send} {
		err := send(ctx, "t1", "Flop", nil)
		if !errors.Is(err, runtime.ErrUnknownEvent) || err.Error() != want {
			t.Errorf("%s of an event only a newer version has: %v, want %s", name, err, want)
		}
	}
}

// TestSendTo: an event sent to an instance of another machine that has an
// event of that name is refused, and the instance does not move; Send,
// which names no machine, delivers it.
func TestSendTo(t *testing.T) {
	e := toggleEngine(t)
	ctx := context.Background()
	if err := e.Register(ctx, compileMachine(t, `machine Switch {
    event Flip
    initial state Off { on Flip -> On }
    final state On
}`), nil); err != nil {
		t.Fatal(err)
	}
	before, _ := e.Get(ctx, "t")
	err := e.SendTo(ctx, "Switch", "t", "Flip", nil)
	if !errors.Is(err, runtime.ErrWrongMachine) || !strings.Contains(err.Error(), "instance t belongs to machine Toggle, not Switch") {
		t.Fatalf("SendTo another machine's instance: %v", err)
	}
	if _, err := e.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	if after, _ := e.Get(ctx, "t"); after.Version != before.Version {
		t.Errorf("the refused event moved the instance: version %d -> %d", before.Version, after.Version)
	}
	if err := e.SendTo(ctx, "Toggle", "t", "Flip", nil); err != nil {
		t.Errorf("SendTo its own machine: %v", err)
	}
	if err := e.Register(ctx, nil, nil); err == nil {
		t.Errorf("Register(nil) returned no error")
	}
}

// TestInstanceIDs: an ID must show as one word of one line wherever it
// is listed or logged.
func TestInstanceIDs(t *testing.T) {
	e := toggleEngine(t)
	ctx := context.Background()
	for id, want := range map[string]string{
		"":                       "an instance needs an ID",
		"a\nb":                   `instance ID "a\nb" has white space or a control character (U+000A)`,
		"a b":                    `instance ID "a b" has white space or a control character (U+0020)`,
		"bad\xff":                `instance ID "bad\xff" is not UTF-8 text`,
		"a\u200bb":               `instance ID "a\u200bb" has an invisible formatting character (U+200B)`,
		"ab\u202ecd":             `instance ID "ab\u202ecd" has an invisible formatting character (U+202E)`,
		strings.Repeat("x", 256): "instance ID of 256 bytes is too long (at most 255)",
		strings.Repeat("x", 255): "",
		"order:7|é,{x}":          "",
	} {
		err := e.Start(ctx, "Toggle", id, nil, runtime.StartOptions{})
		if got := fmt.Sprint(err); want == "" && err != nil || want != "" && got != want {
			t.Errorf("Start(%q) = %v, want %q", id, err, want)
		}
	}
}

// BenchmarkFire fires events at a two-state toggle on the embedded
// store: queue, claim, transition, fenced commit, history.
func BenchmarkFire(b *testing.B) {
	e := toggleEngine(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.Fire(ctx, "t", "Flip", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWatchdog fires an event that re-enters a state with a long
// timer: each visit sets a timer and cancels the last one, so the cost
// per event stays flat however many visits came before.
func BenchmarkWatchdog(b *testing.B) {
	e := runtime.New(memstore.New(memstore.Options{}), runtime.Options{})
	ctx := context.Background()
	err := e.Register(ctx, compileMachine(b, `machine Watchdog {
    event Beat
    initial state Alive {
        on Beat -> Alive
        after 1000h -> Dead
    }
    final state Dead
}`), nil)
	if err == nil {
		err = e.Start(ctx, "Watchdog", "w", nil, runtime.StartOptions{})
	}
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := e.Fire(ctx, "w", "Beat", nil); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRunWorkers runs real workers on the real clock: every instance's
// task runs, its timer fires, and Run stops when asked.
func TestRunWorkers(t *testing.T) {
	m := compileMachine(t, `machine Job {
    context {
        n: int = 0
    }
    action Work
    initial state Queued {
        do Work {
            retry 1
            backoff constant(5ms)
        }
        on done -> Cooling set n = n + 1
        on error -> Failed
    }
    state Cooling {
        after 20ms -> Finished
    }
    final state Finished
    final state Failed
}`)
	var attempts atomic.Int32
	store := memstore.New(memstore.Options{})
	e := runtime.New(store, runtime.Options{})
	err := e.Register(context.Background(), m, map[string]runtime.Handler{
		"Work": func(_ context.Context, c *runtime.Call) (runtime.Result, error) {
			if attempts.Add(1)%5 == 0 && c.Attempt == 1 {
				return runtime.Result{}, fmt.Errorf("flaky")
			}
			return runtime.Result{}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	stop := storetest.RunInBackground(t, e, 4)
	const n = 200
	for i := 0; i < n; i++ {
		if err := e.Start(context.Background(), "Job", fmt.Sprintf("j%03d", i), nil, runtime.StartOptions{Priority: i % 10}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		finished, _ := e.List(context.Background(), runtime.ListFilter{State: "Finished", Machine: "Job"})
		if len(finished) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d finished", len(finished), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
}

// racyStore hands out, with its first claim of instance work, the
// instance as the claim read it (as the Redis store does), and then lets
// an operator's update commit before the worker does.
type racyStore struct {
	*memstore.Store
	raced bool
}

func (s *racyStore) Claim(ctx context.Context, f runtime.ClaimFilter, l *runtime.Lease) (bool, error) {
	ok, err := s.Store.Claim(ctx, f, l)
	if !ok || err != nil || s.raced || l.Work.Kind == runtime.WorkTask {
		return ok, err
	}
	s.raced = true
	snap := &runtime.Instance{}
	if err := s.Load(ctx, l.Work.Instance, snap); err != nil {
		return false, err
	}
	l.Instance = snap
	update := &runtime.Instance{}
	update.CopyFrom(snap)
	update.Priority = 5
	return true, s.Update(ctx, &runtime.Commit{Instance: update})
}

// TestStaleSnapshotIsDecidedAgain: a commit against a snapshot that an
// update overtook is refused, and the work is decided again at once on
// the new version: one transition, nothing lost or doubled.
func TestStaleSnapshotIsDecidedAgain(t *testing.T) {
	ctx := context.Background()
	store := &racyStore{Store: memstore.New(memstore.Options{})}
	obs := &storetest.StaleCount{}
	e := runtime.New(store, runtime.Options{Observer: obs})
	flipQueued(t, e)
	if _, err := e.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := e.Get(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	if !store.raced || obs.N.Load() != 1 {
		t.Fatalf("raced %v, %d stale commits; want one", store.raced, obs.N.Load())
	}
	transitions := 0
	for _, h := range v.History {
		if h.Kind == runtime.HistTransition {
			transitions++
		}
	}
	if v.StateName != "On" || v.Priority != 5 || v.Version != 3 || transitions != 1 {
		t.Fatalf("state %s priority %d version %d with %d transitions; want On, 5, 3, 1", v.StateName, v.Priority, v.Version, transitions)
	}
}

// replyLost is the embedded store, except that one Commit writes and
// then fails as if its reply were lost on the way back; with paused,
// while the worker was paused past its lease: paused moves on an hour.
type replyLost struct {
	runtime.Store
	lose   atomic.Bool
	paused *runtime.FakeClock
}

func (s *replyLost) Commit(ctx context.Context, l *runtime.Lease, c *runtime.Commit) error {
	err := s.Store.Commit(ctx, l, c)
	if err == nil && s.lose.CompareAndSwap(true, false) {
		if s.paused != nil {
			s.paused.Advance(time.Hour)
		}
		return errors.New("read tcp: i/o timeout")
	}
	return err
}

// TestLostCommitReplyIsReported: a commit that was written although its
// reply was lost is tried again, refused (it landed), and reported
// (OnChange, and so the metrics) once, not as a stale commit.
func TestLostCommitReplyIsReported(t *testing.T) {
	store := &replyLost{Store: memstore.New(memstore.Options{})}
	var changes []string
	var logs bytes.Buffer
	e := runtime.New(store, runtime.Options{Clock: runtime.NewFakeClock(time.Unix(0, 0)), OnChange: func(c runtime.Change) {
		changes = append(changes, fmt.Sprintf("v%d %d->%d", c.Version, c.From, c.To))
	}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	flipQueued(t, e)
	store.lose.Store(true)
	if n, err := e.RunDue(ctx); n != 1 || err != nil {
		t.Fatalf("RunDue handled %d (%v); want the flip, its lost reply ridden out", n, err)
	}
	if strings.Contains(logs.String(), "commit rejected") {
		t.Errorf("the commit that landed was logged as rejected:\n%s", logs.String())
	}
	if n, err := e.RunDue(ctx); n != 0 || err != nil {
		t.Fatalf("after the written commit, RunDue handled %d (%v): the work was not finished", n, err)
	}
	if got := strings.Join(changes, ", "); got != "v1 -1->0, v2 0->1" {
		t.Fatalf("changes reported: %s; want the start and the flip, once each", got)
	}
}

// storeAway is the embedded store, away for its next Commit calls while
// commits is above zero, its next Complete calls while completes is, and
// its next Release calls while releases is: each fails, writing nothing.
type storeAway struct {
	runtime.Store
	commits, completes, releases atomic.Int32
}

func (s *storeAway) Release(ctx context.Context, l *runtime.Lease) error {
	if err := away(&s.releases); err != nil {
		return err
	}
	return s.Store.Release(ctx, l)
}

func away(calls *atomic.Int32) error {
	if calls.Add(-1) >= 0 {
		return errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	}
	return nil
}

func (s *storeAway) Commit(ctx context.Context, l *runtime.Lease, c *runtime.Commit) error {
	if err := away(&s.commits); err != nil {
		return err
	}
	return s.Store.Commit(ctx, l, c)
}

func (s *storeAway) Complete(ctx context.Context, l *runtime.Lease, h []runtime.HistoryEntry, w []runtime.Work) error {
	if err := away(&s.completes); err != nil {
		return err
	}
	return s.Store.Complete(ctx, l, h, w)
}

// TestStoppingWithTheStoreAway: a worker that stops while a task runs
// gives its lease back; when the store is away it cannot, and says so,
// naming the instance, since its work now waits for the lease to end.
func TestStoppingWithTheStoreAway(t *testing.T) {
	store := &storeAway{Store: memstore.New(memstore.Options{})}
	var logged strings.Builder
	var mu sync.Mutex
	e := runtime.New(store, runtime.Options{StopGrace: time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))})
	ctx := context.Background()
	running := make(chan struct{})
	err := e.Register(ctx, compileMachine(t, slowJob), map[string]runtime.Handler{
		"Work": func(ctx context.Context, _ *runtime.Call) (runtime.Result, error) {
			close(running)
			<-ctx.Done()
			return runtime.Result{}, ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "Job", "j", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(runCtx, 1) }()
	<-running
	store.releases.Store(1)
	stop()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if got := logged.String(); !strings.Contains(got, "could not give back work") || !strings.Contains(got, "instance=j") {
		t.Fatalf("no warning naming the work not given back:\n%s", got)
	}
}

// TestShortOutageRiddenOut: a worker whose writes fail for want of the
// store keeps its result and writes it when the store answers, within
// its lease: the task runs once, and its instance moves on with no
// lease left to run out.
func TestShortOutageRiddenOut(t *testing.T) {
	store := &storeAway{Store: memstore.New(memstore.Options{})}
	e := runtime.New(store, runtime.Options{Clock: runtime.NewFakeClock(time.Unix(0, 0)), Lease: 15 * time.Second})
	ctx := context.Background()
	var runs atomic.Int32
	err := e.Register(ctx, compileMachine(t, slowJob), map[string]runtime.Handler{
		"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
			runs.Add(1)
			// The store goes away while the task runs, for the attempt's
			// write and for the transition its result takes.
			store.completes.Store(3)
			store.commits.Store(3)
			return runtime.Result{}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "Job", "j", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunDue(ctx); err != nil {
		t.Fatalf("RunDue: %v", err)
	}
	if store.completes.Load() >= 0 || store.commits.Load() >= 0 {
		t.Fatalf("the store was not away for every write it was meant to be")
	}
	v, err := e.Get(ctx, "j")
	if err != nil {
		t.Fatal(err)
	}
	if v.StateName != "Finished" || runs.Load() != 1 {
		t.Fatalf("%s after %d runs of the task; want Finished after 1", v.StateName, runs.Load())
	}
}

// flipQueued registers the toggle with e, starts instance t and sends
// it Flip, which waits for a worker.
func flipQueued(t *testing.T, e *runtime.Engine) {
	t.Helper()
	ctx := context.Background()
	if err := e.Register(ctx, compileMachine(t, toggle), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "Toggle", "t", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Send(ctx, "t", "Flip", nil); err != nil {
		t.Fatal(err)
	}
}

// TestExpiredLeaseOnEndedInstance: a worker whose lease ran out while
// its task ran, and whose instance has ended since (its timer fired on
// another worker), is told why its result is refused: not that another
// worker took the work over.
func TestExpiredLeaseOnEndedInstance(t *testing.T) {
	clock := runtime.NewFakeClock(time.Unix(0, 0))
	var logs bytes.Buffer
	var mu sync.Mutex
	e := runtime.New(memstore.New(memstore.Options{}), runtime.Options{Clock: clock, Lease: 5 * time.Second,
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	ctx := context.Background()
	running, release := make(chan struct{}), make(chan struct{})
	err := e.Register(ctx, compileMachine(t, irtest.TaskOrTimer), map[string]runtime.Handler{"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
		close(running)
		<-release
		return runtime.Result{}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "Slow", "s", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() { _, err := e.RunDue(ctx); done <- err }()
	<-running
	clock.Advance(10 * time.Second) // past the timer and the task's lease
	if _, err := e.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	v, err := e.Get(ctx, "s")
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if v.StateName != "Late" || !strings.Contains(logs.String(), "the lease on this work expired while it ran, and the instance ended (completed) since") {
		t.Fatalf("%s; log:\n%s", v.StateName, logs.String())
	}
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestLandedCommitIsNoError: a commit whose reply was lost, with no
// lease left to try it again, is reported when it landed all the same,
// and its work is done, not failed: no error, once.
func TestLandedCommitIsNoError(t *testing.T) {
	clock := runtime.NewFakeClock(time.Unix(0, 0))
	store := &replyLost{Store: memstore.New(memstore.Options{}), paused: clock}
	var changes []string
	e := runtime.New(store, runtime.Options{Clock: clock, OnChange: func(c runtime.Change) {
		changes = append(changes, fmt.Sprintf("v%d %d->%d", c.Version, c.From, c.To))
	}})
	ctx := context.Background()
	flipQueued(t, e)
	store.lose.Store(true)
	if n, err := e.RunDue(ctx); n != 1 || err != nil {
		t.Fatalf("RunDue handled %d (%v); want the flip, done", n, err)
	}
	if got := strings.Join(changes, ", "); got != "v1 -1->0, v2 0->1" {
		t.Fatalf("changes reported: %s; want the start and the flip, once each", got)
	}
}
