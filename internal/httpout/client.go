package httpout

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
)

// Bounds on what a plugin sends and receives besides bodies.
const (
	maxRequestHeaders    = 64
	maxRequestHeaderSize = 64 << 10
	maxResponseHeaderKB  = 64 << 10 // the transport's bound on the response's header block
	maxResponseHeaders   = 128      // header fields delivered; the rest are counted
	maxURLLen            = 8 << 10
)

// Request is one request as a plugin asks for it.
type Request struct {
	Method string
	URL    string
	Header [][2]string // in order; names are canonicalised
	Body   []byte
}

// Response is what the plugin gets back. Body is bounded by max_response
// and by the request's deadline, and has the request's secrets redacted.
type Response struct {
	Status         int
	URL            string // after redirects
	Header         [][2]string
	HeadersDropped int
	ContentLength  int64 // -1 if unknown
	Redirects      int
	Body           io.ReadCloser
	ctx            context.Context // the request's; done once its deadline passes
	chunk          []byte          // body_read's buffer, made at the first read
}

// errorf is an error the guest reads with its errno. Messages never hold
// a secret: what could (a server's words) goes through redact first.
func errorf(code abi.Errno, format string, args ...any) error {
	return capability.Errorf(code, format, args...)
}

// hop is one request on the wire: the first, or one after a redirect.
type hop struct {
	t    target
	u    *url.URL
	rule *Rule
}

// Do sends r as plugin in's grant allows it: every hop is checked against
// the grant and audited through the gate, every connection against the
// address rules. The response's Body must be closed.
func (c *Capability) Do(ctx context.Context, in *capability.Caller, g *Grant, r Request) (*Response, error) {
	method := strings.ToUpper(r.Method)
	if method == "" {
		method = "GET"
	}
	if !slices.Contains(knownMethods, method) {
		return nil, errorf(abi.Invalid, "http: method %q is not one of %s", clip(r.Method), strings.Join(knownMethods, ", "))
	}
	if len(r.URL) > maxURLLen {
		return nil, errorf(abi.TooLarge, "http: the URL is longer than %d bytes", maxURLLen)
	}
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Opaque != "" {
		return nil, errorf(abi.Invalid, "http: %q is not an http:// or https:// URL", clip(r.URL))
	}
	if u.User != nil {
		return nil, errorf(abi.Invalid, "http: the URL carries user information; send credentials in a header, or let the grant attach a host-held secret")
	}
	u.Fragment, u.RawFragment = "", ""
	if len(r.Body) > c.cfg.MaxRequestBody {
		return nil, errorf(abi.TooLarge, "http: the request body is %d bytes; runtime.toml's [http] max_request_body is %d", len(r.Body), c.cfg.MaxRequestBody)
	}
	hdr, err := requestHeader(r.Header)
	if err != nil {
		return nil, err
	}
	t, err := targetOf(method, u)
	if err != nil {
		return nil, errorf(abi.Invalid, "http: %v", err)
	}
	first := hop{t: t, u: u}
	if first.rule, err = c.check(ctx, in, g, t, ""); err != nil {
		return nil, err
	}
	for _, h := range first.rule.Headers {
		if _, set := hdr[h.Name]; set {
			return nil, errorf(abi.Invalid, "http %s: header %s is added by the grant ([[http.request]] rule %d); the plugin may not set it", t, h.Name, first.rule.index)
		}
	}
	callCtx, cancel := capability.CallContext(ctx, c.cfg.Timeout)
	resp, sent, err := c.follow(callCtx, ctx, in, g, first, hdr, r.Body)
	if err != nil {
		cancel()
		return nil, c.wireError(ctx, in, t, sent, err)
	}
	if resp.ContentLength > c.cfg.MaxResponse {
		resp.Body.Close()
		cancel()
		return nil, errorf(abi.TooLarge, "http %s: the response body is %d bytes; runtime.toml's [http] max_response is %d", t, resp.ContentLength, c.cfg.MaxResponse)
	}
	out := &Response{Status: resp.StatusCode, URL: redactURL(resp.Request.URL), ContentLength: resp.ContentLength, ctx: callCtx}
	out.Redirects = redirectsOf(resp)
	for _, k := range sortedKeys(resp.Header) {
		for _, v := range resp.Header[k] {
			if len(out.Header) >= maxResponseHeaders {
				out.HeadersDropped++
				continue
			}
			out.Header = append(out.Header, [2]string{redact(k, sent), redact(v, sent)})
		}
	}
	var body io.Reader = resp.Body
	if len(sent) > 0 {
		body = newRedactor(resp.Body, sent)
	}
	out.Body = &limitedBody{r: body, c: resp.Body, max: c.cfg.MaxResponse, cancel: cancel, what: t.String()}
	return out, nil
}

// check asks the gate about one hop. via, when not "", is the URL the
// redirect came from.
func (c *Capability) check(ctx context.Context, in *capability.Caller, g *Grant, t target, via string) (*Rule, error) {
	rule, why := g.match(t)
	d := gate.Deny(why + " (add a [[http.request]] rule to plugin.toml)")
	if rule != nil {
		d = gate.Allow(fmt.Sprintf("[[http.request]] rule %d", rule.index))
	}
	op := t.String()
	if via != "" {
		d.Reason = "redirect from " + via + ": " + d.Reason
	}
	if err := in.Check(ctx, Name, op, d); err != nil {
		return nil, err
	}
	return rule, nil
}

// follow sends the first hop and the redirects the grant allows. sent is
// every secret value it put on the wire, for redaction.
func (c *Capability) follow(ctx, gateCtx context.Context, in *capability.Caller, g *Grant, h hop, hdr http.Header, body []byte) (*http.Response, []string, error) {
	origin := h.t
	var sent []string
	var prev *http.Response
	for n := 0; ; n++ {
		req, err := http.NewRequestWithContext(ctx, h.t.method, h.u.String(), nil)
		if err != nil {
			return nil, sent, errorf(abi.Invalid, "http %s: %v", h.t, err)
		}
		if body != nil {
			req.Body = io.NopCloser(bytes.NewReader(body))
			req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
			req.ContentLength = int64(len(body))
		}
		req.Header = hdr.Clone()
		if req.Header.Get("User-Agent") == "" {
			req.Header.Set("User-Agent", "airlock/1")
		}
		// Secrets go only to the origin the plugin asked for: never to
		// another scheme, host or port a redirect points at.
		if sameOrigin(h.t, origin) {
			for _, tmpl := range h.rule.Headers {
				v, missing, ok := tmpl.expand(c.secrets)
				if !ok {
					why := c.secretErr[missing]
					if why == "" {
						why = fmt.Sprintf("secret %q is not declared in runtime.toml's [http.secrets]", missing)
					}
					return nil, sent, errorf(abi.Unavailable, "http %s: header %s: %s", h.t, tmpl.Name, why)
				}
				req.Header.Set(tmpl.Name, v)
				for _, sn := range tmpl.secrets() {
					if !slices.Contains(sent, c.secrets[sn]) {
						sent = append(sent, c.secrets[sn])
					}
				}
			}
		}
		if prev != nil {
			req.Response = prev
		}
		resp, err := c.transportFor(h.rule).RoundTrip(req)
		if err != nil {
			return nil, sent, err
		}
		loc := resp.Header.Get("Location")
		if !isRedirect(resp.StatusCode) || loc == "" {
			return resp, sent, nil
		}
		if n >= c.cfg.MaxRedirects {
			resp.Body.Close()
			return nil, sent, errorf(abi.Failed, "http %s: stopped after %d redirects (runtime.toml's [http] max_redirects)", origin, n)
		}
		next, err := h.u.Parse(loc)
		if err != nil || (next.Scheme != "http" && next.Scheme != "https") {
			resp.Body.Close()
			return nil, sent, errorf(abi.Failed, "http %s: the server redirected to %q, which is not an http(s) URL", h.t, clip(redact(loc, sent)))
		}
		next.Fragment, next.RawFragment, next.User = "", "", nil
		method := h.t.method
		switch {
		case resp.StatusCode == http.StatusSeeOther && method != "HEAD",
			(resp.StatusCode == http.StatusMovedPermanently || resp.StatusCode == http.StatusFound) && method == "POST":
			method, body = "GET", nil
		}
		// Drain a little so the connection can be reused, then let it go.
		io.CopyN(io.Discard, resp.Body, 4<<10)
		resp.Body.Close()
		nt, err := targetOf(method, next)
		if err != nil {
			return nil, sent, errorf(abi.Failed, "http %s: redirect: %v", h.t, err)
		}
		rule, err := c.check(gateCtx, in, g, nt, h.t.String())
		if err != nil {
			return nil, sent, err
		}
		if !sameOrigin(nt, h.t) {
			// As Go's own client does: the plugin's credentials do not
			// follow a redirect to another host either.
			for _, k := range []string{"Authorization", "Www-Authenticate", "Cookie", "Cookie2"} {
				hdr.Del(k)
			}
		}
		if body == nil {
			hdr.Del("Content-Type")
		}
		resp.Body = http.NoBody
		prev = resp
		h = hop{t: nt, u: next, rule: rule}
	}
}

func sameOrigin(a, b target) bool {
	return a.scheme == b.scheme && a.host == b.host && a.port == b.port
}

func isRedirect(code int) bool {
	switch code {
	case 301, 302, 303, 307, 308:
		return true
	}
	return false
}

func redirectsOf(resp *http.Response) int {
	n := 0
	for r := resp.Request.Response; r != nil; r = r.Request.Response {
		n++
	}
	return n
}

// requestHeader checks and canonicalises the plugin's headers.
func requestHeader(fields [][2]string) (http.Header, error) {
	if len(fields) > maxRequestHeaders {
		return nil, errorf(abi.TooLarge, "http: %d request headers; at most %d", len(fields), maxRequestHeaders)
	}
	h := http.Header{}
	size := 0
	for _, f := range fields {
		if err := checkHeader(f[0], f[1]); err != nil {
			return nil, errorf(abi.Invalid, "http: %v", err)
		}
		name := http.CanonicalHeaderKey(f[0])
		if forbiddenHeader(name) {
			return nil, errorf(abi.Invalid, "http: header %s is set by the host (framing, routing and compression are its own)", name)
		}
		size += len(name) + len(f[1]) + 4
		if size > maxRequestHeaderSize {
			return nil, errorf(abi.TooLarge, "http: the request headers exceed %d bytes", maxRequestHeaderSize)
		}
		h[name] = append(h[name], f[1])
	}
	return h, nil
}

// wireError turns what the transport said into the ABI's errors. A refused
// address is audited as a denial; nothing it returns holds a secret.
func (c *Capability) wireError(ctx context.Context, in *capability.Caller, t target, sent []string, err error) error {
	var ae *AddressError
	var en interface{ Errno() abi.Errno }
	var certErr *tls.CertificateVerificationError
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &ae):
		return in.Check(ctx, Name, "connect "+ae.Addr.String(), gate.Deny(fmt.Sprintf("%s resolved to %s", t.host, ae.Reason)))
	case errors.As(err, new(*gate.Denial)), errors.As(err, new(*gate.Throttled)):
		return err
	case errors.As(err, &en):
		return errorf(en.Errno(), "%s", redact(err.Error(), sent))
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return errorf(abi.Timeout, "http %s: no answer before the deadline", t)
	case errors.As(err, &certErr):
		return errorf(abi.Failed, "http %s: TLS: %s (add the server's CA to runtime.toml's [http] ca_file if you trust it)", t, redact(certErr.Err.Error(), sent))
	case errors.As(err, &dnsErr):
		return errorf(abi.Unavailable, "http %s: resolving %s: %s", t, t.host, dnsErr.Err)
	}
	msg := err.Error()
	var ue *url.Error
	if errors.As(err, &ue) {
		msg = ue.Err.Error()
	}
	return errorf(abi.Unavailable, "http %s: %s", t, redact(msg, sent))
}

// transportFor returns the rule's own connection pool.
func (c *Capability) transportFor(r *Rule) *http.Transport {
	r.once.Do(func() {
		d := r.policy(c.forbidden).dialer(c.opts.Resolver)
		dial := d.DialContext
		if c.simHosts != nil {
			// The simulated device's names are the host's own services;
			// the address rules are for what plugins name.
			plain := &net.Dialer{Timeout: 5 * time.Second}
			dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
				if real, ok := c.simHosts[addr]; ok {
					return plain.DialContext(ctx, network, real)
				}
				return d.DialContext(ctx, network, addr)
			}
		}
		r.transport = &http.Transport{
			Proxy:                  nil, // never HTTP_PROXY: a proxy would see past the address rules
			DialContext:            dial,
			TLSClientConfig:        &tls.Config{RootCAs: c.roots, MinVersion: tls.VersionTLS12},
			ForceAttemptHTTP2:      true,
			TLSHandshakeTimeout:    10 * time.Second,
			MaxResponseHeaderBytes: maxResponseHeaderKB,
			MaxIdleConns:           16,
			MaxIdleConnsPerHost:    4,
			IdleConnTimeout:        30 * time.Second,
		}
	})
	return r.transport
}

// redactURL shows a URL without its user information.
func redactURL(u *url.URL) string {
	return u.Redacted()
}

// redact replaces every secret value in s.
func redact(s string, secrets []string) string {
	for _, v := range secrets {
		if v != "" && strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, redacted)
		}
	}
	return s
}

const redacted = "[redacted]"

// limitedBody bounds a response body by max_response and releases the
// request's context when closed.
type limitedBody struct {
	r      io.Reader
	c      io.Closer
	n, max int64
	cancel context.CancelFunc
	what   string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.n > b.max {
		return 0, errorf(abi.TooLarge, "http %s: the response body passed runtime.toml's [http] max_response (%d bytes)", b.what, b.max)
	}
	if rest := b.max + 1 - b.n; int64(len(p)) > rest {
		p = p[:rest]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.max {
		n -= int(b.n - b.max)
		err = errorf(abi.TooLarge, "http %s: the response body passed runtime.toml's [http] max_response (%d bytes)", b.what, b.max)
	}
	if err != nil && err != io.EOF {
		switch {
		case errors.As(err, new(interface{ Errno() abi.Errno })):
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			err = errorf(abi.Timeout, "http %s: the body did not arrive before the deadline", b.what)
		default:
			err = errorf(abi.Failed, "http %s: reading the body: %v", b.what, err)
		}
	}
	return n, err
}

func (b *limitedBody) Close() error {
	err := b.c.Close()
	b.cancel()
	return err
}

// Close releases the response.
func (r *Response) Close() error { return r.Body.Close() }
