package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"github.com/redis/go-redis/v9"
	"io"
	"log/slog"
	"net"
	neturl "net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Open connects to the deployment at url and checks that it answers:
// redis://[user:password@]host:port[/db] or rediss:// (TLS) for one node;
// for Cluster, redis://host1:port?addr=host2:port&addr=host3:port, or
// any one node, from which the others are found. A
// rediss:// URL may add tls_ca=PATH (certificates to trust) and
// tls_cert=PATH&tls_key=PATH (a client certificate).
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	if strings.ContainsAny(opts.Prefix, "{} \t\r\n") {
		return nil, fmt.Errorf("key prefix %q: want one without braces or white space (braces would put every partition in one Cluster slot)", opts.Prefix)
	}
	if strings.ContainsAny(opts.Prefix, "*?[]\\") {
		// Listings find keys by SCAN patterns made from the prefix:
		// "fsm?" would list another deployment's instances as its own.
		return nil, fmt.Errorf("key prefix %q: want one without the glob characters * ? [ ] \\ (listings match keys by patterns made from it)", opts.Prefix)
	}
	lockOpts, err := parseLockURLs(opts.LockURLs)
	if err != nil {
		return nil, err
	}
	var rdb redis.UniversalClient
	if strings.HasPrefix(url, "redis+sentinel://") {
		fo, err := ParseSentinelURL(url)
		if err != nil {
			return nil, badURL("Redis URL", url, err)
		}
		fo.MaxRetries, fo.ContextTimeoutEnabled = noRetries, true
		rdb = redis.NewFailoverClient(fo)
	} else if strings.Contains(url, "addr=") {
		copts, err := parseClusterURL(url)
		if err != nil {
			return nil, badURL("Redis URL", url, err)
		}
		rdb = redis.NewClusterClient(copts)
	} else {
		o, err := parseNodeURL(url)
		if err != nil {
			return nil, badURL("Redis URL", url, err)
		}
		rdb = redis.NewClient(o)
	}
	owned := []redis.UniversalClient{rdb}
	closeAll := func() {
		for _, c := range owned {
			c.Close()
		}
	}
	pingCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ping := func() error {
		err := rdb.Ping(pingCtx).Err()
		switch {
		case err == nil:
			return nil
		case Unreachable(err) && strings.HasPrefix(url, "rediss://") && errors.Is(err, context.DeadlineExceeded):
			// A TLS client waits for a handshake that a server without
			// TLS never starts.
			return fmt.Errorf("%w at %s: %w (no TLS handshake: does the server take TLS on that port?)", ErrUnreachable, redactURL(url), err)
		case Unreachable(err):
			return fmt.Errorf("%w at %s: %w", ErrUnreachable, redactURL(url), err)
		}
		return fmt.Errorf("Redis at %s refused: %w", redactURL(url), err)
	}
	if err := ping(); err != nil {
		closeAll()
		return nil, err
	}
	// One node of a Cluster, named alone, is a seed: the client finds
	// the others (as one with addr= would), or every command on a key of
	// another shard would fail, and listings would miss those keys.
	if node, single := rdb.(*redis.Client); single && clusterEnabled(pingCtx, node) {
		copts, err := parseClusterURL(url)
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("for a Cluster node: %w", badURL("Redis URL", url, err))
		}
		node.Close()
		rdb = redis.NewClusterClient(copts)
		owned[0] = rdb
		if err := ping(); err != nil {
			closeAll()
			return nil, err
		}
	}
	// Redlock needs a majority of its nodes: a store starts with one
	// down (and uses it again when it answers), not without a majority.
	// The nodes are asked at once, each with its own time: a hung one
	// does not use up the others' time.
	nodeErrs := make([]error, len(lockOpts))
	servers := make([]string, len(lockOpts)) // each node's server (its run id), when it says
	var asked sync.WaitGroup
	for i, o := range lockOpts {
		c := redis.NewClient(o)
		owned = append(owned, c)
		opts.LockNodes = append(opts.LockNodes, c)
		asked.Add(1)
		go func() {
			defer asked.Done()
			nodeCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			servers[i], nodeErrs[i] = serverID(nodeCtx, c)
		}()
	}
	asked.Wait()
	// One server named twice under different addresses (localhost and
	// 127.0.0.1, say), which parseLockURLs cannot tell apart.
	seen := map[string]int{}
	for i, id := range servers {
		if id == "" {
			continue
		}
		id += "/" + strconv.Itoa(lockOpts[i].DB)
		if j, twice := seen[id]; twice {
			closeAll()
			return nil, fmt.Errorf("lock node %s is named twice (as %s too: one Redis server answers both): Redlock needs independent nodes, each named once", redactURL(opts.LockURLs[i]), redactURL(opts.LockURLs[j]))
		}
		seen[id] = i
	}
	var down []string
	for i, err := range nodeErrs {
		if err != nil {
			down = append(down, fmt.Sprintf("%s (%v)", redactURL(opts.LockURLs[i]), err))
		}
	}
	if n := len(opts.LockURLs); len(down) > 0 && n-len(down) < n/2+1 {
		closeAll()
		return nil, fmt.Errorf("%w: not a majority of the %d lock nodes (%d of %d needed): %s", ErrUnreachable, n, n/2+1, n, strings.Join(down, "; "))
	}
	s := New(rdb, opts)
	s.owned = owned
	for _, c := range owned {
		c.AddHook(closedHook{s.closed})
	}
	for _, node := range down {
		s.log.Warn("a lock node does not answer; the others make a majority", "node", node)
	}
	return s, nil
}

// parseLockURLs reads the URLs of the Redlock nodes. Each node may be
// named once: one named twice would take a lock once and refuse it the
// second time, so that no lock would ever have its majority.
func parseLockURLs(urls []string) ([]*redis.Options, error) {
	var all []*redis.Options
	seen := map[string]string{} // "address/db" -> the URL that named it
	for _, raw := range urls {
		o, err := parseNodeURL(raw)
		if err != nil {
			return nil, badURL("lock node URL", raw, err)
		}
		node := fmt.Sprintf("%s/%d", o.Addr, o.DB)
		if first, twice := seen[node]; twice {
			return nil, fmt.Errorf("lock node %s is named twice (as %s too): Redlock needs independent nodes, each named once", redactURL(raw), redactURL(first))
		}
		seen[node] = raw
		all = append(all, o)
	}
	return all, nil
}

// serverID asks node which Redis server it is (its run id, unique to a
// server process), or, when it refuses INFO (a user not allowed it),
// whether it answers PING ("" then).
func serverID(ctx context.Context, node *redis.Client) (string, error) {
	info, err := node.Info(ctx, "server").Result()
	if err != nil {
		if answerCode(err) != "" {
			return "", node.Ping(ctx).Err()
		}
		return "", err
	}
	for _, line := range strings.Split(info, "\n") {
		if id, ok := strings.CutPrefix(line, "run_id:"); ok {
			return strings.TrimSpace(id), nil
		}
	}
	return "", nil
}

// clusterEnabled reports whether node says it is a Cluster node (a user
// not allowed INFO is taken at its word as a single Redis).
func clusterEnabled(ctx context.Context, node *redis.Client) bool {
	info, err := node.Info(ctx, "cluster").Result()
	return err == nil && strings.Contains(info, "cluster_enabled:1")
}

// ErrUnreachable is Open's error when Redis (or a majority of the lock
// nodes) does not answer: a network error or a timeout, which may pass,
// unlike a bad URL or a refused password.
var ErrUnreachable = errors.New("cannot reach Redis")

// Unreachable reports whether err says the connection to Redis failed
// (a network error, a timeout, or Redis closing the connection) rather
// than Redis answering: a write may then have been made without its
// reply arriving.
func Unreachable(err error) bool {
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed)
}

// Unavailable reports whether err is Redis answering that it cannot
// serve a command now: out of memory, loading its data, a replica that
// takes no writes, a Cluster or master that is down. Not the command's
// fault; the same command may succeed later.
func Unavailable(err error) bool {
	switch answerCode(err) {
	case "OOM", "LOADING", "READONLY", "MASTERDOWN", "BUSY", "TRYAGAIN", "CLUSTERDOWN", "NOREPLICAS", "MISCONF":
		return true
	}
	return false
}

// ReadOnlyReplica reports whether err is Redis answering that it is a
// replica, which takes no writes: the deployment's URL names a replica,
// not its master.
func ReadOnlyReplica(err error) bool { return answerCode(err) == "READONLY" }

// answerCode is the code that starts Redis's error answer in err (such
// as "OOM" or "READONLY"), or "" when err holds no answer.
func answerCode(err error) string {
	var answer redis.Error
	if !errors.As(err, &answer) {
		return ""
	}
	code, _, _ := strings.Cut(answer.Error(), " ")
	return code
}

// parseNodeURL reads the URL of one Redis node, with fsmc's TLS
// parameters (see takeTLSParams), for a client that does not retry
// (noRetries) and that gives up on a reply when the call's context
// ends, if that comes before its read timeout: a caller's deadline
// holds while Redis hangs.
func parseNodeURL(raw string) (*redis.Options, error) {
	o, err := parseWithTLS(raw, redis.ParseURL, func(o *redis.Options) *tls.Config { return o.TLSConfig })
	if err == nil {
		o.MaxRetries, o.ContextTimeoutEnabled = noRetries, true
	}
	return o, err
}

// parseClusterURL reads the URL of a Cluster (seed nodes), as
// parseNodeURL reads one node's.
func parseClusterURL(raw string) (*redis.ClusterOptions, error) {
	o, err := parseWithTLS(raw, redis.ParseClusterURL, func(o *redis.ClusterOptions) *tls.Config { return o.TLSConfig })
	if err == nil {
		o.MaxRetries, o.ContextTimeoutEnabled = noRetries, true
	}
	return o, err
}

// noRetries turns off the client's own retries. go-redis sends a command
// again when its reply is late or lost, and a script that already ran
// (an enqueue, a start) would then apply twice. fsmc retries where that
// is safe: workers claim again; an operator's command reports the error.
const noRetries = -1

// retriesOf returns how many times a go-redis client retries a command
// (its Options after NewClient: -1 has become 0, and 0 the default 3),
// and whether rdb is such a client.
func retriesOf(rdb redis.UniversalClient) (int, bool) {
	switch c := rdb.(type) {
	case *redis.Client:
		return c.Options().MaxRetries, true
	case *redis.ClusterClient:
		return c.Options().MaxRetries, true
	}
	return 0, false
}

// LogClientTo sends the Redis client's own messages (a lost connection, a
// Sentinel naming a new master) to l, instead of the standard logger. It
// holds for the whole process.
func LogClientTo(l *slog.Logger) { redis.SetLogger(clientLog{l}) }

type clientLog struct{ l *slog.Logger }

func (c clientLog) Printf(ctx context.Context, format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	level := slog.LevelInfo
	if strings.HasPrefix(msg, "redis: discarding bad PubSub connection") {
		// The wake channel's connection broke: the client dials again by
		// itself, and a Redis outage is the workers' own log line.
		level = slog.LevelDebug
	}
	c.l.Log(ctx, level, msg, "from", "redis client")
}

// ParseSentinelURL reads redis+sentinel://[user:password@]host:port[,host:port...]/MASTER[/DB]
// [?sentinel_password=P]: the Sentinels to ask, the name of the master
// they watch, and the database. The user and password are the master's.
func ParseSentinelURL(raw string) (*redis.FailoverOptions, error) {
	u, err := neturl.Parse(raw)
	if err != nil {
		return nil, err
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s: no Sentinel addresses", redactURL(raw))
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if parts[0] == "" || len(parts) > 2 {
		return nil, fmt.Errorf("%s: want /MASTER or /MASTER/DB after the Sentinel addresses", redactURL(raw))
	}
	o := &redis.FailoverOptions{MasterName: parts[0], SentinelAddrs: strings.Split(u.Host, ",")}
	if len(parts) == 2 {
		if o.DB, err = strconv.Atoi(parts[1]); err != nil || o.DB < 0 {
			return nil, fmt.Errorf("%s: database %q is not a number", redactURL(raw), parts[1])
		}
	}
	o.Username = u.User.Username()
	o.Password, _ = u.User.Password()
	for key, vals := range u.Query() {
		if key != "sentinel_password" {
			return nil, fmt.Errorf("%s: unknown option %q (only sentinel_password)", redactURL(raw), key)
		}
		o.SentinelPassword = vals[len(vals)-1]
	}
	return o, nil
}

// redactURL hides the passwords of a URL, for messages.
func redactURL(url string) string {
	if k := strings.Index(url, "sentinel_password="); k >= 0 {
		k += len("sentinel_password=")
		end := strings.IndexByte(url[k:], '&')
		if end < 0 {
			end = len(url) - k
		}
		url = url[:k] + "***" + url[k+end:]
	}
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	// The last @ ends the credentials: a password may hold one that
	// should have been percent-encoded.
	at := strings.LastIndexByte(rest, '@')
	if at < 0 {
		return url
	}
	user, _, _ := strings.Cut(rest[:at], ":")
	return scheme + "://" + user + ":***@" + rest[at+1:]
}

// badURL is the error for a URL (what: "Redis URL", say) that could not
// be read. net/url's messages quote the URL, or the part it could not
// read, which may be a password with characters that should have been
// percent-encoded: for a URL with credentials the message says what to
// check instead.
func badURL(what, raw string, err error) error {
	var ue *neturl.Error
	if _, rest, _ := strings.Cut(raw, "://"); errors.As(err, &ue) && strings.Contains(rest, "@") {
		return fmt.Errorf("bad %s %s: it does not parse (in a user name or password, @ : / ? # %% and spaces must be percent-encoded)", what, redactURL(raw))
	}
	return fmt.Errorf("bad %s: %v", what, err)
}
