// Package gogen generates typed Go for compiled machines (`fsmc compile
// --emit go`): per machine, a context struct, a struct per event with its
// payload, state constants, an Actions interface whose result types admit
// only the events each action declares (a sealed interface per action),
// the IR embedded as a constant, and Register, which binds an Actions
// implementation to a runtime.Engine and returns a typed handle with
// Start, a SendX per event X (SendSubmit) and Get.
//
//	*ir.File -> Generate -> Go source (gofmt-formatted) [-> Stubs]
//
// Names: a machine's declarations are prefixed with its name: the handle
// Order, OrderContext, OrderActions, events OrderSubmitEvent, states
// OrderStateDraft, action results OrderChargeCardResult. .fsm names become
// exported Go names by capitalising each part between underscores
// (customer_id -> CustomerId); one that would start with a digit gets an X
// (_1 -> X1). Distinct .fsm names can still meet in one Go name: chan and
// Chan, machines order and Order, machine Order's event PaidX and machine
// OrderPaid's event X, a state Event and an event State of one machine. So
// every top-level name the file (with its stubs) declares is claimed in one
// namespace, and a name already taken gets the first free suffix 2, 3, ...:
// first each machine's prefix, in file order, the first of Order, Order2,
// ... whose fixed declarations (OrderName, RegisterOrder, ...) are all
// free, then each machine's states, events and action results. Struct
// fields, Send methods and action methods are made distinct the same way
// within their machine; the methods the generated code adds itself
// (fields, payload, eventName, is...Result) are unexported, so no
// exported .fsm name can meet them.
package gogen

import (
	"bytes"
	"errors"
	"fmt"
	"go/format"
	"go/scanner"
	"go/token"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/fsmc/fsmc/compiler/ir"
)

// commentText is s as it can stand in a // comment: quoted, if it holds
// a line break or another character that is not printable.
func commentText(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

// Generate returns the Go source for every machine of f in package pkg;
// source is the .fsm path named in the header.
func Generate(f *ir.File, pkg, source string) ([]byte, error) {
	if !IsPackageName(pkg) {
		return nil, fmt.Errorf("%q is not a Go package name", pkg)
	}
	irJSON, err := f.Encode()
	if err != nil {
		return nil, err
	}
	machines, top := machinesData(f)
	data := fileData{Package: pkg, Source: commentText(source), IR: goString(string(irJSON)), Machines: machines}
	if len(machines) > 0 {
		// Named after the file's first machine, so that several
		// generated files can share a package.
		base := lowerFirst(machines[0].Go)
		data.IRConst, data.LoadFunc = top.claim(base+"IR"), top.claim(base+"Load")
	}
	var b bytes.Buffer
	if err := fileTemplate.Execute(&b, data); err != nil {
		return nil, err
	}
	return formatSource(b.Bytes())
}

// Stubs returns a skeleton implementing every machine's Actions.
func Stubs(f *ir.File, pkg string) ([]byte, error) {
	if !IsPackageName(pkg) {
		return nil, fmt.Errorf("%q is not a Go package name", pkg)
	}
	machines, _ := machinesData(f)
	data := fileData{Package: pkg, Machines: machines}
	var b bytes.Buffer
	if err := stubsTemplate.Execute(&b, data); err != nil {
		return nil, err
	}
	return formatSource(b.Bytes())
}

// formatSource gofmts generated code. Code that does not parse is a bug
// in the templates or the naming: the error quotes the lines around the
// first syntax error, not the whole file.
func formatSource(src []byte) ([]byte, error) {
	out, err := format.Source(src)
	if err == nil {
		return out, nil
	}
	var list scanner.ErrorList
	if !errors.As(err, &list) || len(list) == 0 {
		return nil, fmt.Errorf("generated Go does not parse (a bug in fsmc): %v", err)
	}
	lines := strings.Split(string(src), "\n")
	at := list[0].Pos.Line
	var quote strings.Builder
	for n := max(at-2, 1); n <= min(at+2, len(lines)); n++ {
		fmt.Fprintf(&quote, "\n%5d | %s", n, lines[n-1])
	}
	return nil, fmt.Errorf("generated Go does not parse (a bug in fsmc): %v%s", err, quote.String())
}

// IsPackageName reports whether name can be a Go package name that
// other packages import: an identifier that is neither a keyword, the
// blank identifier nor init (which an import cannot name).
func IsPackageName(name string) bool {
	return name != "_" && name != "init" && token.IsIdentifier(name)
}

// PackageName derives a Go package name from a file name: letters and
// digits of its base name, lower-cased; "machines" when that is no
// package name, or is main, which cannot be imported (a program's main
// package is chosen with --package main).
func PackageName(path string) string {
	base := path[strings.LastIndexAny(path, `/\`)+1:]
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		if r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r) && b.Len() > 0) {
			b.WriteRune(r)
		}
	}
	if !IsPackageName(b.String()) || b.String() == "main" {
		return "machines"
	}
	return b.String()
}

// exported turns an .fsm name into an exported Go name: amount -> Amount,
// customer_id -> CustomerId, _1 -> X1, _ -> X.
func exported(name string) string {
	var b strings.Builder
	for _, part := range strings.Split(name, "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	if s := b.String(); s != "" && !unicode.IsDigit(rune(s[0])) {
		return s
	}
	return "X" + b.String()
}

// lowerFirst turns an exported Go name into an unexported one: Order ->
// order.
func lowerFirst(s string) string { return strings.ToLower(s[:1]) + s[1:] }

// namespace is a set of Go names declared in one scope.
type namespace map[string]bool

// claim declares name, or if it is taken the first free of name2, name3,
// ..., and returns what it declared.
func (ns namespace) claim(name string) string {
	g := name
	for n := 2; ns[g]; n++ {
		g = name + strconv.Itoa(n)
	}
	ns[g] = true
	return g
}

// claimPrefix declares the fixed names of a machine whose prefix is base,
// or if any is taken those of base2, base3, ..., and returns the prefix.
func (ns namespace) claimPrefix(base string) string {
	for n := 1; ; n++ {
		prefix := base
		if n > 1 {
			prefix += strconv.Itoa(n)
		}
		decls := machineDecls(prefix)
		free := true
		for _, d := range decls {
			free = free && !ns[d]
		}
		if free {
			for _, d := range decls {
				ns[d] = true
			}
			return prefix
		}
	}
}

// machineDecls lists the top-level names fileTemplate and stubsTemplate
// declare for every machine from its prefix; keep it in step with them.
func machineDecls(prefix string) []string {
	unexported := lowerFirst(prefix)
	return []string{prefix, prefix + "Name", prefix + "Context", "New" + prefix + "Context", prefix + "State", prefix + "Actions",
		prefix + "Instance", "Register" + prefix, unexported + "ContextOf", unexported + "Actions"}
}

// uniqueNames maps names to distinct exported Go names, suffixing
// collisions (a_b and aB both give AB, AB2).
func uniqueNames(names []string) []string {
	ns := namespace{}
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = ns.claim(exported(n))
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
	// A raw string cannot hold a backquote, keeps no carriage return,
	// and Go allows a byte order mark only at the start of a file.
	if !strings.ContainsAny(s, "`\r\ufeff") {
		return "`" + s + "`"
	}
	return strconv.Quote(s)
}

type fileData struct {
	Package  string
	Source   string
	IRConst  string // the IR's constant and its loader (with machines)
	LoadFunc string
	IR       string
	Machines []machine
}

type field struct {
	Name    string // .fsm name
	Go      string // Go field name
	Type    string // Go type
	Getter  string
	Default string // the .fsm default as a Go expression ("" for none or zero)
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
		out[i] = field{Name: f.Name, Go: gos[i], Type: goType(f.Type), Getter: getter(f.Type), Default: goDefault(f.Default)}
	}
	return out
}

// goDefault writes a field's default as a Go expression of its type, or
// "" when there is none or it is the type's zero value.
func goDefault(v *ir.Value) string {
	if v == nil {
		return ""
	}
	switch v.T {
	case ir.TypeInt:
		if v.I != 0 {
			return strconv.FormatInt(v.I, 10)
		}
	case ir.TypeFloat:
		if v.F != 0 {
			return strconv.FormatFloat(v.F, 'g', -1, 64)
		}
	case ir.TypeString:
		if v.S != "" {
			return strconv.Quote(v.S)
		}
	case ir.TypeBool:
		if v.I != 0 {
			return "true"
		}
	case ir.TypeDuration:
		if v.I != 0 {
			return goDuration(time.Duration(v.I))
		}
	}
	return ""
}

// goDuration writes d as a Go expression: 15 * time.Minute, or in
// nanoseconds when no unit divides it.
func goDuration(d time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "Hour"}, {time.Minute, "Minute"}, {time.Second, "Second"}, {time.Millisecond, "Millisecond"}, {time.Microsecond, "Microsecond"}} {
		if d%u.d == 0 {
			return fmt.Sprintf("%d * time.%s", d/u.d, u.name)
		}
	}
	return fmt.Sprintf("time.Duration(%d)", int64(d))
}

// machinesData names the declarations of f's machines in one namespace
// (see the package doc): first every machine's prefix, then the rest,
// machine by machine. It returns the namespace too.
func machinesData(f *ir.File) ([]machine, namespace) {
	top := namespace{}
	prefixes := make([]string, len(f.Machines))
	for i, m := range f.Machines {
		prefixes[i] = top.claimPrefix(exported(m.Name))
	}
	out := make([]machine, len(f.Machines))
	for i, m := range f.Machines {
		out[i] = machineData(m, i, prefixes[i], top)
	}
	return out, top
}

// machineData describes m, whose fixed names have prefix, claiming the
// names of its states, event types and action results in top, in the
// order the generated file declares them.
func machineData(m *ir.Machine, index int, prefix string, top namespace) machine {
	md := machine{Name: m.Name, Go: prefix, Index: index, Context: fieldsOf(m.Context)}
	var stateNames []string
	for _, s := range m.States {
		stateNames = append(stateNames, s.Name)
	}
	stateGo := uniqueNames(stateNames)
	for i, s := range m.States {
		md.States = append(md.States, state{Name: s.Name, Go: top.claim(prefix + "State" + stateGo[i])})
	}
	var eventNames []string
	for _, e := range m.Events[2:] {
		eventNames = append(eventNames, e.Name)
	}
	eventGo := uniqueNames(eventNames)
	events := map[int]event{}
	for i, e := range m.Events[2:] {
		ev := event{Name: e.Name, Go: top.claim(prefix + eventGo[i] + "Event"), Send: "Send" + eventGo[i], Fields: fieldsOf(e.Params)}
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
			act.Result = top.claim(prefix + actionGo[i] + "Result")
			act.Marker = lowerFirst(act.Result)
			ids := append([]int(nil), a.Emits...)
			sort.Ints(ids)
			for _, id := range ids {
				act.Emits = append(act.Emits, events[id])
			}
		}
		md.Actions = append(md.Actions, act)
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
