package metrics

import (
	"context"
	"time"

	"github.com/fsmc/fsmc/runtime"
	"github.com/prometheus/client_golang/prometheus"
)

// Queue exports what a store's queue holds, read at every scrape, so the
// backlog shows even while no worker claims anything (all down, all
// busy, or none able to take the work):
//
//	fsmc_queue_waiting              units queued and not leased, due or not
//	fsmc_queue_due                  of those, the units due now
//	fsmc_queue_leased               units being handled under a lease
//	fsmc_queue_oldest_due_seconds   how long the longest-overdue unit has been due (0: none)
//
// A unit is an instance's queue with work in it, or a task attempt (see
// runtime.QueueStats). A scrape that cannot read the store leaves these
// out and counts a store failure.
type Queue struct {
	store                        runtime.QueueStater
	now                          func() time.Time
	onError                      func(error)
	timeout                      time.Duration
	waiting, due, leased, oldest *prometheus.Desc
}

// NewQueue makes a Queue that reads store on now's clock, within
// timeout, and calls onError (if not nil) when it cannot.
func NewQueue(store runtime.QueueStater, now func() time.Time, timeout time.Duration, onError func(error)) *Queue {
	return &Queue{
		store: store, now: now, onError: onError, timeout: timeout,
		waiting: prometheus.NewDesc("fsmc_queue_waiting", "Units of work queued and not leased, due or not (an instance's queue counts once).", nil, nil),
		due:     prometheus.NewDesc("fsmc_queue_due", "Units of work due now and not yet claimed.", nil, nil),
		leased:  prometheus.NewDesc("fsmc_queue_leased", "Units of work being handled under a lease.", nil, nil),
		oldest:  prometheus.NewDesc("fsmc_queue_oldest_due_seconds", "How long the longest-overdue unclaimed unit has been due (0 when none is due).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (q *Queue) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{q.waiting, q.due, q.leased, q.oldest} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (q *Queue) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), q.timeout)
	defer cancel()
	now := q.now()
	s, err := q.store.QueueStats(ctx, now)
	if err != nil {
		if q.onError != nil {
			q.onError(err)
		}
		return
	}
	oldest := 0.0
	if !s.OldestDue.IsZero() {
		oldest = max(now.Sub(s.OldestDue).Seconds(), 0)
	}
	ch <- prometheus.MustNewConstMetric(q.waiting, prometheus.GaugeValue, float64(s.Waiting))
	ch <- prometheus.MustNewConstMetric(q.due, prometheus.GaugeValue, float64(s.Due))
	ch <- prometheus.MustNewConstMetric(q.leased, prometheus.GaugeValue, float64(s.Leased))
	ch <- prometheus.MustNewConstMetric(q.oldest, prometheus.GaugeValue, oldest)
}
