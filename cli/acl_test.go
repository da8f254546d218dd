package cli

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
)

// TestRefusedByACL: an operator command whose Redis user lacks a right
// exits 2 (Redis cannot be used as given), naming the refusal and where
// the rights are listed, whichever command it is.
func TestRefusedByACL(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	if err := c.Do(ctx, "ACL", "SETUSER", "fsmc-cli-read-only", "reset", "on", ">secret", "~*", "&*", "+@read", "+@connection").Err(); err != nil {
		t.Skipf("no ACL users on this Redis: %v", err)
	}
	prefix := fmt.Sprintf("acl%d", time.Now().UnixNano())
	startToggle(t, redisstore.New(c, redisstore.Options{Prefix: prefix}), "a")
	url := strings.Replace(redistest.URL(t), "redis://", "redis://fsmc-cli-read-only:secret@", 1)
	for _, args := range [][]string{{"send", "a", "Flip"}, {"cancel", "a"}, {"start", "Toggle", "b"}} {
		var stdout, stderr bytes.Buffer
		code := Main(append([]string{"fsmc", args[0], "--redis", url, "--prefix", prefix}, args[1:]...), strings.NewReader(""), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "Redis refused this user") || !strings.Contains(stderr.String(), "NOPERM") {
			t.Errorf("fsmc %s as a read-only user: exit %d, %s", args[0], code, stderr.String())
		}
	}
}

// TestReadOnlyReplica: an operator command that writes, pointed at a
// replica, exits 2 saying so and what to give instead, whichever
// command it is; the instance is as it was.
func TestReadOnlyReplica(t *testing.T) {
	master, replica := redistest.Replicated(t)
	ctx := context.Background()
	store, err := redisstore.Open(ctx, master.URL(), redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	admin := startToggle(t, store, "a")
	// The replica has the instance once a command reading it there
	// finds it.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var stdout, stderr bytes.Buffer
		if Main([]string{"fsmc", "inspect", "--redis", replica.URL(), "a"}, strings.NewReader(""), &stdout, &stderr) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica never had the instance: %s", stderr.String())
		}
	}
	for _, args := range [][]string{{"send", "a", "Flip"}, {"cancel", "a"}, {"start", "Toggle", "b"}} {
		var stdout, stderr bytes.Buffer
		code := Main(append([]string{"fsmc", args[0], "--redis", replica.URL()}, args[1:]...), strings.NewReader(""), &stdout, &stderr)
		if code != 2 || !strings.Contains(stderr.String(), "Redis is a read-only replica; nothing was changed: give --redis the master's URL") {
			t.Errorf("fsmc %s on a replica: exit %d, %s", args[0], code, stderr.String())
		}
	}
	// A worker pointed at the replica says so too, as it registers.
	file := filepath.Join(t.TempDir(), "toggle.fsm")
	if err := os.WriteFile(file, []byte(irtest.Toggle), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := Main([]string{"fsmc", "run", "--redis", replica.URL(), file}, strings.NewReader(""), &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "registering machine Toggle: Redis is a read-only replica: give --redis the master's URL") {
		t.Errorf("fsmc run on a replica: exit %d, %s", code, stderr.String())
	}
	v, err := admin.Get(ctx, "a")
	if err != nil || v.Version != 1 || v.Status != runtime.Active {
		t.Fatalf("the instance changed: %+v, %v", v, err)
	}
}

// startToggle registers irtest.Toggle on store and starts instance id
// of it, for a command under test to find.
func startToggle(t *testing.T, store runtime.Store, id string) *runtime.Engine {
	t.Helper()
	ctx := context.Background()
	e := runtime.New(store, runtime.Options{})
	if err := e.Register(ctx, irtest.Compile(t, "toggle.fsm", []byte(irtest.Toggle)).Machines[0], nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "Toggle", id, nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return e
}
