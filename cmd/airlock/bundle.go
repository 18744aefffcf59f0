package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/builtin"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/atomicfile"
	"github.com/airlockhq/airlock/internal/bundle"
	oci "github.com/airlockhq/airlock/internal/registry"
)

// The vendor-bundle commands: pack, inspect, keygen, sign, pull, push,
// login and logout.

const bundleUsage = `  airlock pack    [-o x.airlock] [--vendor name] <plugin dir>  make a bundle
  airlock inspect [--config runtime.toml] <bundle>          show what a bundle grants and who signed it
  airlock keygen  -o <name>                                 write name.key (0600) and name.pub
  airlock sign    -k <name.key> <bundle>                    sign a bundle in place
  airlock push    <bundle> <registry/repo:tag>              upload a bundle as an OCI artifact
  airlock pull    [--config runtime.toml] <ref>             fetch a bundle into state_dir and verify it
` + registryUsage

func bundleCommand(name string) func(args []string, stdout, stderr io.Writer) error {
	switch name {
	case "pack":
		return cmdPack
	case "inspect":
		return cmdInspect
	case "keygen":
		return cmdKeygen
	case "sign":
		return cmdSign
	case "push":
		return cmdPush
	case "pull":
		return cmdPull
	case "login":
		return cmdLogin
	case "logout":
		return cmdLogout
	}
	return nil
}

func cmdPack(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pack", "pack [-o x.airlock] [--vendor name] <plugin dir>", stderr)
	out := fs.String("o", "", "output file (default: <name>-<version>.airlock)")
	vendor := fs.String("vendor", "", "the vendor name recorded in the bundle; it must match the signer's [[trust.vendor]] name")
	if err := parseN(fs, args, 1, stdout); err != nil {
		return err
	}
	def := manifest.DefaultRuntime()
	def.File = "(default runtime)"
	m, err := manifest.LoadManifest(filepath.Join(fs.Arg(0), "plugin.toml"), &def, host.Schema(builtin.Capabilities()))
	if err != nil {
		return err
	}
	b, err := bundle.Pack(m, *vendor, created())
	if err != nil {
		return err
	}
	path := *out
	if path == "" {
		path = m.Name + "-" + m.Version + bundle.Extension
	}
	if err := os.WriteFile(path, b.Encode(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "packed %s %s into %s\n  digest: %s\n  unsigned: sign it with airlock sign -k <vendor.key> %s\n", m.Name, m.Version, path, b.Digest, path)
	return nil
}

// created is the time recorded in a new bundle: SOURCE_DATE_EPOCH when set,
// so that a build pipeline can make the same bundle twice.
func created() time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0)
		}
	}
	return time.Now()
}

func cmdKeygen(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("keygen", "keygen -o <name>", stderr)
	out := fs.String("o", "", "base name: writes <name>.key and <name>.pub")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if err := requireFlag(fs, "o", "the base name of the key files (-o acme writes acme.key and acme.pub)", 0, "no arguments besides -o <name>"); err != nil {
		return err
	}
	// bundle.Keygen overwrites neither half, and says which one exists.
	pub, err := bundle.Keygen(*out)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("cannot write %s.key: the directory %s does not exist (create it, or choose another -o)", *out, filepath.Dir(*out))
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s.key (private: keep it secret) and %s.pub\noperators trust it with, in runtime.toml:\n\n[[trust.vendor]]\nname = %q\nkey = %q\n", *out, *out, filepath.Base(*out), pub)
	return nil
}

func cmdSign(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("sign", "sign -k <name.key> <bundle>", stderr)
	key := fs.String("k", "", "the private key written by airlock keygen")
	if err := parse(fs, args, stdout); err != nil {
		return err
	}
	if err := requireFlag(fs, "k", "the private key that airlock keygen wrote (<name>.key)", 1, "one bundle"); err != nil {
		return err
	}
	sk, err := readSigningKey(*key)
	if err != nil {
		return err
	}
	path := fs.Arg(0)
	b, err := bundle.ReadFile(path)
	if err != nil {
		return err
	}
	b.Sign(sk)
	// Writing in place followed a symlink to the bundle; the replacement
	// goes where it points too, so that the link stays a link.
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	st, err := os.Stat(target)
	if err != nil {
		return err
	}
	if err := atomicfile.Replace(target, b.Encode(), st.Mode().Perm()); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "signed %s (%s) with key %s\n", path, b.Digest, bundle.KeyID(sk.Public().(ed25519.PublicKey)))
	return nil
}

// readSigningKey reads a private key for sign, with advice for the two
// likely mistakes: no key yet, and the public half given for the private.
func readSigningKey(path string) (ed25519.PrivateKey, error) {
	sk, err := bundle.ReadPrivateKey(path)
	switch {
	case err == nil:
		return sk, nil
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("private key %s does not exist (make a key pair with: airlock keygen -o <name>)", path)
	case isPublicKey(path):
		// ReadPrivateKey checks the mode first and would advise a chmod
		// of the public key.
		private := "<name>.key"
		if base, ok := strings.CutSuffix(path, ".pub"); ok {
			private = base + ".key"
		}
		return nil, fmt.Errorf("%s is a public key; sign with the private key that airlock keygen wrote beside it (%s)", path, private)
	}
	return nil, err
}

// isPublicKey reports whether path holds a public key as airlock keygen
// writes it (<name>.pub): an ed25519 key in base64 on one line.
func isPublicKey(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil || len(data) > 1024 {
		return false
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(data)))
	return err == nil && len(key) == ed25519.PublicKeySize
}

// requireFlag checks the arguments of a command that needs the flag name
// (why says what it holds) and n arguments (args says what they are), and
// says what is wrong before printing the usage.
func requireFlag(fs *flag.FlagSet, name, why string, n int, args string) error {
	given := fs.Lookup(name).Value.String() != ""
	switch {
	case !given:
		return usageError(fs, "-%s is required: %s", name, why)
	case fs.NArg() != n:
		return usageError(fs, "expected %s, got %d", args, fs.NArg())
	}
	return nil
}

// usageError says what is wrong with a command's arguments, then prints
// its usage, as trigger does.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fmt.Fprintf(fs.Output(), "airlock %s: %s\n\n", fs.Name(), fmt.Sprintf(format, args...))
	fs.Usage()
	return errUsage
}

func cmdInspect(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("inspect", "inspect [--config runtime.toml] [--json] <bundle>", stderr)
	config := fs.String("config", defaultConfig(), "the runtime config whose [trust] judges the signature and ceiling")
	asJSON := fs.Bool("json", false, "print the report as JSON (exit 1 when the runtime would refuse it)")
	if err := parseN(fs, args, 1, stdout); err != nil {
		return err
	}
	rt, err := loadRuntimeOrDefault(*config, configNamed(fs))
	if err != nil {
		return err
	}
	b, err := bundle.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	return report(stdout, rt, fs.Arg(0), b, bundleReport{}, *asJSON)
}

// bundleReport is what inspect and pull say about a bundle; --json
// prints it as it is.
type bundleReport struct {
	Pulled     string   `json:"pulled,omitempty"` // pull: the ref asked for
	Path       string   `json:"path,omitempty"`   // pull: where it is cached
	Ref        string   `json:"ref,omitempty"`    // pull: the ref pinned by digest
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Vendor     string   `json:"vendor"`
	Created    string   `json:"created"`
	ABI        int      `json:"abi"`
	Digest     string   `json:"digest"`
	ModuleSize int      `json:"module_size"`
	SignedBy   string   `json:"signed_by,omitempty"` // the trusted vendor
	Keys       []string `json:"signature_keys"`      // every signature's key
	Does       []string `json:"does"`                // what it may do, in words
	Runtime    string   `json:"runtime"`
	Loads      bool     `json:"loads"`
	Refused    string   `json:"refused,omitempty"`
	Error      string   `json:"error,omitempty"`
}

// judge says what a bundle is, who signed it, what it may do, and whether
// this runtime would load it.
func judge(rt *manifest.Runtime, path string, b *bundle.Bundle) (bundleReport, error) {
	r := bundleReport{Name: b.Meta.Name, Version: b.Meta.Version, Vendor: b.Meta.Vendor, Created: fmt.Sprint(b.Meta.Created),
		ABI: int(b.Meta.ABI), Digest: b.Digest, ModuleSize: len(b.Module), Keys: []string{}, Runtime: rt.File}
	if signer, err := bundle.Verify(b, &rt.Trust, time.Now(), false); err == nil {
		r.SignedBy = signer.Vendor.Name
	}
	for _, s := range b.Signatures {
		r.Keys = append(r.Keys, strings.TrimSpace(s.Key))
	}
	tmp, err := os.MkdirTemp("", "airlock-inspect-")
	if err != nil {
		return r, err
	}
	defer os.RemoveAll(tmp)
	m, err := b.Unpack(tmp, rt, host.Schema(builtin.Capabilities()))
	if err != nil {
		return r, err
	}
	r.Does = bundle.Describe(m)
	// Load unpacks the bundle under state_dir; inspect only judges it, so
	// it unpacks into tmp and leaves the host's state_dir as it was.
	j := *rt
	j.StateDir = tmp
	if _, err := bundle.Load(path, &j, host.Schema(builtin.Capabilities()), time.Now()); err != nil {
		r.Refused = err.Error()
	} else {
		r.Loads = true
	}
	return r, nil
}

// report prints what judge says, in words or (asJSON) as JSON, and
// returns errRefused when the runtime would refuse the bundle.
func report(w io.Writer, rt *manifest.Runtime, path string, b *bundle.Bundle, r bundleReport, asJSON bool) error {
	j, err := judge(rt, path, b)
	j.Pulled, j.Path, j.Ref = r.Pulled, r.Path, r.Ref
	if asJSON {
		if err != nil {
			j.Error = err.Error()
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(j)
		if err != nil {
			return errReported
		}
		if !j.Loads {
			return errReported
		}
		return nil
	}
	if j.Pulled != "" {
		fmt.Fprintf(w, "pulled %s\n  into %s\n  pin it in runtime.toml: [[bundle]] ref = %q\n\n", j.Pulled, j.Path, j.Ref)
	}
	fmt.Fprintf(w, "%s %s\n", j.Name, j.Version)
	vendor := j.Vendor
	if vendor == "" {
		vendor = "(not named)"
	}
	fmt.Fprintf(w, "  vendor:  %s\n  created: %s\n  abi:     v%d\n  digest:  %s\n  module:  %d KiB\n", vendor, j.Created, j.ABI, j.Digest, j.ModuleSize/1024)
	switch {
	case j.SignedBy != "":
		fmt.Fprintf(w, "  signed:  by %q, trusted by %s\n", j.SignedBy, rt.File)
	case len(j.Keys) == 0:
		fmt.Fprintf(w, "  signed:  no\n")
	default:
		for _, k := range j.Keys {
			fmt.Fprintf(w, "  signed:  by key %s\n", k)
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nIt:\n")
	for _, line := range j.Does {
		fmt.Fprintf(w, "  - %s\n", line)
	}
	fmt.Fprintf(w, "\nUnder %s:\n", rt.File)
	if !j.Loads {
		// A ceiling refusal lists each grant on a line of its own; they
		// stay indented under "refused:".
		fmt.Fprintf(w, "  refused: %s\n", strings.ReplaceAll(j.Refused, "\n", "\n  "))
		return errRefused
	}
	fmt.Fprintf(w, "  it would load.\n")
	return nil
}

// errRefused makes inspect and pull exit 1 when the runtime would refuse
// the bundle, after printing why.
var errRefused = errors.New("this runtime would refuse the bundle")

func cmdPush(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("push", "push [--registry-config FILE] [--plain-http] <bundle> <registry/repository:tag>", stderr)
	rf := addRegistryFlags(fs)
	if err := parseN(fs, args, 2, stdout); err != nil {
		return err
	}
	data, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	a, err := rf.access(nil)
	if err != nil {
		return err
	}
	pinned, err := oci.Push(context.Background(), data, fs.Arg(1), a)
	if errors.Is(err, bundle.ErrFormat) || errors.Is(err, bundle.ErrDigest) {
		return fmt.Errorf("%s: %w", fs.Arg(0), err)
	}
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "pushed %s\ndevices pull it with, in runtime.toml:\n\n[[bundle]]\nref = %q\n", fs.Arg(0), pinned)
	return nil
}

func cmdPull(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("pull", "pull [--config runtime.toml] [--registry-config FILE] [--plain-http] [--json] <registry/repository@sha256:... | :tag>", stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON (exit 1 when the runtime would refuse it)")
	config := fs.String("config", defaultConfig(), "the runtime config: its state_dir holds the cache, its [trust] judges the bundle, its [registry] says how to reach registries")
	rf := addRegistryFlags(fs)
	if err := parseN(fs, args, 1, stdout); err != nil {
		return err
	}
	rt, err := loadRuntimeOrDefault(*config, configNamed(fs))
	if err != nil {
		return err
	}
	a, err := rf.access(rt)
	if err != nil {
		return err
	}
	p, err := oci.Pull(context.Background(), rt, fs.Arg(0), a)
	if err != nil {
		return err
	}
	return report(stdout, rt, p.Path, p.Bundle, bundleReport{Pulled: fs.Arg(0), Path: p.Path, Ref: p.Ref}, *asJSON)
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
