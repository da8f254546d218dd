package bench

import (
	"context"
	"testing"

	"github.com/fsmc/fsmc/compiler"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
	"github.com/looplab/fsm"
	"github.com/qmuntal/stateless"
)

const toggle = irtest.Toggle

// BenchmarkFire fires one event per iteration at a two-state toggle: no
// actions, no guards, and (for fsmc) the embedded store's in-memory state
// with its queue, fenced commit and history.
func BenchmarkFire(b *testing.B) {
	b.Run("fsmc", func(b *testing.B) {
		f, diags, err := compiler.CompileSource("toggle.fsm", []byte(toggle))
		if err != nil || diags.HasErrors() {
			b.Fatal(diags, err)
		}
		if _, err := f.Encode(); err != nil {
			b.Fatal(err)
		}
		ctx := context.Background()
		e := runtime.New(memstore.New(memstore.Options{}), runtime.Options{})
		if err := e.Register(ctx, f.Machines[0], nil); err != nil {
			b.Fatal(err)
		}
		if err := e.Start(ctx, "Toggle", "t", nil, runtime.StartOptions{}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := e.Fire(ctx, "t", "Flip", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stateless", func(b *testing.B) {
		sm := stateless.NewStateMachine("Off")
		sm.Configure("Off").Permit("Flip", "On")
		sm.Configure("On").Permit("Flip", "Off")
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := sm.Fire("Flip"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("looplab", func(b *testing.B) {
		m := fsm.NewFSM("Off", fsm.Events{
			{Name: "FlipOn", Src: []string{"Off"}, Dst: "On"},
			{Name: "FlipOff", Src: []string{"On"}, Dst: "Off"},
		}, fsm.Callbacks{})
		ctx := context.Background()
		events := [2]string{"FlipOn", "FlipOff"}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if err := m.Event(ctx, events[i%2]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
