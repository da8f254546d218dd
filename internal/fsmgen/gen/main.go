// Command gen writes a generated machine (see package fsmgen) to stdout,
// for timing the real binary: go run ./internal/fsmgen/gen 10000 > big.fsm,
// or with -dense, one whose every state links to every state (fsmgen.Dense).
package main

import (
	"flag"
	"fmt"
	"os"
	"strconv"

	"github.com/fsmc/fsmc/internal/fsmgen"
)

func main() {
	dense := flag.Bool("dense", false, "link every state to every state")
	flag.Parse()
	states := 10000
	if flag.NArg() > 0 {
		n, err := strconv.Atoi(flag.Arg(0))
		if err != nil || n < 2 {
			fmt.Fprintln(os.Stderr, "usage: gen [-dense] [STATES]  (at least 2)")
			os.Exit(2)
		}
		states = n
	}
	if *dense {
		os.Stdout.Write(fsmgen.Dense(states))
		return
	}
	os.Stdout.Write(fsmgen.Machine(states))
}
