package runtime

import (
	"context"
	"errors"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
)

// The errors stores return.
var (
	ErrExists    = errors.New("instance already exists")
	ErrNotFound  = errors.New("no such instance")
	ErrStale     = errors.New("stale commit: the instance changed since it was read")
	ErrLostLease = errors.New("the lease on this work is gone: it expired, and the work went back to be claimed again (by any worker, this one too), or an operator cancelled the instance")
	ErrBadCursor = errors.New("bad changelog cursor")
	// ErrCursorTrimmed: the changelog no longer reaches back to the
	// cursor, so entries after it may have been trimmed away.
	ErrCursorTrimmed = errors.New("the changelog no longer reaches back to this cursor: entries after it may have been trimmed")
	// ErrClosed: the store has been closed (a store that can be, such
	// as the Redis store, whose own error matches it with errors.Is).
	// Engine.Run returns when its store is.
	ErrClosed = errors.New("the store is closed")
)

// WorkKind says what a work item is.
type WorkKind uint8

// The kinds of work.
const (
	WorkEvent WorkKind = iota + 1 // instance work: deliver Event with Payload
	WorkTimer                     // instance work: timer Timer of visit Visit fires
	WorkTask                      // a task attempt: run Action, attempt Attempt, for visit Visit
)

// Work is one item of due work.
type Work struct {
	Kind     WorkKind
	Instance string
	Due      time.Time
	Seq      uint64 // assigned by the store: arrival order
	Visit    uint64 // the visit it belongs to; 0 for events sent from outside
	Event    int
	Payload  []ir.Value
	Timer    int
	Action   int // action id (WorkTask)
	Attempt  int // 1-based (WorkTask)
	Priority int // the instance's priority, copied by the store
}

// KeptAtEnd reports whether w, queued for an instance that has just
// completed, stays in its queue: an event sent from outside (a task's
// result, and a timer firing, belong to a visit that has ended).
func KeptAtEnd(w *Work) bool { return w.Kind == WorkEvent && w.Visit == 0 }

// QueueRuns reports whether an instance with status st has its instance
// work run: an active one, and a completed one, whose queue holds only
// the events that were still queued when it completed (KeptAtEnd). A
// failed instance's work waits for a retry; a cancelled one has none.
func QueueRuns(st Status) bool { return st == Active || st == Completed }

// Lease is a claim on one work item until Until. A store fills the
// fields it needs to recognise the claim again.
type Lease struct {
	Work   Work
	Worker string
	Until  time.Time
	Token  string // store-specific
	Fence  uint64 // store-specific
	// Instance is the instance as the claim read it, when a store reads
	// it anyway to claim instance work (nil otherwise): the engine uses
	// it instead of a Load. It is read before the instance's lock, so a
	// commit against it can turn out stale; the engine then gives the
	// work back at once.
	Instance *Instance
	// More: when it was claimed, the store saw other work due, so an
	// idle worker should look (a hint: false costs a worker's wake-up
	// its claim, true at worst a claim that finds nothing). MoreTasks:
	// what it saw due was task attempts alone, so only a worker that may
	// run one should look (a store that cannot tell leaves it false).
	More      bool
	MoreTasks bool
	// NextKnown: a claim that found nothing says when to look again, so
	// the engine need not ask NextDue: Next is what NextDue would answer
	// (zero for nothing due at all). A store that does not look leaves
	// NextKnown false.
	Next      time.Time
	NextKnown bool
	// Then, when the engine sets it, asks for the worker's next work in
	// the write that finishes this lease's work (see Chain).
	Then *Chain
}

// Chain is a claim made by the write that finishes a lease's work
// (Commit, Complete, CompleteDirect), saving the worker its own call to
// Claim: a worker that finishes one item goes on to the next. The engine
// sets Filter and clears Done before handling the work, and sets
// Filter.Now to the time of each try of the write; a store that can
// (the Redis store, on one partition) claims as Claim would, when the
// write succeeds, and sets Done. Found is what Claim would report, and
// Next what it would fill. Other stores, and writes that fail, leave
// Done false, and the worker claims as usual.
type Chain struct {
	Filter ClaimFilter
	Next   Lease
	Done   bool
	Found  bool
}

// ClaimFilter says what a worker can do.
type ClaimFilter struct {
	Worker string
	// Hashes are the machine versions this worker runs.
	Hashes []string
	// Runnable lists, per machine hash, the actions this worker has a
	// handler for; task attempts it cannot run are never claimed (on a
	// HandlerDirectory, unless no engine can run them). nil means every
	// action.
	Runnable map[string][]int
	// NoTasks: claim instance work only (events, timer firings, task
	// results), no task attempts. Run keeps a worker for it while the
	// others run tasks (see taskSlots).
	NoTasks bool
	Now     time.Time
	Lease   time.Duration
}

// HandlerDirectory is a store that knows which actions every engine
// using it has handlers for: the embedded store, whose engines share one
// process. There a task attempt that no engine can run does not wait
// for one that never comes: a worker claims it and fails it with "no
// handler for action X", and it is retried or parked like any failure.
// (On a shared store such as Redis, an engine without the handler leaves
// the attempt to engines that have one, which may be on other hosts.)
type HandlerDirectory interface {
	// Announce records, per machine hash, the actions engine has
	// handlers for, replacing what it announced before.
	Announce(engine any, runnable map[string][]int)
}

// InstanceHolder is a store that can hold one instance against the
// workers' writes while an operator's change (Engine.Retry, Cancel)
// reads it and writes it back: the Redis store, through the instance's
// lock. Without the hold, an instance that workers change every few
// milliseconds could move on between each read and its write, and
// every try of the change would be stale.
type InstanceHolder interface {
	// Hold takes instance id's lock, runs fn with a context under which
	// the store's Update of id counts the lock as its own, and releases
	// the lock. Meanwhile no worker claims the instance's events or
	// timers, or commits a task result to it directly.
	Hold(ctx context.Context, id string, fn func(ctx context.Context) error) error
}

// Commit is the result of handling one instance work item: the new
// snapshot (Version is the version read; the store writes Version+1),
// history to append and work to schedule. The history's transitions are
// the changelog entries (ChangeOf).
type Commit struct {
	Instance *Instance
	History  []HistoryEntry
	Schedule []Work
	// DropWork removes the instance's pending work: it has completed or
	// been cancelled. A completed instance keeps the events sent to it
	// that were still queued (KeptAtEnd); they run as its instance work,
	// and the engine records each as unhandled in its final state.
	DropWork bool
	// DropTimers removes the instance's queued timer firings: the
	// commit enters a state, and timers die with the visit they were
	// set in. (Schedule's timers are the new visit's, and stay.)
	DropTimers bool
}

// ListFilter selects instances; zero fields match everything.
type ListFilter struct {
	Machine string
	State   string // a state's name, in the IR of the instance's version
	Status  Status
	Limit   int
}

// Matches reports whether inst, an instance of m (its version's IR, or
// nil when unknown), passes f (all but Limit, which is the store's).
func (f ListFilter) Matches(inst *Instance, m *ir.Machine) bool {
	if f.Machine != "" && inst.Machine != f.Machine || f.Status != 0 && inst.Status != f.Status {
		return false
	}
	return f.State == "" || m != nil && inst.State >= 0 && inst.State < len(m.States) && m.States[inst.State].Name == f.State
}

// Store keeps instances and their work. Implementations: memstore
// (in-process) and redisstore. All methods are safe for concurrent use.
type Store interface {
	// PutMachine records a compiled machine under its hash.
	PutMachine(ctx context.Context, m *ir.Machine) error
	// Machine returns the machine stored under hash, valid: as
	// PutMachine got it, or read back with ir.LoadMachine (which
	// validates).
	Machine(ctx context.Context, hash string) (*ir.Machine, error)

	// Create stores a new instance (Version 1) with its first work and
	// history; ErrExists if the ID is taken.
	Create(ctx context.Context, inst *Instance, work []Work, history []HistoryEntry) error
	// Load copies an instance, without its history, into inst (reusing
	// inst.Context's storage); ErrNotFound.
	Load(ctx context.Context, id string, inst *Instance) error
	// History returns an instance's history, oldest first.
	History(ctx context.Context, id string) ([]HistoryEntry, error)
	// List returns instances matching f, by ID.
	List(ctx context.Context, f ListFilter) ([]*Instance, error)

	// Enqueue adds work for an existing instance; ErrNotFound, or
	// ErrRejected when it has completed or been cancelled (checked with
	// the write, so work racing the instance's end is never left behind).
	Enqueue(ctx context.Context, w Work) error
	// Claim leases the most urgent due work the filter allows: highest
	// instance priority first, then earliest due, then arrival (the Redis
	// store keeps due times in milliseconds, and takes the work of
	// different instances due in the same one in any order; an
	// instance's own work keeps its order there too). Instance
	// work is claimable only at the head of its instance's queue, while
	// no other lease holds that queue, and while the instance is active.
	// It fills l and reports whether anything was due.
	Claim(ctx context.Context, f ClaimFilter, l *Lease) (bool, error)
	// ClaimInstance is Claim restricted to one instance's queue, for a
	// process that wants to handle what it has just sent.
	ClaimInstance(ctx context.Context, id string, f ClaimFilter, l *Lease) (bool, error)
	// Extend moves a lease's expiry; ErrLostLease if it was lost.
	Extend(ctx context.Context, l *Lease, until time.Time) error
	// Release gives a leased item back, due again at once.
	Release(ctx context.Context, l *Lease) error

	// Commit applies c for the instance work l holds, atomically: only if
	// the stored version still equals c.Instance.Version (else ErrStale,
	// and nothing changes) and the lease still holds (else ErrLostLease).
	Commit(ctx context.Context, l *Lease, c *Commit) error
	// Complete finishes leased work without changing the instance: it
	// removes the item, appends history and schedules follow-up work.
	// Used for task attempts and for discarding stale items.
	Complete(ctx context.Context, l *Lease, history []HistoryEntry, schedule []Work) error
	// Update commits an operator's change (retry, cancel) fenced like
	// Commit, without a lease.
	Update(ctx context.Context, c *Commit) error

	// NextDue returns the earliest time, if any, at which work the filter
	// admits (as Claim would) falls due or a lease expires. Work a worker
	// cannot take, such as another worker's actions or a parked
	// instance's, never makes it due: a worker waiting on it would spin.
	NextDue(ctx context.Context, f ClaimFilter) (time.Time, bool, error)
	// Changes returns changelog entries after the given cursor ("" for
	// the oldest kept) and the cursor to continue from; each entry also
	// carries the cursor to resume after it. Cursors are opaque strings.
	// A cursor older than what the store keeps is ErrCursorTrimmed: the
	// reader would otherwise miss entries without knowing.
	Changes(ctx context.Context, cursor string, limit int) ([]Change, string, error)
	// Wake returns a channel that receives when new work may be due.
	Wake() <-chan struct{}
}

// InlineStore is implemented by stores that can decide on an instance in
// place, under their own lock: Engine.Fire's fast path on the embedded
// store. Inline calls decide with the stored instance itself and a
// commit to fill, but only when the instance is active and has no queued
// or leased instance work (so per-instance order holds). When decide
// returns true the store applies the commit as Commit would (a new
// version, history, scheduled work, changes); otherwise it records the
// commit's history and scheduled work only. ran reports whether decide
// was called.
type InlineStore interface {
	Store
	Inline(ctx context.Context, id string, decide func(inst *Instance, c *Commit) bool) (ran bool, err error)
}

// QueueStats is what a store's queue holds at a moment (runtime.md
// "Operating": queue depth and lateness of due work). A unit is one
// instance's queue with work in it (however many events wait there) or
// one task attempt.
type QueueStats struct {
	Waiting   int64     // units queued and not leased, due or not
	Due       int64     // of those, due by now
	OldestDue time.Time // the due time of the longest-overdue unit; zero if none is due
	Leased    int64     // units being handled under a lease
}

// QueueStater is implemented by stores that can report their queue
// (both of fsmc's): package metrics exports it at every scrape.
type QueueStater interface {
	QueueStats(ctx context.Context, now time.Time) (QueueStats, error)
}

// DirectStore is implemented by stores that can commit a task's result
// in the same write that finishes the attempt, saving the queue's round
// trips (the Redis store). The engine decides the result's transition on
// the instance the claim handed over (Lease.Instance).
type DirectStore interface {
	// CompleteDirect finishes the leased task attempt l and commits c
	// (Version: the version the decision read) when the instance is
	// still at that version, and no instance work is due by due or
	// being handled; it takes the instance's lock as instance work
	// would. Otherwise it changes nothing and reports false: the
	// caller then queues the result with Complete.
	CompleteDirect(ctx context.Context, l *Lease, c *Commit, due time.Time) (bool, error)
}

// SettingsKeeper is implemented by stores that hold deployment settings
// a store could lose with its data (the Redis store's retention of ended
// instances). Run calls KeepSettings with its registry check
// (Options.RegistryCheck) to put back what was lost; it returns how many
// places it restored.
type SettingsKeeper interface {
	KeepSettings(ctx context.Context) (restored int, err error)
}
