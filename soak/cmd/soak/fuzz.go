package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// fuzzTarget is one FuzzXxx of one package.
type fuzzTarget struct {
	dir  string // module folder to run go test in
	pkg  string // import path
	name string
}

// findFuzzTargets lists every fuzz target of every module of the
// workspace with `go test -list`, looking only at packages whose test files
// mention "func Fuzz".
func (s *suite) findFuzzTargets(ctx context.Context) ([]fuzzTarget, error) {
	out, err := s.goCmd(ctx, s.root, "list", "-m", "-f", "{{.Dir}}")
	if err != nil {
		return nil, err
	}
	var targets []fuzzTarget
	for _, mod := range strings.Fields(out) {
		pkgs, err := s.goCmd(ctx, mod, "list", "-f", "{{.ImportPath}} {{.Dir}}", "./...")
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(strings.TrimSpace(pkgs), "\n") {
			f := strings.Fields(line)
			if len(f) != 2 || !hasFuzzFunc(f[1]) {
				continue
			}
			list, err := s.goCmd(ctx, mod, "test", "-list", "^Fuzz", f[0])
			if err != nil {
				return nil, err
			}
			for _, name := range strings.Fields(list) {
				if strings.HasPrefix(name, "Fuzz") {
					targets = append(targets, fuzzTarget{dir: mod, pkg: f[0], name: name})
				}
			}
		}
	}
	return targets, nil
}

func hasFuzzFunc(dir string) bool {
	files, _ := filepath.Glob(filepath.Join(dir, "*_test.go"))
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && bytes.Contains(b, []byte("func Fuzz")) {
			return true
		}
	}
	return false
}

// goCmd runs the go command in dir and returns its stdout.
func (s *suite) goCmd(ctx context.Context, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("go %s: %v: %s", strings.Join(args, " "), err, lastLine(errb.String()+out.String()))
	}
	return out.String(), nil
}

var execsRe = regexp.MustCompile(`execs: (\d+)`)

// rowFuzz runs each fuzz target for FUZZTIME.
func (s *suite) rowFuzz(ctx context.Context) []result {
	targets, err := s.findFuzzTargets(ctx)
	if err != nil {
		return []result{fail("fuzz: discover targets", "go test -list failed", err.Error())}
	}
	if len(targets) == 0 {
		return []result{fail("fuzz: discover targets", "no fuzz targets found")}
	}
	var out []result
	for _, t := range targets {
		if ctx.Err() != nil {
			break
		}
		short := strings.TrimPrefix(t.pkg, "github.com/alkdev/alknet/")
		name := fmt.Sprintf("fuzz: %s %s", short, t.name)
		cctx, cancel := context.WithTimeout(ctx, s.k.fuzzTime+5*time.Minute)
		cmd := exec.CommandContext(cctx, "go", "test", "-run", "^$", "-fuzz", "^"+t.name+"$",
			"-fuzztime", s.k.fuzzTime.String(), "-parallel", "2", t.pkg)
		cmd.Dir = t.dir
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		t0 := time.Now()
		err := cmd.Run()
		cancel()
		execs := "?"
		if m := execsRe.FindAllStringSubmatch(buf.String(), -1); len(m) > 0 {
			execs = m[len(m)-1][1]
		}
		figs := fmt.Sprintf("%s execs in %s (wall %s with build)", execs, s.k.fuzzTime, time.Since(t0).Round(time.Second))
		if err != nil {
			var notes []string
			for _, l := range strings.Split(buf.String(), "\n") {
				if strings.Contains(l, "Failing input written") {
					l = strings.Replace(l, "testdata/", short+"/testdata/", 1)
				}
				if strings.Contains(l, "Failing input written") || strings.Contains(l, "--- FAIL") ||
					strings.Contains(l, "panic:") || strings.Contains(l, "_test.go:") {
					notes = append(notes, strings.TrimSpace(l))
				}
			}
			notes = notes[:min(len(notes), 6)]
			notes = append(notes, "go test: "+err.Error())
			if !strings.Contains(buf.String(), "Failing input written") { // no input to replay: show how the output ended
				lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
				for _, l := range lines[max(0, len(lines)-6):] {
					notes = append(notes, strings.TrimSpace(l))
				}
			}
			out = append(out, fail(name, figs, notes...))
			continue
		}
		out = append(out, pass(name, figs))
	}
	return out
}
