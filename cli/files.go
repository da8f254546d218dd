package cli

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
)

// fsmFiles expands paths into files: a file stays as given; a directory
// is searched recursively for *.fsm files (hidden directories skipped),
// in lexical order; one found there that is not a regular file is an
// error. Paths that cannot be read, and directories with no
// .fsm files (a mistyped path in CI would otherwise pass), are returned
// as errors.
func fsmFiles(paths []string) (files []string, errs []error) {
	// A file named twice (a.fsm and ./a.fsm, or a file and its
	// directory) is read once, so that it is reported once.
	seen := map[string]bool{}
	add := func(path string) {
		key, err := filepath.Abs(path)
		if err != nil {
			key = filepath.Clean(path)
		}
		if !seen[key] {
			seen[key] = true
			files = append(files, path)
		}
	}
	for _, p := range paths {
		if p == "" {
			errs = append(errs, errors.New("an empty path was given"))
			continue
		}
		info, err := os.Stat(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !info.IsDir() {
			add(p)
			continue
		}
		found := false
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, err)
				return nil
			}
			if d.IsDir() {
				if path != p && strings.HasPrefix(d.Name(), ".") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(d.Name(), ".fsm") {
				return nil
			}
			found = true
			// A named pipe or device found by the search would block
			// the read, or never end; a path given as such is read. The
			// walk knows each entry's type; a link is followed.
			mode := d.Type()
			if mode&fs.ModeSymlink != 0 {
				info, err := os.Stat(path)
				if err != nil { // dangling: the read reports it
					add(path)
					return nil
				}
				mode = info.Mode()
			}
			if !mode.IsRegular() {
				errs = append(errs, &pathError{path, "not a regular file"})
				return nil
			}
			add(path)
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		} else if !found {
			errs = append(errs, &pathError{p, "no .fsm files in this directory"})
		}
	}
	return files, errs
}

// pathError is a problem with a path given or found, which names it
// (check's machine-read formats report the path apart).
type pathError struct{ path, problem string }

func (e *pathError) Error() string { return e.path + ": " + e.problem }

// pathOf is the path err names, or "".
func pathOf(err error) string {
	var pe *fs.PathError
	var found *pathError
	switch {
	case errors.As(err, &pe):
		return pe.Path
	case errors.As(err, &found):
		return found.path
	}
	return ""
}

// batchGC trades memory for speed in the short-lived front-end commands
// (check, fmt): parsing allocates many small objects that all live until
// the command ends, so collecting half as often saves about a fifth of
// the run time on large files. An explicit GOGC in the environment wins.
func batchGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(200)
	}
}
