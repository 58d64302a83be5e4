// Command soak is alknet's load, fault and bad-input suite. It builds the
// real `alknet` binary, runs nodes on loopback in temporary data
// directories, attacks and loads them through the CLI and the exported
// client packages, and prints one table row per check. It runs outside
// `make test` (`make soak`), is bounded in time and count, and stops by
// itself; it exits 1 when a check fails.
//
// Knobs are environment variables (see knobs below and the README); the
// defaults keep a run on a 2-core machine under about ten minutes.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// knobs are the run's bounds, from the environment.
type knobs struct {
	rows []string // which row groups to run

	loadConns    int           // SOAK_LOAD_CONNS
	loadDuration time.Duration // SOAK_LOAD_DURATION
	loadThink    time.Duration // SOAK_LOAD_THINK: pause between one connection's operations
	idleConns    int           // SOAK_IDLE_CONNS

	crashTrials int // SOAK_CRASH_TRIALS

	lossyMB      int     // SOAK_LOSSY_MB
	lossySSHMB   int     // SOAK_LOSSY_SSH_MB
	lossyDrop    float64 // SOAK_LOSSY_DROP
	lossyDup     float64 // SOAK_LOSSY_DUP
	lossyReorder float64 // SOAK_LOSSY_REORDER

	fuzzTime time.Duration // FUZZTIME

	attackDuration   time.Duration // SOAK_ATTACK_DURATION
	attackHandshakes int           // SOAK_ATTACK_HANDSHAKES
	attackFloodConns int           // SOAK_ATTACK_FLOOD_CONNS

	resumeTrials int // SOAK_RESUME_TRIALS
	resumeMB     int // SOAK_RESUME_MB

	keep bool // SOAK_KEEP: keep the temporary directory
}

var allRows = []string{"load", "crash", "lossy", "fuzz", "attack", "resume"}

func loadKnobs() (knobs, error) {
	e := &envReader{}
	k := knobs{
		loadConns:        e.int("SOAK_LOAD_CONNS", 1000),
		loadDuration:     e.duration("SOAK_LOAD_DURATION", 60*time.Second),
		loadThink:        e.duration("SOAK_LOAD_THINK", time.Second),
		idleConns:        e.int("SOAK_IDLE_CONNS", 10000),
		crashTrials:      e.int("SOAK_CRASH_TRIALS", 5),
		lossyMB:          e.int("SOAK_LOSSY_MB", 256),
		lossySSHMB:       e.int("SOAK_LOSSY_SSH_MB", 64),
		lossyDrop:        e.float("SOAK_LOSSY_DROP", 0.01),
		lossyDup:         e.float("SOAK_LOSSY_DUP", 0.01),
		lossyReorder:     e.float("SOAK_LOSSY_REORDER", 0.02),
		fuzzTime:         e.duration("FUZZTIME", 5*time.Second),
		attackDuration:   e.duration("SOAK_ATTACK_DURATION", 15*time.Second),
		attackHandshakes: e.int("SOAK_ATTACK_HANDSHAKES", 3000),
		attackFloodConns: e.int("SOAK_ATTACK_FLOOD_CONNS", 32),
		resumeTrials:     e.int("SOAK_RESUME_TRIALS", 50),
		resumeMB:         e.int("SOAK_RESUME_MB", 48),
		keep:             os.Getenv("SOAK_KEEP") != "",
	}
	k.rows = allRows
	if s := strings.TrimSpace(os.Getenv("SOAK_ROWS")); s != "" {
		k.rows = nil
		for _, r := range strings.Split(s, ",") {
			r = strings.TrimSpace(r)
			if !slices.Contains(allRows, r) {
				e.errs = append(e.errs, fmt.Sprintf("SOAK_ROWS: unknown row %q (want some of %s)", r, strings.Join(allRows, ",")))
				continue
			}
			k.rows = append(k.rows, r)
		}
	}
	if len(e.errs) > 0 {
		return k, fmt.Errorf("%s", strings.Join(e.errs, "; "))
	}
	return k, nil
}

// suite is what every row gets.
type suite struct {
	k      knobs
	root   string // repository root (where go.work is)
	tmp    string // the run's temporary directory
	alknet string // built alknet binary
	proxy  string // built lossyproxy binary
	procs  *procTable
}

func main() {
	if len(os.Args) == 4 && os.Args[1] == helperVaultWrite {
		if err := vaultWriter(os.Args[2], os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, "soak vault writer:", err)
			os.Exit(1)
		}
		return
	}
	k, err := loadKnobs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	// The stalled-handshake clients use sockets that quic-go cannot tune;
	// its warning about that is noise here.
	_ = os.Setenv("QUIC_GO_DISABLE_RECEIVE_BUFFER_WARNING", "true")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, k)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, k knobs) int {
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	tmp, err := os.MkdirTemp("", "alknet-soak-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		return 2
	}
	s := &suite{k: k, root: root, tmp: tmp, procs: newProcTable()}
	defer func() {
		s.procs.killAll()
		if k.keep {
			fmt.Fprintln(os.Stderr, "soak: kept", tmp)
		} else {
			_ = os.RemoveAll(tmp)
		}
	}()
	raiseNoFile()
	logf("building alknet and lossyproxy in %s", tmp)
	s.alknet = filepath.Join(tmp, "bin", "alknet")
	s.proxy = filepath.Join(tmp, "bin", "lossyproxy")
	for _, b := range [][2]string{{s.alknet, "./cmd/alknet"}, {s.proxy, "./soak/cmd/lossyproxy"}} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", b[0], b[1])
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "soak: go build %s: %v\n%s", b[1], err, out)
			return 2
		}
	}
	start := time.Now()
	var results []result
	for _, r := range k.rows {
		if ctx.Err() != nil {
			break
		}
		t0 := time.Now()
		logf("== %s", r)
		var rs []result
		switch r {
		case "load":
			rs = s.rowLoad(ctx)
		case "crash":
			rs = s.rowCrash(ctx)
		case "lossy":
			rs = s.rowLossy(ctx)
		case "fuzz":
			rs = s.rowFuzz(ctx)
		case "attack":
			rs = s.rowAttack(ctx)
		case "resume":
			rs = s.rowResume(ctx)
		}
		s.procs.killAll()
		logf("== %s done in %s", r, time.Since(t0).Round(time.Second))
		results = append(results, rs...)
	}
	printTable(os.Stdout, results, time.Since(start))
	if ctx.Err() != nil {
		fmt.Fprintln(os.Stderr, "soak: interrupted")
		return 130
	}
	for _, r := range results {
		if r.status == statusFail {
			return 1
		}
	}
	return 0
}

// repoRoot is the folder of the workspace's go.work.
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOWORK").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOWORK: %w", err)
	}
	w := strings.TrimSpace(string(out))
	if w == "" || w == "off" {
		return "", fmt.Errorf("run inside the alknet workspace (no go.work found)")
	}
	return filepath.Dir(w), nil
}

// raiseNoFile lifts the soft open-file limit to the hard one: thousands of
// connections need descriptors on the client side and in serve, which
// inherits the limit.
func raiseNoFile() {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s soak: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
