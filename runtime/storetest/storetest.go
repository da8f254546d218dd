// Package storetest is the conformance suite every runtime.Store must
// pass: the same test functions run against memstore and redisstore.
//
// Run takes a function that returns a fresh, empty store and runs two
// groups of tests: RunStore, the Store contract itself (ordering, leases,
// fenced commits, history, the changelog), and RunEngine, the meaning of
// machines (language.md "Meaning") driven through a runtime.Engine on
// that store with a fake clock, so no test sleeps.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
)

// NewStore returns a fresh, empty store for one test.
type NewStore func(t *testing.T) runtime.Store

// Run runs the whole suite: RunStore and RunEngine.
func Run(t *testing.T, newStore NewStore) {
	RunStore(t, newStore)
	RunEngine(t, newStore)
}

type suiteTest struct {
	name string
	fn   func(*testing.T, NewStore)
}

func runTests(t *testing.T, newStore NewStore, tests []suiteTest) {
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore) })
	}
}

// RunStore runs the Store contract itself: ordering, due times,
// priorities, leases (their expiry driven by the callers' fake times),
// fenced commits, history and the changelog.
func RunStore(t *testing.T, newStore NewStore) {
	runTests(t, newStore, []suiteTest{
		{"CreateLoadExists", testCreateLoadExists},
		{"InstanceQueueIsFIFO", testInstanceQueueIsFIFO},
		{"CreatedQueueInDueOrder", testCreatedQueueInDueOrder},
		{"EarlierWorkWhileLeased", testEarlierWorkWhileLeased},
		{"CancelledContext", testCancelledContext},
		{"NoWorkAfterTheEnd", testNoWorkAfterTheEnd},
		{"NothingBeforeDue", testNothingBeforeDue},
		{"PriorityFirst", testPriorityFirst},
		{"MoreAtTheNextPriority", testMoreAtTheNextPriority},
		{"OneClaimPerInstance", testOneClaimPerInstance},
		{"CommitIsFenced", testCommitIsFenced},
		{"LostLease", testLostLease},
		{"ReleaseAndExpiry", testReleaseAndExpiry},
		{"TasksNeedAHandler", testTasksNeedAHandler},
		{"OthersWorkDoesNotHide", testOthersWorkDoesNotHide},
		{"NoTasks", testNoTasks},
		{"DueOrderAcrossMachines", testDueOrderAcrossMachines},
		{"ParkedWorkWaits", testParkedWorkWaits},
		{"HistoryIsCapped", testHistoryIsCapped},
		{"Changelog", testChangelog},
		{"DropWork", testDropWork},
		{"List", testList},
		{"QueueStats", testQueueStats},
	})
}

// RunEngine runs the meaning of machines (language.md "Meaning") through
// a runtime.Engine on the store, with a fake clock.
func RunEngine(t *testing.T, newStore NewStore) {
	runTests(t, newStore, []suiteTest{
		{"OrderRunsToCompletion", testOrderRunsToCompletion},
		{"SimultaneousSet", testSimultaneousSet},
		{"RetriesWithBackoff", testRetriesWithBackoff},
		{"ErrorAfterRetries", testErrorAfterRetries},
		{"PermanentFailureParks", testPermanentFailureParks},
		{"TimersDieWithTheVisit", testTimersDieWithTheVisit},
		{"StaleResultDiscarded", testStaleResultDiscarded},
		{"ExpressionFaultParks", testExpressionFaultParks},
		{"FaultOnATaskResult", testFaultOnATaskResult},
		{"FaultAsATimerFires", testFaultAsATimerFires},
		{"UnhandledAndIgnored", testUnhandledAndIgnored},
		{"CompletedRejects", testCompletedRejects},
		{"QueuedWhenItCompletes", testQueuedWhenItCompletes},
		{"Cancel", testCancel},
		{"CancelWhileATaskRuns", testCancelWhileATaskRuns},
		{"EventEndsWhileATaskRuns", testEventEndsWhileATaskRuns},
		{"BadHandlerResults", testBadHandlerResults},
		{"MisbehavingHandlers", testMisbehavingHandlers},
		{"NoHandlerAnywhere", testNoHandlerAnywhere},
		{"HandlerTimeout", testHandlerTimeout},
		{"TimeoutAfterLeaving", testTimeoutAfterLeaving},
		{"NegativeZero", testNegativeZero},
		{"ReenteringRestarts", testReenteringRestarts},
		{"ParkedWithARetryPending", testParkedWithARetryPending},
	})
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// compile compiles one machine for the suite.
func compile(t *testing.T, src string) *ir.Machine {
	return irtest.Compile(t, "test.fsm", []byte(src)).Machines[0]
}

const toggle = `machine Toggle {
    context {
        n: int = 0
    }
    event Flip
    initial state Off {
        on Flip -> On set n = n + 1
    }
    state On {
        on Flip -> Off set n = n + 1
    }
}`

func ctx() context.Context { return context.Background() }

// plainInstance makes an active instance of m for store-level tests.
func plainInstance(m *ir.Machine, id string, priority int) *runtime.Instance {
	inst, _ := irtest.NewInstance(m, id, priority, epoch)
	return inst
}

func create(t *testing.T, s runtime.Store, m *ir.Machine, id string, priority int, work ...runtime.Work) {
	t.Helper()
	if err := s.PutMachine(ctx(), m); err != nil {
		t.Fatal(err)
	}
	inst, start := irtest.NewInstance(m, id, priority, epoch)
	if err := s.Create(ctx(), inst, work, start); err != nil {
		t.Fatal(err)
	}
}

func event(id string, due time.Time, ev int) runtime.Work {
	return runtime.Work{Kind: runtime.WorkEvent, Instance: id, Due: due, Event: ev}
}

func filter(now time.Time) runtime.ClaimFilter {
	return runtime.ClaimFilter{Worker: "w", Now: now, Lease: 10 * time.Second}
}

func claim(t *testing.T, s runtime.Store, now time.Time) (runtime.Lease, bool) {
	t.Helper()
	var l runtime.Lease
	ok, err := s.Claim(ctx(), filter(now), &l)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		checkNext(t, s, filter(now), &l)
	}
	return l, ok
}

// checkNext checks what a claim that found nothing said about when to
// look again, if it said anything: what NextDue says.
func checkNext(t *testing.T, s runtime.Store, f runtime.ClaimFilter, l *runtime.Lease) {
	t.Helper()
	if !l.NextKnown {
		return
	}
	next, found, err := s.NextDue(ctx(), f)
	if err != nil {
		t.Fatal(err)
	}
	if found != !l.Next.IsZero() || !next.Equal(l.Next) {
		t.Fatalf("a claim that found nothing says to look again at %v; NextDue says %v (found %v)", l.Next, next, found)
	}
}

func testCreateLoadExists(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	if err := s.PutMachine(ctx(), m); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Machine(ctx(), m.Hash); err != nil || got.Name != "Toggle" {
		t.Fatalf("Machine: %v %v", got, err)
	}
	create(t, s, m, "a", 3)
	var inst runtime.Instance
	if err := s.Load(ctx(), "a", &inst); err != nil {
		t.Fatal(err)
	}
	if inst.Version != 1 || inst.Priority != 3 || inst.Status != runtime.Active || inst.Context[0].I != 0 {
		t.Fatalf("loaded %+v", inst)
	}
	err := s.Create(ctx(), plainInstance(m, "a", 0), nil, nil)
	if !errors.Is(err, runtime.ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
	if err := s.Load(ctx(), "nope", &inst); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Load of a missing instance: %v", err)
	}
	if err := s.Enqueue(ctx(), event("nope", epoch, 2)); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Enqueue for a missing instance: %v", err)
	}
}

// commitNoChange commits the leased item, keeping the instance as it is.
func commitNoChange(t *testing.T, s runtime.Store, l *runtime.Lease) {
	t.Helper()
	var inst runtime.Instance
	if err := s.Load(ctx(), l.Work.Instance, &inst); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx(), l, &runtime.Commit{Instance: &inst}); err != nil {
		t.Fatal(err)
	}
}

func testInstanceQueueIsFIFO(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	create(t, s, m, "a", 0)
	for i := 0; i < 5; i++ {
		if err := s.Enqueue(ctx(), runtime.Work{Kind: runtime.WorkEvent, Instance: "a", Due: epoch, Event: 2, Timer: i}); err != nil {
			t.Fatal(err)
		}
	}
	for want := 0; want < 5; want++ {
		l, ok := claim(t, s, epoch)
		if !ok || l.Work.Timer != want {
			t.Fatalf("claim %d: ok=%v work %+v", want, ok, l.Work)
		}
		commitNoChange(t, s, &l)
	}
	if _, ok := claim(t, s, epoch); ok {
		t.Fatal("claimed from an empty queue")
	}
}

// testCreatedQueueInDueOrder: the work an instance starts with runs in
// order of due time, then in the order given, whatever that order.
func testCreatedQueueInDueOrder(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	work := func(due time.Duration, timer int) runtime.Work {
		return runtime.Work{Kind: runtime.WorkEvent, Instance: "a", Due: epoch.Add(due), Event: 2, Timer: timer}
	}
	create(t, s, m, "a", 0, work(time.Hour, 0), work(0, 1), work(time.Minute, 2), work(0, 3))
	for _, want := range []struct {
		at    time.Duration
		timer int
	}{{0, 1}, {0, 3}, {time.Hour, 2}, {time.Hour, 0}} {
		l, ok := claim(t, s, epoch.Add(want.at))
		if !ok || l.Work.Timer != want.timer {
			t.Fatalf("claim at +%v: ok=%v work %+v, want timer %d", want.at, ok, l.Work, want.timer)
		}
		commitNoChange(t, s, &l)
	}
	if l, ok := claim(t, s, epoch); ok {
		t.Fatalf("claimed %+v from an empty queue", l.Work)
	}
}

// testEarlierWorkWhileLeased: an event stamped before the instance's
// leased work, but arriving after the claim (two senders whose clocks
// read a moment apart), leaves the lease alone: its commit still holds,
// and the event is next.
func testEarlierWorkWhileLeased(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	create(t, s, m, "a", 0, runtime.Work{Kind: runtime.WorkEvent, Instance: "a", Due: epoch.Add(time.Millisecond), Event: 2, Timer: 1})
	l, ok := claim(t, s, epoch.Add(time.Millisecond))
	if !ok || l.Work.Timer != 1 {
		t.Fatalf("claim: ok=%v work %+v", ok, l.Work)
	}
	if err := s.Enqueue(ctx(), runtime.Work{Kind: runtime.WorkEvent, Instance: "a", Due: epoch, Event: 2, Timer: 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.Extend(ctx(), &l, epoch.Add(5*time.Second)); err != nil {
		t.Fatalf("extending the lease after an earlier event arrived: %v", err)
	}
	commitNoChange(t, s, &l)
	l, ok = claim(t, s, epoch.Add(time.Millisecond))
	if !ok || l.Work.Timer != 2 {
		t.Fatalf("after the commit: ok=%v work %+v, want the earlier-stamped event", ok, l.Work)
	}
	commitNoChange(t, s, &l)
}

// testCancelledContext: a write whose context is done fails with the
// context's error, and writes nothing.
func testCancelledContext(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	create(t, s, m, "a", 0)
	done, cancel := context.WithCancel(ctx())
	cancel()
	inst, start := irtest.NewInstance(m, "b", 0, epoch)
	if err := s.Create(done, inst, nil, start); !errors.Is(err, context.Canceled) {
		t.Fatalf("Create with a cancelled context: %v", err)
	}
	if err := s.Load(ctx(), "b", inst); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Create with a cancelled context wrote the instance: %v", err)
	}
	if err := s.Enqueue(done, event("a", epoch, 2)); !errors.Is(err, context.Canceled) {
		t.Fatalf("Enqueue with a cancelled context: %v", err)
	}
	var l runtime.Lease
	if ok, err := s.Claim(done, filter(epoch), &l); ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("Claim with a cancelled context: %v %v", ok, err)
	}
	if _, ok := claim(t, s, epoch); ok {
		t.Fatal("an Enqueue with a cancelled context left work")
	}
}

// testNoWorkAfterTheEnd: Enqueue checks, with its write, that the
// instance has not ended. An event that raced a cancel or a final
// transition (its sender saw the instance active) is refused, not left
// in a queue that nothing will ever read.
func testNoWorkAfterTheEnd(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	for _, end := range []runtime.Status{runtime.Completed, runtime.Cancelled} {
		id := end.String()
		create(t, s, m, id, 0)
		var inst runtime.Instance
		if err := s.Load(ctx(), id, &inst); err != nil {
			t.Fatal(err)
		}
		inst.Status = end
		if err := s.Update(ctx(), &runtime.Commit{Instance: &inst, DropWork: true}); err != nil {
			t.Fatal(err)
		}
		err := s.Enqueue(ctx(), event(id, epoch, 2))
		if !errors.Is(err, runtime.ErrRejected) || !strings.Contains(err.Error(), "instance "+id+" is "+id) {
			t.Fatalf("Enqueue to a %s instance: %v, want ErrRejected naming it", end, err)
		}
	}
	if l, ok := claim(t, s, epoch); ok {
		t.Fatalf("claimed %+v from ended instances", l.Work)
	}
}

func testNothingBeforeDue(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	create(t, s, m, "a", 0, event("a", epoch.Add(time.Minute), 2))
	if _, ok := claim(t, s, epoch.Add(59*time.Second)); ok {
		t.Fatal("claimed before due")
	}
	next, found, err := s.NextDue(ctx(), runtime.ClaimFilter{})
	if err != nil || !found || !next.Equal(epoch.Add(time.Minute)) {
		t.Fatalf("NextDue = %v %v %v", next, found, err)
	}
	if _, ok := claim(t, s, epoch.Add(time.Minute)); !ok {
		t.Fatal("nothing claimed when due")
	}
}

func testPriorityFirst(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	create(t, s, m, "low", 0, event("low", epoch, 2))
	create(t, s, m, "high", 9, event("high", epoch.Add(time.Second), 2))
	create(t, s, m, "later", 9, event("later", epoch.Add(time.Hour), 2))
	now := epoch.Add(2 * time.Second)
	l, ok := claim(t, s, now)
	if !ok || l.Work.Instance != "high" || l.Work.Priority != 9 {
		t.Fatalf("first claim %+v, want the high-priority instance, with its priority", l.Work)
	}
	if !l.More {
		t.Error("the first claim did not say that more work was due (low)")
	}
	l2, ok := claim(t, s, now)
	if !ok || l2.Work.Instance != "low" {
		t.Fatalf("second claim %+v, want low (later is not due)", l2.Work)
	}
	if l2.More {
		t.Error("the second claim said more work was due, but later is not due yet")
	}
}

// testMoreAtTheNextPriority: work of the same machine due at the next
// priority down is more work due, for another worker to take.
func testMoreAtTheNextPriority(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	create(t, s, m, "high", 5, event("high", epoch, 2))
	create(t, s, m, "next", 4, event("next", epoch, 2))
	l, ok := claim(t, s, epoch)
	if !ok || l.Work.Instance != "high" {
		t.Fatalf("first claim %+v, want high", l.Work)
	}
	if !l.More {
		t.Error("the first claim did not say that more work was due (next, one priority down)")
	}
}

func testOneClaimPerInstance(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	create(t, s, m, "a", 0, event("a", epoch, 2), event("a", epoch, 2))
	l, ok := claim(t, s, epoch)
	if !ok {
		t.Fatal("nothing claimed")
	}
	if l2, ok := claim(t, s, epoch); ok {
		t.Fatalf("claimed %+v while the instance's head was leased", l2.Work)
	}
	commitNoChange(t, s, &l)
	if _, ok := claim(t, s, epoch); !ok {
		t.Fatal("the next item is not claimable after the commit")
	}
}

func testCommitIsFenced(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	create(t, s, m, "a", 0, event("a", epoch, 2), event("a", epoch, 2))
	l, _ := claim(t, s, epoch)
	var inst runtime.Instance
	_ = s.Load(ctx(), "a", &inst)
	// An operator's update lands first.
	op := inst
	op.Context = append([]ir.Value(nil), inst.Context...)
	op.Priority = 5
	if err := s.Update(ctx(), &runtime.Commit{Instance: &op}); err != nil {
		t.Fatal(err)
	}
	stale := inst
	stale.Context = []ir.Value{{T: ir.TypeInt, I: 99}}
	if err := s.Commit(ctx(), &l, &runtime.Commit{Instance: &stale}); !errors.Is(err, runtime.ErrStale) {
		t.Fatalf("stale commit: %v, want ErrStale", err)
	}
	_ = s.Load(ctx(), "a", &inst)
	if inst.Context[0].I == 99 || inst.Version != 2 || inst.Priority != 5 {
		t.Fatalf("a stale commit changed the instance: %+v", inst)
	}
	if err := s.Update(ctx(), &runtime.Commit{Instance: &stale}); !errors.Is(err, runtime.ErrStale) {
		t.Fatalf("stale update: %v, want ErrStale", err)
	}
}

func testLostLease(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	create(t, s, m, "a", 0, event("a", epoch, 2))
	l, _ := claim(t, s, epoch)
	// The lease expires and another worker takes the item over.
	l2, ok := claim(t, s, epoch.Add(11*time.Second))
	if !ok || l2.Work.Seq != l.Work.Seq {
		t.Fatalf("expired work not claimable: %v %+v", ok, l2.Work)
	}
	var inst runtime.Instance
	_ = s.Load(ctx(), "a", &inst)
	if err := s.Commit(ctx(), &l, &runtime.Commit{Instance: &inst}); !errors.Is(err, runtime.ErrLostLease) {
		t.Fatalf("commit on a lost lease: %v, want ErrLostLease", err)
	}
	if err := s.Extend(ctx(), &l, epoch.Add(time.Hour)); !errors.Is(err, runtime.ErrLostLease) {
		t.Fatalf("extend of a lost lease: %v", err)
	}
	if err := s.Commit(ctx(), &l2, &runtime.Commit{Instance: &inst}); err != nil {
		t.Fatalf("the new holder cannot commit: %v", err)
	}
}

func testReleaseAndExpiry(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	create(t, s, m, "a", 0, event("a", epoch, 2))
	l, _ := claim(t, s, epoch)
	if err := s.Release(ctx(), &l); err != nil {
		t.Fatal(err)
	}
	l, ok := claim(t, s, epoch)
	if !ok {
		t.Fatal("released work is not claimable")
	}
	if err := s.Extend(ctx(), &l, epoch.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, ok := claim(t, s, epoch.Add(30*time.Second)); ok {
		t.Fatal("claimed work whose lease was extended")
	}
	if _, ok := claim(t, s, epoch.Add(61*time.Second)); !ok {
		t.Fatal("work is not claimable after its lease expired")
	}
}

// oneTask's instances run A (B is never used) and end.
const oneTask = `machine M {
    action A
    action B
    initial state S {
        do A
        on done -> T
        on error -> T
    }
    final state T
}`

// testQueueStats: what waits, what is due and since when, and what is
// leased; an instance with several events queued is one unit. A store
// that cannot report its queue skips this.
func testQueueStats(t *testing.T, newStore NewStore) {
	s := newStore(t)
	qs, ok := s.(runtime.QueueStater)
	if !ok {
		t.Skip("the store does not report its queue")
	}
	stats := func(now time.Time, want runtime.QueueStats) {
		t.Helper()
		got, err := qs.QueueStats(ctx(), now)
		if err != nil {
			t.Fatal(err)
		}
		if got.Waiting != want.Waiting || got.Due != want.Due || got.Leased != want.Leased || !got.OldestDue.Equal(want.OldestDue) {
			t.Fatalf("at %v: QueueStats = %+v, want %+v", now, got, want)
		}
	}
	stats(epoch, runtime.QueueStats{})
	m := compile(t, oneTask)
	create(t, s, m, "a", 0, event("a", epoch, 2), event("a", epoch, 2))
	create(t, s, m, "b", 0, runtime.Work{Kind: runtime.WorkTask, Due: epoch.Add(time.Second), Visit: 1, Action: 0, Attempt: 1})
	create(t, s, m, "c", 5, event("c", epoch.Add(time.Hour), 2))
	stats(epoch, runtime.QueueStats{Waiting: 3, Due: 1, OldestDue: epoch})
	stats(epoch.Add(2*time.Second), runtime.QueueStats{Waiting: 3, Due: 2, OldestDue: epoch})
	l, ok := claim(t, s, epoch.Add(2*time.Second))
	if !ok || l.Work.Instance != "a" && l.Work.Instance != "b" {
		t.Fatalf("claimed %+v %v", l.Work, ok)
	}
	other := epoch
	if l.Work.Instance == "a" {
		other = epoch.Add(time.Second)
	}
	stats(epoch.Add(2*time.Second), runtime.QueueStats{Waiting: 2, Due: 1, OldestDue: other, Leased: 1})
}

func testTasksNeedAHandler(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, oneTask)
	create(t, s, m, "a", 0, runtime.Work{Kind: runtime.WorkTask, Due: epoch, Visit: 1, Action: 0, Attempt: 1})
	f := filter(epoch)
	f.Runnable = map[string][]int{m.Hash: {1}}
	if d, ok := s.(runtime.HandlerDirectory); ok {
		d.Announce("another engine", map[string][]int{m.Hash: {0}}) // it has the handler
	}
	var l runtime.Lease
	// Work a worker cannot take is not due for it either: it would wake
	// for it again and again.
	notDue := func(why string) {
		t.Helper()
		if next, found, err := s.NextDue(ctx(), f); found || err != nil {
			t.Fatalf("%s: NextDue = %v %v %v, want nothing", why, next, found, err)
		}
	}
	if ok, _ := s.Claim(ctx(), f, &l); ok {
		t.Fatal("a worker without the handler claimed the task")
	}
	checkNext(t, s, f, &l)
	notDue("without the handler")
	f.Hashes = []string{"sha256:other"}
	f.Runnable = nil
	l.NextKnown = false
	if ok, _ := s.Claim(ctx(), f, &l); ok {
		t.Fatal("a worker without the machine version claimed its work")
	}
	checkNext(t, s, f, &l)
	notDue("without the machine version")
	f.Hashes = []string{m.Hash}
	if next, found, err := s.NextDue(ctx(), f); !found || err != nil || !next.Equal(epoch) {
		t.Fatalf("with the handler: NextDue = %v %v %v, want %v", next, found, err, epoch)
	}
	if ok, _ := s.Claim(ctx(), f, &l); !ok || l.Work.Kind != runtime.WorkTask {
		t.Fatalf("the task was not claimable by a worker with its handler: %+v", l.Work)
	}
	if err := s.Complete(ctx(), &l, nil, []runtime.Work{event("a", epoch, ir.EventDone)}); err != nil {
		t.Fatal(err)
	}
	if l, ok := claim(t, s, epoch); !ok || l.Work.Event != ir.EventDone {
		t.Fatalf("follow-up work missing: %+v", l.Work)
	}
}

// testOthersWorkDoesNotHide: a worker that runs one machine, or one of
// its actions, claims that work however much due work of other machines
// and actions lies ahead of it, and NextDue sees it.
func testOthersWorkDoesNotHide(t *testing.T, newStore NewStore) {
	s := newStore(t)
	other, m := compile(t, toggle), compile(t, oneTask)
	if d, ok := s.(runtime.HandlerDirectory); ok {
		d.Announce("another engine", map[string][]int{m.Hash: {0}})
	}
	const ahead = 150
	for i := 0; i < ahead; i++ {
		id := fmt.Sprintf("o%d", i)
		create(t, s, other, id, 0, event(id, epoch, 0))
		create(t, s, m, fmt.Sprintf("a%d", i), 0, runtime.Work{Kind: runtime.WorkTask, Due: epoch, Visit: 1, Action: 0, Attempt: 1})
	}
	create(t, s, m, "b", 0, runtime.Work{Kind: runtime.WorkTask, Due: epoch.Add(time.Second), Visit: 1, Action: 1, Attempt: 1})
	create(t, s, m, "q", 0, event("q", epoch.Add(2*time.Second), ir.EventDone))
	f := filter(epoch.Add(3 * time.Second))
	f.Hashes = []string{m.Hash}
	f.Runnable = map[string][]int{m.Hash: {1}}
	if next, found, err := s.NextDue(ctx(), f); !found || err != nil || !next.Equal(epoch.Add(time.Second)) {
		t.Fatalf("NextDue = %v %v %v, want b's task attempt at %v", next, found, err, epoch.Add(time.Second))
	}
	for _, want := range []string{"b", "q"} {
		var l runtime.Lease
		if ok, err := s.Claim(ctx(), f, &l); !ok || err != nil || l.Work.Instance != want {
			t.Fatalf("claimed %+v (%v %v) behind %d units of others' work, want %s's", l.Work, ok, err, 2*ahead, want)
		}
	}
	var l runtime.Lease
	if ok, err := s.Claim(ctx(), f, &l); ok || err != nil {
		t.Fatalf("claimed %+v (%v), which the worker does not run", l.Work, err)
	}
}

// testDueOrderAcrossMachines: within a priority, work is claimed in due
// order whatever machine and action it is for, so that work that keeps
// coming for one never holds back another's.
func testDueOrderAcrossMachines(t *testing.T, newStore NewStore) {
	s := newStore(t)
	x, y := compile(t, toggle), compile(t, oneTask)
	for i, id := range []string{"x0", "x1", "x2"} {
		create(t, s, x, id, 0, event(id, epoch.Add(time.Duration(2*i)*time.Second), 0))
	}
	create(t, s, y, "y", 0, event("y", epoch.Add(time.Second), ir.EventDone))
	create(t, s, y, "t", 0, runtime.Work{Kind: runtime.WorkTask, Due: epoch.Add(3 * time.Second), Visit: 1, Action: 0, Attempt: 1})
	var got []string
	for {
		l, ok := claim(t, s, epoch.Add(time.Minute))
		if !ok {
			break
		}
		got = append(got, l.Work.Instance)
	}
	if strings.Join(got, " ") != "x0 y x1 t x2" {
		t.Fatalf("claimed %v, want x0 y x1 t x2 (due order)", got)
	}
}

// testNoTasks: a claim with NoTasks takes instance work and leaves task
// attempts, which are not due for it either.
func testNoTasks(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, oneTask)
	create(t, s, m, "a", 0, runtime.Work{Kind: runtime.WorkTask, Due: epoch, Visit: 1, Action: 0, Attempt: 1})
	f := filter(epoch)
	f.NoTasks = true
	if next, found, err := s.NextDue(ctx(), f); found || err != nil {
		t.Fatalf("NextDue = %v %v %v, want nothing", next, found, err)
	}
	var l runtime.Lease
	if ok, err := s.Claim(ctx(), f, &l); ok || err != nil {
		t.Fatalf("claimed %+v (%v) with NoTasks", l.Work, err)
	}
	create(t, s, m, "b", 0, event("b", epoch, ir.EventDone))
	if ok, err := s.Claim(ctx(), f, &l); !ok || err != nil || l.Work.Instance != "b" {
		t.Fatalf("claimed %+v (%v %v) with NoTasks, want b's event", l.Work, ok, err)
	}
	if l, ok := claim(t, s, epoch); !ok || l.Work.Instance != "a" || l.Work.Kind != runtime.WorkTask {
		t.Fatalf("claimed %+v (%v) without NoTasks, want a's task attempt", l.Work, ok)
	}
}

// testParkedWorkWaits: nothing of a parked (failed) instance is due or
// claimable, not even a task attempt it had pending; when it is active
// again, that attempt is.
func testParkedWorkWaits(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, oneTask)
	create(t, s, m, "a", 0, runtime.Work{Kind: runtime.WorkTask, Due: epoch, Visit: 1, Action: 0, Attempt: 1})
	setStatus := func(st runtime.Status) {
		t.Helper()
		var inst runtime.Instance
		if err := s.Load(ctx(), "a", &inst); err != nil {
			t.Fatal(err)
		}
		inst.Status = st
		if err := s.Update(ctx(), &runtime.Commit{Instance: &inst}); err != nil {
			t.Fatal(err)
		}
	}
	setStatus(runtime.Failed)
	if next, found, err := s.NextDue(ctx(), filter(epoch)); found || err != nil {
		t.Fatalf("parked: NextDue = %v %v %v, want nothing", next, found, err)
	}
	if l, ok := claim(t, s, epoch.Add(time.Hour)); ok {
		t.Fatalf("claimed %+v of a parked instance", l.Work)
	}
	setStatus(runtime.Active)
	if next, found, err := s.NextDue(ctx(), filter(epoch)); !found || err != nil || !next.Equal(epoch) {
		t.Fatalf("active again: NextDue = %v %v %v, want %v", next, found, err, epoch)
	}
	if l, ok := claim(t, s, epoch); !ok || l.Work.Kind != runtime.WorkTask {
		t.Fatalf("active again: claimed %+v %v, want the pending task attempt", l.Work, ok)
	}
}

func testHistoryIsCapped(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	create(t, s, m, "a", 0)
	var inst runtime.Instance
	for i := 0; i < 150; i++ {
		_ = s.Load(ctx(), "a", &inst)
		h := []runtime.HistoryEntry{{Time: epoch, Kind: runtime.HistUnhandled, Version: uint64(i), Event: 2}}
		if err := s.Update(ctx(), &runtime.Commit{Instance: &inst, History: h}); err != nil {
			t.Fatal(err)
		}
	}
	hist, err := s.History(ctx(), "a")
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) == 0 || len(hist) > 100 {
		t.Fatalf("history has %d entries, want at most 100", len(hist))
	}
	if last := hist[len(hist)-1]; last.Version != 149 {
		t.Fatalf("newest entry %+v, want version 149", last)
	}
	for i := 1; i < len(hist); i++ {
		if hist[i].Version != hist[i-1].Version+1 {
			t.Fatalf("history not oldest-first contiguous at %d: %d then %d", i, hist[i-1].Version, hist[i].Version)
		}
	}
}

func testChangelog(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	create(t, s, m, "a", 0, event("a", epoch, 2))
	l, _ := claim(t, s, epoch)
	var inst runtime.Instance
	_ = s.Load(ctx(), "a", &inst)
	inst.State = 1
	history := []runtime.HistoryEntry{
		{Time: epoch, Kind: runtime.HistUnhandled, Version: 1, From: 0, To: -1, Event: 2},
		{Time: epoch, Kind: runtime.HistTransition, Version: 2, From: 0, To: 1, Event: 2},
	}
	if err := s.Commit(ctx(), &l, &runtime.Commit{Instance: &inst, History: history}); err != nil {
		t.Fatal(err)
	}
	changes, cursor, err := s.Changes(ctx(), "", 0)
	if err != nil || len(changes) != 2 {
		t.Fatalf("changes %+v %v", changes, err)
	}
	if changes[0].From != -1 || changes[0].Instance != "a" || changes[0].Machine != m.Name {
		t.Fatalf("start change %+v", changes[0])
	}
	if changes[1].From != 0 || changes[1].To != 1 || changes[1].Event != 2 || changes[1].Version != 2 || changes[1].Hash != m.Hash {
		t.Fatalf("transition change %+v", changes[1])
	}
	more, cursor2, _ := s.Changes(ctx(), cursor, 0)
	if len(more) != 0 || cursor2 != cursor {
		t.Fatalf("reading from the cursor gave %+v", more)
	}
	one, _, _ := s.Changes(ctx(), "", 1)
	if len(one) != 1 {
		t.Fatalf("limit 1 gave %d", len(one))
	}
	// Each entry's cursor resumes right after it.
	if changes[1].Cursor != cursor {
		t.Fatalf("the last entry's cursor %q, want the batch's %q", changes[1].Cursor, cursor)
	}
	rest, _, err := s.Changes(ctx(), changes[0].Cursor, 0)
	if err != nil || len(rest) != 1 || rest[0].Version != 2 {
		t.Fatalf("resuming after the first entry gave %+v %v, want the transition", rest, err)
	}
}

func testDropWork(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	create(t, s, m, "a", 0, event("a", epoch, 2), runtime.Work{Kind: runtime.WorkTimer, Due: epoch.Add(time.Hour), Visit: 1})
	var inst runtime.Instance
	_ = s.Load(ctx(), "a", &inst)
	inst.Status = runtime.Cancelled
	if err := s.Update(ctx(), &runtime.Commit{Instance: &inst, DropWork: true}); err != nil {
		t.Fatal(err)
	}
	if _, ok := claim(t, s, epoch.Add(2*time.Hour)); ok {
		t.Fatal("work of a cancelled instance was claimed")
	}
}

func testList(t *testing.T, newStore NewStore) {
	s := newStore(t)
	m := compile(t, toggle)
	_ = s.PutMachine(ctx(), m)
	create(t, s, m, "b", 0)
	create(t, s, m, "a", 0)
	var inst runtime.Instance
	_ = s.Load(ctx(), "b", &inst)
	inst.State = 1
	inst.Status = runtime.Failed
	_ = s.Update(ctx(), &runtime.Commit{Instance: &inst})
	all, _ := s.List(ctx(), runtime.ListFilter{})
	if len(all) != 2 || all[0].ID != "a" {
		t.Fatalf("List = %v", ids(all))
	}
	on, _ := s.List(ctx(), runtime.ListFilter{Machine: "Toggle", State: "On"})
	failed, _ := s.List(ctx(), runtime.ListFilter{Status: runtime.Failed})
	none, _ := s.List(ctx(), runtime.ListFilter{Machine: "Other"})
	if ids(on) != "b" || ids(failed) != "b" || len(none) != 0 {
		t.Fatalf("filters: state %s, status %s, machine %s", ids(on), ids(failed), ids(none))
	}
}

func ids(insts []*runtime.Instance) string {
	var out []string
	for _, i := range insts {
		out = append(out, i.ID)
	}
	return strings.Join(out, ",")
}

// harness is an engine on a fresh store with a fake clock.
type harness struct {
	t      *testing.T
	clock  *runtime.FakeClock
	engine *runtime.Engine
	m      *ir.Machine
}

func newHarness(t *testing.T, newStore NewStore, src string, handlers map[string]runtime.Handler) *harness {
	clock := runtime.NewFakeClock(epoch)
	e := runtime.New(newStore(t), runtime.Options{Clock: clock, Jitter: func() float64 { return 1 }})
	m := compile(t, src)
	if err := e.Register(ctx(), m, handlers); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, clock: clock, engine: e, m: m}
}

// run handles everything due now.
func (h *harness) run() {
	h.t.Helper()
	if _, err := h.engine.RunDue(ctx()); err != nil {
		h.t.Fatal(err)
	}
}

// advance moves the clock to each due time up to d from now, running
// what is due at each, as a scenario's sleep does.
func (h *harness) advance(d time.Duration) {
	h.t.Helper()
	end := h.clock.Now().Add(d)
	h.run()
	for {
		next, found, err := h.engine.NextDue(ctx())
		if err != nil {
			h.t.Fatal(err)
		}
		if !found || next.After(end) {
			break
		}
		h.clock.Set(next)
		if n, err := h.engine.RunDue(ctx()); err != nil {
			h.t.Fatal(err)
		} else if n == 0 && !next.After(h.clock.Now()) {
			// What is due, nothing can take: time would stand still.
			h.t.Fatalf("work due at %v that nothing takes", next)
		}
	}
	h.clock.Set(end)
	h.run()
}

func (h *harness) start(id string, fields map[string]any) {
	h.t.Helper()
	if err := h.engine.Start(ctx(), h.m.Name, id, fields, runtime.StartOptions{}); err != nil {
		h.t.Fatal(err)
	}
	h.run()
}

func (h *harness) send(id, ev string, payload map[string]any) {
	h.t.Helper()
	if err := h.engine.Send(ctx(), id, ev, payload); err != nil {
		h.t.Fatal(err)
	}
	h.run()
}

func (h *harness) view(id string) *runtime.View {
	h.t.Helper()
	v, err := h.engine.Get(ctx(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}

// expect checks an instance's state and status.
func (h *harness) expect(id, state string, status runtime.Status) *runtime.View {
	h.t.Helper()
	v := h.view(id)
	if v.StateName != state || v.Status != status {
		h.t.Fatalf("%s is %s/%s (%s), want %s/%s; history:\n%s", id, v.StateName, v.Status, v.Failure, state, status, describe(v))
	}
	return v
}

func describe(v *runtime.View) string {
	var b strings.Builder
	for _, e := range v.History {
		fmt.Fprintf(&b, "  %s %s v%d from=%d to=%d event=%d attempt=%d %s\n", e.Time.Sub(epoch), e.Kind, e.Version, e.From, e.To, e.Event, e.Attempt, e.Message)
	}
	return b.String()
}

// CountKind counts v's history entries of kind k.
func CountKind(v *runtime.View, k runtime.HistoryKind) int {
	n := 0
	for _, e := range v.History {
		if e.Kind == k {
			n++
		}
	}
	return n
}

const order = `machine Order {
    context {
        amount: int = 0
        tx: string
        attempts: int = 0
    }
    event Submit(amount: int)
    event Paid(tx: string)
    event Declined(code: string)
    event Cancel
    action ChargeCard emits Paid, Declined
    action SendReceipt
    initial state Draft {
        on Submit if event.amount > 0 -> Charging set amount = event.amount
        on Cancel -> Cancelled
    }
    state Charging {
        do ChargeCard {
            retry 2
            backoff constant(1s)
        }
        on Paid -> Receipt set tx = event.tx
        on Declined if attempts < 1 -> Charging set attempts = attempts + 1
        on Declined -> Failed
        on error -> Failed
        on Cancel -> Cancelled
    }
    state Receipt {
        do SendReceipt
        on done -> Done
        on error -> Done
    }
    final state Done
    final state Failed
    final state Cancelled
}`

func testOrderRunsToCompletion(t *testing.T, newStore NewStore) {
	var calls []string
	h := newHarness(t, newStore, order, map[string]runtime.Handler{
		"ChargeCard": func(_ context.Context, c *runtime.Call) (runtime.Result, error) {
			calls = append(calls, fmt.Sprintf("charge %d key=%s amount=%d", c.Attempt, c.IdempotencyKey, c.Context.Int("amount")))
			return runtime.Emit("Paid", map[string]any{"tx": "tx-1"}), nil
		},
		"SendReceipt": func(context.Context, *runtime.Call) (runtime.Result, error) {
			calls = append(calls, "receipt")
			return runtime.Result{}, nil
		},
	})
	h.start("o1", nil)
	h.expect("o1", "Draft", runtime.Active)
	h.send("o1", "Submit", map[string]any{"amount": 0}) // the guard does not hold
	h.expect("o1", "Draft", runtime.Active)
	h.send("o1", "Submit", map[string]any{"amount": 42})
	v := h.expect("o1", "Done", runtime.Completed)
	if v.Fields.String("tx") != "tx-1" || v.Fields.Int("amount") != 42 {
		t.Fatalf("context %v", v.Fields.Map())
	}
	// The key: the instance, when it was created (ms), its visit.
	if want := fmt.Sprintf("charge 1 key=o1/%d/2 amount=42; receipt", epoch.UnixMilli()); strings.Join(calls, "; ") != want {
		t.Fatalf("calls: %v", calls)
	}
	if v.Version != 4 {
		t.Fatalf("version %d, want 4 (start and three transitions)", v.Version)
	}
	var versions []uint64
	for _, e := range v.History {
		if e.Kind == runtime.HistTransition || e.Kind == runtime.HistStart {
			versions = append(versions, e.Version)
		}
	}
	if fmt.Sprint(versions) != "[1 2 3 4]" {
		t.Fatalf("transition versions %v, want contiguous", versions)
	}
}

func testSimultaneousSet(t *testing.T, newStore NewStore) {
	h := newHarness(t, newStore, `machine Swap {
    context {
        a: int = 1
        b: int = 2
    }
    event Go
    initial state S {
        on Go -> S set a = b, b = a
    }
}`, nil)
	h.start("s", nil)
	h.send("s", "Go", nil)
	v := h.view("s")
	if v.Fields.Int("a") != 2 || v.Fields.Int("b") != 1 {
		t.Fatalf("after the swap a=%d b=%d, want 2 and 1", v.Fields.Int("a"), v.Fields.Int("b"))
	}
}

// flaky fails n times, then emits.
func flaky(n int, calls *atomic.Int32, when *[]time.Duration, clock *runtime.FakeClock) runtime.Handler {
	return func(_ context.Context, c *runtime.Call) (runtime.Result, error) {
		k := calls.Add(1)
		if when != nil {
			*when = append(*when, clock.Now().Sub(epoch))
		}
		if int(k) <= n {
			return runtime.Result{}, fmt.Errorf("card network down (%d)", k)
		}
		return runtime.Emit("Paid", map[string]any{"tx": "late"}), nil
	}
}

func testRetriesWithBackoff(t *testing.T, newStore NewStore) {
	src := strings.Replace(order, "retry 2\n            backoff constant(1s)", "retry 3\n            backoff exponential(initial: 1s, factor: 2)\n            jitter none", 1)
	var calls atomic.Int32
	var when []time.Duration
	h := newHarness(t, newStore, src, nil)
	h = newHarnessWith(t, newStore, src, map[string]runtime.Handler{"SendReceipt": noop}, func(c *runtime.FakeClock) map[string]runtime.Handler {
		return map[string]runtime.Handler{"ChargeCard": flaky(2, &calls, &when, c)}
	})
	h.start("o", nil)
	h.send("o", "Submit", map[string]any{"amount": 5})
	h.expect("o", "Charging", runtime.Active)
	h.advance(10 * time.Second)
	v := h.expect("o", "Done", runtime.Completed)
	if fmt.Sprint(when) != "[0s 1s 3s]" {
		t.Fatalf("attempts at %v, want [0s 1s 3s] (backoff 1s then 2s)", when)
	}
	if CountKind(v, runtime.HistAttemptFailed) != 2 || v.Fields.String("tx") != "late" {
		t.Fatalf("history:\n%s", describe(v))
	}
}

func noop(context.Context, *runtime.Call) (runtime.Result, error) { return runtime.Result{}, nil }

// newHarnessWith is newHarness with handlers that need the harness's
// clock.
func newHarnessWith(t *testing.T, newStore NewStore, src string, fixed map[string]runtime.Handler, withClock func(*runtime.FakeClock) map[string]runtime.Handler) *harness {
	clock := runtime.NewFakeClock(epoch)
	e := runtime.New(newStore(t), runtime.Options{Clock: clock, Jitter: func() float64 { return 1 }})
	m := compile(t, src)
	handlers := map[string]runtime.Handler{}
	for k, v := range fixed {
		handlers[k] = v
	}
	for k, v := range withClock(clock) {
		handlers[k] = v
	}
	if err := e.Register(ctx(), m, handlers); err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, clock: clock, engine: e, m: m}
}

func testErrorAfterRetries(t *testing.T, newStore NewStore) {
	var calls atomic.Int32
	h := newHarnessWith(t, newStore, order, map[string]runtime.Handler{"SendReceipt": noop}, func(c *runtime.FakeClock) map[string]runtime.Handler {
		return map[string]runtime.Handler{"ChargeCard": flaky(100, &calls, nil, c)}
	})
	h.start("o", nil)
	h.send("o", "Submit", map[string]any{"amount": 5})
	h.advance(time.Minute)
	v := h.expect("o", "Failed", runtime.Completed)
	if calls.Load() != 3 {
		t.Fatalf("%d attempts, want 3 (retry 2)", calls.Load())
	}
	if CountKind(v, runtime.HistAttemptFailed) != 3 {
		t.Fatalf("history:\n%s", describe(v))
	}
}

const parks = `machine P {
    context {
        n: int = 0
    }
    event Go
    action Work
    initial state A {
        do Work {
            retry 5
        }
        on done -> B
        on Go -> A set n = 10 / n
    }
    final state B
}`

func testPermanentFailureParks(t *testing.T, newStore NewStore) {
	var calls atomic.Int32
	fail := true
	src := strings.Replace(parks, "set n = 10 / n", "set n = n + 1", 1)
	h := newHarness(t, newStore, src, map[string]runtime.Handler{
		"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
			calls.Add(1)
			if fail {
				return runtime.Result{}, runtime.Permanent(errors.New("account closed"))
			}
			return runtime.Result{}, nil
		},
	})
	h.start("p", nil)
	v := h.expect("p", "A", runtime.Failed)
	if calls.Load() != 1 || !strings.Contains(v.Failure, "account closed") {
		t.Fatalf("calls %d, failure %q", calls.Load(), v.Failure)
	}
	for _, e := range v.History {
		if e.Kind == runtime.HistAttemptFailed && e.Message != "account closed (permanent: no retries)" {
			t.Fatalf("the failed attempt's history says %q; want it to say the failure was permanent", e.Message)
		}
	}
	// Events wait while it is parked.
	if err := h.engine.Send(ctx(), "p", "Go", nil); err != nil {
		t.Fatal(err)
	}
	h.run()
	h.expect("p", "A", runtime.Failed)
	fail = false
	if err := h.engine.Retry(ctx(), "p"); err != nil {
		t.Fatal(err)
	}
	h.run()
	v = h.expect("p", "B", runtime.Completed)
	if v.Fields.Int("n") != 1 {
		t.Fatalf("the event queued while parked was not handled after the retry: n=%d", v.Fields.Int("n"))
	}
	if err := h.engine.Retry(ctx(), "p"); !errors.Is(err, runtime.ErrRejected) {
		t.Fatalf("retry of a completed instance: %v", err)
	}
}

func testTimersDieWithTheVisit(t *testing.T, newStore NewStore) {
	h := newHarness(t, newStore, `machine T {
    event Poke
    event Leave
    initial state Waiting {
        after 10m -> Expired
        on Poke -> Waiting
        on Leave -> Elsewhere
    }
    state Elsewhere {
        on Poke -> Waiting
    }
    final state Expired
}`, nil)
	h.start("t", nil)
	h.advance(6 * time.Minute)
	h.send("t", "Poke", nil) // re-entering restarts the timer
	h.advance(6 * time.Minute)
	h.expect("t", "Waiting", runtime.Active)
	h.send("t", "Leave", nil)
	h.send("t", "Poke", nil) // back, with a fresh 10m
	// A watchdog: re-entered often, its timer never fires.
	for i := 0; i < 150; i++ {
		h.send("t", "Poke", nil)
	}
	h.advance(9 * time.Minute)
	h.expect("t", "Waiting", runtime.Active)
	h.advance(time.Minute)
	v := h.expect("t", "Expired", runtime.Completed)
	// The timers of the visits left died with them: none fired late as
	// stale work, to crowd the capped history.
	if n := CountKind(v, runtime.HistStale); n != 0 {
		t.Fatalf("%d timers of earlier visits came due as stale work:\n%s", n, describe(v))
	}
}

func testStaleResultDiscarded(t *testing.T, newStore NewStore) {
	h := newHarness(t, newStore, order, map[string]runtime.Handler{
		"ChargeCard": func(context.Context, *runtime.Call) (runtime.Result, error) {
			return runtime.Emit("Paid", map[string]any{"tx": "too late"}), nil
		},
	})
	h.start("o", nil)
	// Submit and Cancel arrive together: the charge's result is queued
	// behind Cancel, and arrives after the instance left Charging.
	if err := h.engine.Send(ctx(), "o", "Submit", map[string]any{"amount": 3}); err != nil {
		t.Fatal(err)
	}
	if err := h.engine.Send(ctx(), "o", "Cancel", nil); err != nil {
		t.Fatal(err)
	}
	h.run()
	v := h.expect("o", "Cancelled", runtime.Completed)
	if v.Fields.String("tx") != "" {
		t.Fatalf("the stale result changed the context: %v", v.Fields.Map())
	}
}

func testExpressionFaultParks(t *testing.T, newStore NewStore) {
	h := newHarness(t, newStore, parks, map[string]runtime.Handler{"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
		return runtime.Pending, nil
	}})
	h.start("p", nil)
	h.send("p", "Go", nil)
	v := h.expect("p", "A", runtime.Failed)
	if !strings.Contains(v.Failure, `integer division by zero in "10 / n"`) || v.Fields.Int("n") != 0 {
		t.Fatalf("failure %q, n=%d", v.Failure, v.Fields.Int("n"))
	}
	if err := h.engine.Retry(ctx(), "p"); err != nil {
		t.Fatal(err)
	}
	h.run()
	h.expect("p", "A", runtime.Active)
}

// testFaultOnATaskResult: a fault while handling the task's result
// parks the instance with the result consumed; Retry runs the task
// again (else the instance would sit in the state with nothing to do).
func testFaultOnATaskResult(t *testing.T, newStore NewStore) {
	calls := 0
	h := newHarness(t, newStore, `machine F {
    context {
        x: int = 0
    }
    event Res(v: int)
    action Try emits Res
    initial state A {
        do Try
        on Res -> B set x = 10 / event.v
        on error -> B
    }
    final state B
}`, map[string]runtime.Handler{"Try": func(context.Context, *runtime.Call) (runtime.Result, error) {
		calls++
		return runtime.Emit("Res", map[string]any{"v": calls - 1}), nil // 0 the first time
	}})
	h.start("f", nil)
	h.run()
	v := h.expect("f", "A", runtime.Failed)
	if !strings.Contains(v.Failure, "integer division by zero") || calls != 1 {
		t.Fatalf("failure %q after %d calls", v.Failure, calls)
	}
	if err := h.engine.Retry(ctx(), "f"); err != nil {
		t.Fatal(err)
	}
	h.run()
	v = h.expect("f", "B", runtime.Completed)
	if calls != 2 || v.Fields.Int("x") != 10 {
		t.Fatalf("after Retry: %d calls, x = %d; want the task run again and x = 10", calls, v.Fields.Int("x"))
	}
}

// testFaultAsATimerFires: a fault as a timer fires (in its transition's
// set, or entering its target) parks the instance with the firing
// consumed; Retry fires the timer again (else the instance would sit in
// the state with nothing to do).
func testFaultAsATimerFires(t *testing.T, newStore NewStore) {
	h := newHarness(t, newStore, `machine T {
    context {
        z: int = 0
        x: int = 0
    }
    initial state A {
        after 1s -> B set x = 1 / z
        after 1h -> B
    }
    final state B
}`, nil)
	h.start("t", nil)
	h.advance(2 * time.Second)
	v := h.expect("t", "A", runtime.Failed)
	if !strings.Contains(v.Failure, `integer division by zero in "1 / z"`) {
		t.Fatalf("failure %q", v.Failure)
	}
	if err := h.engine.Retry(ctx(), "t"); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Second)
	// The timer fired again, and faulted again: the instance is failed,
	// not active in A with its first timer gone.
	v = h.expect("t", "A", runtime.Failed)
	faults := 0
	for _, e := range v.History {
		if e.Kind == runtime.HistFault {
			faults++
		}
	}
	if faults != 2 {
		t.Fatalf("after Retry: %d faults in the history %+v, want the timer fired again and a second fault", faults, v.History)
	}
}

func testUnhandledAndIgnored(t *testing.T, newStore NewStore) {
	h := newHarness(t, newStore, `machine U {
    event Noise
    event Other
    event Go
    initial state A {
        ignore Noise
        on Go -> B
    }
    final state B
}`, nil)
	h.start("u", nil)
	h.send("u", "Noise", nil)
	h.send("u", "Other", nil)
	v := h.expect("u", "A", runtime.Active)
	if CountKind(v, runtime.HistUnhandled) != 1 || v.History[len(v.History)-1].Event != 3 {
		t.Fatalf("want one unhandled (Other), none for the ignored Noise:\n%s", describe(v))
	}
	if err := h.engine.Send(ctx(), "u", "Nope", nil); err == nil || !strings.Contains(err.Error(), `no event "Nope"`) {
		t.Fatalf("unknown event: %v", err)
	}
	if err := h.engine.Send(ctx(), "missing", "Go", nil); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("unknown instance: %v", err)
	}
}

func testCompletedRejects(t *testing.T, newStore NewStore) {
	h := newHarness(t, newStore, toggle, nil)
	h.start("x", nil)
	err := h.engine.Start(ctx(), "Toggle", "x", nil, runtime.StartOptions{})
	if !errors.Is(err, runtime.ErrExists) {
		t.Fatalf("duplicate start: %v", err)
	}
	if err := h.engine.Start(ctx(), "Toggle", "x", nil, runtime.StartOptions{IfAbsent: true}); err != nil {
		t.Fatalf("start if absent: %v", err)
	}
	if err := h.engine.Start(ctx(), "Toggle", "y", map[string]any{"n": "five"}, runtime.StartOptions{}); err == nil || !strings.Contains(err.Error(), `field "n": want int, got string "five"`) {
		t.Fatalf("bad context: %v", err)
	}
	if err := h.engine.Start(ctx(), "Toggle", "y", map[string]any{"m": 1}, runtime.StartOptions{}); err == nil || !strings.Contains(err.Error(), `unknown field "m"`) {
		t.Fatalf("unknown field: %v", err)
	}
	h2 := newHarness(t, newStore, `machine Once {
    event Go
    initial state A {
        on Go -> B
    }
    final state B
}`, nil)
	h2.start("o", nil)
	h2.send("o", "Go", nil)
	if err := h2.engine.Send(ctx(), "o", "Go", nil); !errors.Is(err, runtime.ErrRejected) {
		t.Fatalf("event to a completed instance: %v", err)
	}
}

// testQueuedWhenItCompletes: events sent before an instance completed,
// still queued when it does, reach its final state, which takes no
// transition for them: each is recorded as unhandled there, in the
// order sent (language.md "Meaning"). A cancelled instance drops its
// queue quietly.
func testQueuedWhenItCompletes(t *testing.T, newStore NewStore) {
	h := newHarness(t, newStore, `machine Q {
    event Go
    event Other
    initial state A {
        on Go -> B
        after 1m -> B
    }
    final state B
}`, nil)
	h.start("q", nil)
	h.start("c", nil)
	for _, ev := range []string{"Go", "Other", "Go"} {
		if err := h.engine.Send(ctx(), "q", ev, nil); err != nil {
			t.Fatal(err)
		}
		if err := h.engine.Send(ctx(), "c", ev, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := h.engine.Cancel(ctx(), "c"); err != nil {
		t.Fatal(err)
	}
	h.run()
	h.advance(time.Hour)
	v := h.expect("q", "B", runtime.Completed)
	n := len(v.History)
	if n < 3 || v.History[n-3].Kind != runtime.HistTransition {
		t.Fatalf("want the transition to B, then two unhandled events:\n%s", describe(v))
	}
	done := v.History[n-3].Version
	for i, ev := range []int{3, 2} { // Other, then Go
		e := v.History[n-2+i]
		if e.Kind != runtime.HistUnhandled || e.Event != ev || e.From != 1 || e.Version != done {
			t.Fatalf("entry %d: want event %d unhandled in B at version %d:\n%s", n-2+i, ev, done, describe(v))
		}
	}
	if v.Version != done {
		t.Fatalf("version %d, want %d: recording an unhandled event is no transition", v.Version, done)
	}
	c := h.expect("c", "A", runtime.Cancelled)
	if k := CountKind(c, runtime.HistUnhandled); k != 0 || CountKind(c, runtime.HistTransition) != 0 {
		t.Fatalf("a cancelled instance's queued events ran:\n%s", describe(c))
	}
	if err := h.engine.Send(ctx(), "q", "Other", nil); !errors.Is(err, runtime.ErrRejected) {
		t.Fatalf("event to the completed instance: %v", err)
	}
}

func testCancel(t *testing.T, newStore NewStore) {
	h := newHarness(t, newStore, `machine C {
    event Go
    initial state A {
        after 1m -> B
        on Go -> B
    }
    final state B
}`, nil)
	h.start("c", nil)
	if err := h.engine.Cancel(ctx(), "c"); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Hour)
	h.expect("c", "A", runtime.Cancelled)
	if err := h.engine.Cancel(ctx(), "c"); !errors.Is(err, runtime.ErrRejected) {
		t.Fatalf("second cancel: %v", err)
	}
	if err := h.engine.Send(ctx(), "c", "Go", nil); !errors.Is(err, runtime.ErrRejected) {
		t.Fatalf("event to a cancelled instance: %v", err)
	}
}

// StaleCount is an Observer that counts stale commits (in N).
type StaleCount struct{ N atomic.Int64 }

func (o *StaleCount) Transitioned(string)                            {}
func (o *StaleCount) Attempted(string, string, error, time.Duration) {}
func (o *StaleCount) Claimed(runtime.WorkKind, time.Duration)        {}
func (o *StaleCount) Stale(string)                                   { o.N.Add(1) }
func (o *StaleCount) StoreError(error)                               {}

// testCancelWhileATaskRuns: an instance an operator cancels while its
// task runs stays cancelled; the attempt's result is dropped, and that
// is not counted as a stale commit (the fence had nothing to stop).
func testCancelWhileATaskRuns(t *testing.T, newStore NewStore) {
	endWhileATaskRuns(t, newStore, func(ctx context.Context, e *runtime.Engine, id string) error {
		return e.Cancel(ctx, id) // as an operator would, meanwhile
	}, "A", runtime.Cancelled)
}

// testEventEndsWhileATaskRuns: the same for an event that takes the
// instance to a final state while its task runs (handled elsewhere,
// here by Fire on the handler's goroutine).
func testEventEndsWhileATaskRuns(t *testing.T, newStore NewStore) {
	endWhileATaskRuns(t, newStore, func(ctx context.Context, e *runtime.Engine, id string) error {
		return e.Fire(ctx, id, "Stop", nil)
	}, "Stopped", runtime.Completed)
}

// endWhileATaskRuns runs a task whose handler ends its instance (end),
// and checks the instance's state and status, and that no stale commit
// was counted.
func endWhileATaskRuns(t *testing.T, newStore NewStore, end func(context.Context, *runtime.Engine, string) error, state string, status runtime.Status) {
	stale := &StaleCount{}
	e := runtime.New(newStore(t), runtime.Options{Clock: runtime.NewFakeClock(epoch), Observer: stale})
	m := compile(t, `machine D {
    event Stop
    action Work
    initial state A {
        do Work
        on done -> B
        on Stop -> Stopped
    }
    final state B
    final state Stopped
}`)
	if err := e.Register(ctx(), m, map[string]runtime.Handler{
		"Work": func(ctx context.Context, call *runtime.Call) (runtime.Result, error) {
			return runtime.Result{}, end(ctx, e, call.Instance)
		},
	}); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx(), "D", "d", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunDue(ctx()); err != nil {
		t.Fatal(err)
	}
	v, err := e.Get(ctx(), "d")
	if err != nil {
		t.Fatal(err)
	}
	if v.StateName != state || v.Status != status {
		t.Fatalf("d is %s/%s, want %s/%s:\n%s", v.StateName, v.Status, state, status, describe(v))
	}
	if n := stale.N.Load(); n != 0 {
		t.Errorf("%d stale commits counted for an instance that ended while its task ran", n)
	}
}

func testBadHandlerResults(t *testing.T, newStore NewStore) {
	results := []runtime.Result{
		runtime.Emit("Cancel", nil),
		runtime.Emit("Paid", map[string]any{"tx": 5}),
		{},
	}
	i := 0
	h := newHarness(t, newStore, order, map[string]runtime.Handler{
		"ChargeCard": func(context.Context, *runtime.Call) (runtime.Result, error) {
			r := results[i%len(results)]
			i++
			return r, nil
		},
	})
	h.start("o", nil)
	h.send("o", "Submit", map[string]any{"amount": 1})
	h.advance(time.Minute)
	v := h.expect("o", "Failed", runtime.Completed)
	expectFailures(t, v, `returned event "Cancel", which the action does not emit (it emits Paid, Declined)`,
		`returned event Paid with a bad payload: field "tx": want string`,
		`returned no event, but the action emits Paid, Declined`)
}

// expectFailures checks that v's failed attempts, in order, say what
// want says (each contains its want).
func expectFailures(t *testing.T, v *runtime.View, want ...string) {
	t.Helper()
	var msgs []string
	for _, e := range v.History {
		if e.Kind == runtime.HistAttemptFailed {
			msgs = append(msgs, e.Message)
		}
	}
	if len(msgs) != len(want) {
		t.Fatalf("failed attempts %q; want %d", msgs, len(want))
	}
	for k := range want {
		if !strings.Contains(msgs[k], want[k]) {
			t.Errorf("failure %d: %q, want it to contain %q", k, msgs[k], want[k])
		}
	}
}

// nilError is an error type whose Error method needs a non-nil pointer.
type nilError struct{ msg string }

func (e *nilError) Error() string { return e.msg }

// testMisbehavingHandlers: a handler that panics, or returns an error
// whose Error method panics, fails its attempt and the worker lives on;
// Permanent(nil) fails the task at once.
func testMisbehavingHandlers(t *testing.T, newStore NewStore) {
	var calls atomic.Int32
	h := newHarness(t, newStore, parks, map[string]runtime.Handler{
		"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
			switch calls.Add(1) {
			case 1:
				panic("boom")
			case 2:
				var err *nilError
				return runtime.Result{}, err
			}
			return runtime.Result{}, runtime.Permanent(nil)
		},
	})
	h.start("p", nil)
	h.advance(time.Minute)
	v := h.expect("p", "A", runtime.Failed)
	if calls.Load() != 3 {
		t.Fatalf("%d calls; want 3 (retry 5, the third permanent)", calls.Load())
	}
	expectFailures(t, v, "handler panicked: boom", "handler returned an error (*storetest.nilError) whose Error method panicked", "permanent failure")
}

// testNoHandlerAnywhere: an engine registers a machine without the
// handler of one of its actions. On a store that knows every engine (a
// HandlerDirectory: the embedded store) no handler will ever come, so
// the attempts fail with "no handler for action Work" and the task ends
// in error; on a shared store they wait for an engine that has one.
func testNoHandlerAnywhere(t *testing.T, newStore NewStore) {
	h := newHarness(t, newStore, strings.Replace(parks, "retry 5", "retry 1", 1), nil)
	h.start("p", nil)
	h.advance(time.Minute)
	if _, directory := h.engine.Store().(runtime.HandlerDirectory); !directory {
		v := h.expect("p", "A", runtime.Active)
		if n := CountKind(v, runtime.HistAttemptFailed); n != 0 {
			t.Fatalf("%d attempts failed on a shared store; want them left for an engine with the handler", n)
		}
		return
	}
	v := h.expect("p", "A", runtime.Failed)
	if n := CountKind(v, runtime.HistAttemptFailed); n != 2 || !strings.Contains(v.Failure, "no handler for action Work") {
		t.Fatalf("%d failed attempts, failure %q; want 2 (retry 1), for want of a handler", n, v.Failure)
	}
}

// testHandlerTimeout: an attempt whose handler runs past its timeout
// fails, whether the handler returns its context's error or ignores its
// context and returns a result a little later (within the short grace a
// handler has to report why it failed): a result past the deadline came
// too late.
func testHandlerTimeout(t *testing.T, newStore NewStore) {
	for name, slow := range map[string]runtime.Handler{
		"heeds its context": func(ctx context.Context, _ *runtime.Call) (runtime.Result, error) {
			<-ctx.Done()
			time.Sleep(time.Millisecond)
			return runtime.Result{}, ctx.Err()
		},
		"ignores its context": func(ctx context.Context, _ *runtime.Call) (runtime.Result, error) {
			time.Sleep(60 * time.Millisecond)
			return runtime.Result{}, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, newStore, `machine S {
    action Slow
    initial state A {
        do Slow {
            timeout 20ms
        }
        on done -> B
        on error -> C
    }
    final state B
    final state C
}`, map[string]runtime.Handler{"Slow": slow})
			h.start("s", nil)
			// The attempt fails at its deadline, which the fake clock, still
			// while the handler ran, has not reached: the failure is recorded,
			// and error delivered, then.
			if v := h.expect("s", "A", runtime.Active); CountKind(v, runtime.HistAttemptFailed) != 0 {
				t.Fatalf("the failure is recorded before its deadline:\n%s", describe(v))
			}
			h.advance(20 * time.Millisecond)
			v := h.expect("s", "C", runtime.Completed)
			found := false
			for _, e := range v.History {
				found = found || e.Kind == runtime.HistAttemptFailed && strings.Contains(e.Message, "timed out after 20ms") && e.Time.Equal(epoch.Add(20*time.Millisecond))
			}
			if !found {
				t.Fatalf("no timeout recorded at the deadline:\n%s", describe(v))
			}
		})
	}
}

// testTimeoutAfterLeaving: an attempt times out on a fake clock that
// its run did not move, and the state's shorter timer leaves the state
// before the deadline. At the deadline the failure is still recorded,
// as on the real clock, with the state and version the attempt saw, and
// the error it leads to is discarded as from an earlier visit.
func testTimeoutAfterLeaving(t *testing.T, newStore NewStore) {
	h := newHarness(t, newStore, `machine S {
    event Go
    action Slow
    initial state A {
        on Go -> W
    }
    state W {
        do Slow {
            timeout 20ms
        }
        on done -> B
        on error -> C
        after 10ms -> D
    }
    final state B
    final state C
    state D {
        on Go -> W
    }
}`, map[string]runtime.Handler{
		"Slow": func(ctx context.Context, _ *runtime.Call) (runtime.Result, error) {
			<-ctx.Done()
			return runtime.Result{}, ctx.Err()
		},
	})
	h.start("s", nil)
	h.send("s", "Go", nil)
	h.advance(time.Second)
	v := h.expect("s", "D", runtime.Active)
	var kinds []string
	for _, e := range v.History[2:] {
		kinds = append(kinds, fmt.Sprintf("%s@%v", e.Kind, e.Time.Sub(epoch)))
	}
	want := "timer@10ms attempt_failed@20ms stale@20ms"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("history after the transition to W: %s, want %s:\n%s", got, want, describe(v))
	}
	failed := v.History[3]
	if h.m.States[failed.From].Name != "W" || failed.Version != 2 || !strings.Contains(failed.Message, "timed out after 20ms") {
		t.Fatalf("the failure is recorded as from state %d at v%d (%q); want W at v2, the attempt's:\n%s", failed.From, failed.Version, failed.Message, describe(v))
	}
}

// testNegativeZero: a float -0 keeps its sign through the store, in the
// context and in a queued event's payload (1.0 / -0.0 is -Inf).
func testNegativeZero(t *testing.T, newStore NewStore) {
	h := newHarness(t, newStore, `machine Z {
    context {
        z: float = 1.0
        r: float = 0.0
    }
    event Div(by: float)
    initial state A {
        on Div -> B set r = 1.0 / event.by, z = event.by
    }
    state B {
        on Div -> A
    }
}`, nil)
	negZero := math.Copysign(0, -1)
	h.start("z", map[string]any{"z": negZero})
	if v := h.view("z"); !math.Signbit(v.Fields.Float("z")) {
		t.Fatalf("the context's -0 came back as %v", v.Fields.Float("z"))
	}
	h.send("z", "Div", map[string]any{"by": negZero})
	v := h.expect("z", "B", runtime.Active)
	if z, r := v.Fields.Float("z"), v.Fields.Float("r"); !math.Signbit(z) || !math.IsInf(r, -1) {
		t.Fatalf("z = %v, r = %v after dividing by the event's -0; want -0 and -Inf", z, r)
	}
}

func testReenteringRestarts(t *testing.T, newStore NewStore) {
	var calls atomic.Int32
	h := newHarness(t, newStore, `machine R {
    event Again
    action Work
    initial state A {
        do Work
        on done -> A
        on error -> A
        on Again -> A
        after 5s -> A
    }
}`, map[string]runtime.Handler{"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
		calls.Add(1)
		return runtime.Pending, nil
	}})
	h.start("r", nil)
	h.send("r", "Again", nil)
	h.advance(5 * time.Second)
	if calls.Load() != 3 {
		t.Fatalf("the task ran %d times, want 3 (start, Again, timer)", calls.Load())
	}
}

// testParkedWithARetryPending: an instance parked while a retry of an
// earlier visit's task is still pending lets time pass for everything
// else, and after Retry the stale attempt is discarded.
func testParkedWithARetryPending(t *testing.T, newStore NewStore) {
	otherFails := true
	var works atomic.Int32
	h := newHarness(t, newStore, `machine H {
    event Go
    action Work
    action Other
    initial state A {
        do Work { retry 3 backoff constant(10s) jitter none }
        on Go -> B
        on done -> D
        on error -> D
    }
    state B {
        do Other
        on done -> D
    }
    final state D
}`, map[string]runtime.Handler{
		"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
			works.Add(1)
			return runtime.Result{}, errors.New("card declined")
		},
		"Other": func(context.Context, *runtime.Call) (runtime.Result, error) {
			if otherFails {
				return runtime.Result{}, runtime.Permanent(errors.New("card closed"))
			}
			return runtime.Result{}, nil
		},
	})
	h.start("h", nil)
	h.advance(5 * time.Second)
	h.send("h", "Go", nil)
	h.expect("h", "B", runtime.Failed)
	h.advance(20 * time.Second) // past the pending retry of A
	h.expect("h", "B", runtime.Failed)
	otherFails = false
	if err := h.engine.Retry(ctx(), "h"); err != nil {
		t.Fatal(err)
	}
	h.advance(time.Second)
	v := h.expect("h", "D", runtime.Completed)
	if works.Load() != 1 || CountKind(v, runtime.HistAttemptFailed) != 2 || CountKind(v, runtime.HistAttempt) != 1 {
		t.Errorf("Work ran %d times, want once (its retry belongs to the visit left); history: %s", works.Load(), describe(v))
	}
}

// RunInBackground runs e.Run(ctx, workers) on a goroutine, as a worker
// process would, until stop is called or the test ends: stop cancels it
// and waits for Run to return (the test fails if it does not within 10
// s), so that no test leaves a worker running on into the next.
func RunInBackground(t testing.TB, e *runtime.Engine, workers int) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = e.Run(ctx, workers); close(done) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10s of its stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
