//go:build unix

package graphvizcache

import (
	"os"
	"syscall"
)

// ownedByOther reports whether another user owns the file (root may use
// anyone's).
func ownedByOther(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	uid := os.Getuid()
	return ok && uid != 0 && int(st.Uid) != uid
}
