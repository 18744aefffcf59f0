package dbus

import (
	"strings"
	"testing"

	godbus "github.com/godbus/dbus/v5"
)

func TestBusNamePattern(t *testing.T) {
	for _, c := range []struct {
		pat, name string
		want      bool
	}{
		{"org.foo.*", "org.foo", true},
		{"org.foo.*", "org.foo.Bar", true},
		{"org.foo.*", "org.foo.Bar.Baz", true},
		{"org.foo.*", "org.foobar", false},
		{"org.freedesktop.systemd1", "org.freedesktop.systemd1", true},
		{"org.freedesktop.systemd1", "org.freedesktop.systemd11", false},
	} {
		p, err := parseBusNamePattern(c.pat)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.match(c.name); got != c.want {
			t.Errorf("%s matches %s = %v", c.pat, c.name, got)
		}
	}
	for _, bad := range []string{"", "*", "org.*", "org.foo*", ":1.5", "org..foo", "1org.foo"} {
		if _, err := parseBusNamePattern(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestPathPattern(t *testing.T) {
	for _, c := range []struct {
		pat, path string
		want      bool
	}{
		{"/org/freedesktop/systemd1", "/org/freedesktop/systemd1", true},
		{"/org/freedesktop/systemd1", "/org/freedesktop/systemd1/unit", false},
		{"/org/freedesktop/systemd1/unit/*", "/org/freedesktop/systemd1/unit/ssh_2eservice", true},
		{"/org/freedesktop/systemd1/unit/*", "/org/freedesktop/systemd1/unit/a/b", false},
		{"/org/freedesktop/systemd1/unit/bluetooth*", "/org/freedesktop/systemd1/unit/bluetooth_2eservice", true},
		{"/org/freedesktop/systemd1/unit/bluetooth*", "/org/freedesktop/systemd1/unit/ssh_2eservice", false},
		{"/org/**", "/org", true},
		{"/org/**", "/org/a/b/c", true},
		{"/org/**/c", "/org/a/b/c", true},
		{"/org/**/c", "/org/a/b/d", false},
		{"/**", "/", true},
		{"/", "/", true},
		{"/", "/a", false},
	} {
		p, err := parsePathPattern(c.pat)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.match(c.path); got != c.want {
			t.Errorf("%s matches %s = %v", c.pat, c.path, got)
		}
	}
	for _, bad := range []string{"", "org", "/a//b", "/a/b**", "/a-b", "/a/"} {
		if _, err := parsePathPattern(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAllowCall(t *testing.T) {
	dest, _ := parseBusNamePattern("org.freedesktop.systemd1")
	path, _ := parsePathPattern("/org/freedesktop/systemd1")
	g := &Grant{Calls: []CallRule{{Destination: dest, Path: path, Interface: "org.freedesktop.systemd1.Manager", Member: "StopUnit", Args: []string{"bluetooth.service", "*"}}}}
	call := func(args ...any) Call {
		return Call{"org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "StopUnit", args}
	}
	for _, c := range []struct {
		c   Call
		ok  bool
		why string
	}{
		{call("bluetooth.service", "replace"), true, "rule 1 allows"},
		{call("bluetooth.service", "fail"), true, "rule 1 allows"},
		{call("ssh.service", "replace"), false, `argument 0 is "ssh.service", not "bluetooth.service"`},
		{call("bluetooth.service"), false, "the call has 1 arguments, the rule 2"},
		{call([]string{"bluetooth.service"}, "replace"), false, `argument 0 is a as, which only "*" matches`},
		{call(godbus.ObjectPath("/bluetooth.service"), "x"), false, `argument 0 is "/bluetooth.service"`},
	} {
		ok, why := g.allowCall(c.c)
		if ok != c.ok || !strings.Contains(why, c.why) {
			t.Errorf("%s: %v %q, want %v %q", c.c, ok, why, c.ok, c.why)
		}
	}
	if ok, why := (*Grant)(nil).allowCall(call()); ok || !strings.Contains(why, "no [[dbus.call]] rules") {
		t.Errorf("nil grant: %v %q", ok, why)
	}
}
