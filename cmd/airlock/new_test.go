package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/sdk"
)

// missing skips, or fails under AIRLOCK_TEST_STRICT=1 (CI), for an absent
// prerequisite, as internal/testenv does.
func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("AIRLOCK_TEST_STRICT") == "1" {
		t.Fatalf("prerequisite missing (AIRLOCK_TEST_STRICT=1): %s", why)
	}
	t.Skipf("prerequisite missing: %s", why)
}

// TestNewOutsideCheckout (internal/clitest) makes, builds and runs a
// plugin in each language with the airlock binary.

func TestNewErrors(t *testing.T) {
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "x"), nil, 0o644)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"new"}, 2, "Usage: airlock new"},
		{[]string{"new", "Bad_Name"}, 1, `bad plugin name "Bad_Name"`},
		{[]string{"new", "--lang", "cobol", "x"}, 1, `unknown language "cobol"`},
		{[]string{"new", "--dir", full, "x"}, 1, "exists and is not empty"},
		{[]string{"new", "a", "b"}, 2, "Usage: airlock new"},
	}
	for _, c := range cases {
		r := airlock(c.args...)
		if printed, other := r.streams(); r.code != c.code || !strings.Contains(printed, c.want) || other != "" {
			t.Errorf("airlock %v: %v\nwant exit %d and %q on stderr", c.args, r, c.code, c.want)
		}
	}
}

// TestSDKVersions: the version airlock new writes into a project's go.mod,
// Cargo.toml and package.json is the one each SDK's own manifest says.
func TestSDKVersions(t *testing.T) {
	for file, want := range map[string]string{
		"rust/Cargo.toml":             `version = "` + sdk.Version + `"`,
		"assemblyscript/package.json": `"version": "` + sdk.Version + `"`,
	} {
		b, err := sdk.Files.ReadFile(file)
		if err != nil || !strings.Contains(string(b), want) {
			t.Errorf("sdk/%s lacks %s (sdk.Version); err %v", file, want, err)
		}
	}
}
