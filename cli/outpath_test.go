//go:build unix

package cli

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOutputPaths: -o writes what a path names without replacing what
// is not a regular file, follows a link to a file not there yet, and
// refuses to write over its input or onto a directory.
func TestOutputPaths(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "order.fsm")
	data, err := os.ReadFile("../examples/order.fsm")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, data, 0o644); err != nil {
		t.Fatal(err)
	}
	compile := func(out string) (int, string) {
		var stdout, stderr strings.Builder
		code := Main([]string{"fsmc", "compile", "-o", out, src}, strings.NewReader(""), &stdout, &stderr)
		return code, stderr.String()
	}

	t.Run("existing file keeps its mode", func(t *testing.T) {
		out := filepath.Join(dir, "private.json")
		if err := os.WriteFile(out, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if code, stderr := compile(out); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
			t.Fatalf("%v %v", fi.Mode(), err)
		}
	})

	t.Run("named pipe", func(t *testing.T) {
		fifo := filepath.Join(dir, "pipe")
		if err := syscall.Mkfifo(fifo, 0o644); err != nil {
			t.Fatal(err)
		}
		read := make(chan string, 1)
		go func() {
			f, err := os.Open(fifo)
			if err != nil {
				read <- err.Error()
				return
			}
			defer f.Close()
			b, _ := io.ReadAll(f)
			read <- string(b)
		}()
		if code, stderr := compile(fifo); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		select {
		case got := <-read:
			if !strings.Contains(got, `"Order"`) {
				t.Fatalf("the reader got %.200q", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the pipe's reader got nothing")
		}
		if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Fatalf("the pipe was replaced: %v %v", fi.Mode(), err)
		}
	})

	t.Run("link to a file not there yet", func(t *testing.T) {
		link := filepath.Join(dir, "link.json")
		if err := os.Symlink("target.json", link); err != nil {
			t.Fatal(err)
		}
		if code, stderr := compile(link); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Fatalf("the link was replaced: %v %v", fi.Mode(), err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "target.json")); err != nil || !strings.Contains(string(b), "Order") {
			t.Fatalf("the link's target: %.100q %v", b, err)
		}
	})

	t.Run("link into a directory not there yet", func(t *testing.T) {
		link := filepath.Join(dir, "gen.json")
		if err := os.Symlink(filepath.Join("gen", "out", "order.json"), link); err != nil {
			t.Fatal(err)
		}
		if code, stderr := compile(link); code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "gen", "out", "order.json")); err != nil || !strings.Contains(string(b), "Order") {
			t.Fatalf("the link's target: %.100q %v", b, err)
		}
	})

	t.Run("the input", func(t *testing.T) {
		code, stderr := compile(src)
		if code != ExitUsage || !strings.Contains(stderr, "is the input file; not writing over it") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if b, _ := os.ReadFile(src); string(b) != string(data) {
			t.Fatal("the input was overwritten")
		}
	})

	// A file in a directory where no temporary file can be made (a
	// file of /proc, which root may open for writing): the message says
	// what failed, not that the file is missing.
	t.Run("no temporary file beside it", func(t *testing.T) {
		if _, err := os.Stat("/proc/version"); err != nil {
			t.Skip("no /proc/version here")
		}
		code, stderr := compile("/proc/version")
		if code != ExitUsage {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(stderr, "making a temporary file in /proc to replace it") && !strings.Contains(stderr, "permission denied") {
			t.Fatalf("the message does not say what failed: %s", stderr)
		}
	})

	t.Run("a path ending in a slash", func(t *testing.T) {
		out := filepath.Join(dir, "sub") + "/"
		code, stderr := compile(out)
		if code != ExitUsage || !strings.Contains(stderr, "-o "+out+" names a directory; want a file") {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Fatalf("%s was made: %v", out, err)
		}
	})

	t.Run("a directory", func(t *testing.T) {
		for _, out := range []string{dir, "."} { // "." is no name for the standard output
			code, stderr := compile(out)
			if code != ExitUsage || !strings.Contains(stderr, "cannot write "+out+": is a directory") {
				t.Fatalf("-o %s: exit %d: %s", out, code, stderr)
			}
		}
	})
}
