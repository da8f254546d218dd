package ir

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// fieldJSON is Field on the wire: the default is written in its type's
// natural JSON form (a duration as "1m30s").
type fieldJSON struct {
	Name    string          `json:"name"`
	Type    Type            `json:"type"`
	Default json.RawMessage `json:"default,omitempty"`
	Pos     *Pos            `json:"pos,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (f Field) MarshalJSON() ([]byte, error) {
	out := fieldJSON{Name: f.Name, Type: f.Type, Pos: f.Pos}
	if f.Default != nil {
		var v any
		switch f.Default.T {
		case TypeInt:
			v = f.Default.I
		case TypeFloat:
			v = f.Default.F
		case TypeString:
			v = f.Default.S
		case TypeBool:
			v = f.Default.I != 0
		case TypeDuration:
			v = Duration(f.Default.I)
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, err
		}
		out.Default = b
	}
	return json.Marshal(out)
}

// UnmarshalJSON implements json.Unmarshaler; the default must have the
// field's type.
func (f *Field) UnmarshalJSON(b []byte) error {
	var in fieldJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return err
	}
	*f = Field{Name: in.Name, Type: in.Type, Pos: in.Pos}
	if in.Default == nil {
		return nil
	}
	v := Value{T: in.Type}
	var err error
	switch in.Type {
	case TypeInt:
		err = json.Unmarshal(in.Default, &v.I)
	case TypeFloat:
		err = json.Unmarshal(in.Default, &v.F)
	case TypeString:
		err = json.Unmarshal(in.Default, &v.S)
	case TypeBool:
		var x bool
		err = json.Unmarshal(in.Default, &x)
		if x {
			v.I = 1
		}
	case TypeDuration:
		var d Duration
		err = json.Unmarshal(in.Default, &d)
		v.I = int64(d)
	default:
		err = fmt.Errorf("no type")
	}
	if err != nil {
		return fmt.Errorf("field %q: default %s is not a %s", in.Name, in.Default, in.Type)
	}
	f.Default = &v
	return nil
}

// Encode writes f as indented JSON, after setting the machine and file
// hashes. The same File always gives the same bytes.
func (f *File) Encode() ([]byte, error) {
	if err := f.SetHashes(); err != nil {
		return nil, err
	}
	if f.Machines == nil {
		f.Machines = []*Machine{} // a file with no machines: [], not null
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(f); err != nil {
		return nil, err
	}
	return pretty(bytes.TrimSpace(buf.Bytes())), nil
}

// SetHashes computes every machine's hash and the file's.
func (f *File) SetHashes() error {
	f.FormatVersion = FormatVersion
	for _, m := range f.Machines {
		h, err := m.canonicalHash()
		if err != nil {
			return err
		}
		m.Hash = h
	}
	f.Hash = f.fileHash()
	return nil
}

// positionPrefix opens a "pos" member in compact JSON. It cannot occur
// inside a string, where quotes are escaped, and "pos" is never an
// object's first member.
var positionPrefix = []byte(`,"pos":{"line":`)

// withoutPositions removes every `,"pos":{"line":L,"column":C}` member
// from compact JSON b, in place.
func withoutPositions(b []byte) []byte {
	out := b[:0]
	for {
		i := bytes.Index(b, positionPrefix)
		if i < 0 {
			return append(out, b...)
		}
		out = append(out, b[:i]...)
		rest := b[i+len(positionPrefix):]
		if n := positionEnd(rest); n > 0 {
			b = rest[n:]
		} else {
			out = append(out, b[i:i+len(positionPrefix)]...)
			b = rest
		}
	}
}

// positionEnd is the length of `L,"column":C}` at the start of b (L and
// C integers), or 0 when b does not start so.
func positionEnd(b []byte) int {
	n := integerLen(b)
	if n == 0 || !bytes.HasPrefix(b[n:], []byte(`,"column":`)) {
		return 0
	}
	n += len(`,"column":`)
	m := integerLen(b[n:])
	if m == 0 || n+m >= len(b) || b[n+m] != '}' {
		return 0
	}
	return n + m + 1
}

// integerLen is the length of the optionally signed digits that start b.
func integerLen(b []byte) int {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	start := i
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i == start {
		return 0
	}
	return i
}

// canonicalHash is the sha256 of m's canonical form: its compact JSON
// (members in the fixed order of the Go types) with the hash empty and
// every source position left out.
func (m *Machine) canonicalHash() (string, error) {
	saved := m.Hash
	m.Hash = ""
	b, err := json.Marshal(m)
	m.Hash = saved
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(withoutPositions(b))
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// ShortHash is a machine hash's first 12 hex digits (48 bits): how
// operators name a version (NAME@ID in fsmc inspect, fsmc start and a
// worker's log), and the id the Redis store keeps in every instance.
// A hash already that short is returned as it is.
func ShortHash(hash string) string {
	h := strings.TrimPrefix(hash, "sha256:")
	if len(h) > 12 {
		h = h[:12]
	}
	return h
}

// fileHash covers the format version and the machines' hashes in order.
func (f *File) fileHash() string {
	h := sha256.New()
	fmt.Fprintf(h, "fsmc-ir %d\n", f.FormatVersion)
	for _, m := range f.Machines {
		fmt.Fprintf(h, "%s %s\n", m.Name, m.Hash)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// Load decodes and validates IR. Anything wrong (syntax, unknown fields,
// a bad index, type or instruction, a hash that does not match) is an
// error naming the place; a File that Load returns is safe to run.
func Load(data []byte) (*File, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f File
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("IR is not valid: %v", jsonError(data, err))
	}
	if dec.More() {
		return nil, fmt.Errorf("IR is not valid: data after the JSON document")
	}
	if f.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("IR format_version %d is not supported (this fsmc reads %d)", f.FormatVersion, FormatVersion)
	}
	names := map[string]bool{}
	for i, m := range f.Machines {
		if m == nil {
			return nil, fmt.Errorf("machines[%d] is null", i)
		}
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("machine %q (machines[%d]): %v", m.Name, i, err)
		}
		if names[m.Name] {
			return nil, fmt.Errorf("machine %q appears twice", m.Name)
		}
		names[m.Name] = true
		got, err := m.canonicalHash()
		if err != nil {
			return nil, err
		}
		if got != m.Hash {
			return nil, fmt.Errorf("machine %q: hash %q does not match its content (%s): the IR was edited or corrupted", m.Name, m.Hash, got)
		}
	}
	if got := f.fileHash(); got != f.Hash {
		return nil, fmt.Errorf("file hash %q does not match its machines (%s): the IR was edited or corrupted", f.Hash, got)
	}
	return &f, nil
}

// jsonError adds the line and column to a JSON syntax or type error.
func jsonError(data []byte, err error) string {
	var offset int64 = -1
	switch e := err.(type) {
	case *json.SyntaxError:
		offset = e.Offset - 1 // the offset is just past the bad byte
	case *json.UnmarshalTypeError:
		offset = e.Offset
	}
	if offset < 0 || offset > int64(len(data)) {
		return err.Error()
	}
	line := 1 + bytes.Count(data[:offset], []byte("\n"))
	col := int(offset) - bytes.LastIndexByte(data[:offset], '\n')
	return fmt.Sprintf("line %d, column %d: %v", line, col, err)
}

var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Validate checks a machine completely and prepares it to run.
func (m *Machine) Validate() error {
	v := &validator{m: m}
	v.check()
	if len(v.errs) > 0 {
		if len(v.errs) > 5 {
			v.errs = append(v.errs[:5], fmt.Sprintf("and %d more", len(v.errs)-5))
		}
		return fmt.Errorf("%s", strings.Join(v.errs, "; "))
	}
	m.maxStack = v.maxStack
	return nil
}

// MaxStack is the stack size Expr.Eval needs for any of m's expressions.
func (m *Machine) MaxStack() int { return m.maxStack }

type validator struct {
	m        *Machine
	errs     []string
	maxStack int
}

func (v *validator) errorf(format string, args ...any) {
	v.errs = append(v.errs, fmt.Sprintf(format, args...))
}

func (v *validator) name(where, name string) {
	if !identifier.MatchString(name) {
		v.errorf("%s: %q is not a valid name", where, name)
	}
}

func (v *validator) index(where string, i, n int) bool {
	if i < 0 || i >= n {
		v.errorf("%s: index %d is out of range (0..%d)", where, i, n-1)
		return false
	}
	return true
}

func (v *validator) fields(where string, fields []Field, defaults bool) {
	seen := map[string]bool{}
	for i, f := range fields {
		at := fmt.Sprintf("%s[%d]", where, i)
		v.name(at, f.Name)
		if seen[f.Name] {
			v.errorf("%s: duplicate field %q", at, f.Name)
		}
		seen[f.Name] = true
		if f.Type == TypeInvalid {
			v.errorf("%s: missing type", at)
		}
		if !defaults && f.Default != nil {
			v.errorf("%s: payload fields have no default", at)
		}
		if defaults && f.Default == nil {
			v.errorf("%s: a context field needs a default", at)
		}
		if f.Default != nil && f.Default.T == TypeFloat && (math.IsNaN(f.Default.F) || math.IsInf(f.Default.F, 0)) {
			v.errorf("%s: default is not a finite number", at)
		}
	}
}

func (v *validator) check() {
	m := v.m
	v.name("name", m.Name)
	v.fields("context", m.Context, true)
	if len(m.Events) < 2 || m.Events[EventDone].Name != "done" || !m.Events[EventDone].Builtin || len(m.Events[EventDone].Params) != 0 ||
		m.Events[EventError].Name != "error" || !m.Events[EventError].Builtin || !errorPayload(m.Events[EventError].Params) {
		v.errorf("events: the first two must be the built-in done (no payload) and error (message: string, attempts: int)")
		return
	}
	eventNames := map[string]bool{}
	for i, e := range m.Events[2:] {
		at := fmt.Sprintf("events[%d]", i+2)
		v.name(at, e.Name)
		if e.Builtin || eventNames[e.Name] || e.Name == "done" || e.Name == "error" {
			v.errorf("%s: %q is a duplicate or claims to be built in", at, e.Name)
		}
		eventNames[e.Name] = true
		v.fields(at+".params", e.Params, false)
	}
	actionNames := map[string]bool{}
	for i, a := range m.Actions {
		at := fmt.Sprintf("actions[%d]", i)
		v.name(at, a.Name)
		if actionNames[a.Name] {
			v.errorf("%s: duplicate action %q", at, a.Name)
		}
		actionNames[a.Name] = true
		for j, e := range a.Emits {
			if v.index(fmt.Sprintf("%s.emits[%d]", at, j), e, len(m.Events)) && e < 2 {
				v.errorf("%s.emits[%d]: an action cannot emit the built-in %q", at, j, m.Events[e].Name)
			} else if e >= 0 && slices.Index(a.Emits, e) < j && e < len(m.Events) {
				v.errorf("%s.emits[%d]: event %q is listed twice", at, j, m.Events[e].Name)
			}
		}
	}
	if len(m.States) == 0 {
		v.errorf("states: a machine needs at least one state")
		return
	}
	v.index("initial", m.Initial, len(m.States))
	stateNames := map[string]bool{}
	for i := range m.States {
		v.state(i)
		if stateNames[m.States[i].Name] {
			v.errorf("states[%d]: duplicate state %q", i, m.States[i].Name)
		}
		stateNames[m.States[i].Name] = true
	}
}

func errorPayload(p []Field) bool {
	return len(p) == 2 && p[0].Name == "message" && p[0].Type == TypeString && p[1].Name == "attempts" && p[1].Type == TypeInt
}

func (v *validator) state(i int) {
	m := v.m
	s := &m.States[i]
	at := fmt.Sprintf("states[%d] (%s)", i, s.Name)
	v.name(at, s.Name)
	if s.Final && (s.Task != nil || len(s.On) > 0 || len(s.Timers) > 0 || len(s.Ignore) > 0) {
		v.errorf("%s: a final state has no task, transitions, timers or ignores", at)
	}
	if t := s.Task; t != nil {
		v.index(at+".task.action", t.Action, len(m.Actions))
		if t.Timeout <= 0 {
			v.errorf("%s.task: timeout must be positive", at)
		}
		if t.Retry < 0 {
			v.errorf("%s.task: retry must not be negative", at)
		}
		b := t.Backoff
		switch {
		case b.Kind != "constant" && b.Kind != "linear" && b.Kind != "exponential":
			v.errorf("%s.task.backoff: unknown kind %q", at, b.Kind)
		case b.Initial < 0 || b.Step < 0 || b.Max < 0:
			v.errorf("%s.task.backoff: durations must not be negative", at)
		case b.Kind == "exponential" && !(b.Factor > 0 && b.Factor < math.Inf(1)):
			v.errorf("%s.task.backoff: factor must be positive", at)
		}
		if t.Jitter != "none" && t.Jitter != "full" && t.Jitter != "equal" {
			v.errorf("%s.task: unknown jitter %q", at, t.Jitter)
		}
	}
	if !sort.SliceIsSorted(s.On, func(a, b int) bool { return s.On[a].Event < s.On[b].Event }) {
		v.errorf("%s.on: rows must be sorted by event", at)
	}
	for j, row := range s.On {
		rat := fmt.Sprintf("%s.on[%d]", at, j)
		if !v.index(rat+".event", row.Event, len(m.Events)) {
			continue
		}
		if j > 0 && s.On[j-1].Event == row.Event {
			v.errorf("%s: two rows for event %d", rat, row.Event)
		}
		if len(row.Candidates) == 0 {
			v.errorf("%s: a row needs at least one transition", rat)
		}
		payload := m.Events[row.Event].Params
		for k, t := range row.Candidates {
			cat := fmt.Sprintf("%s.candidates[%d]", rat, k)
			if t.Guard != nil {
				v.expr(cat+".guard", t.Guard, payload, TypeBool)
			}
			v.index(cat+".target", t.Target, len(m.States))
			v.assigns(cat, t.Sets, payload)
		}
	}
	for j, t := range s.Timers {
		tat := fmt.Sprintf("%s.timers[%d]", at, j)
		v.expr(tat+".delay", &t.Delay, nil, TypeDuration)
		v.index(tat+".target", t.Target, len(m.States))
		v.assigns(tat, t.Sets, nil)
	}
	for j, e := range s.Ignore {
		v.index(fmt.Sprintf("%s.ignore[%d]", at, j), e, len(m.Events))
	}
}

func (v *validator) assigns(at string, sets []Assign, payload []Field) {
	for i, a := range sets {
		sat := fmt.Sprintf("%s.sets[%d]", at, i)
		if v.index(sat+".field", a.Field, len(v.m.Context)) {
			v.expr(sat+".value", &a.Value, payload, v.m.Context[a.Field].Type)
		}
	}
}

func (v *validator) expr(at string, e *Expr, payload []Field, want Type) {
	if e.Type != want {
		v.errorf("%s: type %s, want %s", at, e.Type, want)
		return
	}
	depth, err := verify(e.Code, v.m.Context, payload, want)
	if err != nil {
		v.errorf("%s: %v", at, err)
		return
	}
	v.maxStack = max(v.maxStack, depth)
}

// Encode writes one machine as compact JSON, hash set: the form a store's
// machine registry keeps.
func (m *Machine) Encode() ([]byte, error) {
	h, err := m.canonicalHash()
	if err != nil {
		return nil, err
	}
	m.Hash = h
	return json.Marshal(m)
}

// LoadMachine decodes and validates one machine written by
// Machine.Encode, checking its hash.
func LoadMachine(data []byte) (*Machine, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Machine
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("machine IR is not valid: %v", jsonError(data, err))
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("machine %q: %v", m.Name, err)
	}
	got, err := m.canonicalHash()
	if err != nil {
		return nil, err
	}
	if got != m.Hash {
		return nil, fmt.Errorf("machine %q: hash %q does not match its content", m.Name, m.Hash)
	}
	return &m, nil
}
