// Package redistest gives tests a real Redis: FSMC_TEST_REDIS_URL when
// set, else one redis-server per test binary, started on a free port in
// a temporary directory and stopped by Stop. Without either the tests
// skip with a message, or fail when FSMC_REQUIRE_REDIS=1 (as CI sets).
// It is test infrastructure: besides runtime/redisstore, the only place
// that talks to Redis directly. A Server of a test's own can also run
// under valgrind's callgrind (UnderCallgrind), for benchmarks that count
// the instructions Redis executes rather than time it.
package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

var (
	once   sync.Once
	url    string
	err    error
	shared *Server
)

// URL returns the address of the test Redis (redis://host:port/0), or
// skips or fails t when there is none.
func URL(t testing.TB) string {
	u, e := Available()
	if e != nil {
		if os.Getenv("FSMC_REQUIRE_REDIS") == "1" {
			t.Fatalf("Redis is required (FSMC_REQUIRE_REDIS=1): %v", e)
		}
		t.Skipf("no Redis to test against: %v", e)
	}
	return u
}

// Available starts the test Redis if needed and returns its URL.
func Available() (string, error) {
	once.Do(func() { url, err = start() })
	return url, err
}

// Client returns a client of the test Redis, closed when t ends.
func Client(t testing.TB) *redis.Client {
	opts, e := redis.ParseURL(URL(t))
	if e != nil {
		t.Fatal(e)
	}
	opts.MaxRetries = -1 // as redisstore.Open's clients: a script is never sent twice
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

// Stop stops the redis-server this package started, if any, and
// removes its directory. A test binary's TestMain calls it before
// os.Exit (which runs no deferred calls).
func Stop() {
	if shared != nil {
		shared.Kill()
		os.RemoveAll(shared.Dir)
	}
}

func start() (string, error) {
	if u := os.Getenv("FSMC_TEST_REDIS_URL"); u != "" {
		return u, nil
	}
	srv, e := NewServer()
	if e != nil {
		return "", e
	}
	if e := srv.Start(); e != nil {
		return "", e
	}
	shared = srv
	return srv.URL(), nil
}

// Server is a redis-server of a test's own, on a fixed port and data
// directory, that can be killed and started again (to test outages).
type Server struct {
	Port int
	Dir  string
	Args []string // extra redis-server arguments, such as --appendonly yes
	// Wrap, when set, is a command that runs redis-server (its name and
	// arguments come after Wrap's), such as valgrind with its options.
	Wrap  []string
	cmd   *exec.Cmd
	dumps int // callgrind's profiles dumped so far (see Instructions)
}

// NewServer prepares a server on a free port; Start starts it.
func NewServer(args ...string) (*Server, error) {
	if _, e := exec.LookPath("redis-server"); e != nil {
		return nil, fmt.Errorf("redis-server is not installed (apt-get install redis-server), and FSMC_TEST_REDIS_URL is not set")
	}
	port, e := FreePort()
	if e != nil {
		return nil, e
	}
	dir, e := os.MkdirTemp("", "fsmc-redis-")
	if e != nil {
		return nil, e
	}
	return &Server{Port: port, Dir: dir, Args: args}, nil
}

// FreePort is a local TCP port nothing listens on now, for a server to
// take.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Own prepares a server of the test's own (NewServer), killed and its
// directory removed when the test ends; without redis-server the test
// skips, or fails under FSMC_REQUIRE_REDIS=1. Start starts it.
func Own(t testing.TB, args ...string) *Server {
	t.Helper()
	srv, err := NewServer(args...)
	if err != nil {
		if os.Getenv("FSMC_REQUIRE_REDIS") == "1" {
			t.Fatalf("Redis is required (FSMC_REQUIRE_REDIS=1): %v", err)
		}
		t.Skip(err)
	}
	t.Cleanup(func() {
		srv.Kill()
		os.RemoveAll(srv.Dir)
	})
	return srv
}

// Replicated starts a master and a replica of it, both the test's own
// (Own); the replica takes no writes.
func Replicated(t testing.TB) (master, replica *Server) {
	t.Helper()
	master = Own(t, "--repl-diskless-sync-delay", "0") // a replica syncs at once
	if err := master.Start(); err != nil {
		t.Fatal(err)
	}
	replica = Own(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.Port))
	if err := replica.Start(); err != nil {
		t.Fatal(err)
	}
	return master, replica
}

// URL is the server's address.
func (s *Server) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.Port) }

// Start starts the server and waits until it answers.
func (s *Server) Start() error {
	args := append([]string{"--port", strconv.Itoa(s.Port), "--bind", "127.0.0.1", "--save", "", "--dir", s.Dir}, s.Args...)
	if !hasArg(s.Args, "--appendonly") {
		args = append(args, "--appendonly", "no")
	}
	args = append([]string{"redis-server"}, args...)
	if len(s.Wrap) > 0 {
		args = append(slices.Clone(s.Wrap), args...)
	}
	s.cmd = exec.Command(args[0], args[1:]...)
	s.cmd.SysProcAttr = dieWithParent()
	if e := s.cmd.Start(); e != nil {
		return e
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.Port)})
	defer c.Close()
	wait := 10 * time.Second
	if len(s.Wrap) > 0 {
		wait = time.Minute // a server under valgrind starts slowly
	}
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c.Ping(context.Background()).Err() == nil {
			return nil
		}
	}
	return fmt.Errorf("redis-server on port %d did not answer", s.Port)
}

// Pid is the server's process id (Wrap's, when set), or 0 when it is
// not running.
func (s *Server) Pid() int {
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// UnderCallgrind makes Start run the server under valgrind's callgrind,
// counting nothing until Count starts it: Instructions then reports the
// instructions Redis executed, which repeat from run to run where its
// CPU time does not.
func (s *Server) UnderCallgrind() {
	s.Wrap = []string{"valgrind", "--tool=callgrind", "--instr-atstart=no", "--callgrind-out-file=" + filepath.Join(s.Dir, "callgrind.out")}
}

// OwnUnderCallgrind starts a server of t's own UnderCallgrind (see Own)
// and returns it with a client of it; without valgrind, t skips.
func OwnUnderCallgrind(t testing.TB) (*Server, *redis.Client) {
	t.Helper()
	if _, err := exec.LookPath("valgrind"); err != nil {
		t.Skip("counting Redis's instructions needs valgrind (apt-get install valgrind)")
	}
	srv := Own(t)
	srv.UnderCallgrind()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", srv.Port)})
	t.Cleanup(func() { c.Close() })
	return srv, c
}

// Count starts counting the instructions of a server UnderCallgrind.
func (s *Server) Count() error { return s.callgrindControl("-i", "on") }

// Instructions stops counting, and returns the instructions the server
// executed since Count, and callgrind's profile of them (for
// callgrind_annotate).
func (s *Server) Instructions() (float64, []byte, error) {
	if err := s.callgrindControl("-i", "off"); err != nil {
		return 0, nil, err
	}
	if err := s.callgrindControl("-d"); err != nil {
		return 0, nil, err
	}
	s.dumps++ // callgrind numbers its dumps from 1
	path := filepath.Join(s.Dir, "callgrind.out."+strconv.Itoa(s.dumps))
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "totals: "); ok {
			f, err := strconv.ParseFloat(strings.Fields(v)[0], 64)
			if err != nil {
				return 0, nil, fmt.Errorf("%s: %v", path, err)
			}
			return f, b, nil
		}
	}
	return 0, nil, fmt.Errorf("%s holds no totals", path)
}

// callgrindControl sends a command to the callgrind that runs the server.
func (s *Server) callgrindControl(args ...string) error {
	args = append(args, strconv.Itoa(s.Pid()))
	if out, err := exec.Command("callgrind_control", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("callgrind_control %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

// Kill stops the server abruptly (SIGKILL).
func (s *Server) Kill() {
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		s.cmd = nil
	}
}

func hasArg(args []string, name string) bool {
	for _, a := range args {
		if a == name {
			return true
		}
	}
	return false
}

var databases sync.Mutex
var nextDB = 1

// FreshDatabase returns the URL of one of the test Redis's databases
// 1-15, emptied, for a test that uses fixed key names.
func FreshDatabase() (string, error) {
	base, e := Available()
	if e != nil {
		return "", e
	}
	databases.Lock()
	db := nextDB
	nextDB = nextDB%15 + 1
	databases.Unlock()
	u := base[:len(base)-len("/0")] + "/" + strconv.Itoa(db)
	opts, e := redis.ParseURL(u)
	if e != nil {
		return "", e
	}
	c := redis.NewClient(opts)
	defer c.Close()
	return u, c.FlushDB(context.Background()).Err()
}

// Cluster starts a Redis Cluster of three masters on free ports, each
// given args besides the cluster's own, and returns their addresses; it
// is stopped when t ends. Without redis-server and redis-cli it skips
// (fails under FSMC_REQUIRE_REDIS=1).
func Cluster(t testing.TB, args ...string) []string {
	skip := func(format string, args ...any) {
		if os.Getenv("FSMC_REQUIRE_REDIS") == "1" {
			t.Fatalf("Redis Cluster is required (FSMC_REQUIRE_REDIS=1): "+format, args...)
		}
		t.Skipf(format, args...)
	}
	if _, e := exec.LookPath("redis-cli"); e != nil {
		skip("redis-cli is not installed")
	}
	var addrs []string
	for i := 0; i < 3; i++ {
		srv, e := NewServer(append([]string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"}, args...)...)
		if e != nil {
			skip("%v", e)
		}
		if e := srv.Start(); e != nil {
			t.Fatal(e)
		}
		t.Cleanup(srv.Kill)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", srv.Port))
	}
	create := append([]string{"--cluster", "create"}, addrs...)
	create = append(create, "--cluster-replicas", "0", "--cluster-yes")
	if out, e := exec.Command("redis-cli", create...).CombinedOutput(); e != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", e, out)
	}
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs})
	defer c.Close()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		info, e := c.ClusterInfo(context.Background()).Result()
		if e == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the cluster did not become ready: %v %s", e, info)
		}
	}
	return addrs
}

// Sentinel starts a redis-server in Sentinel mode on a free port watching
// the master at masterAddr under the name master, waits until it knows
// the master, and returns its address; it is stopped when t ends.
func Sentinel(t testing.TB, master, masterAddr string) string {
	srv, e := NewServer()
	if e != nil {
		t.Fatal(e)
	}
	host, port, _ := strings.Cut(masterAddr, ":")
	conf := filepath.Join(srv.Dir, "sentinel.conf")
	body := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s %s %s 1\n", srv.Port, srv.Dir, master, host, port)
	if e := os.WriteFile(conf, []byte(body), 0o644); e != nil {
		t.Fatal(e)
	}
	cmd := exec.Command("redis-server", conf, "--sentinel")
	if e := cmd.Start(); e != nil {
		t.Fatal(e)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); os.RemoveAll(srv.Dir) })
	addr := fmt.Sprintf("127.0.0.1:%d", srv.Port)
	c := redis.NewSentinelClient(&redis.Options{Addr: addr})
	defer c.Close()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got, e := c.GetMasterAddrByName(context.Background(), master).Result()
		if e == nil && len(got) == 2 && got[0]+":"+got[1] == masterAddr {
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Sentinel on %s does not know master %s: %v %v", addr, master, got, e)
		}
	}
}
