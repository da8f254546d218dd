package runtime_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
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
	const workers = 4
	var running atomic.Int32
	together := make(chan struct{})
	// A clock that stands still: an idle worker wakes only when told to,
	// never at the end of its idle wait.
	clock := stillClock{time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	store := &onceWoken{Store: memstore.New(memstore.Options{}), wake: make(chan struct{}, 1)}
	e := runtime.New(store, runtime.Options{Clock: clock})
	err := e.Register(context.Background(), m, map[string]runtime.Handler{
		"Work": func(ctx context.Context, _ *runtime.Call) (runtime.Result, error) {
			if running.Add(1) == workers {
				close(together)
			}
			select {
			case <-together:
				return runtime.Result{}, nil
			case <-time.After(5 * time.Second):
				return runtime.Result{}, runtime.Permanent(fmt.Errorf("only %d of %d workers took work", running.Load(), workers))
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx, workers) }()
	defer func() { cancel(); <-done }()
	time.Sleep(50 * time.Millisecond) // every worker idle, waiting
	for i := 0; i < workers; i++ {
		if err := e.Start(context.Background(), "Job", fmt.Sprintf("j%d", i), nil, runtime.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	store.wake <- struct{}{} // one wake-up for all four: the workers pass it on
	select {
	case <-together:
	case <-time.After(10 * time.Second):
		t.Fatalf("only %d of %d workers took work", running.Load(), workers)
	}
}

// onceWoken is a store whose wake-ups the test sends itself.
type onceWoken struct {
	*memstore.Store
	wake chan struct{}
}

func (s *onceWoken) Wake() <-chan struct{} { return s.wake }

// stillClock stands still: Sleep returns only when woken.
type stillClock struct{ now time.Time }

func (c stillClock) Now() time.Time { return c.now }

func (c stillClock) Sleep(_ time.Duration, wake <-chan struct{}) bool {
	<-wake
	return false
}
