//go:build !unix

package graphvizcache

import "os"

// ownedByOther: only Unix systems share one temporary directory this way.
func ownedByOther(os.FileInfo) bool { return false }
