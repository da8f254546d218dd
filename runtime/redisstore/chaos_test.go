package redisstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/fsmc/fsmc/runtime/storetest"
)

const flow = `machine Flow {
    action StepA
    action StepB
    action StepC
    initial state A {
        do StepA {
            retry 5
            backoff constant(10ms)
        }
        on done -> B
        on error -> Failed
    }
    state B {
        do StepB {
            retry 5
            backoff constant(10ms)
        }
        on done -> C
        on error -> Failed
    }
    state C {
        do StepC {
            retry 5
            backoff constant(10ms)
        }
        on done -> Done
        on error -> Failed
    }
    final state Done
    final state Failed
}`

// chaosWorker is what the test binary does when started as a worker
// process: serve Flow on the Redis in FSMC_CHAOS_REDIS until killed.
func chaosWorker() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	store, err := redisstore.Open(ctx, os.Getenv("FSMC_CHAOS_REDIS"), redisstore.Options{Prefix: os.Getenv("FSMC_CHAOS_PREFIX"), Partitions: 8})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	var rs runtime.Store = store
	if id := os.Getenv("FSMC_CHAOS_PAUSE_ID"); id != "" {
		rs = &pausingStore{Store: store, id: id}
	}
	engine := runtime.New(rs, runtime.Options{Worker: "chaos-" + strconv.Itoa(os.Getpid()), Lease: time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	// A step fails at random, one attempt in ten, but never on its last
	// attempt (Flow retries each five times): every instance ends in Done
	// at version 4, so a transition lost or repeated shows.
	step := func(ctx context.Context, c *runtime.Call) (runtime.Result, error) {
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		if c.Attempt <= 5 && rand.IntN(10) == 0 {
			return runtime.Result{}, errors.New("flaky step")
		}
		return runtime.Result{}, nil
	}
	m := irtest.Compile(&testing.T{}, "flow.fsm", []byte(flow)).Machines[0]
	if err := engine.Register(ctx, m, map[string]runtime.Handler{"StepA": step, "StepB": step, "StepC": step}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	_ = engine.Run(ctx, 4)
	os.Exit(0)
}

// TestKillWorkers kills worker processes with SIGKILL every few hundred
// milliseconds while instances of a three-step machine with retries run:
// every instance must complete in Done, each transition committed
// exactly once (versions 1 to 4, contiguous, none twice).
func TestKillWorkers(t *testing.T) {
	if testing.Short() {
		t.Skip("kills worker processes for a while")
	}
	url := redistest.URL(t)
	n := 5000
	if s := os.Getenv("FSMC_CHAOS_INSTANCES"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	prefix := fmt.Sprintf("chaos%d", prefixes.Add(1))
	var mu sync.Mutex
	workers := map[int]*exec.Cmd{}
	spawn := func(i int) {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FSMC_CHAOS_WORKER=1", "FSMC_CHAOS_REDIS="+url, "FSMC_CHAOS_PREFIX="+prefix)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		mu.Lock()
		workers[i] = cmd
		mu.Unlock()
	}
	for i := 0; i < 3; i++ {
		spawn(i)
	}
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, cmd := range workers {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	ctx := context.Background()
	store := redisstore.New(redistest.Client(t), redisstore.Options{Prefix: prefix, Partitions: 8})
	client := runtime.New(store, runtime.Options{})
	m := irtest.Compile(t, "flow.fsm", []byte(flow)).Machines[0]
	if err := client.Register(ctx, m, nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := client.Start(ctx, "Flow", fmt.Sprintf("f%05d", i), nil, runtime.StartOptions{Priority: i % 10}); err != nil {
			t.Fatal(err)
		}
	}

	stop := make(chan struct{})
	stopped := make(chan struct{})
	killed := 0 // the killer's until stopped is closed
	go func() {
		defer close(stopped)
		for next := 3; ; next++ {
			select {
			case <-stop:
				return
			case <-time.After(300 * time.Millisecond):
			}
			victim := rand.IntN(3)
			mu.Lock()
			cmd := workers[victim]
			mu.Unlock()
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			killed++
			spawn(victim)
		}
	}()
	deadline := time.Now().Add(4 * time.Minute)
	for {
		done, err := client.List(ctx, runtime.ListFilter{Machine: "Flow", Status: runtime.Completed})
		if err != nil {
			t.Fatal(err)
		}
		if len(done) == n {
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			t.Fatalf("only %d of %d instances completed", len(done), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	<-stopped
	t.Logf("%d instances completed while %d workers were killed", n, killed)

	for i := 0; i < n; i++ {
		id := fmt.Sprintf("f%05d", i)
		v, err := client.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		versions := committedVersions(v)
		for k, ver := range versions {
			if ver != uint64(k+1) {
				t.Fatalf("%s: transition versions %v are not contiguous from 1", id, versions)
			}
		}
		if v.Version != 4 || len(versions) != 4 || v.StateName != "Done" {
			t.Fatalf("%s: version %d after %d transitions, in %s", id, v.Version, len(versions), v.StateName)
		}
	}
}

// TestRedisRestart kills Redis (AOF on, fsync always) in the middle of a
// run and starts it again: the workers reconnect and every instance
// completes.
func TestRedisRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a redis-server")
	}
	srv := redistest.Own(t, "--appendonly", "yes", "--appendfsync", "always")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	const n = 1000
	prefix := "restart"
	var cmds []*exec.Cmd
	logs := make([]redistest.Output, 2)
	for i := range logs {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FSMC_CHAOS_WORKER=1", "FSMC_CHAOS_REDIS="+srv.URL(), "FSMC_CHAOS_PREFIX="+prefix)
		cmd.Stderr = &logs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	stopWorkers := func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		cmds = nil
	}
	t.Cleanup(stopWorkers)
	ctx := context.Background()
	store, err := redisstore.Open(ctx, srv.URL(), redisstore.Options{Prefix: prefix, Partitions: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	client := runtime.New(store, runtime.Options{})
	if err := client.Register(ctx, irtest.Compile(t, "flow.fsm", []byte(flow)).Machines[0], nil); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := client.Start(ctx, "Flow", fmt.Sprintf("r%04d", i), nil, runtime.StartOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // let the run get going
	before, _ := client.List(ctx, runtime.ListFilter{Machine: "Flow", Status: runtime.Completed})
	srv.Kill()
	t.Logf("Redis killed with %d of %d instances completed", len(before), n)
	if len(before) == n {
		t.Fatal("everything finished before the restart; the test proves nothing")
	}
	time.Sleep(time.Second)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	waitListed(t, client, runtime.ListFilter{Machine: "Flow", Status: runtime.Completed}, n, 2*time.Minute)
	for i := 0; i < n; i++ {
		v, err := client.Get(ctx, fmt.Sprintf("r%04d", i))
		if err != nil {
			t.Fatal(err)
		}
		if v.Version != 4 {
			t.Fatalf("%s: version %d in %s (%s), want 4 (start and three transitions, each once); history:\n%s", v.ID, v.Version, v.StateName, v.Failure, historyText(v))
		}
	}
	// Each worker says that it lost Redis, and that it works again (when
	// its backoff ends: the instances may all have completed before).
	for i := range logs {
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(logs[i].String(), "claiming work again: the store answers") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if log := logs[i].String(); !strings.Contains(log, "claiming work") || !strings.Contains(log, "claiming work again: the store answers") {
			t.Errorf("worker %d's log does not tell of the outage and the recovery:\n%s", i, log)
		}
	}
}

// pausingStore is a worker's store that stops just before committing
// instance FSMC_CHAOS_PAUSE_ID, says so on stdout and waits, so that the
// test can SIGSTOP the process at that point; the commit that follows is
// reported on stdout too.
type pausingStore struct {
	*redisstore.Store
	id     string
	paused bool
}

func (p *pausingStore) Commit(ctx context.Context, l *runtime.Lease, c *runtime.Commit) error {
	if c.Instance.ID != p.id || p.paused {
		return p.Store.Commit(ctx, l, c)
	}
	p.pause(c)
	err := p.Store.Commit(ctx, l, c)
	fmt.Println("COMMIT", err)
	return err
}

// CompleteDirect pauses like Commit: a task's result committed directly
// is fenced the same way.
func (p *pausingStore) CompleteDirect(ctx context.Context, l *runtime.Lease, c *runtime.Commit, due time.Time) (bool, error) {
	if c.Instance.ID != p.id || p.paused {
		return p.Store.CompleteDirect(ctx, l, c, due)
	}
	p.pause(c)
	done, err := p.Store.CompleteDirect(ctx, l, c, due)
	fmt.Println("COMMIT", done, err)
	return done, err
}

func (p *pausingStore) pause(c *runtime.Commit) {
	p.paused = true
	fmt.Println("PAUSING", c.Instance.Version)
	time.Sleep(500 * time.Millisecond) // the test stops the process in here
}

// TestPausedWorkerIsFenced stops a worker (SIGSTOP) just before it
// commits an instance, past its lease and its Redlock, lets another
// worker take the instance over, then continues it (SIGCONT): its commit
// is refused, and each version of the instance was committed once.
func TestPausedWorkerIsFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("pauses a worker process")
	}
	url := redistest.URL(t)
	prefix := fmt.Sprintf("pause%d", prefixes.Add(1))
	ctx := context.Background()
	store := redisstore.New(redistest.Client(t), redisstore.Options{Prefix: prefix, Partitions: 8})
	client := runtime.New(store, runtime.Options{})
	if err := client.Register(ctx, irtest.Compile(t, "flow.fsm", []byte(flow)).Machines[0], nil); err != nil {
		t.Fatal(err)
	}

	// The worker that will be paused, alone at first.
	paused := exec.Command(os.Args[0], "-test.run=^$")
	paused.Env = append(os.Environ(), "FSMC_CHAOS_WORKER=1", "FSMC_CHAOS_REDIS="+url, "FSMC_CHAOS_PREFIX="+prefix, "FSMC_CHAOS_PAUSE_ID=p1")
	out, err := paused.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := paused.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = paused.Process.Kill(); _ = paused.Wait() })
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if err := client.Start(ctx, "Flow", "p1", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-lines:
		if !strings.HasPrefix(line, "PAUSING") {
			t.Fatalf("worker said %q", line)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the worker never reached the commit")
	}
	if err := paused.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}

	// Past the lease (1s) and the lock, another worker takes over.
	other := exec.Command(os.Args[0], "-test.run=^$")
	other.Env = append(os.Environ(), "FSMC_CHAOS_WORKER=1", "FSMC_CHAOS_REDIS="+url, "FSMC_CHAOS_PREFIX="+prefix)
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = other.Process.Kill(); _ = other.Wait() })
	waitFor(t, client, "p1", 30*time.Second, completed) // the other worker finishes it

	// Continued, the paused worker's commit must be refused.
	if err := paused.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	select {
	case line := <-lines:
		if !strings.Contains(line, "stale commit") && !strings.Contains(line, "lease") {
			t.Fatalf("the paused worker's commit was not refused: %q", line)
		}
		t.Logf("the paused worker, continued: %s", line)
	case <-time.After(20 * time.Second):
		t.Fatal("the continued worker never reported its commit")
	}
	v, err := client.Get(ctx, "p1")
	if err != nil {
		t.Fatal(err)
	}
	if versions := committedVersions(v); fmt.Sprint(versions) != "[1 2 3 4]" || v.Version != 4 {
		t.Fatalf("versions %v (now v%d), want each of 1-4 once", versions, v.Version)
	}
}

// TestTaskOutlivesOutage: a task that finishes while Redis is away keeps
// its result, written when Redis is back within the lease: the task runs
// once, and its instance does not wait for the lease to run out.
func TestTaskOutlivesOutage(t *testing.T) {
	srv := redistest.Own(t, "--appendonly", "yes", "--appendfsync", "always")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := redisstore.Open(ctx, srv.URL(), redisstore.Options{Prefix: "outage"})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	e := runtime.New(store, runtime.Options{Lease: 15 * time.Second})
	running, finish := make(chan struct{}), make(chan struct{})
	var runs atomic.Int32
	err = e.Register(ctx, irtest.Compile(t, "one.fsm", []byte(irtest.OneStep)).Machines[0], map[string]runtime.Handler{
		"Work": func(context.Context, *runtime.Call) (runtime.Result, error) {
			if runs.Add(1) == 1 {
				close(running)
			}
			<-finish
			return runtime.Result{}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	storetest.RunInBackground(t, e, 1)
	if err := e.Start(ctx, "OneStep", "j", nil, runtime.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	<-running
	srv.Kill()
	close(finish) // the task ends while Redis is away
	time.Sleep(500 * time.Millisecond)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	// Well within the lease; the client's first reads after the restart
	// may fail on connections the outage broke.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		v, err := e.Get(ctx, "j")
		if err == nil && v.Status == runtime.Completed {
			if runs.Load() != 1 || v.StateName != "Done" {
				t.Fatalf("%s after %d runs of the task; want Done after 1", v.StateName, runs.Load())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after Redis came back, the instance has not moved on (%v; task run %d times)", err, runs.Load())
		}
	}
}

// historyText lists an instance's history, one entry a line, for a
// failure's message.
func historyText(v *runtime.View) string {
	var b strings.Builder
	for _, h := range v.History {
		fmt.Fprintf(&b, "  %+v\n", h)
	}
	return b.String()
}
