package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/fsmc/fsmc/runtime/storetest"
	"github.com/redis/go-redis/v9"
)

func compileJob(t *testing.T) *ir.Machine {
	return irtest.Compile(t, "job.fsm", []byte(jobSource)).Machines[0]
}

const jobSource = `machine Job {
    action Work
    initial state Queued {
        do Work
        on done -> Cooling
        on error -> Failed
    }
    state Cooling {
        after 50ms -> Finished
    }
    final state Finished
    final state Failed
}`

// jobStore is a store of two partitions on c under a prefix of its own,
// with the Job machine registered.
func jobStore(t *testing.T, c redis.UniversalClient) (store *redisstore.Store, prefix string, m *ir.Machine) {
	t.Helper()
	prefix = fmt.Sprintf("t%d", prefixes.Add(1))
	store = redisstore.New(c, redisstore.Options{Prefix: prefix, Partitions: 2})
	m = compileJob(t)
	if err := store.PutMachine(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	return store, prefix, m
}

// committedVersions lists the versions an instance's history records
// as committed (its start, transitions and timer firings), in order.
func committedVersions(v *runtime.View) []uint64 {
	var out []uint64
	for i := range v.History {
		if _, ok := runtime.ChangeOf(&v.Instance, &v.History[i]); ok {
			out = append(out, v.History[i].Version)
		}
	}
	return out
}

// TestRegistryLostAndRestored: a running worker registers its machine
// again when the registry loses it (a Redis restarted without its data,
// or flushed), so that new instances can be started without restarting
// a worker.
func TestRegistryLostAndRestored(t *testing.T) {
	c := redisClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, prefix, m := jobStore(t, c)
	e := runtime.New(store, runtime.Options{RegistryCheck: 20 * time.Millisecond})
	if err := e.Register(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	storetest.RunInBackground(t, e, 1)
	keys, err := c.Keys(ctx, prefix+":machine:*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("registry keys %v: %v", keys, err)
	}
	if err := c.Del(ctx, keys[0], prefix+":latest:Job").Err(); err != nil {
		t.Fatal(err)
	}
	// What `fsmc start` asks the registry: the latest version of Job.
	operator := redisstore.New(c, redisstore.Options{Prefix: prefix, Partitions: 2})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		hash, err := operator.Latest(ctx, "Job")
		if err == nil && hash == m.Hash {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the registry was not restored: %q, %v", hash, err)
		}
	}
	if n, err := c.Exists(ctx, keys[0]).Result(); err != nil || n != 1 {
		t.Fatalf("the machine's IR is not back in the registry (%d, %v)", n, err)
	}
}

// TestListWithoutAVersion: instances of a version the registry lost
// (and no worker has registered again) are left out of a listing, with
// a warning, rather than failing it; reading one says what is missing.
func TestListWithoutAVersion(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	store, prefix, m := jobStore(t, c)
	other := irtest.Compile(t, "toggle.fsm", []byte(irtest.Toggle)).Machines[0]
	e := runtime.New(store, runtime.Options{})
	for _, machine := range []*ir.Machine{m, other} {
		if err := e.Register(ctx, machine, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, start := range [][2]string{{m.Name, "j1"}, {other.Name, "t1"}, {other.Name, "t2"}} {
		if err := e.Start(ctx, start[0], start[1], nil, runtime.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Del(ctx, prefix+":machine:"+ir.ShortHash(other.Hash)).Err(); err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	var mu sync.Mutex
	operator := redisstore.New(c, redisstore.Options{Prefix: prefix, Partitions: 2,
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))})
	t.Cleanup(func() { operator.Close() })
	got, err := runtime.New(operator, runtime.Options{}).List(ctx, runtime.ListFilter{})
	if err != nil || len(got) != 1 || got[0].ID != "j1" {
		t.Fatalf("list: %v, %v; want j1 alone", got, err)
	}
	mu.Lock()
	if want := "machine_id=" + ir.ShortHash(other.Hash) + " instances=2"; !strings.Contains(logged.String(), want) {
		t.Errorf("the warning lacks %q:\n%s", want, logged.String())
	}
	mu.Unlock()
	_, err = runtime.New(operator, runtime.Options{}).Get(ctx, "t1")
	if err == nil || !strings.Contains(err.Error(), ir.ShortHash(other.Hash)) || !strings.Contains(err.Error(), "registers it again") {
		t.Errorf("reading t1: %v", err)
	}
}

// TestRetention: with the deployment's retention set, an instance that
// completes or is cancelled gets it as its expiry (and is gone once it
// has passed); an active instance has none, and with the retention unset
// ended instances stay.
func TestRetention(t *testing.T) {
	c := redisClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, prefix, m := jobStore(t, c)
	key := func(id string) string { return prefix + ":{" + prefix + "-" + partitionOf(id, 2) + "}:i:" + id }
	ttl := func(id string) time.Duration {
		t.Helper()
		d, err := c.PTTL(ctx, key(id)).Result()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	if err := store.SetRetention(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if d, err := store.Retention(ctx); err != nil || d != time.Hour {
		t.Fatalf("Retention() = %v, %v; want 1h", d, err)
	}
	e := runtime.New(store, runtime.Options{})
	work := func(ctx context.Context, c *runtime.Call) (runtime.Result, error) { return runtime.Result{}, nil }
	if err := e.Register(ctx, m, map[string]runtime.Handler{"Work": work}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"done", "cancelled"} {
		if err := e.Start(ctx, "Job", id, nil, runtime.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if d := ttl("done"); d != -1 {
		t.Errorf("an active instance expires in %v", d)
	}
	if err := e.Cancel(ctx, "cancelled"); err != nil {
		t.Fatal(err)
	}
	storetest.RunInBackground(t, e, 2)
	waitListed(t, e, runtime.ListFilter{Machine: "Job", State: "Finished"}, 1, 10*time.Second)
	for _, id := range []string{"done", "cancelled"} {
		if d := ttl(id); d <= 59*time.Minute || d > time.Hour {
			t.Errorf("%s expires in %v, want about an hour", id, d)
		}
	}

	// A retention set later holds for instances that end from then on.
	if err := store.SetRetention(ctx, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, "Job", "brief", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, err := e.Get(ctx, "brief")
		if errors.Is(err, runtime.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ended instance is still there (%v)", err)
		}
	}

	if err := store.SetRetention(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if d, err := store.Retention(ctx); err != nil || d != 0 {
		t.Fatalf("Retention() = %v, %v; want 0", d, err)
	}
	if err := e.Start(ctx, "Job", "kept", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitListed(t, e, runtime.ListFilter{Machine: "Job", State: "Finished"}, 2, 10*time.Second)
	if d := ttl("kept"); d != -1 {
		t.Errorf("with no retention, an ended instance expires in %v", d)
	}
}

// TestRemovedWhileATaskRuns: an instance cancelled while its task runs,
// and removed (past a short retention) before the result is written:
// the result is dropped, logged as such, and counted neither as a store
// error nor as a stale commit.
func TestRemovedWhileATaskRuns(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	store, _, _ := jobStore(t, c)
	if err := store.SetRetention(ctx, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var logged strings.Builder
	var mu sync.Mutex
	counts := &faultCount{}
	e := runtime.New(store, runtime.Options{Observer: counts,
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))})
	m := irtest.Compile(t, "one.fsm", []byte(irtest.OneStep)).Machines[0]
	if err := e.Register(ctx, m, map[string]runtime.Handler{"Work": func(ctx context.Context, call *runtime.Call) (runtime.Result, error) {
		if err := e.Cancel(ctx, call.Instance); err != nil {
			return runtime.Result{}, err
		}
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := e.Get(ctx, call.Instance); errors.Is(err, runtime.ErrNotFound) {
				break
			}
		}
		return runtime.Result{}, nil
	}}); err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx, m.Name, "gone", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RunDue(ctx); err != nil {
		t.Errorf("RunDue: %v", err)
	}
	if _, err := e.Get(ctx, "gone"); !errors.Is(err, runtime.ErrNotFound) {
		t.Fatalf("the instance is still there: %v", err)
	}
	if n, stale := counts.storeErrors.Load(), counts.N.Load(); n != 0 || stale != 0 {
		t.Errorf("%d store errors and %d stale commits counted", n, stale)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logged.String(), "the instance ended and was removed while its work ran; the result is dropped") || strings.Contains(logged.String(), "level=ERROR") {
		t.Errorf("the log:\n%s", logged.String())
	}
}

// faultCount counts store errors, and stale commits as StaleCount does.
type faultCount struct {
	storetest.StaleCount
	storeErrors atomic.Int64
}

func (o *faultCount) StoreError(error) { o.storeErrors.Add(1) }

// TestRetentionRestored: the deployment's retention survives a Redis
// that lost its data. A running worker that set it, or saw it set by
// another, puts it back in every partition that lost it with its
// registry check; a later setting by another worker is the one it keeps;
// "keep ended instances" is restored as such; and a store that never
// knew a retention writes none.
func TestRetentionRestored(t *testing.T) {
	c := redisClient(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	setter, prefix, m := jobStore(t, c)
	partition := func(p int) string { return fmt.Sprintf("%s:{%s-%d}:", prefix, prefix, p) }
	lose := func() { // what a restart without persistence leaves of the settings
		t.Helper()
		for p := 0; p < 2; p++ {
			if err := c.Del(ctx, partition(p)+"retain", partition(p)+"retention").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	// retains reports each partition's retention as the scripts read it
	// ("" when ended instances are kept).
	retains := func() string {
		t.Helper()
		var out []string
		for p := 0; p < 2; p++ {
			v, err := c.Get(ctx, partition(p)+"retain").Result()
			if err != nil && !errors.Is(err, redis.Nil) {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return fmt.Sprint(out)
	}
	if err := setter.SetRetention(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}

	// A worker that did not set the retention learns it with a check
	// (as Run's first would), and Run's checks restore it when the data
	// is lost.
	worker := redisstore.New(c, redisstore.Options{Prefix: prefix, Partitions: 2})
	if n, err := worker.KeepSettings(ctx); err != nil || n != 0 {
		t.Fatalf("KeepSettings restored %d partitions (%v) where none was lost", n, err)
	}
	e := runtime.New(worker, runtime.Options{RegistryCheck: 20 * time.Millisecond})
	if err := e.Register(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	storetest.RunInBackground(t, e, 1)
	lose()
	for deadline := time.Now().Add(10 * time.Second); retains() != "[3600000 3600000]"; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the retention was not restored: %s", retains())
		}
	}

	// Another worker's later setting is the one kept; keeping ended
	// instances is restored as a setting of its own, not as the lost
	// hour.
	if err := setter.SetRetention(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := worker.KeepSettings(ctx); err != nil {
		t.Fatal(err)
	}
	lose()
	if n, err := worker.KeepSettings(ctx); err != nil || n != 2 {
		t.Fatalf("KeepSettings restored %d partitions (%v), want 2", n, err)
	}
	if got := retains(); got != "[ ]" {
		t.Fatalf("retention %s after restoring 'kept'; want none", got)
	}
	if n, err := worker.KeepSettings(ctx); err != nil || n != 0 {
		t.Fatalf("KeepSettings restored %d partitions (%v) where none was lost", n, err)
	}

	// A store that never knew a retention writes none.
	lose()
	fresh := redisstore.New(c, redisstore.Options{Prefix: prefix, Partitions: 2})
	if n, err := fresh.KeepSettings(ctx); err != nil || n != 0 {
		t.Fatalf("a store that knew no retention restored %d partitions (%v)", n, err)
	}
	if n, err := c.Exists(ctx, partition(0)+"retention", partition(1)+"retention").Result(); err != nil || n != 0 {
		t.Fatalf("%d retention keys written by a store that knew none (%v)", n, err)
	}
}

// TestRegistryLostKeepsTheLatest: when the registry loses its data, in
// whole or in part, running workers register their versions again in
// whatever order their checks come, and the latest stays the version
// registered first most recently, not the one registered again last.
func TestRegistryLostKeepsTheLatest(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	version := func(extra string) *ir.Machine {
		return irtest.Compile(t, "job.fsm", []byte(strings.Replace(jobSource, "machine Job {", "machine Job {"+extra, 1))).Machines[0]
	}
	v1, v2, v3 := compileJob(t), version("\n    event Two"), version("\n    event Three")
	worker := func() *redisstore.Store { return redisstore.New(c, redisstore.Options{Prefix: prefix}) }
	older, newer := worker(), worker()
	latest := func() string {
		t.Helper()
		hash, err := worker().Latest(ctx, "Job")
		if err != nil {
			t.Fatal(err)
		}
		return hash
	}
	put := func(s *redisstore.Store, m *ir.Machine) {
		t.Helper()
		if err := s.PutMachine(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	forget := func(keys ...string) {
		t.Helper()
		if len(keys) == 0 {
			all, err := c.Keys(ctx, "*"+prefix+":*").Result()
			if err != nil || len(all) == 0 {
				t.Fatalf("registry keys %v: %v", all, err)
			}
			keys = all
		}
		if err := c.Del(ctx, keys...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	put(older, v1)
	put(newer, v2)
	put(older, v1) // an older worker registering again does not take it back
	if got := latest(); got != v2.Hash {
		t.Fatalf("latest %s, want the newer version %s", got, v2.Hash)
	}
	// Lost, then registered again: the newer version first, then the
	// older; and the other way round.
	for _, newerFirst := range []bool{true, false} {
		forget()
		if newerFirst {
			put(newer, v2)
			put(older, v1)
		} else {
			put(older, v1)
			put(newer, v2)
		}
		if got := latest(); got != v2.Hash {
			t.Errorf("registered again, newer first: %v: latest %s, want %s", newerFirst, got, v2.Hash)
		}
	}
	// Lost in part, as when one node of a Cluster loses its data: the
	// name's latest and order, and the older version's IR. Each worker's
	// next check registers its version again.
	forget(prefix+":latest:Job", prefix+":{"+prefix+":latest:Job}:versions", prefix+":machine:"+v1.Hash[len("sha256:"):][:12])
	put(older, v1)
	if got := latest(); got == v2.Hash {
		t.Fatalf("the older version was not registered again")
	}
	put(newer, v2)
	if got := latest(); got != v2.Hash {
		t.Errorf("lost in part: latest %s, want %s", got, v2.Hash)
	}
	// Many workers of a new version starting at once: it is the latest,
	// and none fails.
	var wg sync.WaitGroup
	errs := make(chan error, 30)
	for i := 0; i < 30; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- worker().PutMachine(ctx, version("\n    event Three"))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a worker of the new version failed to register it: %v", err)
		}
	}
	if got := latest(); got != v3.Hash {
		t.Errorf("after 30 workers registered it at once, latest %s, want the new version %s", got, v3.Hash)
	}
	// A registry of an earlier build keeps no times: its latest stays the
	// latest when an older version is registered again by a worker that
	// starts, and a version new to it becomes the latest.
	forget(prefix+":{"+prefix+":latest:Job}:versions", prefix+":first:"+v1.Hash[len("sha256:"):][:12],
		prefix+":first:"+v2.Hash[len("sha256:"):][:12], prefix+":first:"+v3.Hash[len("sha256:"):][:12])
	put(worker(), v1)
	put(worker(), v2)
	if got := latest(); got != v3.Hash {
		t.Errorf("a version registered by a worker that starts took the latest from an earlier build's registry: %s", got)
	}
	v4 := version("\n    event Four")
	put(worker(), v4)
	put(older, v1)
	if got := latest(); got != v4.Hash {
		t.Errorf("a new version is not the latest: %s, want %s", got, v4.Hash)
	}
}
