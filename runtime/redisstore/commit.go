package redisstore

import (
	"context"
	"github.com/fsmc/fsmc/runtime"
	"time"
)

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
		unit, token = l.Token, s.leaseToken(l)
	}
	d, data, f := encodeData(inst)
	p := s.partitionOf(inst.ID)
	args := s.scriptArgs(p, listsLen(c.History, c.Schedule)+chainLen,
		inst.ID, unit, token, inst.Version, int(inst.Status), inst.Priority, dropArg(c), d, data, f, millis(due), inst.Version+1, boolArg(s.lockHere))
	out, err := s.finish(ctx, "commit", p, l, s.lists(args, inst, inst.Created, c.History, c.Schedule))
	s.pokeIf(out, err)
	return out, err
}

// chainLen is how many arguments finish adds for a claim.
const chainLen = 8

// finish runs script name (commit or complete), which finishes l's work
// (l nil: an update) on partition p, with args (see scriptArgs). When
// the worker asks for its next work (l.Then) and the claim would read
// this partition (there is only one), the call claims it too (see chain
// in prelude.lua), and fills l.Then.
func (s *Store) finish(ctx context.Context, name string, p int, l *runtime.Lease, args []any) (string, error) {
	if l == nil || l.Then == nil || s.parts != 1 {
		return s.result(s.runArgs(ctx, name, p, args))
	}
	f := l.Then.Filter
	hashes, runnable := claimArgs(f)
	now, lease, claim := f.Now.UnixMilli(), f.Lease.Milliseconds(), s.nextClaimID()
	args = append(args, now, now+lease, hashes, runnable, boolArg(s.lockHere), lease, claim, boolArg(!s.scanExpired(now)))
	v, err := s.runArgs(ctx, name, p, args).Result()
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

// Complete implements runtime.Store.
func (s *Store) Complete(ctx context.Context, l *runtime.Lease, history []runtime.HistoryEntry, schedule []runtime.Work) error {
	if s.isClosed() {
		return ErrClosed
	}
	p := s.partitionOf(l.Work.Instance)
	args := s.scriptArgs(p, listsLen(history, schedule)+chainLen, l.Work.Instance, l.Token, s.leaseToken(l))
	var created time.Time
	if l.Instance != nil {
		created = l.Instance.Created
	}
	out, err := s.finish(ctx, "complete", p, l, s.lists(args, nil, created, history, schedule))
	s.unlockAfter(ctx, l, err)
	s.pokeIf(out, err)
	return err
}
