// Package irtest holds what tests across the module share (the
// compiler's, the IR's, the emitters', the runtime's and the store
// conformance suite's): machines compiled from source and encoded, and
// the examples, failing the test on any error.
package irtest

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/fsmc/fsmc/compiler"
	"github.com/fsmc/fsmc/compiler/ir"
	fsmc "github.com/fsmc/fsmc/runtime" // "runtime" is Go's here
)

// Toggle is a two-state machine that one event flips, with nothing else:
// the in-process engine's benchmark and the lock tests use it.
const Toggle = `machine Toggle {
    event Flip
    initial state Off {
        on Flip -> On
    }
    state On {
        on Flip -> Off
    }
}`

// OneStep is a machine whose instances run one task and end: the unit of
// the Redis store's benchmark and lock tests.
const OneStep = `machine OneStep {
    action Work
    initial state Run {
        do Work
        on done -> Done
        on error -> Done
    }
    final state Done
}`

// TaskOrTimer is a machine whose task races a 50 ms timer: done takes it
// to Done, the timer to Late. The tests of what runs while a task does
// use it.
const TaskOrTimer = `machine Slow {
    action Work
    initial state Run {
        do Work
        on done -> Done
        after 50ms -> Late
    }
    final state Done
    final state Late
}`

// Compile checks and compiles src.
func Compile(t testing.TB, name string, src []byte) *ir.File {
	t.Helper()
	f, diags, err := compiler.CompileSource(name, src)
	if err != nil || diags.HasErrors() {
		t.Fatalf("%s: %v %v", name, diags, err)
	}
	return f
}

// Encode encodes f.
func Encode(t testing.TB, f *ir.File) []byte {
	t.Helper()
	b, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Root is the repository's root directory.
func Root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Examples returns the sources of examples/*.fsm by base name.
func Examples(t testing.TB) map[string][]byte {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(Root(), "examples", "*.fsm"))
	if len(files) < 5 {
		t.Fatalf("found %d examples", len(files))
	}
	out := map[string][]byte{}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = src
	}
	return out
}

// StartToggle runs an engine on store with Toggle registered and one
// instance of it, id, started (in Off).
func StartToggle(t testing.TB, store fsmc.Store, id string) *fsmc.Engine {
	t.Helper()
	ctx := context.Background()
	e := fsmc.New(store, fsmc.Options{})
	m := Compile(t, "toggle.fsm", []byte(Toggle)).Machines[0]
	if err := e.Register(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, m.Name, id, nil, fsmc.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return e
}

// NewInstance returns instance id of m as it is created at now: active
// in the initial state, on its first visit, with the context's defaults;
// and the history entry of its start. Store-level tests create it with
// the work they need.
func NewInstance(m *ir.Machine, id string, priority int, now time.Time) (*fsmc.Instance, []fsmc.HistoryEntry) {
	values := make([]ir.Value, len(m.Context))
	for i, f := range m.Context {
		if f.Default != nil {
			values[i] = *f.Default
		}
	}
	inst := &fsmc.Instance{ID: id, Machine: m.Name, Hash: m.Hash, State: m.Initial, Context: values,
		Status: fsmc.Active, Visit: 1, Priority: priority, Created: now, Updated: now}
	start := []fsmc.HistoryEntry{{Time: now, Kind: fsmc.HistStart, Version: 1, From: -1, To: m.Initial, Event: -1}}
	return inst, start
}

// Create creates instance id of m in store as NewInstance makes it at
// now, with work queued, and returns it; it fails t if the store
// refuses.
func Create(t testing.TB, store fsmc.Store, m *ir.Machine, id string, now time.Time, work ...fsmc.Work) *fsmc.Instance {
	t.Helper()
	inst, start := NewInstance(m, id, 0, now)
	if err := store.Create(context.Background(), inst, work, start); err != nil {
		t.Fatal(err)
	}
	return inst
}
