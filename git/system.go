package git

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"
)

// systemUploadPack serves a fetch with "git upload-pack" from
// Config.SystemGit. The client's data is copied to the process by a
// goroutine that is not waited for: upload-pack may finish while the client
// still holds its side open.
func (s *Server) systemUploadPack(ctx context.Context, dir, protocol string, r io.Reader, w io.Writer) error {
	cmd := exec.CommandContext(ctx, s.cfg.SystemGit, "upload-pack", "--strict", dir)
	cmd.Env = append(cleanEnv(), "GIT_PROTOCOL="+protocol)
	cmd.Stdout = w
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, max: 4096}
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("alknet/git: upload-pack: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("alknet/git: upload-pack: %w", err)
	}
	go func() {
		_, _ = io.Copy(stdin, r)
		_ = stdin.Close()
	}()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("alknet/git: upload-pack: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// cleanEnv is the environment of a git child: the process environment
// without GIT_* variables, which could point it at another repository.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GIT_") {
			env = append(env, kv)
		}
	}
	return env
}

type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
