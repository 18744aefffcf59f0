package httpout

import (
	"context"
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
)

// counted is a loopback server that counts the requests it answers.
type counted struct {
	*httptest.Server
	hits atomic.Int64
}

func serve(t *testing.T, tlsOn bool, h http.HandlerFunc) *counted {
	t.Helper()
	c := &counted{}
	wrapped := func(w http.ResponseWriter, r *http.Request) { c.hits.Add(1); h(w, r) }
	if tlsOn {
		c.Server = httptest.NewTLSServer(http.HandlerFunc(wrapped))
	} else {
		c.Server = httptest.NewServer(http.HandlerFunc(wrapped))
	}
	t.Cleanup(c.Close)
	return c
}

func (c *counted) port() int { return c.Listener.Addr().(*net.TCPAddr).Port }

// caFile writes the TLS test server's certificate as a CA file.
func caFile(t *testing.T, s *httptest.Server) string {
	p := filepath.Join(t.TempDir(), "ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw})
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantErrno(t *testing.T, err error, want abi.Errno, msg string) {
	t.Helper()
	if got := capability.ErrnoOf(err); got != want || err == nil || !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %v (errno %v); want errno %v with %q", err, got, want, msg)
	}
}

func ok(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }

// A request to loopback, by a name that resolves there, is refused after
// resolution even though the grant names the host: the server sees nothing,
// and the audit records the refused address.
func TestHostileLoopbackByName(t *testing.T) {
	srv := serve(t, false, ok)
	ns, res := startNameServer(t, map[string][]netip.Addr{"inside.test": {netip.MustParseAddr("127.0.0.1")}})
	r := newRig(t, rigOptions{resolver: res}, fmt.Sprintf("[[http.request]]\nhost = [\"inside.test\"]\nscheme = [\"http\"]\nport = [%d]\n", srv.port()))
	_, _, _, err := r.do("GET", fmt.Sprintf("http://inside.test:%d/", srv.port()), nil, nil)
	wantErrno(t, err, abi.Denied, "a loopback address")
	if srv.hits.Load() != 0 || ns.queries.Load() == 0 {
		t.Errorf("server hits %d, DNS queries %d; want 0 hits after a real resolution", srv.hits.Load(), ns.queries.Load())
	}
	if r.logs.Count("decision=deny", fmt.Sprintf("connect 127.0.0.1:%d", srv.port())) != 1 {
		t.Errorf("no audit of the refused address:\n%s", strings.Join(r.logs.Lines(), "\n"))
	}
	// A URL naming loopback directly is not granted at all.
	_, _, _, err = r.do("GET", srv.URL, nil, nil)
	wantErrno(t, err, abi.Denied, "no [[http.request]] names host 127.0.0.1")
	// The same name with allow_private reaches the server: the refusal
	// above was the address rule, not a broken resolver.
	r2 := newRig(t, rigOptions{resolver: res}, fmt.Sprintf("[[http.request]]\nhost = [\"inside.test\"]\nscheme = [\"http\"]\nport = [%d]\nallow_private = true\n", srv.port()))
	if st, body, _, err := r2.do("GET", fmt.Sprintf("http://inside.test:%d/", srv.port()), nil, nil); err != nil || st != 200 || string(body) != "ok" {
		t.Fatalf("allow_private: %d %q %v", st, body, err)
	}
}

// The cloud metadata address is refused by the dialer, before a connection.
func TestHostileMetadataAddress(t *testing.T) {
	_, res := startNameServer(t, map[string][]netip.Addr{"metadata.test": {netip.MustParseAddr("169.254.169.254")}})
	r := newRig(t, rigOptions{resolver: res}, "[[http.request]]\nhost = [\"metadata.test\", \"*.example.com\"]\nscheme = [\"http\"]\n")
	_, _, _, err := r.do("GET", "http://metadata.test/latest/meta-data/", nil, nil)
	wantErrno(t, err, abi.Denied, "169.254.169.254")
	for _, u := range []string{"http://169.254.169.254/", "http://[::ffff:169.254.169.254]/", "http://2852039166/"} {
		_, _, _, err = r.do("GET", u, nil, nil)
		wantErrno(t, err, abi.Denied, "no [[http.request]] names host")
	}
}

// The supervisor's address is never reached, even by a grant that names
// its IP and allows private addresses; another port on the same IP is.
func TestHostileSupervisorAddress(t *testing.T) {
	sup := serve(t, false, ok)
	other := serve(t, false, ok)
	r := newRig(t, rigOptions{env: map[string]string{"BALENA_SUPERVISOR_ADDRESS": sup.URL}},
		fmt.Sprintf("[[http.request]]\nhost = [\"127.0.0.1\"]\nscheme = [\"http\"]\nport = [%d, %d]\nallow_private = true\n", sup.port(), other.port()))
	_, _, _, err := r.do("POST", sup.URL+"/v1/reboot", nil, nil)
	wantErrno(t, err, abi.Denied, "method POST")
	_, _, _, err = r.do("GET", sup.URL+"/v1/device", nil, nil)
	wantErrno(t, err, abi.Denied, "the supervisor's address")
	if sup.hits.Load() != 0 {
		t.Errorf("the supervisor got %d requests", sup.hits.Load())
	}
	if st, _, _, err := r.do("GET", other.URL, nil, nil); err != nil || st != 200 {
		t.Fatalf("another port: %d %v", st, err)
	}
}

// DNS rebinding: the name's answers change from one query to the next, and
// every connection is resolved and checked afresh, so no answer gets
// through; a verdict taken once, before resolution, would not hold.
func TestHostileDNSRebinding(t *testing.T) {
	srv := serve(t, false, ok)
	ns, res := startNameServer(t, map[string][]netip.Addr{"rebind.test": {
		netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("10.9.8.7"),
	}})
	r := newRig(t, rigOptions{resolver: res}, fmt.Sprintf("[[http.request]]\nhost = [\"rebind.test\"]\nscheme = [\"http\"]\nport = [%d]\n", srv.port()))
	for i := 0; i < 3; i++ {
		_, _, _, err := r.do("GET", fmt.Sprintf("http://rebind.test:%d/", srv.port()), nil, nil)
		wantErrno(t, err, abi.Denied, "rebind.test resolved to")
	}
	if q := ns.queries.Load(); q < 3 || srv.hits.Load() != 0 {
		t.Errorf("DNS queries %d (want one per request), server hits %d (want 0)", q, srv.hits.Load())
	}
}

// A redirect to a host (here a port) the grant does not name is denied and
// audited; the target sees nothing.
func TestHostileRedirectUngranted(t *testing.T) {
	target := serve(t, false, ok)
	from := serve(t, false, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/stolen", http.StatusFound)
	})
	r := newRig(t, rigOptions{}, fmt.Sprintf("[[http.request]]\nhost = [\"127.0.0.1\"]\nscheme = [\"http\"]\nport = [%d]\n", from.port()))
	_, _, _, err := r.do("GET", from.URL, nil, nil)
	wantErrno(t, err, abi.Denied, "redirect from GET http://127.0.0.1:")
	if target.hits.Load() != 0 || from.hits.Load() != 1 {
		t.Errorf("hits: from %d, target %d", from.hits.Load(), target.hits.Load())
	}
}

// A grant's secret goes to the origin the plugin asked for, also after a
// redirect within it, and never after a redirect to another origin, even
// one the grant allows.
func TestHostileRedirectCarriesSecret(t *testing.T) {
	secret := "xoxb-" + fmt.Sprint(time.Now().UnixNano())
	var gotAuth atomic.Value
	gotAuth.Store("")
	other := serve(t, true, func(w http.ResponseWriter, r *http.Request) {
		gotAuth.Store(r.Header.Get("Authorization") + "|" + r.Header.Get("X-Plugin"))
		io.WriteString(w, "other")
	})
	var sameAuth atomic.Value
	sameAuth.Store("")
	var from *counted
	from = serve(t, true, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/same":
			http.Redirect(w, r, "/landed", http.StatusTemporaryRedirect)
		case "/landed":
			sameAuth.Store(r.Header.Get("Authorization"))
			io.WriteString(w, "landed")
		default:
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
		}
	})
	// Both test servers share one certificate.
	rt := fmt.Sprintf("[http]\nca_file = %q\n[http.secrets.tok]\nenv = \"TOK\"\n", caFile(t, from.Server))
	r := newRig(t, rigOptions{runtime: rt, env: map[string]string{"TOK": secret}},
		fmt.Sprintf("[[http.request]]\nhost = [\"127.0.0.1\"]\nport = [%d, %d]\n[http.request.headers]\nAuthorization = \"Bearer {secret:tok}\"\n", from.port(), other.port()))
	st, body, resp, err := r.do("GET", from.URL+"/same", [][2]string{{"X-Plugin", "mine"}}, nil)
	if err != nil || st != 200 || string(body) != "landed" || resp.Redirects != 1 {
		t.Fatalf("same origin: %d %q %v", st, body, err)
	}
	if sameAuth.Load() != "Bearer "+secret {
		t.Errorf("the secret did not follow a redirect within the origin: %q", sameAuth.Load())
	}
	st, body, _, err = r.do("GET", from.URL+"/away", [][2]string{{"X-Plugin", "mine"}}, nil)
	if err != nil || st != 200 || string(body) != "other" {
		t.Fatalf("other origin: %d %q %v", st, body, err)
	}
	if got := gotAuth.Load().(string); got != "|mine" {
		t.Errorf("the other origin got %q; want no Authorization and the plugin's own header", got)
	}
	if strings.Contains(strings.Join(r.logs.Lines(), "\n"), secret) {
		t.Error("the secret is in the log or audit")
	}
}

// CR, LF and NUL in a header, a bad header name, a header the host owns and
// one the grant sets are refused before anything is sent.
func TestHostileHeaderInjection(t *testing.T) {
	srv := serve(t, false, ok)
	r := newRig(t, rigOptions{runtime: "[http.secrets.tok]\nenv = \"TOK\"\n", env: map[string]string{"TOK": "t0k3n-value"}},
		fmt.Sprintf("[[http.request]]\nhost = [\"127.0.0.1\"]\nscheme = [\"http\"]\nport = [%d]\n[http.request.headers]\nAuthorization = \"Bearer {secret:tok}\"\n", srv.port()))
	for _, c := range []struct {
		h    [2]string
		want string
	}{
		{[2]string{"X-A", "v\r\nEvil: 1"}, "control character"},
		{[2]string{"X-A", "v\nEvil: 1"}, "control character"},
		{[2]string{"X-A", "v\x00"}, "control character"},
		{[2]string{"X-A\r\nEvil", "v"}, "header name"},
		{[2]string{"X A", "v"}, "header name"},
		{[2]string{"", "v"}, "header name"},
		{[2]string{"Host", "evil.example"}, "set by the host"},
		{[2]string{"transfer-encoding", "chunked"}, "set by the host"},
		{[2]string{"Authorization", "Bearer mine"}, "added by the grant"},
	} {
		_, _, _, err := r.do("GET", srv.URL, [][2]string{c.h}, nil)
		wantErrno(t, err, abi.Invalid, c.want)
	}
	if srv.hits.Load() != 0 {
		t.Errorf("the server got %d requests", srv.hits.Load())
	}
	// A plugin that writes the template itself sends it as text.
	var got atomic.Value
	srv2 := serve(t, false, func(w http.ResponseWriter, r *http.Request) { got.Store(r.Header.Get("X-Try")) })
	r2 := newRig(t, rigOptions{runtime: "[http.secrets.tok]\nenv = \"TOK\"\n", env: map[string]string{"TOK": "t0k3n-value"}},
		fmt.Sprintf("[[http.request]]\nhost = [\"127.0.0.1\"]\nscheme = [\"http\"]\nport = [%d]\n", srv2.port()))
	if _, _, _, err := r2.do("GET", srv2.URL, [][2]string{{"X-Try", "{secret:tok}"}}, nil); err != nil || got.Load() != "{secret:tok}" {
		t.Errorf("a plugin's template: %v, server got %q", err, got.Load())
	}
}

// A response that says it is larger than max_response is refused before
// its body is read; one that never ends stops at max_response, and its
// connection is closed.
func TestHostileHugeAndEndlessResponse(t *testing.T) {
	huge := serve(t, false, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(int64(1)<<40))
		w.Write(make([]byte, 1024))
	})
	gone := make(chan struct{}, 1)
	endless := serve(t, false, func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 32<<10)
		for {
			if _, err := w.Write(chunk); err != nil {
				gone <- struct{}{}
				return
			}
		}
	})
	r := newRig(t, rigOptions{runtime: "[http]\nmax_response = \"1MiB\"\n"},
		fmt.Sprintf("[[http.request]]\nhost = [\"127.0.0.1\"]\nscheme = [\"http\"]\nport = [%d, %d]\n", huge.port(), endless.port()))
	_, _, _, err := r.do("GET", huge.URL, nil, nil)
	wantErrno(t, err, abi.TooLarge, "max_response is 1048576")

	_, body, _, err := r.do("GET", endless.URL, nil, nil)
	wantErrno(t, err, abi.TooLarge, "passed runtime.toml's [http] max_response")
	if len(body) != 1<<20 {
		t.Errorf("read %d bytes of an endless body; want exactly max_response", len(body))
	}
	select {
	case <-gone:
	case <-time.After(30 * time.Second):
		t.Fatal("the endless response's connection was not closed")
	}
}

// A body that trickles forever ends at the handler's deadline.
func TestHostileSlowResponseDeadline(t *testing.T) {
	srv := serve(t, false, func(w http.ResponseWriter, r *http.Request) {
		for {
			if _, err := w.Write([]byte("x")); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			select {
			case <-r.Context().Done():
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	r := newRig(t, rigOptions{}, fmt.Sprintf("[[http.request]]\nhost = [\"127.0.0.1\"]\nscheme = [\"http\"]\nport = [%d]\n", srv.port()))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	resp, err := r.c.Do(ctx, r.in, r.grant, Request{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Close()
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(resp.Body); done <- err }()
	select {
	case err := <-done:
		wantErrno(t, err, abi.Timeout, "before the deadline")
	case <-time.After(30 * time.Second):
		t.Fatal("a trickling body outlived the handler's deadline")
	}
}

// A plugin whose grant attaches a secret cannot get it back: a server that
// reflects it in headers and body is read with it redacted, and no error,
// log or audit line holds it. (A server that transforms it, such as
// base64, is out of reach: grant secrets only to hosts that do not
// reflect them; SECURITY.md says so.)
func TestHostileSecretReflection(t *testing.T) {
	secret := "tok-" + fmt.Sprint(time.Now().UnixNano()) + "-abcdef"
	echo := serve(t, true, func(w http.ResponseWriter, r *http.Request) {
		a := r.Header.Get("Authorization")
		w.Header().Set("X-Echo", a)
		w.Header().Set("Location", "/"+a)
		if r.URL.Path == "/redirect" {
			w.Header().Set("Location", "ftp://"+a)
			w.WriteHeader(http.StatusFound)
			return
		}
		// Long enough to cross the redactor's reads.
		io.WriteString(w, strings.Repeat("y", 4090)+"auth="+a+";"+a)
	})
	rt := fmt.Sprintf("[http]\nca_file = %q\n[http.secrets.tok]\nfile = %q\n", caFile(t, echo.Server), writeSecret(t, secret+"\n"))
	r := newRig(t, rigOptions{runtime: rt},
		fmt.Sprintf("[[http.request]]\nhost = [\"127.0.0.1\"]\nport = [%d]\n[http.request.headers]\nAuthorization = \"Bearer {secret:tok}\"\n", echo.port()))
	st, body, resp, err := r.do("GET", echo.URL+"/echo", nil, nil)
	if err != nil || st != 200 {
		t.Fatalf("%d %v", st, err)
	}
	if strings.Contains(string(body), secret) || !strings.HasSuffix(string(body), "auth=Bearer [redacted];Bearer [redacted]") {
		t.Errorf("body tail %q", string(body[len(body)-60:]))
	}
	for _, h := range resp.Header {
		if strings.Contains(h[1], secret) {
			t.Errorf("header %s: %q", h[0], h[1])
		}
	}
	_, _, _, err = r.do("GET", echo.URL+"/redirect", nil, nil)
	if err == nil || strings.Contains(err.Error(), secret) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("error %v", err)
	}
	if strings.Contains(strings.Join(r.logs.Lines(), "\n"), secret) {
		t.Error("the secret is in the log or audit")
	}
	if env := r.c.SecretEnv(); len(env) != 0 {
		t.Errorf("SecretEnv %v for a file secret", env)
	}
}

func writeSecret(t *testing.T, v string) string {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(v), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TLS is verified against the system roots, plus ca_file when set.
func TestTLSVerification(t *testing.T) {
	srv := serve(t, true, ok)
	grant := fmt.Sprintf("[[http.request]]\nhost = [\"127.0.0.1\"]\nport = [%d]\n", srv.port())
	r := newRig(t, rigOptions{}, grant)
	_, _, _, err := r.do("GET", srv.URL, nil, nil)
	wantErrno(t, err, abi.Failed, "ca_file")
	var ce *tls.CertificateVerificationError
	if errors.As(err, &ce) {
		t.Error("the transport's error type leaked through")
	}
	r = newRig(t, rigOptions{runtime: fmt.Sprintf("[http]\nca_file = %q\n", caFile(t, srv.Server))}, grant)
	if st, body, _, err := r.do("GET", srv.URL, nil, nil); err != nil || st != 200 || string(body) != "ok" {
		t.Fatalf("with ca_file: %d %q %v", st, body, err)
	}
}

// Requests a grant does not cover are denied and audited, with what the
// manifest lacks; a POST's body and the response come through.
func TestRequestGrantAndBody(t *testing.T) {
	srv := serve(t, false, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("X-Len", fmt.Sprint(len(b)))
		w.WriteHeader(201)
		w.Write(b)
	})
	r := newRig(t, rigOptions{runtime: "[http]\nmax_request_body = \"1KiB\"\n"},
		fmt.Sprintf("[[http.request]]\nhost = [\"127.0.0.1\"]\nscheme = [\"http\"]\nport = [%d]\nmethod = [\"POST\"]\npath = [\"/hooks/\"]\n", srv.port()))
	st, body, resp, err := r.do("POST", srv.URL+"/hooks/a", [][2]string{{"content-type", "text/plain"}}, []byte("hello"))
	if err != nil || st != 201 || string(body) != "hello" || resp.ContentLength != 5 {
		t.Fatalf("%d %q %v", st, body, err)
	}
	_, _, _, err = r.do("POST", srv.URL+"/admin", nil, nil)
	wantErrno(t, err, abi.Denied, "path /admin is under none of")
	_, _, _, err = r.do("POST", srv.URL+"/hooks/a", nil, make([]byte, 2048))
	wantErrno(t, err, abi.TooLarge, "max_request_body")
	_, _, _, err = r.do("GET", "http://user:pw@127.0.0.1/", nil, nil)
	wantErrno(t, err, abi.Invalid, "user information")
	if r.logs.Count("decision=allow") != 1 || r.logs.Count("decision=deny", "path /admin") != 1 {
		t.Errorf("audit:\n%s", strings.Join(r.logs.Lines(), "\n"))
	}
}

// A plugin holds at most 8 bodies open; one whose deadline passed no
// longer counts, and an ended instance's are closed.
func TestOpenBodiesBounded(t *testing.T) {
	srv := serve(t, false, ok)
	r := newRig(t, rigOptions{}, fmt.Sprintf("[[http.request]]\nhost = [\"127.0.0.1\"]\nscheme = [\"http\"]\nport = [%d]\n", srv.port()))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	for i := 0; i < maxOpenBodies; i++ {
		if err := r.c.reserve("p"); err != nil {
			t.Fatal(err)
		}
		resp, err := r.c.Do(ctx, r.in, r.grant, Request{URL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		r.c.open("p", resp)
	}
	wantErrno(t, r.c.reserve("p"), abi.Busy, "close one")
	deadline := time.Now().Add(30 * time.Second)
	for r.c.reserve("p") != nil {
		if time.Now().After(deadline) {
			t.Fatal("bodies past their deadline still count")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := r.c.Do(context.Background(), r.in, r.grant, Request{URL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	h := r.c.open("p", resp)
	r.c.InstanceEnded("p")
	if r.c.body("p", h) != nil {
		t.Error("an ended instance's body is still open")
	}
	if _, err := resp.Body.Read(make([]byte, 1)); err == nil {
		t.Error("a body closed at the instance's end still reads")
	}
}

// A secret file under state_dir, where plugins' /data directories live,
// is refused: a plugin could read it. Requests that need it are
// unavailable, and say why without the value.
func TestHostileSecretFileUnderStateDir(t *testing.T) {
	srv := serve(t, false, ok)
	state := t.TempDir()
	file := filepath.Join(state, "data", "p", "token")
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte("readable-by-the-plugin"), 0o600); err != nil {
		t.Fatal(err)
	}
	rt := fmt.Sprintf("state_dir = %q\n[http.secrets.tok]\nfile = %q\n", state, file)
	r := newRig(t, rigOptions{runtime: rt}, fmt.Sprintf("[[http.request]]\nhost = [\"127.0.0.1\"]\nscheme = [\"http\"]\nport = [%d]\n[http.request.headers]\nAuthorization = \"Bearer {secret:tok}\"\n", srv.port()))
	_, _, _, err := r.do("GET", srv.URL, nil, nil)
	wantErrno(t, err, abi.Unavailable, "under state_dir")
	if srv.hits.Load() != 0 || strings.Contains(err.Error(), "readable-by-the-plugin") {
		t.Errorf("hits %d, error %v", srv.hits.Load(), err)
	}
}
