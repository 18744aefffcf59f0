package dbus

import (
	"slices"
	"testing"
)

func TestGrantWithin(t *testing.T) {
	dest := func(s string) busNamePattern {
		p, err := parseBusNamePattern(s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	ceiling := &Ceiling{Destinations: []busNamePattern{dest("org.freedesktop.timedate1"), dest("org.example.*")}}
	for _, tc := range []struct {
		name   string
		g      *Grant
		excess []string
	}{
		{"exact", &Grant{Calls: []CallRule{{Destination: dest("org.freedesktop.timedate1"), Interface: "org.freedesktop.timedate1", Member: "SetNTP"}}}, nil},
		{"inside a family", &Grant{Calls: []CallRule{{Destination: dest("org.example.a.*"), Interface: "org.example.A", Member: "Go"}}}, nil},
		{"other service", &Grant{Calls: []CallRule{{Destination: dest("org.freedesktop.systemd1"), Interface: "org.freedesktop.systemd1.Manager", Member: "StopUnit"}}},
			[]string{`call org.freedesktop.systemd1 org.freedesktop.systemd1.Manager.StopUnit is outside the ceiling (destinations = ["org.freedesktop.timedate1", "org.example.*"])`}},
		{"family wider than an exact name", &Grant{Properties: []PropertyRule{{Destination: dest("org.freedesktop.*"), Interface: "org.freedesktop.timedate1", Name: "*", Get: true}}},
			[]string{`property org.freedesktop.* org.freedesktop.timedate1.* is outside the ceiling (destinations = ["org.freedesktop.timedate1", "org.example.*"])`}},
		{"set needs set_properties", &Grant{Properties: []PropertyRule{{Destination: dest("org.freedesktop.timedate1"), Interface: "org.freedesktop.timedate1", Name: "Timezone", Set: true}}},
			[]string{"setting property org.freedesktop.timedate1 org.freedesktop.timedate1.Timezone is outside the ceiling (set_properties = false)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, excess := tc.g.Within(ceiling)
			if ok != (len(tc.excess) == 0) || !slices.Equal(excess, tc.excess) {
				t.Errorf("got %v %q, want %q", ok, excess, tc.excess)
			}
		})
	}
	rs := SignalRules{{Sender: "org.freedesktop.timedate1"}, {Sender: "org.freedesktop.login1"}}
	if ok, excess := rs.Within(ceiling); ok || len(excess) != 1 {
		t.Errorf("signal rules: %v %q", ok, excess)
	}
}

func TestGrantDescribe(t *testing.T) {
	p, _ := parsePathPattern("/org/freedesktop/systemd1")
	d, _ := parseBusNamePattern("org.freedesktop.systemd1")
	g := &Grant{Calls: []CallRule{{Destination: d, Path: p, Interface: "org.freedesktop.systemd1.Manager", Member: "StopUnit", Args: []string{"bluetooth.service", "*"}}}}
	want := []string{"may call org.freedesktop.systemd1 StopUnit (org.freedesktop.systemd1.Manager at /org/freedesktop/systemd1) with bluetooth.service, any value"}
	if got := g.Describe(); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
