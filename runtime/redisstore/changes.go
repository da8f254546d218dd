package redisstore

import (
	"context"
	"errors"
	"fmt"
	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/runtime"
	"github.com/redis/go-redis/v9"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"
)

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
