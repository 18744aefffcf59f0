package httpout

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/airlockhq/airlock/host/manifest"
)

// Grant is a plugin's [[http.request]] rules. A request is allowed when
// one rule matches its scheme, host, port, method and path; anything else
// is denied.
type Grant struct {
	Rules []*Rule
}

// Rule is one [[http.request]].
type Rule struct {
	Schemes []string      // "https" (default), "http"
	Hosts   []hostPattern // exact names, "*.example.com", IP literals
	Ports   []int         // empty: the scheme's default port
	Methods []string      // upper case; default GET
	Paths   []string      // prefixes; default "/"
	// AllowPrivate lets the hosts resolve to loopback, link-local and
	// private addresses.
	AllowPrivate bool
	// Headers are added by the host to every request this rule allows,
	// secrets filled in; the plugin cannot set or read them.
	Headers []headerTemplate

	index int // 1-based, for messages

	// transport is this rule's own connection pool, made at first use: a
	// connection opened under one rule's address policy is never reused
	// by a request that another rule (or another plugin) allowed.
	once      sync.Once
	transport *http.Transport
}

type hostPattern struct {
	name     string     // lower case, no trailing dot; "*.example.com" for a family
	ip       netip.Addr // valid for an IP literal
	wildcard bool
}

func (h hostPattern) String() string { return h.name }

// matches reports whether host (lower case, without brackets) is covered.
func (h hostPattern) matches(host string) bool {
	if h.ip.IsValid() {
		ip, err := netip.ParseAddr(host)
		return err == nil && ip.Unmap() == h.ip
	}
	if h.wildcard {
		return strings.HasSuffix(host, h.name[1:]) && len(host) > len(h.name)-1
	}
	return host == h.name
}

// headerTemplate is one header a rule adds. parts alternate text and
// secret names: even indexes are text, odd ones name a secret.
type headerTemplate struct {
	Name  string // canonical
	parts []string
}

// secrets lists the secret names the template uses.
func (t headerTemplate) secrets() []string {
	var out []string
	for i := 1; i < len(t.parts); i += 2 {
		out = append(out, t.parts[i])
	}
	return out
}

// expand fills the secrets in. ok is false if one is missing.
func (t headerTemplate) expand(values map[string]string) (string, string, bool) {
	var b strings.Builder
	for i, p := range t.parts {
		if i%2 == 0 {
			b.WriteString(p)
			continue
		}
		v, ok := values[p]
		if !ok {
			return "", p, false
		}
		b.WriteString(v)
	}
	return b.String(), "", true
}

// String shows the template as written, secrets by name only.
func (t headerTemplate) String() string {
	var b strings.Builder
	for i, p := range t.parts {
		if i%2 == 0 {
			b.WriteString(p)
		} else {
			b.WriteString("{secret:" + p + "}")
		}
	}
	return b.String()
}

type ruleTOML struct {
	Scheme       []string          `toml:"scheme"`
	Host         []string          `toml:"host"`
	Port         []int             `toml:"port"`
	Method       []string          `toml:"method"`
	Path         []string          `toml:"path"`
	AllowPrivate bool              `toml:"allow_private"`
	Headers      map[string]string `toml:"headers"`
}

type grantTOML struct {
	Request []ruleTOML `toml:"request"`
}

var errBadGrant = errors.New("bad [http] grant")

// Bounds on a grant: every rule is tried on every request.
const (
	maxRules        = 64
	maxRuleHosts    = 64
	maxHeaderValue  = 8 << 10
	maxHeaderFields = 64
)

var knownMethods = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}

// decodeGrant decodes [http] strictly. knownSecret, when not nil, says
// whether runtime.toml declares a secret name.
func decodeGrant(s manifest.Section, knownSecret func(string) bool) (*Grant, error) {
	var t grantTOML
	if !s.Decode(&t) {
		return nil, errBadGrant
	}
	if len(t.Request) == 0 {
		s.Errorf("request", `add a [[http.request]] table with host = ["api.example.com"]`, "[http] grants no request")
		return nil, errBadGrant
	}
	if len(t.Request) > maxRules {
		s.Errorf("request", "a family host (\"*.example.com\") covers many names in one rule", "%d [[http.request]] rules; a plugin may have at most %d", len(t.Request), maxRules)
		return nil, errBadGrant
	}
	g := &Grant{}
	ok := true
	for i, rt := range t.Request {
		bad := func(key, hint, format string, args ...any) {
			ok = false
			msg := fmt.Sprintf(format, args...)
			if len(t.Request) > 1 {
				msg = fmt.Sprintf("request rule %d: %s", i+1, msg)
			}
			s.Errorf("request."+key, hint, "%s", msg)
		}
		r := &Rule{index: i + 1, AllowPrivate: rt.AllowPrivate}
		r.Schemes = rt.Scheme
		if len(r.Schemes) == 0 {
			r.Schemes = []string{"https"}
		}
		for _, sc := range r.Schemes {
			if sc != "https" && sc != "http" {
				bad("scheme", `write "https" or "http"`, "scheme %q is not http or https", sc)
			}
		}
		if len(rt.Host) == 0 {
			bad("host", `name the hosts, such as host = ["hooks.slack.com"] or ["*.example.com"]`, "the rule names no host")
		}
		if len(rt.Host) > maxRuleHosts {
			bad("host", "use a family, \"*.example.com\"", "%d hosts; a rule may name at most %d", len(rt.Host), maxRuleHosts)
		}
		for _, h := range rt.Host {
			p, err := parseHostPattern(h)
			if err != nil {
				bad("host", `write a host name ("api.example.com"), a family ("*.example.com") or an IP address`, "%v", err)
				continue
			}
			r.Hosts = append(r.Hosts, p)
		}
		for _, p := range rt.Port {
			if p < 1 || p > 65535 {
				bad("port", "write a TCP port, 1..65535", "port %d is not a TCP port", p)
			}
		}
		r.Ports = rt.Port
		r.Methods = []string{"GET"}
		if len(rt.Method) > 0 {
			r.Methods = nil
		}
		for _, m := range rt.Method {
			up := strings.ToUpper(m)
			if !slices.Contains(knownMethods, up) {
				bad("method", "write one of "+strings.Join(knownMethods, ", "), "method %q is not one this host sends", m)
			}
			r.Methods = append(r.Methods, up)
		}
		r.Paths = []string{"/"}
		if len(rt.Path) > 0 {
			r.Paths = rt.Path
		}
		for _, p := range r.Paths {
			if !strings.HasPrefix(p, "/") || hasDotSegment(p) || strings.ContainsAny(p, "?#%") {
				bad("path", `write a path prefix such as "/services/"; a prefix ending in "/" covers what is below it`, "path %q is not a clean absolute path", p)
			}
		}
		if len(rt.Headers) > maxHeaderFields {
			bad("headers", "", "%d headers; a rule may add at most %d", len(rt.Headers), maxHeaderFields)
		}
		for _, name := range sortedKeys(rt.Headers) {
			tmpl, err := parseHeaderTemplate(name, rt.Headers[name])
			if err != nil {
				bad("headers."+name, `write a header such as Authorization = "Bearer {secret:slack}"`, "%v", err)
				continue
			}
			for _, sn := range tmpl.secrets() {
				if knownSecret != nil && !knownSecret(sn) {
					bad("headers."+name, "declare it in runtime.toml: [http.secrets."+sn+"] env = \"VARIABLE\" or file = \"/data/...\"", "secret %q is not declared in runtime.toml's [http.secrets]", sn)
				}
			}
			r.Headers = append(r.Headers, tmpl)
		}
		g.Rules = append(g.Rules, r)
	}
	if !ok {
		return nil, errBadGrant
	}
	return g, nil
}

func parseHostPattern(h string) (hostPattern, error) {
	s := strings.TrimSuffix(strings.ToLower(h), ".")
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
	}
	if ip, err := netip.ParseAddr(s); err == nil {
		if ip.Zone() != "" {
			return hostPattern{}, fmt.Errorf("host %q has an IPv6 zone", h)
		}
		return hostPattern{name: ip.Unmap().String(), ip: ip.Unmap()}, nil
	}
	p := hostPattern{name: s}
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		if strings.Count(rest, ".") < 1 {
			return p, fmt.Errorf("host %q: a family needs two labels after \"*.\", such as \"*.example.com\"", h)
		}
		p.wildcard, s = true, rest
	}
	if !validHostname(s) {
		return p, fmt.Errorf("host %q is not a host name, a family \"*.example.com\" or an IP address", h)
	}
	return p, nil
}

func validHostname(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func parseHeaderTemplate(name, value string) (headerTemplate, error) {
	if err := checkHeader(name, value); err != nil {
		return headerTemplate{}, err
	}
	t := headerTemplate{Name: http.CanonicalHeaderKey(name)}
	if forbiddenHeader(t.Name) {
		return t, fmt.Errorf("header %s is the host's to set", t.Name)
	}
	rest := value
	for {
		i := strings.Index(rest, "{secret:")
		if i < 0 {
			t.parts = append(t.parts, rest)
			return t, nil
		}
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return t, fmt.Errorf("header %s: %q has no closing }", name, rest[i:])
		}
		sn := rest[i+len("{secret:") : i+j]
		if !secretName.MatchString(sn) {
			return t, fmt.Errorf("header %s: %q is not a secret name", name, sn)
		}
		t.parts = append(t.parts, rest[:i], sn)
		rest = rest[i+j+1:]
	}
}

// checkHeader refuses what could split a request or smuggle a header: a
// name that is not an HTTP token, a value with CR, LF or NUL.
func checkHeader(name, value string) error {
	if name == "" || len(name) > 256 {
		return fmt.Errorf("header name %q is empty or longer than 256 bytes", clip(name))
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return fmt.Errorf("header name %q holds %q, which a header name may not", clip(name), name[i])
		}
	}
	if len(value) > maxHeaderValue {
		return fmt.Errorf("header %s is longer than %d bytes", clip(name), maxHeaderValue)
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c == '\r' || c == '\n' || c == 0 || (c < 0x20 && c != '\t') || c == 0x7f {
			return fmt.Errorf("header %s holds a control character (%q); CR, LF and NUL could split the request", clip(name), c)
		}
	}
	return nil
}

func isTokenChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// forbiddenHeader names the headers the host owns: framing, routing and
// the connection's own. A plugin's Host header could reach a virtual host
// the grant does not name.
func forbiddenHeader(canonical string) bool {
	switch canonical {
	case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Upgrade", "Te", "Trailer", "Accept-Encoding", "Proxy-Authorization", "Proxy-Connection", "Expect":
		return true
	}
	return false
}

func hasDotSegment(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if seg == "." || seg == ".." {
			return true
		}
	}
	return false
}

// target is a request's destination as grants see it.
type target struct {
	method, scheme, host string
	port                 int
	path                 string
}

func targetOf(method string, u *url.URL) (target, error) {
	t := target{method: method, scheme: strings.ToLower(u.Scheme), path: u.Path}
	if t.path == "" {
		t.path = "/"
	}
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "" {
		return t, fmt.Errorf("URL %q has no host", clip(u.Redacted()))
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return t, fmt.Errorf("URL %q: an IPv6 zone is not allowed", clip(u.Redacted()))
		}
		host = ip.Unmap().String()
	}
	t.host = host
	switch {
	case u.Port() != "":
		p, err := strconv.Atoi(u.Port())
		if err != nil || p < 1 || p > 65535 {
			return t, fmt.Errorf("URL %q: port %q is not a TCP port", clip(u.Redacted()), u.Port())
		}
		t.port = p
	case t.scheme == "https":
		t.port = 443
	default:
		t.port = 80
	}
	if hasDotSegment(t.path) {
		return t, fmt.Errorf("URL %q: the path holds a . or .. segment", clip(u.Redacted()))
	}
	return t, nil
}

// String is how the audit names a request: no query, no user info.
func (t target) String() string {
	return t.method + " " + t.scheme + "://" + net.JoinHostPort(t.host, strconv.Itoa(t.port)) + clip(t.path)
}

func (r *Rule) matchesHost(host string) bool {
	for _, h := range r.Hosts {
		if h.matches(host) {
			return true
		}
	}
	return false
}

func (r *Rule) defaultPort(scheme string) int {
	if scheme == "https" {
		return 443
	}
	return 80
}

// why returns "" if the rule allows t, else what it lacks.
func (r *Rule) why(t target) string {
	switch {
	case !r.matchesHost(t.host):
		return "host " + t.host + " is not in host"
	case !slices.Contains(r.Schemes, t.scheme):
		return fmt.Sprintf("scheme %s is not in scheme = %s", t.scheme, quoted(r.Schemes))
	case len(r.Ports) == 0 && t.port != r.defaultPort(t.scheme):
		return fmt.Sprintf("port %d is not %s's default port (add port = [%d])", t.port, t.scheme, t.port)
	case len(r.Ports) > 0 && !slices.Contains(r.Ports, t.port):
		return fmt.Sprintf("port %d is not in port = %v", t.port, r.Ports)
	case !slices.Contains(r.Methods, t.method):
		return fmt.Sprintf("method %s is not in method = %s", t.method, quoted(r.Methods))
	case !r.pathAllowed(t.path):
		return fmt.Sprintf("path %s is under none of path = %s", clip(t.path), quoted(r.Paths))
	}
	return ""
}

// pathAllowed: a prefix ending in "/" covers everything below it; any
// other prefix covers itself and what is below it as a directory ("/api"
// covers "/api" and "/api/x", not "/apix").
func (r *Rule) pathAllowed(p string) bool {
	for _, pre := range r.Paths {
		if strings.HasSuffix(pre, "/") && strings.HasPrefix(p, pre) {
			return true
		}
		if p == pre || strings.HasPrefix(p, pre+"/") {
			return true
		}
	}
	return false
}

// match returns the first rule that allows t, or nil and the reason none
// does, naming the closest rule (one that names the host) when there is one.
func (g *Grant) match(t target) (*Rule, string) {
	if g == nil {
		return nil, "the manifest has no [[http.request]]"
	}
	var closest string
	for _, r := range g.Rules {
		why := r.why(t)
		if why == "" {
			return r, ""
		}
		if closest == "" && r.matchesHost(t.host) {
			closest = fmt.Sprintf("[[http.request]] rule %d names the host but %s", r.index, why)
		}
	}
	if closest != "" {
		return nil, closest
	}
	var hosts []string
	for _, r := range g.Rules {
		for _, h := range r.Hosts {
			hosts = append(hosts, h.name)
		}
	}
	return nil, fmt.Sprintf("no [[http.request]] names host %s (granted: %s)", t.host, strings.Join(hosts, ", "))
}

// policy is the rule's address policy.
func (r *Rule) policy(forbidden map[netip.AddrPort]string) *addressPolicy {
	p := &addressPolicy{allowPrivate: r.AllowPrivate, named: map[netip.Addr]bool{}, forbidden: forbidden}
	for _, h := range r.Hosts {
		if h.ip.IsValid() {
			p.named[h.ip] = true
		}
	}
	return p
}

func quoted(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// clip bounds guest text quoted back in a message.
func clip(s string) string {
	if len(s) > 128 {
		return s[:128] + "…"
	}
	return s
}
