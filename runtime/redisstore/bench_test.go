package redisstore_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/redis/go-redis/v9"
)

// BenchmarkScripts runs the three scripts of a one-step instance's
// life, one call at a time: create, the claim of its task attempt, and
// the commit that finishes the attempt with its transition. It reports
// the time Redis itself spends in each (its commandstats), which is what
// limits a fleet's throughput when Redis is saturated.
//
//	go test ./runtime/redisstore -run '^$' -bench Scripts -benchtime 5000x
func BenchmarkScripts(b *testing.B) {
	c := redisClient(b)
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
		for i := range leases {
			if err := call(i); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(scriptMicros(ctx, c), "redis-µs/"+name)
	}
	b.ResetTimer()
	phase("create", func(i int) error {
		inst, start := irtest.NewInstance(m, "i"+strconv.Itoa(i), 0, now)
		task := []runtime.Work{{Kind: runtime.WorkTask, Due: now, Visit: 1, Attempt: 1}}
		return store.Create(ctx, inst, task, start)
	})
	phase("claim", func(i int) error {
		ok, err := store.Claim(ctx, runtime.ClaimFilter{Now: now.Add(time.Second), Lease: time.Minute}, &leases[i])
		if err == nil && !ok {
			err = fmt.Errorf("claim %d found nothing", i)
		}
		return err
	})
	phase("commit", func(i int) error {
		inst := *leases[i].Instance
		inst.State, inst.Status, inst.Visit = 1, runtime.Completed, 2
		history := []runtime.HistoryEntry{{Time: now, Kind: runtime.HistAttempt, Version: 1, To: -1, Attempt: 1},
			{Time: now, Kind: runtime.HistTransition, Version: 2, To: 1}}
		done, err := store.CompleteDirect(ctx, &leases[i], &runtime.Commit{Instance: &inst, History: history, DropWork: true}, now)
		if err == nil && !done {
			err = fmt.Errorf("commit %d was refused", i)
		}
		return err
	})
}

// scriptMicros is Redis's time per script call (FCALL, or EVALSHA where
// the scripts run as such) since its statistics were reset.
func scriptMicros(ctx context.Context, c redis.UniversalClient) float64 {
	var usec, calls float64
	for _, line := range strings.Split(c.Info(ctx, "commandstats").Val(), "\n") {
		line = strings.TrimSpace(line)
		rest, ok := strings.CutPrefix(line, "cmdstat_fcall:")
		if !ok {
			rest, ok = strings.CutPrefix(line, "cmdstat_evalsha:")
		}
		if !ok {
			continue
		}
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			f, _ := strconv.ParseFloat(v, 64)
			switch k {
			case "usec":
				usec += f
			case "calls":
				calls += f
			}
		}
	}
	if calls == 0 {
		return 0
	}
	return usec / calls
}

// BenchmarkScriptOverhead measures, for scale beside BenchmarkScripts,
// what any function call costs Redis with as many arguments as the
// create script gets (redis-µs/call, a function that does nothing) and
// what each redis.call inside one adds (redis-µs/inner-call, from a
// function making ten GETs). The scripts' time is mostly neither: it
// is the work of their calls and of their Lua.
//
//	go test ./runtime/redisstore -run '^$' -bench ScriptOverhead -benchtime 20000x
func BenchmarkScriptOverhead(b *testing.B) {
	c := redisClient(b)
	ctx := context.Background()
	const lib = "#!lua name=fsmcoverhead\n" +
		"redis.register_function('fsmcoverhead_none', function(keys, args) return 'ok' end)\n" +
		"redis.register_function('fsmcoverhead_ten', function(keys, args)\n" +
		"  local call = redis.call\n" +
		"  for _ = 1, 10 do call('GET', keys[1]) end\n" +
		"  return 'ok'\n" +
		"end)\n"
	if err := c.FunctionLoadReplace(ctx, lib).Err(); err != nil {
		b.Skipf("this Redis loads no functions: %v", err)
	}
	b.Cleanup(func() { c.FunctionDelete(context.Background(), "fsmcoverhead") })
	args := make([]any, 16) // as many as a create's
	for i := range args {
		args[i] = strconv.Itoa(1795378448673 + i)
	}
	key := fmt.Sprintf("b%d:{b}:seq", prefixes.Add(1))
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
	ten := per("fsmcoverhead_ten")
	b.ReportMetric(none, "redis-µs/call")
	b.ReportMetric((ten-none)/10, "redis-µs/inner-call")
}
