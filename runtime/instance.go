package runtime

import (
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
)

// Status is an instance's status (runtime.md "Instance status").
type Status uint8

// The statuses.
const (
	Active    Status = iota + 1 // running normally
	Failed                      // parked: retry resumes it
	Completed                   // in a final state
	Cancelled                   // cancelled by an operator
)

var statusNames = [...]string{"", "active", "failed", "completed", "cancelled"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "unknown"
}

// ParseStatus returns the status called name.
func ParseStatus(name string) (Status, bool) {
	for i, n := range statusNames {
		if i > 0 && n == name {
			return Status(i), true
		}
	}
	return 0, false
}

// Instance is the stored state of one instance of a machine.
type Instance struct {
	ID       string
	Machine  string // machine name
	Hash     string // hash of the machine version it runs
	State    int    // state id
	Context  []ir.Value
	Status   Status
	Version  uint64 // incremented by every commit
	Visit    uint64 // incremented by every state entry
	Priority int    // 0 (lowest) to 9
	Failure  string // why it is failed
	// FailedTask is set when it failed because its task failed for good
	// (retry then runs the task again).
	FailedTask bool
	// FailedTimer is the timer of its state (its index + 1; 0 for none)
	// whose firing faulted: the firing was consumed, so retry arms it
	// again, due at once.
	FailedTimer int
	Created     time.Time
	Updated     time.Time
}

// CopyFrom makes inst a copy of src, reusing inst's Context storage.
func (inst *Instance) CopyFrom(src *Instance) {
	ctx := append(inst.Context[:0], src.Context...)
	*inst = *src
	inst.Context = ctx
}

// HistoryKind is what a history entry records.
type HistoryKind uint8

// The kinds of history entries.
const (
	HistStart         HistoryKind = iota + 1 // created in the initial state
	HistTransition                           // From --Event--> To
	HistTimer                                // From --after--> To (Timer is its index)
	HistUnhandled                            // Event arrived; no transition and not ignored
	HistStale                                // a timer or task result of an earlier visit, discarded
	HistAttempt                              // task attempt Attempt succeeded
	HistAttemptFailed                        // task attempt Attempt failed: Message
	HistFault                                // the instance was parked (an expression fault, or a task that failed for good with no on error): Message
	HistRetry                                // an operator resumed the instance
	HistCancel                               // an operator cancelled the instance
	HistRejected                             // Event arrived after the instance ended
)

var historyNames = [...]string{"", "start", "transition", "timer", "unhandled", "stale", "attempt", "attempt_failed", "fault", "retry", "cancel", "rejected"}

func (k HistoryKind) String() string {
	if int(k) < len(historyNames) {
		return historyNames[k]
	}
	return "unknown"
}

// HistoryEntry is one thing that happened to an instance.
type HistoryEntry struct {
	Time    time.Time
	Kind    HistoryKind
	Version uint64 // the version it produced (transitions) or saw
	From    int    // state ids; -1 when not applicable
	To      int
	Event   int // event id; -1 when not applicable
	Timer   int
	Attempt int
	Message string
}

// Change is one entry of the changelog: a committed transition, or an
// instance's start. Stores derive changes from the history they commit
// (ChangeOf), so the engine never builds one.
type Change struct {
	Time     time.Time
	Instance string
	// Machine and Hash name the machine version, whose states From and
	// To number. A change of a version the store no longer holds (a
	// Redis registry that lost it) has no Machine, and its Hash is the
	// version's id (ir.ShortHash).
	Machine string
	Hash    string
	From    int // -1 at start
	To      int
	Event   int // -1 for a timer or the start
	Timer   int // the timer's index when Event is -1 and From >= 0
	Version uint64
	Status  Status
	// Cursor, set by Store.Changes, resumes reading after this change.
	Cursor string
}

// ChangeOf is the changelog entry for h, committed in inst (the
// instance as written, whose Status the change reports): ok is false
// when h is not a start or a transition.
func ChangeOf(inst *Instance, h *HistoryEntry) (c Change, ok bool) {
	switch h.Kind {
	case HistStart, HistTransition, HistTimer:
		return Change{Time: h.Time, Instance: inst.ID, Machine: inst.Machine, Hash: inst.Hash, From: h.From, To: h.To,
			Event: h.Event, Timer: h.Timer, Version: h.Version, Status: inst.Status}, true
	}
	return Change{}, false
}
