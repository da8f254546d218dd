//go:build unix

package runtime

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// TestReadPipeAfterTheDeadline: output already in the pipe when the
// deadline passed (its reader was scheduled late on a busy host) is read
// all the same, and reading ends once a look finds nothing more, though
// a writer (a child that escaped the command's group) holds the pipe
// open.
func TestReadPipeAfterTheDeadline(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	want := `{"event": "Ok"}` + strings.Repeat(" ", 40<<10) // less than a pipe holds
	if _, err := w.WriteString(want); err != nil {
		t.Fatal(err)
	}
	if err := r.SetReadDeadline(time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	start := time.Now()
	readPipe(&got, r)
	if got.String() != want {
		t.Errorf("read %d bytes of the %d in the pipe", got.Len(), len(want))
	}
	if took := time.Since(start); took > drainCap {
		t.Errorf("reading went on for %v with nothing more to read", took)
	}
}
