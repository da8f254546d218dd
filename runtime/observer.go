package runtime

import "time"

// Observer is told what an engine does, for metrics (package
// runtime/metrics implements it for Prometheus). Its methods must be
// quick and safe for concurrent use.
type Observer interface {
	// Transitioned: an instance of machine took a transition (or timer).
	Transitioned(machine string)
	// Attempted: a task attempt finished, err nil on success.
	Attempted(machine, action string, err error, took time.Duration)
	// Claimed: work of kind was claimed, late after its due time.
	Claimed(kind WorkKind, late time.Duration)
	// Stale: a commit was refused because the instance or the lease had
	// moved on.
	Stale(machine string)
	// StoreError: the store failed (Redis unreachable, say).
	StoreError(err error)
}

// noObserver is the Observer used when Options.Observer is nil.
type noObserver struct{}

func (noObserver) Transitioned(string)                            {}
func (noObserver) Attempted(string, string, error, time.Duration) {}
func (noObserver) Claimed(WorkKind, time.Duration)                {}
func (noObserver) Stale(string)                                   {}
func (noObserver) StoreError(error)                               {}
