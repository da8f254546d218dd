package redisstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/fsmc/fsmc/runtime/storetest"
)

// countingStore counts the task results committed directly. Its
// claims for instance work alone (the worker Run keeps for it) wait
// until the test ends, as if that worker were busy.
type countingStore struct {
	*redisstore.Store
	direct atomic.Int64
}

func (s *countingStore) Claim(ctx context.Context, f runtime.ClaimFilter, l *runtime.Lease) (bool, error) {
	if f.NoTasks {
		<-ctx.Done()
		return false, ctx.Err()
	}
	return s.Store.Claim(ctx, f, l)
}

func (s *countingStore) CompleteDirect(ctx context.Context, l *runtime.Lease, c *runtime.Commit, due time.Time) (bool, error) {
	done, err := s.Store.CompleteDirect(ctx, l, c, due)
	if done {
		s.direct.Add(1)
	}
	return done, err
}

// TestResultDeliveredDirectly: a task's result takes its transition in
// the commit that finishes the attempt, unless instance work was due
// before it: then it queues behind that work, which keeps its turn.
func TestResultDeliveredDirectly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	m := irtest.Compile(t, "slow.fsm", []byte(irtest.TaskOrTimer)).Machines[0]
	store := &countingStore{Store: redisstore.New(redisClient(t), redisstore.Options{Prefix: fmt.Sprintf("t%d", prefixes.Add(1))})}
	e := runtime.New(store, runtime.Options{Lease: 5 * time.Second})
	work := func(_ context.Context, c *runtime.Call) (runtime.Result, error) {
		if c.Instance == "slow" {
			time.Sleep(200 * time.Millisecond) // past the timer
		}
		return runtime.Result{}, nil
	}
	if err := e.Register(ctx, m, map[string]runtime.Handler{"Work": work}); err != nil {
		t.Fatal(err)
	}
	// One worker: while it runs the task, nothing else of the instance
	// is handled (the one Run keeps for instance work is held).
	storetest.RunInBackground(t, e, 1)

	if err := e.Start(ctx, "Slow", "quick", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e, "quick", 10*time.Second, inState("Done"))
	if store.direct.Load() != 1 {
		t.Fatalf("%d results committed directly, want 1", store.direct.Load())
	}

	if err := e.Start(ctx, "Slow", "slow", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	v := waitFor(t, e, "slow", 10*time.Second, inState("Late"))
	if store.direct.Load() != 1 {
		t.Errorf("the result overtook the timer due before it: %d direct commits", store.direct.Load())
	}
	var kinds []string
	for _, h := range v.History {
		kinds = append(kinds, h.Kind.String())
	}
	if fmt.Sprint(kinds) != "[start attempt timer]" {
		t.Errorf("history %v, want [start attempt timer]", kinds)
	}
}

// waitFor polls instance id until done holds of it, and fails the test
// if that takes longer than timeout.
func waitFor(t *testing.T, e *runtime.Engine, id string, timeout time.Duration, done func(*runtime.View) bool) *runtime.View {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v, err := e.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if done(v) {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %s is in %s (%s, v%d)", timeout, id, v.StateName, v.Status, v.Version)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// inState and completed are conditions for waitFor.
func inState(state string) func(*runtime.View) bool {
	return func(v *runtime.View) bool { return v.StateName == state }
}

func completed(v *runtime.View) bool { return v.Status == runtime.Completed }

// waitListed polls until n instances match f (Redis may be away for a
// while), and fails the test if that takes longer than timeout.
func waitListed(t *testing.T, e *runtime.Engine, f runtime.ListFilter, n int, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got, err := e.List(context.Background(), f)
		if err == nil && len(got) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, %d of %d instances match %+v (%v)", timeout, len(got), n, f, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
