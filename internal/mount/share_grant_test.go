package mount

import (
	"maps"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/host/manifest"
)

// The [[mount]] table that takes shares: what decodes, and what a user
// is told when it does not.
func TestDecodeAccepts(t *testing.T) {
	rt := manifest.DefaultRuntime()
	schema := manifest.Schema{Grants: map[string]manifest.SectionFunc{"mount": (&Mount{}).DecodeGrant}}
	parse := func(grant string) (*Grant, error) {
		m, err := manifest.ParseManifest("plugin.toml", []byte("name = \"p\"\nversion = \"1.0.0\"\n"+grant), &rt, schema)
		if err != nil {
			return nil, err
		}
		return m.Grants["mount"].(*Grant), nil
	}
	g, err := parse("[[mount]]\nfrom = [\"automount\", \"acme/copier\"]\n[[mount]]\nfrom = [\"acme/copier\"]\nmode = \"rw\"\n[[mount]]\nsource = [\"label:X\"]\nfstype = [\"ext4\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]bool{"automount": false, "acme/copier": true}; !maps.Equal(g.Accepts, want) || len(g.Rules) != 1 || g.Target != "/media" {
		t.Errorf("got %v %d rules %s, want %v, 1 rule, /media", g.Accepts, len(g.Rules), g.Target, want)
	}
	for _, tc := range []struct{ grant, want string }{
		{"[[mount]]\nfrom = [\"a\"]\nsource = [\"label:X\"]\nfstype = [\"ext4\"]\n", "a table with from takes shares and grants no device"},
		{"[[mount]]\nmode = \"rw\"\n", "mode without from"},
		{"[[mount]]\nfrom = [\"a\"]\nmode = \"write\"\n", `mode "write" is neither ro nor rw`},
		{"[[mount]]\nfrom = [\"../a\"]\n", `from "../a" is not a plugin name`},
	} {
		if _, err := parse(tc.grant); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: got %v, want %q", tc.grant, err, tc.want)
		}
	}
}
