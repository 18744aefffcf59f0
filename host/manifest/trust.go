package manifest

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Trust is runtime.toml's [trust]: which vendors' signed bundles the host
// accepts, the most each vendor's plugins may be granted, and where
// unsigned plugins may come from (developer mode).
type Trust struct {
	// Configured is true when runtime.toml has a [trust] table. Without one,
	// AllowUnsigned is every plugins directory, so that a runtime.toml
	// written before bundles existed runs as it did.
	Configured bool
	// AllowUnsigned holds absolute directories whose plain plugin
	// directories and unsigned bundles load without a signature.
	AllowUnsigned []string
	Vendors       []Vendor
	// Revoked holds revoked vendor keys (base64, as in [[trust.vendor]]
	// key) and revoked bundles ("sha256:<hex>" content digests).
	Revoked []string
}

// Vendor is one [[trust.vendor]]: a name, its ed25519 public key, an
// optional end of trust, and the ceiling on what its plugins may be granted.
type Vendor struct {
	Name     string
	Key      ed25519.PublicKey
	NotAfter time.Time // zero: no end
	Ceiling  Ceiling
}

// Ceiling is [trust.vendor.ceiling]: the most a vendor's plugin may be
// granted. A capability the ceiling does not name is not granted at all.
type Ceiling struct {
	// Grants holds each named capability's decoded ceiling, by capability.
	Grants map[string]any
	// Triggers lists the trigger kinds ("udev", "dbus") its plugins may
	// use; timers are always allowed.
	Triggers []string
	// Env lists the variables (or prefixes ending in *) env.allow may name.
	Env []string
	// Data allows [storage] data = true.
	Data bool
}

// BundleRef is one [[bundle]]: a signed bundle pulled from an OCI
// registry, pinned by the digest of its OCI manifest.
type BundleRef struct {
	Ref string `toml:"ref"` // "registry.example.com/acme/ntp@sha256:<64 hex>"
}

// CeilingKey is the key under which a runtime's sections map holds the
// decoder of a capability's [trust.vendor.ceiling.<name>] table.
func CeilingKey(capability string) string { return "ceiling:" + capability }

type trustTOML struct {
	AllowUnsigned []string     `toml:"allow_unsigned"`
	Revoked       []string     `toml:"revoked"`
	Vendor        []vendorTOML `toml:"vendor"`
}

type vendorTOML struct {
	Name     string               `toml:"name"`
	Key      string               `toml:"key"`
	NotAfter time.Time            `toml:"not_after"`
	Ceiling  map[string]primitive `toml:"ceiling"`
}

var (
	vendorNameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	pinnedRefRe  = regexp.MustCompile(`^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+@sha256:[0-9a-f]{64}$`)
)

// decodeTrust decodes [trust] and [[bundle]] after the rest of the runtime.
func decodeTrust(d *doc, rt *Runtime, sections map[string]SectionFunc, known map[string][]string) {
	rt.Trust = Trust{AllowUnsigned: slices.Clone(rt.Plugins)}
	var refs []BundleRef
	if d.decode("bundle", &refs) {
		for i, b := range refs {
			if !pinnedRefRe.MatchString(b.Ref) {
				d.errorf(fmt.Sprintf("bundle[%d].ref", i), `pin it by digest: "registry.example.com/vendor/name@sha256:<64 hex digits>" (airlock pull prints it)`, "%q is not a reference pinned by digest", b.Ref)
			}
		}
		rt.Bundles = refs
	}
	if !d.has("trust") {
		return
	}
	var t trustTOML
	if !d.decode("trust", &t) {
		return
	}
	rt.Trust = Trust{Configured: true, Revoked: t.Revoked}
	for _, p := range t.AllowUnsigned {
		rt.Trust.AllowUnsigned = append(rt.Trust.AllowUnsigned, rt.resolve(p))
	}
	for i, r := range t.Revoked {
		if strings.HasPrefix(r, "sha256:") {
			if len(r) != 71 {
				d.errorf("trust.revoked", "write a bundle digest as sha256:<64 hex digits>, as airlock inspect prints it", "entry %d: %q is not a digest", i, r)
			}
		} else if _, err := parseKey(r); err != nil {
			d.errorf("trust.revoked", "list vendor keys (base64, as in vendor.pub) or bundle digests (sha256:...)", "entry %d: %v", i, err)
		}
	}
	names := map[string]bool{}
	for i, v := range t.Vendor {
		key := fmt.Sprintf("trust.vendor[%d]", i)
		out := Vendor{Name: v.Name, NotAfter: v.NotAfter, Ceiling: Ceiling{Grants: map[string]any{}}}
		switch {
		case !vendorNameRe.MatchString(v.Name):
			d.errorf(key+".name", "use lower-case letters, digits, '.', '_' and '-'", "bad vendor name %q", v.Name)
		case names[v.Name]:
			d.errorf(key+".name", "give each vendor one entry; a vendor with two keys is two entries with different names", "duplicate vendor %q", v.Name)
		}
		names[v.Name] = true
		k, err := parseKey(v.Key)
		if err != nil {
			d.errorf(key+".key", "paste the contents of the vendor's .pub file (airlock keygen writes it)", "%v", err)
		}
		out.Key = k
		decodeCeiling(d, key+".ceiling", v.Ceiling, &out.Ceiling, sections, known)
		rt.Trust.Vendors = append(rt.Trust.Vendors, out)
	}
}

func decodeCeiling(d *doc, key string, tables map[string]primitive, c *Ceiling, sections map[string]SectionFunc, known map[string][]string) {
	builtin := []string{"triggers", "env", "data"}
	var caps []string
	for k := range sections {
		if name, ok := strings.CutPrefix(k, "ceiling:"); ok {
			caps = append(caps, name)
		}
	}
	slices.Sort(caps)
	for _, k := range keysOf(tables) {
		p := tables[k]
		switch k {
		case "triggers":
			if d.decodePrim(key+".triggers", p, &c.Triggers) {
				for _, t := range c.Triggers {
					if t == "timer" {
						d.errorf(key+".triggers", "timers are always allowed; list the others, such as [\"udev\"]", "%q needs no ceiling", t)
					}
				}
			}
		case "env":
			if d.decodePrim(key+".env", p, &c.Env) {
				for i, e := range c.Env {
					if !envNameRe.MatchString(e) {
						d.errorf(key+".env", "write a variable name, or a prefix ending in *", "entry %d: bad variable name %q", i, e)
					}
				}
			}
		case "data":
			d.decodePrim(key+".data", p, &c.Data)
		default:
			fn, ok := sections[CeilingKey(k)]
			if !ok {
				d.errorf(key+"."+k, hintFor(k, append(builtin, caps...)), "unknown capability or ceiling key %q", k)
				continue
			}
			if v, err := fn(Section{d: d, key: key + "." + k, prim: p, known: known}); err == nil && v != nil {
				c.Grants[k] = v
			}
		}
	}
}

// parseKey decodes a base64 ed25519 public key.
func parseKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil {
		return nil, fmt.Errorf("key is not base64: %v", err)
	}
	if len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("key is %d bytes, not an ed25519 public key (%d bytes)", len(b), ed25519.PublicKeySize)
	}
	return ed25519.PublicKey(b), nil
}

// AllowsUnsigned reports whether path (a plugin directory or a bundle
// file) lies in one of the allow_unsigned directories.
func (t *Trust) AllowsUnsigned(path string) bool {
	abs, err := filepath.Abs(path)
	if err != nil {
		return false
	}
	for _, dir := range t.AllowUnsigned {
		if rel, err := filepath.Rel(dir, abs); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// KeyRevoked reports whether the revocation list names key.
func (t *Trust) KeyRevoked(key ed25519.PublicKey) bool {
	for _, r := range t.Revoked {
		if k, err := parseKey(r); err == nil && k.Equal(key) {
			return true
		}
	}
	return false
}

// DigestRevoked reports whether the revocation list names a bundle digest.
func (t *Trust) DigestRevoked(digest string) bool { return slices.Contains(t.Revoked, digest) }
