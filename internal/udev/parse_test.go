package udev

import (
	"bytes"
	"encoding/binary"
	"os"
	"reflect"
	"strings"
	"testing"
)

// A real kernel message (udevadm's KERNEL view of a loop partition), and
// the cases go-udev's own parser gets wrong.
var kernelMessages = []struct {
	name string
	msg  string
	want UEvent
	err  string
}{
	{name: "partition add",
		msg: "add@/devices/virtual/block/loop0/loop0p1\x00ACTION=add\x00DEVPATH=/devices/virtual/block/loop0/loop0p1\x00SUBSYSTEM=block\x00MAJOR=259\x00MINOR=0\x00DEVNAME=loop0p1\x00DEVTYPE=partition\x00DISKSEQ=17\x00PARTN=1\x00SEQNUM=3046\x00",
		want: UEvent{Action: "add", DevPath: "/devices/virtual/block/loop0/loop0p1", Subsystem: "block", DevType: "partition", DevName: "/dev/loop0p1", SeqNum: "3046",
			Props: map[string]string{"MAJOR": "259", "MINOR": "0", "DISKSEQ": "17", "PARTN": "1"}}},
	{name: "@ in the device path (device tree)",
		msg:  "bind@/devices/platform/soc@0/32f10100.usb\x00ACTION=bind\x00DEVPATH=/devices/platform/soc@0/32f10100.usb\x00SUBSYSTEM=platform\x00DRIVER=imx8mq-usb-phy\x00SEQNUM=12\x00",
		want: UEvent{Action: "bind", DevPath: "/devices/platform/soc@0/32f10100.usb", Subsystem: "platform", SeqNum: "12", Props: map[string]string{"DRIVER": "imx8mq-usb-phy"}}},
	{name: "= in a value",
		msg:  "change@/devices/virtual/misc/x\x00ACTION=change\x00DEVPATH=/devices/virtual/misc/x\x00SUBSYSTEM=misc\x00EVENT=a=b=c\x00",
		want: UEvent{Action: "change", DevPath: "/devices/virtual/misc/x", Subsystem: "misc", Props: map[string]string{"EVENT": "a=b=c"}}},
	{name: "header only", msg: "remove@/devices/x\x00", want: UEvent{Action: "remove", DevPath: "/devices/x"}},
	{name: "no NUL", msg: "add@/devices/x", err: "no header"},
	{name: "no @", msg: "add/devices/x\x00", err: "not action@devpath"},
	{name: "not KEY=VALUE", msg: "add@/devices/x\x00JUNK\x00", err: "not KEY=VALUE"},
	{name: "header disagrees", msg: "add@/devices/x\x00ACTION=remove\x00", err: "disagrees"},
	{name: "upper-case action", msg: "ADD@/devices/x\x00", err: "ACTION="},
}

func TestParseUEventKernel(t *testing.T) {
	for _, c := range kernelMessages {
		got, err := ParseUEvent([]byte(c.msg))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err = %v, want %q", c.name, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if c.want.Props == nil {
			c.want.Props = got.Props
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", c.name, got, c.want)
		}
	}
}

// libudevMessage builds what udevd sends on netlink group 2.
func libudevMessage(props string) []byte {
	h := make([]byte, 40)
	copy(h, "libudev\x00")
	binary.BigEndian.PutUint32(h[8:], 0xfeedcafe)
	binary.NativeEndian.PutUint32(h[12:], 40)
	binary.NativeEndian.PutUint32(h[16:], 40)
	binary.NativeEndian.PutUint32(h[20:], uint32(len(props)))
	return append(h, props...)
}

func TestParseUEventUdevd(t *testing.T) {
	msg := libudevMessage("ACTION=add\x00DEVPATH=/devices/x/block/sdb/sdb1\x00SUBSYSTEM=block\x00DEVNAME=/dev/sdb1\x00DEVTYPE=partition\x00ID_FS_LABEL=MEDIA\x00ID_FS_TYPE=vfat\x00SEQNUM=9\x00")
	got, err := ParseUEvent(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := UEvent{Action: "add", DevPath: "/devices/x/block/sdb/sdb1", Subsystem: "block", DevType: "partition", DevName: "/dev/sdb1", SeqNum: "9",
		Props: map[string]string{"ID_FS_LABEL": "MEDIA", "ID_FS_TYPE": "vfat"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	bad := libudevMessage("ACTION=add\x00")
	binary.NativeEndian.PutUint32(bad[20:], 4096)
	if _, err := ParseUEvent(bad); err == nil {
		t.Error("properties past the end were accepted")
	}
	bad = libudevMessage("ACTION=add\x00DEVPATH=/x\x00")
	binary.BigEndian.PutUint32(bad[8:], 0xcafefeed)
	if _, err := ParseUEvent(bad); err == nil {
		t.Error("a bad magic was accepted")
	}
}

// FuzzParseUEvent: no input panics, and what parses survives a trip
// through the kernel's wire format unchanged.
func FuzzParseUEvent(f *testing.F) {
	for _, c := range kernelMessages {
		f.Add([]byte(c.msg))
	}
	f.Add(libudevMessage("ACTION=add\x00DEVPATH=/devices/x\x00SUBSYSTEM=block\x00ID_FS_LABEL=A B\x00"))
	f.Fuzz(func(t *testing.T, msg []byte) {
		e, err := ParseUEvent(msg)
		if err != nil {
			return
		}
		again, err := ParseUEvent(AppendKernelMessage(nil, &e))
		if err != nil {
			t.Fatalf("re-encoded event does not parse: %v\n%+v", err, e)
		}
		if !sameEvent(e, again) {
			t.Fatalf("round trip changed the event:\n%+v\n%+v", e, again)
		}
	})
}

func sameEvent(a, b UEvent) bool {
	if len(a.Props) == 0 && len(b.Props) == 0 {
		a.Props, b.Props = nil, nil
	}
	return reflect.DeepEqual(a, b)
}

func TestParseReplaySample(t *testing.T) {
	b, err := os.ReadFile("testdata/usb-stick.udev")
	if err != nil {
		t.Fatal(err)
	}
	all, err := ParseReplay(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 22 {
		t.Fatalf("%d events, want 22 (11 KERNEL, 11 UDEV)", len(all))
	}
	evs := replayEvents(all)
	var got []string
	for _, ev := range evs {
		if ev.Source != "UDEV" {
			t.Fatalf("replay picked a %s event; want only UDEV when there are any", ev.Source)
		}
		got = append(got, ev.Event.Action+" "+ev.Event.Subsystem+"/"+ev.Event.DevType)
	}
	want := "add usb/usb_device,add usb/usb_interface,add scsi/scsi_device,add block/disk,add block/partition,change block/disk," +
		"remove block/partition,remove block/disk,remove scsi/scsi_device,remove usb/usb_interface,remove usb/usb_device"
	if g := strings.Join(got, ","); g != want {
		t.Errorf("events:\n got %s\nwant %s", g, want)
	}
	p := evs[4].Event
	if p.DevName != "/dev/sdb1" || p.Props["ID_FS_LABEL"] != "MEDIA" || p.Props["ID_FS_TYPE"] != "vfat" || p.SeqNum != "4715" {
		t.Errorf("partition: %+v", p)
	}
	if k := replayEvents(all[:1]); k[0].Event.DevName != "/dev/bus/usb/001/005" {
		t.Errorf("a KERNEL DEVNAME is made absolute as udevd's; got %q", k[0].Event.DevName)
	}
	if evs[1].Time-evs[0].Time <= 0 {
		t.Error("timestamps not increasing")
	}
}

func TestParseReplayErrors(t *testing.T) {
	cases := []struct{ name, text, err string }{
		{"not a property", "UDEV  [1.000000] add      /devices/x (block)\nACTION=add\nnonsense\n", "line 3: \"nonsense\" is not KEY=VALUE"},
		{"disagreeing action", "UDEV  [1.000000] add      /devices/x (block)\nACTION=remove\n", "line 2: ACTION=remove disagrees with the header on line 1"},
		{"disagreeing subsystem", "KERNEL[1.000000] add      /devices/x (block)\nSUBSYSTEM=usb\n", "line 2: SUBSYSTEM=usb disagrees"},
		{"long line", "UDEV  [1.000000] add      /devices/x (block)\nX=" + strings.Repeat("y", maxReplayLine) + "\n", "line 2: longer than"},
	}
	for _, c := range cases {
		_, err := ParseReplay(strings.NewReader(c.text))
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.err)
		}
	}
	// The banner, comments and an unknown subsystem are fine.
	evs, err := ParseReplay(strings.NewReader("monitor will print the received events for:\nKERNEL - the kernel uevent\n\n# note\nKERNEL[5.000001] online   /devices/system/cpu/cpu1 (n/a)\n"))
	if err != nil || len(evs) != 1 || evs[0].Event.Subsystem != "" || evs[0].Event.Action != "online" {
		t.Errorf("got %+v, %v", evs, err)
	}
}

// FuzzParseReplay: no input panics, and what parses is written back by
// AppendReplay to text that parses to the same events.
func FuzzParseReplay(f *testing.F) {
	f.Add([]byte("KERNEL[1.000000] add      /devices/x (block)\nDEVNAME=sda\n\nUDEV  [2.500000] remove   /devices/x (n/a)\n"))
	f.Fuzz(func(t *testing.T, text []byte) {
		evs, err := ParseReplay(bytes.NewReader(text))
		if err != nil {
			return
		}
		var out []byte
		for _, ev := range evs {
			out = AppendReplay(out, ev)
		}
		again, err := ParseReplay(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("written replay does not parse: %v\n%s", err, out)
		}
		if len(again) != len(evs) {
			t.Fatalf("%d events became %d", len(evs), len(again))
		}
		for i := range evs {
			a, b := evs[i], again[i]
			a.Line, b.Line = 0, 0
			if a.Source != b.Source || a.Time != b.Time || !sameEvent(a.Event, b.Event) {
				t.Fatalf("event %d changed:\n%+v\n%+v", i, a, b)
			}
		}
	})
}
