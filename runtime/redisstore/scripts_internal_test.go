package redisstore

import (
	"context"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/storetest"
	"github.com/redis/go-redis/v9"
)

var prefixCounter atomic.Int64

// testPrefix is a key prefix no other test (or earlier run on a shared
// server) uses.
func testPrefix(kind string) string {
	return fmt.Sprintf("%s%d-%d", kind, time.Now().UnixNano(), prefixCounter.Add(1))
}

// TestScriptsRunAsFunctions: on Redis 7 and later the scripts run as one
// function library. A library Redis refuses to load (a Lua error in it)
// would quietly fall back to EVALSHA; this test catches that.
func TestScriptsRunAsFunctions(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	version := redisVersion(t, c)
	if major, _ := strconv.Atoi(strings.Split(version, ".")[0]); major < 7 {
		t.Skipf("Redis %s has no functions", version)
	}
	s := New(c, Options{Prefix: testPrefix("fn")})
	if _, _, err := s.NextDue(ctx, runtime.ClaimFilter{}); err != nil {
		t.Fatal(err)
	}
	if mode := s.scripts.mode.Load(); mode != modeFunctions {
		t.Fatalf("script mode %d on Redis %s, want functions (%d): the library did not load", mode, version, modeFunctions)
	}
	// Another worker finds the library loaded, and uses it.
	other := New(c, Options{Prefix: testPrefix("fn")})
	if _, _, err := other.NextDue(ctx, runtime.ClaimFilter{}); err != nil {
		t.Fatal(err)
	}
	if mode := other.scripts.mode.Load(); mode != modeFunctions {
		t.Fatalf("script mode %d for a second store, want functions: a loaded library was refused", mode)
	}
	// A server that lost its functions (restarted without persistence)
	// gets the library again.
	if err := c.FunctionFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.NextDue(ctx, runtime.ClaimFilter{}); err != nil {
		t.Fatalf("after FUNCTION FLUSH: %v", err)
	}
	if mode := s.scripts.mode.Load(); mode != modeFunctions {
		t.Fatalf("script mode %d after FUNCTION FLUSH, want functions", mode)
	}
}

// TestReplicaPromotedRunsFunctions: a store that first meets a replica
// (which refuses FUNCTION LOAD as READONLY, as it refuses every write)
// says so, and once that server is promoted to master it loads the
// library and runs the scripts as functions, not EVALSHA for ever.
func TestReplicaPromotedRunsFunctions(t *testing.T) {
	_, replica := redistest.Replicated(t)
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", replica.Port)})
	defer c.Close()
	if major, _ := strconv.Atoi(strings.SplitN(redisVersion(t, c), ".", 2)[0]); major < 7 {
		t.Skip("this Redis has no functions")
	}
	s := New(c, Options{Prefix: testPrefix("replica")})
	_, _, err := s.NextDue(ctx, runtime.ClaimFilter{})
	if !ReadOnlyReplica(err) {
		t.Fatalf("on a replica: %v, want READONLY", err)
	}
	if err := c.SlaveOf(ctx, "NO", "ONE").Err(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.NextDue(ctx, runtime.ClaimFilter{}); err != nil {
		t.Fatalf("promoted: %v", err)
	}
	if mode := s.scripts.mode.Load(); mode != modeFunctions {
		t.Fatalf("script mode %d once promoted, want functions (%d)", mode, modeFunctions)
	}
}

// redisVersion is the server's redis_version.
func redisVersion(t *testing.T, c *redis.Client) string {
	for _, line := range strings.Split(c.Info(context.Background(), "server").Val(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
			return v
		}
	}
	t.Fatal("INFO gives no redis_version")
	return ""
}

// TestScriptsWithoutFunctions runs the conformance suite as a user who
// may use no functions at all (as on Redis before 7, which refuses
// FUNCTION and FCALL): the store falls back to EVALSHA, and everything
// holds, with one partition and with several (whose first script call
// is a pipelined peek).
func TestScriptsWithoutFunctions(t *testing.T) {
	c := redistest.Client(t)
	ctx := context.Background()
	if err := c.Do(ctx, "ACL", "SETUSER", "fsmc-no-functions", "reset", "on", ">secret", "~*", "&*", "+@all", "-function", "-fcall", "-fcall_ro").Err(); err != nil {
		t.Skipf("no ACL users on this Redis: %v", err)
	}
	opts := *c.Options()
	opts.Username, opts.Password = "fsmc-no-functions", "secret"
	user := redis.NewClient(&opts)
	t.Cleanup(func() { user.Close() })
	for _, parts := range []int{1, 4} {
		t.Run(fmt.Sprintf("partitions=%d", parts), func(t *testing.T) {
			var stores []*Store
			storetest.RunStore(t, func(t *testing.T) runtime.Store {
				// The suite's fake clocks cannot move lock expiry.
				s := New(user, Options{Prefix: testPrefix("nofn"), Partitions: parts, NoRedlock: true})
				stores = append(stores, s)
				return s
			})
			for _, s := range stores {
				if mode := s.scripts.mode.Load(); mode != modeEvalsha {
					t.Fatalf("script mode %d, want EVALSHA (%d) for a user who may use no functions", mode, modeEvalsha)
				}
			}
			// A worker's first call is a claim, on a fresh store.
			var l runtime.Lease
			s := New(user, Options{Prefix: testPrefix("nofn"), Partitions: parts, NoRedlock: true})
			if _, err := s.Claim(ctx, runtime.ClaimFilter{Now: time.Now(), Lease: time.Second}, &l); err != nil {
				t.Fatalf("a fresh store's first claim: %v", err)
			}
			if parts == 1 {
				writeClaims(t, s)
			}
		})
	}
}

// writeClaims checks on s, with one partition, that a write finishing a
// worker's work claims its next (runtime.Chain): the scripts' claim
// inside another script.
func writeClaims(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	m := registerToggle(t, s)
	now := time.Now()
	for _, id := range []string{"a", "b"} {
		irtest.Create(t, s, m, id, now, runtime.Work{Kind: runtime.WorkEvent, Instance: id, Due: now})
	}
	f := runtime.ClaimFilter{Now: now.Add(time.Second), Lease: time.Minute}
	var l runtime.Lease
	if ok, err := s.Claim(ctx, f, &l); err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	l.Then = &runtime.Chain{Filter: f}
	if err := s.Complete(ctx, &l, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !l.Then.Done || !l.Then.Found || l.Then.Next.Work.Instance == l.Work.Instance {
		t.Fatalf("the write that finished %s's event claimed: done %v found %v, %+v", l.Work.Instance, l.Then.Done, l.Then.Found, l.Then.Next.Work)
	}
}

// TestRefusedDialSendsNothing: a claim that could not connect is known
// not to have reached Redis (nothing to give back), while one whose
// connection broke afterwards may have.
func TestRefusedDialSendsNothing(t *testing.T) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	s := New(c, Options{Prefix: "nowhere"})
	t.Cleanup(func() { s.Close() })
	var l runtime.Lease
	_, err := s.Claim(context.Background(), runtime.ClaimFilter{Now: time.Now(), Lease: time.Minute}, &l)
	if err == nil || !Unreachable(err) || !neverSent(err) {
		t.Fatalf("claim on a closed port: %v; want it unreachable and never sent", err)
	}
	if neverSent(&net.OpError{Op: "read", Net: "tcp", Err: io.EOF}) || neverSent(io.EOF) {
		t.Fatal("a broken connection was taken for a command never sent")
	}
}
