package version

import (
	"runtime"
	"runtime/debug"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/airlockhq/airlock", Version: "v0.0.0-20261207211600-2f98134abcde+dirty"},
		Deps:      []*debug.Module{{Path: "github.com/godbus/dbus/v5", Version: "v5.1.0"}, {Path: wazeroPath, Version: "v1.12.0"}},
		Settings:  []debug.BuildSetting{{Key: "vcs.revision", Value: "2f98134abcdef"}, {Key: "vcs.modified", Value: "true"}},
	}
	cases := []struct {
		name            string
		bi              *debug.BuildInfo
		ok              bool
		version, commit string
		want            Info
		line            string
	}{
		{"from a checkout", bi, true, "", "",
			Info{Version: "v0.0.0-20261207211600-2f98134abcde+dirty", Commit: "2f98134abcdef", Modified: true, Go: "go1.26.8", Wazero: "v1.12.0"},
			"airlock v0.0.0-20261207211600-2f98134abcde+dirty (commit 2f98134abcdef (modified), go1.26.8, wazero v1.12.0)"},
		{"ldflags override", bi, true, "v1.4.0", "feedface",
			Info{Version: "v1.4.0", Commit: "feedface", Go: "go1.26.8", Wazero: "v1.12.0"},
			"airlock v1.4.0 (commit feedface, go1.26.8, wazero v1.12.0)"},
		{"no build info", nil, false, "", "",
			Info{Version: "(devel)", Commit: "unknown", Go: runtime.Version(), Wazero: "unknown"},
			"airlock (devel) (commit unknown, " + runtime.Version() + ", wazero unknown)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := fromBuildInfo(c.bi, c.ok, c.version, c.commit)
			if got != c.want {
				t.Errorf("got %+v\nwant %+v", got, c.want)
			}
			if got.String() != c.line {
				t.Errorf("String() = %q\nwant      %q", got.String(), c.line)
			}
		})
	}
}
