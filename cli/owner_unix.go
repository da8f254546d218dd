//go:build unix

package cli

import (
	"io/fs"
	"syscall"
)

// ownerOf returns the owner of the file fi describes and its number of
// hard links.
func ownerOf(fi fs.FileInfo) (uid, gid, links int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid), int(st.Nlink)
	}
	return -1, -1, 1
}
