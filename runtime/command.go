package runtime

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
	"unicode/utf8"
)

// CommandHandler runs an external command for each attempt (runtime.md
// "External commands"): argv directly, never through a shell, with the
// call as one JSON object on stdin. On exit 0 its stdout is the result:
// empty for none, or {"event": "Paid", "payload": {...}}. A non-zero
// exit, bad JSON or the task's timeout (which kills the command and its
// children) is a failed attempt; stderr is kept in the message,
// truncated. A command that exits non-zero printing
// {"error": "...", "permanent": true} fails for good.
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
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Stdin = bytes.NewReader(input)
		var stdout, stderr bytes.Buffer
		cmd.Stdout = &stdout
		cmd.Stderr = &stderr
		killGroup(cmd)
		cmd.WaitDelay = time.Second
		runErr := cmd.Run()
		if ctx.Err() != nil {
			return Result{}, fmt.Errorf("%s: %w%s", argv[0], ctx.Err(), stderrNote(&stderr))
		}
		if runErr != nil {
			var out commandError
			if json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out) == nil && out.Error != "" {
				err := fmt.Errorf("%s: %s%s", argv[0], out.Error, stderrNote(&stderr))
				if out.Permanent {
					err = Permanent(err)
				}
				return Result{}, err
			}
			return Result{}, fmt.Errorf("%s: %v%s", argv[0], runErr, stderrNote(&stderr))
		}
		out := bytes.TrimSpace(stdout.Bytes())
		if len(out) == 0 {
			return Result{}, nil
		}
		if err := jsonText(out); err != nil {
			return Result{}, fmt.Errorf("%s: output: %v", argv[0], err)
		}
		var res commandOutput
		dec := json.NewDecoder(bytes.NewReader(out))
		dec.UseNumber()
		dec.DisallowUnknownFields()
		if err := dec.Decode(&res); err != nil || dec.More() {
			return Result{}, fmt.Errorf("%s: output is not {\"event\": ..., \"payload\": {...}}: %s", argv[0], truncate(string(out), 200))
		}
		if res.Event == "" {
			return Result{}, nil
		}
		return Emit(res.Event, res.Payload), nil
	}
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

type commandOutput struct {
	Event   string         `json:"event"`
	Payload map[string]any `json:"payload"`
}

type commandError struct {
	Error     string `json:"error"`
	Permanent bool   `json:"permanent"`
}

func stderrNote(stderr *bytes.Buffer) string {
	s := strings.TrimSpace(stderr.String())
	if s == "" {
		return ""
	}
	return ": " + truncate(s, 500)
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
