package bundle

import (
	"testing"

	"github.com/airlockhq/airlock/host/manifest"
)

// TestPlainHTTPOnlyWhenAsked: loopback registries are reached over plain
// HTTP; every other one over TLS unless [registry] plain_http (or
// --plain-http) names it.
func TestPlainHTTPOnlyWhenAsked(t *testing.T) {
	rt := manifest.Registry{PlainHTTP: []string{"mirror.lan:5000"}}
	for host, want := range map[string][2]bool{ // {zero Access, with [registry] plain_http}
		"127.0.0.1:5000":        {true, true},
		"[::1]:5000":            {true, true},
		"localhost:5000":        {true, true},
		"127.0.0.1.example.com": {false, false},
		"10.0.0.7:5000":         {false, false},
		"registry.example.com":  {false, false},
		"mirror.lan:5000":       {false, true},
		"mirror.lan":            {false, false},
	} {
		for i, a := range []Access{{}, {PlainHTTP: rt.PlainHTTPFor}} {
			if got := a.plainHTTP(host); got != want[i] {
				t.Errorf("%s (access %d): plain HTTP %v, want %v", host, i, got, want[i])
			}
		}
		repo, _, err := repository(host+"/acme/ntp:1", Access{PlainHTTP: rt.PlainHTTPFor})
		if err != nil || repo.PlainHTTP != want[1] {
			t.Errorf("%s: repository plain HTTP %v (%v), want %v", host, repo.PlainHTTP, err, want[1])
		}
	}
}
