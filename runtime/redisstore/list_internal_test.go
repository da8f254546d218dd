package redisstore

import (
	"testing"

	"github.com/fsmc/fsmc/runtime"
)

// TestUniqueIDs: a listing whose SCAN returned keys twice has each
// instance once, the first of its copies.
func TestUniqueIDs(t *testing.T) {
	a1, a2, b, c1, c2 := &runtime.Instance{ID: "a"}, &runtime.Instance{ID: "a"}, &runtime.Instance{ID: "b"}, &runtime.Instance{ID: "c"}, &runtime.Instance{ID: "c"}
	got := uniqueIDs([]*runtime.Instance{a1, a2, b, c1, c2})
	if len(got) != 3 || got[0] != a1 || got[1] != b || got[2] != c1 {
		t.Errorf("uniqueIDs: %v", got)
	}
}
