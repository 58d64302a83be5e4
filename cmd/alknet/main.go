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
	"sync"
	"syscall"

	"github.com/alkdev/alknet/git"
)

func main() {
	if filepath.Base(os.Args[0]) == git.HelperName {
		os.Exit(runGitHelper(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the CLI and returns the process exit code. Errors are printed
// as one line on stderr.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	g := &globals{stdin: stdin, stdout: stdout, stderr: stderr}
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
		fmt.Fprintln(stderr, "alknet: "+oneLine(err.Error()))
		return 1
	}
	return 0
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
