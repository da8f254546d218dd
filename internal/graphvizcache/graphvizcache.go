// Package graphvizcache keeps go-graphviz's start-up from failing on a
// machine shared by several users, or on a damaged cache.
//
// The pinned go-graphviz compiles its WebAssembly when the program
// starts, whatever the command, and caches the result in
// $TMPDIR/go-graphviz; the cache's contents are private to the user who
// made it, and for any other user the compile panics. This package's
// init runs before go-graphviz's (Go initializes packages in import path
// order where dependencies allow, and this one needs only the standard
// library): when the shared directory is not the user's, it points
// TMPDIR for this process at a directory of the user's own, and Restore,
// called once go-graphviz has started, puts TMPDIR back as it was, so
// that the commands fsmc runs see the environment they were given.
// Before go-graphviz reads the cache, init also removes the compiled
// modules in it that are damaged (dropDamaged), which go-graphviz would
// panic on.
package graphvizcache

import (
	"os"
	"path/filepath"
	"strconv"
)

var (
	moved       bool   // TMPDIR was changed
	original    string // and its value before
	hadOriginal bool
)

func init() {
	if !usable(filepath.Join(os.TempDir(), "go-graphviz")) {
		dir := ownDir()
		if dir == "" {
			return
		}
		original, hadOriginal = os.LookupEnv("TMPDIR")
		if os.Setenv("TMPDIR", dir) != nil {
			return
		}
		moved = true
	}
	dropDamaged(filepath.Join(os.TempDir(), "go-graphviz"))
}

// Restore puts TMPDIR back as the process was given it.
func Restore() {
	if !moved {
		return
	}
	moved = false
	if hadOriginal {
		os.Setenv("TMPDIR", original)
	} else {
		os.Unsetenv("TMPDIR")
	}
}

// usable reports whether go-graphviz can keep its cache in dir: it does
// not exist yet (go-graphviz makes it), or it is a directory (not a link)
// of this user's.
func usable(dir string) bool {
	fi, err := os.Lstat(dir)
	if os.IsNotExist(err) {
		return true
	}
	return err == nil && fi.IsDir() && !ownedByOther(fi)
}

// ownDir returns a directory of this user's to stand for TMPDIR: under
// the user's cache directory, or else one named for the user in the
// temporary directory; "" if neither can be had.
func ownDir() string {
	var candidates []string
	if cache, err := os.UserCacheDir(); err == nil {
		candidates = append(candidates, filepath.Join(cache, "fsmc"))
	}
	candidates = append(candidates, filepath.Join(os.TempDir(), "fsmc-"+strconv.Itoa(os.Getuid())))
	for _, dir := range candidates {
		if os.MkdirAll(dir, 0o700) == nil && usable(dir) && usable(filepath.Join(dir, "go-graphviz")) {
			return dir
		}
	}
	return ""
}
