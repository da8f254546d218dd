// Command fsmc is the fsm language's compiler, linter, formatter and
// runner. All of it lives in package cli; this file only hands over the
// process's arguments and streams and exits with the status cli returns.
package main

import (
	"os"

	"github.com/fsmc/fsmc/cli"
)

func main() {
	os.Exit(cli.Main(os.Args, os.Stdin, os.Stdout, os.Stderr))
}
