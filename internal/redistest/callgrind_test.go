package redistest_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/redis/go-redis/v9"
)

// TestInstructionsCount runs a server under callgrind and counts what
// stretches of commands cost it: a hundred SETs cost more than ten, and
// the same again (with many more run between them, not counted) about
// the same.
func TestInstructionsCount(t *testing.T) {
	if _, err := exec.LookPath("valgrind"); err != nil {
		t.Skip("needs valgrind (apt-get install valgrind)")
	}
	srv := redistest.Own(t)
	srv.UnderCallgrind()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", srv.Port)})
	defer c.Close()
	ctx := context.Background()
	count := func(sets int) float64 {
		if err := srv.Count(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < sets; i++ {
			if err := c.Set(ctx, fmt.Sprint("k", i), "v", 0).Err(); err != nil {
				t.Fatal(err)
			}
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
	few, many := count(10), count(100)
	for i := 0; i < 500; i++ { // not counted
		c.Set(ctx, "uncounted", i, 0)
	}
	again := count(100)
	if few <= 0 || many <= few || again < many*0.8 || again > many*1.2 {
		t.Fatalf("counted %.0f instructions for 10 SETs, %.0f for 100, then %.0f for 100 again: want more for 100 than for 10, and about the same twice", few, many, again)
	}
}
