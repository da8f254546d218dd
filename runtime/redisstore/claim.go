package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/fsmc/fsmc/runtime"
	"github.com/go-redsync/redsync/v4"
	"github.com/redis/go-redis/v9"
	"net"
	"sort"
	"strconv"
	"strings"
	"time"
)

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
					if q != p && h.prio >= 0 { // another partition has work due, of any kind
						l.More, l.MoreTasks = true, false
					}
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
	cmds, err := s.everyPartition(ctx, "claim", now, now+lease, hashes, runnable, "0", lease, "", "0", "peek", 0, "")
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
			cmds[p] = s.scripts.pipe(ctx, pipe, name, s.partitionSeq(p), s.scriptArgs(p, 0, args...)...)
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
	if s.parts == 1 {
		s.scanned.Store(now)
	}
	args := s.scriptArgs(p, 0, now, now+lease, hashes, runnable, boolArg(s.lockHere), lease, claim, "0", mode, minPrio, id, boolArg(askNext))
	v, err := s.runArgs(ctx, "claim", p, args).Result()
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
	fence, ok := s.fenceOf(token)
	if !ok {
		return false, fmt.Errorf("claim script returned the lease token %q, not one of this store's claims", token)
	}
	more, _ := parts[12].(string)
	*l = runtime.Lease{Work: w, Worker: f.Worker, Until: time.UnixMilli(now + lease), Token: unit, Fence: fence, More: more == "1" || more == "t", MoreTasks: more == "t"}
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

// scanEvery is how often, at most, the claims a store's workers make
// with their writes look for expired leases (on a store of one
// partition; claims of their own always look). A busy fleet claims
// thousands of times a second, and each look is a call of the claim
// script's; an expired lease (its worker died) waits a lease already,
// 15 s by default, and this adds at most a tenth of a second.
const scanEvery = 100 // ms

// scanExpired reports whether a claim made with a write at now (ms)
// should look for expired leases (claim.lua's ARGV[9]), and if so
// notes that it does.
func (s *Store) scanExpired(now int64) bool {
	if last := s.scanned.Load(); now >= last && now-last < scanEvery {
		return false
	}
	s.scanned.Store(now)
	return true
}

// nextClaimID returns an id for a claim call, unlike any other's. It is
// also the token of the lease the call takes, if it takes one (each
// takes at most one): a lease's Fence is its claim's number in this
// store, and leaseToken makes the id again.
func (s *Store) nextClaimID() string {
	return s.claimIDs + strconv.FormatUint(s.claimSeq.Add(1), 36)
}

// fenceOf reads the number of this store's claim whose id is token.
func (s *Store) fenceOf(token string) (uint64, bool) {
	seq, ok := strings.CutPrefix(token, s.claimIDs)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(seq, 36, 64)
	return n, err == nil
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

func (s *Store) leaseToken(l *runtime.Lease) string {
	return s.claimIDs + strconv.FormatUint(l.Fence, 36)
}

// Extend implements runtime.Store.
func (s *Store) Extend(ctx context.Context, l *runtime.Lease, until time.Time) error {
	if s.isClosed() {
		return ErrClosed
	}
	_, err := s.result(s.run(ctx, "lease", s.partitionOf(l.Work.Instance), l.Token, s.leaseToken(l), "extend", until.UnixMilli()))
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
	out, err := s.result(s.run(ctx, "lease", s.partitionOf(l.Work.Instance), l.Token, s.leaseToken(l), "release", 0))
	s.unlock(ctx, l)
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
