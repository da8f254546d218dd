// Command gen writes a generated machine (see package fsmgen) to stdout,
// for timing the real binary: go run ./internal/fsmgen/gen 10000 > big.fsm
package main

import (
	"fmt"
	"os"
	"strconv"

	"github.com/fsmc/fsmc/internal/fsmgen"
)

func main() {
	states := 10000
	if len(os.Args) > 1 {
		n, err := strconv.Atoi(os.Args[1])
		if err != nil || n < 2 {
			fmt.Fprintln(os.Stderr, "usage: gen [STATES]  (at least 2)")
			os.Exit(2)
		}
		states = n
	}
	os.Stdout.Write(fsmgen.Machine(states))
}
