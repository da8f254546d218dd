package memstore_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
	"github.com/fsmc/fsmc/runtime/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(*testing.T) runtime.Store { return memstore.New(memstore.Options{Changelog: true}) })
}

// TestTrimmedCursor: a cursor older than the changes the store keeps is
// refused with ErrCursorTrimmed rather than silently skipping them.
func TestTrimmedCursor(t *testing.T) {
	ctx := context.Background()
	store := memstore.New(memstore.Options{Changelog: true})
	e := irtest.StartToggle(t, store, "t")
	first, _, err := store.Changes(ctx, "", 1)
	if err != nil || len(first) != 1 {
		t.Fatal(first, err)
	}
	for i := 0; i < 5000; i++ { // more than the store keeps
		if err := e.Fire(ctx, "t", "Flip", nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := store.Changes(ctx, first[0].Cursor, 0); !errors.Is(err, runtime.ErrCursorTrimmed) {
		t.Fatalf("from a trimmed cursor: %v, want ErrCursorTrimmed", err)
	}
	_, last, err := store.Changes(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if more, _, err := store.Changes(ctx, last, 0); err != nil || len(more) != 0 {
		t.Fatalf("from the latest cursor: %v %v", more, err)
	}
}
