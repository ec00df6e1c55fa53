package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/switchyard-p2p/switchyard/node"
)

// homeEnv names the environment variable that sets the default home directory.
const homeEnv = "SWITCHYARD_HOME"

func main() {
	ctx, stop := signalContext(context.Background())
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(exitCode(err))
	}
}

// signalError is the cause (context.Cause) of the command context's end when SIGINT or SIGTERM
// ended it, so that a command can exit 128 + the signal's number. It matches context.Canceled.
type signalError struct{ sig syscall.Signal }

func (e *signalError) Error() string        { return e.sig.String() + " signal received" }
func (e *signalError) Is(target error) bool { return target == context.Canceled }

// signalContext is signal.NotifyContext(parent, SIGINT, SIGTERM) whose cause is a *signalError
// naming the signal. Later signals are caught too, until stop.
func signalContext(parent context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case s := <-ch:
			if sig, ok := s.(syscall.Signal); ok {
				cancel(&signalError{sig: sig})
			} else {
				cancel(context.Canceled)
			}
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(context.Canceled)
	}
}

// signalExitCode is the exit status of a run that ctx's end stopped: 128 + the signal's number
// when a signal ended it (143 for SIGTERM), else exitInterrupted (130, as for SIGINT).
func signalExitCode(ctx context.Context) int {
	if se, ok := errors.AsType[*signalError](context.Cause(ctx)); ok {
		return 128 + int(se.sig)
	}
	return exitInterrupted
}

// exitError carries the exit status a command wants for its error (the default is 1).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// exitInterrupted is the status of a run stopped by SIGINT (128 + 2, the shells' convention).
const exitInterrupted = 130

// exitCode returns the exit status for a command's error: an *exitError's code, else 1.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// newRootCmd builds a fresh command tree. Tests build one per run.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "switchyard",
		Short:         "A CometBFT-v0.38-wire-compatible P2P node",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("home", "", "home directory of the node (default $"+homeEnv+", else ~/.switchyard); testnet, crawl, sim and version use none")
	root.SetGlobalNormalizationFunc(normalizeFlag)
	info, ok := debug.ReadBuildInfo()
	if !ok {
		info = nil
	}
	root.Version = node.Version // enables --version
	root.SetVersionTemplate(versionText(info))
	root.AddCommand(newInitCmd(), newStartCmd(), newShowNodeIDCmd(), newVersionCmd())
	root.AddCommand(newGenNodeKeyCmd(), newUnsafeResetAllCmd())
	root.AddCommand(newTestnetCmd())
	root.AddCommand(newCrawlCmd())
	root.AddCommand(newSimCmd())
	root.AddCommand(newPubSubCmd())
	return root
}

// normalizeFlag lets every flag be spelled with '_' or '-' between words.
// Flags of a config section ("p2p.", "rpc.") use CometBFT's config key
// spelling with '_'; the others use '-'.
func normalizeFlag(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	if strings.Contains(name, ".") {
		return pflag.NormalizedName(strings.ReplaceAll(name, "-", "_"))
	}
	return pflag.NormalizedName(strings.ReplaceAll(name, "_", "-"))
}

// homeDir resolves the home directory: --home, else $SWITCHYARD_HOME, else
// ~/.switchyard. A leading "~/" (or a lone "~") in --home or $SWITCHYARD_HOME is
// the user's home directory, as in the default: a shell leaves it alone in
// --home=~/x and in quotes. An explicitly empty --home (a script's unset variable) is a
// usage error, not the default home, which may be another node's.
func homeDir(cmd *cobra.Command) (string, error) {
	if h, _ := cmd.Flags().GetString("home"); h != "" {
		return expandTilde(h, "--home")
	} else if cmd.Flags().Changed("home") {
		return "", fmt.Errorf("%w: --home is empty; leave it out for the default ($%s, else ~/.switchyard)", errUsage, homeEnv)
	}
	if h := os.Getenv(homeEnv); h != "" {
		return expandTilde(h, "$"+homeEnv)
	}
	uh, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no --home given, $%s unset, and no user home directory: %w", homeEnv, err)
	}
	return filepath.Join(uh, ".switchyard"), nil
}

// expandTilde replaces a leading "~" or "~/" in h (given by what) with the user's home
// directory; other paths are returned unchanged.
func expandTilde(h, what string) (string, error) {
	if h != "~" && !strings.HasPrefix(h, "~/") {
		return h, nil
	}
	uh, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%s %s: no user home directory for ~: %w", what, h, err)
	}
	return filepath.Join(uh, h[1:]), nil
}

// refuseHome fails with a usage error when --home was given to a command that uses no home
// (--home is a global flag, listed in every command's help). hint, if not empty, names what
// to use instead.
func refuseHome(cmd *cobra.Command, hint string) error {
	if !cmd.Flags().Changed("home") {
		return nil
	}
	msg := fmt.Sprintf("%s uses no home directory", cmd.CommandPath())
	if hint != "" {
		msg += "; " + hint
	}
	return fmt.Errorf("%w: --home: %s", errUsage, msg)
}

// errUsage marks an invalid flag value.
var errUsage = errors.New("invalid usage")
