package bundle_test

import (
	"bytes"
	"testing"

	"github.com/airlockhq/airlock/internal/bundle"
)

// FuzzOpenBundle: bundles come from outside (vendors, registries), so Open
// must never panic or allocate by a length it has not checked, and what it
// accepts must re-encode to the same bytes (one content, one encoding).
// The committed corpus in testdata/fuzz/FuzzOpenBundle holds a signed
// bundle and near misses of it.
func FuzzOpenBundle(f *testing.F) {
	f.Add([]byte("airlock-bundle 1\nmeta 2\n{}\nplugin.toml 0\n\nmodule.wasm 0\n\ndigest 71\nsha256:0000000000000000000000000000000000000000000000000000000000000000\n"))
	f.Add([]byte("airlock-bundle 1\nmeta 99999999999\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := bundle.Open(data)
		if err != nil {
			return
		}
		if !bytes.Equal(b.Encode(), data) {
			t.Fatalf("accepted bytes that do not re-encode to themselves")
		}
	})
}
