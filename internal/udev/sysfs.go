package udev

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// scanSysfs returns a synthetic add for each device of the given
// subsystems (all of them if all is set) found under root (/sys), in
// DEVPATH order, so that a parent comes before its children as in a real
// plug. It reads /sys and never writes a device's uevent file, which would
// make udevd and every other listener run their rules again.
func scanSysfs(root string, subsystems map[string]bool, all bool) []UEvent {
	var dirs []string
	if all {
		c, _ := filepath.Glob(filepath.Join(root, "class", "*"))
		b, _ := filepath.Glob(filepath.Join(root, "bus", "*", "devices"))
		dirs = append(c, b...)
	} else {
		for s := range subsystems {
			if strings.ContainsAny(s, `/*?[\`) {
				continue
			}
			dirs = append(dirs, filepath.Join(root, "class", s), filepath.Join(root, "bus", s, "devices"))
		}
	}
	seen := map[string]bool{}
	var out []UEvent
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue // no such class or bus on this machine
		}
		for _, en := range entries {
			real, err := filepath.EvalSymlinks(filepath.Join(d, en.Name()))
			if err != nil {
				continue // unplugged while we looked
			}
			devpath, ok := strings.CutPrefix(real, root)
			if !ok || seen[devpath] {
				continue
			}
			seen[devpath] = true
			ev, ok := readDevice(real, devpath)
			if ok && (all || subsystems[ev.Subsystem]) {
				out = append(out, ev)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].DevPath < out[j].DevPath })
	return out
}

// readDevice builds an add event from a device's sysfs directory: its
// uevent file holds what the kernel would send, less ACTION, DEVPATH,
// SUBSYSTEM and SEQNUM.
func readDevice(dir, devpath string) (UEvent, bool) {
	sub, err := os.Readlink(filepath.Join(dir, "subsystem"))
	if err != nil {
		return UEvent{}, false
	}
	b, err := os.ReadFile(filepath.Join(dir, "uevent"))
	if err != nil {
		return UEvent{}, false
	}
	ev := UEvent{Action: "add", DevPath: devpath, Subsystem: filepath.Base(sub)}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && k != "" && k != keyAction && k != keyDevPath && k != keySubsystem {
			ev.set(k, v)
		}
	}
	return ev, true
}
