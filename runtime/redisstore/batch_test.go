package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
)

// TestConcurrentScriptsGetTheirOwnReplies: scripts run at once by many
// goroutines share round trips; each caller gets its own script's reply.
// Two goroutines create each instance, with different priorities: the one
// told it succeeded must be the one whose priority was stored.
func TestConcurrentScriptsGetTheirOwnReplies(t *testing.T) {
	c := redisClient(t)
	store, _, m := jobStore(t, c)
	ctx := context.Background()
	const ids = 100
	won := make([]int, ids) // the priority of the goroutine told it created instance i
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 2*ids; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, prio := fmt.Sprintf("c%d", g%ids), 1+g/ids
			inst, history := irtest.NewInstance(m, id, prio, time.Now())
			err := store.Create(ctx, inst, nil, history)
			switch {
			case err == nil:
				mu.Lock()
				if won[g%ids] != 0 {
					t.Errorf("%s: both creates were told they succeeded", id)
				}
				won[g%ids] = prio
				mu.Unlock()
			case !errors.Is(err, runtime.ErrExists):
				t.Errorf("%s: %v", id, err)
			}
		}()
	}
	wg.Wait()
	for i, prio := range won {
		var inst runtime.Instance
		if err := store.Load(ctx, fmt.Sprintf("c%d", i), &inst); err != nil {
			t.Fatal(err)
		}
		if inst.Priority != prio {
			t.Fatalf("c%d: the create told it succeeded had priority %d; the stored one has %d", i, prio, inst.Priority)
		}
	}
}

// TestClosedStoreRefuses: a script run after Close fails at once, saying
// so, rather than waiting for a round trip that never comes.
func TestClosedStoreRefuses(t *testing.T) {
	store := redisstore.New(redisClient(t), redisstore.Options{Prefix: "closed"})
	store.Close()
	m := compileJob(t)
	inst, history := irtest.NewInstance(m, "late", 0, time.Now())
	done := make(chan error, 1)
	go func() { done <- store.Create(context.Background(), inst, nil, history) }()
	select {
	case err := <-done:
		if err == nil || !errors.Is(err, redisstore.ErrClosed) {
			t.Fatalf("Create after Close: %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Create after Close did not return")
	}
}

// TestScriptsFailWhileRedisIsDown: scripts that share a round trip while
// Redis is away each fail; none is told it ran (a pipeline that finds no
// connection leaves its commands with neither reply nor error).
func TestScriptsFailWhileRedisIsDown(t *testing.T) {
	srv := redistest.Own(t)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	store, err := redisstore.Open(ctx, srv.URL(), redisstore.Options{Prefix: "down"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m := compileJob(t)
	if err := store.PutMachine(ctx, m); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var told []string
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("d%d", i)
			inst, history := irtest.NewInstance(m, id, 0, time.Now())
			if err := store.Create(ctx, inst, nil, history); err == nil {
				mu.Lock()
				told = append(told, id)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(told) > 0 {
		t.Fatalf("%d creates were told they succeeded while Redis was down (%v, ...)", len(told), told[0])
	}
}
