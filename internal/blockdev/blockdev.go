// Package blockdev is the host's one table of block devices: what sysfs
// says of each (its node, number, disk, whether it is removable or a loop
// device), what its superblock says (probed with internal/udev/probe, each
// probe bounded by a timeout and run outside the table's lock), cached
// until a uevent or sysfs says the device changed. The udev capability
// feeds it every block uevent and probes through it; the mount capability
// looks devices up in it and subscribes to its typed changes, to unmount
// devices that go away.
package blockdev

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/airlockhq/airlock/internal/devnode"
	"github.com/airlockhq/airlock/internal/udev/probe"
)

// Device is a block device with a filesystem, as the host's own probing
// sees it (never /dev/disk/by-label, which needs udevd).
type Device struct {
	Node    string // /dev/sdb1
	Name    string // kernel name: sdb1
	Disk    string // kernel name of the whole disk: sdb (Name for a whole-disk filesystem)
	DevPath string // /devices/..., under /sys
	MajMin  string // "8:17"
	Label   string
	UUID    string
	FSType  string
	// PartUUID and PartLabel: the partition's entry in its disk's table
	// (blkid's PARTUUID and, on GPT, PARTLABEL); empty on a whole disk.
	PartUUID  string
	PartLabel string
	// Loop devices only: whether a detach (losetup -d) was already
	// pending, so that a detach while mounted can be told apart.
	Loop          bool
	LoopAutoclear bool
	// Removable: the kernel marks the disk removable (sysfs removable).
	Removable bool
	// ProbeErr says why the superblock could not be read ("" if it was).
	ProbeErr string
}

// Event is a block device's uevent, as the table needs it: from the
// kernel, udevd, a recording or a simulated device alike.
type Event struct {
	Action  string // add, remove, change, ...
	DevPath string // /devices/..., under /sys
	DevName string // /dev/sdb1
	MajMin  string // "8:17", or "" (a recording)
}

// Change is what a subscriber hears of a block device: its uevent's action
// and what the table knows of it (at least Node, DevPath and MajMin as the
// event gave them).
type Change struct {
	Action string
	Device Device
}

// Table is the block-device table. Its methods are safe for concurrent
// use. Create it with New.
type Table struct {
	sysRoot string
	timeout time.Duration

	mu      sync.Mutex
	nodes   *devnode.Nodes
	devs    map[string]*entry // by DevPath
	subs    map[int]func(Change)
	nextSub int
	wanted  func()
}

// entry is one device: its sysfs facts and its last probe.
type entry struct {
	dev Device // sysfs facts; deviceLocked adds the probed ones
	key string // sysfs identity; a new one means a new medium or image
	// The last probe: of the device as key described it, unless stale (a
	// uevent came since).
	probed, stale bool
	res           probe.Result
	err           error
	// While a probe runs: closed when it ends, and the time it gives up.
	running  chan struct{}
	deadline time.Time
}

// New returns an empty table that reads /sys and probes /dev directly
// until UseNodes.
func New() *Table {
	return &Table{sysRoot: "/sys", timeout: Timeout, devs: map[string]*entry{}, subs: map[int]func(Change){}}
}

// UseNodes makes the table probe through nodes (internal/devnode), so that a
// device plugged in after start is probed although /dev lacks its node.
// The first call wins; the udev and mount capabilities both pass theirs.
func (t *Table) UseNodes(n *devnode.Nodes) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.nodes == nil {
		t.nodes = n
	}
}

// Subscribe calls fn with every change the table is fed, until the
// returned func is called. fn runs on the feeder's goroutine, in event
// order, with the feeder's locks held: it must not block (queue, then
// act).
func (t *Table) Subscribe(fn func(Change)) (cancel func()) {
	t.mu.Lock()
	id := t.nextSub
	t.nextSub++
	t.subs[id] = fn
	wanted := t.wanted
	t.mu.Unlock()
	if wanted != nil {
		wanted()
	}
	return func() {
		t.mu.Lock()
		delete(t.subs, id)
		t.mu.Unlock()
	}
}

// OnSubscribe sets fn to be called after each Subscribe, and reports
// whether some capability subscribes already: the feeder (the udev
// capability) opens its event source when someone wants events.
func (t *Table) OnSubscribe(fn func()) (watched bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.wanted = fn
	return len(t.subs) > 0
}

// Apply takes a block uevent: a device that changed is probed again when
// next looked up, a removed one leaves the table, and subscribers hear it.
func (t *Table) Apply(ev Event) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.devs[ev.DevPath]
	c := Change{Action: ev.Action, Device: Device{Node: ev.DevName, Name: filepath.Base(ev.DevPath), DevPath: ev.DevPath, MajMin: ev.MajMin}}
	switch {
	case e == nil:
	case ev.Action == "remove":
		delete(t.devs, ev.DevPath)
		c.Device = t.deviceLocked(e)
	case ev.Action == "add" || ev.Action == "change":
		e.stale = true
	}
	for _, fn := range t.subs {
		fn(c)
	}
}

// Probe returns what ev's device's superblock says: as last read, unless
// an add or change came since (Apply); else it reads it now (or waits for
// the probe already running), bounded by the table's timeout, and keeps
// the result for lookups. A device that sysfs does not show with ev's number is gone
// (ENXIO, as its node would say).
func (t *Table) Probe(ev Event) (probe.Result, error) {
	t.mu.Lock()
	e := t.devs[ev.DevPath]
	d, key, ok := t.readSysfs(filepath.Join(t.sysRoot, ev.DevPath))
	switch {
	case !ok || d.MajMin != ev.MajMin:
		t.mu.Unlock()
		return probe.Result{}, fmt.Errorf("%s is not in sysfs as %s: %w", ev.DevPath, ev.MajMin, syscall.ENXIO)
	case e == nil || e.key != key:
		e = &entry{dev: d, key: key}
		t.devs[ev.DevPath] = e
	}
	if e.probed && !e.stale && e.err == nil && e.running == nil {
		defer t.mu.Unlock()
		return e.res, nil // read since its last add or change
	}
	w := t.startLocked(e)
	t.mu.Unlock()
	if !w.wait(context.Background()) {
		return probe.Result{}, ErrTimeout
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return e.res, e.err
}

// Devices returns the present block devices that carry a filesystem, or
// whose superblock could not be read (with ProbeErr). It reads sysfs, and
// probes only the devices it has not probed as they are now, in parallel
// and outside the table's lock; a device that does not answer within the
// timeout (or ctx's deadline) is reported with ProbeErr, and is not probed
// again while its read hangs.
func (t *Table) Devices(ctx context.Context) ([]Device, error) {
	dir := filepath.Join(t.sysRoot, "class", "block")
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var order []*entry
	var waits []probing
	t.mu.Lock()
	present := map[string]bool{}
	for _, n := range names {
		d, key, ok := t.readSysfs(filepath.Join(dir, n.Name()))
		if !ok || present[d.DevPath] {
			continue
		}
		present[d.DevPath] = true
		e := t.devs[d.DevPath]
		if e == nil || e.key != key {
			e = &entry{dev: d, key: key}
			t.devs[d.DevPath] = e
		}
		e.dev = d
		order = append(order, e)
		if !e.probed || e.stale || e.err != nil || e.running != nil {
			waits = append(waits, t.startLocked(e))
		}
	}
	for p := range t.devs {
		if !present[p] {
			delete(t.devs, p) // removed without an event reaching us
		}
	}
	t.mu.Unlock()
	for _, w := range waits {
		w.wait(ctx)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Device
	for _, e := range order {
		d := t.deviceLocked(e)
		if d.FSType != "" || d.ProbeErr != "" {
			out = append(out, d)
		}
	}
	return out, nil
}

// deviceLocked is e's device with its last probe's facts, or why there
// are none.
func (t *Table) deviceLocked(e *entry) Device {
	d := e.dev
	switch {
	case e.running != nil:
		d.ProbeErr = ErrTimeout.Error()
	case e.err != nil:
		d.ProbeErr = e.err.Error()
	default:
		d.Label, d.UUID, d.FSType = e.res.Label, e.res.UUID, e.res.Type
		d.PartUUID, d.PartLabel = e.res.Part.UUID, e.res.Part.Name
	}
	return d
}

// probing is a probe that runs: its end closes done; it gives up at
// deadline.
type probing struct {
	done     chan struct{}
	deadline time.Time
}

// startLocked starts probing e unless a probe of it runs already.
func (t *Table) startLocked(e *entry) probing {
	if e.running != nil {
		return probing{e.running, e.deadline}
	}
	done := make(chan struct{})
	e.running, e.deadline, e.stale = done, time.Now().Add(t.timeout), false
	d, key, nodes := e.dev, e.key, t.nodes
	go func() {
		r := func() result {
			node, release, err := nodePath(nodes, d.Node, d.MajMin)
			if err != nil {
				return result{err: err}
			}
			defer release()
			return probeNode(node, openDisk(nodes))
		}()
		t.mu.Lock()
		if t.devs[d.DevPath] == e && e.key == key {
			e.res, e.err, e.probed = r.res, r.err, true
		}
		e.running = nil
		t.mu.Unlock()
		close(done)
	}()
	return probing{done, e.deadline}
}

// wait waits until the probe ends, gives up or ctx ends, and reports
// whether it ended.
func (p probing) wait(ctx context.Context) bool {
	timer := time.NewTimer(time.Until(p.deadline))
	defer timer.Stop()
	select {
	case <-p.done:
		return true
	case <-timer.C:
	case <-ctx.Done():
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// nodePath returns a path to the device node (made from its number by
// nodes when /dev lacks it) and a func that releases it.
func nodePath(nodes *devnode.Nodes, node, majmin string) (string, func(), error) {
	major, minor, err := devnode.ParseMajMin(majmin)
	if nodes == nil || err != nil {
		return node, func() {}, nil
	}
	return nodes.Path(strings.TrimPrefix(node, "/dev/"), major, minor)
}

func openDisk(nodes *devnode.Nodes) probe.OpenDisk {
	if nodes == nil {
		return nil
	}
	return nodes.Path
}

// readSysfs reads what sysfs says of the block device at sys, without
// probing it, and a key that changes when its medium or image does.
func (t *Table) readSysfs(sys string) (Device, string, bool) {
	size := readTrim(filepath.Join(sys, "size"))
	if size == "" || size == "0" {
		return Device{}, "", false
	}
	name := filepath.Base(sys)
	d := Device{Name: name, Disk: name, MajMin: readTrim(filepath.Join(sys, "dev")), Node: "/dev/" + name}
	for _, l := range strings.Split(readTrim(filepath.Join(sys, "uevent")), "\n") {
		if v, ok := strings.CutPrefix(l, "DEVNAME="); ok {
			d.Node = "/dev/" + v
		}
	}
	start := ""
	if real, err := filepath.EvalSymlinks(sys); err == nil {
		d.DevPath = strings.TrimPrefix(real, t.sysRoot)
		if _, err := os.Stat(filepath.Join(sys, "partition")); err == nil {
			d.Disk = filepath.Base(filepath.Dir(real))
			start = readTrim(filepath.Join(sys, "start"))
		}
	}
	disk := filepath.Join(t.sysRoot, "class", "block", d.Disk)
	d.Removable = readTrim(filepath.Join(disk, "removable")) == "1"
	key := fmt.Sprint(d.Node, d.MajMin, size, start, readTrim(filepath.Join(disk, "diskseq")))
	if strings.HasPrefix(d.Disk, "loop") {
		d.Loop = true
		d.LoopAutoclear = readTrim(filepath.Join(disk, "loop", "autoclear")) == "1"
		key += fmt.Sprint(readTrim(filepath.Join(disk, "loop", "backing_file")), readTrim(filepath.Join(disk, "loop", "offset")))
	}
	return d, key, true
}

func readTrim(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
