package manifest

import (
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// imageTOML is an image's runtime.toml with one vendor and an overlay on
// its /data.
const imageTOML = `plugins = ["plugins"]
state_dir = "data/airlock"
overlay = "data/overlay.toml"
[ceiling]
memory = "128MiB"
handler_timeout = "30s"
queue = 1024
[log]
audit = "data/audit.jsonl"
[trust]
allow_unsigned = ["plugins"]
[[trust.vendor]]
name = "acme"
key = "KEY_ACME"
[trust.vendor.ceiling]
data = true
`

func testKey(seed byte) string {
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	return base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(s).Public().(ed25519.PublicKey))
}

// loadWithOverlay writes the image's file and the overlay (none if ""),
// and loads them as airlock run does.
func loadWithOverlay(t *testing.T, overlay string, mode os.FileMode) (*Runtime, error) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "data"), 0o700)
	conf := filepath.Join(dir, "runtime.toml")
	if err := os.WriteFile(conf, []byte(strings.ReplaceAll(imageTOML, "KEY_ACME", testKey(1))), 0o644); err != nil {
		t.Fatal(err)
	}
	if overlay != "" {
		p := filepath.Join(dir, "data", "overlay.toml")
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(overlay, "KEY_ACME", testKey(1))), mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, mode)
	}
	return LoadRuntime(conf, nil)
}

func TestOverlayAbsentIsNoOverlay(t *testing.T) {
	rt, err := loadWithOverlay(t, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	if rt.OverlayApplied || len(rt.Trust.Vendors) != 1 || !strings.HasSuffix(rt.Overlay, "/data/overlay.toml") {
		t.Errorf("without an overlay file: applied %v, vendors %d, overlay %q", rt.OverlayApplied, len(rt.Trust.Vendors), rt.Overlay)
	}
}

func TestOverlayExtends(t *testing.T) {
	ref := "registry.example.com/beta/ntp@sha256:" + strings.Repeat("ab", 32)
	rt, err := loadWithOverlay(t, `timezone = "Europe/Berlin"
[limits]
memory = "32MiB"
[ceiling]
memory = "96MiB"
[log]
level = "debug"
[metrics]
listen = "0.0.0.0:9464"
[trust]
revoked = ["sha256:`+strings.Repeat("cd", 32)+`"]
[[trust.vendor]]
name = "beta"
key = "`+testKey(2)+`"
not_after = 2099-01-01T00:00:00Z
[trust.vendor.ceiling]
triggers = ["udev"]
[[bundle]]
ref = "`+ref+`"
`, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if !rt.OverlayApplied {
		t.Error("OverlayApplied is false")
	}
	if rt.Limits.Memory != 32<<20 || rt.Ceiling.Memory != 96<<20 || rt.Ceiling.Queue != 1024 || rt.Ceiling.HandlerTimeout != Duration(30*time.Second) {
		t.Errorf("limits %+v ceiling %+v: want the overlay's memory, the image's other ceilings", rt.Limits, rt.Ceiling)
	}
	if rt.Log.Level != "debug" || !strings.HasSuffix(rt.Log.Audit, "data/audit.jsonl") || rt.Metrics.Listen != "0.0.0.0:9464" {
		t.Errorf("log %+v metrics %+v", rt.Log, rt.Metrics)
	}
	if len(rt.Trust.Vendors) != 2 || rt.Trust.Vendors[0].Name != "acme" || !rt.Trust.Vendors[0].Ceiling.Data || rt.Trust.Vendors[1].Name != "beta" {
		t.Errorf("vendors %+v: want acme as the image says, then beta", rt.Trust.Vendors)
	}
	if len(rt.Trust.Revoked) != 1 || len(rt.Bundles) != 1 || rt.Bundles[0].Ref != ref {
		t.Errorf("revoked %v bundles %v", rt.Trust.Revoked, rt.Bundles)
	}
	if rt.Timezone != "Europe/Berlin" || rt.Location.String() != "Europe/Berlin" {
		t.Errorf("timezone %q, location %v", rt.Timezone, rt.Location)
	}
	if len(rt.Trust.AllowUnsigned) != 1 || !strings.HasSuffix(rt.Trust.AllowUnsigned[0], "/plugins") {
		t.Errorf("allow_unsigned %v: the image's, unchanged", rt.Trust.AllowUnsigned)
	}
}

// TestOverlayCannotLoosen: what only the image may set, an overlay
// cannot, and says where to set it instead.
func TestOverlayCannotLoosen(t *testing.T) {
	cases := []struct{ name, overlay, want string }{
		{"plugins", `plugins = ["/data/evil"]`, `overlay.toml:1: plugins: may not be set in an overlay (set it in `},
		{"state dir", "\n\nstate_dir = \"/tmp\"", "overlay.toml:3: state_dir: may not be set in an overlay"},
		{"device", `device = "sim"`, "device: may not be set in an overlay"},
		{"capability section", "[supervisor]\naddress = \"http://evil\"", "supervisor: may not be set in an overlay"},
		{"audit", "[log]\naudit = \"off\"", "overlay.toml:2: log.audit: unknown key"},
		{"unsigned code", "[trust]\nallow_unsigned = [\"/data\"]", "trust.allow_unsigned: may not be set in an overlay (an overlay may trust more vendors' keys, not unsigned code"},
		{"raised ceiling", "[ceiling]\nqueue = 4096", "overlay.toml:2: ceiling.queue: 4096 is above the image's 1024 (an overlay may lower the image's [ceiling], not raise it"},
		{"default above ceiling", "[limits]\nmemory = \"256MiB\"", "limits.memory: default 256MiB is above the ceiling 128MiB"},
		{"image vendor redefined", "[[trust.vendor]]\nname = \"acme\"\nkey = \"KEY_ACME\"\n[trust.vendor.ceiling]\ndata = true\nenv = [\"*\"]", `trust.vendor[0]: vendor "acme" (or its key) is already trusted by`},
		{"image vendor's key renamed", "[[trust.vendor]]\nname = \"other\"\nkey = \"KEY_ACME\"", `vendor "acme" (or its key) is already trusted`},
		{"unknown zone", `timezone = "Mars/Olympus"`, `overlay.toml:1: timezone: unknown time zone "Mars/Olympus" (use an IANA zone name`},
		{"typo", "[limts]\nmemory = \"1MiB\"", `limts: may not be set in an overlay`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadWithOverlay(t, c.overlay, 0o600)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("overlay %q: error %v\nwant one with %q", c.overlay, err, c.want)
			}
		})
	}
}

// TestOverlayOthersCouldWriteIsRefused: an overlay may add trusted keys,
// so one that another user could have written is not read.
func TestOverlayOthersCouldWriteIsRefused(t *testing.T) {
	_, err := loadWithOverlay(t, "[log]\nlevel = \"debug\"\n", 0o666)
	if err == nil || !strings.Contains(err.Error(), "has mode 0666: another user could add trusted keys") {
		t.Errorf("a world-writable overlay: %v", err)
	}
}

// TestCronTimersUseRuntimeZone: a plugin's cron timers run in the
// runtime's zone; plugin.toml cannot choose another.
func TestCronTimersUseRuntimeZone(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "runtime.toml")
	if err := os.WriteFile(conf, []byte("timezone = \"America/New_York\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt, err := LoadRuntime(conf, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := ParseManifest(filepath.Join(dir, "p", "plugin.toml"), []byte("name = \"p\"\nversion = \"1.0.0\"\n[[trigger.timer]]\nname = \"nightly\"\ncron = \"30 2 * * *\"\n"), rt, Schema{})
	if err != nil {
		t.Fatal(err)
	}
	if loc := m.Timers[0].Location; loc == nil || loc.String() != "America/New_York" {
		t.Errorf("timer location %v, want the runtime's America/New_York", loc)
	}
	_, err = ParseManifest(filepath.Join(dir, "p", "plugin.toml"), []byte("name = \"p\"\nversion = \"1.0.0\"\n[[trigger.timer]]\nname = \"nightly\"\ncron = \"30 2 * * *\"\nlocation = \"UTC\"\n"), rt, Schema{})
	if err == nil || !strings.Contains(err.Error(), "location: unknown key") {
		t.Errorf("a plugin choosing its zone: %v", err)
	}
}
