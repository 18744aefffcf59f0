package udev

import (
	"slices"
	"testing"
)

func TestRulesDescribe(t *testing.T) {
	rs := Rules{
		{Subsystem: "block", DevType: "partition", Actions: []string{"add", "remove"}, Props: []propMatch{{"ID_BUS", mustGlob("usb")}}},
		{Subsystem: "net", Kernel: mustGlob("wlan*")},
	}
	want := []string{
		"is woken by block partitions being added or removed (ID_BUS is usb)",
		"is woken by net devices changing in any way (named wlan*)",
	}
	if got := rs.Describe(); !slices.Equal(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
}
