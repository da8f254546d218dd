package redisstore

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/runtime"
)

// The JSON forms of what the store keeps. Short member names keep Redis
// memory per instance small; times are Unix nanoseconds, due times (which
// are also sorted-set scores) milliseconds.

type valueWire struct {
	T ir.Type `json:"t"`
	I int64   `json:"i,omitempty"`
	F float64 `json:"f,omitempty"`
	S string  `json:"s,omitempty"`
}

func valuesOut(vs []ir.Value) []valueWire {
	if len(vs) == 0 {
		return nil
	}
	out := make([]valueWire, len(vs))
	for i, v := range vs {
		out[i] = valueWire{T: v.T, I: v.I, F: v.F, S: v.S}
	}
	return out
}

func valuesIn(ws []valueWire) []ir.Value {
	if len(ws) == 0 {
		return nil
	}
	out := make([]ir.Value, len(ws))
	for i, w := range ws {
		out[i] = ir.Value{T: w.T, I: w.I, F: w.F, S: w.S}
	}
	return out
}

// instData is an instance's "d" field: everything but the fields the
// scripts read (version, status, priority, machine hash).
type instData struct {
	Machine    string      `json:"m"`
	State      int         `json:"s"`
	Context    []valueWire `json:"c"`
	Visit      uint64      `json:"vi"`
	Failure    string      `json:"f,omitempty"`
	FailedTask bool        `json:"ft,omitempty"`
	Created    int64       `json:"cr"`
	Updated    int64       `json:"up"`
}

func encodeInstance(inst *runtime.Instance) string {
	b, _ := json.Marshal(instData{Machine: inst.Machine, State: inst.State, Context: valuesOut(inst.Context), Visit: inst.Visit,
		Failure: inst.Failure, FailedTask: inst.FailedTask, Created: inst.Created.UnixNano(), Updated: inst.Updated.UnixNano()})
	return string(b)
}

func decodeInstance(id string, fields map[string]string, inst *runtime.Instance) error {
	var d instData
	if err := json.Unmarshal([]byte(fields["d"]), &d); err != nil {
		return err
	}
	ctx := inst.Context[:0]
	for _, v := range d.Context {
		ctx = append(ctx, ir.Value{T: v.T, I: v.I, F: v.F, S: v.S})
	}
	*inst = runtime.Instance{ID: id, Machine: d.Machine, Hash: fields["h"], State: d.State, Context: ctx,
		Status: runtime.Status(atoi(fields["st"])), Version: uint64(atoi(fields["v"])), Visit: d.Visit,
		Priority: atoi(fields["pr"]), Failure: d.Failure, FailedTask: d.FailedTask,
		Created: time.Unix(0, d.Created), Updated: time.Unix(0, d.Updated)}
	return nil
}

// workWire is one item of work.
type workWire struct {
	Kind    runtime.WorkKind `json:"k"`
	Due     int64            `json:"du"` // ms
	Visit   uint64           `json:"vi,omitempty"`
	Event   int              `json:"e,omitempty"`
	Payload []valueWire      `json:"p,omitempty"`
	Timer   int              `json:"ti,omitempty"`
	Action  int              `json:"a"`
	Attempt int              `json:"at,omitempty"`
}

func encodeWork(w runtime.Work) (kind string, action int, dueMs int64, js string) {
	b, _ := json.Marshal(workWire{Kind: w.Kind, Due: w.Due.UnixMilli(), Visit: w.Visit, Event: w.Event,
		Payload: valuesOut(w.Payload), Timer: w.Timer, Action: w.Action, Attempt: w.Attempt})
	kind = "instance"
	if w.Kind == runtime.WorkTask {
		kind = "task"
	}
	return kind, w.Action, w.Due.UnixMilli(), string(b)
}

func decodeWork(id, js string, seq uint64, priority int) (runtime.Work, error) {
	var w workWire
	if err := json.Unmarshal([]byte(js), &w); err != nil {
		return runtime.Work{}, err
	}
	return runtime.Work{Kind: w.Kind, Instance: id, Due: time.UnixMilli(w.Due), Seq: seq, Visit: w.Visit, Event: w.Event,
		Payload: valuesIn(w.Payload), Timer: w.Timer, Action: w.Action, Attempt: w.Attempt, Priority: priority}, nil
}

type historyWire struct {
	Time    int64               `json:"t"`
	Kind    runtime.HistoryKind `json:"k"`
	Version uint64              `json:"v"`
	From    int                 `json:"f"`
	To      int                 `json:"to"`
	Event   int                 `json:"e"`
	Timer   int                 `json:"ti,omitempty"`
	Attempt int                 `json:"at,omitempty"`
	Message string              `json:"m,omitempty"`
}

func encodeHistory(h runtime.HistoryEntry) string {
	b, _ := json.Marshal(historyWire{Time: h.Time.UnixNano(), Kind: h.Kind, Version: h.Version, From: h.From, To: h.To,
		Event: h.Event, Timer: h.Timer, Attempt: h.Attempt, Message: h.Message})
	return string(b)
}

func decodeHistory(js string) (runtime.HistoryEntry, error) {
	var h historyWire
	err := json.Unmarshal([]byte(js), &h)
	return runtime.HistoryEntry{Time: time.Unix(0, h.Time), Kind: h.Kind, Version: h.Version, From: h.From, To: h.To,
		Event: h.Event, Timer: h.Timer, Attempt: h.Attempt, Message: h.Message}, err
}

type changeWire struct {
	Time     int64          `json:"t"`
	Instance string         `json:"i"`
	Machine  string         `json:"m"`
	Hash     string         `json:"h"`
	From     int            `json:"f"`
	To       int            `json:"to"`
	Event    int            `json:"e"`
	Timer    int            `json:"ti,omitempty"`
	Version  uint64         `json:"v"`
	Status   runtime.Status `json:"st"`
}

func encodeChange(c runtime.Change) string {
	b, _ := json.Marshal(changeWire{Time: c.Time.UnixNano(), Instance: c.Instance, Machine: c.Machine, Hash: c.Hash, From: c.From, To: c.To,
		Event: c.Event, Timer: c.Timer, Version: c.Version, Status: c.Status})
	return string(b)
}

func decodeChange(js string) (runtime.Change, error) {
	var c changeWire
	err := json.Unmarshal([]byte(js), &c)
	return runtime.Change{Time: time.Unix(0, c.Time), Instance: c.Instance, Machine: c.Machine, Hash: c.Hash, From: c.From, To: c.To,
		Event: c.Event, Timer: c.Timer, Version: c.Version, Status: c.Status}, err
}

// atoi reads a number the scripts wrote (0 if absent).
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
