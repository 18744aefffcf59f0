package bundle_test

import (
	"context"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/airlockhq/airlock/internal/bundle"
	oci "github.com/airlockhq/airlock/internal/registry"
)

// TestOCIPull pushes a signed bundle to a real registry implementation
// (go-containerregistry's, in-process on loopback), pins it by digest in
// [[bundle]], pulls it into state_dir and loads it through the trust policy.
func TestOCIPull(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()

	signed := pack(t, ntpToml, "acme", key(0))
	pinned, err := oci.Push(ctx, signed.Encode(), host+"/acme/ntp-check:1.2.0", oci.Access{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(pinned, host+"/acme/ntp-check@sha256:") {
		t.Fatalf("pinned ref %q", pinned)
	}

	root := t.TempDir()
	rt := runtime(t, root, trustToml("")+"\n[[bundle]]\nref = \""+pinned+"\"\n")
	if _, err := oci.Pull(ctx, rt, pinned, oci.Access{}); err != nil {
		t.Fatal(err)
	}
	cached := bundle.CachePath(rt, pinned)
	l, err := bundle.Load(cached, rt, schema(), now)
	if err != nil {
		t.Fatal(err)
	}
	if l.Signer.Vendor == nil || l.Signer.Vendor.Name != "acme" || l.Bundle.Digest != signed.Digest {
		t.Fatalf("loaded %+v", l.Signer)
	}

	// A pull by tag resolves to the same pinned ref.
	p, err := oci.Pull(ctx, rt, host+"/acme/ntp-check:1.2.0", oci.Access{})
	if err != nil || p.Ref != pinned {
		t.Fatalf("pull by tag: %v, %+v", err, p)
	}

	// A digest the registry does not have is an error, and nothing is cached.
	missing := host + "/acme/ntp-check@sha256:" + strings.Repeat("0", 64)
	if _, err := oci.Pull(ctx, rt, missing, oci.Access{}); err == nil {
		t.Fatal("pulled a digest the registry does not have")
	}
	if _, err := os.Stat(bundle.CachePath(rt, missing)); err == nil {
		t.Fatal("a failed pull left a cached file")
	}

	// A cached bundle changed on the device is refused at load.
	data, _ := os.ReadFile(cached)
	data[len(data)/2] ^= 1
	os.WriteFile(cached, data, 0o600)
	if _, err := bundle.Load(cached, rt, schema(), now); err == nil {
		t.Fatal("loaded a cached bundle that was changed on disk")
	}
}

// TestCacheRunsAnEarlierPull: while a [[bundle]] pin is not cached, the
// newest cached pull of the same repository stands in for it; a .ref file
// whose ref does not match its own name (planted, or left half-written)
// stands for nothing.
func TestCacheRunsAnEarlierPull(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	v1, err := oci.Push(ctx, pack(t, ntpToml, "acme", key(0)).Encode(), host+"/acme/ntp-check:1.2.0", oci.Access{})
	if err != nil {
		t.Fatal(err)
	}
	v2 := host + "/acme/ntp-check@sha256:" + strings.Repeat("2", 64) // never pulled
	root := t.TempDir()
	rt := runtime(t, root, trustToml("")+"\n[[bundle]]\nref = \""+v1+"\"\n")
	if _, err := oci.Pull(ctx, rt, v1, oci.Access{}); err != nil {
		t.Fatal(err)
	}

	rt = runtime(t, root, trustToml("")+"\n[[bundle]]\nref = \""+v2+"\"\n")
	got := bundle.Cache(rt)
	if want := (bundle.Cached{Ref: v2, Path: bundle.CachePath(rt, v1), Earlier: v1}); len(got) != 1 || got[0] != want {
		t.Fatalf("cache for a new pin: %+v, want %+v", got, want)
	}

	// A .ref under another name that claims v1's file for another
	// repository is ignored.
	other := host + "/evil/thing@sha256:" + strings.Repeat("3", 64)
	planted := strings.TrimSuffix(bundle.CachePath(rt, other), bundle.Extension) + ".ref"
	_, v1digest, _ := strings.Cut(v1, "@")
	os.WriteFile(planted, []byte(host+"/evil/thing@"+v1digest+"\n"), 0o600)
	rt = runtime(t, root, trustToml("")+"\n[[bundle]]\nref = \""+other+"\"\n")
	if got := bundle.Cache(rt); len(got) != 1 || got[0].Path != "" {
		t.Fatalf("a planted .ref made %+v stand in", got)
	}
}
