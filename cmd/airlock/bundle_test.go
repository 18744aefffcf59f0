package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/airlockhq/airlock/internal/bundle"
)

// The vendor-bundle commands as a user runs them: in a working directory
// of their own, with relative paths, reading what airlock prints. Digests
// and sizes in the expected output are computed here from the files, not
// taken from the code under test.

// result is what one run of airlock shows the user.
type result struct {
	code        int
	out, stderr string
}

func airlock(args ...string) result {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return result{code, out.String(), errb.String()}
}

// streams returns the stream a run's text belongs on and the other one:
// stdout for a command that succeeded (and for help asked for), stderr for
// an error or for the usage after wrong arguments.
func (r result) streams() (belongs, other string) {
	if r.code == 0 {
		return r.out, r.stderr
	}
	return r.stderr, r.out
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.out, r.stderr)
}

// mustRun runs airlock and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := airlock(args...)
	if r.code != 0 {
		t.Fatalf("airlock %s: %v", strings.Join(args, " "), r)
	}
	return r
}

// created is the SOURCE_DATE_EPOCH the tests pack with, and its RFC 3339 form.
const (
	createdEpoch = "1767323045"
	createdText  = "2026-01-02T03:04:05Z"
)

// vendorWorkdir makes an empty working directory, changes into it, and
// puts examples/ntp-check in src/: its plugin.toml, and its module built
// from source with airlock build.
func vendorWorkdir(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		missing(t, "the go command, to build examples/ntp-check")
	}
	example := filepath.Join(repoRoot(t), "examples", "ntp-check")
	t.Chdir(t.TempDir())
	t.Setenv("SOURCE_DATE_EPOCH", createdEpoch)
	toml, err := os.ReadFile(filepath.Join(example, "plugin.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir("src", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("src/plugin.toml", toml, 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "build", "-o", "src/ntp-check.wasm", example)
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// digestRecord is where a bundle file's digest record starts: after the
// content, before the signatures.
func digestRecord(t *testing.T, data []byte) int {
	t.Helper()
	i := bytes.LastIndex(data, []byte("\ndigest 71\nsha256:"))
	if i < 0 {
		t.Fatal("the bundle has no digest record")
	}
	return i + 1
}

// contentDigest hashes a bundle file's content (every byte before the
// digest record), as the format says.
func contentDigest(t *testing.T, data []byte) string {
	t.Helper()
	sum := sha256.Sum256(data[:digestRecord(t, data)])
	return "sha256:" + hex.EncodeToString(sum[:])
}

// recordedDigest is the digest a bundle file records.
func recordedDigest(t *testing.T, data []byte) string {
	t.Helper()
	i := digestRecord(t, data) + len("digest 71\n")
	return string(data[i : i+71])
}

// publicKey is the key in name.pub and its short form in messages.
func publicKey(t *testing.T, name string) (key, id string) {
	t.Helper()
	key = strings.TrimSpace(string(readFile(t, name+".pub")))
	return key, key[:12] + "…"
}

// trustingRuntime writes dir/runtime.toml trusting key as vendor acme,
// with a ceiling that fits ntp-check unless tight, and extra [trust] keys.
func trustingRuntime(t *testing.T, dir, key, notAfter, extra string, tight bool) string {
	t.Helper()
	ceiling := "triggers = [\"dbus\"]\n[trust.vendor.ceiling.dbus]\ndestinations = [\"org.freedesktop.timedate1\"]\n"
	if tight {
		ceiling = "data = true\n"
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "runtime.toml")
	writeFile(t, path, []byte(`plugins = ["plugins"]
state_dir = "state"

[trust]
`+extra+`

[[trust.vendor]]
name = "acme"
key = "`+key+`"
not_after = `+notAfter+`

[trust.vendor.ceiling]
`+ceiling))
	return path
}

// TestKeygen: keygen writes a key pair, the private half 0600, and never
// overwrites either half.
func TestKeygen(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("keys", 0o755); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, "keygen", "-o", "keys/acme")
	pub, _ := publicKey(t, "keys/acme")
	want := "wrote keys/acme.key (private: keep it secret) and keys/acme.pub\n" +
		"operators trust it with, in runtime.toml:\n\n[[trust.vendor]]\nname = \"acme\"\nkey = \"" + pub + "\"\n"
	if r.out != want || r.stderr != "" {
		t.Errorf("got %v\nwant stdout:\n%s", r, want)
	}
	if k, err := base64.StdEncoding.DecodeString(pub); err != nil || len(k) != 32 {
		t.Errorf("keys/acme.pub holds %q, not a base64 ed25519 public key", pub)
	}
	for file, mode := range map[string]os.FileMode{"keys/acme.key": 0o600, "keys/acme.pub": 0o644} {
		st, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		// The umask may take bits away from .pub; nothing may add any.
		if got := st.Mode().Perm(); got&^mode != 0 || file == "keys/acme.key" && got != mode {
			t.Errorf("%s has mode %v, want %v", file, got, mode)
		}
	}
	if !strings.HasPrefix(string(readFile(t, "keys/acme.key")), "airlock-ed25519-private-key ") {
		t.Error("keys/acme.key is not an airlock private key")
	}

	// Another pair is another key.
	mustRun(t, "keygen", "-o", "other")
	if other, _ := publicKey(t, "other"); other == pub {
		t.Error("two keygens wrote the same key")
	}

	// Neither half is overwritten: not the private key, and not a public
	// key that operators may already trust.
	writeFile(t, "lone.pub", []byte("trusted\n"))
	before := readFile(t, "keys/acme.key")
	for _, c := range []struct{ name, exists string }{{"keys/acme", "keys/acme.key"}, {"lone", "lone.pub"}} {
		r := airlock("keygen", "-o", c.name)
		want := "airlock keygen: " + c.exists + " already exists (choose another name with -o, or remove the old key pair if you mean to replace it)\n"
		if r.code != 1 || r.stderr != want || r.out != "" {
			t.Errorf("keygen -o %s over an existing key: %v\nwant stderr:\n%s", c.name, r, want)
		}
	}
	if !bytes.Equal(readFile(t, "keys/acme.key"), before) || string(readFile(t, "lone.pub")) != "trusted\n" {
		t.Error("keygen overwrote an existing key")
	}
	if _, err := os.Stat("lone.key"); err == nil {
		t.Error("keygen wrote lone.key beside an existing lone.pub")
	}

	r = airlock("keygen", "-o", "nodir/acme")
	if want := "airlock keygen: cannot write nodir/acme.key: the directory nodir does not exist (create it, or choose another -o)\n"; r.code != 1 || r.stderr != want {
		t.Errorf("keygen into a missing directory: %v\nwant stderr:\n%s", r, want)
	}
}

// TestPackSignInspect: a vendor packs examples/ntp-check, signs it, and
// an operator inspects it; a tampered or wrongly signed bundle is refused
// with the reason and exit 1.
func TestPackSignInspect(t *testing.T) {
	vendorWorkdir(t)
	mustRun(t, "keygen", "-o", "acme")
	mustRun(t, "keygen", "-o", "other")
	pub, id := publicKey(t, "acme")
	otherPub, otherID := publicKey(t, "other")
	toml := readFile(t, "src/plugin.toml")
	wasm := readFile(t, "src/ntp-check.wasm")

	r := mustRun(t, "pack", "--vendor", "acme", "-o", "ntp.airlock", "src")
	data := readFile(t, "ntp.airlock")
	digest := contentDigest(t, data)
	if want := "packed ntp-check 1.0.0 into ntp.airlock\n  digest: " + digest + "\n  unsigned: sign it with airlock sign -k <vendor.key> ntp.airlock\n"; r.out != want {
		t.Errorf("pack: %v\nwant stdout:\n%s", r, want)
	}
	if recordedDigest(t, data) != digest {
		t.Errorf("ntp.airlock records %s, its content hashes to %s", recordedDigest(t, data), digest)
	}
	for _, rec := range []string{"plugin.toml " + strconv.Itoa(len(toml)) + "\n" + string(toml) + "\n", "module.wasm " + strconv.Itoa(len(wasm)) + "\n" + string(wasm) + "\n"} {
		if !bytes.Contains(data, []byte(rec)) {
			t.Errorf("ntp.airlock lacks the record %.40q...", rec)
		}
	}
	if !bytes.Contains(data, []byte(`"vendor":"acme","created":"`+createdText+`"`)) {
		t.Errorf("ntp.airlock's meta lacks the vendor and SOURCE_DATE_EPOCH:\n%.200s", data)
	}
	// Without -o it is <name>-<version>.airlock; with SOURCE_DATE_EPOCH
	// the same source packs to the same bytes.
	mustRun(t, "pack", "--vendor", "acme", "src")
	if !bytes.Equal(readFile(t, "ntp-check-1.0.0.airlock"), data) {
		t.Error("packing the same plugin twice gave different bundles")
	}

	// Bundles to sign wrongly: one packed for another vendor name, and a
	// copy to sign with another key.
	mustRun(t, "pack", "--vendor", "globex", "-o", "globex.airlock", "src")
	writeFile(t, "wrong.airlock", data)

	if err := os.Chmod("ntp.airlock", 0o640); err != nil {
		t.Fatal(err)
	}
	r = mustRun(t, "sign", "-k", "acme.key", "ntp.airlock")
	if want := "signed ntp.airlock (" + digest + ") with key " + id + "\n"; r.out != want {
		t.Errorf("sign: %v\nwant stdout:\n%s", r, want)
	}
	signed := readFile(t, "ntp.airlock")
	if !bytes.HasPrefix(signed, data) || !bytes.Contains(signed[len(data):], []byte(`"key":"`+pub+`"`)) {
		t.Error("sign changed the content or the digest, or added no signature by acme.key")
	}
	if st, _ := os.Stat("ntp.airlock"); st.Mode().Perm() != 0o640 {
		t.Errorf("sign changed the bundle's mode to %v", st.Mode().Perm())
	}
	// Signing again with the same key replaces its signature.
	mustRun(t, "sign", "-k", "acme.key", "ntp.airlock")
	if !bytes.Equal(readFile(t, "ntp.airlock"), signed) {
		t.Error("signing twice with one key did not give the same file")
	}
	mustRun(t, "sign", "-k", "other.key", "wrong.airlock")
	mustRun(t, "sign", "-k", "acme.key", "globex.airlock")

	// swapped.airlock: the module changed and the digest recomputed, with
	// acme's signature kept, as an attacker who knows the format would.
	swapped := bytes.Clone(signed)
	swapped[len(data)/2] ^= 1
	at := digestRecord(t, swapped) + len("digest 71\n")
	copy(swapped[at:], contentDigest(t, swapped))
	writeFile(t, "swapped.airlock", swapped)

	trustingRuntime(t, ".", pub, "2099-01-01T00:00:00Z", "", false)
	trustingRuntime(t, "expired", pub, "2020-01-01T00:00:00Z", "", false)
	trustingRuntime(t, "tight", pub, "2099-01-01T00:00:00Z", "", true)
	trustingRuntime(t, "revoked", pub, "2099-01-01T00:00:00Z", `revoked = ["`+digest+`"]`, false)

	kib := strconv.Itoa(len(wasm) / 1024)
	grants := `
It:
  - may read the property NTPSynchronized of org.freedesktop.timedate1 on org.freedesktop.timedate1 (at /org/freedesktop/timedate1)
  - may read the property NTP of org.freedesktop.timedate1 on org.freedesktop.timedate1 (at /org/freedesktop/timedate1)
  - is woken every 1h0m0s (timer check)
  - is woken by the D-Bus signal PropertiesChanged from org.freedesktop.timedate1 on org.freedesktop.DBus.Properties at /org/freedesktop/timedate1
`
	trusted := `  signed:  by "acme", trusted by `
	for _, c := range []struct {
		bundle, config string
		vendor, signed string // the vendor: and signed: lines' values
		verdict        string // the line under "Under <config>:"
	}{
		{"ntp.airlock", "runtime.toml", "acme", trusted + "runtime.toml", "it would load."},
		{"ntp-check-1.0.0.airlock", "runtime.toml", "acme", "  signed:  no",
			"refused: bundle ntp-check-1.0.0.airlock: no signature by a trusted vendor: the bundle is unsigned (sign it with airlock sign)"},
		{"wrong.airlock", "runtime.toml", "acme", "  signed:  by key " + otherPub,
			"refused: bundle wrong.airlock: no signature by a trusted vendor: signed by key " + otherID + ", which no [[trust.vendor]] names"},
		{"swapped.airlock", "runtime.toml", "acme", "  signed:  by key " + pub,
			`refused: bundle swapped.airlock: bad signature: the signature by vendor "acme" does not match the bundle (changed after signing, or signed with another key)`},
		{"globex.airlock", "runtime.toml", "globex", "  signed:  by key " + pub,
			`refused: bundle globex.airlock: bad signature: the bundle says vendor "globex" but is signed by "acme"'s key`},
		{"ntp.airlock", "expired/runtime.toml", "acme", "  signed:  by key " + pub,
			`refused: bundle ntp.airlock: vendor key expired: vendor "acme"'s key is trusted until 2020-01-01T00:00:00Z (renew not_after in [[trust.vendor]], or get a bundle signed with the vendor's new key)`},
		{"ntp.airlock", "revoked/runtime.toml", "acme", "  signed:  by key " + pub,
			"refused: bundle ntp.airlock: bundle " + digest + " is revoked in [trust] revoked"},
		{"ntp.airlock", "tight/runtime.toml", "acme", trusted + "tight/runtime.toml",
			`refused: bundle ntp.airlock: plugin "ntp-check" asks for more than vendor "acme" may be granted (its [trust.vendor] ceiling in runtime.toml):
    - dbus: the vendor's ceiling grants no dbus at all
    - trigger.dbus: the vendor's ceiling allows no dbus triggers (triggers = [])
  (ask the vendor for a plugin that needs less, or raise the vendor's ceiling if you trust it with this)`},
	} {
		t.Run(c.bundle+" under "+c.config, func(t *testing.T) {
			r := airlock("inspect", "--config", c.config, c.bundle)
			want := "ntp-check 1.0.0\n  vendor:  " + c.vendor + "\n  created: " + createdText + "\n  abi:     v1\n  digest:  " + contentDigest(t, readFile(t, c.bundle)) +
				"\n  module:  " + kib + " KiB\n" + c.signed + "\n" + grants + "\nUnder " + c.config + ":\n  " + c.verdict + "\n"
			code, stderr := 0, ""
			if strings.HasPrefix(c.verdict, "refused") {
				code, stderr = 1, "airlock inspect: this runtime would refuse the bundle\n"
			}
			if r.code != code || r.out != want || r.stderr != stderr {
				t.Errorf("got %v\nwant exit %d, stdout:\n%s\nstderr:\n%s", r, code, want, stderr)
			}
			// --json, after the bundle: the same verdict, for a program.
			r = airlock("inspect", c.bundle, "--json", "--config", c.config)
			var rep struct {
				Name, Vendor, Digest, Runtime, Refused string
				Loads                                  bool
				Does                                   []string
			}
			if err := json.Unmarshal([]byte(r.out), &rep); err != nil || r.code != code || r.stderr != "" ||
				rep.Name != "ntp-check" || rep.Vendor != c.vendor || rep.Runtime != c.config || rep.Loads != (code == 0) ||
				!strings.HasPrefix(c.verdict, strings.TrimSuffix("refused: "+strings.SplitN(rep.Refused, "\n", 2)[0], "refused: ")) || len(rep.Does) == 0 {
				t.Errorf("inspect --json: %v (%v)\n%+v", r, err, rep)
			}
		})
	}

	// Inspect judges; it leaves the runtimes' state_dir unwritten.
	if dirs, _ := filepath.Glob("*state"); len(dirs) > 0 {
		t.Errorf("inspect wrote %v", dirs)
	}
	if dirs, _ := filepath.Glob("*/state"); len(dirs) > 0 {
		t.Errorf("inspect wrote %v", dirs)
	}

	// A bundle changed after packing is refused by inspect and by sign,
	// before anything else, and sign leaves it as it was.
	tampered := bytes.Clone(signed)
	tampered[len(data)/2] ^= 1
	writeFile(t, "tampered.airlock", tampered)
	why := "tampered.airlock: bundle content does not match its digest: it records " + digest + " but its content hashes to " +
		contentDigest(t, tampered) + " (the file was changed after packing; get it again from the vendor)\n"
	for _, cmd := range [][]string{{"inspect", "tampered.airlock"}, {"sign", "-k", "acme.key", "tampered.airlock"}} {
		r := airlock(cmd...)
		if r.code != 1 || r.out != "" || r.stderr != "airlock "+cmd[0]+": "+why {
			t.Errorf("airlock %s: %v\nwant stderr:\nairlock %s: %s", strings.Join(cmd, " "), r, cmd[0], why)
		}
	}
	if !bytes.Equal(readFile(t, "tampered.airlock"), tampered) {
		t.Error("sign rewrote a tampered bundle")
	}
}

// TestBundleUsage: wrong arguments get a reason or the usage on stderr and
// exit 2; missing or wrong files name the file, say what to do, and exit 1;
// the usage asked for with --help is output, on stdout.
func TestBundleUsage(t *testing.T) {
	t.Chdir(t.TempDir())
	mustRun(t, "keygen", "-o", "acme")
	if err := os.Mkdir("nowasm", 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, "nowasm/plugin.toml", []byte("name = \"nowasm\"\nversion = \"1.0.0\"\n"))
	writeFile(t, "open.key", readFile(t, "acme.key"))
	if err := os.Chmod("open.key", 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("junk.key", []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	usage := func(cmd string) string { return "Usage: airlock " + cmd }
	cases := []struct {
		args []string
		code int
		want string // on stderr, with nothing on stdout; on stdout for exit 0
	}{
		{[]string{"keygen"}, 2, "airlock keygen: -o is required: the base name of the key files (-o acme writes acme.key and acme.pub)\n\n" + usage("keygen -o <name>")},
		{[]string{"keygen", "acme2", "-o", "x"}, 2, "airlock keygen: expected no arguments besides -o <name>, got 1\n"},
		{[]string{"keygen", "-o", "x", "y"}, 2, "airlock keygen: expected no arguments besides -o <name>, got 1\n"},
		{[]string{"keygen", "--bits", "4096"}, 2, "flag provided but not defined: -bits\n" + usage("keygen")},
		{[]string{"keygen", "--help"}, 0, usage("keygen -o <name>\n\nFlags:\n  -o string")},
		{[]string{"sign", "x.airlock"}, 2, "airlock sign: -k is required: the private key that airlock keygen wrote (<name>.key)\n\n" + usage("sign -k <name.key> <bundle>")},
		{[]string{"sign", "x.airlock", "-k", "missing.key"}, 1, "airlock sign: private key missing.key does not exist (make a key pair with: airlock keygen -o <name>)\n"},
		{[]string{"sign", "-k", "acme.key"}, 2, "airlock sign: expected one bundle, got 0\n"},
		{[]string{"sign", "-k", "acme.key", "a.airlock", "b.airlock"}, 2, "airlock sign: expected one bundle, got 2\n"},
		{[]string{"sign", "-k", "missing.key", "x.airlock"}, 1, "airlock sign: private key missing.key does not exist (make a key pair with: airlock keygen -o <name>)\n"},
		{[]string{"sign", "-k", "acme.pub", "x.airlock"}, 1, "airlock sign: acme.pub is a public key; sign with the private key that airlock keygen wrote beside it (acme.key)\n"},
		{[]string{"sign", "-k", "open.key", "x.airlock"}, 1, "airlock sign: open.key is readable by others (mode -rw-r--r--); chmod 600 it\n"},
		{[]string{"sign", "-k", "junk.key", "x.airlock"}, 1, "airlock sign: junk.key is not an airlock private key (make one with airlock keygen)\n"},
		{[]string{"sign", "-k", "acme.key", "missing.airlock"}, 1, "airlock sign: open missing.airlock: no such file or directory\n"},
		{[]string{"sign", "-k", "acme.key", "nowasm/plugin.toml"}, 1, "airlock sign: nowasm/plugin.toml: not a valid airlock bundle: it does not start with \"airlock-bundle 1\"\n"},
		{[]string{"pack"}, 2, usage("pack [-o x.airlock] [--vendor name] <plugin dir>")},
		{[]string{"pack", "--sign", "nowasm"}, 2, "flag provided but not defined: -sign\n" + usage("pack")},
		{[]string{"pack", "missing"}, 1, "airlock pack: read manifest: open missing/plugin.toml: no such file or directory"},
		{[]string{"pack", "nowasm"}, 1, "(build it first: airlock build nowasm)\n"},
		{[]string{"inspect"}, 2, usage("inspect [--config runtime.toml] [--json] <bundle>")},
		{[]string{"inspect", "missing.airlock"}, 1, "airlock inspect: open missing.airlock: no such file or directory\n"},
		{[]string{"inspect", "--config", "missing.toml", "x.airlock"}, 1, "airlock inspect: read runtime config: open missing.toml: no such file or directory (pass another with --config)\n"},
		{[]string{"push", "x.airlock"}, 2, usage("push [--registry-config FILE] [--plain-http] <bundle> <registry/repository:tag>")},
		{[]string{"push", "nowasm/plugin.toml", "127.0.0.1:1/acme/x:1"}, 1, "airlock push: nowasm/plugin.toml: not a valid airlock bundle: it does not start with \"airlock-bundle 1\"\n"},
		{[]string{"pull"}, 2, usage("pull [--config runtime.toml] [--registry-config FILE] [--plain-http] [--json] <registry/repository@sha256:... | :tag>")},
		{[]string{"login", "127.0.0.1:1"}, 2, "airlock login: -u is required: the user name at the registry\n"},
		{[]string{"login", "-u", "vendor"}, 2, "airlock login: expected one registry (host or host:port), got 0\n"},
		{[]string{"logout"}, 2, usage("logout [--registry-config FILE | --config runtime.toml] [--plain-http] <registry>")},
	}
	for _, c := range cases {
		r := airlock(c.args...)
		if printed, other := r.streams(); r.code != c.code || !strings.Contains(printed, c.want) || other != "" {
			t.Errorf("airlock %s: %v\nwant exit %d and %q, on stdout for exit 0, else on stderr", strings.Join(c.args, " "), r, c.code, c.want)
		}
	}
	// None of them wrote a file.
	if files, _ := filepath.Glob("*"); strings.Join(files, " ") != "acme.key acme.pub junk.key nowasm open.key" {
		t.Errorf("the working directory holds %v", files)
	}
}

// TestPushPull pushes a signed bundle to a registry on loopback
// (go-containerregistry's, in-process), and pulls it by tag into the
// state_dir of a runtime that trusts its vendor.
func TestPushPull(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	vendorWorkdir(t)
	// No credentials from the machine's own docker config.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	mustRun(t, "keygen", "-o", "acme")
	mustRun(t, "pack", "--vendor", "acme", "-o", "ntp.airlock", "src")
	mustRun(t, "sign", "-k", "acme.key", "ntp.airlock")
	pub, _ := publicKey(t, "acme")
	trustingRuntime(t, ".", pub, "2099-01-01T00:00:00Z", "", false)

	r := mustRun(t, "push", "ntp.airlock", host+"/acme/ntp:1.0.0")
	m := regexp.MustCompile(`^pushed ntp.airlock\ndevices pull it with, in runtime.toml:\n\n\[\[bundle\]\]\nref = "(` + regexp.QuoteMeta(host) + `/acme/ntp@sha256:([0-9a-f]{64}))"\n$`).FindStringSubmatch(r.out)
	if m == nil {
		t.Fatalf("push: %v", r)
	}
	pinned, manifestHex := m[1], m[2]

	r = mustRun(t, "pull", host+"/acme/ntp:1.0.0")
	wd, _ := os.Getwd()
	cached := filepath.Join(wd, "state", "bundles", "oci", manifestHex+".airlock")
	want := "pulled " + host + "/acme/ntp:1.0.0\n  into " + cached + "\n  pin it in runtime.toml: [[bundle]] ref = \"" + pinned + "\"\n\nntp-check 1.0.0\n"
	if !strings.HasPrefix(r.out, want) {
		t.Errorf("pull: %v\nwant stdout starting:\n%s", r, want)
	}
	if !strings.HasSuffix(r.out, "\nUnder runtime.toml:\n  it would load.\n") || !strings.Contains(r.out, "  signed:  by \"acme\", trusted by runtime.toml\n") {
		t.Errorf("pull does not report a trusted bundle that would load:\n%s", r.out)
	}
	if !bytes.Equal(readFile(t, cached), readFile(t, "ntp.airlock")) {
		t.Error("the cached bundle is not the pushed one")
	}

	// --json, after the ref: the same facts, for a program.
	r = mustRun(t, "pull", host+"/acme/ntp:1.0.0", "--json")
	var rep struct {
		Pulled, Path, Ref, Name, Runtime string
		Loads                            bool
	}
	if err := json.Unmarshal([]byte(r.out), &rep); err != nil || r.stderr != "" || rep.Pulled != host+"/acme/ntp:1.0.0" ||
		rep.Path != cached || rep.Ref != pinned || rep.Name != "ntp-check" || rep.Runtime != "runtime.toml" || !rep.Loads {
		t.Errorf("pull --json: %v (%v)\n%+v", r, err, rep)
	}

	absent := host + "/acme/ntp@sha256:" + strings.Repeat("0", 64)
	if r := airlock("pull", absent); r.code != 1 || !strings.HasPrefix(r.stderr, "airlock pull: pull "+absent+": ") {
		t.Errorf("pull of a digest the registry lacks: %v", r)
	}
	if r := airlock("pull", "not a ref"); r.code != 1 || !strings.HasPrefix(r.stderr, `airlock pull: bad reference "not a ref": `) {
		t.Errorf("pull of a bad reference: %v", r)
	}
}

// TestSignReplacesTheBundle: sign writes the signed bundle beside the old
// one and renames it over it, keeping its mode, so that a write that fails
// leaves the bundle whole and no temporary file behind. The failure is real:
// a child process signs under a file size limit (RLIMIT_FSIZE holds for
// root too, where a read-only directory does not).
func TestSignReplacesTheBundle(t *testing.T) {
	if os.Getenv("AIRLOCK_TEST_SIGN_FSIZE") != "" {
		signal.Ignore(syscall.SIGXFSZ) // the write fails with EFBIG instead
		var lim syscall.Rlimit
		if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			t.Fatal(err)
		}
		lim.Cur = 4096
		if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
			t.Fatal(err)
		}
		os.Exit(run([]string{"sign", "-k", "acme.key", "big.airlock"}, os.Stdout, os.Stderr))
	}
	dir := t.TempDir()
	t.Chdir(dir)
	mustRun(t, "keygen", "-o", "acme")
	b, err := bundle.New(bundle.Meta{Name: "big", Version: "1.0.0", ABI: 1}, []byte("name = \"big\"\nversion = \"1.0.0\"\n"), bytes.Repeat([]byte{0}, 64<<10))
	if err != nil {
		t.Fatal(err)
	}
	unsigned := b.Encode()
	writeFile(t, "big.airlock", unsigned)
	if err := os.Chmod("big.airlock", 0o640); err != nil {
		t.Fatal(err)
	}
	entries := func() string {
		var names []string
		list, _ := os.ReadDir(".")
		for _, e := range list {
			names = append(names, e.Name())
		}
		return strings.Join(names, " ")
	}
	const files = "acme.key acme.pub big.airlock"

	child := exec.Command(os.Args[0], "-test.run=^TestSignReplacesTheBundle$")
	child.Dir = dir
	child.Env = append(os.Environ(), "AIRLOCK_TEST_SIGN_FSIZE=1")
	out, err := child.CombinedOutput()
	if code := child.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(out), "airlock sign: ") || !strings.Contains(string(out), "file too large") {
		t.Fatalf("sign under a 4 KiB file size limit: exit %d (%v), want 1 and \"file too large\":\n%s", code, err, out)
	}
	if !bytes.Equal(readFile(t, "big.airlock"), unsigned) {
		t.Error("a sign that failed to write changed the bundle")
	}
	if got := entries(); got != files {
		t.Errorf("a sign that failed to write left %s, want %s", got, files)
	}

	mustRun(t, "sign", "-k", "acme.key", "big.airlock")
	signed := readFile(t, "big.airlock")
	if pub, _ := publicKey(t, "acme"); !bytes.HasPrefix(signed, unsigned) || !bytes.Contains(signed[len(unsigned):], []byte(`"key":"`+pub+`"`)) {
		t.Error("sign did not add acme's signature to the bundle")
	}
	if st, _ := os.Stat("big.airlock"); st.Mode().Perm() != 0o640 {
		t.Errorf("sign changed the bundle's mode to %v", st.Mode().Perm())
	}
	if got := entries(); got != files {
		t.Errorf("sign left %s, want %s", got, files)
	}

	// A symlink to a bundle stays a link; the bundle it points to is signed.
	writeFile(t, "big.airlock", unsigned)
	if err := os.Symlink("big.airlock", "link.airlock"); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "sign", "-k", "acme.key", "link.airlock")
	if st, err := os.Lstat("link.airlock"); err != nil || st.Mode()&os.ModeSymlink == 0 {
		t.Error("signing through a symlink replaced the link with a file")
	}
	if !bytes.Equal(readFile(t, "big.airlock"), signed) {
		t.Error("signing through a symlink did not sign the bundle it points to")
	}
}
