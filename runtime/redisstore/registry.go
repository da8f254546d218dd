package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/runtime"
	"github.com/redis/go-redis/v9"
	"strconv"
	"strings"
	"sync"
	"time"
)

// errNoMachine: the registry has no machine version with the id.
var errNoMachine = errors.New("the machine registry has no machine version")

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
