package dbus

import (
	"strings"
	"testing"
)

// parseMatch parses a match rule as the D-Bus spec (and dbus-daemon) does:
// key='value' pairs split by commas; inside quotes everything is literal;
// outside, \' is a quote.
func parseMatch(s string) (map[string]string, bool) {
	out := map[string]string{}
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, false
		}
		key := s[:eq]
		s = s[eq+1:]
		var v strings.Builder
		for s != "" && s[0] != ',' {
			switch {
			case s[0] == '\'':
				end := strings.IndexByte(s[1:], '\'')
				if end < 0 {
					return nil, false
				}
				v.WriteString(s[1 : 1+end])
				s = s[end+2:]
			case strings.HasPrefix(s, `\'`):
				v.WriteByte('\'')
				s = s[2:]
			default:
				v.WriteByte(s[0])
				s = s[1:]
			}
		}
		if _, dup := out[key]; dup {
			return nil, false
		}
		out[key] = v.String()
		s = strings.TrimPrefix(s, ",")
	}
	return out, true
}

func ruleFields(r SignalRule) map[string]string {
	m := map[string]string{"type": "signal", "sender": r.Sender}
	for k, v := range map[string]string{"path": r.Path, "path_namespace": r.PathNamespace, "interface": r.Interface, "member": r.Member, "arg0path": r.Arg0Path} {
		if v != "" {
			m[k] = v
		}
	}
	for i, a := range r.Args {
		if a != nil {
			m["arg"+string(rune('0'+i))] = *a
		}
	}
	return m
}

func TestMatchString(t *testing.T) {
	q := "it's, a=rule"
	r := SignalRule{Sender: "org.freedesktop.timedate1", Interface: "org.freedesktop.DBus.Properties", Member: "PropertiesChanged", Args: [maxArgMatch]*string{&q}}
	if _, err := r.validate(); err != nil {
		t.Fatal(err)
	}
	want := `type='signal',sender='org.freedesktop.timedate1',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',arg0='it'\''s, a=rule'`
	if got := r.matchString(); got != want {
		t.Errorf("matchString =\n%s\nwant\n%s", got, want)
	}
}

func TestValidateRefuses(t *testing.T) {
	nul := "a\x00b"
	for _, r := range []SignalRule{
		{},
		{Sender: "org.foo',eavesdrop='true"},
		{Sender: "org.foo.Bar", Path: "/a',interface='x"},
		{Sender: "org.foo.Bar", Interface: "org.foo'"},
		{Sender: "org.foo.Bar", Member: "A,B"},
		{Sender: "org.foo.Bar", Path: "/a", PathNamespace: "/a"},
		{Sender: "org.foo.Bar", Args: [maxArgMatch]*string{&nul}},
	} {
		if _, err := r.validate(); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
}

// FuzzMatchRule: a rule either fails validation, or its match string
// parses back to exactly the fields written, so that no field can smuggle
// another key (eavesdrop='true', a second sender) into AddMatch.
func FuzzMatchRule(f *testing.F) {
	f.Add("org.freedesktop.timedate1", "/org/freedesktop/timedate1", "", "org.freedesktop.DBus.Properties", "PropertiesChanged", "org.freedesktop.timedate1", "")
	f.Add("org.freedesktop.systemd1", "", "/org/freedesktop/systemd1/unit", "", "", "it's", "")
	f.Add("org.foo',eavesdrop='true", "", "", "", "", "", "")
	f.Add(":1.42", "", "", "", "", `\'`, "/a/")
	f.Fuzz(func(t *testing.T, sender, path, ns, iface, member, arg0, arg0path string) {
		r := SignalRule{Sender: sender, Path: path, PathNamespace: ns, Interface: iface, Member: member, Arg0Path: arg0path}
		if arg0 != "" {
			r.Args[0] = &arg0
		}
		if _, err := r.validate(); err != nil {
			return
		}
		got, ok := parseMatch(r.matchString())
		if !ok {
			t.Fatalf("unparseable match string %q", r.matchString())
		}
		want := ruleFields(r)
		if len(got) != len(want) {
			t.Fatalf("match string %q has keys %v, want %v", r.matchString(), got, want)
		}
		for k, v := range want {
			if got[k] != v {
				t.Fatalf("match string %q: %s = %q, want %q", r.matchString(), k, got[k], v)
			}
		}
	})
}
