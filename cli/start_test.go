package cli

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/fsmc/fsmc/runtime"
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
