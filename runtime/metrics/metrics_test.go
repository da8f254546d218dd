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

// TestQueueShowsTheBacklog: with no worker claiming, the queue gauges
// show what waits and for how long; a store that cannot answer leaves
// them out and reports the failure.
func TestQueueShowsTheBacklog(t *testing.T) {
	clock := runtime.NewFakeClock(time.Unix(1000, 0))
	store := memstore.New(memstore.Options{})
	e := runtime.New(store, runtime.Options{Clock: clock})
	m := irtest.Compile(t, "one.fsm", []byte(irtest.OneStep)).Machines[0]
	if err := e.Register(context.Background(), m, nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if err := e.Start(context.Background(), m.Name, id, nil, runtime.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	clock.Set(time.Unix(1090, 0))
	q := metrics.NewQueue(store, clock.Now, time.Second, nil)
	want := `
# HELP fsmc_queue_due Units of work due now and not yet claimed.
# TYPE fsmc_queue_due gauge
fsmc_queue_due 2
# HELP fsmc_queue_leased Units of work being handled under a lease.
# TYPE fsmc_queue_leased gauge
fsmc_queue_leased 0
# HELP fsmc_queue_oldest_due_seconds How long the longest-overdue unclaimed unit has been due (0 when none is due).
# TYPE fsmc_queue_oldest_due_seconds gauge
fsmc_queue_oldest_due_seconds 90
# HELP fsmc_queue_waiting Units of work queued and not leased, due or not (an instance's queue counts once).
# TYPE fsmc_queue_waiting gauge
fsmc_queue_waiting 2
`
	if err := testutil.CollectAndCompare(q, strings.NewReader(want)); err != nil {
		t.Fatal(err)
	}

	var reported error
	down := metrics.NewQueue(failingQueue{}, clock.Now, time.Second, func(err error) { reported = err })
	if n := testutil.CollectAndCount(down); n != 0 || reported == nil {
		t.Fatalf("a failing store gave %d metrics, reported %v", n, reported)
	}
}

type failingQueue struct{}

func (failingQueue) QueueStats(context.Context, time.Time) (runtime.QueueStats, error) {
	return runtime.QueueStats{}, errors.New("connection refused")
}

// TestSeriesStartAtZero checks that a worker's counters are scraped at 0
// before anything happens, for the kinds of work and for each machine
// and action it runs.
func TestSeriesStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	c, err := metrics.New(reg)
	if err != nil {
		t.Fatal(err)
	}
	c.Runs("Job", []string{"Work"})
	expected := `
# HELP fsmc_claims_total Work claimed, by kind.
# TYPE fsmc_claims_total counter
fsmc_claims_total{kind="event"} 0
fsmc_claims_total{kind="task"} 0
fsmc_claims_total{kind="timer"} 0
# HELP fsmc_stale_commits_total Commits refused because the instance or the lease had moved on.
# TYPE fsmc_stale_commits_total counter
fsmc_stale_commits_total{machine="Job"} 0
# HELP fsmc_task_attempts_total Task attempts, by result (ok or failed).
# TYPE fsmc_task_attempts_total counter
fsmc_task_attempts_total{action="Work",machine="Job",result="failed"} 0
fsmc_task_attempts_total{action="Work",machine="Job",result="ok"} 0
# HELP fsmc_transitions_total Transitions committed.
# TYPE fsmc_transitions_total counter
fsmc_transitions_total{machine="Job"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(expected), "fsmc_claims_total", "fsmc_stale_commits_total", "fsmc_task_attempts_total", "fsmc_transitions_total"); err != nil {
		t.Fatal(err)
	}
}
