package graphvizcache

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
)

// dropDamaged removes from go-graphviz's cache in dir the compiled
// modules that wazero could not read back: a file cut short (a crash
// or a full disk while it was copied, say) or whose code fails its
// checksum. go-graphviz panics on such a file when the program starts,
// whatever the command; without it, wazero compiles the module again
// and caches it anew. wazero writes each file whole and renames it into
// place, so a file being written is never seen here.
func dropDamaged(dir string) {
	version := wazeroVersion()
	files, _ := filepath.Glob(filepath.Join(dir, "wazero-"+version+"-"+runtime.GOARCH+"-"+runtime.GOOS, "*"))
	for _, f := range files {
		if !strings.HasSuffix(f, ".tmp") && !intact(f, version) {
			os.Remove(f)
		}
	}
}

// wazeroVersion is the version wazero names its cache by, found as
// wazero finds it (its internal/version): the version of the module
// required, else the main module's, else "dev".
func wazeroVersion() string {
	missing := func(v string) bool { return v == "" || v == "(devel)" }
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	version := ""
	for _, dep := range info.Deps {
		if strings.Contains(dep.Path, "github.com/tetratelabs/wazero") {
			version = dep.Version
		}
	}
	if missing(version) {
		version = info.Main.Version
	}
	if missing(version) {
		return "dev"
	}
	return version
}

// wazeroMagic begins every compiled module wazero caches.
var wazeroMagic = []byte("WAZEVO")

// intact reports whether the file at path reads back as wazero's
// compiled module does (wazero's engine_cache.go, v1.9): its header, one
// offset per function, the code with its CRC-32C, and the source map.
// A file of another wazero version is intact here: wazero discards it
// itself.
func intact(path, version string) bool {
	f, err := os.Open(path)
	if err != nil {
		return true // wazero sees what we see: not ours to judge
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	header := make([]byte, len(wazeroMagic)+1)
	if _, err := io.ReadFull(r, header); err != nil || !bytes.Equal(header[:len(wazeroMagic)], wazeroMagic) {
		return false
	}
	cached := make([]byte, header[len(wazeroMagic)])
	if _, err := io.ReadFull(r, cached); err != nil {
		return false
	}
	if string(cached) != version {
		return true
	}
	var n uint32
	if binary.Read(r, binary.LittleEndian, &n) != nil || skip(r, 8*int64(n)) != nil {
		return false
	}
	var size uint64
	if binary.Read(r, binary.LittleEndian, &size) != nil {
		return false
	}
	if size > 0 {
		sum := crc32.New(crc32.MakeTable(crc32.Castagnoli))
		if _, err := io.CopyN(sum, r, int64(size)); err != nil {
			return false
		}
		var want uint32
		if binary.Read(r, binary.LittleEndian, &want) != nil || sum.Sum32() != want {
			return false
		}
	}
	present, err := r.ReadByte()
	if err != nil {
		return false
	}
	if present == 1 {
		var entries uint64
		if binary.Read(r, binary.LittleEndian, &entries) != nil || entries > 1<<40 || skip(r, 16*int64(entries)) != nil {
			return false
		}
	}
	return true
}

// skip reads past n bytes of r, failing if it ends first.
func skip(r io.Reader, n int64) error {
	_, err := io.CopyN(io.Discard, r, n)
	return err
}
