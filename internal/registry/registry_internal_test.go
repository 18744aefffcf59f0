package registry

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"
	"oras.land/oras-go/v2/registry/remote"

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

// TestTLSToAPlainRegistry: a registry that answers a TLS request in plain
// HTTP is reported with the two ways to ask for plain HTTP, never retried
// in plain HTTP on our own.
func TestTLSToAPlainRegistry(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	// Loopback always gets plain HTTP from repository; this is what any
	// other registry would get.
	repo, err := remote.NewRepository(host + "/acme/ntp")
	if err != nil {
		t.Fatal(err)
	}
	_, err = repo.Resolve(context.Background(), "1.0")
	err = Access{}.explain("pull "+host+"/acme/ntp:1.0", host, err)
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "pass --plain-http, or list it in [registry] plain_http") {
		t.Fatalf("TLS to a plain HTTP registry: %v", err)
	}
}
