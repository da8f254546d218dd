package graphvizcache

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
)

// dropDamaged removes from go-graphviz's cache in dir the compiled
// modules that wazero could not read back: a file cut short (a crash
// or a full disk while it was copied, say) or whose code fails its
// checksum. go-graphviz panics on such a file when the program starts,
// whatever the command; without it, wazero compiles the module again
// and caches it anew. wazero writes each file whole and renames it into
// place, so a file being written is never seen here.
//
// A module is read through once: the size and modification time of
// those found intact are kept in the cache (checkedName), and a module
// that still has them is not read again at the next start.
func dropDamaged(dir string) {
	version := wazeroVersion()
	cache := filepath.Join(dir, "wazero-"+version+"-"+runtime.GOARCH+"-"+runtime.GOOS)
	entries, err := os.ReadDir(cache)
	if err != nil {
		return
	}
	record := filepath.Join(cache, checkedName)
	checked := readChecked(record)
	intactNow := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		info, err := e.Info()
		if name == checkedName || strings.HasSuffix(name, ".tmp") || err != nil {
			continue
		}
		sig := fmt.Sprintf("%d %d", info.Size(), info.ModTime().UnixNano())
		switch {
		case checked[name] == sig:
		case intact(filepath.Join(cache, name), version):
		default:
			os.Remove(filepath.Join(cache, name))
			continue
		}
		intactNow[name] = sig
	}
	if !maps.Equal(checked, intactNow) {
		writeChecked(record, intactNow)
	}
}

// checkedName is the file, among the modules, that lists those found
// intact: a line per module, its name, size and modification time.
const checkedName = ".fsmc-checked"

func readChecked(path string) map[string]string {
	out := map[string]string{}
	data, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(data), "\n") {
		if name, sig, ok := strings.Cut(line, " "); ok {
			out[name] = sig
		}
	}
	return out
}

// writeChecked replaces the list at path (whole, by a rename, so that
// another fsmc starting at once reads the old list or the new).
func writeChecked(path string, checked map[string]string) {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(checked)) {
		fmt.Fprintf(&b, "%s %s\n", name, checked[name])
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), checkedName+".*.tmp")
	if err != nil {
		return
	}
	_, err = tmp.WriteString(b.String())
	if tmp.Close() != nil || err != nil || os.Rename(tmp.Name(), path) != nil {
		os.Remove(tmp.Name())
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
