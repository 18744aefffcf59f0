package httpout

import (
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/secret"
)

// Config is runtime.toml's [http] section.
type Config struct {
	// CAFile is a PEM file of extra roots, trusted besides the system's.
	CAFile string
	// Timeout bounds one request with its redirects and body; the handler's
	// deadline bounds it further.
	Timeout time.Duration
	// MaxResponse bounds the body a plugin may read from one response.
	MaxResponse int64
	// MaxRequestBody bounds the body a plugin may send.
	MaxRequestBody int
	// MaxRedirects bounds the hops followed for one request.
	MaxRedirects int
	// Secrets are the host-held secrets grants may attach, by name.
	Secrets map[string]SecretSource
}

// SecretSource says where a named secret is read from (package secret
// reads it).
type SecretSource = secret.Source

// Defaults of an absent [http] section.
const (
	DefaultTimeout        = 30 * time.Second
	DefaultMaxResponse    = 16 << 20
	DefaultMaxRequestBody = 1 << 20
	DefaultMaxRedirects   = 5
	maxRedirectsCeiling   = 20
)

// DefaultConfig is what an absent [http] section means.
func DefaultConfig() Config {
	return Config{Timeout: DefaultTimeout, MaxResponse: DefaultMaxResponse, MaxRequestBody: DefaultMaxRequestBody, MaxRedirects: DefaultMaxRedirects}
}

type configTOML struct {
	CAFile         string                `toml:"ca_file"`
	Timeout        manifest.Duration     `toml:"timeout"`
	MaxResponse    manifest.Size         `toml:"max_response"`
	MaxRequestBody manifest.Size         `toml:"max_request_body"`
	MaxRedirects   *int                  `toml:"max_redirects"`
	Secrets        map[string]secretTOML `toml:"secrets"`
}

type secretTOML struct {
	Env  string `toml:"env"`
	File string `toml:"file"`
}

var (
	errBadConfig = errors.New("bad [http] section")
	secretName   = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	envName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

func decodeConfig(s manifest.Section) (*Config, error) {
	var t configTOML
	if !s.Decode(&t) {
		return nil, errBadConfig
	}
	c := DefaultConfig()
	ok := true
	if t.CAFile != "" {
		if _, err := LoadRoots(t.CAFile); err != nil {
			ok = false
			s.Errorf("ca_file", "name a PEM file of CA certificates, such as /data/ca.pem", "%v", err)
		}
		c.CAFile = t.CAFile
	}
	if t.Timeout > 0 {
		c.Timeout = t.Timeout.D()
	}
	if t.MaxResponse > 0 {
		c.MaxResponse = int64(t.MaxResponse)
	}
	if t.MaxRequestBody > 0 {
		if t.MaxRequestBody > 64<<20 {
			ok = false
			s.Errorf("max_request_body", "a request body is held in the host's memory while it is sent; keep it small", "max_request_body = %s is over 64MiB", t.MaxRequestBody)
		}
		c.MaxRequestBody = int(t.MaxRequestBody)
	}
	if t.MaxRedirects != nil {
		if *t.MaxRedirects < 0 || *t.MaxRedirects > maxRedirectsCeiling {
			ok = false
			s.Errorf("max_redirects", "0 follows none; browsers stop at 20", "max_redirects = %d is outside 0..%d", *t.MaxRedirects, maxRedirectsCeiling)
		}
		c.MaxRedirects = *t.MaxRedirects
	}
	c.Secrets = map[string]SecretSource{}
	for _, name := range sortedKeys(t.Secrets) {
		src := t.Secrets[name]
		key := "secrets." + name
		switch {
		case !secretName.MatchString(name):
			ok = false
			s.Errorf(key, "name it with lower-case letters, digits, '-' and '_', such as \"slack\"", "secret name %q is not a name", name)
		case (src.Env == "") == (src.File == ""):
			ok = false
			s.Errorf(key, `write env = "VARIABLE" or file = "/data/secret-file"`, "secret %q needs exactly one of env and file", name)
		case src.Env != "" && !envName.MatchString(src.Env):
			ok = false
			s.Errorf(key+".env", "name an environment variable, such as SLACK_TOKEN", "%q is not a variable name", src.Env)
		case src.File != "" && !filepath.IsAbs(src.File):
			ok = false
			s.Errorf(key+".file", "write an absolute path, such as /data/secrets/slack", "%q is not an absolute path", src.File)
		}
		c.Secrets[name] = SecretSource(src)
	}
	if !ok {
		return nil, errBadConfig
	}
	return &c, nil
}

// LoadRoots returns the system roots plus the certificates of caFile (mqtt
// uses it for its brokers too).
func LoadRoots(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if caFile == "" {
		return pool, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", caFile)
	}
	return pool, nil
}

var _ = capability.MaxResult

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
