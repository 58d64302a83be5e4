package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// alknetBin is the binary built once for the end-to-end tests.
var alknetBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "alknet-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	alknetBin = filepath.Join(dir, "alknet")
	build := exec.Command("go", "build", "-race", "-o", alknetBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build alknet:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is what a finished CLI run printed.
type result struct {
	stdout, stderr string
	code           int
}

// runCLI runs the built binary with args and stdin, waiting up to two
// minutes.
func runCLI(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, alknetBin, args...)
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run alknet %v: %v", args, err)
	}
	return result{stdout: out.String(), stderr: errb.String(), code: code}
}

// node is a running `alknet serve`.
type node struct {
	Addr    string // <nodeid>@127.0.0.1:<port>
	DataDir string
	cmd     *exec.Cmd
	stderr  *syncBuffer
	done    chan error
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Log returns what the node logged so far.
func (n *node) Log() string { return n.stderr.String() }

// startNode runs `alknet --data dataDir serve --listen 127.0.0.1:0` with
// extra args, waits until it prints its address (it is then accepting), and
// stops it with SIGTERM when the test ends. config, when not empty, is
// written to dataDir/config.toml first.
func startNode(t *testing.T, dataDir, config string, extra ...string) *node {
	t.Helper()
	if config != "" {
		if err := os.MkdirAll(dataDir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dataDir, "config.toml"), []byte(config), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := append([]string{"--data", dataDir, "serve", "--listen", "127.0.0.1:0"}, extra...)
	cmd := exec.Command(alknetBin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n := &node{DataDir: dataDir, cmd: cmd, stderr: &syncBuffer{}, done: make(chan error, 1)}
	cmd.Stderr = n.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { n.done <- cmd.Wait() }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-lines:
		if !ok {
			t.Fatalf("serve exited before printing its address: %s", n.Log())
		}
		n.Addr = strings.TrimSpace(l)
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("serve did not print its address: %s", n.Log())
	}
	t.Cleanup(func() { n.stop(t) })
	return n
}

// stop sends SIGTERM and waits for a clean exit.
func (n *node) stop(t *testing.T) {
	if n.cmd.ProcessState != nil {
		return
	}
	_ = n.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-n.done:
		if err != nil {
			t.Errorf("serve exited with %v: %s", err, n.Log())
		}
	case <-time.After(30 * time.Second):
		_ = n.cmd.Process.Kill()
		t.Errorf("serve did not stop on SIGINT: %s", n.Log())
	}
}

// fingerprintOf initializes dataDir if needed and returns its fingerprint.
func fingerprintOf(t *testing.T, dataDir string) string {
	t.Helper()
	if r := runCLI(t, nil, "--data", dataDir, "init"); r.code != 0 {
		t.Fatalf("init: %s", r.stderr)
	}
	r := runCLI(t, nil, "--data", dataDir, "id", "--fingerprint")
	if r.code != 0 {
		t.Fatalf("id: %s", r.stderr)
	}
	return strings.TrimSpace(r.stdout)
}

// writeConfig writes config.toml into dir, creating dir.
func writeConfig(t *testing.T, dir, config string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.toml"), []byte(config), 0o600))
}
