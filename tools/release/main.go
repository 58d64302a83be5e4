// Command release prepares and checks releases of the alknet modules. It
// works on the workspace in go.work: every module it uses is published, at
// one version shared by all of them, tagged <dir>/<version>.
//
//	release lint    -root DIR              no replace in any go.mod; one sibling version
//	release current -root DIR              print the version sibling requirements name
//	release set     -root DIR -version V   require every sibling at V; go.work replaces V locally
//	release tags    -root DIR -version V   print the tags, dependencies first
//	release proxy   -root DIR -version V -out DIR
//	                                       write a GOPROXY directory holding every module at V
//
// It lives outside go.work (it needs golang.org/x/mod); run it with GOWORK=off.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	fset := flag.NewFlagSet("release "+args[0], flag.ContinueOnError)
	root := fset.String("root", ".", "directory holding go.work")
	version := fset.String("version", "", "version, e.g. v0.1.0")
	out := fset.String("out", "", "proxy directory to write (proxy)")
	if err := fset.Parse(args[1:]); err != nil {
		return err
	}
	ws, err := loadWorkspace(*root)
	if err != nil {
		return err
	}
	switch args[0] {
	case "lint":
		if err := ws.checkNoReplace(); err != nil {
			return err
		}
		_, err := ws.siblingVersion()
		return err
	case "current":
		v, err := ws.siblingVersion()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, v)
		return err
	case "set":
		return ws.setVersion(*version)
	case "tags":
		if !validVersion(*version) {
			return fmt.Errorf("%w: %q", errBadVersion, *version)
		}
		order, err := ws.dependencyOrder()
		if err != nil {
			return err
		}
		for _, m := range order {
			if _, err := fmt.Fprintln(stdout, m.tagPrefix()+"/"+*version); err != nil {
				return err
			}
		}
		return nil
	case "proxy":
		if *out == "" {
			return errUsage
		}
		return ws.writeProxy(*out, *version)
	}
	return errUsage
}
