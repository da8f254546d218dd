package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	goruntime "runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/runtime"
)

// scenario runs the stdin command language of `fsmc run` on the
// embedded store: each command, then all the work it makes due, in
// order, on one goroutine, so the changelog is deterministic.
type scenario struct {
	*env
	engine   *runtime.Engine
	clock    runtime.Clock
	virtual  bool
	json     bool
	machines map[string]*ir.Machine
	line     int
	failed   bool // an expectation failed or a command was refused
	// machine maps instance IDs to machine names, for notes (workers
	// read it on the real clock: machineMu).
	machine   map[string]string
	machineMu sync.Mutex

	// Each instance's steps (transitions and failed attempts) in one
	// runDue, counted in runs of loopLimit. An instance whose run took
	// less than loopTime is looping: with virtual time such a run is at
	// one instant; on the real clock it is faster than a step a
	// millisecond, which no timer of 1 ms or more gives. stop then ends
	// the runDue (virtual time) or Run's workers (the real clock), and
	// the scenario stops. An event the scenario sent gives its instance
	// one step that does not count (sent: those not yet taken), so that
	// a backlog the instance handles at once, after a retry say, is not
	// taken for a loop.
	loopMu   sync.Mutex
	steps    map[string]stepRun
	sent     map[string]int
	looping  string
	loopTook time.Duration // the looping instance's run
	stop     context.CancelFunc
	reported bool // the loop was refused (on the scenario's goroutine)
}

// stepRun is an instance's current run of steps, and when it began.
type stepRun struct {
	n     int
	first time.Time
}

// loopLimit is how many steps one instance may take at one instant:
// only a loop (timers with no delay, a task whose result leads back to
// its state, retries without backoff) takes more, and virtual time
// would never move on, nor the real clock's workers ever be idle.
const loopLimit = 10000

// loopTime is how long loopLimit steps of one instance must take at
// least, one a millisecond.
const loopTime = loopLimit * time.Millisecond

// settleYields is how many times settle yields before it waits.
const settleYields = 20

func (s *scenario) run(ctx context.Context) error {
	in := bufio.NewScanner(s.stdin)
	in.Buffer(make([]byte, 64*1024), maxLine)
	lines := make(chan string)
	done := make(chan error, 1)
	go func() {
		for in.Scan() {
			lines <- in.Text()
		}
		done <- in.Err()
		close(lines)
	}()
	for {
		select {
		case <-ctx.Done():
			return s.finish(ctx, fmt.Sprintf("while waiting for line %d", s.line+1))
		case line, ok := <-lines:
			if ctx.Err() != nil { // both were ready: the signal wins
				return s.finish(ctx, fmt.Sprintf("before line %d", s.line+1))
			}
			if !ok {
				err := <-done
				if errors.Is(err, bufio.ErrTooLong) {
					s.line++
					s.refuse("longer than %d MiB; the scenario stops here", maxLine>>20)
					return exit(ExitFound)
				}
				if err != nil {
					return usageError("fsmc run: reading stdin: %v", err)
				}
				return s.finish(ctx, fmt.Sprintf("after the last line (%d), finishing the work due", s.line))
			}
			s.line++
			if s.line == 1 {
				line = strings.TrimPrefix(line, "\uFEFF") // a byte order mark, as editors on some systems write
			}
			s.command(ctx, strings.TrimSpace(stripComment(line)))
			if ctx.Err() != nil {
				return s.finish(ctx, fmt.Sprintf("at line %d", s.line))
			}
		}
	}
}

// maxLine is the longest line a scenario may have.
const maxLine = 16 << 20

// finish handles the work that is due, then reports. A scenario stopped
// by a signal did not run to its end (its expectations are unchecked):
// it fails.
// where says where the scenario was when the signal came.
func (s *scenario) finish(ctx context.Context, where string) error {
	if ctx.Err() == nil {
		s.runDue(ctx)
	}
	if ctx.Err() != nil {
		fmt.Fprintf(s.stderr, "fsmc run: stopped by a signal %s: the scenario did not finish\n", where)
		return exit(ExitFound)
	}
	if s.failed {
		return exit(ExitFound)
	}
	return nil
}

func (s *scenario) refuse(format string, args ...any) {
	fmt.Fprintf(s.stderr, "line %d: %s\n", s.line, graphic(fmt.Sprintf(format, args...)))
	s.failed = true
}

// graphic escapes what a terminal would not show as text (control
// characters, bytes that are not UTF-8), as Go quotes them: a message
// echoes the scenario's words, and a failure a command's words, and
// each stays one line.
func graphic(msg string) string {
	var b strings.Builder
	for i, r := range msg {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(msg[i:], "\uFFFD"): // a byte that is not UTF-8 (a U+FFFD written out is text)
			fmt.Fprintf(&b, "\\x%02x", msg[i])
		case unicode.IsGraphic(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToGraphic(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// runDue handles the work that is due: on the scenario's goroutine with
// virtual time; on the real clock it waits until Run's workers have.
func (s *scenario) runDue(ctx context.Context) {
	if !s.virtual {
		if s.newInstant(nil) {
			s.settle(ctx)
		}
		if id := s.loopingID(); id != "" && !s.reported {
			s.reported = true
			s.refuse("%s took %d steps (transitions and failed attempts) in %v, with no command between (a loop of timers with no delay, or retries with no backoff?); the scenario stops here",
				id, loopLimit, s.loopTook.Round(time.Millisecond))
		}
		return
	}
	due, stop := context.WithCancel(ctx)
	defer stop()
	if !s.newInstant(stop) {
		return
	}
	_, err := s.engine.RunDue(due)
	if id := s.loopingID(); id != "" {
		s.refuse("%s took %d steps (transitions and failed attempts) at %s with no time passing (a loop of timers with no delay, or retries with no backoff?); the scenario stops here",
			id, loopLimit, s.clock.Now().UTC().Format("2006-01-02 15:04:05.000"))
		return
	}
	if err != nil && ctx.Err() == nil {
		s.refuse("%v", err)
	}
}

// settle waits until the workers hold no work and none is due. An event
// is usually handled within microseconds, so it first only yields to
// the workers between looks (settleYields times), then waits longer
// each time, up to 2 ms while tasks run.
func (s *scenario) settle(ctx context.Context) {
	yields, wait := 0, 20*time.Microsecond
	for ctx.Err() == nil && s.loopingID() == "" {
		idle, err := s.engine.Idle(ctx)
		if err != nil {
			s.refuse("%v", err)
			return
		}
		if idle {
			return
		}
		if yields < settleYields {
			goruntime.Gosched()
			yields++
			continue
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 2*time.Millisecond)
	}
}

func (s *scenario) command(ctx context.Context, line string) {
	if line == "" || s.loopingID() != "" { // (comments were cut off: stripComment)
		return
	}
	verb, rest := line, ""
	if i := strings.IndexFunc(line, unicode.IsSpace); i >= 0 {
		verb, rest = line[:i], strings.TrimSpace(line[i:])
	}
	switch verb {
	case "start":
		s.start(ctx, rest)
	case "send":
		s.send(ctx, rest)
	case "sleep":
		d, err := time.ParseDuration(rest)
		if err != nil || d < 0 {
			s.refuse("sleep %q: want a duration such as 30s or 1h30m, up to 2562047h", rest)
			return
		}
		s.sleep(ctx, d)
	case "inspect":
		s.inspect(ctx, rest)
	case "expect":
		s.expect(ctx, rest)
	case "retry", "cancel":
		s.operate(ctx, verb, rest)
	default:
		s.refuse("unknown command %q (want start, send, sleep, inspect, expect, retry or cancel)", verb)
	}
	s.runDue(ctx)
}

// stripComment cuts a # comment off the end of a line: a # after white
// space, outside a JSON object.
func stripComment(line string) string {
	depth, inString, escaped := 0, false, false
	for i, r := range line {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case r == '\\':
				escaped = true
			case r == '"':
				inString = false
			}
		case depth > 0 && r == '"':
			inString = true
		case r == '{':
			depth++
		case r == '}' && depth > 0:
			depth--
		case r == '#' && depth == 0 && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i]
		}
	}
	return line
}

// jsonArg splits "{...} rest" into the JSON object and what follows.
func jsonArg(s string) (json.RawMessage, string, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "{") {
		return nil, s, nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, "", fmt.Errorf("bad JSON: %v", err)
	}
	return raw, strings.TrimSpace(s[dec.InputOffset():]), nil
}

// twoWordsAndJSON splits "A B [{...}] rest" into its two words, the JSON
// object if there is one, and what follows it.
func twoWordsAndJSON(args string) (a, b string, raw json.RawMessage, rest string, err error) {
	fields := strings.Fields(args)
	if len(fields) < 2 || strings.HasPrefix(fields[1], "{") { // "A {...}": B is missing
		return "", "", nil, "", errMissingWords
	}
	a, b = fields[0], fields[1]
	after := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(args, a)), b))
	raw, rest, err = jsonArg(after)
	return a, b, raw, rest, err
}

var errMissingWords = errors.New("missing words")

func (s *scenario) start(ctx context.Context, args string) {
	name, id, raw, rest, err := twoWordsAndJSON(args)
	if err == errMissingWords {
		s.refuse("start: want MACHINE ID [JSON-CONTEXT] [priority N]")
		return
	}
	if err != nil {
		s.refuse("start %s: context: %v", id, err)
		return
	}
	priority := 0
	if rest != "" {
		words := strings.Fields(rest)
		if len(words) != 2 || words[0] != "priority" {
			s.refuse("start %s: unexpected %q (want [priority N])", id, rest)
			return
		}
		if priority, err = strconv.Atoi(words[1]); err != nil {
			s.refuse("start %s: priority %q is not a number", id, words[1])
			return
		}
	}
	m := s.machines[name]
	if m == nil {
		if names := s.machineNames(); len(names) > 0 {
			s.refuse("start: unknown machine %q (have %s)", name, strings.Join(names, ", "))
		} else {
			s.refuse("start: unknown machine %q (the files given define no machines)", name)
		}
		return
	}
	values, err := runtime.DecodeJSON(m.Context, nil, raw)
	if err != nil {
		s.refuse("start %s: context: %v", id, err)
		return
	}
	// The instance's machine is noted before it starts: on the real
	// clock a worker may print its first attempt before StartValues
	// returns. A start that fails takes the note back, unless the ID was
	// already another instance's.
	s.machineMu.Lock()
	prev, had := s.machine[id]
	s.machine[id] = name
	s.machineMu.Unlock()
	if err := s.engine.StartValues(ctx, name, id, values, runtime.StartOptions{Priority: priority}); err != nil {
		s.machineMu.Lock()
		if had {
			s.machine[id] = prev
		} else {
			delete(s.machine, id)
		}
		s.machineMu.Unlock()
		s.refuse("start %s: %v", id, err)
		return
	}
}

func (s *scenario) machineNames() []string {
	var names []string
	for n := range s.machines {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s *scenario) send(ctx context.Context, args string) {
	id, event, raw, rest, err := twoWordsAndJSON(args)
	if err == errMissingWords {
		s.refuse("send: want ID EVENT [JSON-PAYLOAD]")
		return
	}
	if err != nil || rest != "" {
		switch {
		case err == nil && raw == nil:
			err = fmt.Errorf("payload: want a JSON object, got %q", rest)
		case err == nil:
			err = fmt.Errorf("unexpected %q after the payload", rest)
		}
		s.refuse("send %s %s: %v", id, event, err)
		return
	}
	payload, err := runtime.DecodeObject(raw)
	if err != nil {
		s.refuse("send %s %s: payload: %v", id, event, err)
		return
	}
	if err := s.engine.Send(ctx, id, event, payload); err != nil {
		if errors.Is(err, runtime.ErrNotFound) {
			err = fmt.Errorf("no instance %q", id)
		}
		s.refuse("send %s %s: %v", id, event, err)
		return
	}
	s.loopMu.Lock()
	s.sent[id]++
	s.loopMu.Unlock()
	if v, err := s.engine.Get(ctx, id); err == nil && v.Status == runtime.Failed {
		fmt.Fprintf(s.stderr, "%s: %s waits: the instance is failed until it is retried\n", id, event)
	}
}

// operate runs retry or cancel on an instance, as `fsmc retry` and
// `fsmc cancel` do on Redis.
func (s *scenario) operate(ctx context.Context, verb, args string) {
	fields := strings.Fields(args)
	if len(fields) != 1 {
		s.refuse("%s: want ID", verb)
		return
	}
	op := s.engine.Retry
	if verb == "cancel" {
		op = s.engine.Cancel
	}
	if err := op(ctx, fields[0]); err != nil {
		if errors.Is(err, runtime.ErrNotFound) {
			err = fmt.Errorf("no instance %q", fields[0])
		}
		s.refuse("%s %s: %v", verb, fields[0], err)
	}
}

// sleep lets d pass: every due time on the way is reached in order and
// its work handled; with a virtual clock no real time passes.
func (s *scenario) sleep(ctx context.Context, d time.Duration) {
	end := s.clock.Now().Add(d)
	for ctx.Err() == nil {
		s.runDue(ctx)
		if s.loopingID() != "" {
			return // the scenario stops (runDue said why)
		}
		next, found, err := s.engine.NextDue(ctx)
		if err != nil {
			s.refuse("%v", err)
			return
		}
		now := s.clock.Now()
		if !found || next.After(end) {
			next = end
		}
		if next.After(now) {
			if fake, ok := s.clock.(*runtime.FakeClock); ok {
				fake.Set(next)
			} else {
				s.clock.Sleep(next.Sub(now), ctx.Done())
			}
		}
		if !s.clock.Now().Before(end) {
			s.runDue(ctx)
			return
		}
	}
}

// view reads instance id for command (its words, for messages).
func (s *scenario) view(ctx context.Context, command, id string) *runtime.View {
	v, err := s.engine.Get(ctx, id)
	if errors.Is(err, runtime.ErrNotFound) {
		s.refuse("%s: no instance %q", command, id)
		return nil
	}
	if err != nil {
		s.refuse("%s: %v", command, err)
		return nil
	}
	return v
}

func (s *scenario) expect(ctx context.Context, args string) {
	fields := strings.Fields(args)
	if len(fields) != 2 {
		s.refuse("expect: want ID STATE")
		return
	}
	command := "expect " + fields[0] + " " + fields[1]
	v := s.view(ctx, command, fields[0])
	if v == nil {
		return
	}
	if m := s.machines[v.Machine]; m != nil && !hasState(m, fields[1]) {
		s.refuse("%s: machine %s has no state %q (the instance is in %s)", command, v.Machine, fields[1], v.StateName)
		return
	}
	if v.StateName != fields[1] {
		detail := v.Status.String()
		if v.Failure != "" {
			detail += ": " + v.Failure
		}
		s.refuse("expect %s %s: it is in %s (%s)", fields[0], fields[1], v.StateName, detail)
	}
}

func hasState(m *ir.Machine, name string) bool {
	for _, st := range m.States {
		if st.Name == name {
			return true
		}
	}
	return false
}

func (s *scenario) inspect(ctx context.Context, args string) {
	fields := strings.Fields(args)
	if len(fields) != 1 {
		s.refuse("inspect: want ID")
		return
	}
	v := s.view(ctx, "inspect "+fields[0], fields[0])
	if v == nil {
		return
	}
	if s.json {
		printJSON(s.stdout, inspectJSON(v))
		return
	}
	writeInspect(s.stdout, v)
}

// printChange writes one changelog line per transition.
func (s *scenario) printChange(c runtime.Change) {
	s.step(c.Instance, c.Time)
	m := s.machines[c.Machine]
	if s.json {
		printJSON(s.stdout, changeJSON(m, c))
		return
	}
	fmt.Fprintln(s.stdout, changeLine(m, c))
}

// step counts a step of instance id, taken at at, and stops the
// instance's loop when loopLimit of its steps took less than loopTime
// (see scenario.steps).
func (s *scenario) step(id string, at time.Time) {
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	if s.looping != "" || s.stop == nil {
		return
	}
	if s.sent[id] > 0 {
		s.sent[id]-- // a step for an event the scenario sent
		return
	}
	r := s.steps[id]
	if r.n == 0 {
		r.first = at
	}
	r.n++
	if r.n >= loopLimit {
		if took := at.Sub(r.first); took < loopTime {
			s.looping, s.loopTook = id, took
			s.stop()
		}
		r.n = 0
	}
	s.steps[id] = r
}

// newInstant starts counting steps afresh for a runDue, which stop (when
// not nil) ends, and reports false when an instance was found looping:
// the scenario has stopped.
func (s *scenario) newInstant(stop context.CancelFunc) bool {
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	clear(s.steps)
	if stop != nil {
		s.stop = stop
	}
	return s.looping == ""
}

// loopingID is the instance found looping, or "".
func (s *scenario) loopingID() string {
	s.loopMu.Lock()
	defer s.loopMu.Unlock()
	return s.looping
}

// printHistory writes what a scenario's author wants to know besides
// transitions: unhandled events, failed attempts, parked instances.
func (s *scenario) printHistory(id string, h runtime.HistoryEntry) {
	switch h.Kind {
	case runtime.HistAttemptFailed:
		s.step(id, h.Time)
	case runtime.HistUnhandled, runtime.HistFault:
	default:
		return
	}
	msg := h.Kind.String()
	s.machineMu.Lock()
	name := s.machine[id]
	s.machineMu.Unlock()
	if m := s.machines[name]; m != nil {
		msg = historyLine(m, h)
	}
	fmt.Fprintf(s.stderr, "%s: %s\n", id, msg)
}
