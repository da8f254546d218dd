package cli

import (
	"bytes"
	"fmt"
	"io"
	"os"

	"github.com/fsmc/fsmc/dsl"
	"github.com/urfave/cli/v2"
)

func fmtCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "fmt",
		Usage:     "format .fsm files canonically",
		ArgsUsage: "[PATH...]",
		Description: "Without -w, -l or --check the formatted source goes to stdout. With no PATH\n" +
			"(or PATH -) it formats stdin. A file with syntax errors is left untouched.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "w", Usage: "rewrite files in place"},
			&cli.BoolFlag{Name: "l", Usage: "list files whose formatting differs"},
			&cli.BoolFlag{Name: "check", Usage: "exit 1 if any file's formatting differs, and list them (with -w, rewrite them too)"},
		},
		Action: func(c *cli.Context) error {
			batchGC()
			f := &formatRun{env: e, write: c.Bool("w"), list: c.Bool("l") || c.Bool("check"), report: &dsl.Report{Sources: map[string][]byte{}}}
			f.quiet = f.write || f.list
			args := c.Args().Slice()
			if len(args) == 0 || len(args) == 1 && args[0] == "-" {
				if f.write {
					return usageError("fsmc fmt: -w needs files to rewrite, not stdin")
				}
				src, err := io.ReadAll(e.stdin)
				if err != nil {
					return usageError("fsmc fmt: reading stdin: %v", err)
				}
				f.file(stdinName, src, 0)
			} else {
				files, errs := fsmFiles(args)
				for _, err := range errs {
					f.fail(err)
				}
				for _, file := range files {
					src, err := os.ReadFile(file)
					if err != nil {
						f.fail(err)
						continue
					}
					info, _ := os.Stat(file)
					f.file(file, src, info.Mode().Perm())
				}
			}
			if len(f.report.Diagnostics) > 0 {
				if err := dsl.WriteText(e.stderr, f.report, isTerminal(e.stderr)); err != nil {
					return err
				}
			}
			switch {
			case f.unreadable:
				return exit(ExitUsage)
			case len(f.report.Diagnostics) > 0, c.Bool("check") && f.differ:
				return exit(ExitFound)
			}
			return nil
		},
	}
}

// formatRun is one fmt invocation over several files.
type formatRun struct {
	*env
	write, list, quiet bool
	differ, unreadable bool
	report             *dsl.Report
}

func (f *formatRun) fail(err error) {
	fmt.Fprintf(f.stderr, "fsmc fmt: %v\n", err)
	f.unreadable = true
}

func (f *formatRun) file(name string, src []byte, perm os.FileMode) {
	out, diags := dsl.Format(name, src)
	if diags != nil {
		f.report.Sources[name] = src
		f.report.Diagnostics = append(f.report.Diagnostics, diags...)
		return
	}
	changed := !bytes.Equal(src, out)
	if changed {
		f.differ = true
		if f.list {
			fmt.Fprintln(f.stdout, name)
		}
		if f.write {
			if err := writeFileAtomic(name, out, perm); err != nil {
				f.fail(fmt.Errorf("cannot write %s: %w", name, pathCause(err)))
			}
		}
	}
	if !f.quiet {
		f.stdout.Write(out)
	}
}
