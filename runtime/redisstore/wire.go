package redisstore

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/runtime"
)

// The forms of what the store keeps. Records are comma-separated
// numbers, with any free text (a message, values) last, as JSON; a
// record without free text leaves out its trailing zeros. They are
// short so that an instance's hash stays a compact listpack in Redis
// (values up to 64 bytes by default). Times are Unix milliseconds, like
// the due times that are also sorted-set scores.

// Values (a context, a payload) are a JSON array of strings, one per
// value: a letter for its type, then its text. `["i3","s","d90000000000"]`
// is the int 3, the empty string and 90 s. Floats are in Go's shortest
// form, with -0, +Inf, -Inf and NaN spelled so. Builds before this form
// wrote an object per value (`[{"t":"int","i":3}]`, about three times as
// long, so that a context of a few fields outgrew a listpack value);
// valuesIn reads both.

// valueTags is each type's letter; valueTypes inverts it.
var (
	valueTags  = [...]byte{ir.TypeInt: 'i', ir.TypeFloat: 'f', ir.TypeString: 's', ir.TypeBool: 'b', ir.TypeDuration: 'd'}
	valueTypes = map[byte]ir.Type{'i': ir.TypeInt, 'f': ir.TypeFloat, 's': ir.TypeString, 'b': ir.TypeBool, 'd': ir.TypeDuration}
)

// valuesOut is vs in the stored form ("" for none). It cannot fail:
// every value has one (values without a type, and strings that are not
// UTF-8, never get this far: the engine checks what it is given, with
// runtime.Values and runtime.CheckValues).
func valuesOut(vs []ir.Value) string {
	if len(vs) == 0 {
		return ""
	}
	out := make([]string, len(vs))
	for i, v := range vs {
		if int(v.T) >= len(valueTags) || valueTags[v.T] == 0 {
			panic(fmt.Sprintf("redisstore: a value of type %d has no stored form", v.T)) // see the doc comment
		}
		b := []byte{valueTags[v.T]}
		switch v.T {
		case ir.TypeFloat:
			b = strconv.AppendFloat(b, v.F, 'g', -1, 64)
		case ir.TypeString:
			b = append(b, v.S...)
		default:
			b = strconv.AppendInt(b, v.I, 10)
		}
		out[i] = string(b)
	}
	js, err := json.Marshal(out)
	if err != nil {
		panic(fmt.Sprintf("redisstore: values without a JSON form: %v", err)) // see the doc comment
	}
	return string(js)
}

// valuesIn reads valuesOut's form, or the older one, into dst.
func valuesIn(dst []ir.Value, js string) ([]ir.Value, error) {
	if js == "" {
		return dst, nil
	}
	if strings.HasPrefix(js, "[{") {
		return oldValuesIn(dst, js)
	}
	var texts []string
	if err := json.Unmarshal([]byte(js), &texts); err != nil {
		return nil, err
	}
	for _, text := range texts {
		t, ok := ir.TypeInvalid, text != ""
		if ok {
			t, ok = valueTypes[text[0]]
		}
		if !ok {
			return nil, fmt.Errorf("bad stored value %q", text)
		}
		v, rest := ir.Value{T: t}, text[1:]
		var err error
		switch t {
		case ir.TypeFloat:
			v.F, err = strconv.ParseFloat(rest, 64)
		case ir.TypeString:
			v.S = rest
		default:
			v.I, err = strconv.ParseInt(rest, 10, 64)
		}
		if err != nil {
			return nil, fmt.Errorf("bad stored value %q", text)
		}
		dst = append(dst, v)
	}
	return dst, nil
}

// oldValue is a value in the older form: an object with its type's
// name and the member its type uses. A float was a JSON number or, for
// the values JSON has no number for, the string "+Inf", "-Inf" or "NaN".
type oldValue struct {
	T ir.Type         `json:"t"`
	I int64           `json:"i"`
	F json.RawMessage `json:"f"`
	S string          `json:"s"`
}

func oldValuesIn(dst []ir.Value, js string) ([]ir.Value, error) {
	var ws []oldValue
	if err := json.Unmarshal([]byte(js), &ws); err != nil {
		return nil, err
	}
	for _, w := range ws {
		v := ir.Value{T: w.T, I: w.I, S: w.S}
		if len(w.F) > 0 {
			text := string(w.F)
			if unquoted, err := strconv.Unquote(text); err == nil {
				text = unquoted
			}
			f, err := strconv.ParseFloat(text, 64)
			if err != nil {
				return nil, fmt.Errorf("bad stored float %s", w.F)
			}
			v.F = f
		}
		dst = append(dst, v)
	}
	return dst, nil
}

// record builds a comma-separated record of numbers and an optional
// free-text tail.
type record []byte

// newRecord is an empty record with room for most: one that grows from
// nothing is copied at each doubling.
func newRecord() record { return make(record, 0, 64) }

func (r record) int(n int64) record {
	if len(r) > 0 {
		r = append(r, ',')
	}
	return strconv.AppendInt(r, n, 10)
}

// tail ends the record with text (JSON), or with no text and without
// its trailing zeros.
func (r record) tail(text string) string {
	if text == "" {
		for len(r) >= 2 && r[len(r)-1] == '0' && r[len(r)-2] == ',' {
			r = r[:len(r)-2]
		}
		return string(r)
	}
	return string(append(append(r, ','), text...))
}

// fields reads n numbers (zero where the record ends early) and the
// tail of a record.
func fields(rec string, n int) ([]int64, string, error) {
	out := make([]int64, n)
	for i := range out {
		if rec == "" {
			break
		}
		num, rest, _ := strings.Cut(rec, ",")
		v, err := strconv.ParseInt(num, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("bad stored record %q", rec)
		}
		out[i], rec = v, rest
	}
	return out, rec, nil
}

func millis(t time.Time) int64 { return t.UnixMilli() }

// instance fields the scripts never read: d holds state, visit, created,
// updated (as ms after created), failed-task and failed-timer; c the
// context; f the failure.
func encodeData(inst *runtime.Instance) (d, c, f string) {
	failedTask := int64(0)
	if inst.FailedTask {
		failedTask = 1
	}
	created := millis(inst.Created)
	d = newRecord().int(int64(inst.State)).int(int64(inst.Visit)).int(created).int(millis(inst.Updated) - created).int(failedTask).int(int64(inst.FailedTimer)).tail("")
	return d, valuesOut(inst.Context), inst.Failure
}

// decodeData reads encodeData's d into inst: its state, visit, creation
// and update times, and failed task and timer.
func decodeData(d string, inst *runtime.Instance) error {
	n, _, err := fields(d, 6)
	if err != nil {
		return err
	}
	inst.State, inst.Visit = int(n[0]), uint64(n[1])
	inst.Created, inst.Updated = time.UnixMilli(n[2]), time.UnixMilli(n[2]+n[3])
	inst.FailedTask, inst.FailedTimer = n[4] == 1, int(n[5])
	return nil
}

// decodeFields reads the instance hash's fields v, st, pr, d, c, f (in
// that order); the caller fills Machine and Hash.
func decodeFields(id string, vals []any, inst *runtime.Instance) error {
	str := func(i int) string { s, _ := vals[i].(string); return s }
	ctx, err := valuesIn(inst.Context[:0], str(4))
	if err != nil {
		return fmt.Errorf("instance %s: bad stored context: %w", id, err)
	}
	*inst = runtime.Instance{ID: id, Context: ctx, Status: runtime.Status(atoi(str(1))), Version: uint64(atoi(str(0))),
		Priority: atoi(str(2)), Failure: str(5)}
	if err := decodeData(str(3), inst); err != nil {
		return fmt.Errorf("instance %s: %w", id, err)
	}
	return nil
}

// encodeWork is one item of work as the scripts store it, and whether it
// is a task attempt ("task") or instance work: the value's due time and
// action lead, as prelude.lua's dueOf and actionOf read them.
func encodeWork(w runtime.Work) (kind, value string) {
	kind = "instance"
	if w.Kind == runtime.WorkTask {
		kind = "task"
	}
	value = newRecord().int(millis(w.Due)).int(int64(w.Kind)).int(int64(w.Action)).int(int64(w.Visit)).
		int(int64(w.Event)).int(int64(w.Timer)).int(int64(w.Attempt)).tail(valuesOut(w.Payload))
	return kind, value
}

func decodeWork(id, value string, seq uint64, priority int) (runtime.Work, error) {
	n, payload, err := fields(value, 7)
	if err != nil {
		return runtime.Work{}, fmt.Errorf("instance %s: %w", id, err)
	}
	p, err := valuesIn(nil, payload)
	if err != nil {
		return runtime.Work{}, fmt.Errorf("instance %s: bad stored payload: %w", id, err)
	}
	return runtime.Work{Kind: runtime.WorkKind(n[1]), Instance: id, Due: time.UnixMilli(n[0]), Seq: seq, Visit: uint64(n[3]),
		Event: int(n[4]), Payload: p, Timer: int(n[5]), Action: int(n[2]), Attempt: int(n[6]), Priority: priority}, nil
}

// encodeHistory is a history entry as the scripts store it. Its time is
// written as ms after the instance's creation, marked "+" ("+12,..."),
// when it has one: an entry is then about half as long, so a short
// history stays within the 64-byte values that Redis keeps in a compact
// listpack (a longer value turns the whole hash into a hash table, which
// costs the commit that writes it and memory for as long as the instance
// is kept). Without a creation time the entry holds its time whole.
func encodeHistory(h runtime.HistoryEntry, created time.Time) string {
	msg := ""
	if h.Message != "" {
		b, _ := json.Marshal(h.Message)
		msg = string(b)
	}
	r := newRecord()
	if created.IsZero() || h.Time.Before(created) {
		r = r.int(millis(h.Time))
	} else {
		r = strconv.AppendInt(append(r, '+'), millis(h.Time)-millis(created), 10)
	}
	return r.int(int64(h.Kind)).int(int64(h.Version)).int(int64(h.From)).int(int64(h.To)).
		int(int64(h.Event)).int(int64(h.Timer)).int(int64(h.Attempt)).tail(msg)
}

// decodeHistory reads encodeHistory's form, of an instance created at
// created; entries stored before times were relative hold them whole.
func decodeHistory(rec string, created time.Time) (runtime.HistoryEntry, error) {
	n, msg, err := fields(rec, 8)
	if err != nil {
		return runtime.HistoryEntry{}, err
	}
	at := time.UnixMilli(n[0])
	if strings.HasPrefix(rec, "+") {
		at = time.UnixMilli(millis(created) + n[0])
	}
	h := runtime.HistoryEntry{Time: at, Kind: runtime.HistoryKind(n[1]), Version: uint64(n[2]), From: int(n[3]), To: int(n[4]),
		Event: int(n[5]), Timer: int(n[6]), Attempt: int(n[7])}
	if msg != "" {
		if err := json.Unmarshal([]byte(msg), &h.Message); err != nil {
			return runtime.HistoryEntry{}, fmt.Errorf("bad stored record %q", rec)
		}
	}
	return h, nil
}

// encodeChange is a changelog entry: its numbers, then the machine id
// and the instance ID (which may contain commas, so it comes last).
func encodeChange(c runtime.Change) string {
	return newRecord().int(millis(c.Time)).int(int64(c.From)).int(int64(c.To)).int(int64(c.Event)).int(int64(c.Timer)).
		int(int64(c.Version)).int(int64(c.Status)).tail(machineID(c.Hash) + "," + c.Instance)
}

// decodeChange reads encodeChange's form; the caller fills Machine and
// Hash from the machine id it returns.
func decodeChange(rec string) (runtime.Change, string, error) {
	n, rest, err := fields(rec, 7)
	if err != nil {
		return runtime.Change{}, "", err
	}
	mid, id, ok := strings.Cut(rest, ",")
	if !ok {
		return runtime.Change{}, "", fmt.Errorf("bad stored record %q", rec)
	}
	return runtime.Change{Time: time.UnixMilli(n[0]), Instance: id, From: int(n[1]), To: int(n[2]), Event: int(n[3]), Timer: int(n[4]),
		Version: uint64(n[5]), Status: runtime.Status(n[6])}, mid, nil
}

// machineID is the short form of a machine hash that instances store
// (ir.ShortHash; PutMachine refuses a version whose id another version
// has).
func machineID(hash string) string { return ir.ShortHash(hash) }

// atoi reads a number the scripts wrote (0 if absent).
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
