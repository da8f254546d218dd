//go:build unix

package runtime_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fsmc/fsmc/runtime"
)

// command writes a shell script into a temporary directory and returns
// the handler that runs it.
func command(t *testing.T, body string) (runtime.Handler, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "action")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return runtime.CommandHandler([]string{path}), dir
}

func callCommand(t *testing.T, h runtime.Handler, timeout time.Duration) (runtime.Result, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return h(ctx, &runtime.Call{Machine: "M", Instance: "i1", State: "Work", Action: "A", Attempt: 1, IdempotencyKey: "i1/1"})
}

// A command that succeeds but leaves a child running in the background
// (holding stdout) still succeeds, and the child is killed: an attempt
// ends with its command.
func TestCommandBackgroundChild(t *testing.T) {
	h, dir := command(t, `cat >/dev/null
sleep 1000 &
echo $! > "$(dirname "$0")/child.pid"
echo '{"event": "Ok", "payload": {"n": 1}}'`)
	r, err := callCommand(t, h, time.Minute)
	if err != nil {
		t.Fatalf("the command succeeded, but the attempt failed: %v", err)
	}
	if r.Event != "Ok" || r.Payload["n"] == nil {
		t.Errorf("result %+v, want Ok with n", r)
	}
	b, err := os.ReadFile(filepath.Join(dir, "child.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if alive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("the command's background child %d is still running", pid)
	}
}

// alive reports whether process pid runs (a zombie waiting for its
// reaper does not). A killed process is gone after a moment.
func alive(pid int) bool {
	for range 50 {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil || strings.Contains(string(b), ") Z ") {
			return false
		}
		if syscall.Kill(pid, 0) != nil {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

func TestCommandOutcomes(t *testing.T) {
	for _, tc := range []struct {
		name, script string
		event        string
		permanent    bool
		want         []string // in the error; none: success
		dontWant     []string
	}{
		{name: "no output", script: "cat >/dev/null"},
		{name: "event", script: `echo '{"event": "Ok"}'`, event: "Ok"},
		{name: "bad JSON keeps stderr", script: "echo nope; echo 'why it failed' >&2",
			want: []string{`output is not {"event"`, `"nope"`, `stderr: "why it failed"`}},
		{name: "field names are exact", script: `echo '{"EVENT": "Ok"}'`,
			want: []string{`output has field "EVENT"`}},
		{name: "wrong field type", script: `echo '{"event": 3}'`,
			want: []string{`output field "event" is number 3, want a string`}},
		{name: "error on exit 0", script: `echo '{"error": "card closed", "permanent": true}'`,
			permanent: true, want: []string{"card closed"}},
		{name: "error without permanent", script: `echo '{"error": "busy"}'; exit 1`,
			want: []string{"busy"}},
		{name: "permanent with no message", script: `echo '{"error": "", "permanent": true}'; exit 1`,
			permanent: true, want: []string{"exit status 1"}},
		{name: "permanent alone on exit 0", script: `echo '{"permanent": true}'`,
			permanent: true, want: []string{"permanent failure"}},
		// An output that says nothing clear is not taken for success.
		{name: "empty error on exit 0", script: `echo '{"error": ""}'`,
			want: []string{"failed (its error is empty)"}},
		{name: "payload without an event", script: `echo '{"payload": {"a": 1}}'`,
			want: []string{"output has a payload but no event"}},
		{name: "empty event", script: `echo '{"event": ""}'`,
			want: []string{"output's event is empty"}},
		{name: "permanent false alone", script: `echo '{"permanent": false}'`,
			want: []string{"output has permanent but no error"}},
		{name: "event with permanent", script: `echo '{"event": "Ok", "permanent": false}'`,
			want: []string{"output has an event and permanent, which goes with an error"}, dontWant: []string{"an event and an error"}},
		{name: "payload field given twice", script: `echo '{"event": "Ok", "payload": {"v": 1, "v": 2}}'`,
			want: []string{`field "payload.v" is given twice`}},
		{name: "null payload without an event", script: `echo '{"payload": null}'`},
		{name: "exit status and stderr", script: "echo 'card network down' >&2; exit 3",
			want: []string{`exit status 3; stderr: "card network down"`}},
		{name: "stderr on one line", script: "printf 'one\\ntwo\\n' >&2; exit 2",
			want: []string{`stderr: "one\ntwo"`}},
		// Only the end of a long stderr is kept, and stdout past the
		// limit is refused: neither is held whole.
		{name: "long stderr", script: "i=0; while [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); done >&2; exit 1",
			want: []string{`stderr: "…`, `line 1999"`}, dontWant: []string{"line 1000\\n"}},
		{name: "output over the limit", script: "head -c 2000000 /dev/zero | tr '\\0' a",
			want: []string{"output is over 1048576 bytes"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := command(t, tc.script)
			r, err := callCommand(t, h, time.Minute)
			if len(tc.want) == 0 {
				if err != nil || r.Event != tc.event {
					t.Fatalf("got %+v, %v; want event %q", r, err, tc.event)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %+v, want an error", r)
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("message spans lines: %q", msg)
			}
			for _, w := range append(tc.want, "/action: ") {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q lacks %q", msg, w)
				}
			}
			for _, w := range tc.dontWant {
				if strings.Contains(msg, w) {
					t.Errorf("message %q has %q", msg, w)
				}
			}
			if runtime.IsPermanent(err) != tc.permanent {
				t.Errorf("permanent = %v, want %v", runtime.IsPermanent(err), tc.permanent)
			}
		})
	}
}

// A command killed at its deadline says so, with what it wrote on stderr,
// even when a child that left its process group holds the pipes open.
func TestCommandKilledAtDeadline(t *testing.T) {
	h, dir := command(t, `echo 'connecting' >&2
setsid sleep 1000 &
echo $! > "$(dirname "$0")/escaped.pid"
sleep 1000`)
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "escaped.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	_, err := callCommand(t, h, 300*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), `/action: killed; stderr: "connecting"`) {
		t.Fatalf("got %v, want killed, with stderr", err)
	}
}
