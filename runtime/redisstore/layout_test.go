package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
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
	keys, err := c.Keys(ctx, prefix+":*order-1*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("the instance has keys %v, want one", keys)
	}
	if enc := c.ObjectEncoding(ctx, keys[0]).Val(); enc != "listpack" {
		t.Errorf("the instance's hash is a %s, want a listpack", enc)
	}
	if size := c.MemoryUsage(ctx, keys[0], 0).Val(); size > 256 {
		t.Errorf("the instance's hash takes %d bytes, want at most 256", size)
	}
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
