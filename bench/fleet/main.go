// Command fleet measures fsmc's Redis runtime beside github.com/hibiken/asynq
// on one Redis in one run:
//
//	(a) throughput: one-step instances (start, task, done) completed per
//	    second with W workers, against asynq processing as many tasks with
//	    as much concurrency, from the first completion to the last. Twice:
//	    the workers alone, draining a backlog of n units started (tasks
//	    enqueued) before they run; then with producers alongside them
//	    (-producers goroutines, 8 by default, each starting a unit at a
//	    time through an engine of their own, as an application would;
//	    asynq's enqueue through a client of their own), so that the
//	    rate is the whole pipeline's. What each side spent is
//	    measured from when its workers had work. Each run is made
//	    -rounds times (3 by default), the two sides in turn, and the
//	    median round is reported with every round's ratio: the machine's
//	    speed varies over minutes, and by turns both sides see it;
//	(b) timer lateness: 1,000 timers spread over 2s, against asynq's
//	    delayed tasks (with its default 5s forwarding interval, and tuned
//	    to 100ms);
//	(c) Redis memory per waiting instance (an instance waiting on a 1h
//	    timer) against a pending asynq task scheduled an hour ahead.
//
// It starts a redis-server of its own (no persistence) and stops it.
//
//	cd bench && go run ./fleet [-n 20000] [-workers 3] [-concurrency 8] [-producers 8] [-rounds 3] [-waiting 100000] [-commands] [-no-redlock] [-cpuprofile FILE] [-callgrind [-callgrind-keep DIR]]
//
// Beside each throughput it prints what Redis spent per unit (CPU time and
// commands, from INFO); -commands lists the commands and counts the round
// trips per unit, and counts fsmc's claims by what they found. CPU time varies from run to run on a shared
// machine; -callgrind runs Redis under valgrind and counts the
// instructions it executed per unit instead, which repeat (and
// -callgrind-keep keeps the profiles, to see where they go).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsmc/fsmc/compiler"
	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

var (
	n           = flag.Int("n", 20000, "instances and tasks for the throughput run (a longer run is steadier)")
	workers     = flag.Int("workers", 3, "worker engines (each with its own client)")
	concurrency = flag.Int("concurrency", 8, "workers per engine")
	timers      = flag.Int("timers", 1000, "timers for the lateness run")
	waiting     = flag.Int("waiting", 100000, "waiting instances for the memory run")
	commands    = flag.Bool("commands", false, "list the Redis commands each side of the throughput run used per unit")
	noRedlock   = flag.Bool("no-redlock", false, "run fsmc without the per-instance Redlock (fenced commits alone), to see what the lock costs")
	cpuProfile  = flag.String("cpuprofile", "", "write CPU profiles of this process during fsmc's throughput runs to FILE (the workers with a backlog) and FILE-producers (with producers), for go tool pprof")
	callgrind   = flag.Bool("callgrind", false, "run Redis under valgrind's callgrind and report the instructions it executed per unit of the throughput runs, which repeat where CPU time varies; the rates then mean nothing, and (b) and (c) are skipped")
	producers   = flag.Int("producers", 8, "goroutines starting the throughput runs' instances and enqueuing their tasks")
	rounds      = flag.Int("rounds", 3, "rounds of each throughput run, each side in turn: the median round is reported, and every round's ratio")
	keepProfile = flag.String("callgrind-keep", "", "with -callgrind, keep each throughput run's callgrind profile in this directory (fsmc.callgrind, asynq.callgrind, and fsmc-producers.callgrind, asynq-producers.callgrind for the runs with producers), for callgrind_annotate")
)

// server is the run's redis-server.
var server *redistest.Server

func main() {
	flag.Parse()
	addr, stop, err := startRedis()
	if err != nil {
		log.Fatal(err)
	}
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	ctx := context.Background()

	fmt.Printf("one Redis (%s), %d workers x %d concurrency\n\n", redisVersion(ctx, rdb), *workers, *concurrency)

	// Two throughput runs: the workers alone, draining a backlog of n
	// units started before they run; then with the producers starting
	// units alongside them.
	for _, backlog := range []bool{true, false} {
		what := "workers draining a backlog"
		if !backlog {
			what = fmt.Sprintf("with %d producers alongside", *producers)
		}
		rs := throughputRounds(ctx, addr, rdb, backlog)
		r := rs[len(rs)/2] // the median round
		// Redis busy is the rate times Redis's CPU per unit: the share of a
		// core Redis spent while units completed at that rate.
		fmt.Printf("(a) throughput, %d one-step units, %s", *n, what)
		if len(rs) > 1 {
			fmt.Printf("; the median of %d rounds", len(rs))
		}
		fmt.Printf("\n                                            per unit: Redis CPU  commands   Redis busy   client CPU\n")
		fmt.Printf("    fsmc   %8.0f instances/s                   %5.0f µs  %8.1f   %5.0f%%     %5.0f µs\n", r.fsmcRate, r.fsmc.cpuPerUnit(), r.fsmc.callsPerUnit(), r.fsmcRate*r.fsmc.cpuPerUnit()/1e4, r.fsmc.clientPerUnit())
		fmt.Printf("    asynq  %8.0f tasks/s                       %5.0f µs  %8.1f   %5.0f%%     %5.0f µs\n", r.asynqRate, r.asynq.cpuPerUnit(), r.asynq.callsPerUnit(), r.asynqRate*r.asynq.cpuPerUnit()/1e4, r.asynq.clientPerUnit())
		fmt.Printf("    ratio  %8.2fx", r.ratio())
		if len(rs) > 1 {
			fmt.Printf("   (rounds, by ratio:")
			for _, o := range rs {
				fmt.Printf(" %.2fx", o.ratio())
			}
			fmt.Printf(")")
		}
		fmt.Println()
		if *callgrind {
			fmt.Printf("    Redis instructions per unit (callgrind): fsmc %.0f, asynq %.0f (%.2fx)\n",
				r.fsmc.instructionsPerUnit(), r.asynq.instructionsPerUnit(), r.fsmc.instructions/r.asynq.instructions)
		}
		if *commands {
			r.fsmc.print()
			r.fsmc.claims.print()
			r.asynq.print()
		}
		fmt.Println()
	}
	if *callgrind {
		return // timers and memory mean nothing under valgrind
	}

	fmt.Printf("(b) timer lateness, %d timers over 2s      p50      p99      max\n", *timers)
	printLateness("fsmc", fsmcTimers(ctx, addr, rdb))
	printLateness("asynq (default: 5s forwarding)", asynqTimers(ctx, addr, rdb, 0))
	printLateness("asynq (forwarding every 100ms)", asynqTimers(ctx, addr, rdb, 100*time.Millisecond))
	fmt.Println()

	fmt.Printf("(c) Redis memory per waiting unit, %d units\n", *waiting)
	perInstance, changelog := fsmcMemory(ctx, addr, rdb)
	fmt.Printf("    fsmc   %6.0f bytes per instance waiting on a timer (%.0f of them the capped changelog's share)\n", perInstance, changelog)
	fmt.Printf("    asynq  %6.0f bytes per task scheduled an hour ahead\n", asynqMemory(ctx, addr, rdb))
}

// throughputRound is one throughput measurement of each side.
type throughputRound struct {
	fsmcRate, asynqRate float64
	fsmc, asynq         *redisCost
}

func (r throughputRound) ratio() float64 { return r.fsmcRate / r.asynqRate }

// throughputRounds measures each side's throughput -rounds times (once
// with -callgrind, whose counts repeat), in turn, so that a machine
// that slows for a while slows both sides of a round; it returns the
// rounds in the order of their ratios. The CPU profile is of fsmc's
// first round.
func throughputRounds(ctx context.Context, addr string, rdb *redis.Client, backlog bool) []throughputRound {
	rs := make([]throughputRound, max(*rounds, 1))
	if *callgrind {
		rs = rs[:1]
	}
	for i := range rs {
		stopProfile := func() {}
		if i == 0 && *cpuProfile != "" {
			path := *cpuProfile
			if !backlog {
				path += "-producers"
			}
			stopProfile = startProfile(path)
		}
		rs[i].fsmcRate, rs[i].fsmc = fsmcThroughput(ctx, addr, rdb, backlog)
		stopProfile()
		rs[i].asynqRate, rs[i].asynq = asynqThroughput(ctx, addr, rdb, backlog)
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].ratio() < rs[j].ratio() })
	return rs
}

// startProfile writes a CPU profile to path until the function it
// returns is called.
func startProfile(path string) func() {
	f, err := os.Create(path)
	if err != nil {
		log.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		log.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

// startRedis starts a redis-server of the run's own, as the tests do: a
// free port, a temporary directory, no persistence.
func startRedis() (string, func(), error) {
	srv, err := redistest.NewServer()
	if err != nil {
		return "", nil, err
	}
	if *callgrind {
		srv.UnderCallgrind()
	}
	server = srv
	if err := srv.Start(); err != nil {
		return "", nil, fmt.Errorf("starting redis-server: %w", err)
	}
	return fmt.Sprintf("127.0.0.1:%d", srv.Port), func() { srv.Kill(); os.RemoveAll(srv.Dir) }, nil
}

func redisVersion(ctx context.Context, rdb *redis.Client) string {
	return "Redis " + infoField(ctx, rdb, "server", "redis_version")
}

// infoField reads one field of a section of Redis's INFO.
func infoField(ctx context.Context, rdb *redis.Client, section, field string) string {
	info, _ := rdb.Info(ctx, section).Result()
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func compile(src string) *ir.Machine {
	f, diags, err := compiler.CompileSource("bench.fsm", []byte(src))
	if err != nil || diags.HasErrors() {
		log.Fatal(diags, err)
	}
	return f.Machines[0]
}

// engines makes -workers engines on the Redis at addr with prefix, which
// runEngines runs (running), one more that starts the instances
// (producer), each with a client of its own, and a function that closes
// their stores. The producer is not run: it is the application that
// starts instances, with a store of its own, as asynq's producers have a
// client of their own. With tally, the workers' claims are counted there.
func engines(ctx context.Context, addr, prefix string, m *ir.Machine, handlers map[string]runtime.Handler, onChange func(runtime.Change), tally *claimCounts) (running []*runtime.Engine, producer *runtime.Engine, closeAll func()) {
	var out []*runtime.Engine
	var stores []*redisstore.Store
	closeAll = func() {
		for _, s := range stores {
			s.Close()
		}
	}
	for i := 0; i <= *workers; i++ {
		c := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 4 * *concurrency, MaxRetries: -1})
		store := redisstore.New(c, redisstore.Options{Prefix: prefix, NoRedlock: *noRedlock})
		stores = append(stores, store)
		var s runtime.Store = store
		if tally != nil && i < *workers {
			s = &claimTally{Store: store, counts: tally}
		}
		name := fmt.Sprintf("bench-%d", i)
		if i == *workers {
			name = "bench-producer"
		}
		e := runtime.New(s, runtime.Options{Worker: name, OnChange: onChange})
		if err := e.Register(ctx, m, handlers); err != nil {
			closeAll()
			log.Fatal(err)
		}
		out = append(out, e)
	}
	return out[:*workers], out[*workers], closeAll
}

// runEngines runs each engine's workers until ctx ends.
func runEngines(ctx context.Context, es []*runtime.Engine) {
	for _, e := range es {
		go e.Run(ctx, *concurrency)
	}
}

// completions counts finished units and times them from the first to the
// last, so that neither side's start-up (asynq's processors poll an
// empty queue once a second) enters its rate.
type completions struct {
	n        int64
	count    atomic.Int64
	first    atomic.Int64 // unix ns of the first completion
	last     time.Time
	finished chan struct{}
}

func newCompletions(n int) *completions {
	return &completions{n: int64(n), finished: make(chan struct{})}
}

func (c *completions) add() {
	now := time.Now()
	c.first.CompareAndSwap(0, now.UnixNano())
	if c.count.Add(1) == c.n {
		c.last = now
		close(c.finished)
	}
}

// rate waits for all n and returns units per second.
func (c *completions) rate(name string) float64 {
	select {
	case <-c.finished:
	case <-time.After(5 * time.Minute):
		log.Fatalf("%s: only %d of %d finished", name, c.count.Load(), c.n)
	}
	return float64(c.n-1) / c.last.Sub(time.Unix(0, c.first.Load())).Seconds()
}

// fsmcThroughput starts n instances of a one-step machine and returns how
// many completed per second, and what Redis and this process spent from
// when the workers had work to do: with backlog, all n are started
// before the workers run.
func fsmcThroughput(ctx context.Context, addr string, rdb *redis.Client, backlog bool) (float64, *redisCost) {
	rdb.FlushDB(ctx)
	m := compile(irtest.OneStep)
	done := newCompletions(*n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var tally *claimCounts
	if *commands {
		tally = &claimCounts{}
	}
	es, producer, closeStores := engines(ctx, addr, "tput", m, map[string]runtime.Handler{"Work": func(context.Context, *runtime.Call) (runtime.Result, error) { return runtime.Result{}, nil }},
		func(c runtime.Change) {
			if c.Status == runtime.Completed {
				done.add()
			}
		}, tally)
	defer closeStores()
	var cost *redisCost
	inOrder(backlog, func() {
		cost = measureRedis(ctx, rdb, "fsmc", backlog)
		runEngines(ctx, es)
	}, func() {
		inParallel(*n, func(i int) error {
			return producer.Start(ctx, "OneStep", "i"+strconv.Itoa(i), nil, runtime.StartOptions{})
		})
	})
	rate := done.rate("fsmc")
	cost.end(ctx, rdb)
	cost.claims = tally
	return rate, cost
}

// inOrder starts the workers (start) and the producers (produce): with
// backlog, the workers once the producers are done, else the workers
// first, and the producers while they run.
func inOrder(backlog bool, start, produce func()) {
	if backlog {
		produce()
		start()
		return
	}
	start()
	produce()
}

// claimTally counts an engine's claims in counts: those a worker makes
// with the write that finishes a unit (runtime.Chain), and those it
// makes on its own. Each of Run's workers claims into a Lease of its
// own, so the lease's address tells the workers apart: a claim of its
// own comes right after its worker handled a unit when that worker's
// claim before it found one, else after a sleep (a wake message,
// another worker's signal, or the worker's timer).
type claimTally struct {
	*redisstore.Store
	counts *claimCounts
	last   sync.Map // *runtime.Lease -> bool: that worker's last claim found work
}

// claimCounts are claims of a worker's own by [after a unit][found
// work], and claims with a write by [found work].
type claimCounts struct {
	own     [2][2]atomic.Int64
	chained [2]atomic.Int64
}

func (t *claimTally) Claim(ctx context.Context, f runtime.ClaimFilter, l *runtime.Lease) (bool, error) {
	ok, err := t.Store.Claim(ctx, f, l)
	if err == nil {
		last, _ := t.last.Load(l)
		after, _ := last.(bool)
		t.counts.own[index(after)][index(ok)].Add(1)
		t.last.Store(l, ok)
	}
	return ok, err
}

func (t *claimTally) Commit(ctx context.Context, l *runtime.Lease, c *runtime.Commit) error {
	err := t.Store.Commit(ctx, l, c)
	t.chained(l)
	return err
}

func (t *claimTally) Complete(ctx context.Context, l *runtime.Lease, history []runtime.HistoryEntry, schedule []runtime.Work) error {
	err := t.Store.Complete(ctx, l, history, schedule)
	t.chained(l)
	return err
}

func (t *claimTally) CompleteDirect(ctx context.Context, l *runtime.Lease, c *runtime.Commit, due time.Time) (bool, error) {
	ok, err := t.Store.CompleteDirect(ctx, l, c, due)
	t.chained(l)
	return ok, err
}

// chained counts the claim a write made for l's worker, if it made one.
// A worker whose claim for instance work only found nothing claims again
// at once (see runtime's workLoop): that claim comes after a unit.
func (t *claimTally) chained(l *runtime.Lease) {
	if c := l.Then; c != nil && c.Done {
		t.counts.chained[index(c.Found)].Add(1)
		t.last.Store(l, c.Found || c.Filter.NoTasks)
	}
}

func index(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (c *claimCounts) print() {
	per := func(a *atomic.Int64) float64 { return float64(a.Load()) / float64(*n) }
	fmt.Printf("    fsmc, claims per unit that found work / nothing: with the write that finished a unit %.2f / %.2f; on their own, after handling a unit %.2f / %.2f, after a sleep %.2f / %.2f\n",
		per(&c.chained[1]), per(&c.chained[0]), per(&c.own[1][1]), per(&c.own[1][0]), per(&c.own[0][1]), per(&c.own[0][0]))
}

// asynqThroughput enqueues n tasks and returns how many were processed
// per second, and what Redis and this process spent from when the server
// had work to do: with backlog, all n are enqueued before it starts.
func asynqThroughput(ctx context.Context, addr string, rdb *redis.Client, backlog bool) (float64, *redisCost) {
	rdb.FlushDB(ctx)
	done := newCompletions(*n)
	client := newAsynq(addr, 0, "work", func(*asynq.Task) { done.add() })
	defer client.Close()
	var cost *redisCost
	inOrder(backlog, func() {
		cost = measureRedis(ctx, rdb, "asynq", backlog)
		client.start()
	}, func() {
		inParallel(*n, func(int) error {
			_, err := client.Enqueue(asynq.NewTask("work", nil))
			return err
		})
	})
	rate := done.rate("asynq")
	cost.end(ctx, rdb)
	return rate, cost
}

// fsmcTimers starts instances whose only timer is due 1-3s after their
// start and measures when each fired.
func fsmcTimers(ctx context.Context, addr string, rdb *redis.Client) []time.Duration {
	m := compile(`machine Wait {
    context {
        delay: duration = 1s
    }
    initial state Waiting {
        after delay -> Done
    }
    final state Done
}`)
	tm := newTimings()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	es, producer, closeStores := engines(ctx, addr, "timers", m, nil, func(c runtime.Change) {
		if c.Status == runtime.Completed {
			tm.fired(c.Instance)
		}
	}, nil)
	defer closeStores()
	runEngines(ctx, es)
	time.Sleep(200 * time.Millisecond)
	return tm.run("fsmc", func(id string, delay time.Duration) error {
		return producer.Start(ctx, "Wait", id, map[string]any{"delay": delay}, runtime.StartOptions{})
	})
}

// asynqTimers enqueues tasks due 1-3s ahead and measures when each ran.
func asynqTimers(ctx context.Context, addr string, rdb *redis.Client, check time.Duration) []time.Duration {
	rdb.FlushDB(ctx)
	tm := newTimings()
	client := newAsynq(addr, check, "timer", func(t *asynq.Task) { tm.fired(string(t.Payload())) })
	client.start()
	defer client.Close()
	return tm.run("asynq", func(id string, delay time.Duration) error {
		_, err := client.Enqueue(asynq.NewTask("timer", []byte(id)), asynq.ProcessIn(delay))
		return err
	})
}

// startAsynq starts an asynq server as concurrent as the fsmc workers,
// running handle for tasks of type pattern (checking for due delayed
// tasks every check, asynq's default if 0), and returns a client of it;
// closing the client stops the server.
func newAsynq(addr string, check time.Duration, pattern string, handle func(*asynq.Task)) *asynqClient {
	srv := asynq.NewServer(asynq.RedisClientOpt{Addr: addr}, asynq.Config{Concurrency: *workers * *concurrency, LogLevel: asynq.ErrorLevel, DelayedTaskCheckInterval: check})
	mux := asynq.NewServeMux()
	mux.HandleFunc(pattern, func(_ context.Context, t *asynq.Task) error {
		handle(t)
		return nil
	})
	return &asynqClient{Client: asynq.NewClient(asynq.RedisClientOpt{Addr: addr}), srv: srv, mux: mux}
}

type asynqClient struct {
	*asynq.Client
	srv *asynq.Server
	mux *asynq.ServeMux
}

// start starts the server.
func (c *asynqClient) start() {
	if err := c.srv.Start(c.mux); err != nil {
		log.Fatal(err)
	}
}

func (c *asynqClient) Close() {
	c.Client.Close()
	c.srv.Shutdown()
}

// inParallel calls do(i) for i in [0, n) from -producers goroutines, as
// several producers would.
func inParallel(n int, do func(i int) error) {
	var wg sync.WaitGroup
	for g := 0; g < *producers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := g; i < n; i += *producers {
				if err := do(i); err != nil {
					log.Fatal(err)
				}
			}
		}(g)
	}
	wg.Wait()
}

// timings records when each timer was due and how late it fired.
type timings struct {
	mu       sync.Mutex
	due      map[string]time.Time
	late     []time.Duration
	finished chan struct{}
}

func newTimings() *timings {
	return &timings{due: map[string]time.Time{}, finished: make(chan struct{})}
}

func (t *timings) fired(id string) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.late = append(t.late, now.Sub(t.due[id]))
	if len(t.late) == *timers {
		close(t.finished)
	}
}

// run schedules the timers, due 1-3s ahead, through schedule and
// returns their lateness once all have fired.
func (t *timings) run(name string, schedule func(id string, delay time.Duration) error) []time.Duration {
	for i := 0; i < *timers; i++ {
		delay := time.Second + time.Duration(i)*2*time.Second/time.Duration(*timers)
		id := "t" + strconv.Itoa(i)
		t.mu.Lock()
		t.due[id] = time.Now().Add(delay)
		t.mu.Unlock()
		if err := schedule(id, delay); err != nil {
			log.Fatal(err)
		}
	}
	select {
	case <-t.finished:
	case <-time.After(time.Minute):
		log.Fatalf("%s: timers did not all fire", name)
	}
	return t.late
}

func printLateness(name string, late []time.Duration) {
	sort.Slice(late, func(i, j int) bool { return late[i] < late[j] })
	q := func(p float64) time.Duration { return late[int(p*float64(len(late)-1))] }
	fmt.Printf("    %-32s %8s %8s %8s\n", name, round(q(0.5)), round(q(0.99)), round(late[len(late)-1]))
}

func round(d time.Duration) string { return d.Round(100 * time.Microsecond).String() }

func usedMemory(ctx context.Context, rdb *redis.Client) int64 {
	v, _ := strconv.ParseInt(infoField(ctx, rdb, "memory", "used_memory"), 10, 64)
	return v
}

// fsmcMemory creates instances waiting on a 1h timer (no worker runs)
// and returns Redis's memory growth per instance, and how much of it is
// the changelog stream's (capped at about 10,000 entries, so its share
// falls as instances grow).
func fsmcMemory(ctx context.Context, addr string, rdb *redis.Client) (perInstance, changelog float64) {
	rdb.FlushDB(ctx)
	m := compile(`machine Idle {
    event Go
    initial state Waiting {
        after 1h -> Done
        on Go -> Done
    }
    final state Done
}`)
	store := redisstore.New(rdb, redisstore.Options{Prefix: "mem"})
	e := runtime.New(store, runtime.Options{})
	if err := e.Register(ctx, m, nil); err != nil {
		log.Fatal(err)
	}
	before := usedMemory(ctx, rdb)
	for i := 0; i < *waiting; i++ {
		if err := e.Start(ctx, "Idle", fmt.Sprintf("order-%06d", i), nil, runtime.StartOptions{}); err != nil {
			log.Fatal(err)
		}
	}
	stream := rdb.MemoryUsage(ctx, "mem:{mem-0}:changes", 0).Val()
	return float64(usedMemory(ctx, rdb)-before) / float64(*waiting), float64(stream) / float64(*waiting)
}

// asynqMemory schedules tasks an hour ahead and returns Redis's memory
// growth per task.
func asynqMemory(ctx context.Context, addr string, rdb *redis.Client) float64 {
	rdb.FlushDB(ctx)
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: addr})
	defer client.Close()
	before := usedMemory(ctx, rdb)
	for i := 0; i < *waiting; i++ {
		if _, err := client.Enqueue(asynq.NewTask("order", []byte(fmt.Sprintf("order-%06d", i))), asynq.ProcessIn(time.Hour)); err != nil {
			log.Fatal(err)
		}
	}
	return float64(usedMemory(ctx, rdb)-before) / float64(*waiting)
}

// redisCost is what Redis spent on one side of the throughput run: its
// CPU time and its commands (calls, µs), from INFO cpu and commandstats.
type redisCost struct {
	side         string       // "fsmc" or "asynq"
	backlog      bool         // the run of the workers alone (else with producers)
	claims       *claimCounts // fsmc's, with -commands
	cpu          float64
	client       float64 // this process's CPU time (workers and starters), in seconds
	instructions float64 // Redis's, with -callgrind
	stats        map[string][2]int64
	reads        int64 // reads from clients' connections: round trips, one per batch of pipelined commands
}

// measureRedis begins measuring what Redis and this process spend on
// side's run (with backlog, the workers alone).
func measureRedis(ctx context.Context, rdb *redis.Client, side string, backlog bool) *redisCost {
	rdb.ConfigResetStat(ctx)
	if *callgrind {
		if err := server.Count(); err != nil {
			log.Fatal(err)
		}
	}
	return &redisCost{side: side, backlog: backlog, cpu: redisCPU(ctx, rdb), client: processCPU()}
}

// dumpInstructions ends a callgrind measurement of a run: the
// instructions Redis executed since it began. With -callgrind-keep its
// profile is kept there as file.
func dumpInstructions(file string) float64 {
	instructions, profile, err := server.Instructions()
	if err != nil {
		log.Fatal(err)
	}
	if *keepProfile != "" {
		if err := os.WriteFile(filepath.Join(*keepProfile, file), profile, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	return instructions
}

func (c *redisCost) end(ctx context.Context, rdb *redis.Client) {
	if *callgrind {
		file := c.side + ".callgrind"
		if !c.backlog {
			file = c.side + "-producers.callgrind"
		}
		c.instructions = dumpInstructions(file)
	}
	c.cpu = redisCPU(ctx, rdb) - c.cpu
	c.client = processCPU() - c.client
	c.reads, _ = strconv.ParseInt(infoField(ctx, rdb, "stats", "total_reads_processed"), 10, 64)
	c.stats = map[string][2]int64{}
	info, _ := rdb.Info(ctx, "commandstats").Result()
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var calls, usec int64
		for _, kv := range strings.Split(rest, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "calls":
				calls, _ = strconv.ParseInt(v, 10, 64)
			case "usec":
				usec, _ = strconv.ParseInt(v, 10, 64)
			}
		}
		c.stats[strings.TrimPrefix(name, "cmdstat_")] = [2]int64{calls, usec}
	}
}

func (c *redisCost) cpuPerUnit() float64 { return c.cpu * 1e6 / float64(*n) }

func (c *redisCost) instructionsPerUnit() float64 { return c.instructions / float64(*n) }

func (c *redisCost) clientPerUnit() float64 { return c.client * 1e6 / float64(*n) }

func (c *redisCost) callsPerUnit() float64 {
	total := int64(0)
	for name, s := range c.stats {
		if name != "info" && name != "config|resetstat" {
			total += s[0]
		}
	}
	return float64(total) / float64(*n)
}

// print lists the commands by the time Redis spent in them.
func (c *redisCost) print() {
	names := make([]string, 0, len(c.stats))
	for name := range c.stats {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return c.stats[names[i]][1] > c.stats[names[j]][1] })
	fmt.Printf("    %s, per unit: %.2f round trips (reads from connections); calls   µs in the command (Lua scripts include their calls)\n", c.side, float64(c.reads)/float64(*n))
	for _, name := range names {
		s := c.stats[name]
		fmt.Printf("      %-18s %6.2f %6.1f\n", name, float64(s[0])/float64(*n), float64(s[1])/float64(*n))
	}
}

// processCPU is the CPU time this process has used, in seconds.
func processCPU() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
}

// redisCPU is the CPU time Redis has used, in seconds.
func redisCPU(ctx context.Context, rdb *redis.Client) float64 {
	sys, _ := strconv.ParseFloat(infoField(ctx, rdb, "cpu", "used_cpu_sys"), 64)
	user, _ := strconv.ParseFloat(infoField(ctx, rdb, "cpu", "used_cpu_user"), 64)
	return sys + user
}
