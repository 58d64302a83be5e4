package main

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// proxyProc is a running lossyproxy.
type proxyProc struct {
	cmd    *exec.Cmd
	addr   string
	stderr *tail
	done   chan struct{}
}

func (s *suite) startProxy(ctx context.Context, upstream string) (*proxyProc, error) {
	args := []string{"--upstream", upstream,
		"--drop", fmt.Sprint(s.k.lossyDrop), "--dup", fmt.Sprint(s.k.lossyDup), "--reorder", fmt.Sprint(s.k.lossyReorder)}
	cmd := exec.Command(s.proxy, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &proxyProc{cmd: cmd, stderr: newTail(8 << 10), done: make(chan struct{})}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s.procs.add(cmd)
	go func() { _ = cmd.Wait(); s.procs.remove(cmd); close(p.done) }()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			line <- strings.TrimSpace(sc.Text())
		}
		close(line)
		_, _ = io.Copy(io.Discard, out)
	}()
	select {
	case l, ok := <-line:
		if !ok {
			return nil, fmt.Errorf("lossyproxy exited: %s", p.stderr.String())
		}
		p.addr = l
		return p, nil
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("lossyproxy did not start within 30s")
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return nil, ctx.Err()
	}
}

// stop ends the proxy and returns its counters line.
func (p *proxyProc) stop() string {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	return lastLine(p.stderr.String())
}

// rowLossy: alknet cp (both ways) and OpenSSH ssh cat through a proxy that
// drops, duplicates and reorders datagrams.
func (s *suite) rowLossy(ctx context.Context) []result {
	impair := fmt.Sprintf("drop %g dup %g reorder %g", s.k.lossyDrop, s.k.lossyDup, s.k.lossyReorder)
	up := fmt.Sprintf("lossy: cp upload %dMiB (%s)", s.k.lossyMB, impair)
	down := fmt.Sprintf("lossy: cp download %dMiB", s.k.lossyMB)
	sshName := fmt.Sprintf("lossy: OpenSSH ssh cat %dMiB", s.k.lossySSHMB)
	data := filepath.Join(s.tmp, "lossy")
	client := filepath.Join(s.tmp, "lossy-client")
	failAll := func(err error) []result {
		return []result{fail(up, "setup failed", err.Error()), fail(down, "setup failed"), fail(sshName, "setup failed")}
	}
	if _, err := s.initData(ctx, data); err != nil {
		return failAll(err)
	}
	clientFP, err := s.initData(ctx, client)
	if err != nil {
		return failAll(err)
	}
	if err := s.addPeers(ctx, data, "copier", []string{clientFP}, "sftp", "sftp:write"); err != nil {
		return failAll(err)
	}
	src := filepath.Join(s.tmp, "lossy-src.bin")
	sum, err := randomFile(src, int64(s.k.lossyMB)<<20)
	if err != nil {
		return failAll(err)
	}
	n, err := s.startNode(ctx, data, "127.0.0.1:0")
	if err != nil {
		return failAll(err)
	}
	defer n.kill9()
	proxy, err := s.startProxy(ctx, n.host())
	if err != nil {
		return failAll(err)
	}
	defer proxy.stop()
	addr := n.nodeID() + "@" + proxy.addr

	var out []result
	// upload
	t0 := time.Now()
	r, err := s.cli(ctx, 8*time.Minute, nil, "--data", client, "cp", "-q", src, addr+":/big.bin")
	d := time.Since(t0)
	got, size, herr := fileSHA256(filepath.Join(data, "files", "big.bin"))
	switch {
	case err != nil:
		out = append(out, fail(up, "cp did not finish", err.Error()))
	case r.code != 0:
		out = append(out, fail(up, "cp failed", r.String()))
	case herr != nil || got != sum:
		out = append(out, fail(up, fmt.Sprintf("node's copy differs: %d bytes, sha256 %.16s, want %.16s", size, got, sum)))
	default:
		out = append(out, pass(up, fmt.Sprintf("byte-exact (SHA-256), %.1f MiB/s, %s", float64(s.k.lossyMB)/d.Seconds(), d.Round(100*time.Millisecond))))
	}
	// download
	back := filepath.Join(s.tmp, "lossy-back.bin")
	t0 = time.Now()
	r, err = s.cli(ctx, 8*time.Minute, nil, "--data", client, "cp", "-q", addr+":/big.bin", back)
	d = time.Since(t0)
	got, size, herr = fileSHA256(back)
	switch {
	case err != nil:
		out = append(out, fail(down, "cp did not finish", err.Error()))
	case r.code != 0:
		out = append(out, fail(down, "cp failed", r.String()))
	case herr != nil || got != sum:
		out = append(out, fail(down, fmt.Sprintf("local copy differs: %d bytes, sha256 %.16s, want %.16s", size, got, sum)))
	default:
		out = append(out, pass(down, fmt.Sprintf("byte-exact (SHA-256), %.1f MiB/s, %s", float64(s.k.lossyMB)/d.Seconds(), d.Round(100*time.Millisecond))))
	}
	_ = os.Remove(back)
	out = append(out, s.lossySSH(ctx, sshName, data, client, addr, src))
	counters := proxy.stop()
	out[0].notes = append(out[0].notes, "proxy: "+counters)
	return out
}

// lossySSH runs `ssh HOST cat` with OpenSSH through the Host block that
// `alknet ssh-config` prints, feeding the first lossySSHMB MiB of src and
// checking that the same bytes come back.
func (s *suite) lossySSH(ctx context.Context, name, data, client, addr, src string) result {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		return result{name: name, status: statusSkip, figures: "OpenSSH ssh not installed (apt-get install openssh-client)"}
	}
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		return result{name: name, status: statusSkip, figures: "ssh-keygen not installed (apt-get install openssh-client)"}
	}
	dir := filepath.Join(s.tmp, "ssh")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail(name, "setup failed", err.Error())
	}
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.CommandContext(ctx, keygen, "-q", "-t", "ed25519", "-N", "", "-C", "soak", "-f", key).CombinedOutput(); err != nil {
		return fail(name, "ssh-keygen failed", strings.TrimSpace(string(out)))
	}
	if _, err := s.mustCLI(ctx, "--data", data, "peer", "add", "sshuser", "--ssh-key", key+".pub", "--scope", "ssh", "--scope", "ssh:exec"); err != nil {
		return fail(name, "peer add failed", err.Error())
	}
	cfgText, err := s.mustCLI(ctx, "--data", client, "ssh-config", "--name", "soakbox", "--key", key, addr)
	if err != nil {
		return fail(name, "ssh-config failed", err.Error())
	}
	// The printed Host block is used verbatim: it names the known_hosts
	// file that ssh-config keeps in the client's data directory.
	cfgFile := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgFile, []byte(cfgText), 0o600); err != nil {
		return fail(name, "setup failed", err.Error())
	}
	f, err := os.Open(src)
	if err != nil {
		return fail(name, "setup failed", err.Error())
	}
	defer f.Close()
	size := int64(s.k.lossySSHMB) << 20
	in := io.LimitReader(f, size)
	hin := sha256.New()
	cctx, cancel := context.WithTimeout(ctx, 8*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, sshBin, "-F", cfgFile, "-o", "BatchMode=yes", "soakbox", "cat")
	cmd.Env = append(os.Environ(), "ALKNET_DATA="+client)
	cmd.Stdin = io.TeeReader(in, hin)
	hout := sha256.New()
	counter := &countWriter{}
	cmd.Stdout = io.MultiWriter(hout, counter)
	stderr := newTail(4 << 10)
	cmd.Stderr = stderr
	t0 := time.Now()
	err = cmd.Run()
	d := time.Since(t0)
	if err != nil {
		return fail(name, fmt.Sprintf("ssh failed after %s: %v", d.Round(time.Second), err), lastLine(stderr.String()))
	}
	want, got := hex.EncodeToString(hin.Sum(nil)), hex.EncodeToString(hout.Sum(nil))
	if counter.n != size || got != want {
		return fail(name, fmt.Sprintf("echo differs: %d of %d bytes, sha256 %.16s, want %.16s", counter.n, size, got, want))
	}
	return pass(name, fmt.Sprintf("byte-exact both ways (SHA-256), %.1f MiB/s, %s", float64(s.k.lossySSHMB)/d.Seconds(), d.Round(100*time.Millisecond)))
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }
