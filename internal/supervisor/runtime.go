package supervisor

import (
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/airlockhq/airlock/host/manifest"
)

// RuntimeConfig is runtime.toml's [supervisor] section: how the host reaches
// the device's supervisor. The API key itself is never written there; the
// section names the environment variable that holds it.
type RuntimeConfig struct {
	// Address overrides BALENA_SUPERVISOR_ADDRESS ("" keeps the environment's).
	Address string
	// APIKeyEnv names the variable that holds the key; "" means
	// BALENA_SUPERVISOR_API_KEY (or its RESIN_ twin).
	APIKeyEnv string
	// AppID overrides BALENA_APP_ID (0 keeps the environment's).
	AppID int
	// Timeout bounds one HTTP attempt (0: DefaultTimeout). The handler's
	// deadline bounds the whole call in any case.
	Timeout time.Duration
	// Retries is how many times a read is retried; -1 means none, 0 the
	// default. Writes are never retried (see RATIONALE.md).
	Retries int
}

// DefaultAPIKeyEnv is where the balena supervisor puts the key.
const DefaultAPIKeyEnv = "BALENA_SUPERVISOR_API_KEY"

type runtimeTOML struct {
	Address   string            `toml:"address"`
	APIKeyEnv string            `toml:"api_key_env"`
	AppID     int               `toml:"app_id"`
	Timeout   manifest.Duration `toml:"timeout"`
	Retries   *int              `toml:"retries"`
	// APIKey is decoded only to refuse it with a message that says where
	// the key belongs; its value is never printed.
	APIKey *string `toml:"api_key"`
}

var errBadConfig = errors.New("bad [supervisor] section")

// decodeRuntime decodes runtime.toml's [supervisor] strictly.
func decodeRuntime(s manifest.Section) (*RuntimeConfig, error) {
	var t runtimeTOML
	if !s.Decode(&t) {
		return nil, errBadConfig
	}
	ok := true
	c := &RuntimeConfig{Address: strings.TrimSpace(t.Address), APIKeyEnv: t.APIKeyEnv, AppID: t.AppID, Timeout: t.Timeout.D()}
	if t.APIKey != nil {
		ok = false
		s.Errorf("api_key", "put the key in an environment variable and name that variable with api_key_env; on a balena device the supervisor already sets "+DefaultAPIKeyEnv,
			"the supervisor API key must not be written in runtime.toml")
	}
	if c.Address != "" {
		u, err := url.Parse(c.Address)
		switch {
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
			ok = false
			s.Errorf("address", `write the supervisor's base URL, such as "http://127.0.0.1:48484"`, "address is not an http:// URL")
		case u.User != nil || u.RawQuery != "":
			ok = false
			s.Errorf("address", "the key travels only in the Authorization header; remove the credentials or query from the URL", "address must not carry credentials or a query")
		}
	}
	if c.APIKeyEnv != "" && !envName(c.APIKeyEnv) {
		// Do not echo the value: someone may have pasted the key here.
		ok = false
		s.Errorf("api_key_env", `write the name of the variable that holds the key, such as "`+DefaultAPIKeyEnv+`", never the key itself`,
			"api_key_env is not an environment variable name (A-Z, 0-9 and _)")
	}
	if c.AppID < 0 {
		ok = false
		s.Errorf("app_id", "write the application's numeric id (BALENA_APP_ID), or remove app_id to take it from the environment", "app_id is negative")
	}
	if t.Retries != nil {
		switch r := *t.Retries; {
		case r < 0 || r > 10:
			ok = false
			s.Errorf("retries", "write a number from 0 (never retry) to 10", "retries = %d is out of range", r)
		case r == 0:
			c.Retries = -1
		default:
			c.Retries = r
		}
	}
	if !ok {
		return nil, errBadConfig
	}
	return c, nil
}

// envName reports whether s looks like an environment variable's name. A
// key (hex, mixed case) does not, which catches a key pasted by mistake.
func envName(s string) bool {
	for i, r := range s {
		if !(r >= 'A' && r <= 'Z' || r == '_' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}
