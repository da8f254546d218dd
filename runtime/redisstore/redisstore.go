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
// Only this package imports go-redis.
package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"net"
	neturl "net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/runtime"
	"github.com/go-redsync/redsync/v4"
	redsyncredis "github.com/go-redsync/redsync/v4/redis"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/hashicorp/go-multierror"
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
	abandons sync.WaitGroup
	// retention is the deployment's retention as this store last set or
	// saw it (known), which KeepSettings restores where it was lost.
	retention struct {
		sync.Mutex
		known bool
		ms    int64
	}
}

// errNoMachine: the registry has no machine version with the id.
var errNoMachine = errors.New("the machine registry has no machine version")

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

// The keys of partition p: prefix:{prefix-p}:...
func (s *Store) partitionPrefix(p int) string {
	return fmt.Sprintf("%s:{%s-%d}:", s.prefix, s.prefix, p)
}

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
	pfx := s.partitionPrefix(p)
	return s.batch.run(ctx, name, []string{pfx + "seq"}, append([]any{pfx}, args...)...)
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
	failing := false // said so once; again after a message goes out
	publish := func() {
		err := s.rdb.Publish(context.Background(), s.wakeChannel(), "1").Err()
		switch {
		case err != nil && !failing:
			s.log.Warn("cannot send wake messages: until they go out again, idle workers see new work within about a second instead of at once", s.wakeTrouble(err)...)
		case err == nil && failing:
			s.log.Info("wake messages go out again", "channel", s.wakeChannel())
		}
		failing = err != nil
	}
	gap := time.NewTimer(0)
	defer gap.Stop()
	for {
		select {
		case <-s.pokes:
			<-gap.C // a millisecond since the last message
			publish()
			gap.Reset(pokeGap)
		case <-s.closed:
			select {
			case <-s.pokes:
				publish()
			default:
			}
			return
		}
	}
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

// lockName is the Redlock key of an instance (on its partition's shard).
func (s *Store) lockName(id string) string { return s.instanceKey(id, "lock") }

// lockInstance takes the instance's Redlock for d; tries is how often to
// try (1: give up at once). The mutex decides on a majority of the lock
// nodes' answers (fail fast), so a node that hangs (a partition) does
// not hold up every lock, unlock and extension.
func (s *Store) lockInstance(ctx context.Context, id string, d time.Duration, tries int) (*redsync.Mutex, error) {
	m := s.redlock.NewMutex(s.lockName(id), redsync.WithExpiry(d), redsync.WithTries(tries), redsync.WithRetryDelay(20*time.Millisecond),
		redsync.WithFailFast(true))
	if err := m.LockContext(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

// lockCallTimeout bounds an unlock or an extension of a Redlock: a lock
// not released in time expires on its own.
const lockCallTimeout = time.Second

// lockCallContext bounds a Redlock unlock or extension by
// lockCallTimeout, whatever becomes of ctx. The mutex answers on the
// first majority of nodes (fail fast) while its calls to the others go
// on, so the context is left to run out rather than cancelled when the
// answer comes: cancelling it cut those calls short, and a slow node
// kept the lock until it expired, which, with another node down, left
// no majority to take it.
func lockCallContext(ctx context.Context) context.Context {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), lockCallTimeout)
	time.AfterFunc(lockCallTimeout, cancel)
	return ctx
}

// releaseLock releases m, waiting at most lockCallTimeout.
func releaseLock(ctx context.Context, m *redsync.Mutex) {
	_, _ = m.UnlockContext(lockCallContext(ctx))
}

// lockUnavailable reports whether a Redlock could not be taken because
// too few lock nodes answered, rather than because someone holds it.
func lockUnavailable(err error) bool {
	var taken *redsync.ErrTaken
	var nodeTaken *redsync.ErrNodeTaken
	var node *redsync.RedisError
	return !errors.As(err, &taken) && !errors.As(err, &nodeTaken) && errors.As(err, &node)
}

// oneLine is redsync's error, whose nodes' errors are one per line, on
// one line (for a log line).
func oneLine(err error) string {
	var many *multierror.Error
	if !errors.As(err, &many) {
		return err.Error()
	}
	parts := make([]string, len(many.Errors))
	for i, e := range many.Errors {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// lockRefusal explains why an instance's Redlock could not be taken:
// someone holds it, or a lock node answered with an error (a user
// without the right to SET, say) and so gave no verdict.
func lockRefusal(id string, err error) error {
	var node *redsync.RedisError
	if lockUnavailable(err) && errors.As(err, &node) {
		return fmt.Errorf("cannot take instance %s's lock: %w", id, node.Err)
	}
	return fmt.Errorf("instance %s is %w", id, ErrBusy)
}

// ErrBusy: an operator's change could not take the instance's lock in
// time, as a worker holds it (a long step, or a paused worker whose lock
// lasts until its lease ends). The same change may succeed later.
var ErrBusy = errors.New("busy: a worker holds its lock")

// lockKey names a lease: fences count per partition, so the unit (which
// names the instance) is part of it.
func lockKey(l *runtime.Lease) string { return l.Token + "#" + strconv.FormatUint(l.Fence, 10) }

// unlock releases the Redlock held for a lease, if any.
func (s *Store) unlock(ctx context.Context, l *runtime.Lease) {
	if m, ok := s.locks.LoadAndDelete(lockKey(l)); ok {
		releaseLock(ctx, m.(*redsync.Mutex))
	}
}

// PutMachine implements runtime.Store. A version registered for the
// first time becomes the latest of its name (what Latest gives); one the
// registry holds already does not, so an older worker that restarts does
// not move new starts back to its version. One whose id another version
// holds is refused.
func (s *Store) PutMachine(ctx context.Context, m *ir.Machine) error {
	if s.isClosed() {
		return ErrClosed
	}
	mid := machineID(m.Hash)
	var first int64 // when this store saw the version first registered; 0: not yet
	if v, put := s.registered.Load(mid); put {
		first = v.(int64)
		// Again (a running engine makes sure the registry has not lost
		// it): a few reads, not the machine's whole IR, when nothing is
		// missing.
		var machine, latest, at *redis.IntCmd
		var ranked *redis.FloatCmd
		_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			machine, latest = p.Exists(ctx, s.machineKey(mid)), p.Exists(ctx, s.latestKey(m.Name))
			at, ranked = p.Exists(ctx, s.firstKey(mid)), p.ZScore(ctx, s.versionsKey(m.Name), m.Hash)
			return nil
		})
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		// All there; or, for a version whose time this store does not
		// know, nothing to learn yet.
		if machine.Val() == 1 && latest.Val() == 1 && (first > 0 && at.Val() == 1 && ranked.Err() == nil || first < 0 && at.Val() == 0) {
			return nil
		}
	}
	if err := s.moveOldReady(ctx); err != nil {
		return err
	}
	first, err := s.putMachine(ctx, mid, m, max(first, 0))
	if err == nil {
		s.registered.Store(mid, first)
	}
	return err
}

// moveOldReady moves work that builds before ready sets per class left
// in their ready sets (one per priority) into the sets of its classes
// (migrate.lua), once per store: a worker or command of this build that
// registers a machine makes the deployment's queued work visible to its
// claims. (Work that older processes queue during an upgrade is moved
// by idle claims: see moveOldAgain.)
func (s *Store) moveOldReady(ctx context.Context) error {
	if s.moved.Load() {
		return nil
	}
	for {
		n, err := s.moveOldBatch(ctx)
		if err != nil {
			return err
		}
		if n == 0 {
			s.moved.Store(true)
			return nil
		}
	}
}

// moveOldBatch runs migrate.lua on every partition and returns how many
// units it moved.
func (s *Store) moveOldBatch(ctx context.Context) (int64, error) {
	cmds, err := s.everyPartition(ctx, "migrate", 1000)
	if err != nil {
		return 0, err
	}
	var moved int64
	for _, cmd := range cmds {
		n, err := cmd.Int64()
		if err != nil {
			return 0, err
		}
		moved += n
	}
	return moved, nil
}

// moveOldEvery is how often an idle claim looks for work that processes
// of an earlier build queued in its ready sets.
const moveOldEvery = 10 * time.Second

// moveOldAgain is Claim's look, when it found nothing, for work an
// earlier build queued meanwhile (at most every moveOldEvery): if it
// moved some, the claim says to look again at once.
func (s *Store) moveOldAgain(ctx context.Context, now time.Time, l *runtime.Lease) error {
	last := s.movedAt.Load()
	if now.UnixMilli()-last < moveOldEvery.Milliseconds() || !s.movedAt.CompareAndSwap(last, now.UnixMilli()) {
		return nil
	}
	n, err := s.moveOldBatch(ctx)
	if err == nil && n > 0 {
		l.Next, l.NextKnown = now, true
	}
	return err
}

// putMachine registers m (its id mid): its IR (machineKey), its place
// among its name's versions (register.lua) and when it was first
// registered (firstKey). first is when this store saw it first
// registered (0: it did not), which puts the time back in a registry
// that lost it. putMachine returns the version's time, or -1 when
// nobody knows it: its IR was registered by a build that kept no times,
// or by a worker that has not yet given it its time (the next check
// learns it).
func (s *Store) putMachine(ctx context.Context, mid string, m *ir.Machine, first int64) (int64, error) {
	data, err := m.Encode()
	if err != nil {
		return 0, err
	}
	held, err := s.rdb.Get(ctx, s.machineKey(mid)).Bytes()
	switch {
	case err == nil:
		var other struct{ Name, Hash string }
		if err := json.Unmarshal(held, &other); err != nil {
			return 0, fmt.Errorf("the registry's machine %s: %v", mid, err)
		}
		if other.Hash != m.Hash {
			return 0, fmt.Errorf("machine %s version %s: its id %s is taken by %s version %s", m.Name, m.Hash, mid, other.Name, other.Hash)
		}
	case !errors.Is(err, redis.Nil):
		return 0, err
	}
	registered := err == nil
	if first == 0 {
		switch at, err := s.rdb.Get(ctx, s.firstKey(mid)).Int64(); {
		case err == nil:
			first = at
		case !errors.Is(err, redis.Nil):
			return 0, err
		}
	}
	if !registered {
		if err := s.rdb.SetNX(ctx, s.machineKey(mid), data, 0).Err(); err != nil {
			return 0, err
		}
	}
	known := strconv.FormatInt(first, 10)
	switch {
	case first > 0:
	case registered:
		known = "?"
	default:
		known = "" // new to the registry: the script gives it its time
	}
	answer, err := s.scripts.run(ctx, s.rdb, "register", []string{s.latestKey(m.Name), s.versionsKey(m.Name)}, s.prefix, m.Hash, known).Text()
	if err != nil {
		return 0, err
	}
	first = -1
	if at, err := strconv.ParseInt(answer, 10, 64); err == nil {
		first = at
		if err := s.rdb.SetNX(ctx, s.firstKey(mid), at, 0).Err(); err != nil {
			return 0, err
		}
	}
	s.machines.Store(mid, m)
	return first, nil
}

// Version returns the hash of the version of machine name whose id (the
// hash's first 12 hex digits, or all of it) is given, as `fsmc inspect`
// names it: NAME@ID.
func (s *Store) Version(ctx context.Context, name, id string) (string, error) {
	if s.isClosed() {
		return "", ErrClosed
	}
	m, err := s.machine(ctx, machineID(id))
	if errors.Is(err, errNoMachine) || err == nil && (m.Name != name || !namesVersion(id, m.Hash)) {
		return "", fmt.Errorf("no version %s of machine %s is registered", id, name)
	}
	if err != nil {
		return "", err
	}
	return m.Hash, nil
}

// namesVersion reports whether id names the version hash: its first 12
// hex digits or all of them, with or without the "sha256:" prefix. (The
// registry finds a version by its first 12, whatever follows them.)
func namesVersion(id, hash string) bool {
	id, hash = strings.TrimPrefix(id, "sha256:"), strings.TrimPrefix(hash, "sha256:")
	return id == hash || len(hash) >= 12 && id == hash[:12]
}

// machine returns the machine version with id mid: from this store's
// cache, or read and validated from the registry once.
func (s *Store) machine(ctx context.Context, mid string) (*ir.Machine, error) {
	if v, ok := s.machines.Load(mid); ok {
		return v.(*ir.Machine), nil
	}
	data, err := s.rdb.Get(ctx, s.machineKey(mid)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("%w %s", errNoMachine, mid)
	}
	if err != nil {
		return nil, err
	}
	m, err := ir.LoadMachine(data)
	if err != nil {
		return nil, fmt.Errorf("the registry's machine %s: %w", mid, err)
	}
	s.machines.Store(mid, m)
	return m, nil
}

// Latest returns the hash of the version of machine name registered last.
func (s *Store) Latest(ctx context.Context, name string) (string, error) {
	if s.isClosed() {
		return "", ErrClosed
	}
	hash, err := s.rdb.Get(ctx, s.latestKey(name)).Result()
	if errors.Is(err, redis.Nil) {
		return "", fmt.Errorf("no machine %q is registered (a worker registers it when it starts)", name)
	}
	return hash, err
}

// Versions returns the registered versions of machine name, the latest
// first, then the others from the most recently first registered. A
// version whose IR the registry lost is left out.
func (s *Store) Versions(ctx context.Context, name string) ([]*ir.Machine, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	latest, err := s.Latest(ctx, name)
	if err != nil {
		return nil, err
	}
	hashes, err := s.rdb.ZRevRange(ctx, s.versionsKey(name), 0, -1).Result()
	if err != nil {
		return nil, err
	}
	var out []*ir.Machine
	for _, hash := range append([]string{latest}, hashes...) {
		if hash == latest && len(out) > 0 {
			continue
		}
		m, err := s.machine(ctx, machineID(hash))
		switch {
		case errors.Is(err, errNoMachine) || err == nil && m.Hash != hash:
			continue
		case err != nil:
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// SetRetention sets how long the deployment keeps an instance after it
// completes or is cancelled: Redis removes it d after it ended (its ID
// may then be started again). d <= 0 keeps ended instances until they
// are deleted by hand, as when it was never set. The setting is the
// deployment's, in every partition: it holds for whoever ends an
// instance (any worker, or an operator's cancel) until it is set again,
// and applies to instances that end from then on.
//
// Each partition keeps it twice: P.."retain" (ms, absent when ended
// instances are kept), which the scripts read, and P.."retention" (ms,
// "0" when kept), which says that it was set, so that a partition that
// lost its data can be told from one whose ended instances are kept
// (KeepSettings).
func (s *Store) SetRetention(ctx context.Context, d time.Duration) error {
	if s.isClosed() {
		return ErrClosed
	}
	ms := int64(0)
	if d > 0 {
		ms = max(d.Milliseconds(), 1)
	}
	parts := make([]int, s.parts)
	for p := range parts {
		parts[p] = p
	}
	if err := s.writeRetention(ctx, parts, ms); err != nil {
		return err
	}
	s.retention.Lock()
	s.retention.known, s.retention.ms = true, ms
	s.retention.Unlock()
	return nil
}

// writeRetention writes a retention of ms (0: kept) in the partitions.
func (s *Store) writeRetention(ctx context.Context, parts []int, ms int64) error {
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, p := range parts {
			prefix := s.partitionPrefix(p)
			if ms == 0 {
				pipe.Del(ctx, prefix+"retain")
			} else {
				pipe.Set(ctx, prefix+"retain", ms, 0)
			}
			pipe.Set(ctx, prefix+"retention", ms, 0)
		}
		return nil
	})
	return err
}

// KeepSettings restores the deployment's retention (SetRetention) in the
// partitions that lost it: a Redis, or a Cluster's node, restarted
// without its data. The store knows the retention it set, or the latest
// it saw here (another worker may have set it since); a store that has
// known none restores nothing. Run calls it with its registry check
// (runtime.SettingsKeeper). It returns how many partitions it restored.
func (s *Store) KeepSettings(ctx context.Context) (int, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	cmds := make([][2]*redis.StringCmd, s.parts)
	_, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for p := range cmds {
			prefix := s.partitionPrefix(p)
			cmds[p] = [2]*redis.StringCmd{pipe.Get(ctx, prefix+"retention"), pipe.Get(ctx, prefix+"retain")}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return 0, err
	}
	s.retention.Lock()
	defer s.retention.Unlock()
	var lost []int
	for p, c := range cmds {
		set, err := c[0].Int64()
		if errors.Is(err, redis.Nil) {
			// Unset, or lost; a deployment of a build before the
			// retention key has only the scripts' key.
			lost = append(lost, p)
			set, err = c[1].Int64()
		}
		if err == nil && (!s.retention.known || set != s.retention.ms) {
			s.retention.known, s.retention.ms = true, set // set since, by another
		} else if err != nil && !errors.Is(err, redis.Nil) {
			return 0, fmt.Errorf("partition %d's retention: %w", p, err)
		}
	}
	if !s.retention.known || len(lost) == 0 {
		return 0, nil
	}
	return len(lost), s.writeRetention(ctx, lost, s.retention.ms)
}

// Retention returns the deployment's retention of ended instances (see
// SetRetention); 0 if they are kept.
func (s *Store) Retention(ctx context.Context) (time.Duration, error) {
	if s.isClosed() {
		return 0, ErrClosed
	}
	ms, err := s.rdb.Get(ctx, s.partitionPrefix(0)+"retain").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	return time.Duration(ms) * time.Millisecond, err
}

// LatestMachines returns the latest version of every machine name
// registered (in no particular order).
func (s *Store) LatestMachines(ctx context.Context) ([]*ir.Machine, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	var mu sync.Mutex
	var out []*ir.Machine
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		iter := c.Scan(ctx, 0, s.prefix+":latest:*", 100).Iterator()
		for iter.Next(ctx) {
			hash, err := c.Get(ctx, iter.Val()).Result()
			if errors.Is(err, redis.Nil) {
				continue
			}
			if err != nil {
				return err
			}
			m, err := s.Machine(ctx, hash)
			if err != nil {
				return err
			}
			mu.Lock()
			out = append(out, m)
			mu.Unlock()
		}
		return iter.Err()
	}
	err := eachNode(ctx, s.rdb, scan)
	return out, err
}

// Open connects to the deployment at url and checks that it answers:
// redis://[user:password@]host:port[/db] or rediss:// (TLS) for one node;
// for Cluster, redis://host1:port?addr=host2:port&addr=host3:port, or
// any one node, from which the others are found. A
// rediss:// URL may add tls_ca=PATH (certificates to trust) and
// tls_cert=PATH&tls_key=PATH (a client certificate).
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if strings.ContainsAny(opts.Prefix, "{} \t\r\n") {
		return nil, fmt.Errorf("key prefix %q: want one without braces or white space (braces would put every partition in one Cluster slot)", opts.Prefix)
	}
	if strings.ContainsAny(opts.Prefix, "*?[]\\") {
		// Listings find keys by SCAN patterns made from the prefix:
		// "fsm?" would list another deployment's instances as its own.
		return nil, fmt.Errorf("key prefix %q: want one without the glob characters * ? [ ] \\ (listings match keys by patterns made from it)", opts.Prefix)
	}
	lockOpts, err := parseLockURLs(opts.LockURLs)
	if err != nil {
		return nil, err
	}
	var rdb redis.UniversalClient
	if strings.HasPrefix(url, "redis+sentinel://") {
		fo, err := ParseSentinelURL(url)
		if err != nil {
			return nil, badURL("Redis URL", url, err)
		}
		fo.MaxRetries, fo.ContextTimeoutEnabled = noRetries, true
		rdb = redis.NewFailoverClient(fo)
	} else if strings.Contains(url, "addr=") {
		copts, err := parseClusterURL(url)
		if err != nil {
			return nil, badURL("Redis URL", url, err)
		}
		rdb = redis.NewClusterClient(copts)
	} else {
		o, err := parseNodeURL(url)
		if err != nil {
			return nil, badURL("Redis URL", url, err)
		}
		rdb = redis.NewClient(o)
	}
	owned := []redis.UniversalClient{rdb}
	closeAll := func() {
		for _, c := range owned {
			c.Close()
		}
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ping := func() error {
		err := rdb.Ping(pingCtx).Err()
		switch {
		case err == nil:
			return nil
		case Unreachable(err) && strings.HasPrefix(url, "rediss://") && errors.Is(err, context.DeadlineExceeded):
			// A TLS client waits for a handshake that a server without
			// TLS never starts.
			return fmt.Errorf("%w at %s: %w (no TLS handshake: does the server take TLS on that port?)", ErrUnreachable, redactURL(url), err)
		case Unreachable(err):
			return fmt.Errorf("%w at %s: %w", ErrUnreachable, redactURL(url), err)
		}
		return fmt.Errorf("Redis at %s refused: %w", redactURL(url), err)
	}
	if err := ping(); err != nil {
		closeAll()
		return nil, err
	}
	// One node of a Cluster, named alone, is a seed: the client finds
	// the others (as one with addr= would), or every command on a key of
	// another shard would fail, and listings would miss those keys.
	if node, single := rdb.(*redis.Client); single && clusterEnabled(pingCtx, node) {
		copts, err := parseClusterURL(url)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("for a Cluster node: %w", badURL("Redis URL", url, err))
		}
		node.Close()
		rdb = redis.NewClusterClient(copts)
		owned[0] = rdb
		if err := ping(); err != nil {
			closeAll()
			return nil, err
		}
	}
	// Redlock needs a majority of its nodes: a store starts with one
	// down (and uses it again when it answers), not without a majority.
	// The nodes are asked at once, each with its own time: a hung one
	// does not use up the others' time.
	nodeErrs := make([]error, len(lockOpts))
	servers := make([]string, len(lockOpts)) // each node's server (its run id), when it says
	var asked sync.WaitGroup
	for i, o := range lockOpts {
		c := redis.NewClient(o)
		owned = append(owned, c)
		opts.LockNodes = append(opts.LockNodes, c)
		asked.Add(1)
		go func() {
			defer asked.Done()
			nodeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			servers[i], nodeErrs[i] = serverID(nodeCtx, c)
		}()
	}
	asked.Wait()
	// One server named twice under different addresses (localhost and
	// 127.0.0.1, say), which parseLockURLs cannot tell apart.
	seen := map[string]int{}
	for i, id := range servers {
		if id == "" {
			continue
		}
		id += "/" + strconv.Itoa(lockOpts[i].DB)
		if j, twice := seen[id]; twice {
			closeAll()
			return nil, fmt.Errorf("lock node %s is named twice (as %s too: one Redis server answers both): Redlock needs independent nodes, each named once", redactURL(opts.LockURLs[i]), redactURL(opts.LockURLs[j]))
		}
		seen[id] = i
	}
	var down []string
	for i, err := range nodeErrs {
		if err != nil {
			down = append(down, fmt.Sprintf("%s (%v)", redactURL(opts.LockURLs[i]), err))
		}
	}
	if n := len(opts.LockURLs); len(down) > 0 && n-len(down) < n/2+1 {
		closeAll()
		return nil, fmt.Errorf("%w: not a majority of the %d lock nodes (%d of %d needed): %s", ErrUnreachable, n, n/2+1, n, strings.Join(down, "; "))
	}
	s := New(rdb, opts)
	s.owned = owned
	for _, c := range owned {
		c.AddHook(closedHook{s.closed})
	}
	for _, node := range down {
		s.log.Warn("a lock node does not answer; the others make a majority", "node", node)
	}
	return s, nil
}

// parseLockURLs reads the URLs of the Redlock nodes. Each node may be
// named once: one named twice would take a lock once and refuse it the
// second time, so that no lock would ever have its majority.
func parseLockURLs(urls []string) ([]*redis.Options, error) {
	var all []*redis.Options
	seen := map[string]string{} // "address/db" -> the URL that named it
	for _, raw := range urls {
		o, err := parseNodeURL(raw)
		if err != nil {
			return nil, badURL("lock node URL", raw, err)
		}
		node := fmt.Sprintf("%s/%d", o.Addr, o.DB)
		if first, twice := seen[node]; twice {
			return nil, fmt.Errorf("lock node %s is named twice (as %s too): Redlock needs independent nodes, each named once", redactURL(raw), redactURL(first))
		}
		seen[node] = raw
		all = append(all, o)
	}
	return all, nil
}

// serverID asks node which Redis server it is (its run id, unique to a
// server process), or, when it refuses INFO (a user not allowed it),
// whether it answers PING ("" then).
func serverID(ctx context.Context, node *redis.Client) (string, error) {
	info, err := node.Info(ctx, "server").Result()
	if err != nil {
		if answerCode(err) != "" {
			return "", node.Ping(ctx).Err()
		}
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if id, ok := strings.CutPrefix(line, "run_id:"); ok {
			return strings.TrimSpace(id), nil
		}
	}
	return "", nil
}

// clusterEnabled reports whether node says it is a Cluster node (a user
// not allowed INFO is taken at its word as a single Redis).
func clusterEnabled(ctx context.Context, node *redis.Client) bool {
	info, err := node.Info(ctx, "cluster").Result()
	return err == nil && strings.Contains(info, "cluster_enabled:1")
}

// ErrUnreachable is Open's error when Redis (or a majority of the lock
// nodes) does not answer: a network error or a timeout, which may pass,
// unlike a bad URL or a refused password.
var ErrUnreachable = errors.New("cannot reach Redis")

// Unreachable reports whether err says the connection to Redis failed
// (a network error, a timeout, or Redis closing the connection) rather
// than Redis answering: a write may then have been made without its
// reply arriving.
func Unreachable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// Unavailable reports whether err is Redis answering that it cannot
// serve a command now: out of memory, loading its data, a replica that
// takes no writes, a Cluster or master that is down. Not the command's
// fault; the same command may succeed later.
func Unavailable(err error) bool {
	switch answerCode(err) {
	case "OOM", "LOADING", "READONLY", "MASTERDOWN", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "MISCONF":
		return true
	}
	return false
}

// ReadOnlyReplica reports whether err is Redis answering that it is a
// replica, which takes no writes: the deployment's URL names a replica,
// not its master.
func ReadOnlyReplica(err error) bool { return answerCode(err) == "READONLY" }

// answerCode is the code that starts Redis's error answer in err (such
// as "OOM" or "READONLY"), or "" when err holds no answer.
func answerCode(err error) string {
	var answer redis.Error
	if !errors.As(err, &answer) {
		return ""
	}
	code, _, _ := strings.Cut(answer.Error(), " ")
	return code
}

// parseNodeURL reads the URL of one Redis node, with fsmc's TLS
// parameters (see takeTLSParams), for a client that does not retry
// (noRetries) and that gives up on a reply when the call's context
// ends, if that comes before its read timeout: a caller's deadline
// holds while Redis hangs.
func parseNodeURL(raw string) (*redis.Options, error) {
	o, err := parseWithTLS(raw, redis.ParseURL, func(o *redis.Options) *tls.Config { return o.TLSConfig })
	if err == nil {
		o.MaxRetries, o.ContextTimeoutEnabled = noRetries, true
	}
	return o, err
}

// parseClusterURL reads the URL of a Cluster (seed nodes), as
// parseNodeURL reads one node's.
func parseClusterURL(raw string) (*redis.ClusterOptions, error) {
	o, err := parseWithTLS(raw, redis.ParseClusterURL, func(o *redis.ClusterOptions) *tls.Config { return o.TLSConfig })
	if err == nil {
		o.MaxRetries, o.ContextTimeoutEnabled = noRetries, true
	}
	return o, err
}

// noRetries turns off the client's own retries. go-redis sends a command
// again when its reply is late or lost, and a script that already ran
// (an enqueue, a start) would then apply twice. fsmc retries where that
// is safe: workers claim again; an operator's command reports the error.
const noRetries = -1

// retriesOf returns how many times a go-redis client retries a command
// (its Options after NewClient: -1 has become 0, and 0 the default 3),
// and whether rdb is such a client.
func retriesOf(rdb redis.UniversalClient) (int, bool) {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().MaxRetries, true
	case *redis.ClusterClient:
		return c.Options().MaxRetries, true
	}
	return 0, false
}

// LogClientTo sends the Redis client's own messages (a lost connection, a
// Sentinel naming a new master) to l, instead of the standard logger. It
// holds for the whole process.
func LogClientTo(l *slog.Logger) { redis.SetLogger(clientLog{l}) }

type clientLog struct{ l *slog.Logger }

func (c clientLog) Printf(ctx context.Context, format string, v ...any) {
	c.l.InfoContext(ctx, fmt.Sprintf(format, v...), "from", "redis client")
}

// ParseSentinelURL reads redis+sentinel://[user:password@]host:port[,host:port...]/MASTER[/DB]
// [?sentinel_password=P]: the Sentinels to ask, the name of the master
// they watch, and the database. The user and password are the master's.
func ParseSentinelURL(raw string) (*redis.FailoverOptions, error) {
	u, err := neturl.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s: no Sentinel addresses", redactURL(raw))
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if parts[0] == "" || len(parts) > 2 {
		return nil, fmt.Errorf("%s: want /MASTER or /MASTER/DB after the Sentinel addresses", redactURL(raw))
	}
	o := &redis.FailoverOptions{MasterName: parts[0], SentinelAddrs: strings.Split(u.Host, ",")}
	if len(parts) == 2 {
		if o.DB, err = strconv.Atoi(parts[1]); err != nil || o.DB < 0 {
			return nil, fmt.Errorf("%s: database %q is not a number", redactURL(raw), parts[1])
		}
	}
	o.Username = u.User.Username()
	o.Password, _ = u.User.Password()
	for key, vals := range u.Query() {
		if key != "sentinel_password" {
			return nil, fmt.Errorf("%s: unknown option %q (only sentinel_password)", redactURL(raw), key)
		}
		o.SentinelPassword = vals[len(vals)-1]
	}
	return o, nil
}

// redactURL hides the passwords of a URL, for messages.
func redactURL(url string) string {
	if k := strings.Index(url, "sentinel_password="); k >= 0 {
		k += len("sentinel_password=")
		end := strings.IndexByte(url[k:], '&')
		if end < 0 {
			end = len(url) - k
		}
		url = url[:k] + "***" + url[k+end:]
	}
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	// The last @ ends the credentials: a password may hold one that
	// should have been percent-encoded.
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return url
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + ":***@" + rest[at+1:]
}

// badURL is the error for a URL (what: "Redis URL", say) that could not
// be read. net/url's messages quote the URL, or the part it could not
// read, which may be a password with characters that should have been
// percent-encoded: for a URL with credentials the message says what to
// check instead.
func badURL(what, raw string, err error) error {
	var ue *neturl.Error
	if _, rest, _ := strings.Cut(raw, "://"); errors.As(err, &ue) && strings.Contains(rest, "@") {
		return fmt.Errorf("bad %s %s: it does not parse (in a user name or password, @ : / ? # %% and spaces must be percent-encoded)", what, redactURL(raw))
	}
	return fmt.Errorf("bad %s: %v", what, err)
}

// Machine implements runtime.Store.
func (s *Store) Machine(ctx context.Context, hash string) (*ir.Machine, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	m, err := s.machine(ctx, machineID(hash))
	if errors.Is(err, errNoMachine) || err == nil && m.Hash != hash {
		return nil, fmt.Errorf("no machine with hash %s in the registry", hash)
	}
	return m, err
}

// lists is the tail of ARGV the scripts' applyLists reads.
func (s *Store) lists(inst *runtime.Instance, history []runtime.HistoryEntry, work []runtime.Work) []any {
	args := []any{len(history)}
	for _, h := range history {
		args = append(args, encodeHistory(h))
	}
	args = append(args, s.history, len(work))
	for _, w := range work {
		kind, value := encodeWork(w)
		args = append(args, kind, value)
	}
	mark := len(args)
	args = append(args, 0)
	for i := range history {
		if inst == nil {
			break // a completion: the instance did not change
		}
		if c, ok := runtime.ChangeOf(inst, &history[i]); ok {
			args = append(args, encodeChange(c))
		}
	}
	args[mark] = len(args) - mark - 1
	return args
}

// Create implements runtime.Store.
func (s *Store) Create(ctx context.Context, inst *runtime.Instance, work []runtime.Work, history []runtime.HistoryEntry) error {
	if s.isClosed() {
		return ErrClosed
	}
	d, c, f := encodeData(inst)
	args := append([]any{inst.ID, int(inst.Status), inst.Priority, machineID(inst.Hash), d, c, f},
		s.lists(inst, history, work)...)
	out, err := s.result(s.run(ctx, "create", s.partitionOf(inst.ID), args...))
	s.pokeIf(out, err)
	return err
}

// instanceFields are the fields of an instance's hash that Load reads,
// in decodeInstance's order.
var instanceFields = []string{"v", "st", "pr", "d", "c", "f", "h"}

// Load implements runtime.Store.
func (s *Store) Load(ctx context.Context, id string, inst *runtime.Instance) error {
	if s.isClosed() {
		return ErrClosed
	}
	vals, err := s.rdb.HMGet(ctx, s.instanceKey(id, "i"), instanceFields...).Result()
	if err != nil {
		return err
	}
	if vals[0] == nil {
		return runtime.ErrNotFound
	}
	return s.decodeInstance(ctx, id, vals, inst)
}

// decodeInstance reads the instance hash's fields v, st, pr, d, c, f, h
// (in that order), resolving its machine id.
func (s *Store) decodeInstance(ctx context.Context, id string, vals []any, inst *runtime.Instance) error {
	mid, _ := vals[6].(string)
	m, err := s.machine(ctx, mid)
	if errors.Is(err, errNoMachine) {
		return fmt.Errorf("instance %s: %w (a worker that runs that version registers it again when it starts)", id, err)
	}
	if err != nil {
		return fmt.Errorf("instance %s: %w", id, err)
	}
	if err := decodeFields(id, vals, inst); err != nil {
		return err
	}
	inst.Machine, inst.Hash = m.Name, m.Hash
	// What the engine indexes by must fit the machine: a damaged record
	// is an error here, not a crash of every worker that reads it.
	if len(inst.Context) != len(m.Context) || inst.State < 0 || inst.State >= len(m.States) {
		return fmt.Errorf("instance %s is damaged: state %d and %d context values, but machine %s has %d states and %d context fields",
			id, inst.State, len(inst.Context), m.Name, len(m.States), len(m.Context))
	}
	return nil
}

// History implements runtime.Store.
func (s *Store) History(ctx context.Context, id string) ([]runtime.HistoryEntry, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	vals, err := s.rdb.HMGet(ctx, s.instanceKey(id, "i"), "v", "hi").Result()
	if err != nil {
		return nil, err
	}
	if vals[0] == nil {
		return nil, runtime.ErrNotFound
	}
	text, _ := vals[1].(string)
	if text == "" {
		return nil, nil
	}
	lines := strings.Split(text, "\n")
	out := make([]runtime.HistoryEntry, 0, len(lines))
	for _, line := range lines {
		h, err := decodeHistory(line)
		if err != nil {
			return nil, fmt.Errorf("instance %s: %w", id, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// List implements runtime.Store. It scans the instance keys, so it suits
// operators' listings rather than hot paths: each page of the scan (up
// to 1,000 keys) is read in one pipelined round trip.
func (s *Store) List(ctx context.Context, f runtime.ListFilter) ([]*runtime.Instance, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	pattern := s.prefix + ":{" + s.prefix + "-*}:i:*"
	var mu sync.Mutex
	var out []*runtime.Instance
	unknown := map[string]int{} // machine id -> instances of it, which the registry lost
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			reads := make([]*redis.SliceCmd, len(keys))
			if len(keys) > 0 {
				_, err = c.Pipelined(ctx, func(pipe redis.Pipeliner) error {
					for i, key := range keys {
						reads[i] = pipe.HMGet(ctx, key, instanceFields...)
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			for i, key := range keys {
				vals := reads[i].Val()
				if vals[0] == nil {
					continue // gone since the scan saw it
				}
				inst := &runtime.Instance{}
				if err := s.decodeInstance(ctx, key[strings.Index(key, "}:i:")+4:], vals, inst); errors.Is(err, errNoMachine) {
					mid, _ := vals[6].(string)
					mu.Lock()
					unknown[mid]++
					mu.Unlock()
					continue
				} else if err != nil {
					return err
				}
				m, _ := s.Machine(ctx, inst.Hash) // decodeInstance has read it into the store's cache
				if !f.Matches(inst, m) {
					continue
				}
				mu.Lock()
				out = append(out, inst)
				mu.Unlock()
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if err := eachNode(ctx, s.rdb, scan); err != nil {
		return nil, err
	}
	for mid, n := range unknown {
		s.log.Warn("instances left out of the list: the machine registry has lost their version (a worker that runs it registers it again when it starts)",
			"machine_id", mid, "instances", n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	out = uniqueIDs(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// uniqueIDs drops the repeats of an instance from a list sorted by ID.
// SCAN returns a key more than once when Redis shrinks its table of
// keys while the scan runs (after many keys expire, say).
func uniqueIDs(sorted []*runtime.Instance) []*runtime.Instance {
	return slices.CompactFunc(sorted, func(a, b *runtime.Instance) bool { return a.ID == b.ID })
}

// Enqueue implements runtime.Store.
func (s *Store) Enqueue(ctx context.Context, w runtime.Work) error {
	if s.isClosed() {
		return ErrClosed
	}
	kind, value := encodeWork(w)
	out, err := s.result(s.run(ctx, "enqueue", s.partitionOf(w.Instance), w.Instance, 1, kind, value))
	if st, ok := strings.CutPrefix(out, "ended:"); ok {
		n, _ := strconv.Atoi(st)
		return fmt.Errorf("%w: instance %s is %s", runtime.ErrRejected, w.Instance, runtime.Status(n))
	}
	s.pokeIf(out, err)
	return err
}

// claimArgs encodes a filter for the claim script.
func claimArgs(f runtime.ClaimFilter) (hashes, runnable string) {
	hashes, runnable = "*", "*"
	if f.Hashes != nil {
		ids := make([]string, len(f.Hashes))
		for i, h := range f.Hashes {
			ids[i] = machineID(h)
		}
		hashes = strings.Join(ids, "\n")
	}
	if f.NoTasks {
		return hashes, "" // no action
	}
	if f.Runnable != nil {
		var lines []string
		for hash, actions := range f.Runnable {
			for _, a := range actions {
				lines = append(lines, machineID(hash)+"#"+strconv.Itoa(a))
			}
		}
		runnable = strings.Join(lines, "\n")
	}
	return hashes, runnable
}

// Claim implements runtime.Store.
func (s *Store) Claim(ctx context.Context, f runtime.ClaimFilter, l *runtime.Lease) (bool, error) {
	if s.isClosed() {
		return false, ErrClosed
	}
	ok, err := s.claim(ctx, f, l)
	if err == nil && !ok {
		err = s.moveOldAgain(ctx, f.Now, l)
	}
	return ok, err
}

func (s *Store) claim(ctx context.Context, f runtime.ClaimFilter, l *runtime.Lease) (bool, error) {
	hashes, runnable := claimArgs(f)
	now, lease := f.Now.UnixMilli(), f.Lease.Milliseconds()
	if s.parts == 1 {
		return s.claimFrom(ctx, 0, l, now, lease, hashes, runnable, "claim", 0, "", f)
	}
	for try := 0; try < 3; try++ {
		heads, unavailable := s.peek(ctx, now, lease, hashes, runnable)
		if heads == nil {
			return false, unavailable
		}
		// The partitions with work due at the highest priority, the
		// earliest due first (ties in turn, from a rotating start).
		best := int64(-1)
		for _, h := range heads {
			best = max(best, h.prio)
		}
		if best < 0 {
			// Nothing due where Redis answered: an outage elsewhere is
			// the claim's error, for the worker to report and wait out.
			return false, unavailable
		}
		start := int(s.nextRotation()) % s.parts
		var order []int
		for i := 0; i < s.parts; i++ {
			if p := (start + i) % s.parts; heads[p].prio == best {
				order = append(order, p)
			}
		}
		sort.SliceStable(order, func(i, j int) bool { return heads[order[i]].due < heads[order[j]].due })
		for _, p := range order {
			ok, err := s.claimFrom(ctx, p, l, now, lease, hashes, runnable, "claim", int(best), "", f)
			if ok {
				for q, h := range heads {
					l.More = l.More || q != p && h.prio >= 0 // another partition has work due
				}
			}
			if err != nil || ok {
				return ok, err
			}
		}
	}
	return false, nil
}

// partitionHead is what a partition has due first: its highest priority
// with work due (-1 for none) and the due time (ms) of the earliest
// there.
type partitionHead struct{ prio, due int64 }

// peek asks every partition, in one pipelined round trip, what it has
// due first. A partition that cannot answer (its Cluster node is down)
// counts as having nothing due, and its error comes back with the
// others' heads (unavailable): work on the nodes that answer goes on.
// Only when none answers are there no heads.
func (s *Store) peek(ctx context.Context, now, lease int64, hashes, runnable string) (heads []partitionHead, unavailable error) {
	cmds, err := s.everyPartition(ctx, "claim", now, now+lease, hashes, runnable, "peek", 0, "")
	if cmds == nil || err != nil && !Unreachable(err) && !Unavailable(err) {
		return nil, err
	}
	heads = make([]partitionHead, s.parts)
	answered := false
	for p, cmd := range cmds {
		heads[p].prio = -1
		perr := cmd.Err()
		if perr == nil && cmd.Val() == nil {
			perr = err // not sent: the round trip's error
		}
		if perr != nil && (Unreachable(perr) || Unavailable(perr)) {
			unavailable = perr
			continue
		}
		answered = true
		switch v := cmd.Val().(type) {
		case int64: // -1: nothing due
		case []any:
			if len(v) == 2 {
				heads[p].prio, _ = v[0].(int64)
				heads[p].due, _ = v[1].(int64)
				continue
			}
			return nil, fmt.Errorf("claim script's peek returned %v", v)
		default:
			if err := cmd.Err(); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("claim script's peek returned %v", v)
		}
	}
	if !answered {
		return nil, unavailable
	}
	return heads, unavailable
}

// everyPartition runs script name with args on every partition, in one
// pipelined round trip (one per node of a Cluster), and returns each
// partition's reply, with the first error if any failed. A server that
// lost the scripts (isNoScript) gets them again, and the round trip is
// made once more.
func (s *Store) everyPartition(ctx context.Context, name string, args ...any) ([]*redis.Cmd, error) {
	if err := s.scripts.ready(ctx, s.rdb); err != nil {
		return nil, err
	}
	cmds := make([]*redis.Cmd, s.parts)
	pipeline := func(pipe redis.Pipeliner) error {
		for p := 0; p < s.parts; p++ {
			pfx := s.partitionPrefix(p)
			cmds[p] = s.scripts.pipe(ctx, pipe, name, []string{pfx + "seq"}, append([]any{pfx}, args...)...)
		}
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, pipeline)
	if isNoScript(err) {
		if err := s.scripts.load(ctx, s.rdb); err != nil {
			return nil, err
		}
		_, err = s.rdb.Pipelined(ctx, pipeline)
	}
	// On an error, the replies too: on a Cluster, the partitions whose
	// node answered have theirs (see peek).
	return cmds, err
}

func (s *Store) nextRotation() uint32 { return s.rotate.Add(1) }

// claimFrom runs the claim script on partition p and fills l.
func (s *Store) claimFrom(ctx context.Context, p int, l *runtime.Lease, now, lease int64, hashes, runnable, mode string, minPrio int, id string, f runtime.ClaimFilter) (bool, error) {
	// With one partition, a claim that finds nothing also says when to
	// look again; with several, its answer would speak for one only.
	askNext := mode == "claim" && s.parts == 1
	claim := s.nextClaimID()
	v, err := s.run(ctx, "claim", p, now, now+lease, hashes, runnable, mode, minPrio, id, boolArg(s.lockHere), lease, boolArg(askNext), claim).Result()
	if errors.Is(err, redis.Nil) {
		return false, nil
	}
	if err != nil {
		s.abandonLost(p, claim, lease, err)
		return false, err
	}
	return s.claimed(ctx, v, askNext, now, lease, f, l)
}

// claimed reads the claim script's answer v (see claim.lua) into l, as
// Claim reports it; askNext: the claim was asked when to look again.
func (s *Store) claimed(ctx context.Context, v any, askNext bool, now, lease int64, f runtime.ClaimFilter, l *runtime.Lease) (bool, error) {
	if next, ok := v.(int64); ok && askNext { // nothing to claim, and when to look again
		l.Next, l.NextKnown = time.Time{}, true
		if next >= 0 {
			l.Next = time.UnixMilli(next)
		}
		return false, nil
	}
	if str, ok := v.(string); ok && str == "notfound" {
		return false, runtime.ErrNotFound
	}
	parts, ok := v.([]any)
	if !ok || len(parts) != 13 {
		return false, fmt.Errorf("claim script returned %v", v)
	}
	unit, member, js, token := parts[0].(string), parts[1].(string), parts[2].(string), parts[3].(string)
	prio, _ := parts[4].(string)
	priority, _ := strconv.Atoi(prio)
	seq, _ := strconv.ParseUint(member, 10, 64)
	instID := unit[2:]
	if strings.HasPrefix(unit, "t|") {
		instID = unit[strings.LastIndex(unit, "|"+member+"|")+len(member)+2:]
	}
	w, err := decodeWork(instID, js, seq, int(priority))
	if err != nil {
		return false, err
	}
	fence, _ := strconv.ParseUint(token, 10, 64)
	more, _ := parts[12].(string)
	*l = runtime.Lease{Work: w, Worker: f.Worker, Until: time.UnixMilli(now + lease), Token: unit, Fence: fence, More: more == "1"}
	// The instance as the script read it, so the engine need not load it.
	l.Instance = &runtime.Instance{}
	if err := s.decodeInstance(ctx, instID, parts[5:], l.Instance); err != nil {
		_ = s.Release(ctx, l)
		return false, err
	}
	if w.Kind != runtime.WorkTask && s.redlock != nil && !s.lockHere {
		// Instance work also takes the instance's Redlock (the claim
		// script took it if it lives on this Redis); if someone holds
		// it, the work goes back and waits for them.
		m, err := s.lockInstance(ctx, instID, time.Duration(lease)*time.Millisecond, 1)
		if err != nil {
			_ = s.Release(ctx, l)
			if lockUnavailable(err) {
				// Too few lock nodes answer: an outage, which the
				// worker reports and waits out, not a busy instance.
				return false, fmt.Errorf("%w: instance %s's Redlock: too few lock nodes answer: %s", ErrUnreachable, instID, oneLine(err))
			}
			return false, nil
		}
		s.locks.Store(lockKey(l), m)
	}
	return true, nil
}

// nextClaimID returns an id for a claim call, unlike any other's.
func (s *Store) nextClaimID() string {
	return s.claimIDs + strconv.FormatUint(s.claimSeq.Add(1), 36)
}

// abandonLost gives back what claim call claim (on partition p, for a
// lease of lease ms) took, when the call failed with err after it may
// have reached Redis: its reply was lost.
func (s *Store) abandonLost(p int, claim string, lease int64, err error) {
	if Unreachable(err) && !neverSent(err) {
		s.abandon(p, claim, time.Duration(lease)*time.Millisecond)
	}
}

// abandon gives back, in the background, whatever claim call claim took
// on partition p although its reply was lost (Redis ran the script, the
// connection broke before the answer came): no worker knows of that
// lease, which would otherwise hold the work, and the instance's lock,
// until it ends. It tries until Redis answers, for up to the lease.
func (s *Store) abandon(p int, claim string, lease time.Duration) {
	s.abandons.Add(1)
	go func() {
		defer s.abandons.Done()
		deadline := time.Now().Add(lease)
		for wait := 50 * time.Millisecond; time.Now().Before(deadline); wait = min(2*wait, time.Second) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			out, err := s.result(s.run(ctx, "lease", p, claim, "", "abandon", 0))
			cancel()
			if err == nil {
				if out != "none" {
					s.log.Info("gave back the work of a claim whose reply was lost", "partition", p)
				}
				s.pokeIf(out, err)
				return
			}
			if errors.Is(err, ErrClosed) {
				return
			}
			select {
			case <-s.closed:
				return
			case <-time.After(wait):
			}
		}
	}()
}

// neverSent reports whether err is a failure to connect: the command
// did not reach Redis (during an outage every claim fails so, and none
// has anything to give back).
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// newClaimIDs returns a prefix for a store's claim ids, unlike any other
// store's: "c", 12 random hex digits and "-" (never a "|", nor digits
// alone, which a lease's member is).
func newClaimIDs() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return "c" + hex.EncodeToString(b[:]) + "-"
}

// ClaimInstance implements runtime.Store.
func (s *Store) ClaimInstance(ctx context.Context, id string, f runtime.ClaimFilter, l *runtime.Lease) (bool, error) {
	if s.isClosed() {
		return false, ErrClosed
	}
	hashes, runnable := claimArgs(f)
	return s.claimFrom(ctx, s.partitionOf(id), l, f.Now.UnixMilli(), f.Lease.Milliseconds(), hashes, runnable, "instance", 0, id, f)
}

func leaseToken(l *runtime.Lease) string { return strconv.FormatUint(l.Fence, 10) }

// Extend implements runtime.Store.
func (s *Store) Extend(ctx context.Context, l *runtime.Lease, until time.Time) error {
	if s.isClosed() {
		return ErrClosed
	}
	_, err := s.result(s.run(ctx, "lease", s.partitionOf(l.Work.Instance), l.Token, leaseToken(l), "extend", until.UnixMilli()))
	if err == nil {
		l.Until = until
		if m, ok := s.locks.Load(lockKey(l)); ok {
			_, _ = m.(*redsync.Mutex).ExtendContext(lockCallContext(ctx))
		}
	}
	return err
}

// Release implements runtime.Store.
func (s *Store) Release(ctx context.Context, l *runtime.Lease) error {
	if s.isClosed() {
		return ErrClosed
	}
	out, err := s.result(s.run(ctx, "lease", s.partitionOf(l.Work.Instance), l.Token, leaseToken(l), "release", 0))
	s.unlock(ctx, l)
	s.pokeIf(out, err)
	return err
}

// dropArg is the commit script's "drop work" argument for c.
func dropArg(c *runtime.Commit) string {
	switch {
	case c.DropWork:
		return "1"
	case c.DropTimers:
		return "2"
	}
	return "0"
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// commit runs the commit script for a lease (or, with l nil, an update;
// with a task's lease, a result delivered directly, due at due).
func (s *Store) commit(ctx context.Context, l *runtime.Lease, c *runtime.Commit, due time.Time) (string, error) {
	inst := c.Instance
	unit, token := "", ""
	if l != nil {
		unit, token = l.Token, leaseToken(l)
	}
	d, data, f := encodeData(inst)
	args := append([]any{inst.ID, unit, token, inst.Version, int(inst.Status), inst.Priority, dropArg(c), d, data, f, millis(due), inst.Version + 1, boolArg(s.lockHere)},
		s.lists(inst, c.History, c.Schedule)...)
	out, err := s.finish(ctx, "commit", s.partitionOf(inst.ID), l, args)
	s.pokeIf(out, err)
	return out, err
}

// finish runs script name (commit or complete), which finishes l's work
// (l nil: an update) on partition p. When the worker asks for its next
// work (l.Then) and the claim would read this partition (there is only
// one), the call claims it too (see chain in prelude.lua), and fills
// l.Then.
func (s *Store) finish(ctx context.Context, name string, p int, l *runtime.Lease, args []any) (string, error) {
	if l == nil || l.Then == nil || s.parts != 1 {
		return s.result(s.run(ctx, name, p, args...))
	}
	f := l.Then.Filter
	hashes, runnable := claimArgs(f)
	now, lease, claim := f.Now.UnixMilli(), f.Lease.Milliseconds(), s.nextClaimID()
	args = append(args, now, now+lease, hashes, runnable, "claim", 0, "", boolArg(s.lockHere), lease, "1", claim)
	v, err := s.run(ctx, name, p, args...).Result()
	if err != nil {
		s.abandonLost(p, claim, lease, err)
		return outcome(v, err)
	}
	reply, ok := v.([]any)
	if !ok || len(reply) != 2 {
		return outcome(v, nil) // refused, or finished without a claim
	}
	next := &l.Then.Next
	found, err := s.claimed(ctx, reply[1], true, now, lease, f, next)
	if err == nil && !found {
		err = s.moveOldAgain(ctx, f.Now, next)
	}
	if err != nil {
		// The write stands; the worker claims again.
		s.log.Warn("claiming the next work with a write", "err", err)
	} else {
		l.Then.Done, l.Then.Found = true, found
	}
	out, _ := reply[0].(string)
	return out, nil
}

// Commit implements runtime.Store.
func (s *Store) Commit(ctx context.Context, l *runtime.Lease, c *runtime.Commit) error {
	if s.isClosed() {
		return ErrClosed
	}
	_, err := s.commit(ctx, l, c, time.Time{})
	s.unlockAfter(ctx, l, err)
	return err
}

// unlockAfter releases the Redlock held for a lease after a write,
// unless the write failed for want of Redis: its caller may try again
// while the lease lasts, still holding the lock (Release frees it).
func (s *Store) unlockAfter(ctx context.Context, l *runtime.Lease, err error) {
	if err == nil || !Unreachable(err) {
		s.unlock(ctx, l)
	}
}

var (
	_ runtime.DirectStore = (*Store)(nil)
	_ runtime.QueueStater = (*Store)(nil)
)

// CompleteDirect implements runtime.DirectStore: with the instance's
// Redlock (one try: a holder means instance work is under way), one
// commit script checks the version, that no instance work comes first,
// and the attempt's lease, and writes. When the lock lives on the main
// Redis, the script itself checks that nobody holds it: taking the lock,
// committing and releasing it in one atomic step, without the two round
// trips.
func (s *Store) CompleteDirect(ctx context.Context, l *runtime.Lease, c *runtime.Commit, due time.Time) (bool, error) {
	if s.isClosed() {
		return false, ErrClosed
	}
	if s.redlock != nil && !s.lockHere {
		m, err := s.lockInstance(ctx, c.Instance.ID, max(time.Until(l.Until), time.Second), 1)
		if err != nil {
			return false, nil
		}
		defer releaseLock(ctx, m)
	}
	out, err := s.commit(ctx, l, c, due)
	return err == nil && (out == "ok" || out == "ready"), err
}

// Update implements runtime.Store: an operator's fenced commit, under
// the instance's Redlock: Hold's, or one it takes as Hold does.
func (s *Store) Update(ctx context.Context, c *runtime.Commit) error {
	if s.isClosed() {
		return ErrClosed
	}
	write := func(ctx context.Context) error {
		_, err := s.commit(ctx, nil, c, time.Time{})
		return err
	}
	if holding(ctx, c.Instance.ID) {
		return write(ctx)
	}
	return s.Hold(ctx, c.Instance.ID, write)
}

// Hold implements runtime.InstanceHolder: it takes the instance's
// Redlock (waiting up to about a second for a worker to finish, then
// ErrBusy), and runs fn with a context that says so, for Update.
// Without the Redlock (Options.NoRedlock) it runs fn alone.
func (s *Store) Hold(ctx context.Context, id string, fn func(ctx context.Context) error) error {
	if s.isClosed() {
		return ErrClosed
	}
	if s.redlock == nil {
		return fn(ctx)
	}
	m, err := s.lockInstance(ctx, id, 5*time.Second, 50)
	if err != nil {
		return lockRefusal(id, err)
	}
	defer releaseLock(ctx, m)
	return fn(context.WithValue(ctx, heldKey{}, id))
}

// heldKey is the context key under which Hold names the instance whose
// lock it holds.
type heldKey struct{}

// holding reports whether ctx is Hold's, for instance id.
func holding(ctx context.Context, id string) bool {
	held, ok := ctx.Value(heldKey{}).(string)
	return ok && held == id
}

// Complete implements runtime.Store.
func (s *Store) Complete(ctx context.Context, l *runtime.Lease, history []runtime.HistoryEntry, schedule []runtime.Work) error {
	if s.isClosed() {
		return ErrClosed
	}
	args := append([]any{l.Work.Instance, l.Token, leaseToken(l)}, s.lists(nil, history, schedule)...)
	out, err := s.finish(ctx, "complete", s.partitionOf(l.Work.Instance), l, args)
	s.unlockAfter(ctx, l, err)
	s.pokeIf(out, err)
	return err
}

// NextDue implements runtime.Store: the earliest of every partition's,
// asked in one round trip.
func (s *Store) NextDue(ctx context.Context, f runtime.ClaimFilter) (time.Time, bool, error) {
	if s.isClosed() {
		return time.Time{}, false, ErrClosed
	}
	hashes, runnable := claimArgs(f)
	cmds, err := s.everyPartition(ctx, "nextdue", hashes, runnable)
	if err != nil {
		return time.Time{}, false, err
	}
	best := int64(-1)
	for _, cmd := range cmds {
		v, err := cmd.Int64()
		if err != nil {
			return time.Time{}, false, err
		}
		if v >= 0 && (best < 0 || v < best) {
			best = v
		}
	}
	if best < 0 {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(best), true, nil
}

// QueueStats implements runtime.QueueStater: every partition's queue,
// summed, in one round trip.
func (s *Store) QueueStats(ctx context.Context, now time.Time) (runtime.QueueStats, error) {
	if s.isClosed() {
		return runtime.QueueStats{}, ErrClosed
	}
	cmds, err := s.everyPartition(ctx, "depth", now.UnixMilli())
	if err != nil {
		return runtime.QueueStats{}, err
	}
	var q runtime.QueueStats
	for _, cmd := range cmds {
		v, err := cmd.Int64Slice()
		if err != nil {
			return runtime.QueueStats{}, err
		}
		if len(v) != 4 {
			return runtime.QueueStats{}, fmt.Errorf("depth script returned %v", v)
		}
		q.Waiting += v[0]
		q.Due += v[1]
		q.Leased += v[3]
		if oldest := time.UnixMilli(v[2]); v[2] >= 0 && (q.OldestDue.IsZero() || oldest.Before(q.OldestDue)) {
			q.OldestDue = oldest
		}
	}
	return q, nil
}

// Changes implements runtime.Store. The changelog is one stream per
// partition; the cursor holds the last ID read from each, and entries
// are merged in stream-ID (time) order.
func (s *Store) Changes(ctx context.Context, cursor string, limit int) ([]runtime.Change, string, error) {
	if s.isClosed() {
		return nil, "", ErrClosed
	}
	last := make([]string, s.parts)
	for i := range last {
		last[i] = "-"
	}
	if cursor != "" {
		ids := strings.Split(cursor, ",")
		if len(ids) != s.parts {
			return nil, "", fmt.Errorf("%w %q (it names %d partitions; this deployment has %d)", runtime.ErrBadCursor, cursor, len(ids), s.parts)
		}
		for _, id := range ids {
			if !isStreamID(id) {
				return nil, "", fmt.Errorf("%w %q: %q is not a stream ID", runtime.ErrBadCursor, cursor, id)
			}
		}
		copy(last, ids)
	}
	type entry struct {
		id     string
		p      int
		change runtime.Change
	}
	// One round trip: each partition's entries after its cursor, and its
	// oldest entry, which must not be newer than the cursor (the stream
	// is capped: see applyLists).
	count := int64(limit)
	if count <= 0 {
		count = 10000
	}
	reads := make([]*redis.XMessageSliceCmd, s.parts)
	firsts := make([]*redis.XMessageSliceCmd, s.parts)
	if _, err := s.rdb.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for p := 0; p < s.parts; p++ {
			key, start := s.partitionPrefix(p)+"changes", last[p]
			if start != "-" {
				start = "(" + start
				firsts[p] = pipe.XRangeN(ctx, key, "-", "+", 1)
			}
			reads[p] = pipe.XRangeN(ctx, key, start, "+", count)
		}
		return nil
	}); err != nil {
		return nil, "", err
	}
	if err := s.checkAhead(ctx, last); err != nil {
		return nil, "", err
	}
	var all []entry
	lost := map[string]bool{} // machine ids the registry has lost
	for p := 0; p < s.parts; p++ {
		if firsts[p] != nil {
			if first := firsts[p].Val(); len(first) > 0 && streamBefore(last[p], first[0].ID) && !streamNext(last[p], first[0].ID) {
				// Older than the oldest entry kept, and not the one just
				// before it: trimmed, unless the stream never lost an
				// entry (a cursor such as 0-0).
				info, err := s.rdb.XInfoStream(ctx, s.partitionPrefix(p)+"changes").Result()
				if err != nil {
					return nil, "", err
				}
				if info.EntriesAdded != info.Length {
					return nil, "", fmt.Errorf("%w (partition %d: cursor %s; the oldest entry kept is %s)", runtime.ErrCursorTrimmed, p, last[p], first[0].ID)
				}
			}
		}
		msgs := reads[p].Val()
		for _, m := range msgs {
			rec, _ := m.Values["c"].(string)
			c, mid, err := decodeChange(rec)
			if err != nil {
				return nil, "", fmt.Errorf("changelog entry %s: %w", m.ID, err)
			}
			machine, err := (*ir.Machine)(nil), errNoMachine
			if !lost[mid] {
				machine, err = s.machine(ctx, mid)
			}
			switch {
			case errors.Is(err, errNoMachine):
				// The registry has lost the version (see List): the
				// change stays, named by the version's id alone (and
				// the registry is not asked again for this read).
				lost[mid] = true
				c.Hash = mid
			case err != nil:
				return nil, "", fmt.Errorf("changelog entry %s: %w", m.ID, err)
			default:
				c.Machine, c.Hash = machine.Name, machine.Hash
			}
			all = append(all, entry{m.ID, p, c})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return streamBefore(all[i].id, all[j].id) })
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	out := make([]runtime.Change, len(all))
	for i, e := range all {
		last[e.p] = e.id
		out[i] = e.change
		out[i].Cursor = strings.Join(last, ",")
	}
	return out, strings.Join(last, ","), nil
}

// isStreamID reports whether id is a stream entry ID ("ms-seq", each a
// 64-bit number, the last ID excepted: nothing can follow it), or "-"
// for the start.
func isStreamID(id string) bool {
	if id == "-" {
		return true
	}
	ms, seq, ok := strings.Cut(id, "-")
	a, errA := strconv.ParseUint(ms, 10, 64)
	b, errB := strconv.ParseUint(seq, 10, 64)
	return ok && errA == nil && errB == nil && (a != math.MaxUint64 || b != math.MaxUint64)
}

// checkAhead refuses a cursor ahead of a partition's changelog: later
// than the last ID the stream gave, and than this host's clock by over a
// minute. No stream wrote it (it is made up, or from another
// deployment), and a reader would wait at it for ever. (Redis's clock
// may lag or lead this host's: the stream's own last ID decides.)
func (s *Store) checkAhead(ctx context.Context, last []string) error {
	soon := strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10) + "-0"
	for p, id := range last {
		if id == "-" || !streamBefore(soon, id) {
			continue
		}
		lastID := "none: there is no changelog yet"
		info, err := s.rdb.XInfoStream(ctx, s.partitionPrefix(p)+"changes").Result()
		switch {
		case err == nil && !streamBefore(info.LastGeneratedID, id):
			continue
		case err == nil:
			lastID = info.LastGeneratedID
		case !strings.Contains(err.Error(), "no such key"):
			return err
		}
		return fmt.Errorf("%w: %s is ahead of partition %d's changelog (its last entry: %s) and of this host's clock: not a cursor of this deployment", runtime.ErrBadCursor, id, p, lastID)
	}
	return nil
}

// streamNext reports whether stream entry ID b is the one right after a
// (the same millisecond, the next sequence number): no entry can come
// between them, so a reader at a has missed nothing before b.
func streamNext(a, b string) bool {
	am, as, ok := strings.Cut(a, "-")
	bm, bs, ok2 := strings.Cut(b, "-")
	x, err := strconv.ParseUint(as, 10, 64)
	y, err2 := strconv.ParseUint(bs, 10, 64)
	return ok && ok2 && err == nil && err2 == nil && am == bm && y == x+1
}

// streamBefore orders stream IDs ("ms-seq").
func streamBefore(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	ai, _ := strconv.ParseUint(am, 10, 64)
	bi, _ := strconv.ParseUint(bm, 10, 64)
	if ai != bi {
		return ai < bi
	}
	x, _ := strconv.ParseUint(as, 10, 64)
	y, _ := strconv.ParseUint(bs, 10, 64)
	return x < y
}
