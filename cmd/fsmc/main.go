// Command fsmc is the fsm language's compiler, linter, formatter and
// runner. All of it lives in package cli; this file only runs it as the
// process (cli.Process: the arguments, the streams, a closed output
// pipe) and exits with the status it returns.
package main

import (
	"os"

	"github.com/fsmc/fsmc/cli"
)

func main() {
	os.Exit(cli.Process())
}
