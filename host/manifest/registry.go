package manifest

import (
	"strings"
	"time"
)

// Registry is runtime.toml's [registry]: how the host reaches the OCI
// registries of its [[bundle]] refs.
type Registry struct {
	// Auth is a docker config file ("auths", "credHelpers",
	// "credsStore") that holds the credentials of each registry; "" means
	// anonymous pulls. Absolute. It belongs on the device's data volume,
	// never in the image.
	Auth string `toml:"auth"`
	// PlainHTTP lists the registries (host or host:port) reached over plain
	// HTTP. A registry on loopback always is; every other one gets TLS.
	PlainHTTP []string `toml:"plain_http"`
	// RetryInitial is the wait after a [[bundle]] pull fails; it doubles at
	// each failure up to RetryMax, with jitter.
	RetryInitial Duration `toml:"retry_initial"`
	RetryMax     Duration `toml:"retry_max"`
}

// defaultRegistry is what [registry]'s absent keys mean.
func defaultRegistry() Registry {
	return Registry{RetryInitial: Duration(2 * time.Second), RetryMax: Duration(5 * time.Minute)}
}

// decodeRegistry decodes [registry].
func decodeRegistry(d *doc, rt *Runtime) {
	r := defaultRegistry()
	if d.decode("registry", &r) {
		if r.Auth != "" {
			r.Auth = rt.resolve(r.Auth)
		}
		for i, h := range r.PlainHTTP {
			if h == "" || strings.ContainsAny(h, "/@ ") {
				d.errorf("registry.plain_http", `name registries as host or host:port, such as "registry.lan:5000"`, "entry %d: %q is not a registry host", i, h)
			}
		}
		if r.RetryInitial > r.RetryMax {
			d.errorf("registry.retry_initial", "make it at most registry.retry_max", "initial wait %s is above max %s", r.RetryInitial, r.RetryMax)
		}
	}
	rt.Registry = r
}

// PlainHTTPFor reports whether [registry] plain_http names the registry
// host (host or host:port, as in a reference).
func (r Registry) PlainHTTPFor(host string) bool {
	for _, h := range r.PlainHTTP {
		if h == host {
			return true
		}
	}
	return false
}
