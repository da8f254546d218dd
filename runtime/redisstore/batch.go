package redisstore

import (
	"context"
	"errors"
	"sync"

	"github.com/fsmc/fsmc/runtime"
	"github.com/redis/go-redis/v9"
)

// A batcher sends the scripts that a store's goroutines run at about the
// same moment in one pipelined round trip. A busy worker's goroutines
// (claims, commits, starts) each wait on a reply most of the time; one
// round trip for several of them saves Redis a read and a write per
// script, and the process the same. Nothing waits to fill a batch: a
// sender takes whatever is queued when it is free, so an idle store
// sends each script at once, as it would alone.
//
// Scripts go out in no particular order among goroutines, as they would
// on a pool of connections; each goroutine's own calls stay in order,
// since it waits for each reply. A call whose context is done before it
// is sent is not sent; one that was sent is waited for, so its caller
// learns whether it ran.
type batcher struct {
	rdb     redis.UniversalClient
	scripts *scripts
	queue   chan *batchCall
	closed  <-chan struct{}
	senders sync.WaitGroup
	pool    sync.Pool // *batchCall
}

// batchCall is one script to run and, when done receives, its reply.
type batchCall struct {
	ctx  context.Context
	name string
	keys []string
	args []any
	cmd  *redis.Cmd
	done chan struct{}
}

// Senders are how many round trips may be in flight at once, and
// maxBatch how many scripts one carries.
const (
	senders  = 2
	maxBatch = 64
)

// ErrClosed: the store was closed; every call made after Close returns
// it, and so does one in flight that Close cut short by closing the
// client Open made (closedHook). errors.Is matches it with
// runtime.ErrClosed too, on which Engine.Run returns.
var ErrClosed error = closedError{}

type closedError struct{}

func (closedError) Error() string        { return "the Redis store is closed" }
func (closedError) Is(target error) bool { return target == runtime.ErrClosed }

// closedHook is on the clients Open makes, which Close closes: a command
// that fails for want of its connection (the client closed under it, or
// its connection) once the store is closed fails with ErrClosed, not
// with go-redis's "client is closed" or a closed network connection. A
// command that Redis answered keeps its answer, redis.Nil included.
type closedHook struct{ closed <-chan struct{} }

func (h closedHook) cut(err error) bool {
	if err == nil || !(errors.Is(err, redis.ErrClosed) || Unreachable(err)) {
		return false
	}
	select {
	case <-h.closed:
		return true
	default:
		return false
	}
}

func (closedHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h closedHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if h.cut(err) {
			cmd.SetErr(ErrClosed)
			return ErrClosed
		}
		return err
	}
}

func (h closedHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if h.cut(cmd.Err()) {
				cmd.SetErr(ErrClosed)
			}
		}
		if h.cut(err) {
			return ErrClosed
		}
		return err
	}
}

func newBatcher(rdb redis.UniversalClient, sc *scripts, closed <-chan struct{}) *batcher {
	// The queue has no buffer: a call is either taken by a sender, which
	// answers it, or refused when the store closes.
	b := &batcher{rdb: rdb, scripts: sc, queue: make(chan *batchCall), closed: closed}
	b.pool.New = func() any { return &batchCall{done: make(chan struct{}, 1)} }
	b.senders.Add(senders)
	for i := 0; i < senders; i++ {
		go b.send()
	}
	return b
}

// run runs script name with keys and args, batched with others.
func (b *batcher) run(ctx context.Context, name string, keys []string, args ...any) *redis.Cmd {
	if err := b.scripts.ready(ctx, b.rdb); err != nil {
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(err)
		return cmd
	}
	c := b.pool.Get().(*batchCall)
	c.ctx, c.name, c.keys, c.args, c.cmd = ctx, name, keys, args, nil
	select {
	case b.queue <- c:
	case <-b.closed:
		b.pool.Put(c)
		cmd := redis.NewCmd(ctx)
		cmd.SetErr(ErrClosed)
		return cmd
	}
	<-c.done
	cmd := c.cmd
	c.ctx, c.keys, c.args, c.cmd = nil, nil, nil, nil
	b.pool.Put(c)
	return cmd
}

// send is a sender: it takes the calls waiting, up to maxBatch, and
// sends them in one round trip, until the store closes.
func (b *batcher) send() {
	defer b.senders.Done()
	batch := make([]*batchCall, 0, maxBatch)
	for {
		select {
		case c := <-b.queue:
			batch = append(batch[:0], c)
		case <-b.closed:
			return
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case c := <-b.queue:
				batch = append(batch, c)
			default:
				break fill
			}
		}
		b.roundTrip(batch)
		for _, c := range batch {
			c.done <- struct{}{}
		}
	}
}

// roundTrip runs the batch's scripts, each with its reply in its cmd.
func (b *batcher) roundTrip(batch []*batchCall) {
	live := 0
	for _, c := range batch {
		if err := c.ctx.Err(); err != nil {
			c.cmd = redis.NewCmd(c.ctx)
			c.cmd.SetErr(err)
			continue
		}
		live++
	}
	if live == 1 {
		for _, c := range batch {
			if c.cmd == nil {
				c.cmd = b.scripts.run(c.ctx, b.rdb, c.name, c.keys, c.args...)
			}
		}
		return
	}
	if live == 0 {
		return
	}
	pipe := b.rdb.Pipeline()
	for _, c := range batch {
		if c.cmd == nil {
			c.cmd = b.scripts.pipe(context.WithoutCancel(c.ctx), pipe, c.name, c.keys, c.args...)
		}
	}
	if _, err := pipe.Exec(context.Background()); err != nil {
		// A round trip that failed as a whole (no connection, say)
		// leaves its scripts with neither reply nor error: each gets
		// the failure, or its caller would be told it ran.
		for _, c := range batch {
			if c.cmd.Err() == nil && c.cmd.Val() == nil {
				c.cmd.SetErr(err)
			}
		}
	}
	// A server that lost the scripts (restarted, or new) gets them
	// again, and the scripts it refused run once more, each alone.
	for _, c := range batch {
		if isNoScript(c.cmd.Err()) {
			c.cmd = b.scripts.run(c.ctx, b.rdb, c.name, c.keys, c.args...)
		}
	}
}
