package redisstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/redis/go-redis/v9"
)

// TestDirectResultWaitsForTheLock: a task result delivered directly
// commits only while nobody holds the instance's Redlock, whether the
// commit script checks the lock itself (the lock on the main Redis) or
// the store takes it through redsync (separate lock nodes).
func TestDirectResultWaitsForTheLock(t *testing.T) {
	m := irtest.Compile(t, "one.fsm", []byte(irtest.OneStep)).Machines[0]
	eachLockPlacement(t, m, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		irtest.Create(t, s, m, "a", now, runtime.Work{Kind: runtime.WorkTask, Due: now, Visit: 1, Attempt: 1})
		var l runtime.Lease
		if ok, err := s.Claim(ctx, runtime.ClaimFilter{Now: now, Lease: time.Minute}, &l); !ok || err != nil {
			t.Fatalf("claim: %v %v", ok, err)
		}
		deliver := func() bool {
			next := *l.Instance
			next.State, next.Status, next.Visit = 1, runtime.Completed, 2
			done, err := s.CompleteDirect(ctx, &l, &runtime.Commit{Instance: &next, DropWork: true,
				History: []runtime.HistoryEntry{{Time: now, Kind: runtime.HistTransition, Version: 2, To: 1}}}, now)
			if err != nil {
				t.Fatal(err)
			}
			return done
		}

		held, err := s.lockInstance(ctx, "a", time.Minute, 1)
		if err != nil {
			t.Fatal(err)
		}
		if deliver() {
			t.Fatal("the result was committed while another holder had the instance's lock")
		}
		var got runtime.Instance
		if err := s.Load(ctx, "a", &got); err != nil || got.Version != 1 || got.Status != runtime.Active {
			t.Fatalf("a refused commit changed the instance: %+v %v", got, err)
		}
		if _, err := held.UnlockContext(ctx); err != nil {
			t.Fatal(err)
		}
		if !deliver() {
			t.Fatal("the result was refused with the lock free")
		}
		if err := s.Load(ctx, "a", &got); err != nil || got.Version != 2 || got.Status != runtime.Completed {
			t.Fatalf("after the commit: %+v %v", got, err)
		}
	})
}

// TestInstanceWorkHoldsTheLock: a claim of an instance's event takes the
// instance's Redlock and the commit (or a release) frees it; while
// someone else holds the lock, the event is not claimed. Both with the
// lock on the main Redis (the scripts take it) and on lock nodes.
func TestInstanceWorkHoldsTheLock(t *testing.T) {
	m := irtest.Compile(t, "toggle.fsm", []byte(irtest.Toggle)).Machines[0]
	eachLockPlacement(t, m, func(t *testing.T, s *Store) {
		ctx := context.Background()
		now := time.Now()
		flip := runtime.Work{Kind: runtime.WorkEvent, Instance: "a", Due: now, Event: 2}
		inst := irtest.Create(t, s, m, "a", now, flip, flip)
		f := runtime.ClaimFilter{Now: now, Lease: time.Minute}
		var l runtime.Lease

		held, err := s.lockInstance(ctx, "a", time.Minute, 1)
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := s.Claim(ctx, f, &l); ok || err != nil {
			t.Fatalf("claimed %+v (%v) while another holder had the instance's lock", l.Work, err)
		}
		// An operator's change waits about a second for the lock, then
		// says the instance is busy.
		if err := s.Update(ctx, &runtime.Commit{Instance: inst}); !errors.Is(err, ErrBusy) {
			t.Fatalf("a change while another holder had the lock: %v, want ErrBusy", err)
		}
		if _, err := held.UnlockContext(ctx); err != nil {
			t.Fatal(err)
		}

		if ok, err := s.Claim(ctx, f, &l); !ok || err != nil {
			t.Fatalf("claim with the lock free: %v %v", ok, err)
		}
		if lockFree(s, "a") {
			t.Fatal("the lock was free while the instance's event was claimed")
		}
		next := *l.Instance
		next.State = 1
		if err := s.Commit(ctx, &l, &runtime.Commit{Instance: &next}); err != nil {
			t.Fatal(err)
		}
		if !lockFree(s, "a") {
			t.Fatal("the commit did not free the lock")
		}

		if ok, err := s.Claim(ctx, f, &l); !ok || err != nil {
			t.Fatalf("claim of the second event: %v %v", ok, err)
		}
		if err := s.Release(ctx, &l); err != nil {
			t.Fatal(err)
		}
		if !lockFree(s, "a") {
			t.Fatal("the release did not free the lock")
		}
	})
}

// lockFree reports whether instance id's Redlock is free: taking it
// succeeds (and it is freed again).
func lockFree(s *Store, id string) bool {
	ctx := context.Background()
	m, err := s.lockInstance(ctx, id, time.Minute, 1)
	if err != nil {
		return false
	}
	_, _ = m.UnlockContext(ctx)
	return true
}

// eachLockPlacement runs test on a store with m registered, once with the
// Redlock on the main Redis (the scripts take it) and once on lock nodes
// (redsync takes it).
func eachLockPlacement(t *testing.T, m *ir.Machine, test func(t *testing.T, s *Store)) {
	c := redistest.Client(t)
	for _, tc := range []struct {
		name  string
		nodes []redis.UniversalClient
	}{{"lock on the main Redis", nil}, {"lock nodes", []redis.UniversalClient{c}}} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(c, Options{Prefix: testPrefix("lock"), LockNodes: tc.nodes})
			if s.lockHere != (tc.nodes == nil) {
				t.Fatalf("lockHere = %v", s.lockHere)
			}
			if err := s.PutMachine(context.Background(), m); err != nil {
				t.Fatal(err)
			}
			test(t, s)
		})
	}
}

// hungNode is a lock node that accepts connections and never answers,
// as a paused or partitioned Redis does; its client gives up after
// timeout.
func hungNode(t *testing.T, timeout time.Duration) redis.UniversalClient {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	c := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1, ReadTimeout: timeout})
	t.Cleanup(func() {
		c.Close()
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, conn := range conns {
			conn.Close()
		}
	})
	return c
}

// otherDB is a client of the test Redis's database n: a lock node with
// keys of its own.
func otherDB(t *testing.T, n int) redis.UniversalClient {
	opts := redistest.Client(t).Options()
	o := *opts
	o.DB = n
	c := redis.NewClient(&o)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestHungLockNode: with one of three lock nodes hung, instance work is
// claimed, committed and its lock released on the other two's answers,
// without waiting for the hung node's timeout (3s here) at each step.
// With two hung, a claim fails as an outage (which the worker reports
// and backs off from), not as a busy instance to try again at once.
func TestHungLockNode(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	newStore := func(nodes ...redis.UniversalClient) *Store {
		return New(c, Options{Prefix: testPrefix("hung"), LockNodes: nodes})
	}

	s := newStore(otherDB(t, 1), otherDB(t, 2), hungNode(t, 3*time.Second))
	began := time.Now()
	l := claimedFlip(t, s) // claimed with two of three lock nodes
	if err := s.Commit(ctx, &l, flipCommit(&l)); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("claim and commit took %v: they waited for the hung node", took)
	}

	s = newStore(otherDB(t, 3), hungNode(t, 200*time.Millisecond), hungNode(t, 200*time.Millisecond))
	m := registerToggle(t, s)
	now := time.Now()
	irtest.Create(t, s, m, "a", now, runtime.Work{Kind: runtime.WorkEvent, Instance: "a", Due: now, Event: 2})
	ok, err := s.Claim(ctx, runtime.ClaimFilter{Now: now, Lease: 2 * time.Second}, &l)
	if ok || !errors.Is(err, ErrUnreachable) {
		t.Fatalf("claim with one of three lock nodes: %v, %v; want ErrUnreachable", ok, err)
	}
	if strings.Count(err.Error(), "node #") != 2 || strings.Contains(err.Error(), "\n") {
		t.Errorf("want both hung nodes named, on one line: %q", err)
	}
}

// TestLockKeptThroughOutage: a commit that fails for want of the main
// Redis keeps the instance's Redlock (on lock nodes), so the worker's
// next try, within its lease, still holds it; a Release frees it.
func TestLockKeptThroughOutage(t *testing.T) {
	srv := redistest.Own(t)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	main := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", srv.Port), MaxRetries: -1})
	t.Cleanup(func() { main.Close() })
	s := New(main, Options{Prefix: testPrefix("outage"), LockNodes: []redis.UniversalClient{redistest.Client(t)}})
	ctx := context.Background()
	l := claimedFlip(t, s)
	srv.Kill()
	if err := s.Commit(ctx, &l, flipCommit(&l)); err == nil || !Unreachable(err) {
		t.Fatalf("commit with the main Redis down: %v, want it unreachable", err)
	}
	if lockFree(s, "a") {
		t.Fatal("the failed commit freed the instance's lock")
	}
	_ = s.Release(ctx, &l)
	if !lockFree(s, "a") {
		t.Fatal("the release did not free the lock")
	}
}

// slowNode is a lock node on database db of the test Redis behind a link
// that holds each chunk for delay in each direction, with one
// connection, so a call waits while another is on its way.
func slowNode(t *testing.T, db int, delay time.Duration) redis.UniversalClient {
	hold := func(dst, src net.Conn) {
		defer dst.Close()
		buf := make([]byte, 64<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				return
			}
			time.Sleep(delay)
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	addr := redistest.Proxy(t, redistest.Client(t).Options().Addr, func(client, server net.Conn) {
		go hold(server, client)
		hold(client, server)
	})
	c := redis.NewClient(&redis.Options{Addr: addr, DB: db, PoolSize: 1, MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	return c
}

// TestSlowLockNodeIsUnlocked: a lock node slower than the other two
// still has the instance's lock released, though the unlock answered on
// the other two first; before, the unlock's call to it was cut short,
// and the lock stayed there until it expired (here a minute).
func TestSlowLockNodeIsUnlocked(t *testing.T) {
	ctx := context.Background()
	slow := slowNode(t, 3, 50*time.Millisecond)
	s := New(redistest.Client(t), Options{Prefix: testPrefix("slow"), LockNodes: []redis.UniversalClient{otherDB(t, 1), otherDB(t, 2), slow}})
	l := claimedFlip(t, s)
	if err := s.Commit(ctx, &l, flipCommit(&l)); err != nil {
		t.Fatal(err)
	}
	key := s.lockName("a")
	// The slow node's database is watched directly, not through its
	// proxy: the store's client of one connection there may still be
	// busy with the unlock, or remember a dial that a call cut short.
	watch := otherDB(t, 3)
	deadline := time.Now().Add(3 * time.Second)
	for {
		n, err := watch.Exists(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			ttl, _ := watch.PTTL(ctx, key).Result()
			t.Fatalf("the slow node still holds the instance's lock (%v left) 3s after the commit", ttl)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// claimedFlip registers the toggle with s, creates its instance a with a
// Flip queued, and claims the Flip for a minute.
func claimedFlip(t *testing.T, s *Store) runtime.Lease {
	t.Helper()
	ctx := context.Background()
	m := registerToggle(t, s)
	now := time.Now()
	irtest.Create(t, s, m, "a", now, runtime.Work{Kind: runtime.WorkEvent, Instance: "a", Due: now, Event: 2})
	var l runtime.Lease
	if ok, err := s.Claim(ctx, runtime.ClaimFilter{Now: now, Lease: time.Minute}, &l); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	return l
}

// flipCommit is the commit of claimedFlip's Flip: the instance in state 1.
func flipCommit(l *runtime.Lease) *runtime.Commit {
	next := *l.Instance
	next.State = 1
	return &runtime.Commit{Instance: &next}
}

// registerToggle registers irtest's toggle machine with s and returns it.
func registerToggle(t *testing.T, s *Store) *ir.Machine {
	t.Helper()
	m := irtest.Compile(t, "toggle.fsm", []byte(irtest.Toggle)).Machines[0]
	if err := s.PutMachine(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return m
}

// busyLoop changes its instances as fast as workers can commit: a timer
// of 1 ms re-enters its state, each time a new version.
const busyLoop = `machine Loop {
    context {
        n: int = 0
    }
    event Stop
    initial state S {
        after 1ms -> S set n = n + 1
        on Stop -> End
    }
    final state End
}`

// TestOperatorHoldsABusyInstance: an operator's cancel of an instance
// that workers change every millisecond holds the instance's lock from
// its read to its write (Hold), so no worker's commit comes between
// them and makes the write stale; each cancel succeeds at its first
// try. Before, a cancel read the instance outside the lock, and about
// one in six failed with a stale commit after ten tries.
func TestOperatorHoldsABusyInstance(t *testing.T) {
	m := irtest.Compile(t, "loop.fsm", []byte(busyLoop)).Machines[0]
	eachLockPlacement(t, m, func(t *testing.T, s *Store) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		for i := 0; i < 2; i++ {
			worker := runtime.New(s, runtime.Options{})
			if err := worker.Register(ctx, m, nil); err != nil {
				t.Fatal(err)
			}
			go worker.Run(ctx, 2)
		}
		operator := runtime.New(s, runtime.Options{})
		if err := operator.Register(ctx, m, nil); err != nil {
			t.Fatal(err)
		}
		const n = 30
		for i := 0; i < n; i++ {
			if err := operator.Start(ctx, "Loop", fmt.Sprintf("u%d", i), nil, runtime.StartOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(300 * time.Millisecond) // every instance looping
		for i := 0; i < n; i++ {
			id := fmt.Sprintf("u%d", i)
			var before runtime.Instance
			if err := s.Load(ctx, id, &before); err != nil {
				t.Fatal(err)
			}
			if before.Version < 3 {
				t.Fatalf("%s is at version %d: the workers do not keep it busy, so the test proves nothing", id, before.Version)
			}
			if err := operator.Cancel(ctx, id); err != nil {
				t.Fatalf("cancel of busy instance %s: %v", id, err)
			}
			var after runtime.Instance
			if err := s.Load(ctx, id, &after); err != nil || after.Status != runtime.Cancelled {
				t.Fatalf("%s after its cancel: %+v %v", id, after, err)
			}
		}
	})
}
