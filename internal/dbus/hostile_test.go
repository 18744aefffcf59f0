package dbus

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	godbus "github.com/godbus/dbus/v5"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/testenv"
)

// parseManifest decodes a plugin.toml with the dbus capability's sections.
func parseManifest(t *testing.T, body string) (*manifest.Manifest, error) {
	t.Helper()
	d := New()
	schema := manifest.Schema{
		Grants:   map[string]manifest.SectionFunc{"dbus": d.DecodeGrant},
		Triggers: map[string]manifest.SectionFunc{"dbus": d.DecodeTrigger},
	}
	rt := manifest.DefaultRuntime()
	return manifest.ParseManifest("plugin.toml", []byte("name = \"p\"\nversion = \"0.1.0\"\n"+body), &rt, schema)
}

func callRule(dest, path, iface, member string) string {
	return fmt.Sprintf("[[dbus.call]]\ndestination = %q\npath = %q\ninterface = %q\nmember = %q\n", dest, path, iface, member)
}

// A manifest cannot name the bus driver's interfaces, Local, or the
// Properties interface as a call, whatever its destination pattern.
func TestHostileManifestsRefused(t *testing.T) {
	manyTriggers := strings.Repeat("[[trigger.dbus]]\nsender = \"org.freedesktop.timedate1\"\n", maxSignalRules+1)
	manyCalls := strings.Repeat(callRule("org.airlock.Test", "/", "org.airlock.Test", "Echo"), maxGrantRules+1)
	deepGlob := callRule("org.airlock.Test", strings.Repeat("/**/a*", maxPatternSegs/2+1), "org.airlock.Test", "Echo")
	for _, c := range []struct{ name, body, want string }{
		{"RequestName through a family", callRule("org.freedesktop.*", "/**", "org.freedesktop.DBus", "RequestName"),
			"org.freedesktop.DBus is the bus driver's interface; only its read-only methods"},
		{"BecomeMonitor through a family", callRule("org.freedesktop.*", "/org/freedesktop/DBus", "org.freedesktop.DBus.Monitoring", "BecomeMonitor"),
			"org.freedesktop.DBus.Monitoring is the bus driver's interface"},
		{"AddMatch on the exact driver", callRule("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch"),
			"org.freedesktop.DBus.AddMatch on the bus driver cannot be granted"},
		{"driver read-only method spelled on another interface", callRule("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus.Introspectable", "GetNameOwner"),
			"org.freedesktop.DBus.Introspectable.GetNameOwner on the bus driver cannot be granted"},
		{"Debug.Stats on another destination", callRule("org.freedesktop.systemd1", "/", "org.freedesktop.DBus.Debug.Stats", "GetStats"),
			"org.freedesktop.DBus.Debug.Stats is the bus driver's interface"},
		{"Local interface", callRule("org.airlock.*", "/**", "org.freedesktop.DBus.Local", "Disconnected"),
			"are reserved for a connection's own use"},
		{"Local path", callRule("org.airlock.*", "/org/freedesktop/DBus/Local", "org.airlock.Test", "Echo"),
			"are reserved for a connection's own use"},
		{"Properties.Set as a call", callRule("org.freedesktop.timedate1", "/org/freedesktop/timedate1", "org.freedesktop.DBus.Properties", "Set"),
			"org.freedesktop.DBus.Properties is a property access, which [[dbus.property]] grants"},
		{"Properties.Get as a call", callRule("org.freedesktop.*", "/**", "org.freedesktop.DBus.Properties", "Get"),
			"is a property access"},
		{"the driver's properties", "[[dbus.property]]\ndestination = \"org.freedesktop.DBus\"\npath = \"/org/freedesktop/DBus\"\ninterface = \"org.freedesktop.DBus\"\nname = \"Features\"\naccess = \"get\"\n",
			"the bus driver's properties cannot be granted"},
		{"systemd's Unsubscribe, through a family", callRule("org.freedesktop.*", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "Unsubscribe"),
			"Unsubscribe would silence systemd's signals for all of them"},
		{"a unique name", callRule(":1.1", "/", "org.airlock.Test", "Echo"), "is a unique name"},
		{"too many signal rules", manyTriggers, fmt.Sprintf("%d [[trigger.dbus]] rules; a plugin may have at most %d", maxSignalRules+1, maxSignalRules)},
		{"a match rule longer than the bus takes", "[[trigger.dbus]]\nsender = \"org.freedesktop.timedate1\"\npath_namespace = \"" + strings.Repeat("/abcdefghi", 110) + "\"\n",
			"as a D-Bus match rule; the bus takes at most 1024"},
		{"too many call rules", manyCalls, fmt.Sprintf("%d [[dbus.call]] rules; a plugin may have at most %d", maxGrantRules+1, maxGrantRules)},
		{"a path pattern of too many segments", deepGlob, fmt.Sprintf("a path pattern has at most %d segments", maxPatternSegs)},
		{"a read-only driver method, exactly", callRule("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner"), ""},
		{"Introspect through a family", callRule("org.freedesktop.*", "/**", "org.freedesktop.DBus.Introspectable", "Introspect"), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseManifest(t, c.body)
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want a refusal with %q", err, c.want)
			}
		})
	}
}

// The bus driver, Local and unique names are refused at call time too,
// whatever rule a grant holds, even one that decodeGrant would refuse.
func TestBusDriverUnreachableAtCallTime(t *testing.T) {
	rule := func(dest, path, iface, member string) CallRule {
		d, err := parseBusNamePattern(dest)
		if err != nil {
			t.Fatal(err)
		}
		p, err := parsePathPattern(path)
		if err != nil {
			t.Fatal(err)
		}
		return CallRule{Destination: d, Path: p, Interface: iface, Member: member}
	}
	g := &Grant{Calls: []CallRule{
		rule("org.freedesktop.*", "/**", "org.freedesktop.DBus.Introspectable", "Introspect"),
		rule("org.freedesktop.*", "/**", "org.freedesktop.DBus", "RequestName"),
		rule("org.freedesktop.*", "/**", "org.freedesktop.DBus.Monitoring", "BecomeMonitor"),
		rule("org.airlock.*", "/**", "org.freedesktop.DBus", "AddMatch"),
		rule("org.airlock.*", "/**", "org.airlock.Test", "Echo"),
		rule("org.airlock.*", "/**", "org.freedesktop.DBus.Local", "Echo"),
		rule("org.freedesktop.systemd1", "/**", "org.freedesktop.systemd1.Manager", "Unsubscribe"),
	}}
	for _, c := range []struct {
		call Call
		want string
	}{
		{Call{Destination: "org.freedesktop.DBus", Path: "/org/freedesktop/DBus", Interface: "org.freedesktop.DBus.Introspectable", Member: "Introspect"},
			"org.freedesktop.DBus.Introspectable.Introspect on the bus driver cannot be granted"},
		{Call{Destination: "org.freedesktop.DBus", Path: "/", Interface: "org.freedesktop.DBus", Member: "RequestName", Args: []any{"org.airlock.Claimed", uint32(0)}},
			"RequestName on the bus driver cannot be granted"},
		{Call{Destination: "org.freedesktop.DBus", Path: "/org/freedesktop/DBus", Interface: "org.freedesktop.DBus.Monitoring", Member: "BecomeMonitor"},
			"BecomeMonitor on the bus driver cannot be granted"},
		{Call{Destination: "org.airlock.Test", Path: "/", Interface: "org.freedesktop.DBus", Member: "AddMatch"},
			"org.freedesktop.DBus is the bus driver's interface, reserved"},
		{Call{Destination: "org.airlock.Test", Path: "/org/freedesktop/DBus/Local", Interface: "org.airlock.Test", Member: "Echo"},
			"reserved for a connection's own use"},
		{Call{Destination: "org.airlock.Test", Path: "/x", Interface: "org.freedesktop.DBus.Local", Member: "Echo"},
			"reserved for a connection's own use"},
		{Call{Destination: ":1.7", Path: "/x", Interface: "org.airlock.Test", Member: "Echo"},
			":1.7 is a unique connection name; no grant reaches one"},
		{Call{Destination: "org.freedesktop.systemd1", Path: "/org/freedesktop/systemd1", Interface: "org.freedesktop.systemd1.Manager", Member: "Unsubscribe"},
			"Unsubscribe would silence systemd's signals for all of them"},
	} {
		ok, why := g.allowCall(c.call)
		if ok || !strings.Contains(why, c.want) {
			t.Errorf("%s: %v %q, want a denial with %q", c.call, ok, why, c.want)
		}
	}
	if ok, why := g.allowCall(Call{Destination: "org.freedesktop.login1", Path: "/org/freedesktop/login1", Interface: "org.freedesktop.DBus.Introspectable", Member: "Introspect"}); !ok {
		t.Errorf("a family still reaches the services in it: %s", why)
	}
	if ok, why := g.allowProperty("get", "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Features"); ok || !strings.Contains(why, "on the bus driver cannot be granted") {
		t.Errorf("driver property: %v %q", ok, why)
	}
}

// A ceiling judges a call by what it does: Properties.Set is a property
// write, and a family in the ceiling does not cover the bus driver.
func TestCeilingJudgesWhatACallDoes(t *testing.T) {
	pat := func(s string) busNamePattern { p, _ := parseBusNamePattern(s); return p }
	ceiling := &Ceiling{Destinations: []busNamePattern{pat("org.freedesktop.*")}}
	g := &Grant{Calls: []CallRule{
		{Destination: pat("org.freedesktop.timedate1"), Interface: propsIface, Member: "Set"},
		{Destination: pat("org.freedesktop.DBus"), Interface: driverIface, Member: "ListNames"},
		{Destination: pat("org.freedesktop.timedate1"), Interface: propsIface, Member: "Get"},
	}}
	ok, excess := g.Within(ceiling)
	want := []string{
		"call org.freedesktop.timedate1 org.freedesktop.DBus.Properties.Set sets properties, which is outside the ceiling (set_properties = false)",
		`call org.freedesktop.DBus org.freedesktop.DBus.ListNames is outside the ceiling (destinations = ["org.freedesktop.*"])`,
	}
	if ok || !slices.Equal(excess, want) {
		t.Errorf("got %v %q, want %q", ok, excess, want)
	}
}

// Path globs with many "**" and "*" against long paths: a backtracking
// matcher took exponential time here. The bound only fails on a real hang.
func TestHostileGlobIsBounded(t *testing.T) {
	pat, err := parsePathPattern("/" + strings.Repeat("**/", 16) + "x")
	if err != nil {
		t.Fatal(err)
	}
	path := strings.Repeat("/a", 400) + "/y"
	seg := strings.Repeat("*a", 16) + "b"
	done := make(chan [2]bool, 1)
	go func() { done <- [2]bool{pat.match(path), globSeg(seg, strings.Repeat("a", 4000))} }()
	select {
	case got := <-done:
		if got[0] || got[1] {
			t.Errorf("hostile globs matched: %v", got)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("path glob matching did not finish within 60s: it is not linear")
	}
	for _, c := range []struct {
		pat, s string
		want   bool
	}{
		{"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false}, {"*", "", true}, {"a*", "a", true},
		{"*ab", "aab", true}, {"*a*", "bbb", false}, {"**", "x", true},
	} {
		if got := globSeg(c.pat, c.s); got != c.want {
			t.Errorf("globSeg(%q, %q) = %v", c.pat, c.s, got)
		}
	}
	for _, c := range []struct {
		pat, path string
		want      bool
	}{
		{"/**/b/**/d", "/a/b/c/d", true}, {"/**/b/**/d", "/a/c/d", false}, {"/a/**/**", "/a", true},
		{"/**/x*/y", "/p/xq/xr/y", true}, {"/**/x*/y", "/p/xq/z", false},
	} {
		p, _ := parsePathPattern(c.pat)
		if got := p.match(c.path); got != c.want {
			t.Errorf("%s matches %s = %v", c.pat, c.path, got)
		}
	}
}

// A denial quotes what the guest sent, bounded: a megabyte argument must
// not become a megabyte audit record.
func TestDenialReasonIsBounded(t *testing.T) {
	dest, _ := parseBusNamePattern("org.freedesktop.systemd1")
	path, _ := parsePathPattern("/org/freedesktop/systemd1")
	g := &Grant{Calls: []CallRule{{Destination: dest, Path: path, Interface: "org.freedesktop.systemd1.Manager", Member: "StopUnit", Args: []string{"bluetooth.service", "*"}}}}
	huge := strings.Repeat("x", 1<<20)
	for _, c := range []Call{
		{Destination: "org.freedesktop.systemd1", Path: "/org/freedesktop/systemd1", Interface: "org.freedesktop.systemd1.Manager", Member: "StopUnit", Args: []any{huge, "replace"}},
		{Destination: "org.freedesktop.systemd1", Path: strings.Repeat("/a", maxPath/2), Interface: "org.freedesktop.systemd1.Manager", Member: "StopUnit"},
	} {
		ok, why := g.allowCall(c)
		if ok || len(why) > 1000 || !strings.Contains(why, " bytes)") {
			t.Errorf("denial of %d bytes: %.300s", len(why), why)
		}
	}
}

// One plugin's signal rules cannot use up the host connection's match
// rules: past dbus.max_match_rules the plugin gets none, and says why.
func TestMatchRuleBudget(t *testing.T) {
	log, logger := testenv.NewLog(t)
	d := New()
	d.log = logger
	d.cfg.MaxMatchRules = 6
	str := func(s string) *string { return &s }
	// 2 rules on one sender: 2 match rules and 1 NameOwnerChanged rule.
	quiet := SignalRules{{Sender: "org.freedesktop.timedate1", Member: "A"}, {Sender: "org.freedesktop.timedate1", Member: "B"}}
	greedy := SignalRules{{Sender: "org.airlock.a"}, {Sender: "org.airlock.b"}, {Sender: "org.airlock.c", Args: [maxArgMatch]*string{str("x")}}}
	d.Subscribe("quiet", quiet)
	d.Subscribe("quiet", quiet) // a reload counts its rules once
	d.Subscribe("greedy", greedy)
	if _, ok := d.rules["greedy"]; ok {
		t.Errorf("greedy's rules installed past the budget: %d match rules", matchRuleCount(d.rules))
	}
	if _, ok := d.rules["quiet"]; !ok {
		t.Error("quiet lost its rules to greedy")
	}
	log.Wait(1, "ERROR D-Bus signal rules not installed", "plugin=greedy", "would hold 9 match rules, over dbus.max_match_rules = 6")
	d.Subscribe("greedy", greedy[:1])
	if n := matchRuleCount(d.rules); n != 5 {
		t.Errorf("after a smaller reload: %d match rules, want 5", n)
	}
}

// A request's values cost the host a bounded multiple of their size: a
// 1 MiB a(yy) built a struct type per element, 250 MB of allocations.
func TestDecodeAllocationIsBounded(t *testing.T) {
	for _, c := range []struct {
		sig  string
		elem []byte
	}{
		{"a(yy)", []byte{1, 2}}, {"a(y)", []byte{1}}, {"ay", []byte{1}}, {"av", []byte{1, 0, 0, 0, 'y', 7}}, {"aay", []byte{0, 0, 0, 0}},
	} {
		n := (maxRequest - 64) / len(c.elem)
		b := binary.LittleEndian.AppendUint32(nil, uint32(n))
		for i := 0; i < n; i++ {
			b = append(b, c.elem...)
		}
		var m0, m1 runtime.MemStats
		runtime.ReadMemStats(&m0)
		vals, err := decodeBody(c.sig, b)
		runtime.ReadMemStats(&m1)
		if err != nil {
			t.Fatalf("%s: %v", c.sig, err)
		}
		runtime.KeepAlive(vals)
		// measured: a(y) 26 MB (40 MB under -race), av and aay 18 MB,
		// a(yy) 14 MB, ay 1 MB; before, a(y) 264 MB.
		if alloc := m1.TotalAlloc - m0.TotalAlloc; alloc > 64*maxRequest {
			t.Errorf("decoding %d bytes of %s allocated %d MB, over 64 times its size", len(b), c.sig, alloc>>20)
		}
	}
}

// Calls awaiting a reply are bounded per plugin and for the host's
// connection, below dbus-daemon's 128 per connection, and released when
// the bus answers.
func TestInflightBounds(t *testing.T) {
	f := newInflight()
	var slots []*replySlot
	for p := 0; p < 30; p++ {
		for i := 0; i < maxInflightPerPlugin+1; i++ {
			s := &replySlot{plugin: fmt.Sprintf("p%d", p)}
			want := ""
			switch {
			case f.perPlugin[s.plugin] == maxInflightPerPlugin:
				want = "4 earlier calls of this plugin still await their reply"
			case f.total == maxInflight:
				want = "the host's bus connection has 96 calls awaiting a reply"
			}
			err := f.reserve(s)
			switch {
			case want == "" && err != nil:
				t.Fatalf("plugin p%d call %d: %v", p, i, err)
			case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
				t.Fatalf("plugin p%d call %d: %v, want %q", p, i, err, want)
			case err == nil:
				f.sent(uint32(len(slots)+1), s)
				slots = append(slots, s)
			}
		}
	}
	if len(slots) != maxInflight {
		t.Errorf("%d calls in flight, want %d", len(slots), maxInflight)
	}
	f.unsent(slots[0]) // sent: only the answer releases it
	for i := range slots {
		if f.answered(uint32(i+1)) == nil || f.answered(uint32(i+1)) != nil {
			t.Fatalf("serial %d answered other than once", i+1)
		}
	}
	if f.total != 0 || len(f.perPlugin) != 0 || len(f.serials) != 0 {
		t.Errorf("after every answer: total %d, per plugin %v, serials %d", f.total, f.perPlugin, len(f.serials))
	}
	s := &replySlot{plugin: "p0"}
	if err := f.reserve(s); err != nil {
		t.Fatal(err)
	}
	f.unsent(s)
	if f.total != 0 {
		t.Errorf("a call that never went out still counts: %d", f.total)
	}
}

// FuzzPathPattern checks the linear matcher against the recursive one it
// replaced, on inputs small enough for that one to finish.
func FuzzPathPattern(f *testing.F) {
	for _, s := range [][2]string{
		{"/org/**/c", "/org/a/b/c"}, {"/**/b/**/d", "/a/b/c/d"}, {"/a*b*c/**", "/aXbYc/z"},
		{"/**", "/"}, {"/x*/y", "/xq/y"}, {"/**/x*/y", "/p/xq/xr/y"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, path string) {
		p, err := parsePathPattern(pat)
		if err != nil || len(pat) > 40 || len(path) > 40 || !validObjectPath(path) {
			return
		}
		want := path == "/" && (len(p.segs) == 0 || len(p.segs) == 1 && p.segs[0] == "**")
		if path != "/" {
			want = recursiveSegs(p.segs, strings.Split(path[1:], "/"))
		}
		if got := p.match(path); got != want {
			t.Errorf("%q matches %q = %v, the recursive matcher says %v", pat, path, got, want)
		}
	})
}

func recursiveSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(segs); i++ {
				if recursiveSegs(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 || !recursiveGlob(pat[0], segs[0]) {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

func recursiveGlob(pat, s string) bool {
	star := strings.IndexByte(pat, '*')
	if star < 0 {
		return pat == s
	}
	if !strings.HasPrefix(s, pat[:star]) {
		return false
	}
	for i := star; i <= len(s); i++ {
		if recursiveGlob(pat[star+1:], s[i:]) {
			return true
		}
	}
	return false
}

// dbus.max_match_rules is bounded by the daemon's default per connection.
func TestConfigMaxMatchRules(t *testing.T) {
	d := New()
	sections := map[string]manifest.SectionFunc{"dbus": d.DecodeConfig}
	for _, c := range []struct {
		toml string
		want int
		err  string
	}{
		{"", defaultMaxMatchRules, ""},
		{"[dbus]\nmax_match_rules = 64\n", 64, ""},
		{"[dbus]\nmax_match_rules = 600\n", 0, "max_match_rules = 600 is outside 1..512"},
		{"[dbus]\nmax_match_rules = -1\n", 0, "is outside 1..512"},
	} {
		rt, err := manifest.ParseRuntime(filepath.Join(t.TempDir(), "runtime.toml"), []byte(c.toml), sections)
		switch {
		case c.err != "":
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want %q", c.toml, err, c.err)
			}
		case err != nil:
			t.Errorf("%q: %v", c.toml, err)
		default:
			got := DefaultConfig().MaxMatchRules
			if cfg, ok := rt.Sections["dbus"].(*Config); ok {
				got = cfg.MaxMatchRules
			}
			if got != c.want {
				t.Errorf("%q: max_match_rules %d, want %d", c.toml, got, c.want)
			}
		}
	}
}

// A service flooding one plugin fills that plugin's backlog only: the
// next signal for another plugin is still queued, and the drops are
// counted for the flooded plugin.
func TestSignalBacklogIsPerPlugin(t *testing.T) {
	d := New()
	d.rules = map[string]SignalRules{"flooded": {{Sender: ":1.5"}}, "quiet": {{Sender: ":1.6"}}}
	d.deliver = func(string, capability.Event) bool { return true }
	signal := func(sender string) *godbus.Message {
		return &godbus.Message{Type: godbus.TypeSignal, Headers: map[godbus.HeaderField]godbus.Variant{
			godbus.FieldSender: godbus.MakeVariant(sender), godbus.FieldPath: godbus.MakeVariant(godbus.ObjectPath("/x")),
			godbus.FieldInterface: godbus.MakeVariant("org.airlock.Flood"), godbus.FieldMember: godbus.MakeVariant("Tick"),
			godbus.FieldSignature: godbus.MakeVariant(godbus.SignatureOf(uint32(0)))}, Body: []any{uint32(0)}}
	}
	// No demultiplexer runs: the queue only grows.
	for i := 0; i < 2000; i++ {
		d.enqueue(signal(":1.5"))
	}
	d.enqueue(signal(":1.6"))
	if d.backlog["flooded"] != maxSignalBacklog || d.lost["flooded"] != 2000-maxSignalBacklog {
		t.Errorf("flooded: %d queued, %d lost", d.backlog["flooded"], d.lost["flooded"])
	}
	if d.backlog["quiet"] != 1 || d.lost["quiet"] != 0 {
		t.Errorf("quiet: %d queued, %d lost after the flood", d.backlog["quiet"], d.lost["quiet"])
	}
	var got []string
	for _, it := range d.queue {
		d.route(func(p string, _ capability.Event) bool { got = append(got, p); return true }, it)
	}
	if len(got) != maxSignalBacklog+1 || got[len(got)-1] != "quiet" || len(d.backlog) != 0 {
		t.Errorf("delivered %d, last %q; backlog after %v", len(got), got[len(got)-1], d.backlog)
	}
}
