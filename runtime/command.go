package runtime

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// CommandHandler runs an external command for each attempt (runtime.md
// "External commands"): argv directly, never through a shell, with the
// call as one JSON object on stdin. On exit 0 its stdout is the result:
// empty for none, or {"event": "Paid", "payload": {...}}. A non-zero
// exit, bad JSON or the task's timeout (which kills the command and its
// children) is a failed attempt, and so is {"error": "..."} on stdout,
// a permanent one with "permanent": true. The end of stderr is kept in
// the message of any failure.
func CommandHandler(argv []string) Handler {
	return func(ctx context.Context, call *Call) (Result, error) {
		input, err := json.Marshal(commandInput{
			Machine: call.Machine, Instance: call.Instance, State: call.State, Action: call.Action,
			Context: call.Context.Map(), Attempt: call.Attempt, IdempotencyKey: call.IdempotencyKey,
			Deadline: call.Deadline.UTC().Format(time.RFC3339Nano),
		})
		if err != nil {
			return Result{}, err
		}
		out, runErr := runCommand(ctx, argv, input)
		note := out.stderrNote()
		fail := func(format string, args ...any) error {
			return fmt.Errorf("%s: %s%s", argv[0], fmt.Sprintf(format, args...), note)
		}
		switch {
		case ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded):
			return Result{}, fail("killed")
		case ctx.Err() != nil:
			return Result{}, fail("stopped")
		case runErr != nil && out.started:
			// It ran and failed; what it printed may say why, and
			// whether to stop retrying.
			msg, permanent := runErr.Error(), false
			if res, err := parseOutput(out.stdout.Bytes()); err == nil && res.failed {
				msg, permanent = cmp.Or(res.err, msg), res.permanent
			}
			if permanent {
				return Result{}, Permanent(fail("%s", msg))
			}
			return Result{}, fail("%s", msg)
		case runErr != nil:
			return Result{}, fail("%v", runErr)
		case out.stdout.over:
			return Result{}, fail("output is over %d bytes, the most a result may be", outputLimit)
		}
		res, err := parseOutput(out.stdout.Bytes())
		switch {
		case err != nil:
			return Result{}, fail("%v", err)
		case res.permanent:
			return Result{}, Permanent(fail("%s", cmp.Or(res.err, "permanent failure")))
		case res.failed:
			return Result{}, fail("%s", cmp.Or(res.err, "failed (its error is empty)"))
		}
		return Result{Event: res.event, Payload: res.payload, note: note}, nil
	}
}

// Limits on what a command's output may fill: a result over outputLimit
// bytes fails the attempt, and of stderr the last stderrKept bytes go
// into a failure's message. The rest is read and dropped, so a chatty
// command neither blocks nor fills memory. After the command exits,
// more output is waited for drainAfterExit at most (a child that escaped
// its process group may hold the pipes open), and for drainCap in all
// while it keeps coming (see readPipe).
const (
	outputLimit    = 1 << 20
	stderrKept     = 500
	drainAfterExit = 100 * time.Millisecond
	drainCap       = time.Second
)

// commandOutput is what a command wrote.
type commandOutput struct {
	started bool
	stdout  headBuffer
	stderr  tailBuffer
}

// runCommand runs argv with input on stdin until it exits or ctx ends
// (which kills it and its process group). When the command exits, what
// it left running in its group is killed too: an attempt ends with its
// command.
func runCommand(ctx context.Context, argv []string, input []byte) (*commandOutput, error) {
	out := &commandOutput{stdout: headBuffer{limit: outputLimit}, stderr: tailBuffer{keep: stderrKept}}
	outR, outW, err := os.Pipe()
	if err != nil {
		return out, err
	}
	defer outR.Close()
	errR, errW, err := os.Pipe()
	if err != nil {
		outW.Close()
		return out, err
	}
	defer errR.Close()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = bytes.NewReader(input)
	cmd.Stdout, cmd.Stderr = outW, errW
	cmd.WaitDelay = drainAfterExit // for stdin, should a child hold it unread
	ownGroup(cmd)
	err = cmd.Start()
	outW.Close()
	errW.Close()
	if err != nil {
		return out, err
	}
	out.started = true
	var reading sync.WaitGroup
	reading.Add(2)
	go func() { defer reading.Done(); readPipe(&out.stdout, outR) }()
	go func() { defer reading.Done(); readPipe(&out.stderr, errR) }()
	err = cmd.Wait()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil // it exited 0; only its stdin was still open
	}
	killLeftovers(cmd)
	_ = outR.SetReadDeadline(time.Now().Add(drainAfterExit))
	_ = errR.SetReadDeadline(time.Now().Add(drainAfterExit))
	reading.Wait()
	return out, err
}

// readPipe copies r to dst until r ends. Once the command has exited,
// runCommand sets r's deadline: it bounds the wait for more output, not
// the reading of what is already in the pipe, which a reader scheduled
// late on a busy host would otherwise lose (a command that exited 0
// having written its event would be taken for one that wrote none).
// So a read stopped by the deadline looks again, for drainAfterExit, and
// reading ends when a look finds nothing, or drainCap after the first
// deadline passed.
func readPipe(dst io.Writer, r *os.File) {
	buf := make([]byte, 32<<10)
	var first time.Time // when the deadline first stopped a read
	looked := false     // the last look found nothing yet
	for {
		n, err := r.Read(buf)
		_, _ = dst.Write(buf[:n])
		if n > 0 {
			looked = false
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, os.ErrDeadlineExceeded) || looked {
			return // the end of the pipe, or a look that found nothing
		}
		if first.IsZero() {
			first = time.Now()
		} else if time.Since(first) > drainCap {
			return
		}
		looked = true
		_ = r.SetReadDeadline(time.Now().Add(drainAfterExit))
	}
}

// stderrNote is the end of stderr, quoted onto one line, for a
// failure's message ("" when there was none).
func (o *commandOutput) stderrNote() string {
	s := strings.TrimSpace(o.stderr.String())
	if s == "" {
		return ""
	}
	if o.stderr.cut {
		s = "…" + s
	}
	return "; stderr: " + strconv.Quote(s)
}

// headBuffer keeps the first limit bytes written to it and notes
// whether more came.
type headBuffer struct {
	buf   []byte
	limit int
	over  bool
}

func (b *headBuffer) Write(p []byte) (int, error) {
	n := min(len(p), b.limit-len(b.buf))
	b.buf = append(b.buf, p[:n]...)
	b.over = b.over || n < len(p)
	return len(p), nil
}

func (b *headBuffer) Bytes() []byte { return b.buf }

// tailBuffer keeps the last keep bytes written to it (from the start of
// a character) and notes whether any were cut.
type tailBuffer struct {
	buf  []byte
	keep int
	cut  bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.keep; over > 0 {
		for over < len(b.buf) && !utf8.RuneStart(b.buf[over]) {
			over++
		}
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.cut = true
	}
	return len(p), nil
}

func (b *tailBuffer) String() string { return string(b.buf) }

// commandResult is a command's stdout, read by parseOutput.
type commandResult struct {
	event     string
	payload   map[string]any
	err       string
	permanent bool
	failed    bool // it has "error" (even an empty one) or "permanent": true
}

// parseOutput reads a command's stdout: nothing, or one JSON object
// with exactly the fields "event" and "payload", or "error" and
// "permanent" (names as written: JSON's usual decoding would take
// "EVENT" too).
func parseOutput(out []byte) (commandResult, error) {
	var res commandResult
	out = bytes.TrimSpace(out)
	if len(out) == 0 {
		return res, nil
	}
	fields, err := DecodeObject(out)
	if err != nil {
		return res, fmt.Errorf("output is not {\"event\": ..., \"payload\": {...}}: %v: %s", err, strconv.Quote(truncate(string(out), 200)))
	}
	for name, v := range fields {
		ok := true
		switch name {
		case "event":
			res.event, ok = v.(string)
		case "payload":
			if v != nil {
				res.payload, ok = v.(map[string]any)
			}
		case "error":
			res.err, ok = v.(string)
		case "permanent":
			res.permanent, ok = v.(bool)
		default:
			return res, fmt.Errorf("output has field %q; it may have event and payload, or error and permanent", name)
		}
		if !ok {
			return res, fmt.Errorf("output field %q is %s, want %s", name, describe(v), map[string]string{"event": "a string", "payload": "an object", "error": "a string", "permanent": "true or false"}[name])
		}
	}
	_, hasEvent := fields["event"]
	_, hasErr := fields["error"]
	_, hasPermanent := fields["permanent"]
	switch {
	case hasEvent && hasErr:
		return res, fmt.Errorf("output has both an event and an error")
	case hasEvent && hasPermanent:
		return res, fmt.Errorf("output has an event and permanent, which goes with an error")
	case hasEvent && res.event == "":
		return res, fmt.Errorf("output's event is empty: leave it out for none")
	case res.payload != nil && !hasEvent:
		return res, fmt.Errorf("output has a payload but no event")
	case hasPermanent && !hasErr && !res.permanent:
		return res, fmt.Errorf("output has permanent but no error")
	}
	res.failed = hasErr || res.permanent
	return res, nil
}

type commandInput struct {
	Machine        string         `json:"machine"`
	Instance       string         `json:"instance"`
	State          string         `json:"state"`
	Action         string         `json:"action"`
	Context        map[string]any `json:"context"`
	Attempt        int            `json:"attempt"`
	IdempotencyKey string         `json:"idempotency_key"`
	Deadline       string         `json:"deadline"`
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// SplitCommand splits a command line into argv: words separated by
// spaces, with '...' and "..." quoting and \ escaping; no shell is
// involved.
func SplitCommand(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord := false
	var quote rune
	escaped := false
	for _, r := range line {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\' && quote != '\'':
			escaped = true
			inWord = true
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote = r
			inWord = true
		case r == ' ' || r == '\t':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 || escaped {
		return nil, errors.New("unterminated quote or escape")
	}
	if inWord {
		args = append(args, cur.String())
	}
	if len(args) == 0 {
		return nil, errors.New("empty command")
	}
	return args, nil
}
