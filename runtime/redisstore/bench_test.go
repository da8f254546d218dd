package redisstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/redis/go-redis/v9"
)

// BenchmarkScripts runs the three scripts of a one-step instance's
// life, one call at a time: create, the claim of its task attempt, and
// the commit that finishes the attempt with its transition; a claim that
// finds nothing due (claim-none); then the commit that also claims the
// next instance's attempt (commit+claim), as Run's workers make it. It
// reports
// the time Redis itself spends in each (its commandstats), which is what
// limits a fleet's throughput when Redis is saturated, and the commands
// each makes (see scriptCosts).
//
//	go test ./runtime/redisstore -run '^$' -bench Scripts -benchtime 5000x
//
// With FSMC_BENCH_CALLGRIND=1 it runs a Redis of its own under valgrind's
// callgrind and reports the instructions Redis executed per call of each
// (instr/...), which repeat from run to run where the time does not;
// FSMC_BENCH_CALLGRIND_KEEP=DIR keeps each phase's profile there
// (DIR/claim.callgrind, ...), for callgrind_annotate.
func BenchmarkScripts(b *testing.B) {
	c, server := benchRedis(b)
	ctx := context.Background()
	m := irtest.Compile(b, "one.fsm", []byte(irtest.OneStep)).Machines[0]
	store := redisstore.New(c, redisstore.Options{Prefix: fmt.Sprintf("b%d", prefixes.Add(1)), NoRedlock: true})
	if err := store.PutMachine(ctx, m); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	leases := make([]runtime.Lease, b.N)
	phase := func(name string, call func(i int) error) {
		c.ConfigResetStat(ctx)
		if server != nil {
			if err := server.Count(); err != nil {
				b.Fatal(err)
			}
		}
		for i := range leases {
			if err := call(i); err != nil {
				b.Fatal(err)
			}
		}
		if server != nil {
			instructions, profile, err := server.Instructions()
			if err != nil {
				b.Fatal(err)
			}
			if dir := os.Getenv("FSMC_BENCH_CALLGRIND_KEEP"); dir != "" {
				if err := os.WriteFile(filepath.Join(dir, name+".callgrind"), profile, 0o644); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(instructions/float64(len(leases)), "instr/"+name)
		}
		micros, inner := scriptCosts(ctx, c)
		b.ReportMetric(micros, "redis-µs/"+name)
		b.ReportMetric(inner, "calls/"+name)
	}
	b.ResetTimer()
	phase("create", func(i int) error { return createOneStep(ctx, store, m, "i"+strconv.Itoa(i), now) })
	phase("claim", func(i int) error {
		ok, err := store.Claim(ctx, runtime.ClaimFilter{Now: now.Add(time.Second), Lease: time.Minute}, &leases[i])
		if err == nil && !ok {
			err = fmt.Errorf("claim %d found nothing", i)
		}
		return err
	})
	phase("commit", func(i int) error { return finishOneStep(ctx, store, &leases[i], now) })
	// A claim that finds nothing due, and says when to look again: what
	// an idle worker's claim after a wake-up costs when another worker
	// took the work.
	var none runtime.Lease
	phase("claim-none", func(i int) error {
		ok, err := store.Claim(ctx, runtime.ClaimFilter{Now: now.Add(time.Second), Lease: time.Minute}, &none)
		if err == nil && ok {
			err = fmt.Errorf("claim %d found work where none was due", i)
		}
		return err
	})
	// Again, with each commit claiming the next instance's attempt, as
	// Run's workers do (Lease.Then): one call where the two above are.
	for i := range leases {
		if err := createOneStep(ctx, store, m, "j"+strconv.Itoa(i), now); err != nil {
			b.Fatal(err)
		}
	}
	f := runtime.ClaimFilter{Now: now.Add(time.Second), Lease: time.Minute}
	if ok, err := store.Claim(ctx, f, &leases[0]); err != nil || !ok {
		b.Fatalf("claim: %v %v", ok, err)
	}
	phase("commit+claim", func(i int) error {
		l := &leases[i]
		l.Then = &runtime.Chain{Filter: f}
		err := finishOneStep(ctx, store, l, now)
		if err == nil && i+1 < len(leases) {
			if !l.Then.Found {
				return fmt.Errorf("commit %d claimed nothing", i)
			}
			leases[i+1] = l.Then.Next
		}
		return err
	})
}

// benchRedis returns a client of the test Redis, or with
// FSMC_BENCH_CALLGRIND=1 of a Redis of b's own under callgrind, and that
// server.
func benchRedis(b *testing.B) (redis.UniversalClient, *redistest.Server) {
	if os.Getenv("FSMC_BENCH_CALLGRIND") != "1" {
		return redisClient(b), nil
	}
	server, c := redistest.OwnUnderCallgrind(b)
	return c, server
}

// scriptMicros is Redis's time per script call (FCALL, or EVALSHA where
// the scripts run as such) since its statistics were reset.
func scriptMicros(ctx context.Context, c redis.UniversalClient) float64 {
	micros, _ := scriptCosts(ctx, c)
	return micros
}

// scriptCosts is Redis's time per script call since its statistics were
// reset, and the other commands Redis ran per script call, but the reset
// itself: the scripts' own, and the wake messages (PUBLISH, at most one
// a millisecond) that scripts making work ready send. The commands are
// exact where the time varies from run to run by a few µs, so they show
// a change of one call in a script.
func scriptCosts(ctx context.Context, c redis.UniversalClient) (micros, inner float64) {
	var usec, scriptCalls, otherCalls float64
	for _, line := range strings.Split(c.Info(ctx, "commandstats").Val(), "\n") {
		stat, ok := strings.CutPrefix(strings.TrimSpace(line), "cmdstat_")
		name, rest, _ := strings.Cut(stat, ":")
		if !ok || name == "config|resetstat" {
			continue
		}
		script := name == "fcall" || name == "evalsha"
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			f, _ := strconv.ParseFloat(v, 64)
			switch {
			case k == "usec" && script:
				usec += f
			case k == "calls" && script:
				scriptCalls += f
			case k == "calls":
				otherCalls += f
			}
		}
	}
	if scriptCalls == 0 {
		return 0, 0
	}
	return usec / scriptCalls, otherCalls / scriptCalls
}

// BenchmarkScriptOverhead measures, for scale beside BenchmarkScripts,
// what any function call costs Redis with as many arguments as the
// create script gets (redis-µs/call, a function that does nothing), and
// what the steps a script is made of add, each from a function doing it
// a hundred times: a redis.call (redis-µs/inner-call, a GET of a
// missing key), reading an instance's hash (redis-µs/hgetall, nine
// fields, as a commit finds them), joining strings
// (redis-µs/concat), joining a number (redis-µs/concat-number: Lua
// prints it first) and making a table (redis-µs/table). No one of them
// is most of a script: its time is the sum of many.
//
//	go test ./runtime/redisstore -run '^$' -bench ScriptOverhead -benchtime 2000x
func BenchmarkScriptOverhead(b *testing.B) {
	c := redisClient(b)
	ctx := context.Background()
	steps := map[string]string{
		"inner-call":    "call('GET', keys[1] .. 'none')",
		"hgetall":       "call('HGETALL', keys[1])",
		"concat":        "s = args[1] .. 'ready:' .. args[2]",
		"concat-number": "s = args[1] .. n",
		"table":         "s = {id = args[1], key = keys[1], n = n}",
	}
	var lib strings.Builder
	lib.WriteString("#!lua name=fsmcoverhead\n" +
		"redis.register_function('fsmcoverhead_none', function(keys, args) return 'ok' end)\n")
	for name, step := range steps {
		fmt.Fprintf(&lib, "redis.register_function('fsmcoverhead_%s', function(keys, args)\n"+
			"  local call, s = redis.call, nil\n"+
			"  for n = 1, 100 do %s end\n"+
			"  return 'ok'\n"+
			"end)\n", fnName(name), step)
	}
	if err := c.FunctionLoadReplace(ctx, lib.String()).Err(); err != nil {
		if strings.Contains(err.Error(), "Error registering functions") {
			b.Fatal(err)
		}
		b.Skipf("this Redis loads no functions: %v", err)
	}
	b.Cleanup(func() { c.FunctionDelete(context.Background(), "fsmcoverhead") })
	args := make([]any, 16) // as many as a create's
	for i := range args {
		args[i] = strconv.Itoa(1795378448673 + i)
	}
	key := fmt.Sprintf("b%d:{b}:i:order-1", prefixes.Add(1))
	c.HSet(ctx, key, "v", "2", "st", "1", "pr", "0", "h", "77b41a6e2dd3", "d", "0,1,1795378448673,0,1795378448673",
		"c", "s3:abc", "hi", "1795378448673,1,0,-1,1", "t:1", "1795378448673,3,0,0,1", "w:2", "1795378448673,1")
	b.Cleanup(func() { c.Del(context.Background(), key) })
	per := func(fn string) float64 {
		c.ConfigResetStat(ctx)
		for i := 0; i < b.N; i++ {
			if err := c.FCall(ctx, fn, []string{key}, args...).Err(); err != nil {
				b.Fatal(err)
			}
		}
		return scriptMicros(ctx, c)
	}
	b.ResetTimer()
	none := per("fsmcoverhead_none")
	b.ReportMetric(none, "redis-µs/call")
	for name := range steps {
		b.ReportMetric((per("fsmcoverhead_"+fnName(name))-none)/100, "redis-µs/"+name)
	}
}

// fnName is a function's name for a step's (Redis allows no "-").
func fnName(step string) string { return strings.ReplaceAll(step, "-", "_") }

// BenchmarkList lists 10,000 instances that each ran one task and
// completed (what `fsmc ls` reads), and reports what Redis keeps of
// each: bytes-per-ended-instance is the growth of used_memory from
// starting them to their end, over 10,000 (their hashes with their
// three-entry histories, and the changelog's share, capped at about
// 10,000 entries).
//
//	go test ./runtime/redisstore -run '^$' -bench List -benchtime 10x
func BenchmarkList(b *testing.B) {
	const n = 10000
	c := redisClient(b)
	ctx := context.Background()
	m := irtest.Compile(b, "one.fsm", []byte(irtest.OneStep)).Machines[0]
	store := redisstore.New(c, redisstore.Options{Prefix: fmt.Sprintf("b%d", prefixes.Add(1)), NoRedlock: true})
	defer store.Close()
	if err := store.PutMachine(ctx, m); err != nil {
		b.Fatal(err)
	}
	before := usedMemory(ctx, c)
	now := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < n; i += 8 {
				if err := runOneStep(ctx, store, m, "i"+strconv.Itoa(i), now); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	ended := float64(usedMemory(ctx, c)-before) / n
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := store.List(ctx, runtime.ListFilter{})
		if err != nil || len(got) != n {
			b.Fatalf("listed %d of %d: %v", len(got), n, err)
		}
	}
	b.ReportMetric(ended, "bytes-per-ended-instance")
}

// runOneStep runs instance id of m (the one-step machine) through its
// life as a worker would: create, the claim of its task attempt, and the
// commit of the attempt's result with its transition.
func runOneStep(ctx context.Context, store *redisstore.Store, m *ir.Machine, id string, now time.Time) error {
	if err := createOneStep(ctx, store, m, id, now); err != nil {
		return err
	}
	var l runtime.Lease
	if ok, err := store.ClaimInstance(ctx, id, runtime.ClaimFilter{Now: now.Add(time.Second), Lease: time.Minute}, &l); err != nil || !ok {
		return fmt.Errorf("claim %s: %v %v", id, ok, err)
	}
	return finishOneStep(ctx, store, &l, now)
}

// createOneStep creates instance id of the one-step machine m, its task
// attempt due at now.
func createOneStep(ctx context.Context, store *redisstore.Store, m *ir.Machine, id string, now time.Time) error {
	inst, start := irtest.NewInstance(m, id, 0, now)
	task := []runtime.Work{{Kind: runtime.WorkTask, Due: now, Visit: 1, Attempt: 1}}
	return store.Create(ctx, inst, task, start)
}

// finishOneStep commits the result of the task attempt l holds, with
// the transition to the one-step machine's final state.
func finishOneStep(ctx context.Context, store *redisstore.Store, l *runtime.Lease, now time.Time) error {
	inst := *l.Instance
	inst.State, inst.Status, inst.Visit = 1, runtime.Completed, 2
	history := []runtime.HistoryEntry{{Time: now, Kind: runtime.HistAttempt, Version: 1, To: -1, Attempt: 1},
		{Time: now, Kind: runtime.HistTransition, Version: 2, To: 1}}
	done, err := store.CompleteDirect(ctx, l, &runtime.Commit{Instance: &inst, History: history, DropWork: true}, now)
	if err == nil && !done {
		err = fmt.Errorf("commit of %s was refused", inst.ID)
	}
	return err
}

// usedMemory is Redis's used_memory.
func usedMemory(ctx context.Context, c redis.UniversalClient) int64 {
	for _, line := range strings.Split(c.Info(ctx, "memory").Val(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
