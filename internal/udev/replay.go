package udev

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ReplayEvent is one block of `udevadm monitor --property` output.
type ReplayEvent struct {
	Source string        // "KERNEL" or "UDEV"
	Time   time.Duration // the monotonic timestamp udevadm printed
	Line   int           // of the header, for messages
	Event  UEvent
}

// Limits on a replay file, so that a wrong path (a disk image, /dev/zero)
// fails fast instead of filling memory.
const (
	maxReplayLine = 64 << 10
	maxReplaySize = 16 << 20
)

// The header udevadm prints for each event:
// "%-6s[%lu.%06lu] %-8s %s (%s)", as in "UDEV  [1234.567890] add      /devices/... (block)".
var replayHeader = regexp.MustCompile(`^(KERNEL|UDEV) *\[(\d{1,9})\.(\d{6})\] +([a-z]+) +(/\S*) +\((\S*)\)$`)

// ParseReplay reads the text of `udevadm monitor --property` (or
// --kernel/--udev with --property): a banner, then blocks that start with a
// KERNEL[...] or UDEV [...] header and hold KEY=VALUE lines, separated by
// blank lines. Lines starting with "#" are comments. Errors name the line.
func ParseReplay(r io.Reader) ([]ReplayEvent, error) {
	sc := bufio.NewScanner(io.LimitReader(r, maxReplaySize+1))
	sc.Buffer(make([]byte, 4096), maxReplayLine)
	var (
		out   []ReplayEvent
		cur   *ReplayEvent
		line  int
		total int
	)
	finish := func() error {
		if cur == nil {
			return nil
		}
		e := &cur.Event
		if e.Action == "" || e.DevPath == "" {
			return fmt.Errorf("line %d: event has no ACTION or DEVPATH", cur.Line)
		}
		out = append(out, *cur)
		cur = nil
		return nil
	}
	for sc.Scan() {
		line++
		text := sc.Text()
		total += len(text) + 1
		if total > maxReplaySize {
			return nil, fmt.Errorf("line %d: replay larger than %d MiB", line, maxReplaySize>>20)
		}
		switch {
		case text == "":
			if err := finish(); err != nil {
				return nil, err
			}
			continue
		case text[0] == '#':
			continue
		}
		if m := replayHeader.FindStringSubmatch(text); m != nil {
			if err := finish(); err != nil {
				return nil, err
			}
			sec, _ := strconv.ParseInt(m[2], 10, 64)
			usec, _ := strconv.ParseInt(m[3], 10, 64)
			cur = &ReplayEvent{Source: m[1], Time: time.Duration(sec)*time.Second + time.Duration(usec)*time.Microsecond, Line: line}
			cur.Event.Action, cur.Event.DevPath = m[4], m[5]
			if m[6] != "n/a" {
				cur.Event.Subsystem = m[6]
			}
			continue
		}
		if cur == nil {
			continue // udevadm's banner, before the first event
		}
		k, v, ok := strings.Cut(text, "=")
		if !ok || !validPropName(k) {
			return nil, fmt.Errorf("line %d: %q is not KEY=VALUE (or a blank line is missing before the next event)", line, text)
		}
		e := &cur.Event
		switch {
		case k == keyAction && v != e.Action, k == keyDevPath && v != e.DevPath:
			return nil, fmt.Errorf("line %d: %s=%s disagrees with the header on line %d", line, k, v, cur.Line)
		case k == keySubsystem && v != e.Subsystem:
			return nil, fmt.Errorf("line %d: SUBSYSTEM=%s disagrees with the header's (%s) on line %d", line, v, e.Subsystem, cur.Line)
		}
		e.set(k, v)
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, fmt.Errorf("line %d: longer than %d KiB", line+1, maxReplayLine>>10)
		}
		return nil, err
	}
	if err := finish(); err != nil {
		return nil, err
	}
	return out, nil
}

// AppendReplay appends ev in the format ParseReplay reads, as udevadm
// prints it, with a blank line after.
func AppendReplay(dst []byte, ev ReplayEvent) []byte {
	sub := ev.Event.Subsystem
	if sub == "" {
		sub = "n/a"
	}
	us := ev.Time / time.Microsecond
	dst = fmt.Appendf(dst, "%-6s[%d.%06d] %-8s %s (%s)\n", ev.Source, us/1e6, us%1e6, ev.Event.Action, ev.Event.DevPath, sub)
	for _, f := range ev.Event.Record() {
		if len(f.Value) == 0 {
			if _, ok := ev.Event.Props[f.Key]; !ok {
				continue
			}
		}
		dst = append(dst, f.Key...)
		dst = append(dst, '=')
		dst = append(dst, f.Value...)
		dst = append(dst, '\n')
	}
	return append(dst, '\n')
}

// replayEvents picks the events a replay delivers: the UDEV ones when the
// recording has any (udevd's view, with its properties), otherwise the
// KERNEL ones, so that a recording of both does not deliver each twice.
func replayEvents(all []ReplayEvent) []ReplayEvent {
	var udev, kernel []ReplayEvent
	for _, ev := range all {
		if ev.Source == "UDEV" {
			udev = append(udev, ev)
		} else {
			kernel = append(kernel, ev)
		}
	}
	if len(udev) > 0 {
		return udev
	}
	return kernel
}

// maxReplayGap caps a recorded pause, so that a recording spanning an
// afternoon still plays in a sensible time on the simulated device.
const maxReplayGap = 3 * time.Second

// replaySource plays a recording, once, at its recorded pace (gaps capped)
// or instantly.
type replaySource struct {
	name    string
	events  []ReplayEvent
	instant bool
}

func (s *replaySource) String() string { return "replay " + s.name }

func (s *replaySource) run(ctx context.Context, emit func(UEvent)) error {
	t := time.NewTimer(0)
	defer t.Stop()
	<-t.C
	for i, ev := range s.events {
		if !s.instant && i > 0 {
			gap := min(max(ev.Time-s.events[i-1].Time, 0), maxReplayGap)
			t.Reset(gap)
			select {
			case <-t.C:
			case <-ctx.Done():
				return nil
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		emit(ev.Event.clone())
	}
	<-ctx.Done() // the recording is over; the device stays as it left it
	return nil
}

// parseReplayBytes is ParseReplay for a file already in memory.
func parseReplayBytes(b []byte) ([]ReplayEvent, error) { return ParseReplay(bytes.NewReader(b)) }

func (s *replaySource) open() error { return nil }
func (s *replaySource) close()      {}
