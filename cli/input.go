package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

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

// writeOutput writes data to path, or to stdout when path is "" or "-".
func (e *env) writeOutput(command, path string, data []byte) error {
	if path == "" || path == "-" {
		_, err := e.stdout.Write(data)
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return usageError("fsmc %s: cannot write %s: %v", command, path, pathCause(err))
	}
	if err := writeFileAtomic(path, data, 0o644); err != nil {
		return usageError("fsmc %s: cannot write %s: %v", command, path, pathCause(err))
	}
	return nil
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
