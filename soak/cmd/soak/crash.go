package main

import (
	"bufio"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/alkdev/alknet/core"
	"github.com/alkdev/alknet/vault"
	_ "github.com/mattn/go-sqlite3"
)

// helperVaultWrite is the argv[1] that turns this binary into the vault
// writer of the crash row: it rewrites vault.json (same passphrase, new salt
// and ciphertext) in a loop and prints "ok N" after each completed write.
const helperVaultWrite = "helper-vault-write"

func vaultWriter(path, passFile string) error {
	pass, err := os.ReadFile(passFile)
	if err != nil {
		return err
	}
	v, err := vault.Open(path)
	if err != nil {
		return err
	}
	if err := v.Unlock(pass); err != nil {
		return err
	}
	for i := 1; ; i++ {
		if err := v.ChangePassphrase(pass, v.Params()); err != nil {
			return err
		}
		fmt.Printf("ok %d\n", i)
	}
}

// crashUploadSize is the size of each file uploaded in the crash row.
const crashUploadSize = 8 << 20

// rowCrash: kill -9 of serve while an sftp upload, peer writes and a vault
// write are in flight, then restart and check that nothing acknowledged is
// lost and nothing is torn.
func (s *suite) rowCrash(ctx context.Context) []result {
	name := fmt.Sprintf("crash: kill -9 during upload+peer add+vault write, %d trials", s.k.crashTrials)
	data := filepath.Join(s.tmp, "crash")
	client := filepath.Join(s.tmp, "crash-client")
	fail1 := func(err error) []result { return []result{fail(name, "setup failed", err.Error())} }
	passFile := filepath.Join(s.tmp, "crash-pass")
	if err := os.WriteFile(passFile, []byte("soak crash passphrase"), 0o600); err != nil {
		return fail1(err)
	}
	nodeID, err := s.mustCLI(ctx, "--data", data, "vault", "init", "--words", "12", "--passphrase-file", passFile)
	if err != nil {
		return fail1(err)
	}
	clientFP, err := s.initData(ctx, client)
	if err != nil {
		return fail1(err)
	}
	if err := s.addPeers(ctx, data, "uploader", []string{clientFP}, "sftp", "sftp:write"); err != nil {
		return fail1(err)
	}
	src := filepath.Join(s.tmp, "crash-src.bin")
	srcSum, err := randomFile(src, crashUploadSize)
	if err != nil {
		return fail1(err)
	}
	self, err := os.Executable()
	if err != nil {
		return fail1(err)
	}
	n, err := s.startNode(ctx, data, "127.0.0.1:0", "--passphrase-file", passFile)
	if err != nil {
		return fail1(err)
	}
	defer n.kill9()

	ackPeers := map[string]bool{} // peer adds that exited 0
	ackFiles := map[string]bool{} // uploads that exited 0
	tried := map[string]bool{}    // every upload started
	var vaultWrites, peerAdds, uploads int
	var problems []string
	for trial := range s.k.crashTrials {
		if ctx.Err() != nil {
			break
		}
		tctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var running []*exec.Cmd
		track := func(c *exec.Cmd) bool {
			mu.Lock()
			defer mu.Unlock()
			if tctx.Err() != nil {
				return false
			}
			if err := c.Start(); err != nil {
				return false
			}
			s.procs.add(c)
			running = append(running, c)
			return true
		}
		done := func(c *exec.Cmd) error {
			err := c.Wait()
			s.procs.remove(c)
			mu.Lock()
			running = slices.DeleteFunc(running, func(x *exec.Cmd) bool { return x == c })
			mu.Unlock()
			return err
		}
		// peer add loop
		wg.Go(func() {
			for i := 0; tctx.Err() == nil; i++ {
				k, err := core.GenerateSecretKey()
				if err != nil {
					return
				}
				id := fmt.Sprintf("p-%d-%d", trial, i)
				c := exec.Command(s.alknet, "--data", data, "peer", "add", id, "--fingerprint", k.NodeID().Fingerprint(), "--scope", "call")
				if !track(c) {
					return
				}
				if done(c) == nil {
					mu.Lock()
					ackPeers[id] = true
					peerAdds++
					mu.Unlock()
				}
			}
		})
		// upload loop
		wg.Go(func() {
			for i := 0; tctx.Err() == nil; i++ {
				dst := fmt.Sprintf("u-%d-%d.bin", trial, i)
				c := exec.Command(s.alknet, "--data", client, "cp", "-q", src, n.addr+":/"+dst)
				if !track(c) {
					return
				}
				mu.Lock()
				tried[dst] = true
				mu.Unlock()
				if done(c) == nil {
					mu.Lock()
					ackFiles[dst] = true
					uploads++
					mu.Unlock()
				}
			}
		})
		// vault writer
		wg.Go(func() {
			c := exec.Command(self, helperVaultWrite, filepath.Join(data, "vault.json"), passFile)
			out, err := c.StdoutPipe()
			if err != nil {
				return
			}
			if !track(c) {
				return
			}
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				mu.Lock()
				vaultWrites++
				mu.Unlock()
			}
			_, _ = io.Copy(io.Discard, out)
			_ = done(c)
		})
		// Let everything get going, then kill -9 the node and every writer
		// at a random moment.
		time.Sleep(time.Duration(1500+rand.IntN(2500)) * time.Millisecond)
		mu.Lock()
		cancel()
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		for _, c := range running {
			_ = c.Process.Signal(syscall.SIGKILL)
		}
		mu.Unlock()
		n.kill9()
		wg.Wait()

		for _, p := range s.checkCrashState(ctx, data, passFile, nodeID, ackPeers, ackFiles, tried, srcSum) {
			problems = append(problems, fmt.Sprintf("trial %d: %s", trial, p))
		}
		if err := n.restart(ctx); err != nil {
			problems = append(problems, fmt.Sprintf("trial %d: restart: %v", trial, err))
			break
		}
		if r, err := s.cli(ctx, 30*time.Second, nil, "--data", client, "ping", "-c", "1", "-i", "10ms", n.addr); err != nil || r.code != 0 {
			problems = append(problems, fmt.Sprintf("trial %d: ping after restart: %v %v", trial, err, r))
		}
	}
	figs := fmt.Sprintf("problems %d; acknowledged before kills: %d peer adds, %d uploads, %d vault writes; %d uploads cut by a kill",
		len(problems), peerAdds, uploads, vaultWrites, len(tried)-len(ackFiles))
	if peerAdds == 0 || uploads == 0 || vaultWrites == 0 {
		problems = append(problems, "a writer never completed a write: the trial did not exercise it")
	}
	return []result{verdict(len(problems) == 0, name, figs, problems...)}
}

// checkCrashState inspects the data directory of a killed node.
func (s *suite) checkCrashState(ctx context.Context, data, passFile, nodeID string, ackPeers, ackFiles, tried map[string]bool, sum string) []string {
	var problems []string
	// The database: integrity_check on a copy (opening it replays the WAL,
	// which must not happen behind the node's back).
	if msg, err := integrityCheck(filepath.Join(data, "alknet.db")); err != nil {
		problems = append(problems, "database: "+err.Error())
	} else if msg != "ok" {
		problems = append(problems, "database integrity_check: "+msg)
	}
	// Every acknowledged peer is present.
	out, err := s.mustCLI(ctx, "--data", data, "peer", "list", "--json")
	if err != nil {
		problems = append(problems, "peer list: "+err.Error())
	} else {
		var peers []struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal([]byte(out), &peers); err != nil {
			problems = append(problems, "peer list --json: "+err.Error())
		}
		have := map[string]bool{}
		for _, p := range peers {
			have[p.ID] = true
		}
		var lost []string
		for id := range ackPeers {
			if !have[id] {
				lost = append(lost, id)
			}
		}
		if len(lost) > 0 {
			slices.Sort(lost)
			problems = append(problems, fmt.Sprintf("%d acknowledged peers lost: %s", len(lost), strings.Join(lost[:min(5, len(lost))], " ")))
		}
	}
	// The vault decrypts to the same node.
	if id, err := s.mustCLI(ctx, "--data", data, "vault", "id", "--passphrase-file", passFile); err != nil {
		problems = append(problems, "vault: "+err.Error())
	} else if id != nodeID {
		problems = append(problems, fmt.Sprintf("vault: node id %s, want %s", id, nodeID))
	}
	// Uploads: acknowledged ones complete; others absent or complete; no
	// final file that is torn.
	files := filepath.Join(data, "files")
	entries, err := os.ReadDir(files)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		problems = append(problems, "files: "+err.Error())
	}
	present := map[string]bool{}
	for _, e := range entries {
		name := e.Name()
		if strings.HasSuffix(name, ".alknet-part") || strings.HasPrefix(name, ".") {
			continue // a partial copy in its temporary name is allowed
		}
		present[name] = true
		if !tried[name] {
			problems = append(problems, "files: unexpected "+name)
			continue
		}
		got, size, err := fileSHA256(filepath.Join(files, name))
		if err != nil {
			problems = append(problems, "files: "+err.Error())
		} else if got != sum {
			problems = append(problems, fmt.Sprintf("files: %s is torn (%d bytes, sha256 %s)", name, size, got[:16]))
		}
	}
	for name := range ackFiles {
		if !present[name] {
			problems = append(problems, "files: acknowledged upload lost: "+name)
		}
	}
	return problems
}

// integrityCheck copies db (with its -wal) to a temporary folder and runs
// PRAGMA integrity_check there.
func integrityCheck(db string) (string, error) {
	dir, err := os.MkdirTemp("", "alknet-soak-db-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	copyDB := filepath.Join(dir, "copy.db")
	for _, suffix := range []string{"", "-wal"} {
		b, err := os.ReadFile(db + suffix)
		if errors.Is(err, os.ErrNotExist) && suffix != "" {
			continue
		}
		if err != nil {
			return "", err
		}
		if err := os.WriteFile(copyDB+suffix, b, 0o600); err != nil {
			return "", err
		}
	}
	h, err := sql.Open("sqlite3", "file:"+copyDB)
	if err != nil {
		return "", err
	}
	defer h.Close()
	var rows []string
	r, err := h.Query("PRAGMA integrity_check")
	if err != nil {
		return "", err
	}
	defer r.Close()
	for r.Next() {
		var s string
		if err := r.Scan(&s); err != nil {
			return "", err
		}
		rows = append(rows, s)
	}
	return strings.Join(rows, "; "), r.Err()
}
