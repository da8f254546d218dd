package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/fsmc/fsmc/compiler/gogen"
	"github.com/fsmc/fsmc/compiler/ir"
	"github.com/urfave/cli/v2"
)

func compileCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "compile",
		Usage:     "compile a .fsm file to the transition-table IR (JSON) or to typed Go",
		ArgsUsage: "FILE",
		Description: "FILE is a .fsm file, or IR (.json) to check and turn into Go.\n" +
			"The IR is byte-identical for the same input and carries a sha256 hash of its\n" +
			"canonical form. A file with errors compiles to nothing: diagnostics as in check, exit 1.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "emit", Value: "ir", Usage: "what to emit: ir (JSON) or go (typed Go for the runtime)"},
			&cli.StringFlag{Name: "o", Usage: "write to `PATH` instead of stdout"},
			&cli.StringFlag{Name: "package", Usage: "Go package name (with --emit go)"},
			&cli.BoolFlag{Name: "stubs", Usage: "also write a handler skeleton (with --emit go)"},
		},
		Action: func(c *cli.Context) error {
			batchGC()
			if c.NArg() != 1 {
				return usageError("fsmc compile: want one FILE (usage: fsmc compile [--emit ir|go] [--package NAME] [--stubs] [-o PATH] FILE)")
			}
			emit, out, source := c.String("emit"), c.String("o"), c.Args().First()
			switch emit {
			case "ir", "go":
			default:
				return usageError("fsmc compile: unknown --emit %q (want ir or go)", emit)
			}
			if emit == "ir" && (c.String("package") != "" || c.Bool("stubs")) {
				return usageError("fsmc compile: --package and --stubs go with --emit go")
			}
			if c.Bool("stubs") && descriptorOf(out) >= 0 {
				// A stream (stdout, /dev/fd/N) has no name to put the
				// skeleton's beside.
				return usageError("fsmc compile: --stubs needs -o FILE.go, to know where the skeleton goes")
			}
			if pkg := c.String("package"); pkg != "" && !gogen.IsPackageName(pkg) {
				return usageError("fsmc compile: --package %q is not a Go package name (want an identifier other than a Go keyword, _ or init)", pkg)
			}
			f, err := e.loadMachines("compile", source)
			if err != nil {
				return err
			}
			if emit == "ir" {
				data, err := f.Encode()
				if err != nil {
					return err
				}
				return e.writeOutput("compile", source, out, data)
			}
			pkg := c.String("package")
			if pkg == "" {
				pkg = gogen.PackageName(source)
			}
			code, err := gogen.Generate(f, pkg, filepath.ToSlash(source))
			if err != nil {
				return err
			}
			if err := e.writeOutput("compile", source, out, code); err != nil {
				return err
			}
			if c.Bool("stubs") {
				return e.writeStubs(f, pkg, source, out)
			}
			return nil
		},
	}
}

// writeStubs writes the actions skeleton beside out (order.go ->
// order_actions.go), only if that file does not exist yet.
func (e *env) writeStubs(f *ir.File, pkg, source, out string) error {
	path := strings.TrimSuffix(out, ".go") + "_actions.go"
	if _, err := os.Stat(path); err == nil {
		fmt.Fprintf(e.stderr, "fsmc compile: %s exists; not overwriting it\n", path)
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return usageError("fsmc compile: %v", err)
	}
	code, err := gogen.Stubs(f, pkg)
	if err != nil {
		return err
	}
	return e.writeOutput("compile", source, path, code)
}
