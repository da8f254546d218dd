package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/fsmc/fsmc/runtime/storetest"
)

// chainSetup returns a store with the one-step machine registered, and
// instances ids created, each with its task attempt due at now.
func chainSetup(t *testing.T, opts redisstore.Options, now time.Time, ids ...string) (*redisstore.Store, *ir.Machine) {
	t.Helper()
	opts.Prefix = fmt.Sprintf("t%d", prefixes.Add(1))
	store := redisstore.New(redisClient(t), opts)
	t.Cleanup(func() { store.Close() })
	m := irtest.Compile(t, "one.fsm", []byte(irtest.OneStep)).Machines[0]
	if err := store.PutMachine(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if err := createOneStep(context.Background(), store, m, id, now); err != nil {
			t.Fatal(err)
		}
	}
	return store, m
}

// TestWriteClaimsNext: a write that finishes a worker's work, asked to
// (Lease.Then), claims the worker's next work in the same call, as Claim
// would; with nothing to claim it says when to look again; a write the
// store refuses claims nothing.
func TestWriteClaimsNext(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	store, m := chainSetup(t, redisstore.Options{NoRedlock: true}, now, "a", "b")
	f := runtime.ClaimFilter{Now: now.Add(time.Second), Lease: time.Minute}
	var l runtime.Lease
	if ok, err := store.Claim(ctx, f, &l); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	first := l.Work.Instance

	// The direct commit of the result claims the other instance's task.
	l.Then = &runtime.Chain{Filter: f}
	if err := finishOneStep(ctx, store, &l, now); err != nil {
		t.Fatal(err)
	}
	next := &l.Then.Next
	if !l.Then.Done || !l.Then.Found || next.Work.Kind != runtime.WorkTask || next.Work.Instance == first {
		t.Fatalf("after finishing %s: chain done %v found %v, next %+v", first, l.Then.Done, l.Then.Found, next.Work)
	}
	if next.Instance == nil || next.Instance.ID != next.Work.Instance || next.Then != nil {
		t.Fatalf("the claimed work's instance was not handed over: %+v", next.Instance)
	}
	// It is a lease like any: no one else can claim that work, and its
	// holder finishes it.
	var other runtime.Lease
	if ok, err := store.Claim(ctx, f, &other); err != nil || ok {
		t.Fatalf("a claim while the chained lease holds: %v %v (%+v)", ok, err, other.Work)
	}
	l2 := *next
	l2.Then = &runtime.Chain{Filter: f}
	if err := finishOneStep(ctx, store, &l2, now); err != nil {
		t.Fatal(err)
	}
	// Nothing left: done, found nothing, and nothing due at all.
	if !l2.Then.Done || l2.Then.Found || !l2.Then.Next.NextKnown || !l2.Then.Next.Next.IsZero() {
		t.Fatalf("with nothing to claim: %+v", *l2.Then)
	}
	for _, id := range []string{"a", "b"} {
		var inst runtime.Instance
		if err := store.Load(ctx, id, &inst); err != nil || inst.Status != runtime.Completed {
			t.Fatalf("%s: %v %v", id, inst.Status, err)
		}
	}

	// A refused write (its lease is gone) claims nothing.
	if err := createOneStep(ctx, store, m, "c", now); err != nil {
		t.Fatal(err)
	}
	stale := l2
	stale.Then = &runtime.Chain{Filter: f}
	if err := store.Complete(ctx, &stale, nil, nil); !errors.Is(err, runtime.ErrLostLease) {
		t.Fatalf("complete on a finished lease: %v", err)
	}
	if stale.Then.Done {
		t.Fatalf("a refused write claimed: %+v", stale.Then.Next.Work)
	}
	if ok, err := store.Claim(ctx, f, &other); err != nil || !ok || other.Work.Instance != "c" {
		t.Fatalf("c's task after the refused write: %v %v %+v", ok, err, other.Work)
	}
}

// TestWriteClaimsLookAtExpiredLeasesNowAndThen: a claim made with a
// write gives back expired leases when its store last looked at them
// scanEvery (100 ms) ago or more, and otherwise leaves them; it then
// says the expired lease is due, so that its worker, finding nothing,
// claims on its own at once (and such a claim always looks).
func TestWriteClaimsLookAtExpiredLeasesNowAndThen(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	store, _ := chainSetup(t, redisstore.Options{NoRedlock: true}, now, "a", "b", "c")
	at := now.Add(time.Second)
	claim := func(lease time.Duration) runtime.Lease {
		t.Helper()
		var l runtime.Lease
		if ok, err := store.Claim(ctx, runtime.ClaimFilter{Now: at, Lease: lease}, &l); err != nil || !ok {
			t.Fatalf("claim: %v %v", ok, err)
		}
		return l
	}
	first, short, last := claim(time.Minute), claim(10*time.Millisecond), claim(time.Minute)
	finish := func(l *runtime.Lease, after time.Duration) *runtime.Chain {
		t.Helper()
		l.Then = &runtime.Chain{Filter: runtime.ClaimFilter{Now: at.Add(after), Lease: time.Minute}}
		if err := finishOneStep(ctx, store, l, now); err != nil {
			t.Fatal(err)
		}
		if !l.Then.Done {
			t.Fatalf("finishing %s claimed nothing", l.Work.Instance)
		}
		return l.Then
	}

	// 50 ms after the claims looked: the expired lease stays, and is due.
	c := finish(&first, 50*time.Millisecond)
	if c.Found || !c.Next.NextKnown || !c.Next.Next.Equal(short.Until) {
		t.Fatalf("50 ms on: found %v (%s), next %v known %v; want nothing, next %v",
			c.Found, c.Next.Work.Instance, c.Next.Next, c.Next.NextKnown, short.Until)
	}
	// 150 ms after: the claim gives it back, and takes it.
	c = finish(&last, 150*time.Millisecond)
	if !c.Found || c.Next.Work.Instance != short.Work.Instance || c.Next.Fence == short.Fence {
		t.Fatalf("150 ms on: found %v, next %+v; want %s again, with a new fence", c.Found, c.Next.Work, short.Work.Instance)
	}
}

// claimOneOfThree makes a store with three one-step instances, their
// task attempts due at now, and claims one of them a second later with
// a minute's lease; it returns the store, the filter and the lease.
func claimOneOfThree(t *testing.T, now time.Time) (*redisstore.Store, runtime.ClaimFilter, runtime.Lease) {
	t.Helper()
	store, _ := chainSetup(t, redisstore.Options{NoRedlock: true}, now, "a", "b", "c")
	f := runtime.ClaimFilter{Now: now.Add(time.Second), Lease: time.Minute}
	var l runtime.Lease
	if ok, err := store.Claim(context.Background(), f, &l); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	return store, f, l
}

// TestWriteClaimsAsFiltered: the claim a write makes takes only what its
// filter allows (here, instance work alone), and when it finds nothing
// says when the work it may take is due; an update (no lease) claims
// nothing; nor does a store with several partitions, where a claim
// reads them all.
func TestWriteClaimsAsFiltered(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	store, f, l := claimOneOfThree(t, now)
	noTasks := f
	noTasks.NoTasks = true
	l.Then = &runtime.Chain{Filter: noTasks}
	if err := store.Complete(ctx, &l, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !l.Then.Done || l.Then.Found || !l.Then.Next.NextKnown || !l.Then.Next.Next.IsZero() {
		t.Fatalf("a claim for instance work alone, with tasks due: %+v", *l.Then)
	}

	multi, _ := chainSetup(t, redisstore.Options{NoRedlock: true, Partitions: 2}, now, "a", "b")
	if ok, err := multi.Claim(ctx, f, &l); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	l.Then = &runtime.Chain{Filter: f}
	if err := finishOneStep(ctx, multi, &l, now); err != nil {
		t.Fatal(err)
	}
	if l.Then.Done {
		t.Fatalf("a write on one of two partitions claimed %+v", l.Then.Next.Work)
	}
}

// TestLostChainedClaimGivesBack: a write whose reply is lost gives back
// what its claim leased, at once, as a lost claim does (see
// TestLostClaimReplyGivesBack).
func TestLostChainedClaimGivesBack(t *testing.T) {
	lossy, other := replyCutStores(t, "commit", redisstore.Options{NoRedlock: true})
	ctx := context.Background()
	m := irtest.Compile(t, "one.fsm", []byte(irtest.OneStep)).Machines[0]
	if err := other.PutMachine(ctx, m); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, id := range []string{"a", "b"} {
		if err := createOneStep(ctx, other, m, id, now); err != nil {
			t.Fatal(err)
		}
	}
	f := runtime.ClaimFilter{Now: now.Add(time.Second), Lease: time.Minute}
	var l runtime.Lease
	if ok, err := other.ClaimInstance(ctx, "a", f, &l); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	l.Then = &runtime.Chain{Filter: f}
	if err := finishOneStep(ctx, lossy, &l, now); err == nil || !redisstore.Unreachable(err) {
		t.Fatalf("commit whose reply was cut: %v, want a lost connection", err)
	}
	if l.Then.Done {
		t.Fatal("a write whose reply was lost reports a claim")
	}
	waitClaimable(t, other, f, "b", "the write whose reply was lost")
}

// claimCounter counts the claims an engine makes on its own (Claim):
// for task attempts (claims), and for instance work alone (instanceOnly,
// a worker without a task slot).
type claimCounter struct {
	*redisstore.Store
	claims, instanceOnly atomic.Int64
}

func (c *claimCounter) Claim(ctx context.Context, f runtime.ClaimFilter, l *runtime.Lease) (bool, error) {
	if f.NoTasks {
		c.instanceOnly.Add(1)
	} else {
		c.claims.Add(1)
	}
	return c.Store.Claim(ctx, f, l)
}

// runBacklog creates n one-step instances, each with its task attempt
// due, runs an engine of Run(ctx, slots) on them with work as the task's
// handler until all have completed, and returns the claims it made on
// its own.
func runBacklog(t *testing.T, n, slots int, work runtime.Handler) *claimCounter {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("i%d", i)
	}
	store, m := chainSetup(t, redisstore.Options{NoRedlock: true}, time.Now(), ids...)
	counter := &claimCounter{Store: store}
	e := runtime.New(counter, runtime.Options{})
	if err := e.Register(context.Background(), m, map[string]runtime.Handler{"Work": work}); err != nil {
		t.Fatal(err)
	}
	stop := storetest.RunInBackground(t, e, slots)
	for _, id := range ids {
		waitFor(t, e, id, 10*time.Second, completed)
	}
	stop()
	return counter
}

// TestRunClaimsWithWrites: Run's workers take their next work with the
// write that finishes the last (Lease.Then), so a worker going through a
// backlog of task attempts claims on its own only now and then.
func TestRunClaimsWithWrites(t *testing.T) {
	const n = 50
	var ran atomic.Int64
	counter := runBacklog(t, n, 1, func(context.Context, *runtime.Call) (runtime.Result, error) {
		ran.Add(1)
		return runtime.Result{}, nil
	})
	if ran.Load() != n {
		t.Fatalf("%d attempts ran, want %d", ran.Load(), n)
	}
	if c := counter.claims.Load(); c > n/5 {
		t.Errorf("%d claims for task attempts of the workers' own, for %d attempts", c, n)
	}
}

// TestSlotlessWorkerSleepsThroughTasks: Run(ctx, n) keeps one worker for
// instance work; while the others go through a backlog of task
// attempts, claiming each next one with a write, the claims say that
// what is due besides is task attempts alone (Lease.MoreTasks), and
// that worker is not woken to claim and find nothing.
func TestSlotlessWorkerSleepsThroughTasks(t *testing.T) {
	const n = 60
	// Each attempt takes a while, so that a worker woken by each claim
	// would have the time to claim before the next.
	counter := runBacklog(t, n, 2, func(context.Context, *runtime.Call) (runtime.Result, error) {
		time.Sleep(2 * time.Millisecond)
		return runtime.Result{}, nil
	})
	// The worker without a slot claims when it starts, and when one of
	// the others claimed on its own (at their start): a few times.
	if c := counter.instanceOnly.Load(); c > 6 {
		t.Errorf("the worker without a task slot claimed %d times during a backlog of %d task attempts", c, n)
	}
}

// TestMoreTasksAlone: a claim that leaves only task attempts due says
// so, and one that leaves instance work due as well does not.
func TestMoreTasksAlone(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	store, f, l := claimOneOfThree(t, now)
	if !l.More || !l.MoreTasks {
		t.Errorf("with two more task attempts due: More %v, MoreTasks %v; want both", l.More, l.MoreTasks)
	}
	// An event due for an instance of another machine: instance work.
	toggle := irtest.Compile(t, "toggle.fsm", []byte(irtest.Toggle)).Machines[0]
	if err := store.PutMachine(ctx, toggle); err != nil {
		t.Fatal(err)
	}
	irtest.Create(t, store, toggle, "t", now, runtime.Work{Kind: runtime.WorkEvent, Instance: "t", Due: now})
	if ok, err := store.Claim(ctx, f, &l); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	if !l.More || l.MoreTasks {
		t.Errorf("with an event due besides task attempts, claimed %s: More %v, MoreTasks %v; want More alone", l.Token, l.More, l.MoreTasks)
	}
}

// TestStoppingGivesBackChainedWork: a worker that stops after its last
// write claimed more gives that back at once, rather than holding it for
// a lease.
func TestStoppingGivesBackChainedWork(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	store, m := chainSetup(t, redisstore.Options{NoRedlock: true}, now, "a", "b")
	e := runtime.New(store, runtime.Options{Lease: time.Minute})
	started, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	work := func(context.Context, *runtime.Call) (runtime.Result, error) {
		once.Do(func() { close(started) })
		<-release
		return runtime.Result{}, nil
	}
	if err := e.Register(ctx, m, map[string]runtime.Handler{"Work": work}); err != nil {
		t.Fatal(err)
	}
	stop := storetest.RunInBackground(t, e, 1)
	<-started
	go func() { time.Sleep(50 * time.Millisecond); close(release) }()
	stop() // the attempt finishes within StopGrace, and its write claims the other
	f := runtime.ClaimFilter{Now: time.Now(), Lease: time.Minute}
	var l runtime.Lease
	if ok, err := store.Claim(ctx, f, &l); err != nil || !ok {
		t.Fatalf("after the worker stopped, the other instance's task: %v %v", ok, err)
	}
}
