package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
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

// TestClosedStoreRefuses: every call made after Close fails at once with
// ErrClosed (which matches runtime.ErrClosed), whether or not the store
// made its client, rather than waiting for a round trip that never comes
// or failing with the client's own error; and an engine's Run on the
// closed store returns it.
func TestClosedStoreRefuses(t *testing.T) {
	ctx := context.Background()
	m := compileJob(t)
	opened, err := redisstore.Open(ctx, redistest.URL(t), redisstore.Options{Prefix: "closed-own"})
	if err != nil {
		t.Fatal(err)
	}
	given := redisstore.New(redisClient(t), redisstore.Options{Prefix: "closed"})
	for name, store := range map[string]*redisstore.Store{"Open": opened, "New": given} {
		t.Run(name, func(t *testing.T) {
			if err := store.PutMachine(ctx, m); err != nil {
				t.Fatal(err)
			}
			inst, history := irtest.NewInstance(m, "early", 0, time.Now())
			if err := store.Create(ctx, inst, nil, history); err != nil {
				t.Fatal(err)
			}
			store.Close()
			late, history := irtest.NewInstance(m, "late", 0, time.Now())
			var l runtime.Lease
			calls := map[string]func() error{
				"PutMachine": func() error { return store.PutMachine(ctx, m) },
				"Machine":    func() error { _, err := store.Machine(ctx, m.Hash); return err },
				"Create":     func() error { return store.Create(ctx, late, nil, history) },
				"Load":       func() error { return store.Load(ctx, "early", &runtime.Instance{}) },
				"History":    func() error { _, err := store.History(ctx, "early"); return err },
				"List":       func() error { _, err := store.List(ctx, runtime.ListFilter{}); return err },
				"Claim":      func() error { _, err := store.Claim(ctx, runtime.ClaimFilter{}, &l); return err },
				"NextDue":    func() error { _, _, err := store.NextDue(ctx, runtime.ClaimFilter{}); return err },
				"Changes":    func() error { _, _, err := store.Changes(ctx, "", 10); return err },
				"QueueStats": func() error { _, err := store.QueueStats(ctx, time.Now()); return err },
				"Retention":  func() error { _, err := store.Retention(ctx); return err },
				"Latest":     func() error { _, err := store.Latest(ctx, m.Name); return err },
				"Run": func() error {
					return runtime.New(store, runtime.Options{}).Run(ctx, 2)
				},
			}
			for call, do := range calls {
				done := make(chan error, 1)
				go func() { done <- do() }()
				select {
				case err := <-done:
					if !errors.Is(err, redisstore.ErrClosed) || !errors.Is(err, runtime.ErrClosed) {
						t.Errorf("%s after Close: %v, want ErrClosed", call, err)
					}
				case <-time.After(5 * time.Second):
					t.Errorf("%s after Close did not return", call)
				}
			}
		})
	}
}

// ownStore starts a redis-server of the test's own, and opens a store
// with prefix on it, closed when the test ends.
func ownStore(t *testing.T, prefix string) (*redistest.Server, *redisstore.Store) {
	t.Helper()
	srv := redistest.Own(t)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	store, err := redisstore.Open(context.Background(), srv.URL(), redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return srv, store
}

// TestDeadlineWhileRedisHangs: a call whose context ends before the
// client's read timeout (3 s) returns then, though Redis does not answer
// (a stopped process, as a hung host would be).
func TestDeadlineWhileRedisHangs(t *testing.T) {
	srv, store := ownStore(t, "hang")
	ctx := context.Background()
	if err := syscall.Kill(srv.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(srv.Pid(), syscall.SIGCONT)
	for name, do := range map[string]func(context.Context) error{
		"Load (a command)": func(ctx context.Context) error { return store.Load(ctx, "x", &runtime.Instance{}) },
		"Claim (a script)": func(ctx context.Context) error {
			_, err := store.Claim(ctx, runtime.ClaimFilter{}, &runtime.Lease{})
			return err
		},
	} {
		ctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		start := time.Now()
		err := do(ctx)
		cancel()
		if took := time.Since(start); err == nil || took > 2*time.Second {
			t.Errorf("%s with a 200ms deadline while Redis hangs: %v after %v, want an error within the deadline", name, err, took.Round(time.Millisecond))
		}
	}
}

// TestCloseCutsACallShort: a call in flight when Close closes the client
// that Open made (Redis does not answer: a stopped process) returns
// ErrClosed then, as a call made after Close does, not the client's own
// error; and a call that Redis answered before keeps its answer.
func TestCloseCutsACallShort(t *testing.T) {
	srv, store := ownStore(t, "cut")
	ctx := context.Background()
	if err := store.Load(ctx, "none", &runtime.Instance{}); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("Load of a missing instance: %v, want ErrNotFound", err)
	}
	if err := syscall.Kill(srv.Pid(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(srv.Pid(), syscall.SIGCONT)
	done := make(chan error, 1)
	go func() { done <- store.Load(ctx, "x", &runtime.Instance{}) }()
	select {
	case err := <-done:
		t.Fatalf("Load answered by a stopped Redis: %v", err)
	case <-time.After(300 * time.Millisecond): // in flight
	}
	closed := time.Now()
	store.Close()
	select {
	case err := <-done:
		if !errors.Is(err, redisstore.ErrClosed) || !errors.Is(err, runtime.ErrClosed) {
			t.Errorf("Load in flight at Close: %v, want ErrClosed", err)
		}
		if took := time.Since(closed); took > 2*time.Second {
			t.Errorf("Load returned %v after Close, at the client's read timeout rather than at Close", took)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Load in flight at Close did not return")
	}
}

// TestScriptsFailWhileRedisIsDown: scripts that share a round trip while
// Redis is away each fail; none is told it ran (a pipeline that finds no
// connection leaves its commands with neither reply nor error).
func TestScriptsFailWhileRedisIsDown(t *testing.T) {
	srv, store := ownStore(t, "down")
	ctx := context.Background()
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
