package httpout

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/logtest"
	"github.com/airlockhq/airlock/host/manifest"
)

// rig is the capability, provisioned as the host would, with a plugin
// whose grant is the test's, a real gate and captured logs and audit.
type rig struct {
	t     *testing.T
	c     *Capability
	in    *capability.Caller
	g     *gate.Gate
	logs  *logtest.Log // the capability's log and the audit, together
	env   map[string]string
	grant *Grant
}

type rigOptions struct {
	runtime  string // runtime.toml text
	env      map[string]string
	resolver *net.Resolver
}

func newRig(t *testing.T, o rigOptions, grantTOML string) *rig {
	t.Helper()
	logs, log := logtest.New(t)
	env := o.env
	c := New(Options{Getenv: func(k string) string { return env[k] }, Resolver: o.resolver})
	rt, err := manifest.ParseRuntime("runtime.toml", []byte(o.runtime), map[string]manifest.SectionFunc{Name: c.DecodeConfig})
	if err != nil {
		t.Fatalf("runtime.toml: %v", err)
	}
	if err := c.Provision(context.Background(), capability.Env{Runtime: rt, Config: rt.Sections[Name], Logger: log}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	g, err := parseGrant(c, grantTOML)
	if err != nil {
		t.Fatalf("grant: %v", err)
	}
	gt := gate.New(log)
	t.Cleanup(gt.Close)
	in := &capability.Caller{Plugin: "p", Grants: map[string]any{Name: g}, Log: log, Gate: gt}
	return &rig{t: t, c: c, in: in, g: gt, logs: logs, env: env, grant: g}
}

func parseGrant(c *Capability, grantTOML string) (*Grant, error) {
	rt := manifest.DefaultRuntime()
	m, err := manifest.ParseManifest("plugin.toml", []byte("name = \"p\"\nversion = \"1.0.0\"\n"+grantTOML), &rt,
		manifest.Schema{Grants: map[string]manifest.SectionFunc{Name: c.DecodeGrant}})
	if err != nil {
		return nil, err
	}
	g, _ := m.Grants[Name].(*Grant)
	return g, nil
}

// do sends a request as the plugin, with a handler deadline, through the
// same path as the host function, and reads the whole body.
func (r *rig) do(method, url string, hdr [][2]string, body []byte) (status int, got []byte, resp *Response, err error) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	resp, err = r.c.Do(ctx, r.in, r.grant, Request{Method: method, URL: url, Header: hdr, Body: body})
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Close()
	got, err = io.ReadAll(resp.Body)
	return resp.Status, got, resp, err
}

// nameServer is a tiny DNS server on 127.0.0.1:0 that answers A queries
// from a table the test controls, so that a name can resolve to loopback
// or change its answer between queries (rebinding). It is a real name
// server: Go's own resolver asks it over UDP.
type nameServer struct {
	conn    net.PacketConn
	mu      sync.Mutex
	answers map[string][]netip.Addr // name → answers, one per query in turn
	queries atomic.Int64            // A queries for a known name
}

func startNameServer(t *testing.T, answers map[string][]netip.Addr) (*nameServer, *net.Resolver) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ns := &nameServer{conn: pc, answers: answers}
	t.Cleanup(func() { pc.Close() })
	go ns.serve()
	res := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", pc.LocalAddr().String())
	}}
	return ns, res
}

func (ns *nameServer) serve() {
	buf := make([]byte, 512)
	for {
		n, from, err := ns.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if reply := ns.answer(buf[:n]); reply != nil {
			ns.conn.WriteTo(reply, from)
		}
	}
}

// answer builds the reply to one query: the question copied, and one A
// record if the name is known and the type is A; no records otherwise.
func (ns *nameServer) answer(q []byte) []byte {
	if len(q) < 12 {
		return nil
	}
	i := 12
	var labels []string
	for i < len(q) && q[i] != 0 {
		l := int(q[i])
		if i+1+l > len(q) {
			return nil
		}
		labels = append(labels, string(q[i+1:i+1+l]))
		i += 1 + l
	}
	if i+5 > len(q) {
		return nil
	}
	qtype := binary.BigEndian.Uint16(q[i+1:])
	question := q[12 : i+5]
	name := strings.ToLower(strings.Join(labels, "."))
	ns.mu.Lock()
	list := ns.answers[name]
	var ip netip.Addr
	if len(list) > 0 && qtype == 1 {
		ip = list[0]
		ns.answers[name] = append(list[1:], list[0]) // the next query gets the next answer
		ns.queries.Add(1)
	}
	ns.mu.Unlock()
	out := []byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}
	if len(list) == 0 {
		out[3] = 0x83 // NXDOMAIN
	}
	out = append(out, question...)
	if ip.IsValid() {
		out[7] = 1
		a := ip.As4()
		out = append(out, 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 0, 0, 4)
		out = append(out, a[:]...)
	}
	return out
}
