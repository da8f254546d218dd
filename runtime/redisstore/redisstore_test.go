package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/fsmc/fsmc/runtime/storetest"
	"github.com/redis/go-redis/v9"
)

var prefixes atomic.Int64

func TestMain(m *testing.M) {
	if os.Getenv("FSMC_CHAOS_WORKER") == "1" {
		chaosWorker()
		return
	}
	code := m.Run()
	redistest.Stop()
	os.Exit(code)
}

func redisClient(t testing.TB) redis.UniversalClient { return redistest.Client(t) }

// TestConformance runs the store conformance suite on Redis, each test
// with its own key prefix on the shared server: the store contract with
// leases and fences alone (its fake clocks cannot move Redis's lock
// expiry), the meaning of machines with the per-instance Redlock too.
func TestConformance(t *testing.T) {
	newStore := func(parts int, redlock bool) storetest.NewStore {
		return func(t *testing.T) runtime.Store {
			prefix := fmt.Sprintf("t%d", prefixes.Add(1))
			return redisstore.New(redisClient(t), redisstore.Options{Prefix: prefix, Partitions: parts, NoRedlock: !redlock})
		}
	}
	// The default of a single Redis (one partition, claims without a
	// peek), and several partitions as on a Cluster.
	for _, parts := range []int{0, 4} {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			t.Run("Store", func(t *testing.T) { storetest.RunStore(t, newStore(parts, false)) })
			t.Run("Engine", func(t *testing.T) { storetest.RunEngine(t, newStore(parts, true)) })
		})
	}
}

// TestTwoEngines runs two engines, each with its own store and client,
// on one Redis: every instance runs its task and timer exactly once and
// completes, and every instance's transitions have contiguous versions.
func TestTwoEngines(t *testing.T) {
	m := compileJob(t)
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	var attempts atomic.Int64
	handlers := map[string]runtime.Handler{"Work": func(ctx context.Context, c *runtime.Call) (runtime.Result, error) {
		attempts.Add(1)
		return runtime.Result{}, nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	var engines []*runtime.Engine
	done := make(chan struct{}, 2)
	for i := 0; i < 2; i++ {
		store := redisstore.New(redisClient(t), redisstore.Options{Prefix: prefix, Partitions: 8})
		t.Cleanup(func() { store.Close() })
		e := runtime.New(store, runtime.Options{Worker: fmt.Sprintf("w%d", i), Lease: 5 * time.Second})
		if err := e.Register(ctx, m, handlers); err != nil {
			t.Fatal(err)
		}
		engines = append(engines, e)
		go func() { _ = e.Run(ctx, 3); done <- struct{}{} }()
	}
	const n = 100
	for i := 0; i < n; i++ {
		if err := engines[i%2].Start(ctx, "Job", fmt.Sprintf("job-%03d", i), nil, runtime.StartOptions{Priority: i % 10}); err != nil {
			t.Fatal(err)
		}
	}
	waitListed(t, engines[0], runtime.ListFilter{Machine: "Job", State: "Finished"}, n, 20*time.Second)
	cancel()
	<-done
	<-done
	if got := attempts.Load(); got != n {
		t.Errorf("%d task attempts for %d instances, want exactly one each", got, n)
	}
	for i := 0; i < n; i++ {
		v, err := engines[1].Get(context.Background(), fmt.Sprintf("job-%03d", i))
		if err != nil {
			t.Fatal(err)
		}
		if versions := committedVersions(v); fmt.Sprint(versions) != "[1 2 3]" {
			t.Fatalf("%s: transition versions %v, want [1 2 3]", v.ID, versions)
		}
	}
}

// TestInstanceLock: while someone holds an instance's Redlock its work is
// not claimed, an operator's update waits, and the work is claimed once
// the lock is free.
func TestInstanceLock(t *testing.T) {
	c := redisClient(t)
	store, prefix, m := jobStore(t, c)
	ctx := context.Background()
	now := time.Now()
	inst := &runtime.Instance{ID: "locked", Machine: m.Name, Hash: m.Hash, State: m.Initial, Status: runtime.Active, Visit: 1}
	work := []runtime.Work{{Kind: runtime.WorkEvent, Due: now, Event: 0}}
	if err := store.Create(ctx, inst, work, nil); err != nil {
		t.Fatal(err)
	}
	// Another holder takes the lock, as a worker would.
	holder := redsync.New(goredis.NewPool(c)).NewMutex(prefix+":{"+prefix+"-"+partitionOf("locked", 2)+"}:lock:locked", redsync.WithExpiry(time.Minute))
	if err := holder.Lock(); err != nil {
		t.Fatal(err)
	}
	f := runtime.ClaimFilter{Worker: "w", Now: now.Add(time.Second), Lease: 10 * time.Second}
	var l runtime.Lease
	if ok, err := store.Claim(ctx, f, &l); err != nil || ok {
		t.Fatalf("claimed work of a locked instance: %v %v", ok, err)
	}
	if _, err := holder.Unlock(); err != nil {
		t.Fatal(err)
	}
	if ok, err := store.Claim(ctx, f, &l); err != nil || !ok {
		t.Fatalf("the work is not claimable after the unlock: %v %v", ok, err)
	}
	// While this lease holds the lock, an update has to wait for it.
	var loaded runtime.Instance
	if err := store.Load(ctx, "locked", &loaded); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- store.Update(ctx, &runtime.Commit{Instance: &loaded}) }()
	select {
	case err := <-done:
		t.Fatalf("the update did not wait for the lock: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	if err := store.Complete(ctx, &l, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the update failed after the lock was released: %v", err)
	}
}

// TestLeaseTokensAreTheStores: a lease's token is its claim's id, which
// names the store that claimed it: another store's lease with the same
// fence (each store counts its claims from 1) is not this one's, and
// neither store can release or commit the other's.
func TestLeaseTokensAreTheStores(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	a, m := oneStepStore(t, c, prefix)
	b, _ := oneStepStore(t, c, prefix)
	now := time.Now()
	leases := make([]runtime.Lease, 2)
	for i, s := range []*redisstore.Store{a, b} {
		id := "x" + strconv.Itoa(i)
		if err := createOneStep(ctx, s, m, id, now); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.ClaimInstance(ctx, id, runtime.ClaimFilter{Now: now.Add(time.Second), Lease: time.Minute}, &leases[i]); !ok || err != nil {
			t.Fatalf("claim %s: %v %v", id, ok, err)
		}
	}
	if leases[0].Fence != leases[1].Fence {
		t.Fatalf("fences %d and %d: each store's first claim should be 1", leases[0].Fence, leases[1].Fence)
	}
	if err := b.Release(ctx, &leases[0]); !errors.Is(err, runtime.ErrLostLease) {
		t.Fatalf("b released a's lease: %v", err)
	}
	if err := finishOneStep(ctx, a, &leases[1], now); !errors.Is(err, runtime.ErrLostLease) {
		t.Fatalf("a committed b's lease: %v", err)
	}
	for i, s := range []*redisstore.Store{a, b} {
		if err := finishOneStep(ctx, s, &leases[i], now); err != nil {
			t.Fatalf("store %d's own commit: %v", i, err)
		}
	}
}

func partitionOf(id string, parts int) string {
	return strconv.Itoa(int(crc32.ChecksumIEEE([]byte(id)) % uint32(parts)))
}

// TestLocksReleasedAcrossPartitions: committing leases of two
// partitions frees both instances' locks. (Builds that took each lease's
// fence from its partition's counter gave such leases the same fence;
// the store keeps its locks by unit and fence.)
func TestLocksReleasedAcrossPartitions(t *testing.T) {
	c := redisClient(t)
	store, prefix, m := jobStore(t, c)
	ctx := context.Background()
	// Two IDs in different partitions, created the same way.
	var ids []string
	for i := 0; len(ids) < 2; i++ {
		id := fmt.Sprintf("x%d", i)
		if partitionOf(id, 2) == strconv.Itoa(len(ids)) {
			ids = append(ids, id)
		}
	}
	now := time.Now()
	var leases []runtime.Lease
	for _, id := range ids {
		inst := &runtime.Instance{ID: id, Machine: m.Name, Hash: m.Hash, State: m.Initial, Status: runtime.Active, Visit: 1}
		if err := store.Create(ctx, inst, []runtime.Work{{Kind: runtime.WorkEvent, Due: now}}, nil); err != nil {
			t.Fatal(err)
		}
		var l runtime.Lease
		if ok, err := store.ClaimInstance(ctx, id, runtime.ClaimFilter{Now: now.Add(time.Second), Lease: time.Minute}, &l); !ok || err != nil {
			t.Fatalf("claim %s: %v %v", id, ok, err)
		}
		leases = append(leases, l)
	}
	for i := range leases {
		if err := store.Complete(ctx, &leases[i], nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	rs := redsync.New(goredis.NewPool(c))
	for _, id := range ids {
		mu := rs.NewMutex(prefix+":{"+prefix+"-"+partitionOf(id, 2)+"}:lock:"+id, redsync.WithTries(1))
		if err := mu.Lock(); err != nil {
			t.Fatalf("the lock of %s is still held after its lease completed: %v", id, err)
		}
		mu.Unlock()
	}
}

// TestCluster runs the conformance suite on a 3-master Redis Cluster:
// every script's keys share one slot, so all of them run unchanged.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	addrs := redistest.Cluster(t)
	newStore := func(redlock bool) storetest.NewStore {
		return func(t *testing.T) runtime.Store {
			c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, MaxRetries: -1})
			t.Cleanup(func() { c.Close() })
			prefix := fmt.Sprintf("c%d", prefixes.Add(1))
			return redisstore.New(c, redisstore.Options{Prefix: prefix, Partitions: 8, NoRedlock: !redlock})
		}
	}
	t.Run("Store", func(t *testing.T) { storetest.RunStore(t, newStore(false)) })
	t.Run("Engine", func(t *testing.T) { storetest.RunEngine(t, newStore(true)) })
	// A URL naming one node of the Cluster finds the rest: instances on
	// every shard can be started and listed.
	t.Run("OneSeed", func(t *testing.T) {
		ctx := context.Background()
		s, err := redisstore.Open(ctx, "redis://"+addrs[0], redisstore.Options{Prefix: fmt.Sprintf("c%d", prefixes.Add(1))})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		e := runtime.New(s, runtime.Options{})
		if err := e.Register(ctx, compileJob(t), nil); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 32; i++ {
			if err := e.Start(ctx, "Job", fmt.Sprintf("j%d", i), nil, runtime.StartOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		list, err := e.List(ctx, runtime.ListFilter{})
		if err != nil || len(list) != 32 {
			t.Fatalf("listed %d of 32 instances: %v", len(list), err)
		}
	})
}

// TestClusterNodeDown: with one master of a Cluster down (and the others
// serving their slots: cluster-require-full-coverage no), workers go on
// with the work on the others' partitions; the claim that asks every
// partition failed as a whole before.
func TestClusterNodeDown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	addrs := redistest.Cluster(t, "--cluster-require-full-coverage", "no")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := redisstore.Open(ctx, "redis://"+addrs[0], redisstore.Options{Prefix: fmt.Sprintf("c%d", prefixes.Add(1))})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	m := irtest.Compile(t, "one.fsm", []byte(irtest.OneStep)).Machines[0]
	e := runtime.New(store, runtime.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err := e.Register(ctx, m, map[string]runtime.Handler{"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
		return runtime.Result{}, nil
	}}); err != nil {
		t.Fatal(err)
	}
	const n = 48
	for i := 0; i < n; i++ {
		if err := e.Start(ctx, "OneStep", fmt.Sprintf("o%d", i), nil, runtime.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	down := redis.NewClient(&redis.Options{Addr: addrs[1]})
	down.ShutdownNoSave(ctx) // its reply is the connection closing
	down.Close()
	storetest.RunInBackground(t, e, 4)
	// Every instance that can be read (its node is up) completes; some
	// cannot be (their node is down).
	var reachable, completed int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		reachable, completed = 0, 0
		for i := 0; i < n; i++ {
			var inst runtime.Instance
			if store.Load(ctx, fmt.Sprintf("o%d", i), &inst) != nil {
				continue
			}
			reachable++
			if inst.Status == runtime.Completed {
				completed++
			}
		}
		if reachable > 0 && completed == reachable {
			break
		}
	}
	if reachable == 0 || reachable == n || completed != reachable {
		t.Fatalf("of %d instances, %d on the masters still up, %d of those completed; want some on each side, and all of those up completed", n, reachable, completed)
	}
}

// TestShortLivedStoreWakesWorkers: work started through a store that is
// closed right away (as `fsmc start` does) wakes an idle worker at once;
// without the wake message it would wait for its idle timeout (a second).
func TestShortLivedStoreWakesWorkers(t *testing.T) {
	m := compileJob(t)
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	called := make(chan struct{}, 1)
	handlers := map[string]runtime.Handler{"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
		called <- struct{}{}
		return runtime.Result{}, nil
	}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	worker := redisstore.New(redisClient(t), redisstore.Options{Prefix: prefix})
	t.Cleanup(func() { worker.Close() })
	e := runtime.New(worker, runtime.Options{Worker: "worker"})
	if err := e.Register(ctx, m, handlers); err != nil {
		t.Fatal(err)
	}
	storetest.RunInBackground(t, e, 1)
	for i := 0; i < 3; i++ {
		time.Sleep(100 * time.Millisecond) // the worker is idle, sleeping
		store := redisstore.New(redisClient(t), redisstore.Options{Prefix: prefix})
		starter := runtime.New(store, runtime.Options{Worker: "starter"})
		if _, err := starter.Adopt(ctx, m.Hash); err != nil {
			t.Fatal(err)
		}
		begin := time.Now()
		if err := starter.Start(ctx, "Job", fmt.Sprintf("job-%d", i), nil, runtime.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		store.Close()
		select {
		case <-called:
		case <-time.After(400 * time.Millisecond):
			t.Fatalf("start %d: the idle worker was not woken within 400ms", i)
		}
		t.Logf("start %d: task ran %v after the start", i, time.Since(begin))
	}
}

// TestSentinel: a redis+sentinel:// URL finds the master through a real
// Sentinel, and a worker runs a job there.
func TestSentinel(t *testing.T) {
	master := redistest.Own(t)
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	masterAddr := fmt.Sprintf("127.0.0.1:%d", master.Port)
	sentinel := redistest.Sentinel(t, "fsmc-main", masterAddr)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := redisstore.Open(ctx, "redis+sentinel://"+sentinel+"/fsmc-main/3", redisstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e := runtime.New(store, runtime.Options{Worker: "w"})
	handlers := map[string]runtime.Handler{"Work": func(context.Context, *runtime.Call) (runtime.Result, error) { return runtime.Result{}, nil }}
	if err := e.Register(ctx, compileJob(t), handlers); err != nil {
		t.Fatal(err)
	}
	storetest.RunInBackground(t, e, 2)
	if err := e.Start(ctx, "Job", "j1", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, e, "j1", 10*time.Second, completed)
	direct := redis.NewClient(&redis.Options{Addr: masterAddr, DB: 3})
	defer direct.Close()
	if n, err := direct.Exists(ctx, "fsmc:latest:Job").Result(); err != nil || n != 1 {
		t.Fatalf("the master's database 3 does not hold the deployment (exists=%d, %v)", n, err)
	}
}

func TestParseSentinelURL(t *testing.T) {
	o, err := redisstore.ParseSentinelURL("redis+sentinel://app:s3cret@h1:26379,h2:26380/main/2?sentinel_password=sp")
	if err != nil {
		t.Fatal(err)
	}
	if o.MasterName != "main" || o.DB != 2 || fmt.Sprint(o.SentinelAddrs) != "[h1:26379 h2:26380]" ||
		o.Username != "app" || o.Password != "s3cret" || o.SentinelPassword != "sp" {
		t.Fatalf("parsed %+v", o)
	}
	for url, want := range map[string]string{
		"redis+sentinel://h1:26379":                         "want /MASTER",
		"redis+sentinel://h1:26379/main/x":                  `database "x" is not a number`,
		"redis+sentinel://h1:26379/main/1/2":                "want /MASTER",
		"redis+sentinel:///main":                            "no Sentinel addresses",
		"redis+sentinel://u:pw@h1:26379/main?timeout=1":     `unknown option "timeout"`,
		"redis+sentinel://h1:26379/?sentinel_password=hide": "want /MASTER",
	} {
		_, err := redisstore.ParseSentinelURL(url)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", url, err, want)
		}
		if err != nil && (strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), "hide")) {
			t.Errorf("%s: the error shows a password: %v", url, err)
		}
	}
}

// TestTrimmedCursor: a cursor older than the capped changelog's oldest
// entry is refused with ErrCursorTrimmed rather than silently skipping
// what was trimmed; a cursor still in the stream reads on.
func TestTrimmedCursor(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	store := redisstore.New(c, redisstore.Options{Prefix: prefix, NoRedlock: true})
	e := irtest.StartToggle(t, store, "t")
	for i := 0; i < 4; i++ {
		if err := e.Fire(ctx, "t", "Flip", nil); err != nil {
			t.Fatal(err)
		}
	}
	changes, _, err := store.Changes(ctx, "", 0)
	if err != nil || len(changes) != 5 {
		t.Fatalf("Changes = %d entries, %v", len(changes), err)
	}
	// A cursor before every entry reads them all while none is trimmed.
	zero := strings.Repeat("0-0,", strings.Count(changes[0].Cursor, ",")) + "0-0"
	if all, _, err := store.Changes(ctx, zero, 0); err != nil || len(all) != 5 {
		t.Fatalf("from %s: %d entries, %v; want all 5", zero, len(all), err)
	}
	keys, err := c.Keys(ctx, prefix+"*changes").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("changelog keys %v %v", keys, err)
	}
	if err := c.XTrimMaxLen(ctx, keys[0], 2).Err(); err != nil { // as the cap would
		t.Fatal(err)
	}
	if _, _, err := store.Changes(ctx, changes[0].Cursor, 0); !errors.Is(err, runtime.ErrCursorTrimmed) {
		t.Fatalf("from a trimmed cursor: %v, want ErrCursorTrimmed", err)
	}
	if _, _, err := store.Changes(ctx, zero, 0); !errors.Is(err, runtime.ErrCursorTrimmed) {
		t.Fatalf("from %s after trimming: %v, want ErrCursorTrimmed", zero, err)
	}
	rest, _, err := store.Changes(ctx, changes[3].Cursor, 0)
	if err != nil || len(rest) != 1 || rest[0].Version != changes[4].Version {
		t.Fatalf("from a kept cursor: %+v %v", rest, err)
	}
}

// TestWakeChannelRefusedIsLogged: an ACL user without the deployment's
// channels still works, but the store says (once each way) that it
// cannot send or receive wake messages, and why.
func TestWakeChannelRefusedIsLogged(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	if err := c.Do(ctx, "ACL", "SETUSER", "fsmc-no-channels", "reset", "on", ">secret", "~*", "resetchannels", "+@all").Err(); err != nil {
		t.Skipf("no ACL users on this Redis: %v", err)
	}
	opts := *c.(*redis.Client).Options()
	opts.Username, opts.Password = "fsmc-no-channels", "secret"
	user := redis.NewClient(&opts)
	t.Cleanup(func() { user.Close() })
	var logged strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))
	store := redisstore.New(user, redisstore.Options{Prefix: prefix, NoRedlock: true, Logger: log})
	store.Wake()
	e := runtime.New(store, runtime.Options{})
	m := irtest.Compile(t, "one.fsm", []byte(irtest.OneStep)).Machines[0]
	if err := e.Register(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ { // each makes a task attempt ready: a wake message
		if err := e.Start(ctx, m.Name, fmt.Sprint("w", i), nil, runtime.StartOptions{}); err != nil {
			t.Fatalf("start as a user without channels: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	store.Close()
	mu.Lock()
	defer mu.Unlock()
	out := logged.String()
	for _, want := range []string{"cannot receive wake messages", "cannot send wake messages", "NOPERM", "&" + prefix + ":*"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	if n := strings.Count(out, "cannot send wake messages"); n != 1 {
		t.Errorf("said %d times that it cannot send, want once:\n%s", n, out)
	}
}

// TestDocumentedACLUser: the ACL user that docs/distributed.md gives,
// allowed the prefix's keys and channels only, registers a machine,
// starts instances, runs them to their end and lists them: every key
// the store uses starts with the prefix.
func TestDocumentedACLUser(t *testing.T) {
	doc, err := os.ReadFile("../../docs/distributed.md")
	if err != nil {
		t.Fatal(err)
	}
	var rule []string
	for _, line := range strings.Split(string(doc), "\n") {
		if rest, ok := strings.CutPrefix(line, "redis-cli ACL SETUSER fsmc "); ok {
			rule = strings.Fields(strings.ReplaceAll(rest, "'", ""))
		}
	}
	if len(rule) == 0 {
		t.Fatal("docs/distributed.md gives no ACL SETUSER fsmc command")
	}
	c := redisClient(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	user := "fsmc-" + prefix
	args := []any{"ACL", "SETUSER", user, "reset"}
	for _, r := range rule {
		args = append(args, strings.ReplaceAll(r, "fsmc:", prefix+":"))
	}
	if err := c.Do(ctx, args...).Err(); err != nil {
		t.Skipf("no ACL users on this Redis: %v", err)
	}
	t.Cleanup(func() { c.Do(context.Background(), "ACL", "DELUSER", user) })
	opts := *c.(*redis.Client).Options()
	opts.Username, opts.Password = user, "secret"
	client := redis.NewClient(&opts)
	t.Cleanup(func() { client.Close() })
	var logged strings.Builder
	var mu sync.Mutex
	store := redisstore.New(client, redisstore.Options{Prefix: prefix,
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))})
	t.Cleanup(func() { store.Close() })
	e := runtime.New(store, runtime.Options{})
	m := irtest.Compile(t, "one.fsm", []byte(irtest.OneStep)).Machines[0]
	work := map[string]runtime.Handler{"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
		return runtime.Result{}, nil
	}}
	if err := e.Register(ctx, m, work); err != nil {
		t.Fatalf("register as %s: %v", strings.Join(rule, " "), err)
	}
	for i := 0; i < 3; i++ {
		if err := e.Start(ctx, m.Name, fmt.Sprint("acl", i), nil, runtime.StartOptions{}); err != nil {
			t.Fatalf("start as %s: %v", strings.Join(rule, " "), err)
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- e.Run(runCtx, 2) }()
	waitListed(t, e, runtime.ListFilter{Machine: m.Name, State: "Done"}, 3, 10*time.Second)
	stop()
	if err := <-ran; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Contains(logged.String(), "NOPERM") {
		t.Errorf("the store was refused a key or channel:\n%s", logged.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestLockNodeDownAtStart: Redlock needs a majority of its nodes, so a
// store opens with one of three lock nodes down (saying so), and refuses
// to open without a majority.
func TestLockNodeDownAtStart(t *testing.T) {
	url := redistest.URL(t)
	ctx := context.Background()
	down := "redis://127.0.0.1:1" // nothing listens there
	var logged strings.Builder
	var mu sync.Mutex
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logged}, nil))
	other := redistest.Own(t)
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	store, err := redisstore.Open(ctx, url, redisstore.Options{Prefix: fmt.Sprintf("t%d", prefixes.Add(1)), LockURLs: []string{url, down, other.URL()}, Logger: log})
	if err != nil {
		t.Fatalf("one lock node of three down: %v", err)
	}
	store.Close()
	mu.Lock()
	if !strings.Contains(logged.String(), "a lock node does not answer") || !strings.Contains(logged.String(), "127.0.0.1:1") {
		t.Errorf("the store did not say which lock node is down:\n%s", logged.String())
	}
	mu.Unlock()
	_, err = redisstore.Open(ctx, url, redisstore.Options{LockURLs: []string{url, down, "redis://127.0.0.1:2"}})
	if err == nil || !strings.Contains(err.Error(), "not a majority of the 3 lock nodes") {
		t.Fatalf("two lock nodes of three down: %v, want a refusal", err)
	}
}

// TestLockNodeNamedTwice: a node named twice as a lock node, however
// its URL is written, would grant a lock once and refuse it the second
// time, so no lock would have its majority: Open refuses it.
func TestLockNodeNamedTwice(t *testing.T) {
	url := redistest.URL(t)
	o, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	same := fmt.Sprintf("redis://%s", o.Addr) // database 0 when none is named
	if o.DB != 0 {
		same = fmt.Sprintf("redis://%s/%d", o.Addr, o.DB)
	}
	// The same server under another address: a name of the host, or
	// the name in capitals.
	alias := strings.Replace(same, "127.0.0.1", "localhost", 1)
	for _, locks := range [][]string{{url, url}, {url, "redis://127.0.0.1:1", same}, {same, alias}, {alias, strings.ToUpper(alias)}} {
		_, err := redisstore.Open(context.Background(), url, redisstore.Options{LockURLs: locks})
		if err == nil || !strings.Contains(err.Error(), "is named twice") {
			t.Errorf("lock nodes %q: %v, want a refusal", locks, err)
		}
	}
	// Two databases of one server are two lock keyspaces.
	srv := redistest.Own(t)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	store, err := redisstore.Open(context.Background(), url, redisstore.Options{LockURLs: []string{
		srv.URL(), strings.TrimSuffix(srv.URL(), "/0") + "/1"}})
	if err != nil {
		t.Fatalf("two databases of one server as lock nodes: %v", err)
	}
	store.Close()
}

// TestPrefixWithGlobCharacters: listings find keys by patterns made
// from the prefix, so Open refuses a prefix that would be a pattern.
func TestPrefixWithGlobCharacters(t *testing.T) {
	for _, prefix := range []string{"fsm?", "f*", "a[b]", `a\b`} {
		_, err := redisstore.Open(context.Background(), "redis://127.0.0.1:1", redisstore.Options{Prefix: prefix})
		if err == nil || !strings.Contains(err.Error(), "glob characters") {
			t.Errorf("prefix %q: %v, want a refusal", prefix, err)
		}
	}
}

// TestLockRefusedIsNotBusy: a user who may not take the instance's lock
// is told that, not that the instance is busy.
func TestLockRefusedIsNotBusy(t *testing.T) {
	c := redisClient(t)
	ctx := context.Background()
	prefix := fmt.Sprintf("t%d", prefixes.Add(1))
	if err := c.Do(ctx, "ACL", "SETUSER", "fsmc-read-only", "reset", "on", ">secret", "~*", "&*", "+@read", "+@connection", "+fcall", "+evalsha", "+function").Err(); err != nil {
		t.Skipf("no ACL users on this Redis: %v", err)
	}
	m := irtest.Compile(t, "toggle.fsm", []byte(irtest.Toggle)).Machines[0]
	admin := runtime.New(redisstore.New(c, redisstore.Options{Prefix: prefix}), runtime.Options{})
	if err := admin.Register(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	if err := admin.Start(ctx, m.Name, "a", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	opts := *c.(*redis.Client).Options()
	opts.Username, opts.Password = "fsmc-read-only", "secret"
	user := redis.NewClient(&opts)
	t.Cleanup(func() { user.Close() })
	store := redisstore.New(user, redisstore.Options{Prefix: prefix})
	t.Cleanup(func() { store.Close() })
	err := runtime.New(store, runtime.Options{}).Cancel(ctx, "a")
	if err == nil || !strings.Contains(err.Error(), "cannot take instance a's lock") || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("cancel by a user who may not lock: %v", err)
	}
}

// TestURLErrorsHidePasswords: no message about a Redis URL shows its
// password, including one that does not parse because the password
// holds characters that should have been percent-encoded (net/url's
// messages quote the part they could not read).
func TestURLErrorsHidePasswords(t *testing.T) {
	for _, tc := range []struct {
		url, secret string
		named       bool // the message names the URL
	}{
		{"redis://u2:p@ss:w/rd#1@127.0.0.1:1/0", "ss:w/rd#1", true},
		{"redis://u2:se cret@127.0.0.1:1/0", "se cret", true},
		{"redis://u2:s3cret@127.0.0.1:1/0?bogus=1", "s3cret", false},
		{"redis://u2:pa@ss@127.0.0.1:1/0", "pa@ss", true}, // parses; nothing listens there
		{"redis://u2:s3cret@127.0.0.1:1?addr=127.0.0.1:2", "s3cret", true},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := redisstore.Open(ctx, tc.url, redisstore.Options{})
		cancel()
		if err == nil {
			t.Fatalf("%s: opened", tc.url)
		}
		msg := err.Error()
		for _, part := range []string{tc.secret, "ss:w", "rd#1", "cret", "@ss"} {
			if strings.Contains(msg, part) {
				t.Errorf("%s: the message shows %q of the password: %s", tc.url, part, msg)
			}
		}
		if tc.named && !strings.Contains(msg, "u2:***@") {
			t.Errorf("%s: the message does not name the URL with its password hidden: %s", tc.url, msg)
		}
	}
	// A lock node's URL too.
	_, err := redisstore.Open(context.Background(), redistest.URL(t), redisstore.Options{LockURLs: []string{"redis://u2:p@ss:w/rd#1@127.0.0.1:1/0"}})
	if err == nil || strings.Contains(err.Error(), "ss:w") || !strings.Contains(err.Error(), "bad lock node URL redis://u2:***@127.0.0.1:1/0") {
		t.Errorf("a lock node's URL: %v", err)
	}
}
