package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/cells"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/metrics"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/urfave/cli/v2"
)

// The commands that act on a Redis deployment: the worker (run --redis)
// and the operators' start, send, inspect, ls, watch, retry and cancel.

func redisFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "redis", EnvVars: []string{"FSMC_REDIS_URL"}, Usage: "the Redis deployment (`URL`: redis://[user:pass@]host:port, rediss:// for TLS, redis://h1:7000?addr=h2:7001 or any one node for a Cluster, redis+sentinel://h1:26379,h2:26379/MASTER for Sentinel)"}
}

// prefixFlag names the key prefix: workers and operators of one
// deployment must agree on it (a program may set redisstore.Options.Prefix).
func prefixFlag() *cli.StringFlag {
	return &cli.StringFlag{Name: "prefix", EnvVars: []string{"FSMC_PREFIX"}, Value: "fsmc", Usage: "the key `PREFIX` of the deployment's keys"}
}

// lockFlag names the independent Redlock nodes.
func lockFlag() *cli.StringSliceFlag {
	return &cli.StringSliceFlag{Name: "lock-redis", EnvVars: []string{"FSMC_LOCK_REDIS"}, Usage: "a Redlock node (`URL`), repeated for a quorum of independent nodes; the main Redis if none"}
}

// openRedis connects to the deployment; an unreachable one is exit 2.
// The client's own messages go to clientLog, the store's to storeLog.
func openRedis(ctx context.Context, c *cli.Context, clientLog, storeLog *slog.Logger) (*redisstore.Store, error) {
	store, err := dialRedis(ctx, c, clientLog, storeLog)
	return store, openError(c, err)
}

// openError is dialRedis's error as exit 2, named by the command.
func openError(c *cli.Context, err error) error {
	var exit *exitError
	if err != nil && !errors.As(err, &exit) {
		return usageError("fsmc %s: %v", c.Command.Name, err)
	}
	return err
}

// dialRedis is openRedis with Open's error as it is (an *exitError for
// a usage error), so that a worker can tell an unreachable Redis from a
// refusal.
func dialRedis(ctx context.Context, c *cli.Context, clientLog, storeLog *slog.Logger) (*redisstore.Store, error) {
	redisstore.LogClientTo(clientLog)
	url := c.String("redis")
	if url == "" {
		return nil, usageError("fsmc %s: no Redis deployment: give --redis URL or set FSMC_REDIS_URL", c.Command.Name)
	}
	// The store takes an empty prefix as its default; given here, it is
	// a mistake (an unset variable, say). Open checks the rest.
	prefix := c.String("prefix")
	if prefix == "" {
		return nil, usageError("fsmc %s: --prefix (or FSMC_PREFIX) \"\": want a non-empty key prefix", c.Command.Name)
	}
	// The app keeps commas in flag values (an --exec command may hold
	// them), so lock nodes given together (FSMC_LOCK_REDIS) are split
	// here; a comma in a URL's password is written %2C.
	var locks []string
	for _, v := range c.StringSlice("lock-redis") {
		for _, u := range strings.Split(v, ",") {
			if u = strings.TrimSpace(u); u != "" {
				locks = append(locks, u)
			}
		}
	}
	return redisstore.Open(ctx, url, redisstore.Options{Prefix: prefix, LockURLs: locks, Logger: storeLog})
}

// waitForRedis opens the deployment for a worker. While Redis does not
// answer, it logs that and tries again with backoff, as a running worker
// does (a fleet may start before its Redis); a refusal or a bad URL ends
// it at once, as does a stop signal (exit 2, naming the last error).
func waitForRedis(ctx context.Context, c *cli.Context, logger *slog.Logger) (*redisstore.Store, error) {
	wait := 100 * time.Millisecond
	for {
		store, err := dialRedis(ctx, c, logger, logger)
		if !errors.Is(err, redisstore.ErrUnreachable) {
			return store, openError(c, err)
		}
		logger.Warn("waiting for Redis", "err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return nil, usageError("fsmc run: stopped before Redis answered: %v", err)
		case <-time.After(wait):
		}
		wait = min(2*wait, time.Second) // start within a second of Redis's
	}
}

// refused turns an operation's error into the exit status of cli.md: a
// lost connection is 2, anything the runtime refused is 1.
func refused(c *cli.Context, err error) error {
	if redisstore.Unreachable(err) {
		switch c.Command.Name {
		case "start", "send", "retry", "cancel":
			// The write may have landed before its reply was lost; it
			// is never sent twice (see redisstore's noRetries).
			return usageError("fsmc %s: Redis: %v (the change may have been made before the reply was lost: see fsmc inspect)", c.Command.Name, err)
		}
		return usageError("fsmc %s: Redis: %v", c.Command.Name, err)
	}
	if redisstore.ReadOnlyReplica(err) {
		return usageError("fsmc %s: Redis is a read-only replica; nothing was changed: give --redis the master's URL (or Sentinel's, redis+sentinel://)", c.Command.Name)
	}
	if redisstore.Unavailable(err) {
		return usageError("fsmc %s: Redis cannot serve it now: %v", c.Command.Name, err)
	}
	if errors.Is(err, redisstore.ErrBusy) {
		return usageError("fsmc %s: %v; nothing was changed, try again (a paused worker's lock lasts until its lease ends)", c.Command.Name, err)
	}
	if errors.Is(err, runtime.ErrStale) {
		// Workers changed the instance between each read and its write
		// (a deployment without the instance lock's hold).
		return usageError("fsmc %s: instance %s kept changing while the change was made; nothing was changed, try again", c.Command.Name, c.Args().First())
	}
	if strings.Contains(err.Error(), "NOPERM") {
		return usageError("fsmc %s: Redis refused this user: %v (docs/distributed.md lists the ACL rights fsmc needs)", c.Command.Name, err)
	}
	switch {
	case errors.Is(err, runtime.ErrBadCursor):
		return usageError("fsmc %s: --since: %v", c.Command.Name, err)
	case errors.Is(err, runtime.ErrCursorTrimmed) && (c.String("since") == "" || errors.As(err, new(fellBehind))):
		err = fmt.Errorf("fell behind: %w (the changelog keeps about 10,000 entries per partition); resume with --since start to read from the oldest entry kept", err)
	case errors.Is(err, runtime.ErrCursorTrimmed):
		err = fmt.Errorf("--since: %w; resume with --since start to read from the oldest entry kept", err)
	case errors.Is(err, runtime.ErrNotFound):
		err = fmt.Errorf("no instance %q", c.Args().First())
	}
	return &exitError{code: ExitFound, msg: fmt.Sprintf("fsmc %s: %v", c.Command.Name, err)}
}

// fellBehind marks an error of watch's own cursor (not the one --since
// gave it): a trimmed one means watch fell behind.
type fellBehind struct{ error }

func (f fellBehind) Unwrap() error { return f.error }

// operator runs fn with an engine on the deployment (no handlers).
func operator(c *cli.Context, fn func(ctx context.Context, store *redisstore.Store, engine *runtime.Engine) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// An operator's command reports failures itself: the client's own
	// messages would only repeat them. The store's warnings (it could
	// not wake the workers, ls left instances out) go to stderr, as the
	// command's other messages.
	store, err := openRedis(ctx, c, slog.New(slog.NewTextHandler(io.Discard, nil)),
		slog.New(&noticeHandler{w: c.App.ErrWriter, command: c.Command.Name}))
	if err != nil {
		return err
	}
	defer store.Close()
	return fn(ctx, store, runtime.New(store, runtime.Options{Worker: "fsmc-" + c.Command.Name}))
}

func wantArgs(c *cli.Context, n int, usage string) error {
	if c.NArg() != n {
		return usageError("fsmc %s: usage: fsmc %s %s", c.Command.Name, c.Command.Name, usage)
	}
	return nil
}

func startCommand(e *env) *cli.Command {
	return &cli.Command{
		Name: "start", Usage: "start instances on the Redis deployment (one per ID, with the same context); MACHINE is a name (its latest version) or NAME@ID (a version, as inspect names it)", ArgsUsage: "MACHINE ID...",
		Flags: []cli.Flag{redisFlag(), prefixFlag(),
			&cli.StringFlag{Name: "context", Usage: "the context as a JSON object, or @FILE to read it from FILE (@- for stdin)"},
			&cli.IntFlag{Name: "priority", Usage: "0 (lowest) to 9"},
			&cli.BoolFlag{Name: "if-absent", Usage: "an existing ID is not an error"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return usageError("fsmc start: usage: fsmc start [--context JSON] [--priority N] [--if-absent] MACHINE ID...")
			}
			if p := c.Int("priority"); p < 0 || p > 9 {
				return usageError("fsmc start: --priority %d: want 0 (lowest) to 9", p)
			}
			// A malformed ID is refused before anything is written, as a
			// bad context is: no instance of the command starts.
			var bad []string
			for _, id := range c.Args().Tail() {
				if err := runtime.CheckID(id); err != nil {
					bad = append(bad, "fsmc start: "+err.Error())
				}
			}
			if len(bad) > 0 {
				return &exitError{code: ExitFound, msg: strings.Join(bad, "\n") + "\nfsmc start: nothing was started"}
			}
			return operator(c, func(ctx context.Context, store *redisstore.Store, engine *runtime.Engine) error {
				// MACHINE is a name (its latest version) or NAME@ID, a
				// version as inspect names it.
				name, hash, err := resolveVersion(ctx, store, c.Args().First())
				ids := c.Args().Tail()
				if err != nil {
					return nothingStarted(c, err)
				}
				m, err := engine.Adopt(ctx, hash)
				if err != nil {
					return nothingStarted(c, err)
				}
				data, what, err := e.jsonFlag(c, "context")
				if err != nil {
					return err
				}
				values, err := runtime.DecodeJSON(m.Context, nil, data)
				if err != nil {
					return refused(c, fmt.Errorf("%s: %w", what, err))
				}
				opts := runtime.StartOptions{Priority: c.Int("priority"), IfAbsent: c.Bool("if-absent")}
				return startEach(c, ids, func(id string) error {
					return engine.StartValues(ctx, name, id, values, opts)
				})
			})
		},
	}
}

// nothingStarted is refused for a step of start before any instance is
// written (finding the machine's version, registering it): a lost
// connection there changed nothing.
func nothingStarted(c *cli.Context, err error) error {
	if redisstore.Unreachable(err) {
		return usageError("fsmc %s: Redis: %v; nothing was started", c.Command.Name, err)
	}
	return refused(c, err)
}

// startEach starts every ID in turn. An ID the runtime refuses (one
// already taken) is named on stderr and the others still start; the
// exit status is then 1. A lost connection stops at once (exit 2),
// naming the IDs not known to be started.
func startEach(c *cli.Context, ids []string, start func(id string) error) error {
	refusedIDs := 0
	for i, id := range ids {
		err := start(id)
		if err == nil {
			continue
		}
		if errors.Is(err, runtime.ErrExists) {
			err = fmt.Errorf("instance %q already exists (--if-absent accepts that)", id)
		} else if len(ids) > 1 {
			err = fmt.Errorf("%s: %w", id, err)
		}
		out := refused(c, err)
		var exit *exitError
		if !errors.As(out, &exit) || exit.code != ExitFound {
			if len(ids) > 1 {
				fmt.Fprintf(c.App.ErrWriter, "fsmc start: started %d of %d; not known to be started: %s\n", i-refusedIDs, len(ids), strings.Join(ids[i:], " "))
			}
			return out
		}
		if len(ids) == 1 {
			return out
		}
		fmt.Fprintln(c.App.ErrWriter, exit.msg)
		refusedIDs++
	}
	if refusedIDs > 0 {
		return &exitError{code: ExitFound, msg: fmt.Sprintf("fsmc start: %d of %d instances not started", refusedIDs, len(ids))}
	}
	return nil
}

// jsonFlag is the JSON of flag name: its value, or with @FILE the file's
// contents (@- reads stdin), for a context or payload too long for a
// command line. A file that cannot be read is exit 2. what names the
// JSON for a message about what it holds: "context", or "context from
// FILE" ("from stdin" for @-).
func (e *env) jsonFlag(c *cli.Context, name string) (data []byte, what string, err error) {
	v := c.String(name)
	path, fromFile := strings.CutPrefix(v, "@")
	if !fromFile {
		data, err = given(c, name, v, []byte(v))
		return data, name, err
	}
	if path == "" {
		return nil, "", usageError("fsmc %s: --%s @: give a file after the @ (or @- for stdin)", c.Command.Name, name)
	}
	if path == "-" {
		data, err = io.ReadAll(e.stdin)
		what = name + " from stdin"
	} else {
		data, err = os.ReadFile(path)
		what = fmt.Sprintf("%s from %q", name, path)
	}
	if err != nil {
		return nil, "", usageError("fsmc %s: --%s: %v", c.Command.Name, name, err)
	}
	data, err = given(c, name, v, data)
	return data, what, err
}

// given refuses a JSON flag that was given but holds nothing, blank or
// from an empty file (exit 1, as wrong JSON is): that is no object, and
// taken as none it would start or send with every field at its default.
func given(c *cli.Context, name, v string, data []byte) ([]byte, error) {
	if c.IsSet(name) && len(bytes.TrimSpace(data)) == 0 {
		return nil, &exitError{code: ExitFound, msg: fmt.Sprintf("fsmc %s: --%s %q: no JSON in it (want an object such as {}, or leave out --%s)", c.Command.Name, name, v, name)}
	}
	return data, nil
}

func sendCommand(e *env) *cli.Command {
	return &cli.Command{
		Name: "send", Usage: "send an event to an instance on the Redis deployment", ArgsUsage: "ID EVENT",
		Flags: []cli.Flag{redisFlag(), prefixFlag(), &cli.StringFlag{Name: "payload", Usage: "the payload as a JSON object, or @FILE to read it from FILE (@- for stdin)"}},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 2, "[--payload JSON] ID EVENT"); err != nil {
				return err
			}
			data, what, err := e.jsonFlag(c, "payload")
			if err != nil {
				return err
			}
			payload, err := runtime.DecodeObject(data)
			if err != nil {
				return &exitError{code: ExitFound, msg: fmt.Sprintf("fsmc send: %s: %v", what, err)}
			}
			return operator(c, func(ctx context.Context, store *redisstore.Store, engine *runtime.Engine) error {
				id, event := c.Args().Get(0), c.Args().Get(1)
				err := engine.Send(ctx, id, event, payload)
				if errors.Is(err, runtime.ErrUnknownEvent) && adoptLatest(ctx, store, engine, id) {
					// The engine knows the latest version now: its error
					// names the instance's, which lacks the event.
					err = engine.Send(ctx, id, event, payload)
				}
				if err != nil {
					return refused(c, err)
				}
				return nil
			})
		},
	}
}

// adoptLatest registers with engine the latest version of instance id's
// machine, and reports whether that is another than the instance's.
func adoptLatest(ctx context.Context, store *redisstore.Store, engine *runtime.Engine, id string) bool {
	var inst runtime.Instance
	if store.Load(ctx, id, &inst) != nil {
		return false
	}
	latest, err := store.Latest(ctx, inst.Machine)
	if err != nil || latest == inst.Hash {
		return false
	}
	_, err = engine.Adopt(ctx, latest)
	return err == nil
}

func inspectCommand(e *env) *cli.Command {
	return &cli.Command{
		Name: "inspect", Usage: "show an instance: state, status, context, version, history", ArgsUsage: "ID",
		Flags: []cli.Flag{redisFlag(), prefixFlag(), &cli.BoolFlag{Name: "json", Usage: "print JSON"}},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 1, "[--json] ID"); err != nil {
				return err
			}
			return operator(c, func(ctx context.Context, _ *redisstore.Store, engine *runtime.Engine) error {
				v, err := engine.Get(ctx, c.Args().First())
				if err != nil {
					return refused(c, err)
				}
				if c.Bool("json") {
					printJSON(e.stdout, inspectJSON(v))
				} else {
					writeInspect(e.stdout, v)
				}
				return nil
			})
		},
	}
}

func lsCommand(e *env) *cli.Command {
	return &cli.Command{
		Name: "ls", Usage: "list instances on the Redis deployment",
		Flags: []cli.Flag{redisFlag(), prefixFlag(),
			&cli.StringFlag{Name: "machine", Usage: "only instances of machine `M` (NAME, or NAME@ID for one version)"},
			&cli.StringFlag{Name: "state", Usage: "only instances in state `S`"},
			&cli.StringFlag{Name: "status", Usage: "only active, failed, completed or cancelled instances"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object per instance"},
		},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0, "[--machine M] [--state S] [--status ST] [--json]"); err != nil {
				return err
			}
			f := runtime.ListFilter{Machine: c.String("machine"), State: c.String("state")}
			if st := c.String("status"); st != "" {
				status, ok := runtime.ParseStatus(st)
				if !ok {
					return usageError("fsmc ls: unknown status %q (want active, failed, completed or cancelled)", st)
				}
				f.Status = status
			}
			return operator(c, func(ctx context.Context, store *redisstore.Store, engine *runtime.Engine) error {
				name, version, err := machineFilter(ctx, store, f.Machine)
				if err != nil {
					return refused(c, err)
				}
				f.Machine = name
				insts, err := engine.List(ctx, f)
				if version != "" {
					insts = slices.DeleteFunc(insts, func(inst *runtime.Instance) bool { return inst.Hash != version })
				}
				if err == nil && len(insts) == 0 {
					err = checkListFilter(ctx, store, f, version) // nothing: perhaps a misspelt name
				}
				if err != nil {
					return refused(c, err)
				}
				tw := &table{}
				if !c.Bool("json") {
					tw.add("ID", "MACHINE", "STATE", "STATUS", "VERSION", "PRIORITY")
				}
				latest := map[string]string{} // machine name -> its latest version's hash
				for _, inst := range insts {
					state := fmt.Sprint(inst.State)
					if m, _ := store.Machine(ctx, inst.Hash); m != nil && inst.State < len(m.States) {
						state = m.States[inst.State].Name
					}
					if c.Bool("json") {
						printJSON(e.stdout, map[string]any{"id": inst.ID, "machine": inst.Machine, "state": state,
							"status": inst.Status.String(), "version": inst.Version, "priority": inst.Priority, "hash": inst.Hash})
						continue
					}
					// An instance of another version than the latest (which
					// only workers of its version advance) shows which.
					machine := inst.Machine
					if _, known := latest[machine]; !known {
						latest[machine], _ = store.Latest(ctx, machine)
					}
					if inst.Hash != latest[machine] {
						machine = machineVersion(machine, inst.Hash)
					}
					tw.add(inst.ID, machine, state, inst.Status.String(), strconv.FormatUint(inst.Version, 10), strconv.Itoa(inst.Priority))
				}
				return tw.write(e.stdout)
			})
		},
	}
}

// table lines rows up in columns two spaces apart, by the terminal
// columns each cell takes (cells.Width): text/tabwriter counts
// characters, and an ID in Chinese takes two columns a character.
type table struct{ rows [][]string }

func (t *table) add(row ...string) { t.rows = append(t.rows, row) }

// write writes the rows, each cell but the last of a row padded to its
// column's width.
func (t *table) write(w io.Writer) error {
	var widths []int
	for _, row := range t.rows {
		for i, cell := range row {
			if i == len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], cells.Width(cell))
		}
	}
	var b strings.Builder
	for _, row := range t.rows {
		for i, cell := range row {
			b.WriteString(cell)
			if i < len(row)-1 {
				b.WriteString(strings.Repeat(" ", widths[i]-cells.Width(cell)+2))
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// machineFilter reads --machine of ls and watch: NAME, every version of
// a machine (version ""), or NAME@ID, one version, whose hash it returns.
func machineFilter(ctx context.Context, store *redisstore.Store, spec string) (name, version string, err error) {
	if !strings.Contains(spec, "@") {
		return spec, "", nil
	}
	return resolveVersion(ctx, store, spec)
}

// resolveVersion reads a machine as the commands name it: NAME (its
// latest version) or NAME@ID (a version, as inspect names it). It
// returns the name and the version's hash.
func resolveVersion(ctx context.Context, store *redisstore.Store, spec string) (name, hash string, err error) {
	if n, id, pinned := strings.Cut(spec, "@"); pinned {
		if n == "" || id == "" {
			return "", "", fmt.Errorf("machine %q: want NAME, or NAME@ID for one version (as inspect names it)", spec)
		}
		hash, err = store.Version(ctx, n, id)
		return n, hash, err
	}
	hash, err = store.Latest(ctx, spec)
	return spec, hash, err
}

// checkListFilter says what is wrong with a filter that matched
// nothing: a machine nobody registered, or a state that no version the
// filter covers has. version is the hash of the one version --machine
// NAME@ID named; without it, the filter covers every registered
// version of its machine, or of every machine.
func checkListFilter(ctx context.Context, store *redisstore.Store, f runtime.ListFilter, version string) error {
	var versions []*ir.Machine
	switch {
	case version != "":
		m, err := store.Machine(ctx, version)
		if err != nil {
			return err
		}
		versions = []*ir.Machine{m}
	case f.Machine != "":
		all, err := store.Versions(ctx, f.Machine)
		if err != nil {
			return err
		}
		versions = all
	case f.State != "":
		latest, err := store.LatestMachines(ctx)
		if err != nil {
			return err
		}
		for _, m := range latest {
			all, err := store.Versions(ctx, m.Name)
			if err != nil {
				return err
			}
			versions = append(versions, all...)
		}
	}
	if f.State == "" {
		return nil
	}
	var names []string // the states of the versions, the latest's first
	for _, m := range versions {
		for _, st := range m.States {
			if st.Name == f.State {
				return nil
			}
			if !slices.Contains(names, st.Name) {
				names = append(names, st.Name)
			}
		}
	}
	switch {
	case version != "":
		return fmt.Errorf("machine %s has no state %q (its states: %s)", machineVersion(f.Machine, version), f.State, strings.Join(names, ", "))
	case f.Machine != "":
		return fmt.Errorf("no version of machine %s has a state %q (their states: %s)", f.Machine, f.State, strings.Join(names, ", "))
	}
	return fmt.Errorf("no registered machine has a state %q", f.State)
}

func watchCommand(e *env) *cli.Command {
	return &cli.Command{
		Name: "watch", Usage: "stream the changelog: every transition, live",
		Flags: []cli.Flag{redisFlag(), prefixFlag(),
			&cli.StringFlag{Name: "machine", Usage: "only machine `M` (NAME, or NAME@ID for one version)"},
			&cli.StringFlag{Name: "instance", Usage: "only instance `ID`"},
			&cli.StringFlag{Name: "since", Usage: "resume after `CURSOR` (printed with --json), or \"start\" for everything kept"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON lines, each with the cursor to resume from"},
		},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 0, "[--machine M] [--instance ID] [--since CURSOR] [--json]"); err != nil {
				return err
			}
			return operator(c, func(ctx context.Context, store *redisstore.Store, _ *runtime.Engine) error {
				// --machine NAME@ID watches one version, as ls lists it.
				machine, version, err := machineFilter(ctx, store, c.String("machine"))
				if err != nil {
					return refused(c, err)
				}
				// A misspelt machine would wait for ever, as ls would list
				// nothing: both say so.
				if err := checkListFilter(ctx, store, runtime.ListFilter{Machine: machine}, version); err != nil {
					return refused(c, err)
				}
				// An instance that does not exist (yet) may be started
				// later: watch waits for it, but says so.
				if id := c.String("instance"); id != "" {
					var inst runtime.Instance
					if err := store.Load(ctx, id, &inst); errors.Is(err, runtime.ErrNotFound) {
						fmt.Fprintf(e.stderr, "fsmc watch: no instance %q yet; waiting for its changes\n", id)
					}
				}
				cursor := c.String("since")
				if cursor == "start" {
					cursor = ""
				} else if cursor == "" {
					// From now: skip what is already there.
					for {
						batch, next, err := store.Changes(ctx, cursor, 1000)
						if err != nil {
							return refused(c, err)
						}
						cursor = next
						if len(batch) == 0 {
							break
						}
					}
				}
				// show prints the changes of batch that pass the filters,
				// and returns the cursor after the last one it dealt with:
				// next, or, when Redis fails it while it reads a machine
				// version, the one before that change, with the error.
				lost := map[string]bool{} // versions the registry lost, said once each
				show := func(batch []runtime.Change, next string) (string, error) {
					for i, ch := range batch {
						if c.String("instance") != "" && ch.Instance != c.String("instance") {
							continue
						}
						if ch.Machine == "" {
							// Its machine is not known, nor whether --machine
							// covers it: left out, as ls leaves it out.
							if !lost[ch.Hash] {
								lost[ch.Hash] = true
								fmt.Fprintf(e.stderr, "fsmc watch: changes of machine version %s left out: the machine registry has lost that version (a worker that runs it registers it again when it starts)\n", ch.Hash)
							}
							continue
						}
						if machine != "" && ch.Machine != machine || version != "" && ch.Hash != version {
							continue
						}
						m, err := store.Machine(ctx, ch.Hash)
						if err != nil && (redisstore.Unreachable(err) || redisstore.Unavailable(err)) {
							if i == 0 {
								return cursor, err
							}
							return batch[i-1].Cursor, err
						}
						if m == nil {
							continue
						}
						if c.Bool("json") {
							rec := changeJSON(m, ch)
							printJSON(e.stdout, struct {
								changeRecord
								Cursor string `json:"cursor"`
							}{rec, ch.Cursor})
						} else {
							fmt.Fprintln(e.stdout, changeLine(m, ch))
						}
					}
					return next, nil
				}
				retry, outage, given := 100*time.Millisecond, false, c.String("since") != ""
				for ctx.Err() == nil {
					batch, next, err := store.Changes(ctx, cursor, 1000)
					if err == nil {
						given = given && len(batch) == 0 // the cursor is watch's own from here
						cursor, err = show(batch, next)
					}
					if err != nil {
						if ctx.Err() != nil {
							return nil
						}
						if !redisstore.Unreachable(err) && !redisstore.Unavailable(err) {
							if !given {
								err = fellBehind{err}
							}
							return refused(c, err)
						}
						// An outage: like a worker, watch waits it out, and
						// resumes after the last entry it printed.
						if !outage {
							fmt.Fprintf(e.stderr, "fsmc watch: Redis: %v; trying again\n", err)
							outage = true
						}
						select {
						case <-ctx.Done():
						case <-time.After(retry):
						}
						retry = min(2*retry, 5*time.Second)
						continue
					}
					if outage {
						fmt.Fprintln(e.stderr, "fsmc watch: Redis answers again")
						retry, outage = 100*time.Millisecond, false
					}
					if err := e.output.lost(); err != nil {
						return usageError("fsmc watch: cannot write the output: %v", err)
					}
					if len(batch) == 0 {
						select {
						case <-ctx.Done():
						case <-time.After(100 * time.Millisecond):
						}
					}
				}
				return nil
			})
		},
	}
}

func operatorCommand(e *env, name, usage string, op func(*runtime.Engine, context.Context, string) error) *cli.Command {
	return &cli.Command{
		Name: name, Usage: usage, ArgsUsage: "ID", Flags: []cli.Flag{redisFlag(), prefixFlag(), lockFlag()},
		Action: func(c *cli.Context) error {
			if err := wantArgs(c, 1, "ID"); err != nil {
				return err
			}
			return operator(c, func(ctx context.Context, _ *redisstore.Store, engine *runtime.Engine) error {
				if err := op(engine, ctx, c.Args().First()); err != nil {
					return refused(c, err)
				}
				return nil
			})
		},
	}
}

// runWorker is `fsmc run --redis`: a long-running worker for the given
// machines until SIGINT or SIGTERM. Actions without --exec are not run by
// this worker at all.
func (e *env) runWorker(c *cli.Context, machines map[string]*ir.Machine, handlers map[string]map[string]runtime.Handler, asJSON bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger := slog.New(slog.NewTextHandler(e.stderr, nil))
	store, err := waitForRedis(ctx, c, logger)
	if err != nil {
		return err
	}
	defer store.Close()
	if c.IsSet("retain") {
		if err := store.SetRetention(ctx, c.Duration("retain")); err != nil {
			return refused(c, err)
		}
	}
	// The retention is read for the log line only: a Redis that fails
	// this read now is waited out by the worker like any outage.
	kept := "until deleted"
	if retain, err := store.Retention(ctx); err != nil {
		kept = "unknown (" + err.Error() + ")"
	} else if retain > 0 {
		kept = retain.String()
	}
	host, _ := os.Hostname()
	byHash := map[string]*ir.Machine{}
	var observer runtime.Observer
	var collector *metrics.Collector
	if addr := c.String("metrics-addr"); addr != "" {
		reg := prometheus.NewRegistry()
		// The process's and Go's own series (memory, goroutines, open
		// files), for alerts on the worker itself.
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		var err error
		if collector, err = metrics.New(reg); err != nil {
			return err
		}
		observer = collector
		if err := reg.Register(metrics.NewQueue(store, time.Now, 5*time.Second, collector.StoreError)); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return usageError("fsmc run: --metrics-addr %s: %v", addr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
		logger.Info("serving metrics", "addr", ln.Addr().String())
	}
	var lostOutput atomic.Bool
	grace := c.Duration("grace")
	if grace <= 0 {
		grace = -1 // runtime.Options: no grace at all
	}
	engine := runtime.New(store, runtime.Options{
		Worker:    fmt.Sprintf("%s-%d", host, os.Getpid()),
		Logger:    logger,
		Observer:  observer,
		StopGrace: grace,
		OnChange: func(ch runtime.Change) {
			if m := byHash[ch.Hash]; m != nil {
				if asJSON {
					printJSON(e.stdout, changeJSON(m, ch))
				} else {
					fmt.Fprintln(e.stdout, changeLine(m, ch))
				}
				// The worker's work goes on; its changelog is lost.
				if err := e.output.lost(); err != nil && lostOutput.CompareAndSwap(false, true) {
					logger.Error("cannot write the changelog to stdout; the worker goes on without it", "err", err)
					e.output.handle() // a graceful stop still exits 0
				}
			}
		},
	})
	names := make([]string, 0, len(machines))
	for name, m := range machines {
		bound := map[string]runtime.Handler{}
		var actions []string
		for action, h := range handlers[name] {
			if h != nil {
				bound[action] = h
				actions = append(actions, action)
			}
		}
		if err := engine.Register(ctx, m, bound); err != nil {
			if redisstore.ReadOnlyReplica(err) {
				return usageError("fsmc run: registering machine %s: Redis is a read-only replica: give --redis the master's URL (or Sentinel's, redis+sentinel://)", name)
			}
			return usageError("fsmc run: registering machine %s: %v", name, err)
		}
		if collector != nil {
			collector.Runs(name, actions)
		}
		byHash[m.Hash] = m
		names = append(names, machineVersion(name, m.Hash))
	}
	sort.Strings(names)
	logger.Info("worker started", "machines", strings.Join(names, ","), "concurrency", c.Int("concurrency"), "ended_instances_kept", kept)
	_ = engine.Run(ctx, c.Int("concurrency"))
	logger.Info("worker stopped")
	return nil
}

// noticeHandler writes an operator command's warnings as its other
// messages read: "fsmc ls: MESSAGE (key=value, ...)", one line each.
type noticeHandler struct {
	w       io.Writer
	command string
	attrs   []slog.Attr
}

func (h *noticeHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }

func (h *noticeHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "fsmc %s: %s", h.command, r.Message)
	var attrs []string
	add := func(a slog.Attr) bool {
		attrs = append(attrs, a.Key+"="+a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	if len(attrs) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(attrs, ", "))
	}
	_, err := io.WriteString(h.w, graphic(b.String())+"\n")
	return err
}

func (h *noticeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &noticeHandler{w: h.w, command: h.command, attrs: append(slices.Clip(h.attrs), attrs...)}
}

func (h *noticeHandler) WithGroup(string) slog.Handler { return h }
