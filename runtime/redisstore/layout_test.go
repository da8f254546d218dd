package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/redis/go-redis/v9"
)

// TestWaitingInstanceIsOneCompactHash: an instance waiting on a timer
// is one key, which Redis keeps as a listpack, and nothing of it is
// lost in that form.
func TestWaitingInstanceIsOneCompactHash(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	m := irtest.Compile(t, "idle.fsm", []byte(`machine Idle {
    event Go
    initial state Waiting {
        after 1h -> Done
        on Go -> Done
    }
    final state Done
}`)).Machines[0]
	e := runtime.New(redisstore.New(c, redisstore.Options{Prefix: prefix, NoRedlock: true}), runtime.Options{})
	if err := e.Register(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "Idle", "order-1", nil, runtime.StartOptions{Priority: 3}); err != nil {
		t.Fatal(err)
	}
	compactHash(t, c, prefix, "order-1")
	v, err := e.Get(ctx, "order-1")
	if err != nil {
		t.Fatal(err)
	}
	if v.StateName != "Waiting" || v.Priority != 3 || v.Version != 1 || v.Hash != m.Hash || v.Machine != "Idle" || len(v.History) != 1 {
		t.Fatalf("read back %+v", v)
	}
	if err := e.Send(ctx, "order-1", "Go", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := e.Get(ctx, "order-1"); v.StateName != "Done" || v.Status != runtime.Completed {
		t.Fatalf("after Go: %s %s", v.StateName, v.Status)
	}
}

// compactHash checks that instance id (of the store with prefix) is one
// key, kept as a listpack of at most 256 bytes.
func compactHash(t *testing.T, c redis.UniversalClient, prefix, id string) {
	t.Helper()
	ctx := context.Background()
	keys, err := c.Keys(ctx, prefix+":*"+id+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("the instance has keys %v, want one", keys)
	}
	if enc := c.ObjectEncoding(ctx, keys[0]).Val(); enc != "listpack" {
		t.Errorf("the instance's hash is a %s, want a listpack", enc)
	}
	size := c.MemoryUsage(ctx, keys[0], 0).Val()
	if size > 256 {
		t.Errorf("the instance's hash takes %d bytes, want at most 256", size)
	}
	t.Logf("%s: %d bytes", id, size)
}

// TestEndedInstanceStaysCompact: a one-step instance that ran its task
// and completed, with three history entries, is still one listpack
// (history times are kept after the instance's creation), and its
// history reads back with the times it was given.
func TestEndedInstanceStaysCompact(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	store, m := oneStepStore(t, c, prefix)
	now := time.UnixMilli(time.Now().UnixMilli())
	if err := runOneStep(ctx, store, m, "ended-1", now); err != nil {
		t.Fatal(err)
	}
	compactHash(t, c, prefix, "ended-1")
	h, err := store.History(ctx, "ended-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 {
		t.Fatalf("history %+v, want three entries", h)
	}
	for _, e := range h {
		if !e.Time.Equal(now) {
			t.Errorf("entry %+v: time %v, want %v", e, e.Time, now)
		}
	}
}

// TestContextStaysCompact: an instance of the README's Order machine,
// five context fields at their defaults, is still a listpack (each
// value a type letter and its text).
func TestContextStaysCompact(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	m := irtest.Compile(t, "order.fsm", irtest.Examples(t)["order.fsm"]).Machines[0]
	e := runtime.New(redisstore.New(c, redisstore.Options{Prefix: prefix, NoRedlock: true}), runtime.Options{})
	if err := e.Register(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "Order", "c5", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	compactHash(t, c, prefix, "c5")
}

// TestFreeTextSurvives: IDs, payload strings and failure messages with
// the records' separators (commas, newlines, quotes, bars) come back as
// they went in, in the instance, its history and the changelog.
func TestFreeTextSurvives(t *testing.T) {
	ctx := context.Background()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	m := irtest.Compile(t, "note.fsm", []byte(`machine Note {
    context {
        text: string = ""
    }
    event Write(text: string)
    action Post
    initial state Open {
        on Write -> Posting set text = event.text
    }
    state Posting {
        do Post
        on done -> Open
    }
}`)).Machines[0]
	const text = "a,b\n\"c\"|d\\e"
	msg := "refused,\nsecond line \"quoted\" | bar"
	store := redisstore.New(redisClient(t), redisstore.Options{Prefix: prefix, NoRedlock: true})
	e := runtime.New(store, runtime.Options{})
	post := func(context.Context, *runtime.Call) (runtime.Result, error) {
		return runtime.Result{}, runtime.Permanent(errors.New(msg))
	}
	if err := e.Register(ctx, m, map[string]runtime.Handler{"Post": post}); err != nil {
		t.Fatal(err)
	}
	id := "t|x|1|q|y,z:w" // the layout's separators; IDs have no white space
	if err := e.Start(ctx, "Note", id, nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Send(ctx, id, "Write", map[string]any{"text": text}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := e.Get(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if v.ID != id || v.Status != runtime.Failed || v.Context[0].S != text || !strings.Contains(v.Failure, msg) {
		t.Fatalf("read back %q status %s context %q failure %q", v.ID, v.Status, v.Context[0].S, v.Failure)
	}
	found := false
	for _, h := range v.History {
		found = found || h.Kind == runtime.HistAttemptFailed && strings.Contains(h.Message, msg)
	}
	if !found {
		t.Errorf("no failed attempt with the message in %+v", v.History)
	}
	changes, _, err := store.Changes(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[0].Instance != id || changes[1].Instance != id || changes[1].Hash != m.Hash || changes[1].Machine != "Note" {
		t.Fatalf("changes %+v", changes)
	}
}

// TestMachineIDTaken: a machine version whose short id another version
// holds in the registry is refused, not mixed up with it.
func TestMachineIDTaken(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	a := irtest.Compile(t, "a.fsm", []byte("machine A {\n    initial state S\n}\n")).Machines[0]
	b := irtest.Compile(t, "b.fsm", []byte("machine B {\n    initial state T\n}\n")).Machines[0]
	store := redisstore.New(c, redisstore.Options{Prefix: prefix})
	if err := store.PutMachine(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := store.PutMachine(ctx, b); err != nil {
		t.Fatalf("registering the same version again: %v", err)
	}
	// Put B under A's id, as a clash of the ids' 48 bits would.
	idOf := func(hash string) string { return strings.TrimPrefix(hash, "sha256:")[:12] }
	data, err := c.Get(ctx, prefix+":machine:"+idOf(b.Hash)).Result()
	if err != nil {
		t.Fatal(err)
	}
	c.Set(ctx, prefix+":machine:"+idOf(a.Hash), data, 0)
	err = store.PutMachine(ctx, a)
	if err == nil || !strings.Contains(err.Error(), "is taken by B") {
		t.Fatalf("registering A over B's id: %v", err)
	}
	if _, err := store.Machine(ctx, a.Hash); err == nil {
		t.Fatal("Machine(A's hash) returned B")
	}
}

// TestNonFiniteFloatsSurvive: a float division by zero gives +Inf, and a
// host may pass NaN or -Inf; the store keeps them (JSON has no number
// for them), and the rest of the context with them.
func TestNonFiniteFloatsSurvive(t *testing.T) {
	ctx := context.Background()
	m := irtest.Compile(t, "div.fsm", []byte(`machine Div {
    context {
        a: float = 1.0
        b: float = 0.0
        r: float = 0.0
        name: string = "kept"
    }
    event Go(x: float)
    initial state S {
        on Go -> T set r = a / b, b = event.x
    }
    state T {
        on Go if name == "kept" -> S set a = event.x
    }
}`)).Machines[0]
	store := redisstore.New(redisClient(t), redisstore.Options{Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), NoRedlock: true})
	e := runtime.New(store, runtime.Options{})
	if err := e.Register(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "Div", "d", map[string]any{"a": math.NaN()}, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, x := range []float64{math.Inf(-1), math.Inf(1)} {
		if err := e.Send(ctx, "d", "Go", map[string]any{"x": x}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.RunDue(ctx); err != nil {
		t.Fatal(err)
	}
	v, err := e.Get(ctx, "d")
	if err != nil {
		t.Fatal(err)
	}
	a, b, r := v.Fields.Float("a"), v.Fields.Float("b"), v.Fields.Float("r")
	if v.StateName != "S" || !math.IsInf(a, 1) || !math.IsInf(b, -1) || !math.IsNaN(r) || v.Fields.String("name") != "kept" {
		t.Fatalf("state %s, a=%v b=%v r=%v name=%q; want S, +Inf, -Inf, NaN (NaN/0), kept", v.StateName, a, b, r, v.Fields.String("name"))
	}
}

// TestDamagedInstanceIsAnError: a stored instance whose context does not
// fit its machine (written by hand, or by a bug) is reported, not
// handed to the engine, which would index past it.
func TestDamagedInstanceIsAnError(t *testing.T) {
	ctx := context.Background()
	c := redisClient(t)
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	m := irtest.Compile(t, "div.fsm", []byte(`machine Damaged {
    context {
        n: int = 1
    }
    event Go
    initial state S {
        on Go if n > 0 -> S
    }
}`)).Machines[0]
	e := runtime.New(redisstore.New(c, redisstore.Options{Prefix: prefix, NoRedlock: true}), runtime.Options{})
	if err := e.Register(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "Damaged", "d", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := e.Send(ctx, "d", "Go", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.HDel(ctx, fmt.Sprintf("%s:{%s-0}:i:d", prefix, prefix), "c").Err(); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"Get":                 func() error { _, err := e.Get(ctx, "d"); return err }(),
		"Send":                e.Send(ctx, "d", "Go", nil),
		"handling its events": func() error { _, err := e.RunDue(ctx); return err }(),
	} {
		if err == nil || !strings.Contains(err.Error(), "instance d is damaged") {
			t.Errorf("%s of a damaged instance: %v", what, err)
		}
	}
}

// TestQueuedWorkOfAnEarlierLayout: builds before ready sets per class
// kept one ready set per priority. Work queued there is moved to this
// build's sets, and claimed, when a store of this build registers a
// machine, and when a worker that has already registered finds nothing
// to claim (work an older worker queued during an upgrade; it looks at
// most every 10 s).
func TestQueuedWorkOfAnEarlierLayout(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	part := fmt.Sprintf("%s:{%s-0}:", prefix, prefix)
	m := irtest.Compile(t, "toggle.fsm", []byte(irtest.Toggle)).Machines[0]
	now := time.Now()
	// queueOld puts instance id, with a Flip due, where an earlier
	// build would have: in the ready set of priority 0.
	queueOld := func(s *redisstore.Store, id string) {
		t.Helper()
		if err := s.PutMachine(ctx, m); err != nil {
			t.Fatal(err)
		}
		irtest.Create(t, s, m, id, now, runtime.Work{Kind: runtime.WorkEvent, Instance: id, Due: now, Event: 0})
		classes, err := c.ZRange(ctx, part+"classes:0", 0, -1).Result()
		if err != nil || len(classes) != 1 {
			t.Fatalf("classes %v %v, want the machine's", classes, err)
		}
		set := part + "ready:0:" + classes[0]
		units, err := c.ZRangeWithScores(ctx, set, 0, -1).Result()
		if err != nil || len(units) != 1 {
			t.Fatalf("ready %v %v, want the instance's unit", units, err)
		}
		c.Del(ctx, set, part+"classes:0")
		c.ZAdd(ctx, part+"ready:0", units...)
	}
	f := runtime.ClaimFilter{Worker: "w", Now: now, Lease: time.Minute}
	claim := func(s *redisstore.Store, want string) {
		t.Helper()
		var l runtime.Lease
		ok, err := s.Claim(ctx, f, &l)
		if err != nil {
			t.Fatal(err)
		}
		if !ok && l.NextKnown && !l.Next.After(now) { // it moved work: look again
			ok, err = s.Claim(ctx, f, &l)
		}
		if !ok || err != nil || l.Work.Instance != want {
			t.Fatalf("claimed %+v %v %v, want %s's Flip", l.Work, ok, err, want)
		}
	}
	queueOld(redisstore.New(c, redisstore.Options{Prefix: prefix, NoRedlock: true}), "a")
	s := redisstore.New(c, redisstore.Options{Prefix: prefix, NoRedlock: true})
	// Before it moves, the queue's figures count it (an operator sees
	// the backlog).
	if q, err := s.QueueStats(ctx, now); err != nil || q.Waiting != 1 || q.Due != 1 {
		t.Fatalf("QueueStats = %+v %v, want the earlier layout's unit waiting and due", q, err)
	}
	if err := s.PutMachine(ctx, m); err != nil {
		t.Fatal(err)
	}
	if n := c.Exists(ctx, part+"ready:0").Val(); n != 0 {
		t.Fatal("registering a machine left the earlier layout's ready set")
	}
	claim(s, "a")
	queueOld(s, "b")
	claim(s, "b")
	if n := c.Exists(ctx, part+"ready:0").Val(); n != 0 {
		t.Fatal("the earlier layout's ready set is still there")
	}
	// An entry an older build left out of date (c's work is due in an
	// hour, and a's is leased) does not make work due early, or twice.
	irtest.Create(t, s, m, "c", now, runtime.Work{Kind: runtime.WorkEvent, Instance: "c", Due: now.Add(time.Hour), Event: 0})
	c.ZAdd(ctx, part+"ready:0", redis.Z{Score: float64(now.UnixMilli() - 1000), Member: "q|c"}, redis.Z{Score: float64(now.UnixMilli()), Member: "q|a"})
	var l runtime.Lease
	// 11 s on, an idle claim looks again; the second claim is the one
	// after the move.
	f.Now = now.Add(11 * time.Second)
	for i := 0; i < 2; i++ {
		if ok, err := s.Claim(ctx, f, &l); ok || err != nil {
			t.Fatalf("claimed %+v (%v): work moved from an out-of-date entry", l.Work, err)
		}
	}
	if n := c.Exists(ctx, part+"ready:0").Val(); n != 0 {
		t.Fatal("the earlier layout's ready set is still there")
	}
}

// TestLeasesStayHashed: the partition's leases and their tokens, which
// every claim adds to and every commit takes from, are kept in Redis's
// hashed encodings from the first lease (see PLACEHOLDER in
// scripts/prelude.lua), and what keeps them so counts as no lease: once
// the work is done, no unit is leased and nothing is due.
func TestLeasesStayHashed(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	store, m := oneStepStore(t, c, prefix)
	now := time.Now()
	if err := createOneStep(ctx, store, m, "i1", now); err != nil {
		t.Fatal(err)
	}
	var l runtime.Lease
	f := runtime.ClaimFilter{Now: now.Add(time.Second), Lease: time.Minute}
	if ok, err := store.Claim(ctx, f, &l); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	part := prefix + ":{" + prefix + "-0}:"
	for key, want := range map[string]string{part + "leases": "skiplist", part + "tokens": "hashtable"} {
		if enc := c.ObjectEncoding(ctx, key).Val(); enc != want {
			t.Errorf("%s is a %s, want a %s", key, enc, want)
		}
	}
	if q, err := store.QueueStats(ctx, f.Now); err != nil || q.Leased != 1 {
		t.Fatalf("with one lease: %+v, %v; want 1 leased", q, err)
	}
	if err := finishOneStep(ctx, store, &l, now); err != nil {
		t.Fatal(err)
	}
	if q, err := store.QueueStats(ctx, f.Now); err != nil || q.Leased != 0 || q.Waiting != 0 {
		t.Fatalf("after the commit: %+v, %v; want nothing leased or waiting", q, err)
	}
	if next, ok, err := store.NextDue(ctx, f); err != nil || ok {
		t.Fatalf("after the commit, next due %v %v %v; want none", next, ok, err)
	}
}

// oneStepStore is a store of prefix on c, without Redlock, closed when
// the test ends, with the one-step machine registered.
func oneStepStore(t *testing.T, c redis.UniversalClient, prefix string) (*redisstore.Store, *ir.Machine) {
	t.Helper()
	store := redisstore.New(c, redisstore.Options{Prefix: prefix, NoRedlock: true})
	t.Cleanup(func() { store.Close() })
	m := irtest.Compile(t, "one.fsm", []byte(irtest.OneStep)).Machines[0]
	if err := store.PutMachine(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return store, m
}
