// Package gogen generates typed Go for compiled machines (`fsmc compile
// --emit go`): per machine, a context struct, a struct per event with its
// payload, state constants, an Actions interface whose result types admit
// only the events each action declares (a sealed interface per action),
// the IR embedded as a constant, and Register, which binds an Actions
// implementation to a runtime.Engine and returns a typed handle with
// Start, Send and Get.
//
//	*ir.File -> Generate -> Go source (gofmt-formatted) [-> Stubs]
//
// Names: a machine's declarations are prefixed with its name: the handle
// Order, OrderContext, OrderActions, events OrderSubmitEvent, states
// OrderStateDraft, action results OrderChargeCardResult. The suffixes keep
// any .fsm names from colliding. .fsm names become exported Go names by
// capitalising each part between underscores.
package gogen

import (
	"bytes"
	"fmt"
	"go/format"
	"sort"
	"strconv"
	"strings"
	"unicode"

	"github.com/fsmc/fsmc/compiler/ir"
)

// Generate returns the Go source for every machine of f in package pkg;
// source is the .fsm path named in the header.
func Generate(f *ir.File, pkg, source string) ([]byte, error) {
	irJSON, err := f.Encode()
	if err != nil {
		return nil, err
	}
	data := fileData{Package: pkg, Source: source, IRConst: "fsmcIR", IR: goString(string(irJSON))}
	for i, m := range f.Machines {
		data.Machines = append(data.Machines, machineData(m, i))
	}
	var b bytes.Buffer
	if err := fileTemplate.Execute(&b, data); err != nil {
		return nil, err
	}
	out, err := format.Source(b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("generated Go does not parse (a bug in fsmc): %v\n%s", err, b.Bytes())
	}
	return out, nil
}

// Stubs returns a skeleton implementing every machine's Actions.
func Stubs(f *ir.File, pkg string) ([]byte, error) {
	data := fileData{Package: pkg}
	for i, m := range f.Machines {
		data.Machines = append(data.Machines, machineData(m, i))
	}
	var b bytes.Buffer
	if err := stubsTemplate.Execute(&b, data); err != nil {
		return nil, err
	}
	return format.Source(b.Bytes())
}

// PackageName derives a Go package name from a file name: letters and
// digits of its base name, lower-cased.
func PackageName(path string) string {
	base := path[strings.LastIndexAny(path, `/\`)+1:]
	if i := strings.IndexByte(base, '.'); i > 0 {
		base = base[:i]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) && b.Len() > 0) {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 || isGoKeyword(b.String()) {
		return "machines"
	}
	return b.String()
}

func isGoKeyword(s string) bool {
	switch s {
	case "break", "case", "chan", "const", "continue", "default", "defer", "else", "fallthrough", "for",
		"func", "go", "goto", "if", "import", "interface", "map", "package", "range", "return", "select",
		"struct", "switch", "type", "var":
		return true
	}
	return false
}

// exported turns an .fsm name into an exported Go name: amount -> Amount,
// customer_id -> CustomerId.
func exported(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	if b.Len() == 0 {
		return "X"
	}
	return b.String()
}

// uniqueNames maps names to distinct exported Go names, suffixing
// collisions (a_b and aB both give AB) with their position.
func uniqueNames(names []string) []string {
	out := make([]string, len(names))
	seen := map[string]bool{}
	for i, n := range names {
		g := exported(n)
		if seen[g] {
			g += strconv.Itoa(i)
		}
		seen[g] = true
		out[i] = g
	}
	return out
}

func goType(t ir.Type) string {
	switch t {
	case ir.TypeInt:
		return "int64"
	case ir.TypeFloat:
		return "float64"
	case ir.TypeString:
		return "string"
	case ir.TypeBool:
		return "bool"
	case ir.TypeDuration:
		return "time.Duration"
	}
	return "any"
}

// getter is the runtime.Fields method reading a value of type t.
func getter(t ir.Type) string {
	switch t {
	case ir.TypeInt:
		return "Int"
	case ir.TypeFloat:
		return "Float"
	case ir.TypeString:
		return "String"
	case ir.TypeBool:
		return "Bool"
	}
	return "Duration"
}

// goString writes s as a Go string literal: raw when it can be.
func goString(s string) string {
	if !strings.Contains(s, "`") && !strings.Contains(s, "\r") {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}

type fileData struct {
	Package  string
	Source   string
	IRConst  string
	IR       string
	Machines []machine
}

type field struct {
	Name   string // .fsm name
	Go     string // Go field name
	Type   string // Go type
	Getter string
}

type event struct {
	Name   string
	Go     string // type name: Machine + Name + "Event"
	Send   string // the handle's method sending it
	Fields []field
}

type action struct {
	Name    string
	Go      string // method name
	Result  string // sealed result interface, or "" when it emits nothing
	Marker  string // the interface's method
	Emits   []event
	Context string
}

type state struct{ Name, Go string }

type machine struct {
	Name      string
	Go        string
	Index     int
	Context   []field
	Events    []event
	Actions   []action
	States    []state
	NeedsTime bool
}

func fieldsOf(fs []ir.Field) []field {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	gos := uniqueNames(names)
	out := make([]field, len(fs))
	for i, f := range fs {
		out[i] = field{Name: f.Name, Go: gos[i], Type: goType(f.Type), Getter: getter(f.Type)}
	}
	return out
}

func machineData(m *ir.Machine, index int) machine {
	prefix := exported(m.Name)
	md := machine{Name: m.Name, Go: prefix, Index: index, Context: fieldsOf(m.Context)}
	var eventNames []string
	for _, e := range m.Events[2:] {
		eventNames = append(eventNames, e.Name)
	}
	eventGo := uniqueNames(eventNames)
	events := map[int]event{}
	for i, e := range m.Events[2:] {
		ev := event{Name: e.Name, Go: prefix + eventGo[i] + "Event", Send: "Send" + eventGo[i], Fields: fieldsOf(e.Params)}
		events[i+2] = ev
		md.Events = append(md.Events, ev)
	}
	var actionNames []string
	for _, a := range m.Actions {
		actionNames = append(actionNames, a.Name)
	}
	actionGo := uniqueNames(actionNames)
	for i, a := range m.Actions {
		act := action{Name: a.Name, Go: actionGo[i], Context: prefix + "Context"}
		if len(a.Emits) > 0 {
			act.Result = prefix + actionGo[i] + "Result"
			act.Marker = "is" + act.Result
			ids := append([]int(nil), a.Emits...)
			sort.Ints(ids)
			for _, id := range ids {
				act.Emits = append(act.Emits, events[id])
			}
		}
		md.Actions = append(md.Actions, act)
	}
	var stateNames []string
	for _, s := range m.States {
		stateNames = append(stateNames, s.Name)
	}
	stateGo := uniqueNames(stateNames)
	for i, s := range m.States {
		md.States = append(md.States, state{Name: s.Name, Go: prefix + "State" + stateGo[i]})
	}
	for _, f := range md.Context {
		md.NeedsTime = md.NeedsTime || f.Type == "time.Duration"
	}
	for _, e := range md.Events {
		for _, f := range e.Fields {
			md.NeedsTime = md.NeedsTime || f.Type == "time.Duration"
		}
	}
	return md
}

// HasActions reports whether any machine has actions (the stubs then
// need their imports).
func (f fileData) HasActions() bool {
	for _, m := range f.Machines {
		if len(m.Actions) > 0 {
			return true
		}
	}
	return false
}

// HasResults reports whether any action emits events.
func (f fileData) HasResults() bool {
	for _, m := range f.Machines {
		for _, a := range m.Actions {
			if a.Result != "" {
				return true
			}
		}
	}
	return false
}

func (f fileData) NeedsTime() bool {
	for _, m := range f.Machines {
		if m.NeedsTime {
			return true
		}
	}
	return false
}
