package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// rowResume: kill -9 of serve in the middle of an `alknet cp` upload, restart,
// `alknet cp --resume`, and check the node's file byte for byte.
func (s *suite) rowResume(ctx context.Context) []result {
	name := fmt.Sprintf("resume: kill -9 mid-upload, cp --resume, %d trials of %dMiB", s.k.resumeTrials, s.k.resumeMB)
	data := filepath.Join(s.tmp, "resume")
	client := filepath.Join(s.tmp, "resume-client")
	fail1 := func(err error) []result { return []result{fail(name, "setup failed", err.Error())} }
	if _, err := s.initData(ctx, data); err != nil {
		return fail1(err)
	}
	clientFP, err := s.initData(ctx, client)
	if err != nil {
		return fail1(err)
	}
	if err := s.addPeers(ctx, data, "uploader", []string{clientFP}, "sftp", "sftp:write"); err != nil {
		return fail1(err)
	}
	size := int64(s.k.resumeMB) << 20
	src := filepath.Join(s.tmp, "resume-src.bin")
	sum, err := randomFile(src, size)
	if err != nil {
		return fail1(err)
	}
	n, err := s.startNode(ctx, data, "127.0.0.1:0")
	if err != nil {
		return fail1(err)
	}
	defer n.kill9()
	files := filepath.Join(data, "files")

	var interrupted, finishedFirst, resumeErrors, corrupt, lost int
	var notes []string
	t0 := time.Now()
	for i := range s.k.resumeTrials {
		if ctx.Err() != nil {
			break
		}
		dst := fmt.Sprintf("r-%d.bin", i)
		final := filepath.Join(files, dst)
		part := final + ".alknet-part"
		// 1. upload, and kill -9 the node once the partial file on the node
		//    has reached a random point between 5% and 95%.
		cut := size * int64(5+rand.IntN(91)) / 100
		cmd := exec.Command(s.alknet, "--data", client, "cp", "-q", src, n.addr+":/"+dst)
		if err := cmd.Start(); err != nil {
			return fail1(err)
		}
		s.procs.add(cmd)
		waitDone := make(chan error, 1)
		go func() { waitDone <- cmd.Wait(); s.procs.remove(cmd) }()
		killed := false
		deadline := time.After(2 * time.Minute)
	watch:
		for {
			select {
			case <-waitDone:
				waitDone = nil
				break watch
			case <-deadline:
				break watch
			case <-ctx.Done():
				break watch
			case <-time.After(2 * time.Millisecond):
			}
			if st, err := os.Stat(part); err == nil && st.Size() >= cut {
				_ = n.cmd.Process.Signal(syscall.SIGKILL)
				killed = true
				break
			}
		}
		n.kill9()
		if waitDone != nil {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-waitDone
		}
		if killed {
			interrupted++
		} else {
			finishedFirst++
		}
		// 2. restart and resume.
		if err := n.restart(ctx); err != nil {
			notes = append(notes, fmt.Sprintf("trial %d: restart: %v", i, err))
			resumeErrors++
			break
		}
		r, err := s.cli(ctx, 3*time.Minute, nil, "--data", client, "cp", "-q", "--resume", src, n.addr+":/"+dst)
		got, gotSize, herr := fileSHA256(final)
		switch {
		case err != nil || r.code != 0:
			resumeErrors++
			msg := r.String()
			if err != nil {
				msg = err.Error()
			}
			notes = append(notes, fmt.Sprintf("trial %d (cut at %d%%): resume failed: %s", i, cut*100/size, msg))
		case herr != nil:
			resumeErrors++
			notes = append(notes, fmt.Sprintf("trial %d: %v", i, herr))
		case got == "":
			lost++
			notes = append(notes, fmt.Sprintf("trial %d: resume exited 0 but %s is missing", i, dst))
		case got != sum:
			corrupt++
			notes = append(notes, fmt.Sprintf("trial %d (cut at %d%%): resume exited 0 but the node's file differs (%d bytes, sha256 %.16s)", i, cut*100/size, gotSize, got))
		}
		_ = os.Remove(final)
		_ = os.Remove(part)
	}
	trials := interrupted + finishedFirst
	failures := resumeErrors + corrupt + lost
	figs := fmt.Sprintf("failures %d/%d (resume errors %d, silent corruption %d, lost %d); %d killed mid-upload, %d finished first; %.1fs per trial",
		failures, trials, resumeErrors, corrupt, lost, interrupted, finishedFirst, time.Since(t0).Seconds()/float64(max(trials, 1)))
	if len(notes) > 8 {
		notes = append(notes[:8], fmt.Sprintf("... and %d more", len(notes)-8))
	}
	ok := failures == 0 && trials == s.k.resumeTrials
	return []result{verdict(ok, name, figs, notes...)}
}
