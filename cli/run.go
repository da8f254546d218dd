package cli

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/memstore"
	"github.com/urfave/cli/v2"
)

func runCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "run",
		Usage:     "run machines: a scenario on stdin on the embedded store, or a worker on Redis",
		ArgsUsage: "FILE|IR...",
		Description: "Without --redis, commands are read from stdin, one per line:\n" +
			"  start MACHINE ID [JSON-CONTEXT] [priority N]\n" +
			"  send ID EVENT [JSON-PAYLOAD]\n" +
			"  sleep DURATION        (instant with --virtual-time)\n" +
			"  inspect ID\n" +
			"  expect ID STATE       (exit 1 at the end if any expectation failed)\n" +
			"  retry ID, cancel ID   (as fsmc retry and fsmc cancel do on Redis)\n" +
			"Blank lines and # comments are skipped. Each transition prints a line\n" +
			"ID MACHINE FROM --EVENT--> TO (or JSON with --json). Actions without --exec\n" +
			"are manual: one without emits succeeds at once, one with emits stays\n" +
			"pending until the scenario sends its events.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "redis", EnvVars: []string{"FSMC_REDIS_URL"}, Usage: "run as a long-running worker on the Redis deployment at `URL`"},
			prefixFlag(),
			lockFlag(),
			&cli.StringSliceFlag{Name: "exec", Usage: "run `ACTION=CMD` as an external command (argv, no shell)"},
			&cli.IntFlag{Name: "concurrency", Value: 4, Usage: "task attempts run at once (with --redis, or a scenario on the real clock); one more worker is kept for events and timers"},
			&cli.BoolFlag{Name: "virtual-time", Usage: "sleep advances a virtual clock instantly"},
			&cli.BoolFlag{Name: "json", Usage: "print the changelog as JSON lines"},
			&cli.StringFlag{Name: "metrics-addr", Usage: "serve Prometheus metrics on `ADDR` (host:port) at /metrics (with --redis)"},
			&cli.DurationFlag{Name: "grace", Value: 10 * time.Second, Usage: "on SIGINT/SIGTERM, let running tasks finish for up to `DURATION`, then give them back (with --redis)"},
			&cli.DurationFlag{Name: "retain", Usage: "remove an instance `DURATION` after it completes or is cancelled (0: keep it); with --redis this sets the deployment's retention, for every worker and fsmc cancel, until it is set again"},
		},
		Action: func(c *cli.Context) error {
			keepOnBrokenPipe()
			if c.NArg() == 0 {
				return usageError("fsmc run: give at least one .fsm or IR file (usage: fsmc run [flags] FILE...)")
			}
			if n := c.Int("concurrency"); n < 1 {
				return usageError("fsmc run: --concurrency %d: want at least 1", n)
			}
			if g := c.Duration("grace"); g < 0 {
				return usageError("fsmc run: --grace %v: want 0 (no grace) or more", g)
			}
			if r := c.Duration("retain"); r < 0 {
				return usageError("fsmc run: --retain %v: want 0 (keep ended instances) or more", r)
			}
			if c.Bool("virtual-time") && c.String("redis") != "" {
				return usageError("fsmc run: --virtual-time is for the embedded store; a worker on Redis (--redis, or FSMC_REDIS_URL) runs on the real clock; give --redis '' to run a scenario")
			}
			if c.String("redis") == "" {
				for _, name := range []string{"metrics-addr", "grace"} { // (--prefix and --lock-redis may come from the environment)
					if c.IsSet(name) {
						return usageError("fsmc run: --%s is for a worker on Redis (give --redis URL)", name)
					}
				}
			}
			files := map[string]*ir.Machine{}
			from := map[string]string{} // the file each machine came from
			for _, path := range c.Args().Slice() {
				f, err := e.loadMachines("run", path)
				if err != nil {
					return err
				}
				for _, m := range f.Machines {
					if first, dup := from[m.Name]; dup {
						return &exitError{code: ExitFound, msg: fmt.Sprintf("fsmc run: machine %s is defined twice (in %s and %s)", m.Name, first, path)}
					}
					files[m.Name], from[m.Name] = m, path
				}
			}
			if c.String("redis") != "" {
				handlers, err := bindExec(files, c.StringSlice("exec"), false)
				if err != nil {
					return err
				}
				return e.runWorker(c, files, handlers, c.Bool("json"))
			}
			handlers, err := bindExec(files, c.StringSlice("exec"), true)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return e.runScenario(ctx, files, handlers, scenarioFlags{
				virtual: c.Bool("virtual-time"), json: c.Bool("json"), concurrency: c.Int("concurrency"), retain: c.Duration("retain")})
		},
	}
}

// bindExec turns --exec ACTION=CMD flags into handlers, per machine; with
// manualOthers every other action is manual (the embedded store), else it
// has no handler (a Redis worker does not run it). A command that cannot
// be run (not found, not executable) is refused here, before any attempt.
func bindExec(machines map[string]*ir.Machine, specs []string, manualOthers bool) (map[string]map[string]runtime.Handler, error) {
	commands := map[string][]string{}
	for _, spec := range specs {
		action, cmdline, ok := strings.Cut(spec, "=")
		if !ok || action == "" || strings.TrimSpace(cmdline) == "" {
			return nil, usageError("fsmc run: --exec %q: want ACTION=CMD", spec)
		}
		if _, dup := commands[action]; dup {
			return nil, usageError("fsmc run: --exec %s is given twice", action)
		}
		argv, err := runtime.SplitCommand(cmdline)
		if err != nil {
			return nil, usageError("fsmc run: --exec %s: %v", action, err)
		}
		if _, err := exec.LookPath(argv[0]); err != nil {
			return nil, usageError("fsmc run: --exec %s: %v", action, err)
		}
		commands[action] = argv
	}
	out := map[string]map[string]runtime.Handler{}
	used := map[string]bool{}
	for name, m := range machines {
		out[name] = map[string]runtime.Handler{}
		for _, a := range m.Actions {
			if argv, ok := commands[a.Name]; ok {
				out[name][a.Name] = runtime.CommandHandler(argv)
				used[a.Name] = true
				continue
			}
			if manualOthers {
				out[name][a.Name] = manual(len(a.Emits) > 0)
			}
		}
	}
	for action := range commands {
		if !used[action] {
			return nil, usageError("fsmc run: --exec %s: no machine has an action called %s", action, action)
		}
	}
	return out, nil
}

// manual is the handler of an action with no --exec: without emits it
// succeeds at once; with emits it stays pending.
func manual(emits bool) runtime.Handler {
	return func(context.Context, *runtime.Call) (runtime.Result, error) {
		if emits {
			return runtime.Pending, nil
		}
		return runtime.Result{}, nil
	}
}

// virtualEpoch is where virtual time starts, so that a scenario's output
// is the same on every run.
var virtualEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// virtualJitter draws retry jitter from a fixed seed, for the same
// reason: a retry's virtual time is then the same on every run.
func virtualJitter() func() float64 {
	var mu sync.Mutex
	r := rand.New(rand.NewPCG(2000, 1))
	return func() float64 {
		mu.Lock()
		defer mu.Unlock()
		return r.Float64()
	}
}

// scenarioFlags are the flags of `fsmc run` a scenario heeds.
type scenarioFlags struct {
	virtual, json bool
	concurrency   int
	retain        time.Duration // memstore.Options.Retention
}

// runScenario runs the scenario on stdin. With a virtual clock every
// piece of work runs on the scenario's goroutine, in order, so a run
// prints the same every time. On the real clock, workers (concurrency of
// them) handle the work as a worker on Redis does, so that a long
// command does not hold back other instances' timers; after each command
// the scenario waits until they are idle.
func (e *env) runScenario(ctx context.Context, machines map[string]*ir.Machine, handlers map[string]map[string]runtime.Handler, flags scenarioFlags) error {
	virtual := flags.virtual
	opts := runtime.Options{Clock: runtime.RealClock{}, Worker: "fsmc-run", StopGrace: -1}
	if virtual {
		opts.Clock, opts.Jitter = runtime.NewFakeClock(virtualEpoch), virtualJitter()
	} else {
		// Workers print from their goroutines: one line at a time.
		var mu sync.Mutex
		out := *e
		out.stdout, out.stderr = &lockedWriter{mu: &mu, w: e.stdout}, &lockedWriter{mu: &mu, w: e.stderr}
		e = &out
	}
	s := &scenario{env: e, clock: opts.Clock, virtual: virtual, json: flags.json, machines: machines, machine: map[string]string{}, steps: map[string]stepRun{}, sent: map[string]int{}}
	opts.OnChange, opts.OnHistory = s.printChange, s.printHistory
	s.engine = runtime.New(memstore.New(memstore.Options{Retention: flags.retain}), opts)
	for name, m := range machines {
		if err := s.engine.Register(ctx, m, handlers[name]); err != nil {
			return err
		}
	}
	if !virtual {
		workers, stop := context.WithCancel(ctx)
		s.stop = stop
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.engine.Run(workers, flags.concurrency)
		}()
		defer func() { stop(); <-done }()
	}
	return s.run(ctx)
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
