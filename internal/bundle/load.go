package bundle

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/atomicfile"
)

// Pack makes an unsigned bundle of the plugin m (its plugin.toml and
// module as they are on disk). vendor is recorded in the metadata; created
// is the time recorded (pass a fixed time for reproducible bundles).
func Pack(m *manifest.Manifest, vendor string, created time.Time) (*Bundle, error) {
	toml, err := os.ReadFile(m.File)
	if err != nil {
		return nil, err
	}
	module, err := os.ReadFile(m.Wasm)
	if err != nil {
		return nil, fmt.Errorf("plugin %q: %w (build it first: airlock build %s)", m.Name, err, m.Dir)
	}
	if !bytes.HasPrefix(module, []byte("\x00asm")) {
		return nil, fmt.Errorf("plugin %q: %s is not a WebAssembly module", m.Name, m.Wasm)
	}
	if !bytes.Contains(module, []byte(abi.ExportVersion)) {
		return nil, fmt.Errorf("plugin %q: %s does not export %s; build it with an airlock SDK", m.Name, m.Wasm, abi.ExportVersion)
	}
	meta := Meta{Name: m.Name, Version: m.Version, Vendor: vendor, Created: created.UTC().Format(time.RFC3339), ABI: abi.Version}
	return New(meta, toml, module)
}

// IsBundle reports whether path names a bundle file rather than a
// plugin.toml.
func IsBundle(path string) bool { return strings.HasSuffix(path, Extension) }

// Loaded is a plugin admitted by the trust policy.
type Loaded struct {
	Manifest *manifest.Manifest
	Bundle   *Bundle // nil for a plain plugin directory
	Signer   Signer
}

// Load admits one plugin: a plugin.toml in a plain directory, or a bundle
// file. A plain directory must lie in an allow_unsigned directory. A bundle
// must pass its digest, then Verify, then be unpacked under
// stateDir/bundles/<digest> and its manifest parsed and held to the
// signing vendor's ceiling. now is the clock for key expiry.
func Load(path string, rt *manifest.Runtime, schema manifest.Schema, now time.Time) (*Loaded, error) {
	return LoadNamed(path, "bundle "+path, rt, schema, now)
}

// LoadNamed is Load with the name that a bundle's errors begin with ("" for
// none): the host names a [[bundle]] by its ref, not by its cache path.
func LoadNamed(path, name string, rt *manifest.Runtime, schema manifest.Schema, now time.Time) (*Loaded, error) {
	if !IsBundle(path) {
		if !rt.Trust.AllowsUnsigned(filepath.Dir(path)) {
			return nil, fmt.Errorf("%s is an unsigned plugin directory outside [trust] allow_unsigned in %s (pack and sign it: airlock pack, airlock sign; or, on a development device, add its directory to allow_unsigned)", filepath.Dir(path), filepath.Base(rt.File))
		}
		m, err := manifest.LoadManifest(path, rt, schema)
		if err != nil {
			return nil, err
		}
		return &Loaded{Manifest: m, Signer: Signer{Note: "plain plugin directory"}}, nil
	}
	named := func(err error) error {
		if name == "" {
			return err
		}
		return fmt.Errorf("%s: %w", name, err)
	}
	b, err := ReadFile(path)
	if err != nil {
		return nil, err
	}
	signer, err := Verify(b, &rt.Trust, now, rt.Trust.AllowsUnsigned(path))
	if err != nil {
		return nil, named(err)
	}
	dir := filepath.Join(rt.StateDir, "bundles", strings.TrimPrefix(b.Digest, "sha256:"))
	m, err := b.Unpack(dir, rt, schema)
	if err != nil {
		return nil, named(err)
	}
	if signer.Vendor != nil {
		if err := CheckCeiling(m, signer.Vendor); err != nil {
			return nil, named(err)
		}
		// A vendor's plugin is known as vendor/name, so that its manifest
		// cannot claim a local plugin's identity and /data, or another
		// vendor's.
		m.Namespace(signer.Vendor.Name)
	}
	return &Loaded{Manifest: m, Bundle: b, Signer: signer}, nil
}

// Unpack parses the bundle's manifest as dir/plugin.toml and writes the
// module where the manifest says, for the plugin loader to read. The
// files are written afresh at every load, so that what runs is what was
// verified, whatever happened to dir in between.
func (b *Bundle) Unpack(dir string, rt *manifest.Runtime, schema manifest.Schema) (*manifest.Manifest, error) {
	file := filepath.Join(dir, "plugin.toml")
	m, err := manifest.ParseManifest(file, b.Manifest, rt, schema)
	if err != nil {
		return nil, err
	}
	if b.Meta.Name != m.Name || b.Meta.Version != m.Version {
		return nil, fmt.Errorf("its metadata says %s %s but its plugin.toml %s %s", b.Meta.Name, b.Meta.Version, m.Name, m.Version)
	}
	if err := os.MkdirAll(filepath.Dir(m.Wasm), 0o700); err != nil {
		return nil, err
	}
	if err := writeFile(file, b.Manifest); err != nil {
		return nil, err
	}
	if err := writeFile(m.Wasm, b.Module); err != nil {
		return nil, err
	}
	return m, nil
}

// writeFile replaces path, so that a symlink planted at path is replaced,
// never followed.
func writeFile(path string, data []byte) error { return atomicfile.Replace(path, data, 0o600) }
