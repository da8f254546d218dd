package redisstore_test

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

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

func redisClient(t *testing.T) redis.UniversalClient { return redistest.Client(t) }

// TestConformance runs the store conformance suite on Redis, each test
// with its own key prefix on the shared server.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) runtime.Store {
		c := redisClient(t)
		prefix := fmt.Sprintf("t%d", prefixes.Add(1))
		return redisstore.New(c, redisstore.Options{Prefix: prefix, Partitions: 4})
	})
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
	deadline := time.Now().Add(20 * time.Second)
	for {
		finished, err := engines[0].List(ctx, runtime.ListFilter{Machine: "Job", State: "Finished"})
		if err != nil {
			t.Fatal(err)
		}
		if len(finished) == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d finished", len(finished), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
		var versions []uint64
		for _, h := range v.History {
			if h.Kind == runtime.HistStart || h.Kind == runtime.HistTransition || h.Kind == runtime.HistTimer {
				versions = append(versions, h.Version)
			}
		}
		if fmt.Sprint(versions) != "[1 2 3]" {
			t.Fatalf("%s: transition versions %v, want [1 2 3]", v.ID, versions)
		}
	}
}
