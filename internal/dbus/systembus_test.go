package dbus_test

import (
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	godbus "github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/internal/dbus"
	"github.com/airlockhq/airlock/internal/testenv"
)

// bystander makes one ordinary call: it must keep working whatever the
// hostile plugins beside it try.
const bystanderManifest = `name = "bystander"
version = "0.1.0"
[[trigger.dbus]]
sender = "org.airlock.Test"
interface = "org.airlock.Test"
member = "Ping"
[[dbus.call]]
destination = "org.freedesktop.systemd1"
path = "/org/freedesktop/systemd1"
interface = "org.freedesktop.systemd1.Manager"
member = "StopUnit"
`

// thief asks, through a family pattern, for the bus driver's methods that
// change the host's connection: its manifest must not load.
const thiefManifest = `name = "thief"
version = "0.1.0"
[limits]
handler_timeout = "3s"
[[dbus.call]]
destination = "org.freedesktop.*"
path = "/**"
interface = "org.freedesktop.DBus"
member = "RequestName"
[[dbus.call]]
destination = "org.freedesktop.*"
path = "/**"
interface = "org.freedesktop.DBus.Monitoring"
member = "BecomeMonitor"
`

// spy's manifest loads: wide patterns that must still not reach the
// driver, Local, unique names, or properties it was not granted.
const spyManifest = `name = "spy"
version = "0.1.0"
[limits]
handler_timeout = "3s"
[[dbus.call]]
destination = "org.freedesktop.*"
path = "/**"
interface = "org.freedesktop.DBus.Introspectable"
member = "Introspect"
[[dbus.call]]
destination = "org.airlock.*"
path = "/**"
interface = "org.airlock.Test"
member = "Echo"
[[dbus.call]]
destination = "org.airlock.*"
path = "/**"
interface = "org.airlock.Test"
member = "EchoV"
[[dbus.call]]
destination = "org.airlock.*"
path = "/**"
interface = "org.airlock.Test"
member = "Hang"
[[dbus.call]]
destination = "org.airlock.*"
path = "/**"
interface = "org.airlock.Test"
member = "Fds"
[[dbus.call]]
destination = "org.airlock.Test"
path = "/org/airlock/**"
interface = "org.freedesktop.DBus.ObjectManager"
member = "GetManagedObjects"
[[dbus.call]]
destination = "org.freedesktop.DBus"
path = "/org/freedesktop/DBus"
interface = "org.freedesktop.DBus"
member = "NameHasOwner"
[[dbus.property]]
destination = "org.airlock.Test"
path = "/org/airlock/test"
interface = "org.airlock.Test"
name = "Mode"
access = "get"
[[dbus.property]]
destination = "org.airlock.Test"
path = "/org/airlock/odd"
interface = "org.airlock.Test"
name = "Mode"
access = "get"
[[trigger.dbus]]
sender = "org.airlock.Flood"
`

// objectManager answers GetManagedObjects with every property of the test
// object, as BlueZ or NetworkManager would.
type objectManager struct{ props *prop.Properties }

func (o objectManager) GetManagedObjects() (map[godbus.ObjectPath]map[string]map[string]godbus.Variant, *godbus.Error) {
	all, err := o.props.GetAll("org.airlock.Test")
	if err != nil {
		return nil, err
	}
	return map[godbus.ObjectPath]map[string]map[string]godbus.Variant{"/org/airlock/test": {"org.airlock.Test": all}}, nil
}

// fdPeer answers Fds with file descriptors, as logind's Inhibit does:
// one at the top and one inside a struct. It sends the same open file
// each time; the kernel gives the receiver new descriptors for it.
type fdPeer struct{ f *os.File }

func (p fdPeer) Fds() (godbus.UnixFD, struct{ F godbus.UnixFD }, *godbus.Error) {
	fd := godbus.UnixFD(p.f.Fd())
	return fd, struct{ F godbus.UnixFD }{fd}, nil
}

func openFds(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// oddPeer answers GetAll and GetManagedObjects in shapes the host cannot
// filter by property: every value, Secret included.
type oddPeer struct{}

func (oddPeer) GetAll(string) (map[string]string, *godbus.Error) {
	return map[string]string{"Mode": "quiet", "Secret": "hunter2"}, nil
}

func (oddPeer) GetManagedObjects() (map[godbus.ObjectPath]map[string]string, *godbus.Error) {
	return map[godbus.ObjectPath]map[string]string{"/org/airlock/odd": {"Secret": "hunter2"}}, nil
}

func body(t *testing.T, sig string, vs ...any) string {
	t.Helper()
	b, err := dbus.EncodeBody(sig, vs, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// The D-Bus hostile cases against a real dbus-daemon whose policy is a
// device's system bus: deny by default, the host privileged.
func TestHostileOnSystemBus(t *testing.T) {
	env := testenv.StartSystemDBus(t, "org.airlock.Test", "org.airlock.Claimed", "org.airlock.Flood")
	peerConn := env.Conn()
	peer := &testPeer{release: make(chan struct{})}
	var release sync.Once
	t.Cleanup(func() { release.Do(func() { close(peer.release) }) })
	if err := peerConn.Export(peer, "/org/airlock/test", "org.airlock.Test"); err != nil {
		t.Fatal(err)
	}
	props, err := prop.Export(peerConn, "/org/airlock/test", prop.Map{"org.airlock.Test": {
		"Mode":   {Value: "quiet", Writable: true, Emit: prop.EmitTrue},
		"Secret": {Value: "hunter2", Writable: true, Emit: prop.EmitFalse},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := peerConn.Export(objectManager{props}, "/org/airlock", "org.freedesktop.DBus.ObjectManager"); err != nil {
		t.Fatal(err)
	}
	devNull, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { devNull.Close() })
	if err := peerConn.Export(fdPeer{devNull}, "/org/airlock/fd", "org.airlock.Test"); err != nil {
		t.Fatal(err)
	}
	for _, iface := range []string{"org.freedesktop.DBus.Properties", "org.freedesktop.DBus.ObjectManager"} {
		if err := peerConn.Export(oddPeer{}, "/org/airlock/odd", iface); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := peerConn.RequestName("org.airlock.Test", godbus.NameFlagDoNotQueue); err != nil {
		t.Fatal(err)
	}
	r := runHost(t, env, map[string]string{"bystander": bystanderManifest, "thief": thiefManifest, "spy": spyManifest}, "thief")
	client := env.Conn()
	bystanderOK := func(t *testing.T) {
		t.Helper()
		if got := r.do("bystander", "call|"+systemd+"|org.freedesktop.systemd1.Manager.StopUnit|bluetooth.service|replace"); !strings.HasPrefix(got, "ok sig=o") {
			t.Fatalf("the bystander's call failed after the attack: %q", got)
		}
		if n := r.log.Count("D-Bus system bus connection lost"); n != 0 {
			t.Fatalf("the host's bus connection was lost %d times", n)
		}
	}

	t.Run("RequestName and BecomeMonitor through a family do not load", func(t *testing.T) {
		if r.log.Count("plugin not loaded", "thief/plugin.toml", "org.freedesktop.DBus is the bus driver's interface", "org.freedesktop.DBus.Monitoring is the bus driver's interface") != 1 {
			t.Errorf("thief's refusal does not name both rules:\n%s", strings.Join(r.log.Lines(), "\n"))
		}
		r.send("thief", "raw|org.freedesktop.DBus|/org/freedesktop/DBus|org.freedesktop.DBus|RequestName|su|"+body(t, "su", "org.airlock.Claimed", uint32(4)))
		r.send("thief", "raw|org.freedesktop.DBus|/org/freedesktop/DBus|org.freedesktop.DBus.Monitoring|BecomeMonitor|asu|"+body(t, "asu", []string{}, uint32(0)))
		var owned bool
		if err := client.BusObject().Call("org.freedesktop.DBus.NameHasOwner", 0, "org.airlock.Claimed").Store(&owned); err != nil || owned {
			t.Errorf("org.airlock.Claimed owned: %v %v", owned, err)
		}
		bystanderOK(t)
	})
	t.Run("a family does not reach the driver", func(t *testing.T) {
		got := r.do("spy", "call|org.freedesktop.DBus|/org/freedesktop/DBus|org.freedesktop.DBus.Introspectable.Introspect")
		if !strings.Contains(got, "denied: ") || !strings.Contains(got, "org.freedesktop.DBus.Introspectable.Introspect on the bus driver cannot be granted") {
			t.Errorf("Introspect on the driver = %q", got)
		}
		if r.audit.Count("plugin=spy", "decision=deny", "on the bus driver cannot be granted") != 1 {
			t.Errorf("denial not audited:\n%s", strings.Join(r.audit.Lines(), "\n"))
		}
		// login1 (a Go service) has no Introspectable: reaching it is enough.
		if got := r.do("spy", "call|org.freedesktop.login1|/org/freedesktop/login1|org.freedesktop.DBus.Introspectable.Introspect"); strings.Contains(got, "denied") {
			t.Errorf("Introspect on login1 through the same family = %q", got)
		}
	})
	t.Run("a read-only driver method by its exact name", func(t *testing.T) {
		if got := r.do("spy", "call|org.freedesktop.DBus|/org/freedesktop/DBus|org.freedesktop.DBus.NameHasOwner|org.airlock.Test"); got != "ok sig=b body=[true]" {
			t.Errorf("NameHasOwner = %q", got)
		}
	})
	t.Run("the Local path would make the bus drop the host", func(t *testing.T) {
		got := r.do("spy", "raw|org.airlock.Test|/org/freedesktop/DBus/Local|org.airlock.Test|EchoV|v|"+body(t, "v", godbus.MakeVariant("x")))
		if !strings.Contains(got, "denied: ") || !strings.Contains(got, "reserved for a connection's own use") {
			t.Errorf("call at the Local path = %q", got)
		}
		bystanderOK(t)
	})
	t.Run("the host's own unique name", func(t *testing.T) {
		var unique string
		for _, l := range r.log.Lines() {
			if _, after, ok := strings.Cut(l, "unique_name="); ok && strings.Contains(l, "D-Bus system bus connected") {
				unique, _, _ = strings.Cut(after, " ")
			}
		}
		if !strings.HasPrefix(unique, ":") {
			t.Fatalf("no unique name in the log:\n%s", strings.Join(r.log.Lines(), "\n"))
		}
		got := r.do("spy", "call|"+unique+"|/org/airlock/test|org.airlock.Test.EchoV")
		if !strings.Contains(got, "denied: ") || !strings.Contains(got, unique+" is a unique connection name; no grant reaches one") {
			t.Errorf("call to the host's own name %s = %q", unique, got)
		}
	})
	t.Run("Properties through call is judged as a property access", func(t *testing.T) {
		call := func(member, sig string, vs ...any) string {
			return r.do("spy", "raw|org.airlock.Test|/org/airlock/test|org.freedesktop.DBus.Properties|"+member+"|"+sig+"|"+body(t, sig, vs...))
		}
		if got := call("Get", "ss", "org.airlock.Test", "Mode"); !strings.HasPrefix(got, "ok ") {
			t.Errorf("Get Mode, granted by [[dbus.property]] = %q", got)
		}
		if r.audit.Count("plugin=spy", "decision=allow", "get org.airlock.Test /org/airlock/test org.airlock.Test.Mode", "[[dbus.property]] rule 1 allows") != 1 {
			t.Errorf("Get through call not audited as a property read:\n%s", strings.Join(r.audit.Lines(), "\n"))
		}
		if got := call("Get", "ss", "org.airlock.Test", "Secret"); !strings.Contains(got, "denied: ") || !strings.Contains(got, "no [[dbus.property]] rule allows get org.airlock.Test.Secret") {
			t.Errorf("Get Secret = %q", got)
		}
		if got := call("Set", "ssv", "org.airlock.Test", "Mode", godbus.MakeVariant("loud")); !strings.Contains(got, "denied: ") || !strings.Contains(got, `[[dbus.property]] rule 1 covers org.airlock.Test.Mode but not access "set"`) {
			t.Errorf("Set Mode = %q", got)
		}
		if v, _ := props.Get("org.airlock.Test", "Mode"); v.Value() != "quiet" {
			t.Errorf("Mode is %v after a denied Set", v)
		}
		if got := call("GetAll", "s", "org.airlock.Test"); !strings.HasPrefix(got, "ok ") {
			t.Errorf("GetAll = %q", got)
		}
	})
	t.Run("GetManagedObjects shows only granted properties", func(t *testing.T) {
		got := r.do("spy", "rawhex|org.airlock.Test|/org/airlock|org.freedesktop.DBus.ObjectManager|GetManagedObjects||")
		rec, err := hex.DecodeString(strings.TrimPrefix(got, "ok "))
		if err != nil {
			t.Fatalf("GetManagedObjects = %q", got)
		}
		fields, err := abi.DecodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		sig, _ := fields.Get("signature")
		b, _ := fields.Get("body")
		vals, err := dbus.DecodeBody(sig, []byte(b))
		if err != nil {
			t.Fatal(err)
		}
		if s := fmt.Sprint(vals); !strings.Contains(s, "Mode") || strings.Contains(s, "Secret") || strings.Contains(s, "hunter2") {
			t.Errorf("GetManagedObjects reply: %s", s)
		}
		// A reply the host cannot filter does not pass.
		if got := r.do("spy", "call|org.airlock.Test|/org/airlock/odd|org.freedesktop.DBus.ObjectManager.GetManagedObjects"); !strings.HasPrefix(got, `failed: failed: org.airlock.Test answered GetManagedObjects with signature "a{oa{ss}}"`) {
			t.Errorf("GetManagedObjects of another shape = %q", got)
		}
		if got := r.do("spy", "getall|org.airlock.Test|/org/airlock/odd|org.airlock.Test"); !strings.HasPrefix(got, `failed: failed: org.airlock.Test answered GetAll with signature "a{ss}"`) {
			t.Errorf("GetAll of another shape = %q", got)
		}
	})
	t.Run("values nested to the limit leave the connection up", func(t *testing.T) {
		for _, n := range []int{30, 62, 63, 64, 65} {
			got := r.do("spy", "raw|org.airlock.Test|/org/airlock/test|org.airlock.Test|EchoV|v|"+hex.EncodeToString(nestedVariants(n)))
			if !strings.HasPrefix(got, "ok ") && !strings.HasPrefix(got, "failed: invalid: ") {
				t.Errorf("%d nested variants = %q", n, got)
			}
			t.Logf("%d nested variants: %.120s", n, got)
		}
		sig := strings.Repeat("a", 33) + "y"
		if got := r.do("spy", "raw|org.airlock.Test|/org/airlock/test|org.airlock.Test|Echo|"+sig+"|00000000"); !strings.HasPrefix(got, "failed: invalid: ") {
			t.Errorf("33 nested arrays = %q", got)
		}
		bystanderOK(t)
	})
	t.Run("a call that pads past the wire bound", func(t *testing.T) {
		got := r.do("spy", "bigay|org.airlock.Test|/org/airlock/test|org.airlock.Test|Echo|900000")
		if !strings.HasPrefix(got, "failed: too_large: the call to org.airlock.Test.Echo is ") || !strings.Contains(got, "bytes on the wire, over the 2097152") {
			t.Errorf("a(y) of 900000 = %q", got)
		}
		bystanderOK(t)
	})
	t.Run("a path longer than any object's", func(t *testing.T) {
		got := r.do("spy", "call|org.airlock.Test|"+strings.Repeat("/a", 2100)+"|org.airlock.Test.Echo")
		if !strings.Contains(got, "failed: invalid: path: ") || !strings.Contains(got, "is 4200 bytes, over the 4096") {
			t.Errorf("long path = %.300q", got)
		}
	})
	t.Run("a service floods one plugin with signals", func(t *testing.T) {
		flood := env.Conn()
		if _, err := flood.RequestName("org.airlock.Flood", godbus.NameFlagDoNotQueue); err != nil {
			t.Fatal(err)
		}
		// The host learns the new owner from NameOwnerChanged: flood once
		// a first signal has come through.
		deadline := time.Now().Add(30 * time.Second)
		for r.log.Count("signal org.airlock.Flood.Tick", "plugin=spy") == 0 {
			if time.Now().After(deadline) {
				t.Fatal("no signal from org.airlock.Flood reached spy")
			}
			flood.Emit("/org/airlock/flood", "org.airlock.Flood.Tick", uint32(0))
			time.Sleep(50 * time.Millisecond)
		}
		const n = 20000
		for i := 1; i <= n; i++ {
			if err := flood.Emit("/org/airlock/flood", "org.airlock.Flood.Tick", uint32(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := peerConn.Emit("/org/airlock/test", "org.airlock.Test.Ping", "after the flood"); err != nil {
			t.Fatal(err)
		}
		r.log.Wait(1, "signal org.airlock.Test.Ping from org.airlock.Test", "after the flood", "plugin=bystander")
		if r.log.Count("D-Bus signals dropped", "plugin=bystander") != 0 {
			t.Error("the flood to spy dropped the bystander's signals")
		}
		t.Logf("spy logged %d of %d flood signals; the host reported its drops for spy %d times", r.log.Count("signal org.airlock.Flood.Tick", "plugin=spy"), n, r.log.Count("D-Bus signals dropped", "plugin=spy"))
		// spy works through its queue of flood signals before the next
		// case talks to it.
		deadline = time.Now().Add(60 * time.Second)
		for {
			if _, ok := r.send("spy", "call|org.airlock.Test|/org/airlock/test|org.airlock.Test.EchoV"); ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("spy's queue did not drain")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if r.log.Count("signal org.airlock.Flood.Tick", "plugin=bystander") != 0 {
			t.Error("the flood reached the bystander")
		}
		bystanderOK(t)
	})
	t.Run("calls abandoned at their timeout pile up at the bus", func(t *testing.T) {
		// Each call ends here after 1 ms, but the bus counts it against the
		// host connection's 128 pending replies until Hang answers.
		got := r.do("spy", "hammer|org.airlock.Test|/org/airlock/test|org.airlock.Test|Hang|200|1")
		if !strings.Contains(got, "busy:") || !strings.Contains(got, "earlier calls of this plugin still await their reply on the bus") {
			t.Errorf("200 abandoned calls = %q", got)
		}
		bystanderOK(t)
		// Once the peer answers, the bus forgets them, and so does the host.
		release.Do(func() { close(peer.release) })
		deadline := time.Now().Add(30 * time.Second)
		for {
			got := r.do("spy", "hammer|org.airlock.Test|/org/airlock/test|org.airlock.Test|Hang|8|5000")
			if got == "ok map[ok:8] last=" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("calls after the peer answered = %q", got)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	t.Run("file descriptors in replies do not pile up in the host", func(t *testing.T) {
		// The peer serves from this process too, but sends one file it
		// keeps open; what grows is what the host received. The host does
		// not offer the bus fd passing, so the bus does not deliver such
		// a reply: each call times out, and stays unanswered at the bus.
		// Last, because spy's calls stay busy after it.
		before := openFds(t)
		got := r.do("spy", "hammer|org.airlock.Test|/org/airlock/fd|org.airlock.Test|Fds|100|200")
		after := openFds(t)
		if after-before > 20 || !strings.Contains(got, "timeout:4") {
			t.Errorf("100 calls answered with 2 fds each: %d more open in the host; %s", after-before, got)
		}
		bystanderOK(t)
	})
}
