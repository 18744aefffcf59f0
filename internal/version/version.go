// Package version says what a binary is: airlock's version and commit,
// and the Go and wazero versions it was built with, so that an operator
// knows what a device runs (airlock version, the airlock_build_info
// metric). It reads them from the build info Go embeds in every binary.
//
// A build outside a git checkout (a Docker build whose context leaves out
// .git) has no commit in its build info; set both at link time instead:
//
//	go build -ldflags "-X github.com/airlockhq/airlock/internal/version.Version=v1.4.0 \
//	  -X github.com/airlockhq/airlock/internal/version.Commit=$(git rev-parse HEAD)" ./cmd/airlock
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version and Commit, when set with -ldflags -X, override what the build
// info says.
var (
	Version string
	Commit  string
)

const wazeroPath = "github.com/tetratelabs/wazero"

// Info is what a binary is.
type Info struct {
	Version  string // "v1.4.0", a pseudo-version of a git checkout, or "(devel)"
	Commit   string // the git commit, or "unknown"
	Modified bool   // built from a checkout with uncommitted changes
	Go       string // "go1.26.8"
	Wazero   string // wazero's module version, "v1.12.0"
}

// Get reads the running binary's Info.
func Get() Info {
	bi, ok := debug.ReadBuildInfo()
	return fromBuildInfo(bi, ok, Version, Commit)
}

func fromBuildInfo(bi *debug.BuildInfo, ok bool, version, commit string) Info {
	i := Info{Version: "(devel)", Commit: "unknown", Go: runtime.Version(), Wazero: "unknown"}
	if ok {
		if v := bi.Main.Version; v != "" {
			i.Version = v
		}
		if bi.GoVersion != "" {
			i.Go = bi.GoVersion
		}
		for _, d := range bi.Deps {
			if d.Path == wazeroPath {
				i.Wazero = d.Version
				if d.Replace != nil && d.Replace.Version != "" {
					i.Wazero = d.Replace.Version
				}
			}
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				i.Commit = s.Value
			case "vcs.modified":
				i.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		i.Version = version
	}
	if commit != "" {
		i.Commit, i.Modified = commit, false
	}
	return i
}

// String is the one line `airlock --version` prints.
func (i Info) String() string {
	commit := i.Commit
	if i.Modified {
		commit += " (modified)"
	}
	return fmt.Sprintf("airlock %s (commit %s, %s, wazero %s)", i.Version, commit, i.Go, i.Wazero)
}
