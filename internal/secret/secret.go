// Package secret reads the host-held secrets that runtime.toml declares
// (in [http.secrets]) for the capabilities that attach them on a plugin's
// behalf: an HTTP header (internal/httpout), a broker's password
// (internal/mqtt). A plugin never holds one; this package is the one place
// that reads them, so that every capability refuses the same bad sources.
package secret

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Source says where a named secret is read from: an environment variable
// or a file (on a device, under /data). Exactly one is set.
type Source struct {
	Env  string
	File string
}

func (s Source) String() string {
	if s.Env != "" {
		return "env " + s.Env
	}
	return "file " + s.File
}

// MaxLen bounds a secret's value.
const MaxLen = 8 << 10

// Load reads secret name from src. A file under stateDir is refused:
// plugins' /data directories live there, so a plugin could read it. Its
// errors name the source, never the value.
func Load(name string, src Source, getenv func(string) string, stateDir string) (string, error) {
	if src.File != "" && under(src.File, stateDir) {
		return "", fmt.Errorf("secret %q: %s is under state_dir (%s), where plugins' /data directories live; keep it elsewhere on /data", name, src.File, stateDir)
	}
	var v string
	if src.Env != "" {
		v = getenv(src.Env)
	} else {
		st, err := os.Stat(src.File)
		if err != nil {
			return "", fmt.Errorf("secret %q: %w", name, err)
		}
		if !st.Mode().IsRegular() || st.Size() > MaxLen {
			return "", fmt.Errorf("secret %q: %s is not a regular file of at most %d bytes", name, src.File, MaxLen)
		}
		b, err := os.ReadFile(src.File)
		if err != nil {
			return "", fmt.Errorf("secret %q: %w", name, err)
		}
		v = strings.TrimRight(string(b), "\r\n")
	}
	switch {
	case v == "":
		return "", fmt.Errorf("secret %q: %s is empty or unset", name, src)
	case len(v) > MaxLen:
		return "", fmt.Errorf("secret %q: %s is longer than %d bytes", name, src, MaxLen)
	case strings.ContainsAny(v, "\r\n\x00"):
		return "", fmt.Errorf("secret %q: %s holds a line break or NUL, which no header may carry", name, src)
	}
	return v, nil
}

// under reports whether path is dir or inside it, after cleaning both.
func under(path, dir string) bool {
	if dir == "" {
		return false
	}
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}
