package cli

import "github.com/urfave/cli/v2"

func fmtCommand(e *env) *cli.Command {
	return &cli.Command{Name: "fmt", Usage: "format .fsm files canonically"}
}
