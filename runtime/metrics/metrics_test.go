package metrics_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
	"github.com/fsmc/fsmc/runtime/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsFollowTheEngine runs a machine whose task fails once and
// checks what the collector counted.
func TestMetricsFollowTheEngine(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	clock := runtime.NewFakeClock(time.Unix(1000, 0))
	e := runtime.New(memstore.New(memstore.Options{}), runtime.Options{Clock: clock, Observer: c, Jitter: func() float64 { return 0 }})
	m := irtest.Compile(t, "m.fsm", []byte(`machine Job {
    action Work
    initial state A {
        do Work {
            retry 2
        }
        on done -> B
        on error -> B
    }
    final state B
}`)).Machines[0]
	calls := 0
	err = e.Register(context.Background(), m, map[string]runtime.Handler{"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
		calls++
		if calls == 1 {
			return runtime.Result{}, errors.New("once")
		}
		return runtime.Result{}, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(context.Background(), "Job", "j", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := e.RunDue(context.Background()); err != nil {
			t.Fatal(err)
		}
		clock.Advance(time.Second)
	}
	expected := `
# HELP fsmc_task_attempts_total Task attempts, by result (ok or failed).
# TYPE fsmc_task_attempts_total counter
fsmc_task_attempts_total{action="Work",machine="Job",result="failed"} 1
fsmc_task_attempts_total{action="Work",machine="Job",result="ok"} 1
# HELP fsmc_transitions_total Transitions committed.
# TYPE fsmc_transitions_total counter
fsmc_transitions_total{machine="Job"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expected), "fsmc_task_attempts_total", "fsmc_transitions_total"); err != nil {
		t.Fatal(err)
	}
}
