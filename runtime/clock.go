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

// Now returns the current time.
func (RealClock) Now() time.Time {
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
