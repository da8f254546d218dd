package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fsmc/fsmc/compiler/ir"
)

// ErrRejected is returned for an event or operation the instance's
// status does not allow (an event to a completed instance, say).
var ErrRejected = errors.New("rejected")

// ErrUnknownMachine and ErrUnknownEvent match (errors.Is) the errors of
// a start that names a machine the engine does not run, and of an event
// the instance's machine does not have.
var (
	ErrUnknownMachine = errors.New("unknown machine")
	ErrUnknownEvent   = errors.New("unknown event")
)

// described is an error that reads as its text and matches (wraps) its
// kind, such as ErrUnknownEvent, with the text saying what was unknown.
type described struct {
	kind error
	text string
}

func (d *described) Error() string { return d.text }
func (d *described) Unwrap() error { return d.kind }

// noEvent is the error of an event machine m, an instance's version,
// does not have. When the engine starts another version of the machine,
// the error names the instance's: the event may be one of the other's.
func (e *Engine) noEvent(m *machine, event string) error {
	e.mu.RLock()
	current := e.byName[m.ir.Name]
	e.mu.RUnlock()
	if current != nil && current != m {
		return &described{ErrUnknownEvent, fmt.Sprintf("machine %s@%s, the instance's version, has no event %q (new instances start %s@%s)",
			m.ir.Name, ir.ShortHash(m.ir.Hash), event, m.ir.Name, ir.ShortHash(current.ir.Hash))}
	}
	return &described{ErrUnknownEvent, fmt.Sprintf("machine %s has no event %q", m.ir.Name, event)}
}

// Options configure an Engine; the zero value is usable.
type Options struct {
	Clock  Clock         // RealClock if nil
	Worker string        // this worker's name, for leases ("engine" if empty)
	Lease  time.Duration // how long a claim lasts without renewal (15s if 0)
	Logger *slog.Logger  // discarded if nil
	// Jitter returns a number in [0, 1) for retry jitter; math/rand/v2
	// if nil.
	Jitter func() float64
	// OnChange is called after each transition this engine commits.
	OnChange func(Change)
	// OnHistory is called for each history entry this engine records
	// (every kind: starts, transitions, timers, attempts and failures,
	// unhandled and stale work, faults, operators' retries and cancels),
	// with the instance's ID.
	OnHistory func(id string, h HistoryEntry)
	// Observer is told what the engine does, for metrics.
	Observer Observer
	// StopGrace is how long Run lets running tasks finish once it is
	// told to stop (10s if 0; negative: not at all); what is still
	// running then is cancelled and given back.
	StopGrace time.Duration
	// RegistryCheck is how often Run registers its machines again, in
	// case the store lost them (a Redis restarted without its data, or
	// flushed), and at once when the store answers after failing (10s
	// if 0). Registering a machine the store holds costs one round trip.
	RegistryCheck time.Duration
}

// Engine runs machines on a Store. Its methods are safe for concurrent
// use.
type Engine struct {
	store  Store
	opts   Options
	mu     sync.RWMutex
	byHash map[string]*machine
	byName map[string]*machine // the version Start uses
	// loaded holds versions read from the store for instances of
	// versions this engine did not register (hash -> *machine).
	loaded sync.Map
	hashes []string
	// callers holds scratch workers for the calling goroutine's paths
	// (Fire, RunDue), one per call, so that calls run at once, and a
	// handler may call Fire itself; Run's workers have their own. A
	// sync.Pool takes and gives back without an atomic operation. A
	// worker it drops (one unused over two garbage collections, or one
	// the race detector drops at random) is made again, so Fire
	// allocates nothing once the pool holds one per processor busy
	// firing.
	callers    sync.Pool
	runnable   map[string][]int // per machine hash, the actions with a handler
	generation atomic.Uint64    // bumped by Register
	claimFails atomic.Bool      // a worker's last claim failed (see workLoop)
	claimSaid  atomic.Int64     // when (unix ns) a failed claim was last logged as an error (see claimFailed)
	recovered  chan struct{}    // the store answers again after failing (see keepRegistered)
	busy       atomic.Int64     // Run's workers claiming or handling work (see Idle)
	claims     atomic.Uint64    // claims Run's workers began (see Idle)
	instances  sync.Pool        // *Instance scratch for Send
	stamper    stamper          // the clock's cheaper reading for Fire, if it has one
	inline     InlineStore      // the store, if Fire can decide under its lock
	unobserved bool             // no Observer, OnHistory or OnChange: notify has nothing to do
}

// stamper is a Clock with a cheaper reading to record in history
// entries (RealClock.Stamp).
type stamper interface{ Stamp() time.Time }

// stampsPerReading is how many of Fire's transitions a scratch worker
// stamps before it reads the clock again. The refresh behind the stamps
// is a goroutine, which a loop of Fire calls keeps from running while
// it holds every processor (until the scheduler preempts it, about
// every 10 ms); reading the clock every so often bounds how far the
// stamps lag then, at about 1 ns per event.
const stampsPerReading = 256

// Handler runs one attempt of an action. It returns the event to
// deliver (Emit), nothing (a zero Result: done follows), Pending (the
// attempt stays open: the instance is driven by other events), or an
// error: a failed attempt, retried per the task's policy unless marked
// Permanent.
type Handler func(ctx context.Context, call *Call) (Result, error)

// Call is what a handler is given.
type Call struct {
	Machine        string
	Instance       string
	State          string
	Action         string
	Context        Fields // read-only
	Attempt        int    // 1 for the first attempt
	IdempotencyKey string // the same for every attempt of one state visit (see IdempotencyKey)
	Deadline       time.Time
}

// Result is what a handler returns on success.
type Result struct {
	Event   string
	Payload map[string]any
	pending bool
	note    string // for a failure's message: what an external command wrote on stderr
}

// Emit returns a Result delivering event with payload.
func Emit(event string, payload map[string]any) Result {
	return Result{Event: event, Payload: payload}
}

// Pending is a Result that leaves the attempt open: nothing is
// delivered, and the instance moves on only through other events.
var Pending = Result{pending: true}

// ErrPending, returned by a handler as its error, is Pending: the typed
// handlers of generated code, whose results are the action's events,
// return it to leave the attempt open.
var ErrPending = errors.New("the attempt stays open")

type permanentError struct{ err error }

func (p permanentError) Error() string {
	if p.err == nil {
		return "permanent failure"
	}
	return p.err.Error()
}
func (p permanentError) Unwrap() error { return p.err }

// Permanent marks err as not worth retrying: the task fails at once.
// Permanent(nil) is such a failure too, with the message "permanent
// failure".
func Permanent(err error) error { return permanentError{err} }

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// machine is a registered machine with its lookups and handlers.
type machine struct {
	ir       *ir.Machine
	events   map[string]int
	states   map[string]int
	handlers []Handler // by action id; nil when this engine has none
}

// New returns an engine on store.
func New(store Store, opts Options) *Engine {
	if opts.Clock == nil {
		opts.Clock = RealClock{}
	}
	if opts.Worker == "" {
		opts.Worker = "engine"
	}
	if opts.Lease <= 0 {
		opts.Lease = 15 * time.Second
	}
	if opts.StopGrace == 0 {
		opts.StopGrace = 10 * time.Second
	}
	if opts.RegistryCheck <= 0 {
		opts.RegistryCheck = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	unobserved := opts.Observer == nil && opts.OnHistory == nil && opts.OnChange == nil
	if opts.Observer == nil {
		opts.Observer = noObserver{}
	}
	e := &Engine{store: store, opts: opts, byHash: map[string]*machine{}, byName: map[string]*machine{}, recovered: make(chan struct{}, 1)}
	e.callers.New = func() any { return e.newWorker() }
	e.instances.New = func() any { return &Instance{} }
	e.stamper, _ = opts.Clock.(stamper)
	e.inline, _ = store.(InlineStore)
	e.unobserved = unobserved
	return e
}

// Store returns the engine's store.
func (e *Engine) Store() Store { return e.store }

// Clock returns the engine's clock.
func (e *Engine) Clock() Clock { return e.opts.Clock }

// Register adds a machine (validated IR) with handlers by action name.
// Actions without a handler are not run by this engine: their attempts
// wait for an engine that has one. On the embedded store, whose engines
// all live in this process, an attempt that no engine has a handler for
// fails instead ("no handler for action X"), and is retried or parked
// like any failure. A machine registered again under the
// same name becomes the version that Start uses; instances of the older
// version keep running on it. The same version registered again takes
// the handlers given then, in place of the earlier ones.
func (e *Engine) Register(ctx context.Context, m *ir.Machine, handlers map[string]Handler) error {
	if m == nil {
		return errors.New("register: no machine (nil)")
	}
	if m.Hash == "" {
		return fmt.Errorf("machine %s has no hash: encode or load its IR first", m.Name)
	}
	rt := &machine{ir: m, events: map[string]int{}, states: map[string]int{}, handlers: make([]Handler, len(m.Actions))}
	for i, ev := range m.Events {
		rt.events[ev.Name] = i
	}
	for i, s := range m.States {
		rt.states[s.Name] = i
	}
	for name, h := range handlers {
		found := false
		for i, a := range m.Actions {
			if a.Name == name {
				rt.handlers[i] = h
				found = true
			}
		}
		if !found {
			return fmt.Errorf("machine %s has no action %q", m.Name, name)
		}
	}
	if err := e.store.PutMachine(ctx, m); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, known := e.byHash[m.Hash]; !known {
		e.hashes = append(e.hashes, m.Hash)
	}
	e.byHash[m.Hash] = rt
	e.byName[m.Name] = rt
	runnable := map[string][]int{}
	for hash, mr := range e.byHash {
		runnable[hash] = []int{}
		for i, h := range mr.handlers {
			if h != nil {
				runnable[hash] = append(runnable[hash], i)
			}
		}
	}
	e.runnable = runnable
	if d, ok := e.store.(HandlerDirectory); ok {
		d.Announce(e, runnable)
	}
	e.generation.Add(1)
	return nil
}

func (e *Engine) machineByHash(hash string) *machine {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.byHash[hash]
}

func (e *Engine) machineByName(name string) (*machine, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if m := e.byName[name]; m != nil {
		return m, nil
	}
	names := make([]string, 0, len(e.byName))
	for n := range e.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return nil, &described{ErrUnknownMachine, fmt.Sprintf("unknown machine %q (this engine runs: %v)", name, names)}
}

// Adopt registers the machine stored under hash, without handlers, so
// this engine can start and inspect its instances (for operator tools).
func (e *Engine) Adopt(ctx context.Context, hash string) (*ir.Machine, error) {
	if m := e.machineByHash(hash); m != nil {
		return m.ir, nil
	}
	m, err := e.store.Machine(ctx, hash)
	if err != nil {
		return nil, err
	}
	return m, e.Register(ctx, m, nil)
}

// StartOptions configure Start.
type StartOptions struct {
	Priority int  // 0 (lowest) to 9
	IfAbsent bool // an existing ID is not an error
}

// Start creates an instance of the named machine in its initial state,
// with the given context fields (the rest take their defaults).
func (e *Engine) Start(ctx context.Context, machineName, id string, fields map[string]any, opts StartOptions) error {
	m, err := e.machineByName(machineName)
	if err != nil {
		return err
	}
	values, err := Values(m.ir.Context, nil, fields)
	if err != nil {
		return fmt.Errorf("context: %w", err)
	}
	return e.StartValues(ctx, machineName, id, values, opts)
}

// StartValues is Start with typed context values, in field order,
// checked as Start's are (CheckValues).
func (e *Engine) StartValues(ctx context.Context, machineName, id string, values []ir.Value, opts StartOptions) error {
	m, err := e.machineByName(machineName)
	if err != nil {
		return err
	}
	if err := CheckID(id); err != nil {
		return err
	}
	if opts.Priority < 0 || opts.Priority > 9 {
		return fmt.Errorf("priority %d is out of range (0-9)", opts.Priority)
	}
	if err := CheckValues(m.ir.Context, values); err != nil {
		return fmt.Errorf("context: %w", err)
	}
	now := e.opts.Clock.Now()
	inst := &Instance{ID: id, Machine: m.ir.Name, Hash: m.ir.Hash, State: m.ir.Initial, Context: values,
		Status: Active, Visit: 1, Priority: opts.Priority, Created: now, Updated: now}
	w := e.newWorker()
	w.reset()
	status, err := w.enter(m, inst.State, inst.Visit, inst.Context, now)
	if err != nil {
		return fmt.Errorf("entering the initial state: %w", err)
	}
	inst.Status = status
	w.history = append(w.history, HistoryEntry{Time: now, Kind: HistStart, Version: 1, From: -1, To: inst.State, Event: -1})
	err = e.store.Create(ctx, inst, w.schedule, w.history)
	if errors.Is(err, ErrExists) && opts.IfAbsent {
		return nil
	}
	if err != nil {
		return named(id, err)
	}
	e.notify(id, inst, w.history)
	return nil
}

// Send queues event for instance id, with its payload fields. It fails
// for an unknown instance or event, a wrong payload, or an instance that
// has completed or been cancelled.
func (e *Engine) Send(ctx context.Context, id, event string, payload map[string]any) error {
	return e.send(ctx, "", id, event, payload)
}

// SendTo is Send to an instance of the named machine only: an instance
// of another machine is refused (ErrWrongMachine), and nothing is sent.
// The typed API of generated code sends this way, since two machines may
// have events of one name.
func (e *Engine) SendTo(ctx context.Context, machine, id, event string, payload map[string]any) error {
	return e.send(ctx, machine, id, event, payload)
}

// ErrWrongMachine: the instance belongs to another machine than the one
// named.
var ErrWrongMachine = errors.New("wrong machine")

func (e *Engine) send(ctx context.Context, machine, id, event string, payload map[string]any) error {
	inst := e.instances.Get().(*Instance)
	defer e.instances.Put(inst)
	if err := e.store.Load(ctx, id, inst); err != nil {
		return named(id, err)
	}
	if machine != "" && inst.Machine != machine {
		return fmt.Errorf("%w: instance %s belongs to machine %s, not %s", ErrWrongMachine, id, inst.Machine, machine)
	}
	m, err := e.machineFor(ctx, inst)
	if err != nil {
		return err
	}
	ev, ok := m.events[event]
	if !ok || ev < 2 {
		return e.noEvent(m, event)
	}
	// Refused here before the payload is checked; the store checks
	// again with its write, as the end may come in between.
	if inst.Status == Completed || inst.Status == Cancelled {
		return fmt.Errorf("%w: instance %s is %s", ErrRejected, id, inst.Status)
	}
	var values []ir.Value
	if len(payload) > 0 || len(m.ir.Events[ev].Params) > 0 {
		if values, err = Values(m.ir.Events[ev].Params, nil, payload); err != nil {
			return fmt.Errorf("event %s: %w", event, err)
		}
	}
	return e.store.Enqueue(ctx, Work{Kind: WorkEvent, Instance: id, Due: e.opts.Clock.Now(), Event: ev, Payload: values})
}

// Fire sends event and handles the instance's due work on the calling
// goroutine (tasks included), for programs that drive instances
// directly. On a store that can decide in place (the embedded store),
// an instance with nothing queued handles the event without a queue
// round trip; the outcome is the same as Send followed by RunDue.
func (e *Engine) Fire(ctx context.Context, id, event string, payload map[string]any) error {
	w := e.caller()
	defer e.putCaller(w)
	if is := e.inline; is != nil {
		w.reset()
		w.fireName, w.firePay, w.fireErr, w.fireQueue = event, payload, nil, false
		if e.stamper != nil && w.stampsLeft > 0 {
			w.fire.Due, w.stamped = e.stamper.Stamp(), true
			w.stampsLeft--
		} else {
			w.fire.Due = e.opts.Clock.Now()
			w.stampsLeft = stampsPerReading
		}
		ran, err := is.Inline(ctx, id, w.inlineCall)
		w.firePay = nil
		switch {
		case err != nil:
			return named(id, err)
		case w.fireErr != nil:
			return w.fireErr
		case ran && !w.fireQueue:
			e.notify(id, &w.noted, w.history)
			if len(w.schedule) == 0 {
				return nil
			}
			return e.drainInstance(ctx, w, id)
		}
	}
	if err := e.Send(ctx, id, event, payload); err != nil {
		return err
	}
	return e.drainInstance(ctx, w, id)
}

// drainInstance handles an instance's due work on the calling goroutine,
// with w.
func (e *Engine) drainInstance(ctx context.Context, w *worker, id string) error {
	for {
		ok, err := e.store.ClaimInstance(ctx, id, e.filter(), &w.lease)
		if err != nil || !ok {
			return err
		}
		if err := e.process(ctx, w); err != nil {
			return err
		}
	}
}

// inlineDecide is Fire's decision, run by the store under its lock: it
// must not call the store.
func (w *worker) inlineDecide(inst *Instance, c *Commit) bool {
	m := w.machineCached(inst.Hash)
	if m == nil {
		w.fireQueue = true
		return false
	}
	ev, ok := w.eventCached(m, w.fireName)
	if !ok || ev < 2 {
		w.fireErr = w.e.noEvent(m, w.fireName)
		return false
	}
	w.fire.Kind, w.fire.Instance, w.fire.Event, w.fire.Visit, w.fire.Payload = WorkEvent, inst.ID, ev, 0, nil
	if params := m.ir.Events[ev].Params; len(w.firePay) > 0 || len(params) > 0 {
		if cap(w.firePayload) < len(params) {
			w.firePayload = make([]ir.Value, len(params))
		}
		// Guards and sets read the payload while deciding; a context
		// keeps copies of its values, so the worker's buffer serves the
		// next event.
		payload, err := valuesInto(w.firePayload[:len(params)], params, nil, w.firePay)
		if err != nil {
			w.fireErr = fmt.Errorf("event %s: %w", w.fireName, err)
			return false
		}
		w.fire.Payload = payload
	}
	out := w.decide(m, inst, &w.fire, w.fire.Due)
	w.commitOf(inst, c)
	if !w.e.unobserved {
		w.noted.ID, w.noted.Machine, w.noted.Hash, w.noted.Status = inst.ID, inst.Machine, inst.Hash, inst.Status
	}
	return out == changed
}

// eventCached is m's event id by name, with a one-entry cache per
// worker.
func (w *worker) eventCached(m *machine, name string) (int, bool) {
	if w.cachedEventOf == m && w.cachedEventName == name {
		return w.cachedEvent, true
	}
	ev, ok := m.events[name]
	if ok {
		w.cachedEventOf, w.cachedEventName, w.cachedEvent = m, name, ev
	}
	return ev, ok
}

// machineCached is machineByHash with a one-entry cache per worker.
func (w *worker) machineCached(hash string) *machine {
	if w.cached != nil && w.cachedHash == hash && w.cachedGen == w.e.generation.Load() {
		return w.cached
	}
	w.cachedGen = w.e.generation.Load()
	w.cached = w.e.machineByHash(hash)
	w.cachedHash = hash
	return w.cached
}

// machineFor finds the machine version an instance runs, loading it from
// the store (once) when this engine has not registered it.
func (e *Engine) machineFor(ctx context.Context, inst *Instance) (*machine, error) {
	if m := e.machineByHash(inst.Hash); m != nil {
		return m, nil
	}
	if m, ok := e.loaded.Load(inst.Hash); ok {
		return m.(*machine), nil
	}
	irm, err := e.store.Machine(ctx, inst.Hash)
	if err != nil {
		return nil, fmt.Errorf("instance %s runs machine %s version %s, which this engine does not know: %w", inst.ID, inst.Machine, inst.Hash, err)
	}
	m := &machine{ir: irm, events: eventIndex(irm), states: stateIndex(irm), handlers: make([]Handler, len(irm.Actions))}
	e.loaded.Store(inst.Hash, m)
	return m, nil
}

func eventIndex(m *ir.Machine) map[string]int {
	out := map[string]int{}
	for i, ev := range m.Events {
		out[ev.Name] = i
	}
	return out
}

func stateIndex(m *ir.Machine) map[string]int {
	out := map[string]int{}
	for i, s := range m.States {
		out[s.Name] = i
	}
	return out
}

// View is an instance as reported to users: names resolved, history
// included.
type View struct {
	Instance
	StateName string
	Fields    Fields
	History   []HistoryEntry
	IR        *ir.Machine
}

// Get returns an instance with its history.
func (e *Engine) Get(ctx context.Context, id string) (*View, error) {
	v := &View{}
	if err := e.store.Load(ctx, id, &v.Instance); err != nil {
		return nil, named(id, err)
	}
	m, err := e.machineFor(ctx, &v.Instance)
	if err != nil {
		return nil, err
	}
	v.IR = m.ir
	v.StateName = m.ir.States[v.State].Name
	v.Fields = Fields{schema: m.ir.Context, values: v.Context}
	v.History, err = e.store.History(ctx, id)
	return v, err
}

// List returns instances matching f.
func (e *Engine) List(ctx context.Context, f ListFilter) ([]*Instance, error) {
	return e.store.List(ctx, f)
}

// Retry resumes a failed instance: a task that failed for good runs
// again from its first attempt; after an expression fault, the event that
// caused it has been consumed and the instance goes on with the next (a
// timer whose firing faulted fires again).
func (e *Engine) Retry(ctx context.Context, id string) error {
	return e.operate(ctx, id, func(m *machine, inst *Instance, w *worker, now time.Time) error {
		if inst.Status != Failed {
			return fmt.Errorf("%w: instance %s is %s, not failed", ErrRejected, id, inst.Status)
		}
		inst.Status = Active
		inst.Failure = ""
		if inst.FailedTask {
			inst.FailedTask = false
			if t := m.ir.States[inst.State].Task; t != nil {
				w.schedule = append(w.schedule, Work{Kind: WorkTask, Due: now, Visit: inst.Visit, Action: t.Action, Attempt: 1})
			}
		}
		if t := inst.FailedTimer - 1; t >= 0 {
			inst.FailedTimer = 0
			if t < len(m.ir.States[inst.State].Timers) {
				w.schedule = append(w.schedule, Work{Kind: WorkTimer, Due: now, Visit: inst.Visit, Timer: t})
			}
		}
		w.history = append(w.history, HistoryEntry{Time: now, Kind: HistRetry, Version: inst.Version + 1, From: -1, To: -1, Event: -1})
		return nil
	})
}

// Cancel ends an instance at once; its pending work is dropped.
func (e *Engine) Cancel(ctx context.Context, id string) error {
	return e.operate(ctx, id, func(m *machine, inst *Instance, w *worker, now time.Time) error {
		if inst.Status == Completed || inst.Status == Cancelled {
			return fmt.Errorf("%w: instance %s is already %s", ErrRejected, id, inst.Status)
		}
		inst.Status = Cancelled
		w.commit.DropWork = true
		w.history = append(w.history, HistoryEntry{Time: now, Kind: HistCancel, Version: inst.Version + 1, From: -1, To: -1, Event: -1})
		return nil
	})
}

// operate applies an operator's change with a fenced update: on a store
// that can hold the instance (InstanceHolder), from its read to its
// write; elsewhere retrying when a worker commits in between.
func (e *Engine) operate(ctx context.Context, id string, change func(*machine, *Instance, *worker, time.Time) error) error {
	if h, ok := e.store.(InstanceHolder); ok {
		return h.Hold(ctx, id, func(ctx context.Context) error { return e.operateTries(ctx, id, change) })
	}
	return e.operateTries(ctx, id, change)
}

// operateTries reads instance id, applies change and writes it back,
// trying again while the write finds it stale.
func (e *Engine) operateTries(ctx context.Context, id string, change func(*machine, *Instance, *worker, time.Time) error) error {
	w := e.newWorker()
	for tries := 0; ; tries++ {
		w.reset()
		if err := e.store.Load(ctx, id, &w.inst); err != nil {
			return named(id, err)
		}
		m, err := e.machineFor(ctx, &w.inst)
		if err != nil {
			return err
		}
		now := e.opts.Clock.Now()
		if err := change(m, &w.inst, w, now); err != nil {
			return err
		}
		w.inst.Updated = now
		w.commit = Commit{Instance: &w.inst, History: w.history, Schedule: w.schedule, DropWork: w.commit.DropWork}
		err = e.store.Update(ctx, &w.commit)
		if errors.Is(err, ErrStale) && tries < 10 {
			continue
		}
		if err == nil {
			e.notify(id, &w.inst, w.history)
		}
		return err
	}
}

// notify reports history committed for instance id to the observers,
// and its starts and transitions as changes. inst holds the committed
// ID, Machine, Hash and Status; it may be nil when history has neither.
func (e *Engine) notify(id string, inst *Instance, history []HistoryEntry) {
	if e.unobserved {
		return
	}
	for i := range history {
		h := &history[i]
		if h.Kind == HistTransition || h.Kind == HistTimer {
			e.opts.Observer.Transitioned(inst.Machine)
		}
		if e.opts.OnHistory != nil {
			e.opts.OnHistory(id, *h)
		}
		if e.opts.OnChange != nil {
			if c, ok := ChangeOf(inst, h); ok {
				e.opts.OnChange(c)
			}
		}
	}
}

// MaxIDLength is the longest instance ID, in bytes.
const MaxIDLength = 255

// CheckID refuses an instance ID that every listing and log line could
// not show as one word of one line: empty, over MaxIDLength bytes, not
// UTF-8, or with control characters, white space or invisible
// formatting characters (Unicode's Cf).
func CheckID(id string) error {
	switch {
	case id == "":
		return errors.New("an instance needs an ID")
	case len(id) > MaxIDLength:
		return fmt.Errorf("instance ID of %d bytes is too long (at most %d)", len(id), MaxIDLength)
	case !utf8.ValidString(id):
		return fmt.Errorf("instance ID %q is not UTF-8 text", id)
	}
	for _, r := range id {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return fmt.Errorf("instance ID %q has white space or a control character (%U)", id, r)
		}
		if unicode.Is(unicode.Cf, r) {
			// Zero-width characters and direction overrides: an ID would
			// show as another, or reorder the line it is listed on.
			return fmt.Errorf("instance ID %q has an invisible formatting character (%U)", id, r)
		}
	}
	return nil
}

// named says which instance was not found, or already exists.
func named(id string, err error) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("instance %q: %w", id, err)
	case errors.Is(err, ErrExists):
		return &described{err, fmt.Sprintf("instance %q already exists", id)}
	}
	return err
}

// filter is what this engine can claim.
func (e *Engine) filter() ClaimFilter {
	e.mu.RLock()
	hashes, runnable := e.hashes, e.runnable
	e.mu.RUnlock()
	return ClaimFilter{Worker: e.opts.Worker, Hashes: hashes, Runnable: runnable, Now: e.opts.Clock.Now(), Lease: e.opts.Lease}
}

// NextDue returns the earliest time, if any, at which work this engine
// can take falls due (or a lease on some expires).
func (e *Engine) NextDue(ctx context.Context) (time.Time, bool, error) {
	return e.store.NextDue(ctx, e.filter())
}

// caller takes a scratch worker for the calling goroutine, and
// putCaller gives it back.
func (e *Engine) caller() *worker     { return e.callers.Get().(*worker) }
func (e *Engine) putCaller(w *worker) { e.callers.Put(w) }

// Idle reports whether Run's workers hold no work and none is due now:
// what a caller of Start or Send waits for to see all that follows
// from it, while Run handles the work.
func (e *Engine) Idle(ctx context.Context) (bool, error) {
	claims := e.claims.Load()
	if e.busy.Load() > 0 {
		return false, nil
	}
	next, found, err := e.NextDue(ctx)
	if err != nil || found && !next.After(e.opts.Clock.Now()) {
		return false, err
	}
	// A worker counts its claim before it makes it: one that took the
	// due work meanwhile is seen here, busy still or done with it (and
	// what followed from it may be due).
	return e.busy.Load() == 0 && e.claims.Load() == claims, nil
}

// RunDue handles work until nothing is due, on the calling goroutine,
// and returns how many items it handled.
func (e *Engine) RunDue(ctx context.Context) (int, error) {
	w := e.caller()
	defer e.putCaller(w)
	n := 0
	for ctx.Err() == nil {
		ok, err := e.store.Claim(ctx, e.filter(), &w.lease)
		if err != nil {
			return n, err
		}
		if !ok {
			return n, nil
		}
		if err := e.process(ctx, w); err != nil {
			return n, err
		}
		n++
	}
	return n, ctx.Err()
}
