package dbus_test

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	godbus "github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/dbus"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
)

const guest = "internal/dbus/testdata/guest"

type rig struct {
	t     *testing.T
	h     *host.Host
	log   *testenv.Log
	audit *testenv.Log
	n     int
}

// runHost runs the real host with the dbus capability on env's bus and one
// plugin per manifest, all built from the test guest, and waits for each to
// start, except those named in refused, which must not load.
func runHost(t *testing.T, env *testenv.DBusEnv, manifests map[string]string, refused ...string) *rig {
	t.Helper()
	dir := t.TempDir()
	for name, m := range manifests {
		testenv.PluginDir(t, filepath.Join(dir, "plugins"), name, m, guest)
	}
	rt := fmt.Sprintf("plugins = [\"plugins\"]\nstate_dir = \"state\"\ndevice = \"real\"\n[dbus]\naddress = %q\ncall_timeout = \"10s\"\n", env.Bus.Address)
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	audit, auditLogger := testenv.NewLog(t)
	h, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Audit: auditLogger, Capabilities: []capability.Capability{dbus.New()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(60 * time.Second):
			t.Error("host did not stop")
		}
	})
	for name := range manifests {
		if slices.Contains(refused, name) {
			log.Wait(1, "ERROR plugin not loaded; the others run on", name+"/plugin.toml")
		} else {
			log.Wait(1, "INFO started", "plugin="+name)
		}
	}
	return &rig{t: t, h: h, log: log, audit: audit}
}

// do sends a request to a plugin and waits for its outcome line.
func (r *rig) do(plugin, req string) string {
	r.t.Helper()
	out, ok := r.send(plugin, req)
	if !ok {
		r.t.Fatalf("request %q not queued", req)
	}
	return out
}

// send is do, but reports false instead of failing when the plugin does not
// take the request (it is not loaded, or its queue is full).
func (r *rig) send(plugin, req string) (string, bool) {
	r.t.Helper()
	r.n++
	name := fmt.Sprintf("%s#%d", req, r.n)
	if !r.h.Deliver(plugin, timer.Event(plugin, name, time.Now())) {
		return "", false
	}
	prefix := "dbus " + name + " "
	r.log.Wait(1, "INFO "+prefix, "plugin="+plugin)
	for _, l := range r.log.Lines() {
		if strings.HasPrefix(l, "INFO "+prefix) && strings.Contains(l, "plugin="+plugin) {
			out := strings.TrimPrefix(l, "INFO "+prefix)
			if i := strings.Index(out, " plugin="); i >= 0 {
				out = out[:i]
			}
			return out, true
		}
	}
	return "", true
}

const systemd = "org.freedesktop.systemd1|/org/freedesktop/systemd1"

const guardManifest = `name = "guard"
version = "0.1.0"
[limits]
handler_timeout = "3s"

[[dbus.call]]
destination = "org.freedesktop.systemd1"
path = "/org/freedesktop/systemd1"
interface = "org.freedesktop.systemd1.Manager"
member = "StopUnit"
args = ["bluetooth.service", "*"]

[[dbus.call]]
destination = "org.airlock.*"
path = "/org/airlock/**"
interface = "org.airlock.Test"
member = "Hang"

[[dbus.call]]
destination = "org.airlock.Test"
path = "/org/airlock/test"
interface = "org.airlock.Test"
member = "Huge"

[[dbus.call]]
destination = "org.airlock.Test"
path = "/org/airlock/test"
interface = "org.airlock.Test"
member = "Echo"

[[dbus.call]]
destination = "org.airlock.Test"
path = "/org/airlock/test"
interface = "org.airlock.Test"
member = "EchoV"

[[dbus.property]]
destination = "org.freedesktop.timedate1"
path = "/org/freedesktop/timedate1"
interface = "org.freedesktop.timedate1"
name = "NTPSynchronized"
access = "get"

[[dbus.property]]
destination = "org.freedesktop.hostname1"
path = "/org/freedesktop/hostname1"
interface = "org.freedesktop.hostname1"
name = "StaticHostname"
access = "get"

[[dbus.property]]
destination = "org.airlock.Test"
path = "/org/airlock/test"
interface = "org.airlock.Test"
name = "Mode"
access = ["get", "set"]

[[trigger.dbus]]
name = "host"
sender = "org.freedesktop.hostname1"
path = "/org/freedesktop/hostname1"
interface = "org.freedesktop.DBus.Properties"
member = "PropertiesChanged"
arg0 = "org.freedesktop.hostname1"

[[trigger.dbus]]
name = "unit"
sender = "org.freedesktop.systemd1"
path_namespace = "/org/freedesktop/systemd1/unit"
interface = "org.freedesktop.DBus.Properties"
member = "PropertiesChanged"
`

// testPeer is a Go service for the cases no system service offers: a call
// that never returns, a reply too large to pass, and an echo of any value.
type testPeer struct{ release chan struct{} }

func (p *testPeer) Hang() *godbus.Error { <-p.release; return nil }
func (p *testPeer) Huge() (string, *godbus.Error) {
	return strings.Repeat("x", 2<<20), nil
}

type pair struct {
	A int32
	B []godbus.ObjectPath
}

func (p *testPeer) Echo(m map[string]pair) (map[string]pair, *godbus.Error) { return m, nil }
func (p *testPeer) EchoV(v godbus.Variant) (godbus.Variant, *godbus.Error)  { return v, nil }

// One host, real peers: systemd-timedated and systemd-hostnamed on a
// private bus, the Go systemd1 Manager, and a plugin built from source.
func TestHostWithRealPeers(t *testing.T) {
	env := testenv.StartDBus(t, true)
	peerConn := env.Conn()
	peer := &testPeer{release: make(chan struct{})}
	t.Cleanup(func() { close(peer.release) })
	if err := peerConn.Export(peer, "/org/airlock/test", "org.airlock.Test"); err != nil {
		t.Fatal(err)
	}
	if _, err := prop.Export(peerConn, "/org/airlock/test", prop.Map{"org.airlock.Test": {
		"Mode": {Value: "quiet", Writable: true, Emit: prop.EmitTrue},
	}}); err != nil {
		t.Fatal(err)
	}
	if _, err := peerConn.RequestName("org.airlock.Test", godbus.NameFlagDoNotQueue); err != nil {
		t.Fatal(err)
	}
	r := runHost(t, env, map[string]string{"guard": guardManifest})

	t.Run("call allowed by args constraint", func(t *testing.T) {
		got := r.do("guard", "call|"+systemd+"|org.freedesktop.systemd1.Manager.StopUnit|bluetooth.service|replace")
		if !strings.HasPrefix(got, "ok sig=o body=[/org/freedesktop/systemd1/job/") {
			t.Fatalf("StopUnit(bluetooth.service) = %q", got)
		}
		if s := env.Device.ActiveState("bluetooth.service"); s != "inactive" {
			t.Errorf("bluetooth.service is %q after StopUnit", s)
		}
		if r.audit.Count("plugin=guard", "capability=dbus", "decision=allow", `StopUnit("bluetooth.service", "replace")`, "[[dbus.call]] rule 1 allows") != 1 {
			t.Errorf("allow not audited:\n%s", strings.Join(r.audit.Lines(), "\n"))
		}
	})
	t.Run("call denied by args constraint", func(t *testing.T) {
		got := r.do("guard", "call|"+systemd+"|org.freedesktop.systemd1.Manager.StopUnit|ssh.service|replace")
		want := `failed: denied: plugin "guard": dbus call org.freedesktop.systemd1 /org/freedesktop/systemd1 org.freedesktop.systemd1.Manager.StopUnit("ssh.service", "replace") denied: [[dbus.call]] rule 1 names org.freedesktop.systemd1.Manager.StopUnit but its args = ["bluetooth.service", "*"]: argument 0 is "ssh.service", not "bluetooth.service"`
		if got != want {
			t.Errorf("StopUnit(ssh.service) =\n%s\nwant\n%s", got, want)
		}
		if s := env.Device.ActiveState("ssh.service"); s != "active" {
			t.Errorf("ssh.service is %q after a denied StopUnit", s)
		}
		if r.audit.Count("plugin=guard", "decision=deny", `StopUnit("ssh.service", "replace")`) != 1 {
			t.Errorf("deny not audited:\n%s", strings.Join(r.audit.Lines(), "\n"))
		}
	})
	t.Run("call with no rule", func(t *testing.T) {
		got := r.do("guard", "call|"+systemd+"|org.freedesktop.systemd1.Manager.Reboot")
		if !strings.Contains(got, "denied: no [[dbus.call]] rule allows org.freedesktop.systemd1.Manager.Reboot on org.freedesktop.systemd1 at /org/freedesktop/systemd1 (add one)") {
			t.Errorf("Reboot = %q", got)
		}
		if env.Device.Reboots() != 0 {
			t.Error("a denied Reboot reached systemd")
		}
	})
	t.Run("property get from real timedated, as dbus-send shows it", func(t *testing.T) {
		got := r.do("guard", "get|org.freedesktop.timedate1|/org/freedesktop/timedate1|org.freedesktop.timedate1.NTPSynchronized")
		ref := env.DBusSend("--dest=org.freedesktop.timedate1", "/org/freedesktop/timedate1", "org.freedesktop.DBus.Properties.Get", "string:org.freedesktop.timedate1", "string:NTPSynchronized")
		want := "ok b false"
		if strings.Contains(ref, "boolean true") {
			want = "ok b true"
		}
		if !strings.Contains(ref, "variant") || got != want {
			t.Errorf("get NTPSynchronized = %q; dbus-send says:\n%s", got, ref)
		}
	})
	t.Run("property set denied without a set grant", func(t *testing.T) {
		got := r.do("guard", "set|org.freedesktop.timedate1|/org/freedesktop/timedate1|org.freedesktop.timedate1.NTPSynchronized|true")
		want := `failed: denied: plugin "guard": dbus set org.freedesktop.timedate1 /org/freedesktop/timedate1 org.freedesktop.timedate1.NTPSynchronized denied: [[dbus.property]] rule 1 covers org.freedesktop.timedate1.NTPSynchronized but not access "set" (add "set" to its access)`
		if got != want {
			t.Errorf("set =\n%s\nwant\n%s", got, want)
		}
	})
	t.Run("property set allowed by its own grant", func(t *testing.T) {
		if got := r.do("guard", "set|org.airlock.Test|/org/airlock/test|org.airlock.Test.Mode|loud"); got != "ok sig= body=[]" {
			t.Fatalf("set Mode = %q", got)
		}
		if got := r.do("guard", "get|org.airlock.Test|/org/airlock/test|org.airlock.Test.Mode"); got != "ok s loud" {
			t.Errorf("get Mode after set = %q", got)
		}
		// The same grant allows Properties.Set spelled as a call.
		b, err := dbus.EncodeBody("ssv", []any{"org.airlock.Test", "Mode", godbus.MakeVariant("calm")}, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.do("guard", "raw|org.airlock.Test|/org/airlock/test|org.freedesktop.DBus.Properties|Set|ssv|"+hex.EncodeToString(b)); !strings.HasPrefix(got, "ok ") {
			t.Fatalf("Properties.Set as a call = %q", got)
		}
		if got := r.do("guard", "get|org.airlock.Test|/org/airlock/test|org.airlock.Test.Mode"); got != "ok s calm" {
			t.Errorf("get Mode after a Set call = %q", got)
		}
	})
	t.Run("error name as a field, for a request that asks", func(t *testing.T) {
		stop := func(mode string, extra ...abi.Field) string {
			b, _ := dbus.EncodeBody("ss", []any{"bluetooth.service", mode}, 1<<20)
			req := append(abi.Record{{Key: "destination", Value: []byte("org.freedesktop.systemd1")},
				{Key: "path", Value: []byte("/org/freedesktop/systemd1")}, {Key: "interface", Value: []byte("org.freedesktop.systemd1.Manager")},
				{Key: "member", Value: []byte("StopUnit")}, {Key: "signature", Value: []byte("ss")}, {Key: "body", Value: b}}, extra...)
			return r.do("guard", "rawerr|x|x|"+hex.EncodeToString(abi.AppendRecord(nil, req)))
		}
		asks := abi.Field{Key: abi.ErrorsField, Value: []byte(abi.ErrorsRecord)}
		const peer = "message=org.freedesktop.DBus.Error.InvalidArgs: Job mode sideways invalid., error_name=org.freedesktop.DBus.Error.InvalidArgs"
		if got := stop("sideways", asks); got != "failed: invalid record "+peer {
			t.Errorf("peer error, record asked = %q", got)
		}
		// A guest that does not ask (every guest before error records)
		// gets the message as before.
		if got := stop("sideways"); got != "failed: invalid text org.freedesktop.DBus.Error.InvalidArgs: Job mode sideways invalid." {
			t.Errorf("peer error, no record asked = %q", got)
		}
		// An error of the host's own has a message and no name.
		got := stop("replace", asks, abi.Field{Key: "timeout_ms", Value: []byte("0")})
		if got != `failed: invalid record message=timeout_ms "0" is not a positive number` {
			t.Errorf("host's error, record asked = %q", got)
		}
	})
	t.Run("GetAll is filtered to granted properties", func(t *testing.T) {
		got := r.do("guard", "getall|org.freedesktop.hostname1|/org/freedesktop/hostname1|org.freedesktop.hostname1")
		if got != "ok map[StaticHostname:s airlock-test]" {
			t.Errorf("GetAll hostname1 = %q", got)
		}
	})
	t.Run("values of every kind survive a round trip", func(t *testing.T) {
		// Echo(a{s(iao)}), with an empty and a full array, and EchoV(v)
		// with a variant holding a{sv}.
		sig := "a{s(iao)}"
		body := hexBody(t, sig, map[string]pair{"a": {7, nil}, "b": {-1, []godbus.ObjectPath{"/x", "/y/z"}}})
		got := r.do("guard", "raw|org.airlock.Test|/org/airlock/test|org.airlock.Test|Echo|"+sig+"|"+hex.EncodeToString(body))
		if want := fmt.Sprintf("ok %d bytes", len(replyRecord(sig, body))); got != want {
			t.Errorf("Echo = %q, want %q", got, want)
		}
		vsig := "a{sv}"
		vbody := hexBody(t, vsig, map[string]godbus.Variant{"n": godbus.MakeVariant(uint64(1) << 40), "s": godbus.MakeVariant([]string{"a", "b"})})
		vb := append(append(appendU32(nil, uint32(len(vsig))), vsig...), vbody...)
		got = r.do("guard", "raw|org.airlock.Test|/org/airlock/test|org.airlock.Test|EchoV|v|"+hex.EncodeToString(vb))
		if want := fmt.Sprintf("ok %d bytes", len(replyRecord("v", vb))); got != want {
			t.Errorf("EchoV = %q, want %q", got, want)
		}
	})
	t.Run("hostile values are invalid, never a crash", func(t *testing.T) {
		cases := []struct{ sig, body, want string }{
			{"v", hex.EncodeToString([]byte{1, 0, 0, 0, '('}), "invalid"},
			{"v", hex.EncodeToString([]byte{2, 0, 0, 0, 'i', 'i', 1, 0, 0, 0}), "not a single complete type"},
			{"v", hex.EncodeToString([]byte{1, 0, 0, 0, 'h', 1, 0, 0, 0}), "unix fds"},
			{"v", hex.EncodeToString([]byte{2, 0, 0, 0, 'a', 'y', 0xff, 0xff, 0xff, 0xff}), "exceeds"},
			{"v", hex.EncodeToString([]byte{1, 0, 0, 0, 'b', 7}), "boolean byte is 7"},
			{"v", hex.EncodeToString(nestedVariants(200)), "nested deeper"},
			{"a{vs}", "00000000", "dict key must be a basic type"},
			{"s", "05000000ff", "ends inside"},
			{"o", "0200000078", "ends inside"},
			{"v", hex.EncodeToString([]byte{1, 0, 0, 0, 'o', 2, 0, 0, 0, 'x', 'x'}), "not a valid object path"},
		}
		for _, c := range cases {
			got := r.do("guard", "raw|org.airlock.Test|/org/airlock/test|org.airlock.Test|EchoV|"+c.sig+"|"+c.body)
			if !strings.HasPrefix(got, "failed: invalid: ") || !strings.Contains(got, c.want) {
				t.Errorf("sig %q body %s = %q, want invalid with %q", c.sig, c.body, got, c.want)
			}
		}
		for _, rec := range []string{"ffffffff", "01000000ffff0000", "00"} {
			if got := r.do("guard", "rawrec|x|x|"+rec); !strings.HasPrefix(got, "failed: invalid: request is not a valid record") {
				t.Errorf("record %s = %q", rec, got)
			}
		}
		if s := status(r, "guard"); s.Restarts != 0 {
			t.Errorf("hostile values crashed the plugin: %+v", s)
		}
	})
	t.Run("a peer that never answers times out at the handler deadline", func(t *testing.T) {
		got := r.do("guard", "call|org.airlock.Test|/org/airlock/test|org.airlock.Test.Hang")
		if !strings.HasPrefix(got, "failed: timeout: no reply from org.airlock.Test to org.airlock.Test.Hang") {
			t.Errorf("Hang = %q", got)
		}
	})
	t.Run("a huge reply is bounded", func(t *testing.T) {
		got := r.do("guard", "call|org.airlock.Test|/org/airlock/test|org.airlock.Test.Huge")
		if !strings.HasPrefix(got, "failed: too_large: reply exceeds 1048576 bytes") {
			t.Errorf("Huge = %q", got)
		}
	})
	t.Run("signals from real hostnamed arrive in order", func(t *testing.T) {
		c := env.Conn()
		for _, n := range []string{"first", "second", "third"} {
			if err := c.Object("org.freedesktop.hostname1", "/org/freedesktop/hostname1").Call("org.freedesktop.hostname1.SetStaticHostname", 0, "airlock-"+n, false).Err; err != nil {
				t.Fatal(err)
			}
		}
		r.log.Wait(1, "signal org.freedesktop.DBus.Properties.PropertiesChanged from org.freedesktop.hostname1", "rule=host", "airlock-third")
		var order []string
		for _, l := range r.log.Lines() {
			for _, n := range []string{"first", "second", "third"} {
				if strings.Contains(l, "rule=host") && strings.Contains(l, "StaticHostname:s airlock-"+n) {
					order = append(order, n)
				}
			}
		}
		if strings.Join(order, ",") != "first,second,third" {
			t.Errorf("signals in order %v", order)
		}
		if b, _ := os.ReadFile(filepath.Join(env.Etc, "hostname")); strings.TrimSpace(string(b)) != "airlock-third" {
			t.Errorf("hostnamed wrote %q to its scratch /etc/hostname", b)
		}
	})
	t.Run("systemd unit signals after Subscribe", func(t *testing.T) {
		if env.Device.Subscribed() == 0 {
			t.Error("no Manager.Subscribe call although a rule listens to systemd1")
		}
		r.do("guard", "call|"+systemd+"|org.freedesktop.systemd1.Manager.StopUnit|bluetooth.service|fail")
		r.log.Wait(1, "from org.freedesktop.systemd1 path=/org/freedesktop/systemd1/unit/bluetooth_2eservice rule=unit", "ActiveState")
	})
	t.Run("bus dies and comes back", func(t *testing.T) {
		env.Restart(func() {
			r.log.Wait(1, "D-Bus system bus connection lost; reconnecting")
			got := r.do("guard", "call|"+systemd+"|org.freedesktop.systemd1.Manager.StopUnit|bluetooth.service|replace")
			if !strings.HasPrefix(got, "failed: unavailable: D-Bus system bus at unix:path=") {
				t.Errorf("call while the bus is down = %q", got)
			}
		})
		r.log.Wait(2, "D-Bus system bus connected")
		// The first call after a restart may race the reconnect.
		for i := 0; ; i++ {
			got := r.do("guard", "call|"+systemd+"|org.freedesktop.systemd1.Manager.StopUnit|bluetooth.service|replace")
			if strings.HasPrefix(got, "ok sig=o") {
				break
			}
			if i == 50 {
				t.Fatalf("call after reconnect = %q", got)
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Matches are added again on the new connection.
		c := env.Conn()
		deadline := time.Now().Add(30 * time.Second)
		for i := 0; r.log.Count("rule=host", "airlock-again") == 0; i++ {
			if time.Now().After(deadline) {
				t.Fatalf("no signal after reconnect:\n%s", strings.Join(r.log.Lines(), "\n"))
			}
			c.Object("org.freedesktop.hostname1", "/org/freedesktop/hostname1").Call("org.freedesktop.hostname1.SetStaticHostname", 0, fmt.Sprintf("airlock-again%d", i), false)
			time.Sleep(200 * time.Millisecond)
		}
	})
}

func status(r *rig, name string) (s struct{ Restarts int }) {
	for _, st := range r.h.Status() {
		if st.Name == name {
			s.Restarts = st.Restarts
		}
	}
	return s
}

// An unknown destination is reported when the plugin loads.
func TestUnhonourableGrantReportedAtLoad(t *testing.T) {
	env := testenv.StartDBus(t, false)
	r := runHost(t, env, map[string]string{"p": `name = "p"
version = "0.1.0"
[[dbus.call]]
destination = "org.example.Missing"
path = "/"
interface = "org.example.Missing"
member = "Nothing"
`})
	r.log.Wait(1, "D-Bus grant cannot be honoured now", "destination=org.example.Missing", "rule=[[dbus.call]] 1")
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v), byte(v>>8), byte(v>>16), byte(v>>24))
}

func hexBody(t *testing.T, sig string, v any) []byte {
	t.Helper()
	b, err := dbus.EncodeBody(sig, []any{v}, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// replyRecord is what a call replies when the peer echoes body.
func replyRecord(sig string, body []byte) []byte {
	return abi.AppendRecord(nil, abi.Record{{Key: "signature", Value: []byte(sig)}, {Key: "body", Value: body}})
}

func nestedVariants(n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, 1, 0, 0, 0, 'v')
	}
	return append(b, 1, 0, 0, 0, 'y', 0)
}
