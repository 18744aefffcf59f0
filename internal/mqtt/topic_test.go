package mqtt

import "testing"

func TestCovers(t *testing.T) {
	for _, tc := range []struct {
		g, f string
		want bool
	}{
		{"devices/+/status", "devices/a/status", true},
		{"devices/+/status", "devices/a/b/status", false},
		{"devices/+/status", "devices/+/status", true},
		{"devices/a/status", "devices/+/status", false},
		{"a/+", "a/#", false},
		{"a/#", "a/#", true},
		{"a/#", "a", true},
		{"a/#", "a/b/+/c", true},
		{"a", "a/#", false},
		{"a/+", "a/b", true},
		{"a/+", "a", false},
		{"#", "x/y", true},
		{"#", "$SYS/broker", false},
		{"+/broker", "$SYS/broker", false},
		{"$SYS/#", "$SYS/broker", true},
		{"a/b", "a/b/c", false},
	} {
		if got := covers(tc.g, tc.f); got != tc.want {
			t.Errorf("covers(%q, %q) = %v, want %v", tc.g, tc.f, got, tc.want)
		}
	}
}

func TestCheckFilterAndTopic(t *testing.T) {
	for _, f := range []string{"a/#/b", "a/b#", "a+/b", "", "a\x00b"} {
		if checkFilter(f, 64) == "" {
			t.Errorf("filter %q accepted", f)
		}
	}
	for _, f := range []string{"#", "+", "a/+/b/#", "/", "a//b"} {
		if why := checkFilter(f, 64); why != "" {
			t.Errorf("filter %q refused: %s", f, why)
		}
	}
	for _, tp := range []string{"a/+", "a/#", "", "a\x00", "\xff", "toolong-toolong"} {
		if checkTopic(tp, 10) == "" {
			t.Errorf("topic %q accepted", tp)
		}
	}
}
