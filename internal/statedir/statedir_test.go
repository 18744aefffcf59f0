package statedir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
)

func TestEnsureMakesPrivateDirs(t *testing.T) {
	data := t.TempDir() // an empty volume
	dir := filepath.Join(data, "airlock", "state")
	if err := Ensure(dir); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, filepath.Dir(dir)} {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if !st.IsDir() || st.Mode().Perm() != Mode {
			t.Errorf("%s: mode %v, want a directory with %04o", d, st.Mode(), Mode)
		}
	}
	if err := Ensure(dir); err != nil {
		t.Errorf("second Ensure of an existing directory: %v", err)
	}
}

func TestEnsureRefuses(t *testing.T) {
	data := t.TempDir()
	file := filepath.Join(data, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	open := filepath.Join(data, "open")
	if err := os.Mkdir(open, 0o700); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o777)
	cases := []struct {
		name, dir string
		want      []string
	}{
		{"file in the way", filepath.Join(file, "airlock"), []string{"cannot create " + filepath.Join(file, "airlock"), "not a directory"}},
		{"writable by others", open, []string{open, "has mode 0777", "chmod go-w"}},
	}
	if os.Geteuid() == 0 {
		foreign := filepath.Join(data, "foreign")
		if err := os.Mkdir(foreign, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(foreign, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			name, dir string
			want      []string
		}{"owned by another user", foreign, []string{foreign, "is owned by uid 4242"}})
	} else if testenv.Strict() {
		t.Error("run as root to test a directory another user owns")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Ensure(c.dir)
			if err == nil {
				t.Fatalf("Ensure(%s) = nil, want an error", c.dir)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}
