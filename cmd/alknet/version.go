package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version and commit may be set at link time, which wins over the build
// information:
//
//	go build -ldflags "-X main.version=v0.1.0 -X main.commit=$(git rev-parse HEAD)" ./cmd/alknet
var (
	version string
	commit  string
)

// versionInfo is what `alknet version` prints and node/info reports.
type versionInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Go      string `json:"go"`
}

// String is the one line of `alknet version` and `alknet --version`.
func (v versionInfo) String() string {
	if v.Commit == "" {
		return fmt.Sprintf("alknet %s (%s)", v.Version, v.Go)
	}
	return fmt.Sprintf("alknet %s (commit %s, %s)", v.Version, v.Commit, v.Go)
}

// currentVersion is the version of this binary.
func currentVersion() versionInfo {
	bi, _ := debug.ReadBuildInfo()
	return versionFrom(version, commit, bi)
}

// buildVersion is the version node/info reports.
func buildVersion() string { return currentVersion().Version }

// versionFrom picks the version: the link-time value, else the module
// version `go install ...@version` records, else "(devel)". The commit is
// the link-time value, else the VCS revision a build in a checkout records
// ("-dirty" when the tree had changes); a module fetched from a proxy has
// none.
func versionFrom(ldVersion, ldCommit string, bi *debug.BuildInfo) versionInfo {
	v := versionInfo{Version: ldVersion, Commit: ldCommit, Go: runtime.Version()}
	if bi == nil {
		if v.Version == "" {
			v.Version = "(devel)"
		}
		return v
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	if v.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	if v.Commit == "" {
		var rev, modified string
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" && modified == "true" {
			rev += "-dirty"
		}
		v.Commit = rev
	}
	return v
}

// setVersionFlag makes `alknet --version` print the same line as
// `alknet version`.
func setVersionFlag(root *cobra.Command) {
	root.Version = currentVersion().String()
	root.SetVersionTemplate("{{.Version}}\n")
}

func newVersionCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go release of this binary",
		Long: `Print the module version this binary was built from (set by
` + "`go install github.com/alkdev/alknet/cmd/alknet@VERSION`" + `, or at link time
with -ldflags "-X main.version=..."; "(devel)" for a build from a checkout),
the commit when known, and the Go release. node/info reports the same version.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			v := currentVersion()
			if asJSON {
				return json.NewEncoder(g.stdout).Encode(v)
			}
			_, err := fmt.Fprintln(g.stdout, v.String())
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print version, commit and go as one JSON object")
	return cmd
}
