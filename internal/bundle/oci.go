package bundle

import (
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/airlockhq/airlock/host/manifest"
)

// CachePath is where the bundle of a [[bundle]] ref (pinned by the digest
// of its OCI manifest) is cached under the runtime's state_dir. Beside it,
// a file with the extension .ref holds the ref, so that a cached bundle
// can be told by its repository (Cached).
func CachePath(rt *manifest.Runtime, ref string) string {
	_, dgst, _ := strings.Cut(ref, "@sha256:")
	return filepath.Join(rt.StateDir, "bundles", "oci", dgst+Extension)
}

func refFile(cached string) string { return strings.TrimSuffix(cached, Extension) + ".ref" }

// StoreCached caches data, the bundle that pinned names (checked by the
// caller: registry.Pull), under rt's state_dir, with its .ref file, and
// returns its path (CachePath).
func StoreCached(rt *manifest.Runtime, pinned string, data []byte) (string, error) {
	path := CachePath(rt, pinned)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", err
	}
	if err := writeFile(refFile(path), []byte(pinned+"\n")); err != nil {
		return "", err
	}
	if err := writeFile(path, data); err != nil {
		return "", err
	}
	return path, nil
}

// Cached is what the cache holds for one [[bundle]] ref.
type Cached struct {
	Ref string // the [[bundle]] ref
	// Path is the cached bundle file that runs for Ref, "" for none.
	Path string
	// Earlier is set when Ref itself is not cached yet and Path is the
	// newest cached pull of the same repository: the pinned ref that runs
	// until Ref is pulled.
	Earlier string
}

// Cache says what the cache of rt's state_dir holds for each [[bundle]]:
// the pinned bundle itself, or else the newest earlier pull of the same
// repository (one the operator pinned before), or nothing. Whatever it
// returns is checked by Load, as every bundle is, before it runs.
func Cache(rt *manifest.Runtime) []Cached {
	var out []Cached
	var earlier map[string][]string // repository -> pinned refs cached
	pinned := map[string]bool{}
	for _, b := range rt.Bundles {
		pinned[b.Ref] = true
	}
	for _, b := range rt.Bundles {
		c := Cached{Ref: b.Ref}
		if p := CachePath(rt, b.Ref); fileExists(p) {
			c.Path = p
			out = append(out, c)
			continue
		}
		if earlier == nil {
			earlier = cachedByRepository(rt)
		}
		repo, _, _ := strings.Cut(b.Ref, "@")
		var newest time.Time
		for _, ref := range earlier[repo] {
			p := CachePath(rt, ref)
			if st, err := os.Stat(p); err == nil && !pinned[ref] && st.ModTime().After(newest) {
				newest, c.Path, c.Earlier = st.ModTime(), p, ref
			}
		}
		out = append(out, c)
	}
	return out
}

// cachedByRepository reads the .ref files of the cache.
func cachedByRepository(rt *manifest.Runtime) map[string][]string {
	out := map[string][]string{}
	files, _ := filepath.Glob(filepath.Join(rt.StateDir, "bundles", "oci", "*.ref"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		ref := strings.TrimSpace(string(data))
		repo, _, ok := strings.Cut(ref, "@sha256:")
		// Only a ref whose name matches its file counts: the file is the
		// device's, but a planted one must not stand for another bundle.
		if err != nil || !ok || CachePath(rt, ref) != strings.TrimSuffix(f, ".ref")+Extension {
			continue
		}
		out[repo] = append(out[repo], ref)
	}
	return out
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
