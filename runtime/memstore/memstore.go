// Package memstore is the embedded (in-process) runtime.Store: the
// default for `fsmc run`, tests and single-process programs.
//
// Everything lives in memory under one mutex. Each instance keeps its
// queue of instance work sorted by due time and arrival, and a capped
// ring of history. Schedulable things, the head of each instance's queue
// and each task attempt, sit in one of two indexed heaps: the timeline
// (by due time) until they are due, then the ready heap (by priority, due
// time, arrival), from which Claim takes. A claimed item leaves both heaps
// until its lease is committed, completed, released or expires.
//
// With Options.Retention, instances that complete or are cancelled join
// a queue in the order they ended, and leave the store from its front
// once the retention has passed (checked as commits end instances and
// workers claim, at the times they carry).
//
// A write whose context is done fails with the context's error and
// changes nothing, as on every store.
//
// The steady-state path of an event (Enqueue, ClaimInstance, Load,
// Commit) copies into memory the store and the caller already own, and
// allocates nothing.
package memstore

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/runtime"
)

// DefaultHistory is how many history entries an instance keeps.
const DefaultHistory = 100

// Options configure a Store.
type Options struct {
	History   int  // history entries kept per instance (DefaultHistory if 0)
	Changelog bool // keep the last 4096 changes for Changes
	// Retention is how long an instance is kept after it completes or is
	// cancelled, counted from the time its ending was stamped with (the
	// engine's clock); it is then removed, and its ID may be started
	// again. 0 keeps ended instances.
	Retention time.Duration
}

// changeRing is how many changelog entries the store keeps.
const changeRing = 4096

// Store is an in-memory runtime.Store.
type Store struct {
	mu         sync.Mutex
	machines   map[string]*ir.Machine
	entries    map[string]*entry
	timeline   indexedHeap
	ready      indexedHeap
	leased     map[*item]uint64 // leased items and their fences
	seq        uint64
	tokens     uint64
	historyCap int
	changes    [changeRing]runtime.Change
	changeSeq  uint64 // changes ever recorded
	wake       chan struct{}
	inline     runtime.Commit // Inline's commit, reused
	changelog  bool
	// announced: per engine, per machine hash, the actions it has
	// handlers for (runtime.HandlerDirectory).
	announced map[any]map[string][]int
	// With a retention, ended holds the instances that ended, in the
	// order they did, from endedAt on; expire removes them in turn.
	retention time.Duration
	ended     []endedEntry
	endedAt   int
}

// endedEntry is an instance that completed or was cancelled at a time.
type endedEntry struct {
	e  *entry
	at time.Time
}

// entry is one instance.
type entry struct {
	inst runtime.Instance
	// history grows by append to the store's cap, then is a ring
	// whose oldest entry (the next to be overwritten) is at histAt.
	history []runtime.HistoryEntry
	histAt  int
	queue   []runtime.Work // instance work, by due time then arrival
	head    item           // schedules queue[0]
	tasks   []*taskItem
	// aside: some task attempts wait outside the heaps because the
	// instance is not active (parked); they go back when it is.
	aside bool
}

type taskItem struct {
	work runtime.Work
	item item
}

// New returns an empty store. Without Options.Changelog, Changes
// returns nothing: a process that embeds the store sees its changes
// through runtime.Options.OnChange instead.
func New(opts Options) *Store {
	historyCap := opts.History
	if historyCap <= 0 {
		historyCap = DefaultHistory
	}
	return &Store{
		machines:   map[string]*ir.Machine{},
		entries:    map[string]*entry{},
		timeline:   indexedHeap{less: byDue},
		ready:      indexedHeap{less: byUrgency},
		leased:     map[*item]uint64{},
		announced:  map[any]map[string][]int{},
		historyCap: historyCap,
		changelog:  opts.Changelog,
		retention:  opts.Retention,
		wake:       make(chan struct{}, 1),
	}
}

var (
	_ runtime.Store            = (*Store)(nil)
	_ runtime.QueueStater      = (*Store)(nil)
	_ runtime.HandlerDirectory = (*Store)(nil)
)

// Announce implements runtime.HandlerDirectory.
func (s *Store) Announce(engine any, runnable map[string][]int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.announced[engine] = runnable
	s.signal() // work that waited for a handler may be claimable now
}

// orphan reports whether no engine announced a handler for action of
// machine hash.
func (s *Store) orphan(hash string, action int) bool {
	for _, runnable := range s.announced {
		if contains(runnable[hash], action) {
			return false
		}
	}
	return true
}

func (s *Store) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Wake implements runtime.Store.
func (s *Store) Wake() <-chan struct{} { return s.wake }

// PutMachine implements runtime.Store.
func (s *Store) PutMachine(_ context.Context, m *ir.Machine) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.machines[m.Hash] = m
	return nil
}

// Machine implements runtime.Store.
func (s *Store) Machine(_ context.Context, hash string) (*ir.Machine, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.machines[hash]; m != nil {
		return m, nil
	}
	return nil, fmt.Errorf("no machine with hash %s", hash)
}

// Create implements runtime.Store.
func (s *Store) Create(ctx context.Context, inst *runtime.Instance, work []runtime.Work, history []runtime.HistoryEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(inst.Created) // an ID whose retention has passed may start again
	if _, exists := s.entries[inst.ID]; exists {
		return runtime.ErrExists
	}
	e := &entry{}
	e.head.entry = e
	e.head.index = -1
	e.inst.CopyFrom(inst)
	e.inst.Version = 1
	s.entries[inst.ID] = e
	s.appendHistory(e, history)
	for _, w := range work {
		s.schedule(e, w)
	}
	s.recordChanges(e, history)
	if inst.Status == runtime.Completed || inst.Status == runtime.Cancelled {
		s.noteEnded(e)
	}
	s.reschedule(e)
	s.signal()
	return nil
}

// Load implements runtime.Store.
func (s *Store) Load(_ context.Context, id string, inst *runtime.Instance) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		return runtime.ErrNotFound
	}
	inst.CopyFrom(&e.inst)
	return nil
}

// History implements runtime.Store.
func (s *Store) History(_ context.Context, id string) ([]runtime.HistoryEntry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		return nil, runtime.ErrNotFound
	}
	out := make([]runtime.HistoryEntry, 0, len(e.history))
	out = append(out, e.history[e.histAt:]...)
	return append(out, e.history[:e.histAt]...), nil
}

// List implements runtime.Store.
func (s *Store) List(_ context.Context, f runtime.ListFilter) ([]*runtime.Instance, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*runtime.Instance
	for _, e := range s.entries {
		if !f.Matches(&e.inst, s.machines[e.inst.Hash]) {
			continue
		}
		inst := &runtime.Instance{}
		inst.CopyFrom(&e.inst)
		out = append(out, inst)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// Enqueue implements runtime.Store.
func (s *Store) Enqueue(ctx context.Context, w runtime.Work) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[w.Instance]
	if e == nil {
		return runtime.ErrNotFound
	}
	if st := e.inst.Status; st == runtime.Completed || st == runtime.Cancelled {
		return fmt.Errorf("%w: instance %s is %s", runtime.ErrRejected, w.Instance, st)
	}
	s.schedule(e, w)
	s.reschedule(e)
	s.signal()
	return nil
}

// schedule adds work to an entry (the caller reschedules the head).
func (s *Store) schedule(e *entry, w runtime.Work) {
	s.seq++
	w.Seq = s.seq
	w.Instance = e.inst.ID
	w.Priority = e.inst.Priority
	if w.Kind == runtime.WorkTask {
		t := &taskItem{work: w}
		t.item = item{due: w.Due, seq: w.Seq, priority: w.Priority, entry: e, task: t, index: -1}
		e.tasks = append(e.tasks, t)
		s.putTask(&t.item)
		return
	}
	// A leased head stays first, whatever comes: its holder's commit
	// finishes it (an event stamped a moment before the head but
	// arriving after it was claimed goes next).
	lo := 0
	if _, leased := s.leased[&e.head]; leased && len(e.queue) > 0 {
		lo = 1
	}
	i := lo + sort.Search(len(e.queue)-lo, func(i int) bool {
		q := &e.queue[lo+i]
		return q.Due.After(w.Due) || q.Due.Equal(w.Due) && q.Seq > w.Seq
	})
	e.queue = append(e.queue, runtime.Work{})
	copy(e.queue[i+1:], e.queue[i:])
	e.queue[i] = w
}

// putTask puts a task attempt (not leased) on the timeline, or, while
// its instance is not active, aside until it is.
func (s *Store) putTask(it *item) {
	if it.entry.inst.Status != runtime.Active {
		it.entry.aside = true
		return
	}
	s.timeline.push(it)
}

// reschedule puts the head of e's queue where it belongs: in a heap when
// its queue runs (runtime.QueueRuns), is non-empty and not leased. No
// task attempt of an instance that is not active is due: they go aside,
// and come back when it is active again.
func (s *Store) reschedule(e *entry) {
	if e.inst.Status != runtime.Active {
		for _, t := range e.tasks {
			if t.item.heap != nil {
				t.item.heap.remove(&t.item)
				e.aside = true
			}
		}
	} else if e.aside {
		e.aside = false
		for _, t := range e.tasks {
			if _, isLeased := s.leased[&t.item]; !isLeased && t.item.heap == nil {
				s.timeline.push(&t.item)
			}
		}
	}
	h := &e.head
	if _, isLeased := s.leased[h]; isLeased {
		return
	}
	want := len(e.queue) > 0 && runtime.QueueRuns(e.inst.Status)
	if h.heap != nil {
		h.heap.remove(h)
	}
	if !want {
		return
	}
	h.due, h.seq, h.priority = e.queue[0].Due, e.queue[0].Seq, e.inst.Priority
	s.timeline.push(h)
}

// promote moves everything due by now from the timeline to the ready
// heap, and gives back expired leases.
func (s *Store) promote(now time.Time) {
	for it := range s.leased {
		if it.entry != nil && leaseExpired(it, now) {
			delete(s.leased, it)
			if it.task != nil {
				s.putTask(it)
			} else {
				s.reschedule(it.entry)
			}
		}
	}
	for {
		it := s.timeline.top()
		if it == nil || it.due.After(now) {
			return
		}
		s.timeline.remove(it)
		s.ready.push(it)
	}
}

// QueueStats implements runtime.QueueStater. It only reads: the
// timeline's items due by now count as due, as Claim would promote them.
func (s *Store) QueueStats(_ context.Context, now time.Time) (runtime.QueueStats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := runtime.QueueStats{Waiting: int64(len(s.timeline.items) + len(s.ready.items)), Leased: int64(len(s.leased))}
	for _, h := range [...]*indexedHeap{&s.ready, &s.timeline} {
		for _, it := range h.items {
			if it.due.After(now) {
				continue
			}
			q.Due++
			if q.OldestDue.IsZero() || it.due.Before(q.OldestDue) {
				q.OldestDue = it.due
			}
		}
	}
	return q, nil
}

// leaseUntil is stored in the item's due field while it is leased.
func leaseExpired(it *item, now time.Time) bool { return !it.due.After(now) }

func (s *Store) lease(it *item, f runtime.ClaimFilter, l *runtime.Lease) {
	if it.heap != nil {
		it.heap.remove(it)
	}
	s.tokens++
	s.leased[it] = s.tokens
	if it.task != nil {
		l.Work = it.task.work
	} else {
		l.Work = it.entry.queue[0]
	}
	l.Worker = f.Worker
	l.Until = f.Now.Add(f.Lease)
	l.Fence = s.tokens
	// While leased, due holds the lease expiry; the work keeps its own.
	it.due = l.Until
}

func hashAllowed(hashes []string, hash string) bool {
	if hashes == nil {
		return true
	}
	for _, h := range hashes {
		if h == hash {
			return true
		}
	}
	return false
}

// eligible reports whether the filter lets a worker take it: a task
// attempt needs a handler in the worker, or none in any engine (it
// fails for want of one).
func (s *Store) eligible(it *item, f runtime.ClaimFilter) bool {
	inst := &it.entry.inst
	if !hashAllowed(f.Hashes, inst.Hash) {
		return false
	}
	if it.task == nil {
		return runtime.QueueRuns(inst.Status)
	}
	if inst.Status != runtime.Active {
		return false
	}
	if f.NoTasks {
		return false
	}
	if f.Runnable == nil {
		return true
	}
	action := it.task.work.Action
	return contains(f.Runnable[inst.Hash], action) || s.orphan(inst.Hash, action)
}

func contains(actions []int, action int) bool {
	for _, a := range actions {
		if a == action {
			return true
		}
	}
	return false
}

// Claim implements runtime.Store.
func (s *Store) Claim(ctx context.Context, f runtime.ClaimFilter, l *runtime.Lease) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(f.Now)
	s.promote(f.Now)
	var skipped []*item
	defer func() {
		for _, it := range skipped {
			s.ready.push(it)
		}
	}()
	for {
		it := s.ready.top()
		if it == nil {
			return false, nil
		}
		if s.eligible(it, f) {
			s.lease(it, f, l)
			l.More = s.ready.top() != nil
			return true, nil
		}
		s.ready.remove(it)
		skipped = append(skipped, it)
	}
}

// ClaimInstance implements runtime.Store.
func (s *Store) ClaimInstance(ctx context.Context, id string, f runtime.ClaimFilter, l *runtime.Lease) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		return false, runtime.ErrNotFound
	}
	if h := &e.head; h.heap != nil && !h.due.After(f.Now) && s.eligible(h, f) {
		s.lease(h, f, l)
		return true, nil
	}
	for _, t := range e.tasks {
		if it := &t.item; it.heap != nil && !it.due.After(f.Now) && s.eligible(it, f) {
			s.lease(it, f, l)
			return true, nil
		}
	}
	return false, nil
}

// holds finds the leased item l refers to.
func (s *Store) holds(l *runtime.Lease) (*item, error) {
	e := s.entries[l.Work.Instance]
	if e == nil {
		return nil, runtime.ErrNotFound
	}
	var it *item
	if l.Work.Kind == runtime.WorkTask {
		for _, t := range e.tasks {
			if t.work.Seq == l.Work.Seq {
				it = &t.item
			}
		}
	} else if len(e.queue) > 0 && e.queue[0].Seq == l.Work.Seq {
		it = &e.head
	}
	if it == nil || s.leased[it] != l.Fence {
		return nil, runtime.ErrLostLease
	}
	return it, nil
}

// Extend implements runtime.Store.
func (s *Store) Extend(_ context.Context, l *runtime.Lease, until time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, err := s.holds(l)
	if err != nil {
		return err
	}
	it.due = until
	l.Until = until
	return nil
}

// Release implements runtime.Store.
func (s *Store) Release(_ context.Context, l *runtime.Lease) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	it, err := s.holds(l)
	if err != nil {
		return err
	}
	delete(s.leased, it)
	if it.task != nil {
		it.due = it.task.work.Due
		s.putTask(it)
	} else {
		s.reschedule(it.entry)
	}
	s.signal()
	return nil
}

// finish removes the leased item's work.
func (s *Store) finish(it *item) {
	delete(s.leased, it)
	e := it.entry
	if it.task == nil {
		copy(e.queue, e.queue[1:])
		e.queue[len(e.queue)-1] = runtime.Work{}
		e.queue = e.queue[:len(e.queue)-1]
		return
	}
	for i, t := range e.tasks {
		if t == it.task {
			e.tasks = append(e.tasks[:i], e.tasks[i+1:]...)
			break
		}
	}
}

// Commit implements runtime.Store.
func (s *Store) Commit(ctx context.Context, l *runtime.Lease, c *runtime.Commit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, err := s.holds(l)
	if err != nil {
		return err
	}
	e := it.entry
	if e.inst.Version != c.Instance.Version {
		return runtime.ErrStale
	}
	s.finish(it)
	s.apply(e, c)
	return nil
}

// Update implements runtime.Store.
func (s *Store) Update(ctx context.Context, c *runtime.Commit) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[c.Instance.ID]
	if e == nil {
		return runtime.ErrNotFound
	}
	if e.inst.Version != c.Instance.Version {
		return runtime.ErrStale
	}
	s.apply(e, c)
	return nil
}

func (s *Store) apply(e *entry, c *runtime.Commit) {
	e.inst.CopyFrom(c.Instance)
	s.writeVersion(e, c)
	s.due(e)
}

// writeVersion applies c to e, whose instance already holds the new
// state (but not yet the new version). The caller then calls due.
func (s *Store) writeVersion(e *entry, c *runtime.Commit) {
	version := e.inst.Version + 1
	e.inst.Version = version
	if c.DropWork {
		for _, t := range e.tasks {
			if t.item.heap != nil {
				t.item.heap.remove(&t.item)
			}
			delete(s.leased, &t.item)
		}
		e.tasks = e.tasks[:0]
		s.keepAtEnd(e)
	} else if c.DropTimers {
		s.dropTimers(e)
	}
	s.add(e, c.History, c.Schedule)
	s.recordChanges(e, c.History)
	if c.DropWork {
		s.noteEnded(e)
	}
}

// keepAtEnd empties e's queue as its instance ends, but for the events
// a completed instance keeps (runtime.KeptAtEnd). Only a worker's commit
// completes an instance, and it has finished the head it held, so no
// kept event is leased. (An operator's cancel drops the whole queue, a
// head a worker holds too: that worker's commit is then stale.)
func (s *Store) keepAtEnd(e *entry) {
	q := e.queue[:0]
	if e.inst.Status == runtime.Completed {
		for i := range e.queue {
			if runtime.KeptAtEnd(&e.queue[i]) {
				q = append(q, e.queue[i])
			}
		}
	}
	clear(e.queue[len(q):])
	e.queue = q
}

// dropTimers removes e's queued timer firings (a leased head stays: its
// holder finishes it).
func (s *Store) dropTimers(e *entry) {
	if len(e.queue) == 0 {
		return
	}
	keep := 0
	if _, leased := s.leased[&e.head]; leased {
		keep = 1
	}
	q := e.queue[:keep]
	for _, w := range e.queue[keep:] {
		if w.Kind != runtime.WorkTimer {
			q = append(q, w)
		}
	}
	clear(e.queue[len(q):])
	e.queue = q
}

// noteEnded notes that e has just completed or been cancelled (at its
// Updated time), for expire to remove it when the retention has passed.
func (s *Store) noteEnded(e *entry) {
	if s.retention <= 0 {
		return
	}
	s.ended = append(s.ended, endedEntry{e, e.inst.Updated})
	s.expire(e.inst.Updated)
}

// expire removes the instances whose retention has passed by now.
// They ended in order, so they are the oldest of ended.
func (s *Store) expire(now time.Time) {
	for s.endedAt < len(s.ended) {
		x := s.ended[s.endedAt]
		if x.at.Add(s.retention).After(now) {
			break
		}
		if s.entries[x.e.inst.ID] == x.e {
			delete(s.entries, x.e.inst.ID)
			if h := &x.e.head; h.heap != nil {
				h.heap.remove(h) // events it kept, not yet recorded
			}
		}
		s.ended[s.endedAt] = endedEntry{}
		s.endedAt++
	}
	if s.endedAt > 1024 && s.endedAt*2 > len(s.ended) {
		s.ended = s.ended[:copy(s.ended, s.ended[s.endedAt:])]
		s.endedAt = 0
	}
}

// Complete implements runtime.Store.
func (s *Store) Complete(ctx context.Context, l *runtime.Lease, history []runtime.HistoryEntry, schedule []runtime.Work) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	it, err := s.holds(l)
	if err != nil {
		return err
	}
	s.finish(it)
	s.record(it.entry, history, schedule)
	return nil
}

// record appends history and schedules work for e without changing it.
func (s *Store) record(e *entry, history []runtime.HistoryEntry, schedule []runtime.Work) {
	s.add(e, history, schedule)
	s.due(e)
}

// add appends history and schedules work for e.
func (s *Store) add(e *entry, history []runtime.HistoryEntry, schedule []runtime.Work) {
	s.appendHistory(e, history)
	for _, w := range schedule {
		s.schedule(e, w)
	}
}

// due puts e's next due work on the timeline and wakes the workers.
func (s *Store) due(e *entry) {
	s.reschedule(e)
	s.signal()
}

func (s *Store) appendHistory(e *entry, history []runtime.HistoryEntry) {
	for i := range history {
		if len(e.history) < s.historyCap {
			e.history = append(e.history, history[i])
			continue
		}
		e.history[e.histAt] = history[i]
		if e.histAt++; e.histAt == len(e.history) {
			e.histAt = 0
		}
	}
}

// recordChanges keeps the starts and transitions of history, committed
// in e, in the changelog.
func (s *Store) recordChanges(e *entry, history []runtime.HistoryEntry) {
	if !s.changelog {
		return
	}
	for i := range history {
		if c, ok := runtime.ChangeOf(&e.inst, &history[i]); ok {
			s.changes[s.changeSeq%changeRing] = c
			s.changeSeq++
		}
	}
}

// NextDue implements runtime.Store. A heap's top is nearly always work
// the filter admits; only when it is not are the heaps searched.
func (s *Store) NextDue(_ context.Context, f runtime.ClaimFilter) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var next time.Time
	found := false
	consider := func(t time.Time) {
		if !found || t.Before(next) {
			next, found = t, true
		}
	}
	for _, h := range [...]*indexedHeap{&s.ready, &s.timeline} {
		if it := h.top(); it != nil && s.eligible(it, f) {
			consider(it.due)
			continue
		}
		for _, it := range h.items {
			if s.eligible(it, f) {
				consider(it.due)
			}
		}
	}
	for it := range s.leased {
		consider(it.due) // an expiring lease makes work due again
	}
	return next, found, nil
}

// Changes implements runtime.Store; the cursor is a change number.
func (s *Store) Changes(_ context.Context, cursor string, limit int) ([]runtime.Change, string, error) {
	after := uint64(0)
	if cursor != "" {
		n, err := strconv.ParseUint(cursor, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("%w %q", runtime.ErrBadCursor, cursor)
		}
		after = n
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	oldest := uint64(0)
	if s.changeSeq > changeRing {
		oldest = s.changeSeq - changeRing
	}
	if after < oldest && cursor != "" {
		return nil, "", fmt.Errorf("%w (cursor %d; the oldest entry kept is %d)", runtime.ErrCursorTrimmed, after, oldest+1)
	}
	if after > s.changeSeq {
		// Not a cursor this store gave: a reader would skip the changes
		// up to it, as the Redis store's would (checkAhead there).
		return nil, "", fmt.Errorf("%w %q: ahead of the changelog (its last entry: %d)", runtime.ErrBadCursor, cursor, s.changeSeq)
	}
	after = max(after, oldest)
	var out []runtime.Change
	for i := after; i < s.changeSeq && (limit <= 0 || len(out) < limit); i++ {
		c := s.changes[i%changeRing]
		c.Cursor = strconv.FormatUint(i+1, 10)
		out = append(out, c)
	}
	return out, strconv.FormatUint(after+uint64(len(out)), 10), nil
}

var _ runtime.InlineStore = (*Store)(nil)

// Inline implements runtime.InlineStore.
func (s *Store) Inline(ctx context.Context, id string, decide func(*runtime.Instance, *runtime.Commit) bool) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.entries[id]
	if e == nil {
		return false, runtime.ErrNotFound
	}
	if e.inst.Status != runtime.Active || len(e.queue) > 0 {
		return false, nil
	}
	c := &s.inline
	*c = runtime.Commit{}
	if decide(&e.inst, c) {
		s.writeVersion(e, c)
	} else {
		s.add(e, c.History, c.Schedule)
	}
	// Nothing of e was queued, so only newly scheduled work can be due.
	if len(c.Schedule) > 0 {
		s.due(e)
	}
	return true, nil
}
