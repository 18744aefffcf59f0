package manifest

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Env is runtime.toml's [env]: what the operator says about the
// environment plugins' env.allow selects from. See "Why secrets are decided
// by the host, not the manifest" in host/RATIONALE.md.
type Env struct {
	// Secrets names more variables that hold the host's secrets, besides
	// those the host knows (HostSecretEnv and each capability's). Like
	// them, they never reach a plugin, nor does a variable with one's
	// value.
	Secrets []string `toml:"secrets"`
	// Pass lists the secret-looking names (SecretLooking) that a local
	// plugin may read when its env.allow names one exactly; never a host
	// secret, never through a pattern, never for a vendor's bundle.
	Pass []string `toml:"pass"`
}

// HostSecretEnv names the variables that hold a secret of the host's on
// any balena device: the supervisor's key (and its RESIN_ twin) and the
// balena cloud API key. A capability names the others it reads
// (capability.SecretHolder), and runtime.toml's [env] secrets the rest.
var HostSecretEnv = []string{"BALENA_SUPERVISOR_API_KEY", "RESIN_SUPERVISOR_API_KEY", "BALENA_API_KEY", "RESIN_API_KEY"}

// secretWords are the words of a variable's name ('_'-separated, any case)
// that mark it as secret-looking; secretParts mark it wherever they are
// ("GHTOKEN", "dbPassword").
var (
	secretWords = []string{"KEY", "KEYS", "PASS", "PWD", "PSK", "PAT", "AUTH", "DSN", "CREDS", "COOKIE", "SESSION", "PRIVATE"}
	secretParts = []string{"PASSWORD", "PASSWD", "PASSPHRASE", "SECRET", "TOKEN", "APIKEY", "CREDENTIAL", "PRIVATEKEY"}
)

// SecretLooking says why a variable looks like it holds a secret, or "" if
// it does not: a word of its name such as KEY, PASS, PAT or PSK, or a value
// that is a URL with a password or a token in it, or a private key.
func SecretLooking(name, value string) string {
	n := strings.ToUpper(name)
	for _, p := range secretParts {
		if strings.Contains(n, p) {
			return "its name contains " + p
		}
	}
	for _, w := range strings.Split(n, "_") {
		if slices.Contains(secretWords, w) {
			return "its name has the word " + w
		}
	}
	if strings.Contains(value, "PRIVATE KEY-----") {
		return "its value is a private key"
	}
	if u, err := url.Parse(strings.TrimSpace(value)); err == nil && u.Scheme != "" {
		if _, ok := u.User.Password(); ok {
			return "its value is a URL with a password"
		}
		for k := range u.Query() {
			if SecretLooking(k, "") != "" {
				return fmt.Sprintf("its value is a URL with a %q parameter", k)
			}
		}
	}
	return ""
}

// checkEnvAllow refuses, at load, env.allow entries that could never be
// honoured: a host secret named exactly, or a secret-looking name that
// runtime.toml's [env] pass does not list. A pattern is never refused
// here: it simply never selects a secret (see plugin's env filter).
func checkEnvAllow(d *doc, i int, e string, rt *Runtime) {
	if strings.HasSuffix(e, "*") {
		return
	}
	var env Env
	if rt != nil {
		env = rt.Env
	}
	switch {
	case slices.Contains(HostSecretEnv, e) || slices.Contains(env.Secrets, e):
		d.errorf("env.allow", "host secrets never reach plugins; the host uses them on the plugin's behalf through a capability such as [supervisor]", "entry %d: %q names a host secret", i, e)
	case SecretLooking(e, "") != "" && !slices.Contains(env.Pass, e):
		d.errorf("env.allow", "a secret-looking variable reaches a plugin only when the operator lists it in runtime.toml's [env] pass (and never a vendor's bundle); remove it, or ask the operator",
			"entry %d: %q looks like a secret (%s)", i, e, SecretLooking(e, ""))
	}
}
