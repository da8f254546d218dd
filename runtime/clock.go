package runtime

import (
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the source of time for the engine and its stores.
type Clock interface {
	Now() time.Time
	// Sleep waits until d has passed on this clock or wake is closed
	// or receives; it reports whether the full duration passed.
	Sleep(d time.Duration, wake <-chan struct{}) bool
}

// RealClock is the wall clock. Now reads only the monotonic clock (one
// clock read instead of time.Now's two) and adds it to a wall time it
// re-reads every second, so it follows the wall clock's adjustments
// within a second.
type RealClock struct{}

type anchor struct {
	wall time.Time // a time.Now reading; its monotonic part measures from it
}

var wallAnchor atomic.Pointer[anchor]

// Now returns the current time. While stamps are taken (Stamp), it
// also makes its reading the latest for them; otherwise that costs it
// one atomic load.
func (RealClock) Now() time.Time {
	now := readClock()
	if stamps.state.Load() != stampsIdle {
		stamps.publish(now.UnixNano())
	}
	return now
}

// readClock reads the monotonic clock and adds it to the wall anchor,
// which it renews every second.
func readClock() time.Time {
	a := wallAnchor.Load()
	if a != nil {
		if d := time.Since(a.wall); d >= 0 && d < time.Second {
			return a.wall.Add(d)
		}
	}
	now := time.Now()
	wallAnchor.Store(&anchor{wall: now})
	return now
}

// Stamp returns the time to record in a history entry, without reading
// the clock while the process is busy: the latest reading of Now in
// the process, which a goroutine refreshes every StampPeriod while
// stamps are being taken (and which stops when none was taken for a
// period). A stamp is never earlier than a reading of Now that came
// before it, and lags the true time by about StampPeriod at most while
// the process has a processor to spare for the refresh; a caller that
// may hold every processor should read Now every so often itself, as
// Fire does. After a pause the first stamp reads the clock. Fire stamps
// the transitions it takes; due times are always computed from Now, so
// a timer never fires early.
func (c RealClock) Stamp() time.Time {
	switch stamps.state.Load() {
	case stampsTaken:
	case stampsUntaken:
		stamps.state.CompareAndSwap(stampsUntaken, stampsTaken)
	default:
		// Stamps are taken from here on, so every reading of Now
		// publishes; this one, read after, is the latest.
		if stamps.state.CompareAndSwap(stampsIdle, stampsTaken) {
			go stamps.refresh()
		}
		return c.Now()
	}
	return time.Unix(0, stamps.latest.Load())
}

// StampPeriod is how often the time that RealClock.Stamp returns is
// refreshed while stamps are taken.
const StampPeriod = time.Millisecond

// stamps is RealClock.Stamp's state, shared by the process.
var stamps stampClock

type stampClock struct {
	latest atomic.Int64  // the latest reading of Now, in Unix nanoseconds
	state  atomic.Uint32 // stampsIdle, stampsTaken or stampsUntaken
}

const (
	stampsIdle    = iota // no refresh runs: the next stamp reads the clock
	stampsTaken          // refreshing, and a stamp was taken since the last refresh
	stampsUntaken        // refreshing, and no stamp was taken since the last refresh
)

// publish makes n, a reading of the clock, the latest unless a later
// one is. A reading over a second earlier than the latest replaces it:
// the wall clock was set back.
func (s *stampClock) publish(n int64) {
	for {
		old := s.latest.Load()
		if n <= old && old-n < int64(time.Second) || s.latest.CompareAndSwap(old, n) {
			return
		}
	}
}

// refresh reads the clock every StampPeriod while stamps are taken, and
// returns after a period in which none was.
func (s *stampClock) refresh() {
	for {
		time.Sleep(StampPeriod)
		RealClock{}.Now()
		if !s.state.CompareAndSwap(stampsTaken, stampsUntaken) && s.state.CompareAndSwap(stampsUntaken, stampsIdle) {
			return
		}
	}
}

// Sleep waits for d or a wake-up.
func (RealClock) Sleep(d time.Duration, wake <-chan struct{}) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-wake:
		return false
	}
}

// FakeClock is a clock that moves only when told to. Sleep returns at
// once, moving the clock forward by d: a worker waiting on a FakeClock
// never blocks a test.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewFakeClock returns a FakeClock set to t.
func NewFakeClock(t time.Time) *FakeClock { return &FakeClock{now: t} }

// Now returns the clock's time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to t (never backwards).
func (c *FakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.now) {
		c.now = t
	}
}

// Advance moves the clock forward by d.
func (c *FakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// Sleep advances the clock by d and returns at once.
func (c *FakeClock) Sleep(d time.Duration, _ <-chan struct{}) bool {
	c.Advance(d)
	return true
}
