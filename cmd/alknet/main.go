// Command alknet runs and talks to alknet nodes: one QUIC endpoint on one UDP
// port serving many protocols under one ed25519 key.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"

	"github.com/alkdev/alknet/git"
)

func main() {
	if git.IsHelperName(filepath.Base(os.Args[0])) {
		os.Exit(runGitHelper(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code. Errors are printed
// as one line on stderr.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr, again: make(chan os.Signal, 1)}
	ctx, stop := notifySignals(g.again)
	defer stop()
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if g.stopProfile != nil {
		g.stopProfile()
	}
	if err != nil {
		var ec exitCode
		if errors.As(err, &ec) {
			return int(ec) // the command has said what went wrong
		}
		fmt.Fprintln(stderr, errorLine(err))
		return 1
	}
	return 0
}

// errorLine is the one line printed for a failed command: "alknet: " and the
// error, without repeating a prefix the error already carries.
func errorLine(err error) string {
	msg := oneLine(err.Error())
	for strings.HasPrefix(msg, "alknet: ") {
		msg = strings.TrimPrefix(msg, "alknet: ")
	}
	msg = strings.ReplaceAll(msg, "alknet: alknet", "alknet")
	return "alknet: " + msg
}

// signalError is the cancellation cause of the command's context when
// SIGINT or SIGTERM arrived.
type signalError struct{ sig os.Signal }

func (e signalError) Error() string { return "interrupted by " + e.sig.String() }

// notifySignals returns a context cancelled (with a signalError cause) by the
// first SIGINT or SIGTERM. Later signals go to again (dropped when nobody
// reads it), so a command that is winding down can stop at once on a
// second one.
func notifySignals(again chan<- os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(context.Background())
	sigc := make(chan os.Signal, 2)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		defer close(done)
		first := true
		for s := range sigc {
			if first {
				first = false
				cancel(signalError{s})
				continue
			}
			select {
			case again <- s:
			default:
			}
		}
	}()
	return ctx, func() {
		signal.Stop(sigc)
		close(sigc)
		<-done
		cancel(nil)
	}
}

// exitCode lets a command choose its exit status without printing more.
type exitCode int

func (e exitCode) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// startProfile starts the CPU profile that the hidden --cpuprofile flag asks
// for; run stops it when the command returns.
func (g *globals) startProfile() error {
	if g.cpuProfile == "" {
		return nil
	}
	f, err := os.Create(g.cpuProfile)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		return fmt.Errorf("cpu profile: %w", err)
	}
	var once sync.Once
	g.stopProfile = func() {
		once.Do(func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		})
	}
	// OpenSSH ends a ProxyCommand with SIGHUP, which would otherwise kill
	// the process before the profile is written.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		<-hup
		g.stopProfile()
		os.Exit(129)
	}()
	return nil
}

// signalNumber is the number of a signal, for the 128+n exit status.
func signalNumber(s os.Signal) int {
	if n, ok := s.(syscall.Signal); ok {
		return int(n)
	}
	return int(syscall.SIGINT)
}
