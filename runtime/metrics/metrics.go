// Package metrics is a runtime.Observer for Prometheus: register a
// Collector with a registry and give it to runtime.Options.Observer.
//
//	engine ──Observer calls──> Collector ──> prometheus.Registerer ──> /metrics
//
// Metrics (runtime.md "Operating"):
//
//	fsmc_transitions_total{machine}                 transitions committed
//	fsmc_task_attempts_total{machine,action,result} task attempts: ok or failed
//	fsmc_task_duration_seconds{machine,action}      how long attempts took
//	fsmc_claims_total{kind}                         work claimed: event, timer, task
//	fsmc_claim_lateness_seconds{kind}               how late after its due time work was claimed
//	fsmc_stale_commits_total{machine}               commits refused by the fence
//	fsmc_store_errors_total                         store (Redis) failures
//
// and, from a Queue reading the store at every scrape, queue depth and
// the lateness of due work that nobody has claimed:
//
//	fsmc_queue_waiting, fsmc_queue_due, fsmc_queue_leased, fsmc_queue_oldest_due_seconds
package metrics

import (
	"time"

	"github.com/fsmc/fsmc/runtime"
	"github.com/prometheus/client_golang/prometheus"
)

// Collector holds fsmc's metrics.
type Collector struct {
	transitions *prometheus.CounterVec
	attempts    *prometheus.CounterVec
	duration    *prometheus.HistogramVec
	claims      *prometheus.CounterVec
	lateness    *prometheus.HistogramVec
	stale       *prometheus.CounterVec
	storeErrors prometheus.Counter
}

var _ runtime.Observer = (*Collector)(nil)

// New makes the metrics and registers them with reg.
func New(reg prometheus.Registerer) (*Collector, error) {
	c := &Collector{
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fsmc_transitions_total", Help: "Transitions committed."}, []string{"machine"}),
		attempts:    prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fsmc_task_attempts_total", Help: "Task attempts, by result (ok or failed)."}, []string{"machine", "action", "result"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fsmc_task_duration_seconds", Help: "How long task attempts took.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10)}, []string{"machine", "action"}),
		claims: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fsmc_claims_total", Help: "Work claimed, by kind."}, []string{"kind"}),
		lateness: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fsmc_claim_lateness_seconds", Help: "How late after its due time work was claimed.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)}, []string{"kind"}),
		stale:       prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fsmc_stale_commits_total", Help: "Commits refused because the instance or the lease had moved on."}, []string{"machine"}),
		storeErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "fsmc_store_errors_total", Help: "Store (Redis) failures."}),
	}
	for _, m := range []prometheus.Collector{c.transitions, c.attempts, c.duration, c.claims, c.lateness, c.stale, c.storeErrors} {
		if err := reg.Register(m); err != nil {
			return nil, err
		}
	}
	for _, k := range []runtime.WorkKind{runtime.WorkEvent, runtime.WorkTimer, runtime.WorkTask} {
		c.claims.WithLabelValues(kindName(k))
	}
	return c, nil
}

// Runs starts the counters of machine, and of the actions the worker
// handles for it, at zero: a series that exists before its first event
// lets rate() see that event and absent() alerts tell a quiet worker
// from a missing one.
func (c *Collector) Runs(machine string, actions []string) {
	c.transitions.WithLabelValues(machine)
	c.stale.WithLabelValues(machine)
	for _, a := range actions {
		c.attempts.WithLabelValues(machine, a, "ok")
		c.attempts.WithLabelValues(machine, a, "failed")
	}
}

func kindName(k runtime.WorkKind) string {
	switch k {
	case runtime.WorkEvent:
		return "event"
	case runtime.WorkTimer:
		return "timer"
	}
	return "task"
}

// Transitioned implements runtime.Observer.
func (c *Collector) Transitioned(machine string) { c.transitions.WithLabelValues(machine).Inc() }

// Attempted implements runtime.Observer.
func (c *Collector) Attempted(machine, action string, err error, took time.Duration) {
	result := "ok"
	if err != nil {
		result = "failed"
	}
	c.attempts.WithLabelValues(machine, action, result).Inc()
	c.duration.WithLabelValues(machine, action).Observe(took.Seconds())
}

// Claimed implements runtime.Observer.
func (c *Collector) Claimed(kind runtime.WorkKind, late time.Duration) {
	k := kindName(kind)
	c.claims.WithLabelValues(k).Inc()
	c.lateness.WithLabelValues(k).Observe(max(late, 0).Seconds())
}

// Stale implements runtime.Observer.
func (c *Collector) Stale(machine string) { c.stale.WithLabelValues(machine).Inc() }

// StoreError implements runtime.Observer.
func (c *Collector) StoreError(error) { c.storeErrors.Inc() }
