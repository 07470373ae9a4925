// Package cli holds mtuscope's subcommands: their flags, output formats and
// exit codes. Domain packages never import it.
package cli

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/mtuscope/mtuscope/diagnose"
	"github.com/spf13/cobra"
)

// Exit statuses shared by every subcommand.
const (
	ExitOK      = 0 // the job ran and found nothing wrong
	ExitProblem = 1 // the job ran and found a problem
	ExitUsage   = 2 // the job could not run: bad arguments, unusable input
	// ExitInconclusive: the job ran and its evidence decides nothing
	// (verdict inconclusive); the output says what would decide it.
	ExitInconclusive = 3
)

// verdictExit is the exit status of a diagnosis' verdict.
func verdictExit(v diagnose.Verdict) error {
	switch {
	case v == diagnose.VerdictInconclusive:
		return withExit(ExitInconclusive, nil)
	case v.Problem():
		return withExit(ExitProblem, nil)
	}
	return nil
}

// exitError carries a specific exit status out of a command's RunE.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withExit wraps err so that Run exits with code.
func withExit(code int, err error) error { return &exitError{code: code, err: err} }

// globals are the flags every subcommand shares.
type globals struct {
	logLevel  string
	logFormat string
	stdout    io.Writer
	stderr    io.Writer
	logger    *slog.Logger
}

// Run executes mtuscope with args (without the program name), writing to
// stdout and stderr, and returns the process exit status.
func Run(args []string, stdout, stderr io.Writer) int {
	g := &globals{stdout: stdout, stderr: stderr}
	root := newRootCmd(g)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return ExitOK
	}
	var ee *exitError
	if errors.As(err, &ee) {
		// Every failure says why; ExitProblem without an error is a
		// finding the command has already printed.
		if ee.err != nil {
			fmt.Fprintf(stderr, "mtuscope: %v\n", ee.err)
		}
		return ee.code
	}
	// Cobra's own errors (unknown flag, wrong argument count) are usage errors.
	fmt.Fprintf(stderr, "mtuscope: %v\n", err)
	return ExitUsage
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "mtuscope",
		Short: "Find why a TLS handshake hangs on one network and not on others",
		Long: `mtuscope diagnoses path MTU black holes: a link with a small MTU, ICMP
"fragmentation needed" blocked and often IP fragments dropped, so that TCP
connects but the TLS handshake stalls because one full-size segment vanishes.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{HiddenDefaultCmd: false},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			l, err := newLogger(g.stderr, g.logLevel, g.logFormat)
			if err != nil {
				return withExit(ExitUsage, err)
			}
			g.logger = l
			return nil
		},
	}
	root.SetOut(g.stdout)
	root.SetErr(g.stderr)
	pf := root.PersistentFlags()
	pf.StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")

	root.AddCommand(newVersionCmd(g))
	root.AddCommand(newServeCmd(g))
	root.AddCommand(newASNCmd(g))
	root.AddCommand(newProbeCmd(g))
	root.AddCommand(newWatchCmd(g))
	root.AddCommand(newAnalyzeCmd(g))
	return root
}

// newLogger builds the one slog.Logger handed to every component.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
}
