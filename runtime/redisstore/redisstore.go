// Package redisstore is the runtime.Store on Redis: many worker
// processes on many hosts share one Redis deployment (single node,
// Sentinel or Cluster through go-redis's universal client).
//
//	Engine ──> Store methods ──> one Lua script each (scripts/*.lua)
//	                                  │ keys of one partition, one hash tag
//	                                  ▼
//	   partition p: ready sets by priority and class (due ms), leases,
//	                changelog, and one hash per instance (record, history,
//	                pending work)
//
// Instances are spread over partitions (crc32 of the ID); every key of a
// partition and of its instances carries the partition's hash tag, so each
// script touches one Cluster slot and load spreads over the shards. Due
// work sits in sorted sets scored by due time in milliseconds, one per
// priority and class (what a worker needs to run it: the machine
// version, and a task attempt's action), so a claim reads only the work
// its worker runs: it asks every partition (in one pipelined round trip)
// for the highest priority it has due and the earliest due time there,
// then leases the earliest due item of the partition with the earliest;
// with one partition (the default on a single Redis) it leases straight
// away. An index of classes per priority, scored by each class's
// earliest due time, keeps claims in due order across classes. Claims
// are leases with an expiry; expired leases give their work back. Every
// change is one script: Commit checks the lease and the version read,
// and writes state, history, new work and the changelog atomically, so
// a stale worker can never overwrite newer state. A write that finishes
// a worker's work also claims the worker's next, when the worker asks
// (runtime.Chain) and there is one partition: the claim then costs no
// call of its own. What an instance holds is kept in compact records (wire.go), and
// instances name their machine version by a short id that the registry
// resolves.
//
// The files, in the order a call passes through them:
//
//	open.go       Open: URLs (redis://, rediss://, Sentinel, Cluster), clients, Redis errors
//	redisstore.go Store, New, key names, wake messages, Close
//	registry.go   machine versions (PutMachine, Machine, Latest) and retention
//	instances.go  Create, Load, History, List, Enqueue
//	claim.go      Claim, leases (Extend, Release), NextDue, QueueStats
//	commit.go     Commit, CompleteDirect, Complete, an operator's Update
//	lock.go       the per-instance Redlock (redsync) and Hold
//	changes.go    the changelog stream (Changes)
//	batch.go      the batcher: scripts of many goroutines in one round trip
//	scripts.go    the Lua of scripts/, as a function library or by EVALSHA
//	wire.go       the compact records an instance's hash holds
//	tls.go        rediss:// certificates
//
// Only this package imports go-redis.
package redisstore

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsmc/fsmc/runtime"
	"github.com/go-redsync/redsync/v4"
	redsyncredis "github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"
)

// Options configure a Store.
type Options struct {
	Prefix string // key prefix ("fsmc" if empty; Open refuses braces, glob characters and white space)
	// Partitions spread instances over Cluster slots: 16 on a Cluster,
	// 1 on a single Redis (where more only add round trips) if 0. All
	// workers of a deployment must agree.
	Partitions int
	History    int // history entries kept per instance (100 if 0)
	// LockNodes are the independent Redis nodes of the per-instance
	// Redlock (a quorum of them must agree); the main client if empty.
	LockNodes []redis.UniversalClient
	// LockURLs are LockNodes for Open to connect to.
	LockURLs []string
	// NoRedlock leaves out the per-instance Redlock, relying on leases
	// and fenced commits alone (the store contract tests, whose fake
	// clocks cannot move Redis's lock expiry).
	NoRedlock bool
	// Logger gets what the store cannot say through an error: wake
	// messages it may not send or receive (an ACL user without the
	// channel). Nothing is logged if nil.
	Logger *slog.Logger
}

// Store is a runtime.Store on Redis.
type Store struct {
	rdb      redis.UniversalClient
	prefix   string
	parts    int
	prefixes []string   // partitionPrefix
	seqKeys  [][]string // partitionSeq
	history  int
	scripts  *scripts
	batch    *batcher // runs the scripts
	rotate   atomic.Uint32
	wakeOnce sync.Once
	wake     chan struct{}
	subMu    sync.Mutex // guards sub: Wake makes it, Close closes it
	sub      *redis.PubSub
	log      *slog.Logger
	// Wake messages go out from one goroutine, off the workers' path:
	// pokes holds at most one pending message, so a burst is one PUBLISH.
	pokeOnce sync.Once
	pokes    chan struct{}
	closed   chan struct{}
	poker    sync.WaitGroup
	close    sync.Once
	owned    []redis.UniversalClient // clients Open made: Close closes them
	redlock  *redsync.Redsync
	// lockHere: the Redlock's only node is the main Redis, where an
	// instance's lock key shares its partition's slot, so the scripts
	// take, check and free it in the same atomic steps as the claims and
	// commits it guards (with the lease token as its value), and redsync
	// (for operators) sees the same key.
	lockHere bool
	locks    sync.Map // lockKey(lease) -> *redsync.Mutex held for that lease
	machines sync.Map // machine id -> *ir.Machine, read from the registry once (validated)
	// registered holds the ids of the machines this store registered
	// (PutMachine), so that registering one again is cheap, each with
	// when its version was first registered (ms, firstKey; -1: nobody
	// knows): a registry that lost its data gets it back, and with it
	// the order of the versions.
	registered sync.Map
	moved      atomic.Bool  // the ready sets of an earlier layout were moved (moveOldReady)
	movedAt    atomic.Int64 // when an idle claim last looked for more (ms)
	// Each claim call has an id, kept with the leases it takes, so that
	// one whose reply is lost gives back what it took (abandon) rather
	// than leave it leased to nobody until the lease ends.
	claimIDs string // this store's prefix of them
	claimSeq atomic.Uint64
	// scanned is when (ms, by the claims' clock) a claim of this store
	// last looked for expired leases, on a store of one partition (see
	// scanExpired).
	scanned  atomic.Int64
	abandons sync.WaitGroup
	// retention is the deployment's retention as this store last set or
	// saw it (known), which KeepSettings restores where it was lost.
	retention struct {
		sync.Mutex
		known bool
		ms    int64
	}
}

var _ runtime.Store = (*Store)(nil)

// New returns a store on rdb. rdb should not retry commands itself
// (MaxRetries -1, as Open's clients are): a script whose reply is late
// may have run, and sent again it would apply twice. New logs a warning
// when rdb is a go-redis client that retries.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "fsmc"
	}
	if opts.Partitions <= 0 {
		opts.Partitions = 1
		if _, cluster := rdb.(*redis.ClusterClient); cluster {
			opts.Partitions = 16
		}
	}
	if opts.History <= 0 {
		opts.History = 100
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Store{rdb: rdb, prefix: opts.Prefix, parts: opts.Partitions, history: opts.History, scripts: &scripts{},
		pokes: make(chan struct{}, 1), closed: make(chan struct{}), log: opts.Logger, claimIDs: newClaimIDs()}
	for p := 0; p < s.parts; p++ {
		pfx := fmt.Sprintf("%s:{%s-%d}:", s.prefix, s.prefix, p)
		s.prefixes = append(s.prefixes, pfx)
		s.seqKeys = append(s.seqKeys, []string{pfx + "seq"})
	}
	s.batch = newBatcher(rdb, s.scripts, s.closed)
	if n, ok := retriesOf(rdb); ok && n > 0 {
		s.log.Warn("the Redis client retries commands whose reply is late (MaxRetries); a script retried after it ran applies twice: set MaxRetries to -1", "max_retries", n)
	}
	if !opts.NoRedlock {
		nodes := opts.LockNodes
		if len(nodes) == 0 {
			nodes = []redis.UniversalClient{rdb}
			s.lockHere = true
		}
		pools := make([]redsyncredis.Pool, len(nodes))
		for i, n := range nodes {
			pools[i] = goredis.NewPool(n)
		}
		s.redlock = redsync.New(pools...)
	}
	return s
}

// The keys of partition p: prefix:{prefix-p}:... (made once, in New).
func (s *Store) partitionPrefix(p int) string { return s.prefixes[p] }

// partitionSeq is the key a script on partition p declares (KEYS), for
// routing: the partition's seq key. Every call shares the slice, which
// nothing changes (go-redis copies it into the command).
func (s *Store) partitionSeq(p int) []string { return s.seqKeys[p] }

func (s *Store) partitionOf(id string) int {
	return int(crc32.ChecksumIEEE([]byte(id)) % uint32(s.parts))
}

func (s *Store) instanceKey(id, kind string) string {
	return s.partitionPrefix(s.partitionOf(id)) + kind + ":" + id
}

// The machine registry: each version's IR under its machine id (the
// short form instances store), and the latest version of each name.
func (s *Store) machineKey(mid string) string { return s.prefix + ":machine:" + mid }

func (s *Store) latestKey(name string) string { return s.prefix + ":latest:" + name }

// versionsKey orders the versions of machine name by when each was
// first registered (a sorted set of hashes, scored in ms of Redis's
// clock). Its hash tag is latestKey's whole name, so that the two share
// a Cluster slot; it starts with the prefix, as every key does, so that
// an ACL rule of the prefix's keys covers it.
func (s *Store) versionsKey(name string) string {
	return s.prefix + ":{" + s.latestKey(name) + "}:versions"
}

// firstKey holds when machine version mid was first registered (ms of
// Redis's clock), as versionsKey orders it, so that a worker that
// starts finds it there after the order was lost.
func (s *Store) firstKey(mid string) string { return s.prefix + ":first:" + mid }

// run runs a script on partition p.
func (s *Store) run(ctx context.Context, name string, p int, args ...any) *redis.Cmd {
	return s.runArgs(ctx, name, p, s.scriptArgs(p, 0, args...))
}

// runArgs runs script name on partition p with args, whose first is the
// partition's prefix (see scriptArgs).
func (s *Store) runArgs(ctx context.Context, name string, p int, args []any) *redis.Cmd {
	return s.batch.run(ctx, name, s.partitionSeq(p), args...)
}

// scriptArgs starts the arguments of a script on partition p: the
// partition's prefix (every script's ARGV[1]), then head, with room for
// more (the hot scripts' arguments are made in one slice). Every script
// call's arguments are made here.
func (s *Store) scriptArgs(p, more int, head ...any) []any {
	args := make([]any, 0, 1+len(head)+more)
	return append(append(args, s.partitionPrefix(p)), head...)
}

func (s *Store) result(cmd *redis.Cmd) (string, error) {
	return outcome(cmd.Result())
}

// outcome is a script's answer v as result gives it.
func outcome(v any, err error) (string, error) {
	if err != nil {
		return "", err
	}
	out, _ := v.(string)
	switch out {
	case "exists":
		return out, runtime.ErrExists
	case "notfound":
		return out, runtime.ErrNotFound
	case "stale":
		return out, runtime.ErrStale
	case "lost":
		return out, runtime.ErrLostLease
	}
	return out, nil
}

// pokeIf pokes the workers when a script's result says it made work
// ready ("ready"); a commit that only finished work wakes nobody.
func (s *Store) pokeIf(out string, err error) {
	if err == nil && out == "ready" {
		s.poke(context.Background())
	}
}

func (s *Store) wakeChannel() string { return s.prefix + ":wake" }

// poke tells idle workers there may be new work. It does not wait for
// Redis: the message goes out from the store's publisher goroutine, and
// pokes made while one is pending join it.
func (s *Store) poke(context.Context) {
	s.pokeOnce.Do(func() {
		s.poker.Add(1)
		go s.publishPokes()
	})
	select {
	case s.pokes <- struct{}{}:
	default:
	}
}

// pokeGap is the least time between two wake messages of one store:
// pokes within it join the next message, so a busy process sends at
// most a thousand a second, and new work waits at most this long.
const pokeGap = time.Millisecond

// publishPokes sends a wake message per pending poke until Close, then
// sends the last one if it is still pending, so that a short-lived
// process (fsmc start) still wakes the workers.
func (s *Store) publishPokes() {
	defer s.poker.Done()
	failing := false // the log said they cannot go out (see publishWake)
	gap := time.NewTimer(0)
	defer gap.Stop()
	for {
		select {
		case <-s.pokes:
			<-gap.C // a millisecond since the last message
			failing = s.publishWake(failing)
			gap.Reset(pokeGap)
		case <-s.closed:
			select {
			case <-s.pokes:
				s.publishWake(failing)
			default:
			}
			return
		}
	}
}

// publishWake sends a wake message. failing: the log said that they
// cannot go out, and has not said since that they do; publishWake
// returns what it is now. Redis refusing them (an ACL user without the
// deployment's channels) is said once, as nothing else would say it.
// Redis out of reach is only a debug line: every command of the store
// fails then too, and the process says so, or has (a bulk start that
// lost Redis mid-way, a worker waiting out an outage).
func (s *Store) publishWake(failing bool) bool {
	err := s.rdb.Publish(context.Background(), s.wakeChannel(), "1").Err()
	switch {
	case err == nil:
		if failing {
			s.log.Info("wake messages go out again", "channel", s.wakeChannel())
		}
		return false
	case Unreachable(err) || errors.Is(err, ErrClosed): // ErrClosed: the last message, after Close (closedHook)
		s.log.Debug("a wake message did not go out: Redis is out of reach", s.wakeTrouble(err)...)
		return failing
	case !failing:
		s.log.Warn("cannot send wake messages: until they go out again, idle workers see new work within about a second instead of at once", s.wakeTrouble(err)...)
	}
	return true
}

// Wake implements runtime.Store: a channel fed by the deployment's wake
// messages.
func (s *Store) Wake() <-chan struct{} {
	s.wakeOnce.Do(func() {
		s.wake = make(chan struct{}, 1)
		s.subMu.Lock()
		defer s.subMu.Unlock()
		if s.isClosed() {
			return // a closed store subscribes to nothing
		}
		s.sub = s.rdb.Subscribe(context.Background(), s.wakeChannel())
		go func(sub *redis.PubSub) {
			// The first reply says whether Redis let us subscribe.
			if _, err := sub.Receive(context.Background()); err != nil && !s.isClosed() {
				s.log.Warn("cannot receive wake messages: this worker sees new work within about a second instead of at once", s.wakeTrouble(err)...)
			}
			for range sub.Channel() {
				select {
				case s.wake <- struct{}{}:
				default:
				}
			}
		}(s.sub)
	})
	return s.wake
}

func (s *Store) isClosed() bool {
	select {
	case <-s.closed:
		return true
	default:
		return false
	}
}

// wakeTrouble is what to log about a wake channel error: the error,
// and for a refusal, the ACL rule that allows the channel.
func (s *Store) wakeTrouble(err error) []any {
	args := []any{"channel", s.wakeChannel(), "err", err}
	if strings.HasPrefix(err.Error(), "NOPERM") {
		args = append(args, "hint", "an ACL user needs the prefix's channels: ACL SETUSER name &"+s.prefix+":*")
	}
	return args
}

// Close stops listening for wake messages, and closes the client if Open
// made it: a call then in flight on that client returns ErrClosed.
func (s *Store) Close() error {
	s.close.Do(func() { close(s.closed) })
	s.poker.Wait()
	s.abandons.Wait()
	s.batch.senders.Wait()
	s.subMu.Lock()
	if s.sub != nil {
		s.sub.Close()
	}
	s.subMu.Unlock()
	for _, c := range s.owned {
		c.Close()
	}
	return nil
}

var (
	_ runtime.DirectStore = (*Store)(nil)
	_ runtime.QueueStater = (*Store)(nil)
)
