package runtime

import (
	"testing"
	"time"
)

// TestStampFollowsTheClock: a stamp is never earlier than a reading of
// Now before it, stays close to the time while stamps are taken (the
// refresh runs), and once none is taken for a while the refresh stops
// and the next stamp reads the clock.
func TestStampFollowsTheClock(t *testing.T) {
	var c RealClock
	before := c.Now()
	if s := c.Stamp(); s.Before(before) {
		t.Fatalf("stamp %v is earlier than the reading %v before it", s, before)
	}
	// Most stamps lag by about StampPeriod; a few may lag more where the
	// refresh waited for a CPU (a loaded machine), which a bound on the
	// largest lag would take for a fault. Without the refresh, nearly
	// all would lag by more, up to the whole 300 ms.
	var taken, late int
	var lag time.Duration
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
		l := time.Since(c.Stamp())
		taken++
		if l > 20*time.Millisecond {
			late++
		}
		lag = max(lag, l)
	}
	if late > taken/2 {
		t.Fatalf("%d of %d stamps lagged the clock by over 20ms while taken (the most, %v)", late, taken, lag)
	}
	deadline := time.Now().Add(5 * time.Second)
	for stamps.state.Load() != stampsIdle {
		if time.Now().After(deadline) {
			t.Fatal("the refresh still runs 5 s after the last stamp")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(10 * time.Millisecond)
	now := time.Now()
	if s := c.Stamp(); s.Before(now) {
		t.Fatalf("the first stamp after a pause, %v, is earlier than the time before it, %v", s, now)
	}
}

// TestStampFollowsAClockSetBack: a reading over a second earlier than
// the latest replaces it (the wall clock was set back); a slightly
// earlier one (a race between readers) does not.
func TestStampFollowsAClockSetBack(t *testing.T) {
	var s stampClock
	s.publish(10 * int64(time.Second))
	s.publish(10*int64(time.Second) - int64(time.Millisecond))
	if got := s.latest.Load(); got != 10*int64(time.Second) {
		t.Fatalf("a reading 1 ms earlier replaced the latest: %d", got)
	}
	s.publish(5 * int64(time.Second))
	if got := s.latest.Load(); got != 5*int64(time.Second) {
		t.Fatalf("a clock set back 5 s is not followed: %d", got)
	}
}

var sinkTime time.Time

// BenchmarkClock: what a reading of the time costs Fire, one goroutine
// at a time and all at once. time.Now reads the wall and the monotonic
// clocks, RealClock.Now only the latter (and, while stamps are taken,
// publishes its reading), and a stamp reads neither.
func BenchmarkClock(b *testing.B) {
	var c RealClock
	for _, bench := range []struct {
		name string
		read func() time.Time
	}{
		{"time.Now", time.Now},
		{"Now", c.Now},
		{"Now-while-stamping", c.Now},
		{"Stamp", c.Stamp},
	} {
		stamping := bench.name == "Now-while-stamping"
		b.Run(bench.name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if stamping && i%1024 == 0 {
					c.Stamp() // keeps the refresh running
				}
				sinkTime = bench.read()
			}
		})
		b.Run(bench.name+"-parallel", func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				var t time.Time
				for i := 0; pb.Next(); i++ {
					if stamping && i%1024 == 0 {
						c.Stamp()
					}
					t = bench.read()
				}
				sinkTime = t
			})
		})
	}
}
