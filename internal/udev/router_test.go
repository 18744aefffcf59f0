package udev

import (
	"fmt"
	"strings"
	"testing"
)

func TestGlob(t *testing.T) {
	cases := []struct {
		pattern, s string
		want       bool
	}{
		{"sd*", "sdb1", true},
		{"sd*", "sda", true},
		{"sd*", "nvme0n1", false},
		{"sd?", "sdb", true},
		{"sd?", "sdb1", false},
		{"sd[a-c]1", "sdb1", true},
		{"sd[!a-c]1", "sdb1", false},
		{"sd[!a-c]1", "sdd1", true},
		{"sd[^a]", "sdb", true},
		{"[]x]", "]", true},
		{"MEDIA*", "MEDIA", true},
		{"MEDIA*", "media", false},
		{"*", "", true},
		{"?*", "", false},
		{"", "", true},
		{"", "x", false},
		{"vfat|exfat|ext[234]", "ext4", true},
		{"vfat|exfat|ext[234]", "ext5", false},
		{"vfat|exfat", "exfat", true},
		{"*/by-label/*", "/dev/disk/by-label/MEDIA", true}, // * crosses "/", as in udev
		{`a\*b`, "a*b", true},
		{`a\*b`, "axb", false},
		{"*a*b*c*", "xxaxxbxxcxx", true},
		{"*a*b*c*", "xxaxxcxxbxx", false},
		{"a*a*a*a*b", strings.Repeat("a", 40), false},
	}
	for _, c := range cases {
		g, err := compileGlob(c.pattern)
		if err != nil {
			t.Fatalf("%q: %v", c.pattern, err)
		}
		if got := g.match(c.s); got != c.want {
			t.Errorf("%q matching %q = %v, want %v", c.pattern, c.s, got, c.want)
		}
	}
	for _, bad := range []string{"sd[a-", `x\`, "a||b", "|", "[]"} {
		if _, err := compileGlob(bad); err == nil {
			t.Errorf("%q compiled; want an error", bad)
		}
	}
}

func mustGlob(s string) *glob {
	g, err := compileGlob(s)
	if err != nil {
		panic(err)
	}
	return g
}

func TestRouterMatch(t *testing.T) {
	rules := map[string]Rules{
		"automount": {{Actions: []string{"add", "remove"}, Subsystem: "block", DevType: "partition",
			Props: []propMatch{{"ID_FS_LABEL", mustGlob("MEDIA*")}}}},
		"disks":    {{Subsystem: "block", DevType: "disk"}},
		"anything": {{}},
		"adds":     {{Actions: []string{"add"}}},
		"sd-only":  {{Subsystem: "block", Kernel: mustGlob("sd*")}},
		// Two rules of one plugin that both match: one delivery.
		"twice": {{Subsystem: "block"}, {Actions: []string{"add"}, Subsystem: "block"}},
		"usb": {{Subsystem: "usb", DevType: "usb_device", Props: []propMatch{
			{"ID_VENDOR_ID", mustGlob("0781")}, {"DEVNAME", mustGlob("/dev/bus/usb/*")}}}},
		"unlabelled": {{Subsystem: "block", Props: []propMatch{{"ID_FS_LABEL", mustGlob("")}}}},
		"net-gone":   {{Actions: []string{"remove"}, Subsystem: "net"}},
	}
	r := NewRouter(rules)
	part := func(action, label string) UEvent {
		e := UEvent{Action: action, Subsystem: "block", DevType: "partition", DevPath: "/devices/x/block/sdb/sdb1", DevName: "/dev/sdb1"}
		if label != "" {
			e.Props = map[string]string{"ID_FS_LABEL": label}
		}
		return e
	}
	cases := []struct {
		name string
		ev   UEvent
		want string
	}{
		{"labelled partition add", part("add", "MEDIA1"), "adds anything automount sd-only twice"},
		{"labelled partition remove", part("remove", "MEDIA1"), "anything automount sd-only twice"},
		{"other label", part("add", "BACKUP"), "adds anything sd-only twice"},
		{"no label", part("change", ""), "anything sd-only twice unlabelled"},
		{"disk", UEvent{Action: "add", Subsystem: "block", DevType: "disk", DevPath: "/devices/virtual/block/loop0"}, "adds anything disks twice unlabelled"},
		{"usb stick", UEvent{Action: "bind", Subsystem: "usb", DevType: "usb_device", DevPath: "/devices/usb1/1-2", DevName: "/dev/bus/usb/001/005",
			Props: map[string]string{"ID_VENDOR_ID": "0781"}}, "anything usb"},
		{"usb other vendor", UEvent{Action: "bind", Subsystem: "usb", DevType: "usb_device", DevPath: "/devices/usb1/1-2",
			Props: map[string]string{"ID_VENDOR_ID": "046d"}}, "anything"},
		{"tty", UEvent{Action: "add", Subsystem: "tty", DevPath: "/devices/virtual/tty/ttyS0"}, "adds anything"},
	}
	seen := make([]bool, len(r.Plugins()))
	disk := UEvent{Action: "add", Subsystem: "block", DevType: "disk", DevPath: "/devices/pci0000:00/virtio1/block/vda"}
	if only := NewRouter(map[string]Rules{"automount": rules["automount"]}); only.Candidate(&disk) || !only.Candidate(&UEvent{Action: "add", Subsystem: "block", DevType: "partition"}) {
		t.Error("Candidate: a partition rule must make a partition, and not a disk, worth probing")
	}
	for _, c := range cases {
		var got []string
		for _, i := range r.Match(&c.ev, nil, seen) {
			got = append(got, r.Plugins()[i])
		}
		if g := strings.Join(got, " "); g != c.want {
			t.Errorf("%s: matched %q, want %q", c.name, g, c.want)
		}
		for _, s := range seen {
			if s {
				t.Fatalf("%s: scratch left dirty", c.name)
			}
		}
		// MatchPlugin, used by a single plugin's coldplug, agrees.
		for i, p := range r.Plugins() {
			if m := r.MatchPlugin(i, &c.ev); m != strings.Contains(" "+c.want+" ", " "+p+" ") {
				t.Errorf("%s: MatchPlugin(%s) = %v, disagrees with Match", c.name, p, m)
			}
		}
	}
	// Coldplug scans the subsystems of rules that accept add; a rule
	// without a subsystem means all of them.
	if !r.anySubsystem || !r.subsystems["block"] || !r.subsystems["usb"] || r.subsystems["net"] {
		t.Errorf("coldplug set: any=%v %v; want any, block and usb, and not net (remove only)", r.anySubsystem, r.subsystems)
	}
}

// BenchmarkRouter measures matching one partition event against 1, 10 and
// 100 plugins, where each plugin has a block rule and a rule on another
// subsystem, and one in ten matches the event's label.
func BenchmarkRouter(b *testing.B) {
	subs := []string{"block", "usb", "tty", "net", "input", "sound", "hidraw", "power_supply", "scsi", "drm"}
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("plugins=%d", n), func(b *testing.B) {
			rules := map[string]Rules{}
			for i := range n {
				label := fmt.Sprintf("OTHER%d*", i)
				if i%10 == 0 {
					label = "MEDIA*"
				}
				rules[fmt.Sprintf("p%03d", i)] = Rules{
					{Actions: []string{"add", "remove"}, Subsystem: "block", DevType: "partition", Props: []propMatch{{"ID_FS_LABEL", mustGlob(label)}}},
					{Subsystem: subs[i%len(subs)], Kernel: mustGlob("x*")},
				}
			}
			r := NewRouter(rules)
			ev := UEvent{Action: "add", Subsystem: "block", DevType: "partition", DevPath: "/devices/x/block/sdb/sdb1",
				DevName: "/dev/sdb1", Props: map[string]string{"ID_FS_LABEL": "MEDIA", "ID_FS_TYPE": "vfat"}}
			seen := make([]bool, n)
			dst := make([]int, 0, n)
			b.ReportAllocs()
			b.ResetTimer()
			matched := 0
			for b.Loop() {
				matched = len(r.Match(&ev, dst[:0], seen))
			}
			if want := (n + 9) / 10; matched != want {
				b.Fatalf("matched %d plugins, want %d", matched, want)
			}
		})
	}
}
