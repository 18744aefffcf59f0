package mount

import (
	"strings"
	"testing"

	"github.com/airlockhq/airlock/host/manifest"
)

func TestRefuseDisk(t *testing.T) {
	stick := &Device{Node: "/dev/sdb1", Disk: "sdb", DevPath: "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb1"}
	card := &Device{Node: "/dev/mmcblk1p1", Disk: "mmcblk1", Removable: true, DevPath: "/devices/platform/sdhci/mmc_host/mmc1/mmc1:aaaa/block/mmcblk1/mmcblk1p1"}
	sata := &Device{Node: "/dev/sda2", Disk: "sda", DevPath: "/devices/pci0000:00/0000:00:17.0/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda2"}
	loop := &Device{Node: "/dev/loop3p1", Disk: "loop3", Loop: true, DevPath: "/devices/virtual/block/loop3/loop3p1"}
	cases := []struct {
		disks []string
		d     *Device
		want  string // "" for allowed
	}{
		{nil, stick, ""},
		{nil, card, ""},
		{nil, sata, `/dev/sda2 is on disk sda, neither removable nor on USB, and [mount] disks in runtime.toml gives out only removable (add "sda" to it`},
		{nil, loop, "a loop device"},
		{[]string{"removable", "loop"}, loop, ""},
		{[]string{"loop3"}, loop, ""},
		{[]string{"loop4"}, loop, "gives out only loop4"},
		{[]string{"loop"}, stick, "gives out only loop"},
		{[]string{"any"}, sata, ""},
	}
	for _, c := range cases {
		var cfg *Config
		if c.disks != nil {
			cfg = &Config{Disks: c.disks}
		}
		got := cfg.refuseDisk(c.d)
		if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
			t.Errorf("disks %v, %s: %q, want %q", c.disks, c.d.Node, got, c.want)
		}
	}
}

func TestDisksConfig(t *testing.T) {
	sections := map[string]manifest.SectionFunc{"mount": (&Mount{}).DecodeConfig}
	rt, err := manifest.ParseRuntime("runtime.toml", []byte("[mount]\ndisks = [\"removable\", \"sdc\"]\n"), sections)
	if err != nil {
		t.Fatal(err)
	}
	if c := rt.Sections["mount"].(*Config); strings.Join(c.Disks, ",") != "removable,sdc" {
		t.Errorf("disks %v", c.Disks)
	}
	for text, want := range map[string]string{
		"[mount]\ndisks = [\"/dev/sdc\"]\n": `runtime.toml:2: mount.disks: entry 0: "/dev/sdc" is not a disk class or a kernel disk name (list "removable", "loop", "any" or kernel disk names such as "sdb")`,
		"[mount]\ndisks = []\n":             `runtime.toml:2: mount.disks: no disks may be mounted`,
	} {
		if _, err := manifest.ParseRuntime("runtime.toml", []byte(text), sections); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v\nwant %s", text, err, want)
		}
	}
	if strings.Join(DefaultDisks, ",") != "removable" {
		t.Errorf("decoding changed DefaultDisks: %v", DefaultDisks)
	}
}
