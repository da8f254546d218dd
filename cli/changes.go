package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/runtime"
)

// The changelog and inspect output shared by `fsmc run` and the Redis
// commands.

// eventLabel names what caused a change: the event, `after(delay)` for
// a timer, or `start`.
func eventLabel(m *ir.Machine, c runtime.Change) string {
	switch {
	case c.From < 0:
		return "start"
	case c.Event >= 0:
		return m.Events[c.Event].Name
	}
	return "after(" + m.States[c.From].Timers[c.Timer].Delay.Src + ")"
}

// changeLine is `ID MACHINE FROM --EVENT--> TO`; FROM is * at start.
func changeLine(m *ir.Machine, c runtime.Change) string {
	from := "*"
	if c.From >= 0 {
		from = m.States[c.From].Name
	}
	return fmt.Sprintf("%s %s %s --%s--> %s", c.Instance, c.Machine, from, eventLabel(m, c), m.States[c.To].Name)
}

// printJSON writes v as one line of JSON, leaving <, > and & as they are
// (json.Marshal would escape the arrows of "--Paid-->" for HTML).
func printJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// changeRecord is one changelog entry as JSON.
type changeRecord struct {
	Time     string  `json:"time"`
	Instance string  `json:"instance"`
	Machine  string  `json:"machine"`
	From     *string `json:"from"`
	Event    string  `json:"event"`
	To       string  `json:"to"`
	Version  uint64  `json:"version"`
	Status   string  `json:"status"`
}

// jsonTime is the layout of times in JSON output: RFC 3339 in UTC, to
// the millisecond as the Redis store keeps them (a worker and watch
// print one change alike), always three digits of them, so that times
// sort as text in time order.
const jsonTime = "2006-01-02T15:04:05.000Z07:00"

func changeJSON(m *ir.Machine, c runtime.Change) changeRecord {
	out := changeRecord{Time: c.Time.UTC().Format(jsonTime), Instance: c.Instance, Machine: c.Machine,
		Event: eventLabel(m, c), To: m.States[c.To].Name, Version: c.Version, Status: c.Status.String()}
	if c.From >= 0 {
		out.From = &m.States[c.From].Name
	}
	return out
}

// historyLine describes one history entry.
// stateName and eventName name a history entry's state or event ("?"
// for an index the machine does not have).
func stateName(m *ir.Machine, i int) string {
	if i < 0 || i >= len(m.States) {
		return "?"
	}
	return m.States[i].Name
}

func eventName(m *ir.Machine, i int) string {
	if i < 0 || i >= len(m.Events) {
		return "?"
	}
	return m.Events[i].Name
}

func historyLine(m *ir.Machine, h runtime.HistoryEntry) string {
	state := func(i int) string { return stateName(m, i) }
	event := func(i int) string { return eventName(m, i) }
	switch h.Kind {
	case runtime.HistStart:
		return fmt.Sprintf("v%d started in %s", h.Version, state(h.To))
	case runtime.HistTransition:
		return fmt.Sprintf("v%d %s --%s--> %s", h.Version, state(h.From), event(h.Event), state(h.To))
	case runtime.HistTimer:
		return fmt.Sprintf("v%d %s --after(%s)--> %s", h.Version, state(h.From), m.States[h.From].Timers[h.Timer].Delay.Src, state(h.To))
	case runtime.HistUnhandled:
		return fmt.Sprintf("%s unhandled in %s", event(h.Event), state(h.From))
	case runtime.HistStale:
		if h.Event >= 0 {
			return fmt.Sprintf("%s from an earlier visit discarded", event(h.Event))
		}
		return "a timer from an earlier visit discarded"
	case runtime.HistAttempt:
		return fmt.Sprintf("attempt %d succeeded: %s", h.Attempt, event(h.Event))
	case runtime.HistAttemptFailed:
		return fmt.Sprintf("attempt %d failed: %s", h.Attempt, graphic(h.Message))
	case runtime.HistFault:
		return fmt.Sprintf("v%d failed: %s", h.Version, graphic(h.Message))
	case runtime.HistRetry:
		return fmt.Sprintf("v%d resumed by retry", h.Version)
	case runtime.HistCancel:
		return fmt.Sprintf("v%d cancelled", h.Version)
	}
	return h.Kind.String()
}

// machineVersion names a version of a machine as NAME@ID (ir.ShortHash):
// what `fsmc run` logs for the machines it runs, so an instance can be
// matched with the workers that advance it.
func machineVersion(name, hash string) string { return name + "@" + ir.ShortHash(hash) }

func writeInspect(w io.Writer, v *runtime.View) {
	// Values line up after the longest name (state, status, ... and the
	// context's fields).
	var b strings.Builder
	width := 8 // as wide as "version" and a space more
	for _, f := range v.IR.Context {
		width = max(width, utf8.RuneCountInString(f.Name))
	}
	line := func(name, format string, args ...any) {
		fmt.Fprintf(&b, "  %-*s "+format+"\n", append([]any{width, name}, args...)...)
	}
	fmt.Fprintf(&b, "instance %s (machine %s)\n", v.ID, machineVersion(v.Machine, v.Hash))
	line("state", "%s", v.StateName)
	if v.Priority != 0 {
		line("status", "%s (priority %d)", v.Status, v.Priority)
	} else {
		line("status", "%s", v.Status)
	}
	if v.Failure != "" && v.Status == runtime.Failed {
		line("failure", "%s", graphic(v.Failure))
	}
	line("version", "%d", v.Version)
	for i, f := range v.IR.Context {
		line(f.Name, "%s", v.Fields.Values()[i])
	}
	b.WriteString("  history\n")
	for _, h := range v.History {
		fmt.Fprintf(&b, "    %s  %s\n", h.Time.UTC().Format("2006-01-02 15:04:05.000"), historyLine(v.IR, h))
	}
	io.WriteString(w, b.String())
}

func inspectJSON(v *runtime.View) map[string]any {
	var history []map[string]any
	for _, h := range v.History {
		entry := map[string]any{
			"time": h.Time.UTC().Format(jsonTime), "kind": h.Kind.String(),
			"version": h.Version, "text": historyLine(v.IR, h),
		}
		// The parts of the entry it has, by name.
		if h.From >= 0 {
			entry["from"] = stateName(v.IR, h.From)
		}
		if h.Event >= 0 {
			entry["event"] = eventName(v.IR, h.Event)
		}
		if h.To >= 0 {
			entry["to"] = stateName(v.IR, h.To)
		}
		if h.Attempt > 0 {
			entry["attempt"] = h.Attempt
		}
		if h.Message != "" {
			entry["message"] = h.Message
		}
		history = append(history, entry)
	}
	return map[string]any{
		"id": v.ID, "machine": v.Machine, "hash": v.Hash, "state": v.StateName,
		"status": v.Status.String(), "failure": v.Failure, "version": v.Version,
		"priority": v.Priority, "context": v.Fields.Map(), "history": history,
	}
}
