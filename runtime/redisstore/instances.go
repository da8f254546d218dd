package redisstore

import (
	"context"
	"errors"
	"fmt"
	"github.com/fsmc/fsmc/runtime"
	"github.com/redis/go-redis/v9"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// lists appends to args the tail of ARGV the scripts' applyLists
// reads: at most listsLen(history, work) arguments. History times are
// kept after created, the instance's creation (encodeHistory).
func (s *Store) lists(args []any, inst *runtime.Instance, created time.Time, history []runtime.HistoryEntry, work []runtime.Work) []any {
	args = append(args, len(history))
	for _, h := range history {
		args = append(args, encodeHistory(h, created))
	}
	args = append(args, s.history, len(work))
	for _, w := range work {
		kind, value := encodeWork(w)
		args = append(args, kind, value)
	}
	mark := len(args)
	args = append(args, 0)
	for i := range history {
		if inst == nil {
			break // a completion: the instance did not change
		}
		if c, ok := runtime.ChangeOf(inst, &history[i]); ok {
			args = append(args, encodeChange(c))
		}
	}
	args[mark] = len(args) - mark - 1
	return args
}

// listsLen is the most arguments lists appends.
func listsLen(history []runtime.HistoryEntry, work []runtime.Work) int {
	return 4 + 2*len(history) + 2*len(work)
}

// Create implements runtime.Store.
func (s *Store) Create(ctx context.Context, inst *runtime.Instance, work []runtime.Work, history []runtime.HistoryEntry) error {
	if s.isClosed() {
		return ErrClosed
	}
	d, c, f := encodeData(inst)
	p := s.partitionOf(inst.ID)
	args := s.scriptArgs(p, listsLen(history, work), inst.ID, int(inst.Status), inst.Priority, machineID(inst.Hash), d, c, f)
	out, err := s.result(s.runArgs(ctx, "create", p, s.lists(args, inst, inst.Created, history, work)))
	s.pokeIf(out, err)
	return err
}

// instanceFields are the fields of an instance's hash that Load reads,
// in decodeInstance's order.
var instanceFields = []string{"v", "st", "pr", "d", "c", "f", "h"}

// Load implements runtime.Store.
func (s *Store) Load(ctx context.Context, id string, inst *runtime.Instance) error {
	if s.isClosed() {
		return ErrClosed
	}
	vals, err := s.rdb.HMGet(ctx, s.instanceKey(id, "i"), instanceFields...).Result()
	if err != nil {
		return err
	}
	if vals[0] == nil {
		return runtime.ErrNotFound
	}
	return s.decodeInstance(ctx, id, vals, inst)
}

// decodeInstance reads the instance hash's fields v, st, pr, d, c, f, h
// (in that order), resolving its machine id.
func (s *Store) decodeInstance(ctx context.Context, id string, vals []any, inst *runtime.Instance) error {
	mid, _ := vals[6].(string)
	m, err := s.machine(ctx, mid)
	if errors.Is(err, errNoMachine) {
		return fmt.Errorf("instance %s: %w (a worker that runs that version registers it again when it starts)", id, err)
	}
	if err != nil {
		return fmt.Errorf("instance %s: %w", id, err)
	}
	if err := decodeFields(id, vals, inst); err != nil {
		return err
	}
	inst.Machine, inst.Hash = m.Name, m.Hash
	// What the engine indexes by must fit the machine: a damaged record
	// is an error here, not a crash of every worker that reads it.
	if len(inst.Context) != len(m.Context) || inst.State < 0 || inst.State >= len(m.States) {
		return fmt.Errorf("instance %s is damaged: state %d and %d context values, but machine %s has %d states and %d context fields",
			id, inst.State, len(inst.Context), m.Name, len(m.States), len(m.Context))
	}
	return nil
}

// History implements runtime.Store.
func (s *Store) History(ctx context.Context, id string) ([]runtime.HistoryEntry, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	vals, err := s.rdb.HMGet(ctx, s.instanceKey(id, "i"), "v", "hi", "d").Result()
	if err != nil {
		return nil, err
	}
	if vals[0] == nil {
		return nil, runtime.ErrNotFound
	}
	text, _ := vals[1].(string)
	if text == "" {
		return nil, nil
	}
	// Entries keep their times after the instance's creation, in d.
	d, _ := vals[2].(string)
	var data runtime.Instance
	if err := decodeData(d, &data); err != nil {
		return nil, fmt.Errorf("instance %s: %w", id, err)
	}
	created := data.Created
	lines := strings.Split(text, "\n")
	out := make([]runtime.HistoryEntry, 0, len(lines))
	for _, line := range lines {
		h, err := decodeHistory(line, created)
		if err != nil {
			return nil, fmt.Errorf("instance %s: %w", id, err)
		}
		out = append(out, h)
	}
	return out, nil
}

// List implements runtime.Store. It scans the instance keys, so it suits
// operators' listings rather than hot paths: each page of the scan (up
// to 1,000 keys) is read in one pipelined round trip.
func (s *Store) List(ctx context.Context, f runtime.ListFilter) ([]*runtime.Instance, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	pattern := s.prefix + ":{" + s.prefix + "-*}:i:*"
	var mu sync.Mutex
	var out []*runtime.Instance
	unknown := map[string]int{} // machine id -> instances of it, which the registry lost
	scan := func(ctx context.Context, c redis.UniversalClient) error {
		var cursor uint64
		for {
			keys, next, err := c.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return err
			}
			reads := make([]*redis.SliceCmd, len(keys))
			if len(keys) > 0 {
				_, err = c.Pipelined(ctx, func(pipe redis.Pipeliner) error {
					for i, key := range keys {
						reads[i] = pipe.HMGet(ctx, key, instanceFields...)
					}
					return nil
				})
				if err != nil {
					return err
				}
			}
			for i, key := range keys {
				vals := reads[i].Val()
				if vals[0] == nil {
					continue // gone since the scan saw it
				}
				inst := &runtime.Instance{}
				if err := s.decodeInstance(ctx, key[strings.Index(key, "}:i:")+4:], vals, inst); errors.Is(err, errNoMachine) {
					mid, _ := vals[6].(string)
					mu.Lock()
					unknown[mid]++
					mu.Unlock()
					continue
				} else if err != nil {
					return err
				}
				m, _ := s.Machine(ctx, inst.Hash) // decodeInstance has read it into the store's cache
				if !f.Matches(inst, m) {
					continue
				}
				mu.Lock()
				out = append(out, inst)
				mu.Unlock()
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	if err := eachNode(ctx, s.rdb, scan); err != nil {
		return nil, err
	}
	for mid, n := range unknown {
		s.log.Warn("instances left out of the list: the machine registry has lost their version (a worker that runs it registers it again when it starts)",
			"machine_id", mid, "instances", n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	out = uniqueIDs(out)
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[:f.Limit]
	}
	return out, nil
}

// uniqueIDs drops the repeats of an instance from a list sorted by ID.
// SCAN returns a key more than once when Redis shrinks its table of
// keys while the scan runs (after many keys expire, say).
func uniqueIDs(sorted []*runtime.Instance) []*runtime.Instance {
	return slices.CompactFunc(sorted, func(a, b *runtime.Instance) bool { return a.ID == b.ID })
}

// Enqueue implements runtime.Store.
func (s *Store) Enqueue(ctx context.Context, w runtime.Work) error {
	if s.isClosed() {
		return ErrClosed
	}
	kind, value := encodeWork(w)
	out, err := s.result(s.run(ctx, "enqueue", s.partitionOf(w.Instance), w.Instance, 1, kind, value))
	if st, ok := strings.CutPrefix(out, "ended:"); ok {
		n, _ := strconv.Atoi(st)
		return fmt.Errorf("%w: instance %s is %s", runtime.ErrRejected, w.Instance, runtime.Status(n))
	}
	s.pokeIf(out, err)
	return err
}
