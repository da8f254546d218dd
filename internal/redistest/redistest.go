// Package redistest gives tests a real Redis: FSMC_TEST_REDIS_URL when
// set, else one redis-server per test binary, started on a free port in
// a temporary directory and stopped by Stop. Without either the tests
// skip with a message, or fail when FSMC_REQUIRE_REDIS=1 (as CI sets).
// It is test infrastructure: besides runtime/redisstore, the only place
// that talks to Redis directly.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	once sync.Once
	url  string
	err  error
	cmd  *exec.Cmd
)

// URL returns the address of the test Redis (redis://host:port/0), or
// skips or fails t when there is none.
func URL(t testing.TB) string {
	u, e := Available()
	if e != nil {
		if os.Getenv("FSMC_REQUIRE_REDIS") == "1" {
			t.Fatalf("Redis is required (FSMC_REQUIRE_REDIS=1): %v", e)
		}
		t.Skipf("no Redis to test against: %v", e)
	}
	return u
}

// Available starts the test Redis if needed and returns its URL.
func Available() (string, error) {
	once.Do(func() { url, err = start() })
	return url, err
}

// Client returns a client of the test Redis, closed when t ends.
func Client(t testing.TB) *redis.Client {
	opts, e := redis.ParseURL(URL(t))
	if e != nil {
		t.Fatal(e)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// Stop stops the redis-server this package started, if any.
func Stop() {
	if cmd != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}
}

func start() (string, error) {
	if u := os.Getenv("FSMC_TEST_REDIS_URL"); u != "" {
		return u, nil
	}
	path, e := exec.LookPath("redis-server")
	if e != nil {
		return "", fmt.Errorf("redis-server is not installed (apt-get install redis-server), and FSMC_TEST_REDIS_URL is not set")
	}
	l, e := net.Listen("tcp", "127.0.0.1:0")
	if e != nil {
		return "", e
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir, e := os.MkdirTemp("", "fsmc-redis-")
	if e != nil {
		return "", e
	}
	cmd = exec.Command(path, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if e := cmd.Start(); e != nil {
		return "", e
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", port)})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return fmt.Sprintf("redis://127.0.0.1:%d/0", port), nil
		}
	}
	return "", fmt.Errorf("redis-server on port %d did not answer", port)
}

var databases sync.Mutex
var nextDB = 1

// FreshDatabase returns the URL of one of the test Redis's databases
// 1-15, emptied, for a test that uses fixed key names.
func FreshDatabase() (string, error) {
	base, e := Available()
	if e != nil {
		return "", e
	}
	databases.Lock()
	db := nextDB
	nextDB = nextDB%15 + 1
	databases.Unlock()
	u := base[:len(base)-len("/0")] + "/" + strconv.Itoa(db)
	opts, e := redis.ParseURL(u)
	if e != nil {
		return "", e
	}
	c := redis.NewClient(opts)
	defer c.Close()
	return u, c.FlushDB(context.Background()).Err()
}
