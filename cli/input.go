package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/fsmc/fsmc/compiler"
	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/fsmc/fsmc/dsl"
)

// loadMachines reads a .fsm file (checked and compiled on the fly) or an
// IR .json file (validated). Diagnostics are printed to stderr; the error
// it returns carries the exit status.
func (e *env) loadMachines(command, path string) (*ir.File, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, usageError("fsmc %s: %v", command, err)
	}
	if strings.HasSuffix(path, ".json") {
		f, err := ir.Load(src)
		if err != nil {
			return nil, &exitError{code: ExitFound, msg: fmt.Sprintf("%s: %v", path, err)}
		}
		return f, nil
	}
	f, diags, err := compiler.CompileSource(path, src)
	if diags.HasErrors() {
		report := &dsl.Report{Diagnostics: diags, Sources: map[string][]byte{path: src}}
		dsl.WriteText(e.stderr, report, isTerminal(e.stderr))
		return nil, exit(ExitFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return f, nil
}

// stdinName is how fmt and check name a source read from stdin (PATH
// "-") in what they report.
const stdinName = "<stdin>"

// writeOutput writes data, made from the file source, to path, or to
// stdout when path is "" or "-". It never writes over source.
func (e *env) writeOutput(command, source, path string, data []byte) error {
	switch fd := descriptorOf(path); fd {
	case -1:
	case 1:
		_, err := e.stdout.Write(data)
		return err
	case 2:
		_, err := e.stderr.Write(data)
		return err
	default:
		f := os.NewFile(uintptr(fd), path)
		if _, err := f.Write(data); err != nil {
			// Not a descriptor fsmc was given to write to: it is left
			// alone (it may be one of the Go runtime's own).
			return usageError("fsmc %s: cannot write %s: %v", command, path, pathCause(err))
		}
		f.Close() // this process's copy: the file stays open where it was opened
		return nil
	}
	if in, err := os.Stat(source); err == nil {
		if out, err := os.Stat(path); err == nil && os.SameFile(in, out) {
			return usageError("fsmc %s: -o %s is the input file; not writing over it", command, path)
		}
	}
	if os.IsPathSeparator(path[len(path)-1]) {
		return usageError("fsmc %s: -o %s names a directory; want a file", command, path)
	}
	// The directory made is the one the file lands in: a link's
	// target's, when path is a link to a file not there yet.
	target, err := followLinks(path)
	if err != nil {
		return usageError("fsmc %s: cannot write %s: %v", command, path, pathCause(err))
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return usageError("fsmc %s: cannot write %s: %v", command, path, pathCause(err))
	}
	if err := writeFileAtomic(target, data, 0o644); err != nil {
		return usageError("fsmc %s: cannot write %s: %v", command, path, pathCause(err))
	}
	return nil
}

// descriptorOf returns the file descriptor that path names: 1 for ""
// and "-" (the standard output), n for /dev/fd/n and /proc/self/fd/n,
// 1 and 2 for /dev/stdout and /dev/stderr; -1 for any other path. Such
// a descriptor is written as it is, not opened again by name: a file
// the shell opened to append to (>>) would be written from its start,
// and one behind a pipe cannot be replaced.
func descriptorOf(path string) int {
	if path == "" || path == "-" {
		return 1
	}
	switch path = filepath.Clean(path); path {
	case "/dev/stdout":
		return 1
	case "/dev/stderr":
		return 2
	}
	for _, dir := range []string{"/dev/fd/", "/proc/self/fd/"} {
		if n, err := strconv.Atoi(strings.TrimPrefix(path, dir)); err == nil && strings.HasPrefix(path, dir) && n >= 0 {
			return n
		}
	}
	return -1
}

// pathCause is the cause of a file operation's error, without the path
// it names (the temporary file an atomic write made, say).
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// writeFileAtomic replaces path (the file it points to, if it is a
// symbolic link, even one to a file not there yet) with data through a
// temporary file in the same directory, so a crash leaves the old or the
// new file, never a half-written one. The new file keeps the old one's
// mode (perm is a new file's), and its owner where the system lets it.
// A path that is not a regular file (a device such as /dev/null, a
// pipe) is written to, not replaced; so is a file with other hard links
// (which would keep the old text), and one in a directory where no
// temporary file can be made. A file that exists is replaced only if it
// may be written: the rename alone would replace a read-only file too.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	// os.Stat follows links as the system does, where followLinks
	// cannot: /dev/fd/3 may lead to "pipe:[N]", which is no file name.
	old, err := os.Stat(path)
	exists := err == nil
	if exists {
		if old.IsDir() {
			return &fs.PathError{Op: "write", Path: path, Err: syscall.EISDIR}
		}
		if !old.Mode().IsRegular() {
			return writeThrough(path, data)
		}
		// Opening for writing (without truncating) asks the system
		// whether this user may write the file.
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return err
		}
		f.Close()
		if _, _, links := ownerOf(old); links > 1 {
			return rewrite(path, data)
		}
	}
	path, err = followLinks(path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if errors.Is(err, fs.ErrPermission) && exists {
		return rewrite(path, data) // writable, as checked above
	}
	if err != nil {
		// The file may be there and writable: say which file failed.
		return fmt.Errorf("making a temporary file in %s to replace it: %v", filepath.Dir(path), pathCause(err))
	}
	defer os.Remove(tmp.Name())
	defer removeOnSignal(tmp.Name())()
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if exists {
		perm = old.Mode().Perm()
		if uid, gid, _ := ownerOf(old); uid >= 0 {
			_ = tmp.Chown(uid, gid) // only the superuser may give a file away
		}
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// rewrite writes data over the file at path in place, keeping the file
// itself (its links, owner and mode); a crash may leave it half written.
func rewrite(path string, data []byte) error { return writeOpen(path, os.O_TRUNC, data) }

// writeThrough writes data to path, a device or a pipe, which cannot be
// replaced.
func writeThrough(path string, data []byte) error { return writeOpen(path, 0, data) }

// writeOpen opens path for writing, with flags, and writes data.
func writeOpen(path string, flags int, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|flags, 0)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// removeOnSignal removes path if SIGINT or SIGTERM comes before the
// returned stop is called, then ends the process as that signal would
// have (see dieBy): a write that a signal cuts short leaves no temporary
// file behind. Once the signal is taken, stop waits for the end, so the
// interrupted write reports nothing.
func removeOnSignal(path string) (stop func()) {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-signals:
			mu.Lock()
			defer mu.Unlock()
			os.Remove(path)
			dieBy(sig)
		case <-done:
		}
	}()
	return func() {
		signal.Stop(signals)
		close(done)
		mu.Lock()
		mu.Unlock()
	}
}

// dieBy ends the process with the status a shell gives one killed by
// sig (128 + its number: 130 for SIGINT, 143 for SIGTERM). A variable,
// for the test.
var dieBy = func(sig os.Signal) {
	n := 15
	if s, ok := sig.(syscall.Signal); ok {
		n = int(s)
	}
	os.Exit(128 + n)
}

// followLinks follows path while it is a symbolic link, to the file it
// names in the end, which need not exist.
func followLinks(path string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		target, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = target
	}
	return "", &fs.PathError{Op: "write", Path: path, Err: syscall.ELOOP}
}
