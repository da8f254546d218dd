package redisstore

import (
	"context"
	"errors"
	"fmt"
	"github.com/fsmc/fsmc/runtime"
	"github.com/go-redsync/redsync/v4"
	"github.com/hashicorp/go-multierror"
	"strconv"
	"strings"
	"time"
)

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
