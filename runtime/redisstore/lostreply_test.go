package redisstore_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/redis/go-redis/v9"
)

// TestLostClaimReplyGivesBack: a claim that ran in Redis but whose reply
// was lost gives back what it leased, with the instance's lock, at once:
// another claim gets the work, not only after the lease (a minute here).
func TestLostClaimReplyGivesBack(t *testing.T) {
	lossy, other := replyCutStores(t, "claim", redisstore.Options{})
	ctx := context.Background()
	m := irtest.Compile(t, "toggle.fsm", []byte(irtest.Toggle)).Machines[0]
	if err := lossy.PutMachine(ctx, m); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	irtest.Create(t, lossy, m, "a", now, runtime.Work{Kind: runtime.WorkEvent, Instance: "a", Due: now, Event: 2})
	f := runtime.ClaimFilter{Now: now, Lease: time.Minute}
	var l runtime.Lease
	if ok, err := lossy.Claim(ctx, f, &l); ok || err == nil || !redisstore.Unreachable(err) {
		t.Fatalf("claim whose reply was cut: %v %v, want a lost connection", ok, err)
	}
	waitClaimable(t, other, f, "a", "the claim whose reply was lost")
}

// replyCutStores returns two stores of one deployment (opts, with a
// prefix of the test's own): lossy, whose connection is cut as the reply
// to the named script's call comes back (its FCALL, not the library's
// load nor another script), and other, on a connection of its own.
func replyCutStores(t *testing.T, script string, opts redisstore.Options) (lossy, other *redisstore.Store) {
	t.Helper()
	direct := redisClient(t)
	viaCutter := redis.NewClient(&redis.Options{Addr: faultProxy(t, direct.(*redis.Client).Options().Addr, "_"+script+"\r\n", 0, true), MaxRetries: -1})
	t.Cleanup(func() { viaCutter.Close() })
	opts.Prefix = fmt.Sprintf("t%d", prefixes.Add(1))
	lossy = redisstore.New(viaCutter, opts)
	t.Cleanup(func() { lossy.Close() })
	other = redisstore.New(direct, opts)
	t.Cleanup(func() { other.Close() })
	return lossy, other
}

// waitClaimable fails the test unless instance id's work, taken by a
// call whose reply was lost (after), becomes claimable on store within
// 5 s (its lease being a minute).
func waitClaimable(t *testing.T, store *redisstore.Store, f runtime.ClaimFilter, id, after string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var l runtime.Lease
		ok, err := store.Claim(context.Background(), f, &l)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if l.Work.Instance != id {
				t.Fatalf("claimed %+v, want %s's work", l.Work, id)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("5 s after %s, the work it took is still leased", after)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
