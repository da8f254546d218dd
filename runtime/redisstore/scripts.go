package redisstore

import (
	"context"
	"crypto/sha1"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// The Lua of scripts/ runs one of two ways. On Redis 7 and later it is
// one function library (FUNCTION LOAD once, then FCALL): the prelude's
// definitions run when the library loads, and a call runs only its
// script's body (the first call also binds the library functions the
// prelude keeps in locals). Redis runs an EVAL script's whole source on every call,
// and the prelude alone cost about 38,000 instructions of Redis's time
// per call, more than the body of a claim. Older Redis, or a user who
// may not load functions, runs each script by EVALSHA, prelude and all.
//
// Each version of the library is named by its hash (fsmc_<hash>, and its
// functions fsmc_<hash>_<script>), so workers of different versions can
// share a Redis during an upgrade.

//go:embed scripts/*.lua
var scriptFiles embed.FS

// scriptNames are the scripts of scripts/, each a body that uses the
// definitions of scripts/prelude.lua.
var scriptNames = []string{"create", "enqueue", "commit", "complete", "lease", "claim", "nextdue", "depth", "migrate", "register"}

// preludeHead is the prelude's first statement: in a script it reads the
// prefix from ARGV; in the library every function sets it per call.
const preludeHead = "local P = ARGV[1]\nlocal readied = false"

// zaddLT is the prelude's statement that ZADD's LT flag is not known to
// be there: the library, which only Redis 7 and later loads, says it is.
const zaddLT = "local ZADD_LT = false"

// scripts runs the Lua of scripts/ on a Redis deployment: which way
// (mode) is the deployment's, learnt on first use.
type scripts struct {
	// mode is modeUnknown until the library was loaded (modeFunctions)
	// or refused (modeEvalsha).
	mode   atomic.Int32
	loadMu sync.Mutex
}

const (
	modeUnknown int32 = iota
	modeFunctions
	modeEvalsha
)

// The scripts' two forms, built once: each script whole (prelude and
// body) for EVALSHA, and the library with its function names.
var (
	evalshaScripts = map[string]*redis.Script{}
	library        string                // the FUNCTION LOAD source
	functions      = map[string]string{} // script name -> function name
)

func init() {
	src := map[string]string{}
	for _, name := range append([]string{"prelude"}, scriptNames...) {
		b, err := scriptFiles.ReadFile("scripts/" + name + ".lua")
		if err != nil {
			panic(err) // embedded at build time
		}
		src[name] = string(b)
	}
	if !strings.Contains(src["prelude"], preludeHead) {
		panic("scripts/prelude.lua does not start its definitions with " + preludeHead)
	}
	var lib strings.Builder
	lib.WriteString("local KEYS, ARGV, P, readied\n")
	prelude := strings.Replace(src["prelude"], preludeHead, "", 1)
	if !strings.Contains(prelude, zaddLT) {
		panic("scripts/prelude.lua does not say " + zaddLT)
	}
	lib.WriteString(strings.Replace(prelude, zaddLT, "local ZADD_LT = true", 1))
	sum := sha1.Sum([]byte(src["prelude"] + strings.Join(scriptNames, ",")))
	for _, name := range scriptNames {
		sum = sha1.Sum(append(sum[:], src[name]...))
	}
	id := "fsmc_" + hex.EncodeToString(sum[:6])
	for _, name := range scriptNames {
		body := src[name]
		evalshaScripts[name] = redis.NewScript(src["prelude"] + "\nbegin()\n" + body)
		fn := id + "_" + name
		functions[name] = fn
		fmt.Fprintf(&lib, "\nredis.register_function(%q, function(keys, args)\nKEYS, ARGV, P, readied = keys, args, args[1], false\nbegin()\n%s\nend)\n", fn, body)
	}
	library = "#!lua name=" + id + "\n" + lib.String()
}

// ready learns, on first use, which way the deployment runs the scripts
// (loading them).
func (sc *scripts) ready(ctx context.Context, rdb redis.UniversalClient) error {
	if sc.mode.Load() != modeUnknown {
		return nil
	}
	return sc.load(ctx, rdb)
}

// run runs script name with keys and args.
func (sc *scripts) run(ctx context.Context, rdb redis.UniversalClient, name string, keys []string, args ...any) *redis.Cmd {
	if err := sc.ready(ctx, rdb); err != nil {
		return failed(ctx, err)
	}
	if sc.mode.Load() == modeEvalsha {
		return evalshaScripts[name].Run(ctx, rdb, keys, args...)
	}
	cmd := rdb.FCall(ctx, functions[name], keys, args...)
	if isNoScript(cmd.Err()) { // a restarted or new server without the library
		if err := sc.load(ctx, rdb); err != nil {
			return failed(ctx, err) // why it could not be loaded (a replica, say)
		}
		cmd = rdb.FCall(ctx, functions[name], keys, args...)
	}
	return cmd
}

// failed is a command that failed with err before it was sent.
func failed(ctx context.Context, err error) *redis.Cmd {
	cmd := redis.NewCmd(ctx)
	cmd.SetErr(err)
	return cmd
}

// pipe queues script name on a pipeline; call ready first. A server
// that lost the scripts answers NOSCRIPT or "Function not found"
// (isNoScript), and the caller loads them again.
func (sc *scripts) pipe(ctx context.Context, p redis.Pipeliner, name string, keys []string, args ...any) *redis.Cmd {
	if sc.mode.Load() == modeEvalsha {
		return evalshaScripts[name].EvalSha(ctx, p, keys, args...)
	}
	return p.FCall(ctx, functions[name], keys, args...)
}

// load loads the library (on every master of a Cluster), or, if Redis
// refuses it (no FUNCTION before Redis 7, or no permission), the
// scripts.
func (sc *scripts) load(ctx context.Context, rdb redis.UniversalClient) error {
	sc.loadMu.Lock()
	defer sc.loadMu.Unlock()
	if sc.mode.Load() != modeEvalsha {
		err := eachNode(ctx, rdb, func(ctx context.Context, c redis.UniversalClient) error {
			// The library's name is its source's hash: one of that name
			// already there (another worker loaded it) is this one.
			err := c.FunctionLoad(ctx, library).Err()
			if err != nil && strings.Contains(err.Error(), "already exists") {
				return nil
			}
			return err
		})
		var refused redis.Error
		switch {
		case err == nil:
			sc.mode.Store(modeFunctions)
			return nil
		case !errors.As(err, &refused):
			return err // not reached: try again on the next call
		case Unavailable(err):
			// Not a refusal of functions: a replica, or a server loading
			// its data, takes no FUNCTION LOAD now and may later.
			return err
		}
		sc.mode.Store(modeEvalsha)
	}
	return eachNode(ctx, rdb, func(ctx context.Context, c redis.UniversalClient) error {
		for _, s := range evalshaScripts {
			if err := s.Load(ctx, c).Err(); err != nil {
				return err
			}
		}
		return nil
	})
}

// eachNode runs fn on every master of a Cluster, at once, or else on
// rdb itself: for what each node keeps on its own (the function
// library, the keys a scan finds).
func eachNode(ctx context.Context, rdb redis.UniversalClient, fn func(context.Context, redis.UniversalClient) error) error {
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return fn(ctx, c) })
	}
	return fn(ctx, rdb)
}

// isNoScript reports whether err says the server lacks a script or the
// library's function (it restarted without them, or is new).
func isNoScript(err error) bool {
	return err != nil && (strings.HasPrefix(err.Error(), "NOSCRIPT") || strings.Contains(err.Error(), "Function not found"))
}
