package httpout

import (
	"io"
	"net/netip"
	"net/url"
	"strings"
	"testing"
)

func TestGrantDecode(t *testing.T) {
	c := New(Options{})
	c.provisioned = true
	c.cfg.Secrets = map[string]SecretSource{"slack": {Env: "SLACK"}}
	good := `
[[http.request]]
host = ["hooks.slack.com", "*.example.com", "127.0.0.1", "[::1]"]
method = ["post"]
path = ["/services/"]
[http.request.headers]
Authorization = "Bearer {secret:slack}"
`
	g, err := parseGrant(c, good)
	if err != nil {
		t.Fatal(err)
	}
	r := g.Rules[0]
	if r.Methods[0] != "POST" || r.Schemes[0] != "https" || len(r.Hosts) != 4 || r.Headers[0].String() != "Bearer {secret:slack}" {
		t.Errorf("decoded %+v", r)
	}
	for _, c2 := range []struct{ toml, want string }{
		{`[http]`, "grants no request"},
		{"[[http.request]]\nhost = [\"*\"]", "not a host name"},
		{"[[http.request]]\nhost = [\"*.com\"]", "two labels"},
		{"[[http.request]]\nhost = [\"a.example\"]\nscheme = [\"ftp\"]", "not http or https"},
		{"[[http.request]]\nhost = [\"a.example\"]\nport = [0]", "not a TCP port"},
		{"[[http.request]]\nhost = [\"a.example\"]\nmethod = [\"TRACE\"]", "not one this host sends"},
		{"[[http.request]]\nhost = [\"a.example\"]\npath = [\"/a/../b\"]", "not a clean absolute path"},
		{"[[http.request]]\nhost = [\"a.example\"]\n[http.request.headers]\nX = \"a\\r\\nEvil: 1\"", "control character"},
		{"[[http.request]]\nhost = [\"a.example\"]\n[http.request.headers]\nHost = \"b.example\"", "the host's to set"},
		{"[[http.request]]\nhost = [\"a.example\"]\n[http.request.headers]\nX = \"{secret:nope}\"", `secret "nope" is not declared`},
		{"[[http.request]]\nhost = [\"a.example\"]\nhosts = [\"b\"]", "unknown key"},
	} {
		_, err := parseGrant(c, c2.toml)
		if err == nil || !strings.Contains(err.Error(), c2.want) {
			t.Errorf("%s\n  got %v, want %q", c2.toml, err, c2.want)
		}
	}
}

func TestGrantMatch(t *testing.T) {
	g, err := parseGrant(New(Options{}), `
[[http.request]]
host = ["api.example.com", "*.hooks.example.net", "10.0.0.7"]
scheme = ["https", "http"]
method = ["GET", "POST"]
path = ["/v1/", "/status"]
[[http.request]]
host = ["other.example.org"]
port = [8443]
`)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		method, url string
		want        string // "" allowed, else part of the reason
	}{
		{"GET", "https://api.example.com/v1/x", ""},
		{"POST", "http://API.Example.COM./v1/", ""},
		{"GET", "https://api.example.com/status", ""},
		{"GET", "https://api.example.com/status/sub", ""},
		{"GET", "https://api.example.com/statusx", "path /statusx"},
		{"GET", "https://api.example.com/v2/x", "path /v2/x"},
		{"DELETE", "https://api.example.com/v1/x", "method DELETE"},
		{"GET", "https://api.example.com:444/v1/", "port 444"},
		{"GET", "https://a.hooks.example.net/v1/", ""},
		{"GET", "https://hooks.example.net/v1/", "no [[http.request]] names host hooks.example.net"},
		{"GET", "https://evilhooks.example.net/v1/", "no [[http.request]] names"},
		{"GET", "http://10.0.0.7/v1/", ""},
		{"GET", "http://[::ffff:10.0.0.7]/v1/", ""},
		{"GET", "https://other.example.org:8443/", ""},
		{"GET", "https://other.example.org/", "port 443"},
		{"GET", "http://other.example.org:8443/", "scheme http"},
		{"GET", "https://169.254.169.254/", "no [[http.request]] names host 169.254.169.254"},
	} {
		u, _ := url.Parse(c.url)
		tg, err := targetOf(c.method, u)
		if err != nil {
			t.Fatal(err)
		}
		r, why := g.match(tg)
		switch {
		case c.want == "" && r == nil:
			t.Errorf("%s %s denied: %s", c.method, c.url, why)
		case c.want != "" && (r != nil || !strings.Contains(why, c.want)):
			t.Errorf("%s %s: rule %v, %q; want a denial with %q", c.method, c.url, r, why, c.want)
		}
	}
	u, _ := url.Parse("https://api.example.com/v1/%2e%2e/admin")
	if _, err := targetOf("GET", u); err == nil {
		t.Error("an encoded .. segment passed")
	}
}

func TestClassify(t *testing.T) {
	for ip, blocked := range map[string]bool{
		"127.0.0.1": true, "127.5.5.5": true, "::1": true, "::ffff:127.0.0.1": true,
		"169.254.169.254": true, "fe80::1": true, "10.1.2.3": true, "172.16.0.1": true, "192.168.1.1": true,
		"100.64.0.1": true, "0.0.0.0": true, "::": true, "224.0.0.1": true, "255.255.255.255": true,
		"fd00::1": true, "64:ff9b::7f00:1": true, "64:ff9b::a9fe:a9fe": true,
		"8.8.8.8": false, "2606:4700::1111": false, "172.32.0.1": false, "64:ff9b::808:808": false,
	} {
		if got := classify(netip.MustParseAddr(ip)) != ""; got != blocked {
			t.Errorf("%s blocked = %v, want %v", ip, got, blocked)
		}
	}
}

func TestRedactor(t *testing.T) {
	secret := "s3cr3t-token"
	in := "a s3cr3t-token b s3cr3t-tok s3cr3t-tokens3cr3t-token end s3cr3"
	want := "a [redacted] b s3cr3t-tok [redacted][redacted] end s3cr3"
	for _, chunk := range []int{1, 2, 5, 7, 64} {
		r := newRedactor(&chunky{s: in, n: chunk}, []string{secret, "other"})
		var b strings.Builder
		p := make([]byte, 3)
		for {
			n, err := r.Read(p)
			b.Write(p[:n])
			if err != nil {
				break
			}
		}
		if b.String() != want {
			t.Errorf("chunks of %d: %q, want %q", chunk, b.String(), want)
		}
	}
}

// chunky returns s n bytes at a time.
type chunky struct {
	s string
	n int
}

func (c *chunky) Read(p []byte) (int, error) {
	if c.s == "" {
		return 0, io.EOF
	}
	n := copy(p, c.s[:min(c.n, len(c.s))])
	c.s = c.s[n:]
	return n, nil
}
