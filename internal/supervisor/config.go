// Package supervisor is the device-supervisor capability: a client for the
// balena Supervisor HTTP API that holds the API key on the host side, the
// named operations a manifest can grant, and the mapping of the supervisor's
// many error shapes onto the ABI's one error space.
package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Defaults for a zero Config.
const (
	DefaultTimeout = 10 * time.Second
	DefaultRetries = 2
	DefaultBackoff = 100 * time.Millisecond
)

// ErrNotConfigured says the environment names no supervisor: the container
// lacks the io.balena.features.supervisor-api label, or this is not a device.
var ErrNotConfigured = errors.New("no supervisor configured")

// Config says how to reach the supervisor. APIKey is a secret: Config's
// String, GoString and LogValue never show it.
type Config struct {
	Address string // base URL, e.g. http://127.0.0.1:48484
	APIKey  string
	AppID   int // the application the key is scoped to; v2 app routes need it

	// Timeout bounds one HTTP attempt; the caller's context bounds the call.
	// Zero means DefaultTimeout.
	Timeout time.Duration
	// Retries is how many more times a safe (read-only) call is tried after
	// a network error or a 5xx. Zero means DefaultRetries; negative means none.
	Retries int
	// Backoff is the first wait between retries; it doubles each time.
	// Zero means DefaultBackoff.
	Backoff time.Duration

	Logger     *slog.Logger // nil discards
	HTTPClient *http.Client // nil means a private client with no proxy
}

// ConfigFromEnv reads the variables the balena supervisor gives a service:
// BALENA_SUPERVISOR_ADDRESS (else BALENA_SUPERVISOR_HOST and _PORT),
// BALENA_SUPERVISOR_API_KEY and BALENA_APP_ID, each with its RESIN_ twin for
// supervisors older than 7.22. It returns an error wrapping
// ErrNotConfigured when the address or key is missing, so that the caller
// can fall back to the simulator. The error never contains the key.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	get := func(name string) (string, string) {
		for _, prefix := range []string{"BALENA_", "RESIN_"} {
			if v := getenv(prefix + name); v != "" {
				return v, prefix + name
			}
		}
		return "", ""
	}
	var cfg Config
	cfg.Address, _ = get("SUPERVISOR_ADDRESS")
	if cfg.Address == "" {
		host, _ := get("SUPERVISOR_HOST")
		port, _ := get("SUPERVISOR_PORT")
		if host != "" && port != "" {
			cfg.Address = "http://" + host + ":" + port
		}
	}
	cfg.APIKey, _ = get("SUPERVISOR_API_KEY")
	if v, name := get("APP_ID"); v != "" {
		id, err := strconv.Atoi(v)
		if err != nil || id <= 0 {
			return cfg, fmt.Errorf("supervisor config: %s=%q is not an application id", name, v)
		}
		cfg.AppID = id
	}
	switch {
	case cfg.Address == "":
		return cfg, fmt.Errorf("supervisor config: BALENA_SUPERVISOR_ADDRESS is not set (does the service have the io.balena.features.supervisor-api label?): %w", ErrNotConfigured)
	case cfg.APIKey == "":
		return cfg, fmt.Errorf("supervisor config: BALENA_SUPERVISOR_API_KEY is not set: %w", ErrNotConfigured)
	}
	return cfg, nil
}

func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	switch {
	case c.Retries == 0:
		c.Retries = DefaultRetries
	case c.Retries < 0:
		c.Retries = 0
	}
	if c.Backoff <= 0 {
		c.Backoff = DefaultBackoff
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

func (c Config) redactedKey() string {
	if c.APIKey == "" {
		return "(unset)"
	}
	return "(set, redacted)"
}

// String describes the config without the key.
func (c Config) String() string {
	return fmt.Sprintf("supervisor{address=%s app=%d key=%s}", c.Address, c.AppID, c.redactedKey())
}

// GoString keeps %#v from printing the key.
func (c Config) GoString() string { return c.String() }

// LogValue keeps slog from printing the key.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("address", c.Address),
		slog.Int("app_id", c.AppID),
		slog.String("api_key", c.redactedKey()),
	)
}
