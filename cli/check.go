package cli

import (
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/fsmc/fsmc/dsl"
	"github.com/urfave/cli/v2"
)

func checkCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "check",
		Aliases:   []string{"lint"},
		Usage:     "check .fsm files and report every problem",
		ArgsUsage: "PATH...",
		Description: "PATH is a file, a directory (searched recursively for *.fsm), or - for stdin.\n" +
			"Exit status: 0 clean, 1 errors (or warnings with --strict), 2 unreadable input.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Value: "text", Usage: "output format: text (stderr), json, sarif or github (stdout)"},
			&cli.BoolFlag{Name: "strict", Usage: "treat warnings as errors"},
		},
		Action: func(c *cli.Context) error {
			batchGC()
			format := c.String("format")
			if !slices.Contains(dsl.Formats, format) {
				return usageError("fsmc check: unknown format %q (want text, json, sarif or github)", format)
			}
			if c.NArg() == 0 {
				return usageError("fsmc check: no files given (usage: fsmc check [--format F] [--strict] PATH...)")
			}
			// "-" is stdin, reported under stdinName, as fmt does.
			args := slices.DeleteFunc(c.Args().Slice(), func(a string) bool { return a == "-" })
			stdin := len(args) < c.NArg()
			files, errs := fsmFiles(args)
			report := &dsl.Report{Sources: map[string][]byte{}}
			check := func(file string, src []byte) {
				_, diags := dsl.Check(file, src)
				report.Sources[file] = src
				report.Diagnostics = append(report.Diagnostics, diags...)
			}
			if stdin {
				if src, err := io.ReadAll(e.stdin); err != nil {
					errs = append(errs, fmt.Errorf("reading stdin: %w", err))
				} else {
					check(stdinName, src)
				}
			}
			for _, file := range files {
				src, err := os.ReadFile(file)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				check(file, src)
			}
			for _, err := range errs {
				fmt.Fprintf(e.stderr, "fsmc check: %v\n", err)
				report.Unreadable = append(report.Unreadable, dsl.Unreadable{Path: pathOf(err), Message: err.Error()})
			}
			out := e.stdout
			if format == "text" {
				out = e.stderr
			}
			if err := dsl.Write(out, format, report, format == "text" && isTerminal(out), version()); err != nil {
				return err
			}
			errCount, warnCount := report.Diagnostics.Count()
			switch {
			case len(errs) > 0:
				return exit(ExitUsage)
			case errCount > 0 || c.Bool("strict") && warnCount > 0:
				return exit(ExitFound)
			}
			return nil
		},
	}
}
