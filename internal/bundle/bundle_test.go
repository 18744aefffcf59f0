package bundle_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/builtin"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/bundle"
)

var update = flag.Bool("update", false, "rewrite the .golden files")

// module is the smallest module that declares airlock ABI v1: it exports
// one empty function named airlock_abi_v1.
var module = []byte("\x00asm\x01\x00\x00\x00" +
	"\x01\x04\x01\x60\x00\x00" +
	"\x03\x02\x01\x00" +
	"\x07\x12\x01\x0eairlock_abi_v1\x00\x00" +
	"\x0a\x04\x01\x02\x00\x0b")

const ntpToml = `name = "ntp-check"
version = "1.2.0"
wasm = "ntp-check.wasm"

[storage]
data = true

[[trigger.timer]]
every = "5m"

[[dbus.property]]
destination = "org.freedesktop.timedate1"
path = "/org/freedesktop/timedate1"
interface = "org.freedesktop.timedate1"
name = "NTPSynchronized"
access = "get"
`

// now is the clock the tests verify at; key expiry is compared with it,
// never with the wall clock.
var now = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func key(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed([]byte(strings.Repeat(string(rune('a'+seed)), ed25519.SeedSize)))
}

func pub(sk ed25519.PrivateKey) string {
	return base64.StdEncoding.EncodeToString(sk.Public().(ed25519.PublicKey))
}

// plugin writes a plugin directory and returns it.
func plugin(t *testing.T, dir, toml string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "plugin.toml"), []byte(toml), 0o644)
	os.WriteFile(filepath.Join(dir, "ntp-check.wasm"), module, 0o644)
	return dir
}

// runtime parses a runtime.toml in root with the built-in capabilities.
func runtime(t *testing.T, root, toml string) *manifest.Runtime {
	t.Helper()
	path := filepath.Join(root, "runtime.toml")
	rt, err := manifest.ParseRuntime(path, []byte(toml), host.RuntimeSections(builtin.Capabilities()))
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func schema() manifest.Schema { return host.Schema(builtin.Capabilities()) }

// pack makes a bundle of the ntp-check plugin, signed by each of signers.
func pack(t *testing.T, toml, vendor string, signers ...ed25519.PrivateKey) *bundle.Bundle {
	t.Helper()
	dir := plugin(t, filepath.Join(t.TempDir(), "src"), toml)
	def := manifest.DefaultRuntime()
	m, err := manifest.LoadManifest(filepath.Join(dir, "plugin.toml"), &def, schema())
	if err != nil {
		t.Fatal(err)
	}
	b, err := bundle.Pack(m, vendor, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	for _, sk := range signers {
		b.Sign(sk)
	}
	return b
}

func write(t *testing.T, dir string, data []byte) string {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	p := filepath.Join(dir, "ntp-check.airlock")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func trustToml(extra string) string {
	return `plugins = ["vendor", "dev"]
state_dir = "state"

[trust]
allow_unsigned = ["dev"]
` + extra + `
[[trust.vendor]]
name = "acme"
key = "` + pub(key(0)) + `"
not_after = 2030-01-01T00:00:00Z

[trust.vendor.ceiling]
data = true
[trust.vendor.ceiling.dbus]
destinations = ["org.freedesktop.timedate1"]

[[trust.vendor]]
name = "oldco"
key = "` + pub(key(2)) + `"
not_after = 2025-01-01T00:00:00Z
`
}

func TestRoundTripIsCanonical(t *testing.T) {
	b := pack(t, ntpToml, "acme", key(0))
	data := b.Encode()
	got, err := bundle.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.Digest != b.Digest || string(got.Encode()) != string(data) {
		t.Fatal("decode and encode do not round-trip")
	}
	// The digest covers the content, not the signatures.
	if again := pack(t, ntpToml, "acme"); again.Digest != b.Digest {
		t.Errorf("the same content packs to %s and %s", again.Digest, b.Digest)
	}
}

func TestLoad(t *testing.T) {
	signed := pack(t, ntpToml, "acme", key(0))
	for _, tc := range []struct {
		name  string
		dir   string // "vendor" (signatures required) or "dev" (allow_unsigned)
		data  func() []byte
		extra string // more [trust] keys
		want  error  // nil: loads
		vend  string // the vendor it loads as; "" for unsigned
	}{
		{name: "signed by a trusted vendor", dir: "vendor", data: signed.Encode, vend: "acme"},
		{name: "tampered module", dir: "vendor", want: bundle.ErrDigest, data: func() []byte {
			d := signed.Encode()
			i := strings.Index(string(d), "airlock_abi_v1")
			d[i] = 'A'
			return d
		}},
		{name: "tampered module and digest", dir: "vendor", want: bundle.ErrSignature, data: func() []byte {
			other, _ := bundle.New(signed.Meta, signed.Manifest, append([]byte{}, append(signed.Module, 0)...))
			other.Signatures = signed.Signatures
			return other.Encode()
		}},
		{name: "wrong key", dir: "vendor", want: bundle.ErrUnsigned, data: pack(t, ntpToml, "acme", key(1)).Encode},
		{name: "unsigned", dir: "vendor", want: bundle.ErrUnsigned, data: pack(t, ntpToml, "acme").Encode},
		{name: "expired key", dir: "vendor", want: bundle.ErrExpired, data: pack(t, ntpToml, "oldco", key(2)).Encode},
		{name: "revoked key", dir: "vendor", want: bundle.ErrRevoked, extra: `revoked = ["` + pub(key(0)) + `"]`, data: signed.Encode},
		{name: "revoked bundle", dir: "dev", want: bundle.ErrRevoked, extra: `revoked = ["` + signed.Digest + `"]`, data: signed.Encode},
		{name: "claims another vendor", dir: "vendor", want: bundle.ErrSignature, data: pack(t, ntpToml, "oldco", key(0)).Encode},
		{name: "developer mode: unsigned", dir: "dev", data: pack(t, ntpToml, "").Encode},
		{name: "developer mode: wrong key", dir: "dev", data: pack(t, ntpToml, "acme", key(1)).Encode},
		{name: "developer mode: tampered is still refused", dir: "dev", want: bundle.ErrDigest, data: func() []byte {
			d := signed.Encode()
			d[len("airlock-bundle 1\nmeta ")+5] ^= 1
			return d
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			rt := runtime(t, root, trustToml(tc.extra))
			path := write(t, filepath.Join(root, tc.dir), tc.data())
			l, err := bundle.Load(path, rt, schema(), now)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("got %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			vend := ""
			if l.Signer.Vendor != nil {
				vend = l.Signer.Vendor.Name
			}
			// A signed bundle's plugin is known as vendor/name; an
			// unsigned one (developer mode) by its own name.
			want := "ntp-check"
			if tc.vend != "" {
				want = tc.vend + "/ntp-check"
			}
			if vend != tc.vend || l.Manifest.Name != want || l.Manifest.Vendor != tc.vend {
				t.Fatalf("loaded %s (vendor %q) as vendor %q, want %s as vendor %q", l.Manifest.Name, l.Manifest.Vendor, vend, want, tc.vend)
			}
			got, err := os.ReadFile(l.Manifest.Wasm)
			if err != nil || string(got) != string(module) {
				t.Fatalf("unpacked module: %v", err)
			}
		})
	}
}

// TestPlainDirectories: a plugin directory is an unsigned plugin. Without
// [trust] every plugins directory may hold one (runtime.toml files from
// before bundles); with [trust], only allow_unsigned ones.
func TestPlainDirectories(t *testing.T) {
	root := t.TempDir()
	p := filepath.Join(plugin(t, filepath.Join(root, "vendor", "ntp"), ntpToml), "plugin.toml")
	plugin(t, filepath.Join(root, "dev", "ntp"), ntpToml)
	legacy := runtime(t, root, `plugins = ["vendor"]`)
	if _, err := bundle.Load(p, legacy, schema(), now); err != nil {
		t.Fatalf("without [trust]: %v", err)
	}
	rt := runtime(t, root, trustToml(""))
	if _, err := bundle.Load(p, rt, schema(), now); err == nil || !strings.Contains(err.Error(), "outside [trust] allow_unsigned") {
		t.Fatalf("outside allow_unsigned: %v", err)
	}
	if _, err := bundle.Load(filepath.Join(root, "dev", "ntp", "plugin.toml"), rt, schema(), now); err != nil {
		t.Fatalf("in allow_unsigned: %v", err)
	}
}

// TestCeilingGolden: a manifest that asks for more than its vendor's
// ceiling is refused with a message that lists the difference.
func TestCeilingGolden(t *testing.T) {
	greedy := ntpToml + `
[env]
allow = ["BALENA_DEVICE_UUID"]

[supervisor]
allow = ["reboot"]

[[dbus.call]]
destination = "org.freedesktop.systemd1"
path = "/org/freedesktop/systemd1"
interface = "org.freedesktop.systemd1.Manager"
member = "StopUnit"
args = ["bluetooth.service", "replace"]

[[dbus.property]]
destination = "org.freedesktop.timedate1"
path = "/org/freedesktop/timedate1"
interface = "org.freedesktop.timedate1"
name = "Timezone"
access = ["get", "set"]

[[mount]]
source = ["label:MEDIA*"]
fstype = ["vfat"]

[[trigger.udev]]
subsystem = "block"
`
	root := t.TempDir()
	rt := runtime(t, root, trustToml(""))
	path := write(t, filepath.Join(root, "vendor"), pack(t, greedy, "acme", key(0)).Encode())
	_, err := bundle.Load(path, rt, schema(), now)
	var ce *bundle.CeilingError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v, want a CeilingError", err)
	}
	got := strings.ReplaceAll(err.Error(), path, "ntp-check.airlock") + "\n"
	gf := filepath.Join("testdata", "ceiling.golden")
	if *update {
		os.WriteFile(gf, []byte(got), 0o644)
	}
	want, _ := os.ReadFile(gf)
	if got != string(want) {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestDescribe(t *testing.T) {
	b := pack(t, ntpToml, "acme")
	rt := manifest.DefaultRuntime()
	m, err := b.Unpack(t.TempDir(), &rt, schema())
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(bundle.Describe(m), "\n")
	want := `may read the property NTPSynchronized of org.freedesktop.timedate1 on org.freedesktop.timedate1 (at /org/freedesktop/timedate1)
may keep files in its own persistent /data directory
is woken every 5m0s (timer timer1)`
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// TestKeygenRefusesExistingFiles: Keygen overwrites neither half of a key
// pair, says which file exists and what to do, and leaves no .key without
// its .pub.
func TestKeygenRefusesExistingFiles(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "acme")
	pub, err := bundle.Keygen(base)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := bundle.ReadPrivateKey(base + ".key")
	if err != nil || base64.StdEncoding.EncodeToString(sk.Public().(ed25519.PublicKey)) != pub {
		t.Fatalf("acme.key does not hold the private half of %s: %v", pub, err)
	}
	if got, _ := os.ReadFile(base + ".pub"); string(got) != pub+"\n" {
		t.Errorf("acme.pub holds %q, want %q", got, pub+"\n")
	}

	// lone.pub alone: the .key is made first, then removed when the .pub
	// cannot be written.
	lone := filepath.Join(dir, "lone")
	if err := os.WriteFile(lone+".pub", []byte("trusted\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	key, _ := os.ReadFile(base + ".key")
	for _, c := range []struct{ base, exists string }{
		{base, base + ".key"},
		{lone, lone + ".pub"},
	} {
		_, err := bundle.Keygen(c.base)
		want := c.exists + " already exists (choose another name with -o, or remove the old key pair if you mean to replace it)"
		if err == nil || err.Error() != want {
			t.Errorf("Keygen(%s) with %s there: %v, want %q", c.base, c.exists, err, want)
		}
	}
	if got, _ := os.ReadFile(base + ".key"); string(got) != string(key) {
		t.Error("Keygen overwrote an existing .key")
	}
	if got, _ := os.ReadFile(base + ".pub"); string(got) != pub+"\n" {
		t.Error("Keygen overwrote the .pub beside an existing .key")
	}
	if got, _ := os.ReadFile(lone + ".pub"); string(got) != "trusted\n" {
		t.Error("Keygen overwrote an existing .pub")
	}
	if _, err := os.Lstat(lone + ".key"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Keygen left lone.key beside a lone.pub it could not write: %v", err)
	}
}
