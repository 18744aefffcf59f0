package httpout

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// addressPolicy decides, for one grant rule, which addresses a connection
// may reach. It runs in the dialer, on the address the socket is about to
// connect to: after DNS resolution, for every connection and every
// redirect, so that no answer a name server gives later (DNS rebinding) can
// bring a request somewhere the check did not see.
type addressPolicy struct {
	// allowPrivate lets the rule reach loopback, link-local, private and
	// shared ranges (allow_private = true).
	allowPrivate bool
	// named are the IP literals the rule's hosts name; each is allowed
	// whatever its range, since the grant names it explicitly.
	named map[netip.Addr]bool
	// forbidden are never reached, whatever a grant says: the supervisor.
	forbidden map[netip.AddrPort]string
}

// blockedRanges are refused unless the rule allows private addresses or
// names the address. They are the ranges of RFC 6890 that reach this
// device, its neighbours or its cloud's metadata service rather than the
// internet.
var blockedRanges = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified or this-network address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address (cloud metadata services live at 169.254.169.254)"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address"},
	{netip.MustParsePrefix("::/128"), "the unspecified address"},
	{netip.MustParsePrefix("::1/128"), "a loopback address"},
	{netip.MustParsePrefix("fc00::/7"), "a private (unique local) address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
}

// nat64 embeds an IPv4 address in its last 32 bits; the embedded address
// is what the packet reaches.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// classify returns what range ip is in, or "" if it is a public address.
func classify(ip netip.Addr) string {
	ip = ip.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if nat64.Contains(ip) {
		b := ip.As16()
		ip = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(ip) {
			return r.what
		}
	}
	return ""
}

// AddressError is a connection the address rules refused. The request's
// grant allowed the URL; the address its host resolved to is not allowed.
type AddressError struct {
	Addr   netip.AddrPort
	Reason string
}

func (e *AddressError) Error() string {
	return fmt.Sprintf("connecting to %s refused: %s", e.Addr, e.Reason)
}

// check is the policy's verdict on one address.
func (p *addressPolicy) check(ap netip.AddrPort) error {
	ip := ap.Addr().Unmap()
	ap = netip.AddrPortFrom(ip, ap.Port())
	if what, ok := p.forbidden[ap]; ok {
		return &AddressError{Addr: ap, Reason: what + "; no grant reaches it (use the supervisor capability)"}
	}
	if p.allowPrivate || p.named[ip] {
		return nil
	}
	if what := classify(ip); what != "" {
		return &AddressError{Addr: ap, Reason: what + `; a grant reaches it only by naming the IP address as a host, or with allow_private = true`}
	}
	return nil
}

// dialer returns a net.Dialer whose Control applies p to every address it
// connects to. resolver is nil for the system's.
func (p *addressPolicy) dialer(resolver *net.Resolver) *net.Dialer {
	return &net.Dialer{
		Timeout:   30 * time.Second,
		KeepAlive: 30 * time.Second,
		Resolver:  resolver,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return &AddressError{Reason: fmt.Sprintf("%q is not an IP address and port", address)}
			}
			return p.check(ap)
		},
	}
}

// resolveForbidden turns the supervisor's address (a URL's host:port, such
// as 127.0.0.1:48484 or supervisor:48484) into the addresses it reaches.
func resolveForbidden(ctx context.Context, hostport string, resolver *net.Resolver) []netip.AddrPort {
	host, portS, err := net.SplitHostPort(hostport)
	if err != nil {
		return nil
	}
	port, err := net.LookupPort("tcp", portS)
	if err != nil {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.AddrPort{netip.AddrPortFrom(ip.Unmap(), uint16(port))}
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	ips, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil
	}
	var out []netip.AddrPort
	for _, ip := range ips {
		out = append(out, netip.AddrPortFrom(ip.Unmap(), uint16(port)))
	}
	return out
}
