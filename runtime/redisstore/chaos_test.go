package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
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
	engine := runtime.New(store, runtime.Options{Worker: "chaos-" + strconv.Itoa(os.Getpid()), Lease: time.Second})
	step := func(ctx context.Context, c *runtime.Call) (runtime.Result, error) {
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		if rand.IntN(10) == 0 {
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
// every instance must complete, each transition committed exactly once
// (contiguous versions, none twice).
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
	killed := 0
	go func() {
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
	t.Logf("%d instances completed while %d workers were killed", n, killed)

	for i := 0; i < n; i++ {
		id := fmt.Sprintf("f%05d", i)
		v, err := client.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		var versions []uint64
		for _, h := range v.History {
			if h.Kind == runtime.HistStart || h.Kind == runtime.HistTransition {
				versions = append(versions, h.Version)
			}
		}
		for k, ver := range versions {
			if ver != uint64(k+1) {
				t.Fatalf("%s: transition versions %v are not contiguous from 1", id, versions)
			}
		}
		if v.Version != uint64(len(versions)) || v.StateName != "Done" && v.StateName != "Failed" {
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
	redistest.URL(t) // skips, or fails under FSMC_REQUIRE_REDIS, without Redis
	srv, err := redistest.NewServer("--appendonly", "yes", "--appendfsync", "always")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Kill)
	const n = 1000
	prefix := "restart"
	var cmds []*exec.Cmd
	for i := 0; i < 2; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "FSMC_CHAOS_WORKER=1", "FSMC_CHAOS_REDIS="+srv.URL(), "FSMC_CHAOS_PREFIX="+prefix)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	t.Cleanup(func() {
		for _, cmd := range cmds {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
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
	deadline := time.Now().Add(2 * time.Minute)
	for {
		done, err := client.List(ctx, runtime.ListFilter{Machine: "Flow", Status: runtime.Completed})
		if err == nil && len(done) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart only %d of %d completed (%v)", len(done), n, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i := 0; i < n; i++ {
		v, err := client.Get(ctx, fmt.Sprintf("r%04d", i))
		if err != nil {
			t.Fatal(err)
		}
		if v.Version != 4 {
			t.Fatalf("%s: version %d, want 4 (start and three transitions, each once)", v.ID, v.Version)
		}
	}
}
