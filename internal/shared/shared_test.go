package shared_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/logtest"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/bundle"
	"github.com/airlockhq/airlock/internal/shared"
)

// setup parses runtime.toml text (with the shared capability's sections)
// and provisions a capability with it and an audit log.
func setup(t *testing.T, runtime string) (*shared.Shared, *manifest.Runtime, *logtest.Log) {
	t.Helper()
	s := shared.New()
	caps := []capability.Capability{s}
	path := filepath.Join(t.TempDir(), "runtime.toml")
	rt, err := manifest.ParseRuntime(path, []byte(runtime), host.RuntimeSections(caps))
	if err != nil {
		t.Fatal(err)
	}
	audit, logger := logtest.New(t)
	g := gate.New(logger)
	t.Cleanup(g.Close)
	if err := s.Provision(t.Context(), capability.Env{Runtime: rt, Config: rt.Sections[shared.Name], Gate: g}); err != nil {
		t.Fatal(err)
	}
	return s, rt, audit
}

func parseManifest(t *testing.T, rt *manifest.Runtime, text string) (*manifest.Manifest, error) {
	t.Helper()
	return manifest.ParseManifest(filepath.Join(t.TempDir(), "plugin.toml"), []byte("name = \"p\"\nversion = \"1.0.0\"\n"+text), rt,
		host.Schema([]capability.Capability{shared.New()}))
}

func declare(name, path, mode string) string {
	return "[[shared]]\nname = \"" + name + "\"\npath = \"" + path + "\"\nmode = \"" + mode + "\"\n"
}

// Bad [[shared]] tables are refused with the file, the key and the fix;
// a path with ".." in it, which would point the share somewhere else than
// it reads, is one of them.
func TestConfigErrors(t *testing.T) {
	for _, tc := range []struct{ name, text, want string }{
		{"dotdot path", declare("logs", "/mnt/app/../../etc", "ro"), `shared[1].path: shared directory path "/mnt/app/../../etc" is not an absolute clean path below /`},
		{"relative path", declare("logs", "app/logs", "ro"), `is not an absolute clean path`},
		{"root", declare("logs", "/", "ro"), `is not an absolute clean path below /`},
		{"dotdot name", declare("..", "/mnt/app", "ro"), `shared[1].name: shared directory name ".." is not a plain name`},
		{"slash in name", declare("a/b", "/mnt/app", "ro"), `is not a plain name`},
		{"mode", declare("logs", "/mnt/app", "rwx"), `shared[1].mode: unknown mode "rwx"`},
		{"twice", declare("logs", "/mnt/a", "ro") + declare("logs", "/mnt/b", "ro"), `shared[2].name: shared directory "logs" is declared twice`},
		{"unknown key", declare("logs", "/mnt/a", "ro") + "paht = \"x\"\n", `unknown key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := manifest.ParseRuntime("runtime.toml", []byte(tc.text), host.RuntimeSections([]capability.Capability{shared.New()}))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestGrantErrors(t *testing.T) {
	_, rt, _ := setup(t, "")
	for _, tc := range []struct{ name, text, want string }{
		{"empty", "[shared]\n", `[shared] asks for no directory`},
		{"both lists", "[shared]\nro = [\"a\"]\nrw = [\"a\"]\n", `shared.rw: shared directory "a" is listed in ro already`},
		{"path as name", "[shared]\nro = [\"/mnt/app\"]\n", `shared.ro: shared directory name "/mnt/app" is not a plain name`},
		{"dotdot name", "[shared]\nro = [\"..\"]\n", `is not a plain name`},
		{"unknown key", "[shared]\nro = [\"a\"]\ndirs = [\"a\"]\n", `shared.dirs: unknown key`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseManifest(t, rt, tc.text)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// Each name is decided at load: granted read-only or read-write at
// /shared/<name>, or refused with what to fix, and each decision audited.
// A path that is missing, not a directory, a symbolic link, or below one
// is refused: the application owning the volume could swap a link in.
func TestPreopens(t *testing.T) {
	app := t.TempDir()
	for _, d := range []string{"logs", "inbox", "real"} {
		if err := os.Mkdir(filepath.Join(app, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(app, "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for link, to := range map[string]string{"link": "real", "linkparent": "."} {
		if err := os.Symlink(to, filepath.Join(app, link)); err != nil {
			t.Fatal(err)
		}
	}
	s, rt, audit := setup(t, declare("logs", filepath.Join(app, "logs"), "ro")+declare("inbox", filepath.Join(app, "inbox"), "rw")+
		declare("missing", filepath.Join(app, "missing"), "ro")+declare("file", filepath.Join(app, "file"), "ro")+
		declare("link", filepath.Join(app, "link"), "ro")+declare("below-link", filepath.Join(app, "linkparent", "real"), "ro"))

	m, err := parseManifest(t, rt, "[shared]\nro = [\"logs\", \"inbox\"]\nrw = []\n")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Preopens(m)
	want := []capability.Preopen{
		{GuestPath: "/shared/logs", Dir: filepath.Join(app, "logs"), ReadOnly: true},
		{GuestPath: "/shared/inbox", Dir: filepath.Join(app, "inbox"), ReadOnly: true}, // rw declared, ro asked
	}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	audit.Wait(1, "plugin=p", "capability=shared", "op=open /shared/logs ro", "decision=allow")
	m, _ = parseManifest(t, rt, "[shared]\nrw = [\"inbox\"]\n")
	if got, err := s.Preopens(m); err != nil || len(got) != 1 || got[0].ReadOnly {
		t.Errorf("rw inbox: %+v, %v", got, err)
	}

	for _, tc := range []struct{ name, want string }{
		{"missing", "it does not exist; create it"},
		{"file", "it is not a directory"},
		{"link", "it is a symbolic link; declare the directory it leads to instead"},
		{"below-link", `a directory above it is a symbolic link: declare the real path "` + filepath.Join(app, "real") + `" instead`},
		{"undeclared", `asks for shared directory "undeclared", which ` + rt.File + ` does not declare (declared: below-link (ro), file (ro), inbox (rw), link (ro), logs (ro), missing (ro))`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseManifest(t, rt, "[shared]\nro = [\"logs\", \""+tc.name+"\"]\n")
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Preopens(m)
			if got != nil || err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %+v, %v; want a refusal with %q", got, err, tc.want)
			}
			audit.Wait(1, "plugin=p", "capability=shared", "op=open /shared/"+tc.name+" ro", "decision=deny", tc.want)
		})
	}
}

// A vendor's bundle may have only the shared names, and modes, that its
// [trust.vendor.ceiling.shared] allows (internal/bundle's CheckCeiling, with
// the ceiling decoded from runtime.toml in the grant's shape).
func TestCeiling(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, rt, _ := setup(t, "[trust]\nallow_unsigned = []\n[[trust.vendor]]\nname = \"acme\"\nkey = \""+base64.StdEncoding.EncodeToString(pub)+"\"\n"+
		"[trust.vendor.ceiling.shared]\nro = [\"app-logs\"]\nrw = [\"app-inbox\"]\n")
	if len(rt.Trust.Vendors) != 1 {
		t.Fatalf("vendors: %+v", rt.Trust.Vendors)
	}
	v := &rt.Trust.Vendors[0]
	for _, tc := range []struct {
		grant  string
		excess []string
	}{
		{"ro = [\"app-logs\", \"app-inbox\"]", nil},
		{"rw = [\"app-inbox\"]", nil},
		{"ro = [\"app-secrets\"]", []string{`shared: directory "app-secrets" is outside the ceiling`}},
		{"rw = [\"app-logs\"]", []string{`shared: directory "app-logs" read-write is outside the ceiling (read-only only)`}},
	} {
		m, err := parseManifest(t, rt, "[shared]\n"+tc.grant+"\n")
		if err != nil {
			t.Fatal(err)
		}
		err = bundle.CheckCeiling(m, v)
		var ce *bundle.CeilingError
		switch {
		case tc.excess == nil && err != nil:
			t.Errorf("%s: %v", tc.grant, err)
		case tc.excess != nil && (!errors.As(err, &ce) || !slices.Equal(ce.Excess, tc.excess)):
			t.Errorf("%s: got %v, want %q", tc.grant, err, tc.excess)
		}
	}
	// A vendor whose ceiling names no shared directory gets none.
	m, _ := parseManifest(t, rt, "[shared]\nro = [\"app-logs\"]\n")
	if err := bundle.CheckCeiling(m, &manifest.Vendor{Name: "other"}); err == nil || !strings.Contains(err.Error(), "the vendor's ceiling grants no shared at all") {
		t.Errorf("no ceiling: %v", err)
	}
}

func TestDescribe(t *testing.T) {
	g := &shared.Grant{RO: []string{"app-logs"}, RW: []string{"app-inbox"}}
	want := []string{`may read the application's shared directory "app-logs" at /shared/app-logs`,
		`may read and write the application's shared directory "app-inbox" at /shared/app-inbox`}
	if got := g.Describe(); !slices.Equal(got, want) {
		t.Errorf("got %q", got)
	}
}
