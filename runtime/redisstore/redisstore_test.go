package redisstore_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/fsmc/fsmc/runtime/storetest"
	"github.com/redis/go-redis/v9"
)

// server is one redis-server for the package's tests: started on a free
// port (or FSMC_TEST_REDIS_URL), shared, and stopped by TestMain.
var (
	serverOnce sync.Once
	serverURL  string
	serverErr  error
	serverCmd  *exec.Cmd
	prefixes   atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if serverCmd != nil {
		_ = serverCmd.Process.Kill()
		_ = serverCmd.Wait()
	}
	os.Exit(code)
}

// redisClient returns a client of the test server, or skips the test
// (fails it when FSMC_REQUIRE_REDIS=1) when there is none.
func redisClient(t *testing.T) redis.UniversalClient {
	serverOnce.Do(func() { serverURL, serverErr = startServer() })
	if serverErr != nil {
		if os.Getenv("FSMC_REQUIRE_REDIS") == "1" {
			t.Fatalf("Redis is required (FSMC_REQUIRE_REDIS=1): %v", serverErr)
		}
		t.Skipf("no Redis to test against: %v", serverErr)
	}
	opts, err := redis.ParseURL(serverURL)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func startServer() (string, error) {
	if url := os.Getenv("FSMC_TEST_REDIS_URL"); url != "" {
		return url, nil
	}
	path, err := exec.LookPath("redis-server")
	if err != nil {
		return "", fmt.Errorf("redis-server is not installed (apt-get install redis-server), and FSMC_TEST_REDIS_URL is not set")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, err := os.MkdirTemp("", "fsmc-redis-")
	if err != nil {
		return "", err
	}
	serverCmd = exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := serverCmd.Start(); err != nil {
		return "", err
	}
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", port)
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return url, nil
		}
	}
	return "", fmt.Errorf("redis-server on port %d did not answer", port)
}

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
