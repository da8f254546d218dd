package runtime_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
)

func compileMachine(t testing.TB, src string) *ir.Machine {
	return irtest.Compile(t, "m.fsm", []byte(src)).Machines[0]
}

const toggle = `machine Toggle {
    event Flip
    initial state Off {
        on Flip -> On
    }
    state On {
        on Flip -> Off
    }
}`

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
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx, 4) }()
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
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop")
	}
}
