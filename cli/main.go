// Package cli is the fsmc command line: one file per command, each a
// thin layer that reads files, calls the pipeline (grammar -> dsl ->
// compiler -> runtime) and renders the result. Main builds the urfave/cli
// application and maps every outcome to the exit status of cli.md:
// 0 success, 1 input checked and found wrong, 2 usage error or
// unreadable input.
package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"

	"github.com/fsmc/fsmc/runtime"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

// Exit statuses.
const (
	ExitOK    = 0
	ExitFound = 1 // diagnostics, a failed scenario, a refused command
	ExitUsage = 2 // usage error, unreadable file, unreachable Redis
)

// Version is the fsmc version; release builds set it with -ldflags
// "-X github.com/fsmc/fsmc/cli.Version=v1.2.3".
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return "dev"
}

// exitError carries an exit status out of a command; its message, if
// any, has not been printed yet.
type exitError struct {
	code int
	msg  string
}

func (e *exitError) Error() string { return e.msg }

// exit returns an error that makes Main exit with code, printing nothing
// more.
func exit(code int) error { return &exitError{code: code} }

// usageError returns an error that makes Main print msg and exit 2.
func usageError(format string, args ...any) error {
	return &exitError{code: ExitUsage, msg: fmt.Sprintf(format, args...)}
}

// flagName is a flag as Go's flag package names it in its errors: one
// dash and the name, after "defined: ", "argument: ", "for " or "for
// flag " (never inside the quoted value that "invalid value" shows).
var flagName = regexp.MustCompile(`(: |for |flag )-([A-Za-z][A-Za-z0-9-]+)(:|$)`)

// flagMessage is a flag parsing error's message with its long flags
// named as fsmc's help and documents name them (--format, where Go's
// flag package says -format); one-letter flags keep their one dash (-o).
func flagMessage(err error) string {
	return flagName.ReplaceAllString(err.Error(), "$1--$2$3")
}

// env is what commands need from the process.
type env struct {
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	output  *outputWriter // stdout, keeping its first failed write
	command string        // the command run ("ls"), for messages; "" before one is known
}

// outputWriter is stdout as the commands see it. The first write that
// fails (a full disk, a closed pipe) is kept, and every later write
// refused with it, so that Main reports the lost output rather than
// exiting 0, and a command that prints for ever (watch) can stop.
type outputWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
	// handled: the command reported the loss itself and went on (a
	// worker, whose changelog is not its work), so it does not decide
	// the exit status.
	handled bool
}

func (o *outputWriter) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.err != nil {
		return 0, o.err
	}
	n, err := o.w.Write(p)
	if err != nil {
		o.err = err
	}
	return n, err
}

// lost returns the error of the first write that failed, if any.
func (o *outputWriter) lost() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.err
}

// handle marks the loss of the output as reported by the command, which
// went on without it.
func (o *outputWriter) handle() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.handled = true
}

// unreported returns the error of the first write that failed, unless
// the command reported it itself (handle).
func (o *outputWriter) unreported() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.handled {
		return nil
	}
	return o.err
}

// Process runs fsmc as the process: with its arguments and streams. A
// reader of its output that goes away (fsmc ls | head -1) ends it
// quietly, by SIGPIPE, as it ends other Unix tools; run alone goes on
// (see keepOnBrokenPipe).
func Process() int {
	return Main(os.Args, os.Stdin, os.Stdout, os.Stderr)
}

// keepOnBrokenPipe makes a write to a closed pipe fail with EPIPE, where
// Go's runtime would end the process by SIGPIPE on such a write to its
// standard output or error. run takes it: a scenario reports its lost
// output as output that cannot be written (exit 2), as a full disk is;
// a worker reports it and goes on, as its changelog is not its work. (A
// notification, not signal.Ignore: an ignored SIGPIPE would be inherited
// by --exec commands.)
func keepOnBrokenPipe() {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
}

// Main runs fsmc with args (args[0] is the program name) and returns the
// exit status.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	output := &outputWriter{w: stdout}
	e := &env{stdin: stdin, stdout: output, stderr: stderr, output: output}
	code := run(e, args)
	// A command that ended with exitLost, or that ended well but lost
	// output, is reported here; one that gave ExitUsage has said why.
	if err := output.unreported(); err != nil && code != ExitUsage {
		fmt.Fprintf(stderr, "%s: cannot write the output: %v\n", strings.TrimSpace("fsmc "+e.command), err)
		return ExitUsage
	}
	return code
}

// exitLost is run's status for a command that failed with the error of
// its lost output, which Main reports as such.
const exitLost = -1

// run runs the command args name, and returns its exit status.
func run(e *env, args []string) int {
	stderr := e.stderr
	app := &cli.App{
		Name:                 "fsmc",
		Usage:                "check, format, compile, draw and run .fsm state machines",
		Version:              version(),
		Writer:               e.stdout,
		ErrWriter:            stderr,
		HideHelpCommand:      true,
		EnableBashCompletion: false,
		ExitErrHandler:       func(*cli.Context, error) {},
		// A repeated flag's value is taken whole: an --exec command may
		// hold commas (JSON arguments, say).
		DisableSliceFlagSeparator: true,
		Commands: []*cli.Command{
			checkCommand(e),
			fmtCommand(e),
			compileCommand(e),
			visualizeCommand(e),
			runCommand(e),
			startCommand(e),
			sendCommand(e),
			inspectCommand(e),
			lsCommand(e),
			watchCommand(e),
			operatorCommand(e, "retry", "resume a failed instance", (*runtime.Engine).Retry),
			operatorCommand(e, "cancel", "cancel an instance", (*runtime.Engine).Cancel),
		},
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintf(stderr, "fsmc: unknown command %q; see 'fsmc --help'\n", name)
		},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError("fsmc: %s (see 'fsmc --help')", flagMessage(err))
		},
	}
	for _, cmd := range app.Commands {
		cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
			return usageError("fsmc %s: %s (see 'fsmc %s --help')", c.Command.Name, flagMessage(err), c.Command.Name)
		}
	}
	if len(args) < 2 {
		// No command is a usage error: the help goes to stderr.
		app.Writer = stderr
		_ = app.Run([]string{"fsmc", "--help"})
		return ExitUsage
	}
	args = permuteArgs(app, args)
	if c := app.Command(args[1]); c != nil {
		e.command = c.Name
	}
	err := app.Run(args)
	if err == nil {
		if len(args) > 1 && app.Command(args[1]) == nil && !strings.HasPrefix(args[1], "-") {
			return ExitUsage // CommandNotFound has printed the message
		}
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.msg != "" {
			fmt.Fprintln(stderr, ee.msg)
		}
		return ee.code
	}
	if lost := e.output.lost(); lost != nil && errors.Is(err, lost) {
		return exitLost
	}
	fmt.Fprintf(stderr, "fsmc: %v\n", err)
	return ExitUsage
}

// permuteArgs moves a command's flags in front of its arguments, so that
// flags may come before or after them (`fsmc check a.fsm --strict`);
// urfave/cli stops reading flags at the first argument. Everything after
// "--" stays an argument. `fsmc help CMD [...]` is `fsmc CMD --help`
// (what follows CMD is not run), and `fsmc help` is `fsmc --help`.
func permuteArgs(app *cli.App, args []string) []string {
	if len(args) >= 2 && args[1] == "help" {
		switch {
		case len(args) == 2:
			return []string{args[0], "--help"}
		case app.Command(args[2]) != nil:
			return []string{args[0], args[2], "--help"} // whatever follows: help never acts
		default:
			return []string{args[0], args[2]} // an unknown command, named as such
		}
	}
	if len(args) < 2 {
		return args
	}
	cmd := app.Command(args[1])
	if cmd == nil {
		return args
	}
	takesValue := map[string]bool{}
	for _, f := range cmd.Flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, name := range f.Names() {
			takesValue[name] = !isBool
		}
	}
	var flags, positional []string
	help := false
	rest := args[2:]
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--":
			positional = append(positional, rest[i+1:]...)
			i = len(rest)
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
			help = help || a == "-h" || a == "--help"
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && takesValue[name] {
				if i+1 == len(rest) {
					// No value: given last, urfave/cli says so ("flag
					// needs an argument"), where the "--" put before
					// the arguments would have been taken for it.
					return append([]string{args[0], args[1]}, flags...)
				}
				i++
				flags = append(flags, rest[i])
			}
		default:
			positional = append(positional, a)
		}
	}
	out := append([]string{args[0], args[1]}, flags...)
	if len(positional) > 0 && !help { // help takes no arguments
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out
}

// isTerminal reports whether w is a terminal that should get colour.
func isTerminal(w io.Writer) bool {
	return os.Getenv("NO_COLOR") == "" && terminal(w)
}

// terminal reports whether w writes to a terminal, seeing through the
// outputWriter that Main puts around stdout.
func terminal(w io.Writer) bool {
	if o, ok := w.(*outputWriter); ok {
		w = o.w
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
