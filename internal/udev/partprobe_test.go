package udev

import (
	"testing"

	"github.com/airlockhq/airlock/internal/blockdev"
	"github.com/airlockhq/airlock/internal/testenv"
)

// A partition's event gets its entry in its disk's table, so that rules
// can match ID_PART_ENTRY_NAME (PARTLABEL) and ID_PART_ENTRY_UUID
// (PARTUUID), with the values blkid gives.
func TestProbeNodePartitionEntry(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach a GPT loop device")
	img := tl.PartitionImage(t, t.TempDir(), "gpt.img", 32<<20, "label: gpt\nsize=8M, type=L, name=\"AIR entry\"\nsize=8M, type=L\n")
	dev := tl.Attach(t, img, 2)
	node := "/dev/" + dev + "p1"
	p, err := probeProps(node)
	if err != nil {
		t.Fatal(err)
	}
	want := testenv.Run(t, tl.Blkid, "-p", "-o", "value", "-s", "PART_ENTRY_UUID", node)
	if p["ID_PART_ENTRY_UUID"] != want || want == "" || p["ID_PART_ENTRY_NAME"] != `AIR\x20entry` || p["ID_PART_ENTRY_NUMBER"] != "1" {
		t.Errorf("probe of %s = %v, want ID_PART_ENTRY_UUID=%s and the name", node, p, want)
	}
}

// probeProps probes node as an event's device is probed.
func probeProps(node string) (map[string]string, error) {
	r, err := blockdev.ProbeNode(node, blockdev.Timeout, nil)
	return r.Properties(), err
}
