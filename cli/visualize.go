package cli

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"

	"github.com/fsmc/fsmc/compiler"
	"github.com/fsmc/fsmc/compiler/dot"
	"github.com/fsmc/fsmc/compiler/mermaid"
	"github.com/urfave/cli/v2"
)

// formatByExtension maps -o file extensions to formats.
var formatByExtension = map[string]string{
	".dot": "dot", ".gv": "dot", ".svg": "svg", ".png": "png", ".mmd": "mermaid", ".mermaid": "mermaid",
}

func visualizeCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "visualize",
		Aliases:   []string{"viz"},
		Usage:     "draw machines as DOT, SVG, PNG or Mermaid",
		ArgsUsage: "FILE",
		Description: "FILE is a .fsm file or compiled IR (.json). The format comes from --format, else\n" +
			"from the -o extension (.dot .gv .svg .png .mmd .mermaid), else DOT (to stdout, or to an\n" +
			"-o PATH without an extension, such as /dev/stdout).\n" +
			"SVG and PNG are rendered in-process; no Graphviz installation is needed.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Usage: "dot, svg, png or mermaid"},
			&cli.StringFlag{Name: "o", Usage: "write to `PATH` instead of stdout"},
			&cli.StringFlag{Name: "machine", Usage: "draw only the machine called `NAME`"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageError("fsmc visualize: want one FILE (usage: fsmc visualize [--format F] [-o PATH] [--machine NAME] FILE)")
			}
			out := c.String("o")
			format := c.String("format")
			if format == "" {
				format = formatByExtension[strings.ToLower(filepath.Ext(out))]
			}
			if format == "" {
				// A path with no extension (-o /dev/stdout, -o graph)
				// leaves the choice to the default, DOT; an extension fsmc
				// does not know (.gif) is a mistake, not DOT.
				if ext := filepath.Ext(out); ext != "" {
					return usageError("fsmc visualize: cannot tell the format from %q (%s); give --format dot, svg, png or mermaid", out, ext)
				}
				format = "dot"
			}
			switch format {
			case "dot", "svg", "png", "mermaid":
			default:
				return usageError("fsmc visualize: unknown format %q (want dot, svg, png or mermaid)", format)
			}
			if format == "png" && (out == "" || out == "-") && terminal(e.stdout) {
				return usageError("fsmc visualize: not writing PNG to a terminal; use -o FILE.png")
			}
			f, err := e.loadMachines("visualize", c.Args().First())
			if err != nil {
				return err
			}
			machines, err := compiler.Select(f, c.String("machine"))
			if err != nil {
				return usageError("fsmc visualize: %v", err)
			}
			states, edges := dot.States(machines), dot.Edges(machines)
			if (states > dot.MaxRenderStates || edges > dot.MaxRenderEdges) && (format == "svg" || format == "png") {
				return usageError("fsmc visualize: %d states and %d transitions and timers are too many to lay out as %s in reasonable time (at most %d states and %d transitions and timers); use --format dot (for Graphviz's own dot, or another viewer) or --format mermaid, or --machine to draw one machine",
					states, edges, format, dot.MaxRenderStates, dot.MaxRenderEdges)
			}
			var buf bytes.Buffer
			if format == "mermaid" {
				err = mermaid.Write(&buf, machines)
			} else {
				err = dot.Write(&buf, machines)
			}
			if err != nil {
				return err
			}
			data := buf.Bytes()
			if format == "svg" || format == "png" {
				if data, err = dot.Render(context.Background(), data, format); err != nil {
					return err
				}
			}
			return e.writeOutput("visualize", c.Args().First(), out, data)
		},
	}
}
