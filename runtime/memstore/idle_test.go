package memstore_test

import (
	"context"
	goruntime "runtime"
	"strconv"
	"testing"

	"github.com/fsmc/fsmc/compiler"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
)

// TestIdleInstanceMemory: an instance that waits, with one entry of
// history, costs the embedded store about 500 bytes, not the history it
// may grow to keep (a ring of DefaultHistory entries made at the start
// took about 10 KB).
func TestIdleInstanceMemory(t *testing.T) {
	f, diags, err := compiler.CompileSource("toggle.fsm", []byte(irtest.Toggle))
	if err != nil || diags.HasErrors() {
		t.Fatal(diags, err)
	}
	ctx := context.Background()
	e := runtime.New(memstore.New(memstore.Options{}), runtime.Options{})
	if err := e.Register(ctx, f.Machines[0], nil); err != nil {
		t.Fatal(err)
	}
	const n = 20000
	heap := func() uint64 {
		goruntime.GC()
		var m goruntime.MemStats
		goruntime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	for i := 0; i < n; i++ {
		if err := e.Start(ctx, "Toggle", "t"+strconv.Itoa(i), nil, runtime.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	per := float64(heap()-before) / n
	t.Logf("%.0f bytes per waiting instance", per)
	if per > 1000 {
		t.Fatalf("%.0f bytes per waiting instance, want at most 1,000", per)
	}
	goruntime.KeepAlive(e)
}
