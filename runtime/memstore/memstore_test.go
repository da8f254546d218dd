package memstore_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
	"github.com/fsmc/fsmc/runtime/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) runtime.Store { return memstore.New(memstore.Options{Changelog: true}) })
}

// TestTrimmedCursor: a cursor older than the changes the store keeps is
// refused with ErrCursorTrimmed rather than silently skipping them, and
// one ahead of them with ErrBadCursor.
func TestTrimmedCursor(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(memstore.Options{Changelog: true})
	e := irtest.StartToggle(t, store, "t")
	first, _, err := store.Changes(ctx, "", 1)
	if err != nil || len(first) != 1 {
		t.Fatal(first, err)
	}
	for i := 0; i < 5000; i++ { // more than the store keeps
		if err := e.Fire(ctx, "t", "Flip", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := store.Changes(ctx, first[0].Cursor, 0); !errors.Is(err, runtime.ErrCursorTrimmed) {
		t.Fatalf("from a trimmed cursor: %v, want ErrCursorTrimmed", err)
	}
	_, last, err := store.Changes(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if more, _, err := store.Changes(ctx, last, 0); err != nil || len(more) != 0 {
		t.Fatalf("from the latest cursor: %v %v", more, err)
	}
	// A cursor ahead of the changelog was never given: a reader would
	// skip the changes up to it.
	if _, _, err := store.Changes(ctx, "999999", 0); !errors.Is(err, runtime.ErrBadCursor) {
		t.Fatalf("from a cursor ahead of the changelog: %v, want ErrBadCursor", err)
	}
}

// TestRetention: an instance that completed or was cancelled is removed
// once the retention has passed since it ended, on the engine's clock
// (its ID may then be started again); active instances stay, and
// without a retention ended ones do too.
func TestRetention(t *testing.T) {
	ctx := context.Background()
	m := irtest.Compile(t, "ends.fsm", []byte(`machine Ends {
    event Finish
    initial state Open {
        on Finish -> Closed
    }
    final state Closed
}`)).Machines[0]
	setup := func(retention time.Duration) (*runtime.Engine, *memstore.Store, *runtime.FakeClock) {
		clock := runtime.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		store := memstore.New(memstore.Options{Retention: retention})
		e := runtime.New(store, runtime.Options{Clock: clock})
		if err := e.Register(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"finished", "cancelled", "open"} {
			if err := e.Start(ctx, "Ends", id, nil, runtime.StartOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		return e, store, clock
	}
	// expireAt lets the store see the time (a worker's claim does) and
	// lists who is left.
	expireAt := func(e *runtime.Engine, store *memstore.Store, clock *runtime.FakeClock) string {
		var l runtime.Lease
		if _, err := store.Claim(ctx, runtime.ClaimFilter{Now: clock.Now()}, &l); err != nil {
			t.Fatal(err)
		}
		var left []string
		for _, id := range []string{"finished", "cancelled", "open"} {
			if _, err := e.Get(ctx, id); err == nil {
				left = append(left, id)
			} else if !errors.Is(err, runtime.ErrNotFound) {
				t.Fatal(err)
			}
		}
		return strings.Join(left, " ")
	}

	e, store, clock := setup(time.Hour)
	if err := e.Fire(ctx, "finished", "Finish", nil); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30 * time.Minute)
	if err := e.Cancel(ctx, "cancelled"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(30*time.Minute - time.Millisecond)
	if left := expireAt(e, store, clock); left != "finished cancelled open" {
		t.Errorf("just before the first's retention passed, left: %s", left)
	}
	clock.Advance(time.Millisecond)
	if left := expireAt(e, store, clock); left != "cancelled open" {
		t.Errorf("when the first's retention passed, left: %s", left)
	}
	clock.Advance(30 * time.Minute)
	if left := expireAt(e, store, clock); left != "open" {
		t.Errorf("when the second's passed, left: %s", left)
	}
	if err := e.Start(ctx, "Ends", "finished", nil, runtime.StartOptions{}); err != nil {
		t.Errorf("starting a removed instance's ID again: %v", err)
	}
	// With no claim in between, a start is what lets the store see the
	// time; the new instance is not removed with its predecessor's
	// retention.
	if err := e.Cancel(ctx, "open"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Hour)
	if err := e.Start(ctx, "Ends", "open", nil, runtime.StartOptions{}); err != nil {
		t.Errorf("starting an ID whose retention passed, with no claim between: %v", err)
	}
	if left := expireAt(e, store, clock); left != "finished open" {
		t.Errorf("after starting two IDs again, left: %s", left)
	}

	e, store, clock = setup(0)
	if err := e.Fire(ctx, "finished", "Finish", nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Cancel(ctx, "cancelled"); err != nil {
		t.Fatal(err)
	}
	clock.Advance(1000 * time.Hour)
	if left := expireAt(e, store, clock); left != "finished cancelled open" {
		t.Errorf("with no retention, left: %s", left)
	}
}

// TestReusedIDHasItsOwnKeys: an instance started under the ID of one
// removed after its retention gets idempotency keys of its own, so a
// handler that deduplicates on the key does not take it for the first.
func TestReusedIDHasItsOwnKeys(t *testing.T) {
	ctx := context.Background()
	m := irtest.Compile(t, "charge.fsm", []byte(`machine Charge {
    action Pay
    initial state Paying {
        do Pay
        on done -> Paid
        on error -> Paid
    }
    final state Paid
}`)).Machines[0]
	clock := runtime.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store := memstore.New(memstore.Options{Retention: time.Hour})
	e := runtime.New(store, runtime.Options{Clock: clock})
	var keys []string
	err := e.Register(ctx, m, map[string]runtime.Handler{"Pay": func(_ context.Context, c *runtime.Call) (runtime.Result, error) {
		keys = append(keys, c.IdempotencyKey)
		return runtime.Result{}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	for run := 0; run < 2; run++ {
		if err := e.Start(ctx, "Charge", "order-1", nil, runtime.StartOptions{}); err != nil {
			t.Fatalf("start %d: %v", run+1, err)
		}
		if _, err := e.RunDue(ctx); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Hour + time.Millisecond)
		if _, err := e.RunDue(ctx); err != nil { // the store sees the time, and removes it
			t.Fatal(err)
		}
	}
	if len(keys) != 2 || keys[0] == keys[1] {
		t.Fatalf("keys %q; want two, different", keys)
	}
}

// TestRemovedInstanceLeavesNoWork: an instance removed when its
// retention passed takes the events it kept as it completed (still
// queued, to be recorded as unhandled) with it: no claim finds them.
func TestRemovedInstanceLeavesNoWork(t *testing.T) {
	ctx := context.Background()
	clock := runtime.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	store := memstore.New(memstore.Options{Retention: time.Hour})
	e := irtest.StartToggle(t, store, "t")
	for range 2 {
		if err := store.Enqueue(ctx, runtime.Work{Kind: runtime.WorkEvent, Instance: "t", Due: clock.Now(), Event: 2}); err != nil {
			t.Fatal(err)
		}
	}
	filter := runtime.ClaimFilter{Worker: "w", Now: clock.Now(), Lease: time.Minute}
	var l runtime.Lease
	if ok, err := store.Claim(ctx, filter, &l); !ok || err != nil {
		t.Fatal(ok, err)
	}
	var inst runtime.Instance
	if err := store.Load(ctx, "t", &inst); err != nil {
		t.Fatal(err)
	}
	inst.Status, inst.Updated = runtime.Completed, clock.Now()
	if err := store.Commit(ctx, &l, &runtime.Commit{Instance: &inst, DropWork: true}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Hour)
	filter.Now = clock.Now()
	if ok, err := store.Claim(ctx, filter, &l); ok || err != nil {
		t.Fatalf("claimed %+v (%v) of an instance removed an hour ago", l.Work, err)
	}
	if _, err := e.Get(ctx, "t"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("the instance is still there: %v", err)
	}
}
