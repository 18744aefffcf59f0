package udev

import (
	_ "embed"
	"fmt"
	"os"
	"path/filepath"

	"github.com/airlockhq/airlock/host/manifest"
)

// Config is the [udev] section of runtime.toml.
type Config struct {
	// Source is where events come from: "auto" (replay on the simulated
	// device; udev when a udevd runs in our network namespace, else kernel),
	// "kernel" (netlink group 1), "udev" (group 2, after udevd's rules) or
	// "replay".
	Source string
	// Replay is the recording to play (absolute), or "" for the built-in
	// USB-stick scenario.
	Replay string
	// Instant plays the recording without its pauses (tests, benchmarks).
	Instant  bool
	Coldplug bool // synthesise add for devices present at start and on load
	Probe    bool // read ID_FS_* from superblocks when an event lacks them
	// ReceiveBuffer is the netlink socket's receive queue (DefaultReceiveBuffer).
	ReceiveBuffer manifest.Size

	events []ReplayEvent // the parsed recording, when Source is "replay"
}

type configTOML struct {
	Source     string `toml:"source"`
	Replay     string `toml:"replay"`
	ReplayPace string `toml:"replay_pace"`
	Coldplug   bool   `toml:"coldplug"`
	Probe      bool   `toml:"probe"`
	// ReceiveBuffer is receive_buffer, such as "16MiB".
	ReceiveBuffer manifest.Size `toml:"receive_buffer"`
}

// DefaultReceiveBuffer is the netlink socket's receive queue unless [udev]
// receive_buffer says otherwise. The kernel charges each queued uevent its
// buffer's true size: on x86-64 a 256 KiB queue held more than 400 of a
// loop disk's kernel uevents while the reader was stalled (under 640 bytes
// each; an add with a few more properties is under 1 KiB). 16 MiB so holds
// upward of 16,000: more than a whole-device `udevadm trigger` on an
// embedded board (500 to 3,000 devices), and a USB hub of disks and
// partitions (tens) many times over, while the reader is stalled for
// seconds (a slow superblock probe, a page-in). It is a limit, not an
// allocation: the memory is used only while events wait. go-udev's 2 MiB
// overflowed at about 46,000 kernel events a second in issue 16's storm;
// systemd-udevd asks 128 MiB for a whole system's rules, while the host
// only routes. The host asks with SO_RCVBUFFORCE, which as root passes
// net.core.rmem_max (4 MiB here); without root the kernel caps it there,
// and the host says so in its log.
const DefaultReceiveBuffer manifest.Size = 16 << 20

// DefaultConfig is what an absent [udev] section means.
func DefaultConfig() Config {
	return Config{Source: "auto", Coldplug: true, Probe: true, ReceiveBuffer: DefaultReceiveBuffer}
}

// sampleReplay is the simulated device's scenario: a USB stick with a FAT
// partition labelled MEDIA is plugged in, then pulled out.
//
//go:embed testdata/usb-stick.udev
var sampleReplay []byte

var errBadConfig = fmt.Errorf("bad [udev] section")

// NoReplay as [udev] replay plays no recording: with source = "replay",
// events come only from Inject (the simulated device's scenario, or a test
// harness).
const NoReplay = "none"

// SampleReplay returns the events of the built-in USB-stick recording, as a
// replay source would play them.
func SampleReplay() ([]ReplayEvent, error) {
	evs, err := parseReplayBytes(sampleReplay)
	return replayEvents(evs), err
}

func decodeConfig(s manifest.Section) (*Config, error) {
	t := configTOML{Coldplug: true, Probe: true}
	if !s.Decode(&t) {
		return nil, errBadConfig
	}
	c := DefaultConfig()
	ok := true
	if t.Source != "" {
		c.Source = t.Source
	}
	switch c.Source {
	case "auto", "kernel", "udev", "replay":
	default:
		ok = false
		hint := `use "auto", "kernel" (netlink uevents, the usual choice in containers), "udev" (after a udevd's rules) or "replay"`
		if m := closest(c.Source, []string{"auto", "kernel", "udev", "replay"}); m != "" {
			hint = fmt.Sprintf("did you mean %q? ", m) + hint
		}
		s.Errorf("source", hint, "unknown source %q", c.Source)
	}
	switch t.ReplayPace {
	case "", "recorded":
	case "instant":
		c.Instant = true
	default:
		ok = false
		s.Errorf("replay_pace", `use "recorded" to keep the recording's pauses, each cut to 3s at most, or "instant"`, "unknown pace %q", t.ReplayPace)
	}
	c.Coldplug, c.Probe = t.Coldplug, t.Probe
	if t.ReceiveBuffer != 0 {
		// The kernel's floor is a few KiB; a test asks for that on purpose.
		if t.ReceiveBuffer < 4<<10 || t.ReceiveBuffer > 1<<30 {
			ok = false
			s.Errorf("receive_buffer", "use 4KiB to 1GiB; the default, 16MiB, holds a device's real bursts", "%s is out of range", t.ReceiveBuffer)
		}
		c.ReceiveBuffer = t.ReceiveBuffer
	}
	if t.Replay == NoReplay {
		// Events come only from Inject: a scenario or a test harness.
		c.Replay = NoReplay
	} else if t.Replay != "" {
		c.Replay = t.Replay
		if !filepath.IsAbs(c.Replay) {
			c.Replay = filepath.Join(filepath.Dir(s.File()), c.Replay)
		}
		if c.Source != "replay" && c.Source != "auto" {
			ok = false
			s.Errorf("replay", `set source = "replay" to play it, or remove replay`, "a recording is only played with source = \"replay\"")
		}
	}
	// Read the recording now, so that a bad one is reported with the
	// config's other problems instead of when the first plugin subscribes.
	if ok && c.Replay != "" && c.Replay != NoReplay {
		b, err := os.ReadFile(c.Replay)
		if err == nil {
			c.events, err = parseReplayBytes(b)
		}
		if err != nil {
			ok = false
			s.Errorf("replay", "record one with: udevadm monitor --property > file", "%s: %v", c.Replay, err)
		}
	}
	if !ok {
		return nil, errBadConfig
	}
	return &c, nil
}

// recording returns the events a replay source plays.
func (c *Config) recording() ([]ReplayEvent, string, error) {
	if c.Replay == NoReplay {
		return nil, "no recording (events are injected)", nil
	}
	if c.Replay != "" {
		if c.events == nil {
			b, err := os.ReadFile(c.Replay)
			if err != nil {
				return nil, "", err
			}
			if c.events, err = parseReplayBytes(b); err != nil {
				return nil, "", fmt.Errorf("%s: %w", c.Replay, err)
			}
		}
		return replayEvents(c.events), c.Replay, nil
	}
	evs, err := parseReplayBytes(sampleReplay)
	return replayEvents(evs), "built-in usb-stick scenario", err
}
