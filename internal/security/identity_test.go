package security

// Hostile cases against a plugin's identity (its name, /data, metrics,
// status and admin target) and against the host's secrets in the
// environment: issue 15, items 4 and 5.

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/builtin"
	"github.com/airlockhq/airlock/host/capability"
	mf "github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/bundle"
	"github.com/airlockhq/airlock/internal/hostrun"
	"github.com/airlockhq/airlock/internal/supervisor"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
)

// rig is a host with its own runtime.toml, for the tests in this file.
type rig struct {
	t          *testing.T
	h          *host.Host
	dir        string
	log, audit *testenv.Log
}

func startRig(t *testing.T, dir, runtime string, environ []string, caps ...capability.Capability) *rig {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(runtime), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	audit, auditLogger := testenv.NewLog(t)
	run := hostrun.Start(t, filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Audit: auditLogger, Capabilities: caps, Environ: environ})
	log.Wait(1, "airlock running")
	return &rig{t: t, h: run.Host, dir: dir, log: log, audit: audit}
}

func (r *rig) fire(plugin, name string) {
	r.t.Helper()
	if !r.h.Deliver(plugin, timer.Event(plugin, name, time.Now())) {
		r.t.Fatalf("event %q for %s not queued (running: %v, failed: %v)", name, plugin, r.h.Status(), r.h.Failures())
	}
}

// vendorKey is acme's signing key in these tests.
var vendorKey = ed25519.NewKeyFromSeed([]byte(strings.Repeat("v", ed25519.SeedSize)))

// signedBundle packs the bystander guest with manifest toml as vendor's
// bundle, signed with vendorKey, and writes it to path.
func signedBundle(t *testing.T, path, vendor, name, toml string) {
	t.Helper()
	src := testenv.PluginDir(t, t.TempDir(), name, toml, bystander)
	def := mf.DefaultRuntime()
	def.Env.Pass = []string{"WIFI_PSK"} // what the vendor's manifest may ask for
	m, err := mf.LoadManifest(filepath.Join(src, "plugin.toml"), &def, host.Schema(builtin.Capabilities()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Pack(m, vendor, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	b.Sign(vendorKey)
	if err := os.WriteFile(path, b.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func trustRuntime(extra string) string {
	return `plugins = ["plugins"]
state_dir = "state"
device = "sim"
[trust]
allow_unsigned = ["plugins"]
[[trust.vendor]]
name = "acme"
key = "` + base64.StdEncoding.EncodeToString(vendorKey.Public().(ed25519.PublicKey)) + `"
[trust.vendor.ceiling]
data = true
env = ["WIFI_PSK", "APP_*"]
` + extra
}

// TestVendorBundleCannotTakeLocalIdentity: a signed bundle whose manifest
// says name = "keeper" never becomes the operator's keeper, whichever file
// sorts first: it runs as acme/keeper with its own /data, and reads nothing
// of keeper's.
func TestVendorBundleCannotTakeLocalIdentity(t *testing.T) {
	const keeper = "name = \"keeper\"\nversion = \"0.1.0\"\n[storage]\ndata = true\n"
	// "a-keeper.airlock" is read before the keeper directory,
	// "zz-keeper.airlock" after it.
	for _, file := range []string{"a-keeper.airlock", "zz-keeper.airlock"} {
		t.Run(file, func(t *testing.T) {
			dir := t.TempDir()
			plugins := filepath.Join(dir, "plugins")
			testenv.PluginDir(t, plugins, "keeper", keeper, bystander)
			signedBundle(t, filepath.Join(plugins, file), "acme", "keeper", keeper)
			secret := filepath.Join(dir, "state", "data", "keeper", "secret.txt")
			os.MkdirAll(filepath.Dir(secret), 0o700)
			if err := os.WriteFile(secret, []byte("operator-only"), 0o600); err != nil {
				t.Fatal(err)
			}
			r := startRig(t, dir, trustRuntime(""), nil)
			r.log.Wait(1, "INFO started", "plugin=keeper")
			r.log.Wait(1, "INFO started", "plugin=acme/keeper")
			if f := r.h.Failures(); len(f) != 0 {
				t.Fatalf("load failures: %v", f)
			}
			names := []string{}
			for _, st := range r.h.Status() {
				names = append(names, st.Name)
			}
			if strings.Join(names, ",") != "acme/keeper,keeper" {
				t.Errorf("running plugins = %v, want acme/keeper and keeper", names)
			}
			r.fire("acme/keeper", "read:/data/secret.txt")
			r.fire("acme/keeper", "write:mine.txt")
			r.fire("keeper", "read:/data/secret.txt")
			r.log.Wait(1, "read /data/secret.txt", "plugin=acme/keeper")
			r.log.Wait(1, "write: ok", "plugin=acme/keeper")
			r.log.Wait(1, "read /data/secret.txt: ok operator-only", "plugin=keeper")
			for _, l := range r.log.Lines() {
				if strings.Contains(l, "operator-only") && !strings.Contains(l, "plugin=keeper") {
					t.Errorf("the bundle read keeper's /data: %s", l)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, "state", "data", "acme@keeper", "mine.txt")); err != nil {
				t.Errorf("the bundle's /data is not under state/data/acme@keeper: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "state", "data", "keeper", "mine.txt")); err == nil {
				t.Error("the bundle wrote into keeper's /data")
			}
		})
	}
}

// TestNameCollisionRefusesEveryClaimant: two plugins of one trust domain
// (two local directories, or two bundles of one vendor) that claim a name
// both stay down, each refusal naming both sources, whichever file comes
// first; the others run.
func TestNameCollisionRefusesEveryClaimant(t *testing.T) {
	const twin = "name = \"twin\"\nversion = \"0.1.0\"\n"
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	testenv.PluginDir(t, plugins, "a-twin", twin, bystander)
	testenv.PluginDir(t, plugins, "z-twin", twin, bystander)
	testenv.PluginDir(t, plugins, "other", "name = \"other\"\nversion = \"0.1.0\"\n", bystander)
	signedBundle(t, filepath.Join(plugins, "one.airlock"), "acme", "twin", twin)
	signedBundle(t, filepath.Join(plugins, "two.airlock"), "acme", "twin", strings.Replace(twin, "0.1.0", "0.2.0", 1))
	r := startRig(t, dir, trustRuntime(""), nil)
	r.log.Wait(1, "INFO started", "plugin=other")
	f := r.h.Failures()
	for _, c := range []struct{ key, other string }{
		{filepath.Join(plugins, "a-twin"), "z-twin"},
		{filepath.Join(plugins, "z-twin"), "a-twin"},
		{filepath.Join(plugins, "one.airlock"), "two.airlock"},
		{filepath.Join(plugins, "two.airlock"), "one.airlock"},
	} {
		err := f[c.key]
		if err == nil || !strings.Contains(err.Error(), "duplicate plugin name") || !strings.Contains(err.Error(), c.other) {
			t.Errorf("%s: load error = %v, want a duplicate refusal that names %s", c.key, err, c.other)
		}
	}
	for _, st := range r.h.Status() {
		if st.Name == "twin" || st.Name == "acme/twin" {
			t.Errorf("%s runs although two sources claim it", st.Name)
		}
	}
}

// TestPluginNamesAreNotPaths: a name becomes a directory under state_dir
// and a metrics label, so names that are paths, look-alikes, or too long
// are refused, in plugin.toml and in [[trust.vendor]].
func TestPluginNamesAreNotPaths(t *testing.T) {
	schema := host.Schema(builtin.Capabilities())
	def := mf.DefaultRuntime()
	for _, name := range []string{"..", ".", "../keeper", "keeper/..", "a/b", "/etc", "keeper@acme", "KEEPER", "Keeper",
		"k\u0435eper" /* Cyrillic e */, "keeper\u200b", "keeper\n", "keeper ", "", strings.Repeat("k", 64), "-keeper", "1keeper"} {
		toml := "name = " + strconvQuote(name) + "\nversion = \"0.1.0\"\n"
		if _, err := mf.ParseManifest("/p/plugin.toml", []byte(toml), &def, schema); err == nil || !strings.Contains(err.Error(), "name") {
			t.Errorf("plugin name %q: accepted (err %v)", name, err)
		}
	}
	for _, name := range []string{"..", ".", "a/b", "acme@x", "ACME", "a\u0441me", strings.Repeat("a", 64)} {
		rt := `plugins = ["p"]
[[trust.vendor]]
name = ` + strconvQuote(name) + `
key = "` + base64.StdEncoding.EncodeToString(vendorKey.Public().(ed25519.PublicKey)) + `"
`
		if _, err := mf.ParseRuntime("/r/runtime.toml", []byte(rt), host.RuntimeSections(builtin.Capabilities())); err == nil {
			t.Errorf("vendor name %q: accepted", name)
		}
	}
}

func strconvQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteString(`\` + string(r))
		case r == '\n':
			b.WriteString(`\n`)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// TestSecretsNeverReachPlugins: with the supervisor key in a variable of
// the operator's choosing, no env.allow form (an exact name, a prefix that
// covers it, the name itself as a prefix, one letter) passes it, nor a
// variable holding its value, nor another host secret; secret-looking names
// pass only by exact name with the operator's [env] pass, and every
// refusal is audited with its reason.
func TestSecretsNeverReachPlugins(t *testing.T) {
	const key = "k3y-of-the-supervisor-0123"
	environ := []string{
		"SUPERVISOR_KEY=" + key, "SUPERVISOR_ADDR=http://10.0.0.1:48484", "COPY=" + key, "EMBED=Bearer " + key,
		"SSH_PRIVATE_KEY=-----BEGIN OPENSSH PRIVATE KEY-----x", "DB_PASS=hunter2", "GITHUB_PAT=ghp_abc", "WIFI_PSK=wifipsk",
		"DATABASE_URL=postgres://app:hunter2@db/app", "VAULT_ROOT=s.root", "BALENA_API_KEY=cloudkey", "BALENA_DEVICE_TYPE=rpi4",
		"APP_MODE=prod", "APP_LINK=https://x.example/?token=abc",
	}
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	man := func(name, allow string) string {
		return "name = \"" + name + "\"\nversion = \"0.1.0\"\n[env]\nallow = [" + allow + "]\n"
	}
	testenv.PluginDir(t, plugins, "patterns", man("patterns", `"SUPERVISOR_*", "SUPERVISOR_KEY*", "S*", "C*", "E*", "DB_*", "GITHUB_*", "WIFI_*", "DATABASE_*", "VAULT_*", "BALENA_*", "APP_*"`), bystander)
	testenv.PluginDir(t, plugins, "exact", man("exact", `"WIFI_PSK", "SUPERVISOR_KEY", "APP_MODE"`), bystander)
	testenv.PluginDir(t, plugins, "asker", man("asker", `"DB_PASS"`), bystander)
	signedBundle(t, filepath.Join(plugins, "vendor.airlock"), "acme", "vendor", man("vendor", `"WIFI_PSK", "APP_*"`))
	r := startRig(t, dir, trustRuntime(`[supervisor]
api_key_env = "SUPERVISOR_KEY"
[env]
secrets = ["VAULT_ROOT"]
pass = ["WIFI_PSK", "SUPERVISOR_KEY"]
`), environ, supervisor.NewCapability(supervisor.CapabilityOptions{}))

	want := map[string]string{
		"patterns":    "env APP_MODE=prod,BALENA_DEVICE_TYPE=rpi4,SUPERVISOR_ADDR=http://10.0.0.1:48484 ",
		"exact":       "env APP_MODE=prod,WIFI_PSK=wifipsk ",
		"acme/vendor": "env APP_MODE=prod ",
	}
	for p, w := range want {
		r.log.Wait(1, "INFO started", "plugin="+p)
		r.fire(p, "env")
		r.log.Wait(1, "INFO env ", "plugin="+p)
		if r.log.Count("INFO "+w, "plugin="+p) != 1 {
			t.Errorf("%s saw the wrong environment, want %q:\n%s", p, w, strings.Join(r.log.Lines(), "\n"))
		}
	}
	for _, l := range append(r.log.Lines(), r.audit.Lines()...) {
		for _, s := range []string{key, "hunter2", "ghp_abc", "s.root", "cloudkey", "OPENSSH"} {
			if strings.Contains(l, s) {
				t.Errorf("a secret (%s) is in the log: %s", s, l)
			}
		}
	}
	if err := r.h.Failures()[filepath.Join(plugins, "asker")]; err == nil || !strings.Contains(err.Error(), `"DB_PASS" looks like a secret`) {
		t.Errorf("asker: load error = %v, want DB_PASS refused as secret-looking", err)
	}
	for _, c := range []struct{ plugin, variable, reason string }{
		{"patterns", "SUPERVISOR_KEY", "holds a host secret (the key the supervisor capability uses)"},
		{"exact", "SUPERVISOR_KEY", "holds a host secret"},
		{"patterns", "COPY", "value holds the host secret in SUPERVISOR_KEY"},
		{"patterns", "EMBED", "value holds the host secret in SUPERVISOR_KEY"},
		{"patterns", "VAULT_ROOT", "runtime.toml's [env] secrets"},
		{"patterns", "BALENA_API_KEY", "holds a host secret"},
		{"patterns", "SSH_PRIVATE_KEY", "a pattern in env.allow never selects one"},
		{"patterns", "DB_PASS", "its name has the word PASS"},
		{"patterns", "GITHUB_PAT", "its name has the word PAT"},
		{"patterns", "WIFI_PSK", "its name has the word PSK"},
		{"patterns", "DATABASE_URL", "URL with a password"},
		{"patterns", "APP_LINK", `URL with a "token" parameter`},
		{"acme/vendor", "WIFI_PSK", "a vendor's bundle never reads one"},
	} {
		if n := r.audit.Count("plugin="+c.plugin+" ", "capability=env", "op=read "+c.variable+" ", "decision=deny", c.reason); n != 1 {
			t.Errorf("%s: %d audit records of %s refused with %q, want 1", c.plugin, n, c.variable, c.reason)
		}
	}
	if n := r.audit.Count("plugin=exact ", "capability=env", "op=read WIFI_PSK ", "decision=allow"); n != 1 {
		t.Errorf("%d audit records of exact reading WIFI_PSK, want 1", n)
	}
}
