package redisstore

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/runtime"
)

// wireValues are values at the edges of each type.
var wireValues = []ir.Value{
	{T: ir.TypeInt, I: 3}, {T: ir.TypeInt, I: math.MinInt64}, {T: ir.TypeInt, I: math.MaxInt64},
	{T: ir.TypeFloat}, {T: ir.TypeFloat, F: math.Copysign(0, -1)}, {T: ir.TypeFloat, F: 0.1},
	{T: ir.TypeFloat, F: math.Inf(1)}, {T: ir.TypeFloat, F: math.Inf(-1)}, {T: ir.TypeFloat, F: math.NaN()},
	{T: ir.TypeFloat, F: math.SmallestNonzeroFloat64}, {T: ir.TypeFloat, F: -math.MaxFloat64},
	{T: ir.TypeString}, {T: ir.TypeString, S: `a,"b"\` + "\n<é>\u2028"}, {T: ir.TypeString, S: "i3"},
	{T: ir.TypeBool}, {T: ir.TypeBool, I: 1},
	{T: ir.TypeDuration}, {T: ir.TypeDuration, I: 90e9}, {T: ir.TypeDuration, I: -1},
}

func sameValues(t *testing.T, got, want []ir.Value) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d values, want %d", len(got), len(want))
	}
	for i := range want {
		if !got[i].Equal(want[i]) || math.Signbit(got[i].F) != math.Signbit(want[i].F) {
			t.Errorf("value %d: got %#v, want %#v", i, got[i], want[i])
		}
	}
}

func TestValuesRoundTrip(t *testing.T) {
	stored := valuesOut(wireValues)
	got, err := valuesIn(nil, stored)
	if err != nil {
		t.Fatal(err)
	}
	sameValues(t, got, wireValues)
	// The order machine's context (README): five fields at their
	// defaults fit one listpack value (64 bytes).
	order := []ir.Value{{T: ir.TypeInt}, {T: ir.TypeString}, {T: ir.TypeInt}, {T: ir.TypeString}, {T: ir.TypeDuration, I: 15 * 60e9}}
	if s := valuesOut(order); len(s) > 64 {
		t.Errorf("%s is %d bytes, over a listpack value's 64", s, len(s))
	}
}

// TestOlderValuesRead reads values as builds before the compact form
// stored them.
func TestOlderValuesRead(t *testing.T) {
	old := `[{"t":"int","i":3},{"t":"float","f":-0},{"t":"float","f":"+Inf"},{"t":"float","f":"NaN"},{"t":"float","f":0.1},{"t":"float"},` +
		`{"t":"string","s":"a,\"b\""},{"t":"string"},{"t":"bool","i":1},{"t":"bool"},{"t":"duration","i":90000000000}]`
	got, err := valuesIn(nil, old)
	if err != nil {
		t.Fatal(err)
	}
	sameValues(t, got, []ir.Value{
		{T: ir.TypeInt, I: 3}, {T: ir.TypeFloat, F: math.Copysign(0, -1)}, {T: ir.TypeFloat, F: math.Inf(1)}, {T: ir.TypeFloat, F: math.NaN()},
		{T: ir.TypeFloat, F: 0.1}, {T: ir.TypeFloat}, {T: ir.TypeString, S: `a,"b"`}, {T: ir.TypeString}, {T: ir.TypeBool, I: 1}, {T: ir.TypeBool},
		{T: ir.TypeDuration, I: 90e9},
	})
}

func TestBadValuesRefused(t *testing.T) {
	for _, bad := range []string{`["x1"]`, `[""]`, `["i"]`, `["i1.5"]`, `["fone"]`, `[3]`, `["i1"`, `[{"t":"float","f":"one"}]`} {
		if _, err := valuesIn(nil, bad); err == nil {
			t.Errorf("%s: read without an error", bad)
		}
	}
}

// TestStreamNext: only the entry ID right after a cursor (same
// millisecond, next sequence number) leaves no room for an entry between.
func TestStreamNext(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"1795462657501-8", "1795462657501-9", true},
		{"5-0", "5-1", true},
		{"5-1", "5-1", false},
		{"5-1", "5-3", false},
		{"5-9", "6-0", false}, // an entry may have come at 5-10
		{"5-1", "6-2", false},
		{"5-x", "5-1", false},
		{"5", "5-1", false},
	} {
		if got := streamNext(c.a, c.b); got != c.want {
			t.Errorf("streamNext(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}

// TestHistoryTimesAfterCreation: an entry's time is stored as ms after
// the instance's creation, and read back whole; an entry stored with
// its time whole (by earlier builds, or without a creation time) reads
// as before.
func TestHistoryTimesAfterCreation(t *testing.T) {
	created := time.UnixMilli(1795378448673)
	h := runtime.HistoryEntry{Time: created.Add(1500 * time.Millisecond), Kind: runtime.HistTransition, Version: 2, From: 0, To: 1, Message: "a,b\n"}
	rec := encodeHistory(h, created)
	if !strings.HasPrefix(rec, "+1500,") {
		t.Errorf("stored %q, want it to start +1500,", rec)
	}
	for _, c := range []struct {
		rec     string
		created time.Time
	}{
		{rec, created},
		{encodeHistory(h, time.Time{}), created},                  // no creation time: whole
		{encodeHistory(h, time.Time{}), time.Time{}},              // read without one too
		{strings.TrimPrefix(rec, "+1500"), created.Add(-1)},       // no time at all: refused
		{encodeHistory(h, h.Time.Add(time.Millisecond)), created}, // before its creation: whole
	} {
		got, err := decodeHistory(c.rec, c.created)
		if c.rec[0] == ',' {
			if err == nil {
				t.Errorf("%q: read without an error", c.rec)
			}
			continue
		}
		if err != nil || !got.Time.Equal(h.Time) || got.Message != h.Message || got.To != 1 || got.Version != 2 {
			t.Errorf("%q: read %+v, %v; want %+v", c.rec, got, err, h)
		}
	}
	// The start, the attempt and the transition of a one-step instance
	// that ran within a second fit one listpack value (64 bytes).
	start := encodeHistory(runtime.HistoryEntry{Time: created, Kind: runtime.HistTransition, To: 0, Version: 1, From: -1}, created)
	attempt := encodeHistory(runtime.HistoryEntry{Time: created.Add(999 * time.Millisecond), Kind: runtime.HistAttempt, Version: 1, To: -1, Attempt: 1}, created)
	end := encodeHistory(runtime.HistoryEntry{Time: created.Add(999 * time.Millisecond), Kind: runtime.HistTransition, Version: 2, To: 1}, created)
	if all := start + "\n" + attempt + "\n" + end; len(all) > 64 {
		t.Errorf("%q is %d bytes, over a listpack value's 64", all, len(all))
	}
}
