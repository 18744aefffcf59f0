package bench

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/httpout"
	"github.com/airlockhq/airlock/internal/plugin"
)

// httpBody is the loopback server's answer: a small JSON reply, as a
// webhook receiver gives.
var httpBody = []byte(`{"ok":true,"id":"0123456789abcdef0123456789abcdef","ts":"2026-12-08T00:00:00Z"}` + "\n")

// httpBench is a loopback server, the http capability granted it, a Go
// SDK guest (testdata/httpguest) instantiated with that grant, and a
// host-side caller with the same grant.
type httpBench struct {
	url    string
	client *http.Client // Go's own
	c      *httpout.Capability
	g      *httpout.Grant
	hostIn *capability.Caller
	guest  *plugin.Instance
}

func newHTTPBench(b *testing.B) *httpBench {
	b.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(httpBody)
	}))
	b.Cleanup(srv.Close)
	port := srv.Listener.Addr().(*net.TCPAddr).Port
	grant := fmt.Sprintf("[[http.request]]\nhost = [\"127.0.0.1\"]\nscheme = [\"http\"]\nport = [%d]\n", port)
	x := &httpBench{url: srv.URL + "/hook", client: &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 4}}}
	var m *manifest.Manifest
	var rt *manifest.Runtime
	x.c, m, rt = httpCapability(b, grant, fmt.Sprintf("[config]\nurl = %q\n", x.url))
	x.g = m.Grants[httpout.Name].(*httpout.Grant)
	x.hostIn = &capability.Caller{Plugin: "host", Grants: m.Grants, Gate: gate.New(nil), Log: slog.New(slog.DiscardHandler)}
	p, err := plugin.Load(context.Background(), m, plugin.Options{Runtime: rt, Gate: gate.New(nil), Logger: slog.New(slog.DiscardHandler),
		Capabilities: []capability.Capability{x.c}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close(context.Background()) })
	if x.guest, err = p.Instantiate(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { x.guest.Close() })
	return x
}

// goGet is the request with Go's own client.
func (x *httpBench) goGet(b *testing.B) {
	resp, err := x.client.Get(x.url)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
}

// hostGet is the request through the capability, from the host's side.
func (x *httpBench) hostGet(b *testing.B) {
	ctx, cancel := context.WithTimeout(context.Background(), handlerTimeout)
	defer cancel()
	r, err := x.c.Do(ctx, x.hostIn, x.g, httpout.Request{URL: x.url})
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, r.Body)
	r.Close()
}

// event delivers event kind 100 (the request) or 101 (nothing) to the guest.
func (x *httpBench) event(b *testing.B, kind uint32) {
	if err := x.guest.Handle(capability.Event{Kind: kind}); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkHTTPRoundTrip: one GET to a loopback server and its body read
// to the end. go-net-http is Go's own client (a keep-alive Transport);
// airlock-host is the capability's request path from the host's side
// (grant, gate, address rules, redirects, limits); airlock is the whole
// path from a Go SDK guest: an event delivered, request, body_read until
// the end, body_close. airlock's added cost is airlock minus go-net-http;
// BenchmarkHTTPAddedCost measures it under one load.
func BenchmarkHTTPRoundTrip(b *testing.B) {
	x := newHTTPBench(b)
	for _, c := range []struct {
		name string
		do   func(*testing.B)
	}{
		{"go-net-http", x.goGet},
		{"airlock-host", x.hostGet},
		{"airlock", func(b *testing.B) { x.event(b, 100) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				c.do(b)
			}
		})
	}
}

// BenchmarkHTTPAddedCost runs the three ways of BenchmarkHTTPRoundTrip in
// turn within each op, so that all see the same load (on a shared machine
// the round trip alone varies by 3x from one run to the next), and a Go
// guest's empty event, which is the guest language's cost, not airlock's.
// It reports each in µs; added-µs is airlock's cost over Go's client
// (airlock - go - the empty event), host-added-µs that of the host's side.
func BenchmarkHTTPAddedCost(b *testing.B) {
	x := newHTTPBench(b)
	var tGo, tHost, tGuest, tEmpty time.Duration
	n := 0
	for b.Loop() {
		n++
		t0 := time.Now()
		x.goGet(b)
		t1 := time.Now()
		x.hostGet(b)
		t2 := time.Now()
		x.event(b, 100)
		t3 := time.Now()
		x.event(b, 101)
		t4 := time.Now()
		tGo, tHost, tGuest, tEmpty = tGo+t1.Sub(t0), tHost+t2.Sub(t1), tGuest+t3.Sub(t2), tEmpty+t4.Sub(t3)
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(n) / 1e3 }
	b.ReportMetric(us(tGo), "go-µs")
	b.ReportMetric(us(tHost), "airlock-host-µs")
	b.ReportMetric(us(tGuest), "airlock-µs")
	b.ReportMetric(us(tEmpty), "empty-event-µs")
	b.ReportMetric(us(tHost-tGo), "host-added-µs")
	b.ReportMetric(us(tGuest-tGo-tEmpty), "added-µs")
}

const handlerTimeout = 5 * time.Second

// httpCapability is the http capability, provisioned, and a manifest that
// grants grant, for the guest built from testdata/httpguest.
func httpCapability(b *testing.B, grant, extra string) (*httpout.Capability, *manifest.Manifest, *manifest.Runtime) {
	b.Helper()
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.wasm"), httpGuest(b), 0o644); err != nil {
		b.Fatal(err)
	}
	c := httpout.New(httpout.Options{Getenv: func(string) string { return "" }})
	rt := manifest.DefaultRuntime()
	rt.File, rt.StateDir = filepath.Join(dir, "runtime.toml"), dir
	if err := c.Provision(context.Background(), capability.Env{Runtime: &rt, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	m, err := manifest.ParseManifest(filepath.Join(dir, "plugin.toml"), []byte("name = \"p\"\nwasm = \"p.wasm\"\n"+extra+grant), &rt,
		manifest.Schema{Grants: map[string]manifest.SectionFunc{httpout.Name: c.DecodeGrant}})
	if err != nil {
		b.Fatal(err)
	}
	return c, m, &rt
}

var httpGuestWasm []byte

// httpGuest builds testdata/httpguest with the Go SDK, once.
func httpGuest(b *testing.B) []byte {
	if httpGuestWasm != nil {
		return httpGuestWasm
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "testdata", "httpguest")
	out := filepath.Join(os.TempDir(), "airlock-bench-httpguest.wasm")
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", out, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if o, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("build httpguest: %v\n%s", err, strings.TrimSpace(string(o)))
	}
	w, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	httpGuestWasm = w
	return w
}
