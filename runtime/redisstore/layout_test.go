package redisstore_test

import (
	"context"
	"errors"
	"fmt"
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
	id := "t|x|1|q|y,z\nw"
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
