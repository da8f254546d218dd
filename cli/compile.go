package cli

import (
	"github.com/urfave/cli/v2"
)

func compileCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "compile",
		Usage:     "compile a .fsm file to the transition-table IR (JSON)",
		ArgsUsage: "FILE",
		Description: "The IR is byte-identical for the same input and carries a sha256 hash of its\n" +
			"canonical form. A file with errors compiles to nothing: diagnostics as in check, exit 1.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "emit", Value: "ir", Usage: "what to emit: ir"},
			&cli.StringFlag{Name: "o", Usage: "write to `PATH` instead of stdout"},
			&cli.StringFlag{Name: "package", Usage: "Go package name (with --emit go)"},
			&cli.BoolFlag{Name: "stubs", Usage: "also write a handler skeleton (with --emit go)"},
		},
		Action: func(c *cli.Context) error {
			batchGC()
			if c.NArg() != 1 {
				return usageError("fsmc compile: want one FILE (usage: fsmc compile [--emit ir] [-o PATH] FILE)")
			}
			switch c.String("emit") {
			case "ir":
			case "go":
				return usageError("fsmc compile: --emit go is not available in this version of fsmc; --emit ir is")
			default:
				return usageError("fsmc compile: unknown --emit %q (want ir or go)", c.String("emit"))
			}
			f, err := e.loadMachines(c.Args().First())
			if err != nil {
				return err
			}
			data, err := f.Encode()
			if err != nil {
				return err
			}
			return e.writeOutput(c.String("o"), data)
		},
	}
}
