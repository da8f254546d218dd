package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/internal/irtest"
	"github.com/fsmc/fsmc/internal/redistest"
	"github.com/fsmc/fsmc/runtime"
	"github.com/fsmc/fsmc/runtime/redisstore"
	"github.com/urfave/cli/v2"
)

// TestStartEach: a refused ID is named and the rest still start (exit
// 1); a lost connection stops at once (exit 2) and names the IDs that
// may not have started.
func TestStartEach(t *testing.T) {
	var stderr bytes.Buffer
	c := cli.NewContext(&cli.App{ErrWriter: &stderr}, nil, nil)
	c.Command = &cli.Command{Name: "start"}
	lost := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset")}
	cases := []struct {
		name     string
		fail     map[string]error
		code     int
		started  string
		messages []string
	}{
		{"all", nil, 0, "a b c d", nil},
		{"taken", map[string]error{"b": runtime.ErrExists}, ExitFound, "a c d",
			[]string{`instance "b" already exists`, "1 of 4 instances not started"}},
		{"lost", map[string]error{"c": lost}, ExitUsage, "a b",
			[]string{"started 2 of 4; not known to be started: c d", "connection reset"}},
		// Redis closing the connection is a lost reply too.
		{"closed", map[string]error{"b": fmt.Errorf("start b: %w", io.EOF)}, ExitUsage, "a",
			[]string{"started 1 of 4; not known to be started: b c d", "the change may have been made"}},
		{"bad context", map[string]error{"c": errors.New(`field "n": want int`)}, ExitFound, "a b d",
			[]string{`fsmc start: c: field "n": want int`}},
		// Redis out of memory is no fault of the input: exit 2, as for
		// an unreachable Redis.
		{"out of memory", map[string]error{"b": redisAnswer("OOM command not allowed when used memory > 'maxmemory'.")}, ExitUsage, "a",
			[]string{"started 1 of 4; not known to be started: b c d", "Redis cannot serve it now: b: OOM"}},
	}
	for _, tc := range cases {
		stderr.Reset()
		var started []string
		err := startEach(c, []string{"a", "b", "c", "d"}, func(id string) error {
			if err := tc.fail[id]; err != nil {
				return err
			}
			started = append(started, id)
			return nil
		})
		code := 0
		var exit *exitError
		if errors.As(err, &exit) {
			code = exit.code
			stderr.WriteString(exit.msg)
		} else if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if code != tc.code || strings.Join(started, " ") != tc.started {
			t.Errorf("%s: exit %d, started %v; want %d, %s", tc.name, code, started, tc.code, tc.started)
		}
		for _, m := range tc.messages {
			if !strings.Contains(stderr.String(), m) {
				t.Errorf("%s: stderr %q lacks %q", tc.name, stderr.String(), m)
			}
		}
	}
}

// TestNothingStarted: a connection lost before start writes anything
// (finding or registering the machine) says that nothing was started,
// not that the change may have been made; other errors are refused's.
func TestNothingStarted(t *testing.T) {
	c := cli.NewContext(&cli.App{}, nil, nil)
	c.Command = &cli.Command{Name: "start"}
	var exit *exitError
	err := nothingStarted(c, fmt.Errorf("loading: %w", io.EOF))
	if !errors.As(err, &exit) || exit.code != ExitUsage || exit.msg != "fsmc start: Redis: loading: EOF; nothing was started" {
		t.Fatalf("lost connection: %#v", err)
	}
	err = nothingStarted(c, errors.New(`no machine named "Park"`))
	if !errors.As(err, &exit) || exit.code != ExitFound || strings.Contains(exit.msg, "nothing was started") {
		t.Fatalf("not found: %#v", err)
	}
}

// redisAnswer is an error Redis answered with (go-redis's Error).
type redisAnswer string

func (e redisAnswer) Error() string { return string(e) }
func (redisAnswer) RedisError()     {}

// TestStartVersion: `start` uses the version of a machine registered
// first most recently, even after an older worker registers its version
// again; NAME@ID starts a given version, and an unknown one is refused;
// ls, send and watch name versions.
func TestStartVersion(t *testing.T) {
	ctx := context.Background()
	v1 := irtest.Compile(t, "v1.fsm", []byte(irtest.Toggle)).Machines[0]
	v2 := irtest.Compile(t, "v2.fsm", []byte(strings.Replace(irtest.Toggle, "event Flip", "event Flip\n    event Flop", 1))).Machines[0]
	d := newDeployment(t, v1, v2, v1) // v1's worker restarts last
	var stdout string
	fsmc := func(args ...string) (code int, stderr string) {
		code, stdout, stderr = d.fsmc(args...)
		return code, stderr
	}
	v1ID := ir.ShortHash(v1.Hash)
	for _, tc := range []struct {
		machine, id string
		hash        string
	}{
		{"Toggle", "new", v2.Hash},
		{"Toggle@" + v1ID, "old", v1.Hash},
		{"Toggle@" + v2.Hash, "full", v2.Hash},
	} {
		if code, stderr := fsmc("start", tc.machine, tc.id); code != 0 {
			t.Fatalf("start %s %s: exit %d: %s", tc.machine, tc.id, code, stderr)
		}
		v, err := d.engine.Get(ctx, tc.id)
		if err != nil || v.Hash != tc.hash {
			t.Errorf("start %s %s: instance of %v (%v), want %s", tc.machine, tc.id, v.Hash, err, tc.hash)
		}
	}
	if code, stderr := fsmc("start", "Toggle@000000000000", "x"); code != 1 || !strings.Contains(stderr, "no version 000000000000 of machine Toggle is registered") {
		t.Errorf("start of an unknown version: exit %d: %s", code, stderr)
	}
	if code, stderr := fsmc("start", "Other@"+v1ID, "x"); code != 1 || !strings.Contains(stderr, "no version "+v1ID+" of machine Other") {
		t.Errorf("start of another machine's version: exit %d: %s", code, stderr)
	}
	// An ID is the hash's first 12 hex digits or all of them: the first
	// 12 followed by anything else name no version.
	for _, id := range []string{v1ID + "zz", v1ID + "0", strings.ToUpper(v1ID), v1ID[:11]} {
		if code, stderr := fsmc("start", "Toggle@"+id, "x"); code != 1 || !strings.Contains(stderr, "no version "+id+" of machine Toggle") {
			t.Errorf("start Toggle@%s: exit %d: %s", id, code, stderr)
		}
		if code, stderr := fsmc("ls", "--machine", "Toggle@"+id); code != 1 || !strings.Contains(stderr, "no version "+id+" of machine Toggle") {
			t.Errorf("ls --machine Toggle@%s: exit %d: %s", id, code, stderr)
		}
	}
	// ls names the version of an instance that is not of the latest, and
	// lists one version's instances with --machine NAME@ID.
	if code, stderr := fsmc("ls"); code != 0 || !regexp.MustCompile(`(?m)^old +Toggle@`+v1ID+` `).MatchString(stdout) ||
		!regexp.MustCompile(`(?m)^new +Toggle `).MatchString(stdout) {
		t.Errorf("ls: exit %d: %s%s", code, stdout, stderr)
	}
	if code, stderr := fsmc("ls", "--machine", "Toggle@"+v1ID); code != 0 || strings.Count(stdout, "\n") != 2 || !strings.Contains(stdout, "old ") {
		t.Errorf("ls --machine Toggle@%s: exit %d: %s%s", v1ID, code, stdout, stderr)
	}
	// send of an event only the latest version has names the instance's
	// version, which lacks it.
	if code, stderr := fsmc("send", "old", "Flop"); code != 1 || !strings.Contains(stderr,
		`machine Toggle@`+v1ID+`, the instance's version, has no event "Flop" (new instances start Toggle@`+ir.ShortHash(v2.Hash)+`)`) {
		t.Errorf("send old Flop: exit %d: %s", code, stderr)
	}
	if code, stderr := fsmc("send", "new", "Flop"); code != 0 {
		t.Errorf("send new Flop: exit %d: %s", code, stderr)
	}
	// watch takes NAME@ID too: the first change it prints is old's, not
	// new's (started before it). It stops when a second change cannot be
	// written.
	if code, stderr := fsmc("start", "Toggle@"+v1ID, "old2"); code != 0 {
		t.Fatalf("start old2: exit %d: %s", code, stderr)
	}
	var first firstLine
	var stderr bytes.Buffer
	if code := Main(d.args("watch", "--since", "start", "--machine", "Toggle@"+v1ID), strings.NewReader(""), &first, &stderr); code != ExitUsage || !strings.HasPrefix(first.line, "old Toggle ") {
		t.Errorf("watch --machine Toggle@%s: exit %d, first line %q: %s", v1ID, code, first.line, stderr.String())
	}
}

// TestListStateOfVersion: ls --state takes a state of any version the
// filter covers, whether or not an instance is in it, and refuses one
// that none of them has, whatever the other filters match.
func TestListStateOfVersion(t *testing.T) {
	ctx := context.Background()
	v1 := irtest.Compile(t, "v1.fsm", []byte(irtest.Toggle)).Machines[0]
	v2 := irtest.Compile(t, "v2.fsm", []byte(strings.ReplaceAll(irtest.Toggle, "On", "Lit"))).Machines[0]
	d := newDeployment(t, v1, v2)
	e, fsmc := d.engine, d.fsmc
	v1ID, v2ID := ir.ShortHash(v1.Hash), ir.ShortHash(v2.Hash)
	if code, _, stderr := fsmc("start", "Toggle@"+v1ID, "a1"); code != 0 {
		t.Fatalf("start: exit %d: %s", code, stderr)
	}
	// a1 goes to On, where it waits.
	runCtx, stop := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- runtime.New(d.store, runtime.Options{}).Run(runCtx, 1) }()
	if err := e.Send(ctx, "a1", "Flip", nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if v, err := e.Get(ctx, "a1"); err == nil && v.StateName == "On" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("a1 did not reach On: %+v %v", v, err)
		}
	}
	stop()
	<-ran
	for _, tc := range []struct {
		args   []string
		code   int
		output string // a line of stdout, or the message on stderr
	}{
		{[]string{"--machine", "Toggle@" + v1ID, "--state", "On"}, 0, "a1"},
		{[]string{"--machine", "Toggle@" + v1ID, "--state", "On", "--status", "failed"}, 0, ""},
		{[]string{"--machine", "Toggle", "--state", "On", "--status", "failed"}, 0, ""},
		{[]string{"--state", "On", "--status", "failed"}, 0, ""},
		{[]string{"--machine", "Toggle", "--state", "Lit"}, 0, ""},
		{[]string{"--machine", "Toggle@" + v1ID, "--state", "Lit"}, 1, `machine Toggle@` + v1ID + ` has no state "Lit" (its states: Off, On)`},
		{[]string{"--machine", "Toggle@" + v2ID, "--state", "On"}, 1, `machine Toggle@` + v2ID + ` has no state "On" (its states: Off, Lit)`},
		{[]string{"--machine", "Toggle", "--state", "Dim"}, 1, `no version of machine Toggle has a state "Dim" (their states: Off, Lit, On)`},
		{[]string{"--state", "Dim", "--status", "failed"}, 1, `no registered machine has a state "Dim"`},
	} {
		code, stdout, stderr := fsmc(append([]string{"ls"}, tc.args...)...)
		out := stdout + stderr
		if code != tc.code || !strings.Contains(out, tc.output) || tc.output == "" && strings.Count(stdout, "\n") != 1 {
			t.Errorf("ls %s: exit %d\n%s\nwant exit %d and %q", strings.Join(tc.args, " "), code, out, tc.code, tc.output)
		}
	}
}

// TestWatchWithoutAVersion: watch leaves out the changes of a version
// the registry lost, saying so once, and goes on with the others' (it
// failed on the first such change); ls leaves out its instances, saying
// how many.
func TestWatchWithoutAVersion(t *testing.T) {
	ctx := context.Background()
	lost := irtest.Compile(t, "toggle.fsm", []byte(irtest.Toggle)).Machines[0]
	kept := irtest.Compile(t, "order.fsm", []byte(irtest.OneStep)).Machines[0]
	d := newDeployment(t, lost, kept)
	for _, start := range [][2]string{{lost.Name, "t1"}, {kept.Name, "k1"}, {lost.Name, "t2"}, {kept.Name, "k2"}} {
		if code, _, stderr := d.fsmc("start", start[0], start[1]); code != 0 {
			t.Fatalf("start %s %s: exit %d: %s", start[0], start[1], code, stderr)
		}
	}
	if err := redistest.Client(t).Del(ctx, d.prefix+":machine:"+ir.ShortHash(lost.Hash)).Err(); err != nil {
		t.Fatal(err)
	}
	var first firstLine
	var stderr bytes.Buffer
	if code := Main(d.args("watch", "--since", "start"), strings.NewReader(""), &first, &stderr); code != ExitUsage || !strings.HasPrefix(first.line, "k1 OneStep ") {
		t.Errorf("watch: exit %d, first line %q: %s", code, first.line, stderr.String())
	}
	notice := "changes of machine version " + ir.ShortHash(lost.Hash) + " left out"
	if n := strings.Count(stderr.String(), notice); n != 1 {
		t.Errorf("watch said %d times %q:\n%s", n, notice, stderr.String())
	}
	// ls leaves the instances out, and says so as its other messages.
	want := regexp.MustCompile(`^fsmc ls: instances left out of the list: .* \(machine_id=` + ir.ShortHash(lost.Hash) + `, instances=2\)\n$`)
	if code, stdout, stderr := d.fsmc("ls"); code != 0 || !want.MatchString(stderr) || strings.Contains(stdout, "t1") {
		t.Errorf("ls: exit %d: %s%s", code, stdout, stderr)
	}
}

// A deployment is a fresh prefix of the test Redis with machine
// versions registered, for fsmc's commands to run against.
type deployment struct {
	t      *testing.T
	prefix string
	store  *redisstore.Store
	engine *runtime.Engine // an operator's: it registered nothing
}

// newDeployment registers machines in order, each as a worker of its
// own would.
func newDeployment(t *testing.T, machines ...*ir.Machine) *deployment {
	t.Helper()
	prefix := fmt.Sprintf("%s%d", strings.ToLower(t.Name()), time.Now().UnixNano())
	store := redisstore.New(redistest.Client(t), redisstore.Options{Prefix: prefix})
	for _, m := range machines {
		if err := runtime.New(store, runtime.Options{}).Register(context.Background(), m, nil); err != nil {
			t.Fatal(err)
		}
	}
	return &deployment{t: t, prefix: prefix, store: store, engine: runtime.New(store, runtime.Options{})}
}

// args is the command line of fsmc command with args, on d.
func (d *deployment) args(command string, args ...string) []string {
	return append([]string{"fsmc", command, "--redis", redistest.URL(d.t), "--prefix", d.prefix}, args...)
}

// fsmc runs command args[0] with args[1:] on d.
func (d *deployment) fsmc(args ...string) (code int, stdout, stderr string) {
	var out, errs bytes.Buffer
	code = Main(d.args(args[0], args[1:]...), strings.NewReader(""), &out, &errs)
	return code, out.String(), errs.String()
}

// firstLine keeps the first write, and refuses the others.
type firstLine struct{ line string }

func (w *firstLine) Write(p []byte) (int, error) {
	if w.line != "" {
		return 0, errors.New("one line is enough")
	}
	w.line = string(p)
	return len(p), nil
}

// TestBusyMaySucceedLater: a retry or cancel that cannot take the
// instance's lock (a worker holds it), or whose every write found the
// instance changed, exits 2, like an outage, not 1: it names the
// instance and says to try again.
func TestBusyMaySucceedLater(t *testing.T) {
	set := flag.NewFlagSet("cancel", flag.ContinueOnError)
	if err := set.Parse([]string{"o1"}); err != nil {
		t.Fatal(err)
	}
	c := cli.NewContext(&cli.App{}, set, nil)
	c.Command = &cli.Command{Name: "cancel"}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("instance o1 is %w", redisstore.ErrBusy), "fsmc cancel: instance o1 is busy"},
		{runtime.ErrStale, "fsmc cancel: instance o1 kept changing"},
	} {
		err := refused(c, tc.err)
		var exit *exitError
		if !errors.As(err, &exit) || exit.code != ExitUsage || !strings.Contains(exit.msg, tc.want) || !strings.Contains(exit.msg, "try again") {
			t.Errorf("%v: %v; want exit %d, %q, saying to try again", tc.err, err, ExitUsage, tc.want)
		}
	}
}
