package cli

import (
	"bytes"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal and returns its terminal side, the
// file a program run in a terminal has as stdout.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptm, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { ptm.Close() })
	go func() { _, _ = io.Copy(io.Discard, ptm) }() // what a terminal shows
	if err := unix.IoctlSetPointerInt(int(ptm.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("cannot unlock the pseudo-terminal: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptm.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("cannot name the pseudo-terminal: %v", err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("cannot open the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { pts.Close() })
	return pts
}

// TestNoPNGToATerminal: visualize refuses to write PNG bytes to a
// terminal (Main wraps stdout, and the check must see through that),
// with NO_COLOR set or not; DOT still goes there.
func TestNoPNGToATerminal(t *testing.T) {
	tty := openPTY(t)
	for _, noColor := range []string{"", "1"} {
		t.Setenv("NO_COLOR", noColor)
		var stderr bytes.Buffer
		code := Main([]string{"fsmc", "visualize", "--format", "png", "../examples/order.fsm"}, nil, tty, &stderr)
		if code != ExitUsage || !strings.Contains(stderr.String(), "not writing PNG to a terminal") {
			t.Errorf("NO_COLOR=%q: exit %d, stderr %q; want exit %d and a refusal", noColor, code, stderr.String(), ExitUsage)
		}
	}
	var stderr bytes.Buffer
	if code := Main([]string{"fsmc", "visualize", "../examples/order.fsm"}, nil, tty, &stderr); code != 0 {
		t.Errorf("DOT to a terminal: exit %d, stderr %q", code, stderr.String())
	}
}
