package redistest_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fsmc/fsmc/internal/redistest"
)

// TestInstructionsCount runs a server under callgrind and counts what
// stretches of commands cost it: a thousand SETs cost several times what
// a hundred do, and the same again (with many more run between them, not
// counted) about the same.
func TestInstructionsCount(t *testing.T) {
	srv, c := redistest.OwnUnderCallgrind(t)
	ctx := context.Background()
	// Each stretch is one pipelined round trip, so that the server's
	// timers, which also run while it counts, add little.
	count := func(sets int) float64 {
		if err := srv.Count(); err != nil {
			t.Fatal(err)
		}
		pipe := c.Pipeline()
		for i := 0; i < sets; i++ {
			pipe.Set(ctx, fmt.Sprint("k", i), "v", 0)
		}
		if _, err := pipe.Exec(ctx); err != nil {
			t.Fatal(err)
		}
		n, profile, err := srv.Instructions()
		if err != nil {
			t.Fatal(err)
		}
		if len(profile) == 0 {
			t.Fatal("no profile")
		}
		return n
	}
	few, many := count(100), count(1000)
	for i := 0; i < 5000; i++ { // not counted
		c.Set(ctx, "uncounted", i, 0)
	}
	again := count(1000)
	t.Logf("instructions: %.0f for 100 SETs, %.0f for 1000, %.0f for 1000 again", few, many, again)
	if few <= 0 || many < 3*few || again < many*0.8 || again > many*1.2 {
		t.Fatalf("counted %.0f instructions for 100 SETs, %.0f for 1000, then %.0f for 1000 again: want several times more for 1000 than for 100, and about the same twice", few, many, again)
	}
}
