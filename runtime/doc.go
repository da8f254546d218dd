// Package runtime executes compiled machines (package ir) for many
// instances, on one process or across many sharing a store.
//
//	Engine.Start/Send ──> Store (instances, queues, history)
//	                          │ Claim (leased, due, by priority)
//	                          ▼
//	   worker: step (events, timers, task results) ──> Commit (fenced)
//	           attempt (run a handler)            ──> Complete (follow-up work)
//
// Work comes in two kinds. Instance work (events, timer firings, task
// results) is kept per instance in order of due time and arrival, and
// handled one item at a time: a worker claims the head of an instance's
// queue, computes the transition (step.go) and commits the new state with
// the version it read; the store rejects a commit whose version is stale,
// so a paused worker can never overwrite newer state. Task attempts are
// separate work items, claimed only by workers that have the action's
// handler; running one never blocks the instance, and its outcome becomes
// instance work: the action's event (or done), a later retry, or error.
// On a store that can (a DirectStore, the Redis store), an event result
// with nothing of the instance ahead of it takes its transition in the
// write that finishes the attempt instead (task.go's deliver). Run's
// workers ask for their next work in the write that finishes each item
// (Lease.Then, a Chain): a store that can (the Redis store, on one
// partition) claims it in the same call, and the worker claims on its
// own only when the write did not (run.go's workLoop). Stores derive
// the changelog from the history they commit (ChangeOf).
//
// Every entry into a state increments the instance's visit. Timers and
// task results carry the visit they were scheduled in and are discarded
// when the instance has moved on, so a timer or a late result of an
// earlier visit has no effect.
//
// Time comes from a Clock: tests and `fsmc run --virtual-time` use a
// FakeClock and never sleep. The Store interface has two implementations,
// runtime/memstore (in-process) and runtime/redisstore, and one
// conformance suite, runtime/storetest, that both pass.
package runtime
