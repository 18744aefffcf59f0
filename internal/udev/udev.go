package udev

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/blockdev"
	"github.com/airlockhq/airlock/internal/devnode"
)

// Udev is the "udev" capability: a trigger source with no host functions.
// Receiving device events needs no grant section: a plugin's
// [[trigger.udev]] rules are the whole of what it asks for and bound what
// it sees. Create it with New.
type Udev struct {
	sysRoot string // "/sys"
	devDir  string // "/dev"; see WithDevDir

	// nodes names a device by its number for probing (real device only;
	// nil on the simulated one): /dev may lack a stick plugged in after
	// start, since no udevd makes its node.
	nodes *devnode.Nodes
	// devs is the block-device table: fed every block event, it probes
	// for us and tells its subscribers (the mount capability).
	devs *blockdev.Table

	// Set by Provision and Start, before any event; read-only after.
	cfg     Config
	log     *slog.Logger
	deliver capability.Deliver
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// mu is held while one event (or one coldplug scan) is routed and
	// delivered, so that a plugin sees coldplug and live events of a device
	// in a consistent order. It guards everything below.
	mu      sync.Mutex
	rules   map[string]Rules
	router  *Router
	seen    []bool // Router.Match scratch
	matched []int
	src     source // nil until the first subscriber is started
	known   map[string]*device
	epoch   uint64

	events, deliveries, refused atomic.Uint64
	count                       lossCount
}

// lossCount is what the netlink source lost before routing: its receive
// queue's overflows, and the events they lost (from SEQNUM gaps).
type lossCount struct {
	received, overflows, lost, rcvbuf atomic.Uint64
}

// device is what the router remembers of a present device: its last event
// (for a resync's synthetic remove), the ID_FS_* that we probed (udevd keeps
// these in its database and repeats them on remove; kernel events do not),
// and an epoch that changes on every action but "change", which scopes
// coalescing.
type device struct {
	last  UEvent
	fs    map[string]string
	epoch uint64
}

// source is where events come from: a netlink socket or a recording.
type source interface {
	// open starts buffering events, so that a scan after it misses none.
	open() error
	// run delivers events until ctx ends (nil) or the source fails.
	run(ctx context.Context, emit func(UEvent)) error
	close()
	String() string
}

// New returns the capability, unprovisioned.
func New() *Udev {
	return &Udev{sysRoot: "/sys", devDir: "/dev", cfg: DefaultConfig(), log: slog.New(slog.DiscardHandler),
		rules: map[string]Rules{}, router: NewRouter(nil), known: map[string]*device{}, devs: blockdev.New()}
}

// Devices is the block-device table that the capability feeds with every
// block uevent and probes through. Give it to the capabilities that look
// devices up or need their events (mount.Options.Devices).
func (u *Udev) Devices() *blockdev.Table { return u.devs }

var (
	_ capability.Capability  = (*Udev)(nil)
	_ capability.Configurer  = (*Udev)(nil)
	_ capability.Provisioner = (*Udev)(nil)
	_ capability.Triggerer   = (*Udev)(nil)
	_ capability.Closer      = (*Udev)(nil)
	_ capability.LossCounter = (*Udev)(nil)
)

func (*Udev) Name() string                 { return "udev" }
func (*Udev) Module() string               { return "" }
func (*Udev) Trigger() string              { return "udev" }
func (*Udev) Functions() []capability.Func { return nil }

// DecodeGrant refuses a [udev] table in plugin.toml: there is nothing to
// grant, and a silently ignored table would let an author believe it
// limits something.
func (*Udev) DecodeGrant(s manifest.Section) (any, error) {
	s.Errorf("", "remove it: device events are asked for with [[trigger.udev]] rules, and the runtime's [udev] belongs in runtime.toml", "plugin.toml has no [udev] section")
	return nil, errors.New("udev has no grant")
}

// DecodeTrigger decodes one plugin's [[trigger.udev]] tables into Rules.
func (*Udev) DecodeTrigger(s manifest.Section) (any, error) { return decodeRules(s) }

// DecodeConfig decodes runtime.toml's [udev] into a *Config.
func (*Udev) DecodeConfig(s manifest.Section) (any, error) { return decodeConfig(s) }

// Provision takes the runtime config. It opens nothing: the event source
// starts only once a plugin has rules.
func (u *Udev) Provision(_ context.Context, env capability.Env) error {
	if c, ok := env.Config.(*Config); ok && c != nil {
		u.cfg = *c
	}
	if env.Logger != nil {
		u.log = env.Logger
	}
	if !env.Sim && env.Runtime != nil {
		u.nodes = &devnode.Nodes{DevDir: u.devDir, Dir: filepath.Join(env.Runtime.StateDir, "dev")}
		u.devs.UseNodes(u.nodes)
	}
	if u.cfg.Source == "auto" {
		switch {
		case env.Sim:
			u.cfg.Source = "replay"
		case udevdHere():
			u.cfg.Source = "udev"
		default:
			u.cfg.Source = "kernel"
		}
	}
	return nil
}

// WithDevDir makes the capability look for device nodes in dir instead of
// /dev (before making its own; see internal/devnode). For tests and for
// hosts whose devices live elsewhere. Call it before Provision.
func (u *Udev) WithDevDir(dir string) *Udev {
	u.devDir = dir
	return u
}

// probe reads ev's device's superblock through the block-device table
// (bounded by its timeout), as udev's ID_FS_* and ID_PART_ENTRY_*.
func (u *Udev) probe(ev *UEvent) (map[string]string, error) {
	res, err := u.devs.Probe(blockEvent(ev))
	if p := res.Properties(); err == nil && len(p) > 0 {
		return p, nil
	}
	return nil, err
}

func blockEvent(ev *UEvent) blockdev.Event {
	b := blockdev.Event{Action: ev.Action, DevPath: ev.DevPath, DevName: ev.devNode()}
	if maj := ev.Props["MAJOR"]; maj != "" {
		b.MajMin = maj + ":" + ev.Props["MINOR"]
	}
	return b
}

// Subscribe sets a plugin's rules (nil removes them). After Start, a plugin
// whose rules accept "add" gets a coldplug add for each matching device
// already present.
func (u *Udev) Subscribe(plugin string, rules any) {
	rs, _ := rules.(Rules)
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(rs) == 0 {
		delete(u.rules, plugin)
	} else {
		u.rules[plugin] = rs
	}
	u.router = NewRouter(u.rules)
	u.seen = make([]bool, len(u.router.Plugins()))
	if u.ctx == nil || len(rs) == 0 {
		return // not started: Start's scan covers it
	}
	if u.src == nil {
		if err := u.startLocked(); err != nil {
			u.log.Error("udev event source failed to start", "source", u.cfg.Source, "error", err.Error())
		}
		return
	}
	if u.cfg.Coldplug {
		u.wg.Add(1)
		go func() {
			defer u.wg.Done()
			u.mu.Lock()
			defer u.mu.Unlock()
			u.coldplugLocked(plugin)
		}()
	}
}

// Start begins delivering events. It opens the source now if some plugin
// has rules, otherwise at the first Subscribe with rules.
func (u *Udev) Start(ctx context.Context, deliver capability.Deliver) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.ctx, u.cancel = context.WithCancel(ctx)
	u.deliver = deliver
	if watched := u.devs.OnSubscribe(u.devicesWanted); u.router.Empty() && !watched {
		return nil
	}
	return u.startLocked()
}

// devicesWanted opens the source for a subscriber of the device table
// that came after Start.
func (u *Udev) devicesWanted() {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.ctx != nil && u.src == nil && u.ctx.Err() == nil {
		if err := u.startLocked(); err != nil {
			u.log.Error("udev event source failed to start", "source", u.cfg.Source, "error", err.Error())
		}
	}
}

// Close stops the source and waits for its goroutines. It is safe before
// Start and more than once.
func (u *Udev) Close() error {
	u.mu.Lock()
	cancel := u.cancel
	u.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	u.wg.Wait()
	return nil
}

// Stats counts events read from the source, deliveries made to plugins'
// queues, and deliveries refused (a full queue under drop_newest, the rate
// limit, or a stopped plugin; the plugin's own counter reports what it
// lost). Received, Overflows and Lost are the netlink socket's: uevents
// read from it, times its receive queue overflowed (ENOBUFS), and uevents
// those overflows lost, counted exactly from the kernel's SEQNUM gaps.
// ReceiveBuffer is the receive queue the kernel granted, in bytes.
type Stats struct {
	Events, Deliveries, Refused uint64
	Received, Overflows, Lost   uint64
	ReceiveBuffer               uint64
}

func (u *Udev) Stats() Stats {
	return Stats{Events: u.events.Load(), Deliveries: u.deliveries.Load(), Refused: u.refused.Load(),
		Received: u.count.received.Load(), Overflows: u.count.overflows.Load(), Lost: u.count.lost.Load(), ReceiveBuffer: u.count.rcvbuf.Load()}
}

// SourceLosses reports the netlink socket's overflows for status and the
// metrics (capability.LossCounter).
func (u *Udev) SourceLosses() capability.SourceLosses {
	return capability.SourceLosses{Source: "udev", Overflows: u.count.overflows.Load(), Lost: u.count.lost.Load()}
}

func (u *Udev) newSource() (source, error) {
	switch u.cfg.Source {
	case "replay":
		evs, name, err := u.cfg.recording()
		if err != nil {
			return nil, err
		}
		return &replaySource{name: name, events: evs, instant: u.cfg.Instant}, nil
	case "udev":
		return newNetlinkSource(true, u.log, int(u.cfg.ReceiveBuffer), &u.count), nil
	default:
		return newNetlinkSource(false, u.log, int(u.cfg.ReceiveBuffer), &u.count), nil
	}
}

func (u *Udev) isNetlink() bool { return u.cfg.Source == "kernel" || u.cfg.Source == "udev" }

// startLocked opens the source, takes stock of the devices present, and
// starts the goroutine that reads events.
func (u *Udev) startLocked() error {
	src, err := u.newSource()
	if err == nil {
		err = src.open()
	}
	if err != nil {
		return err
	}
	u.src = src
	u.log.Info("udev events", "source", src.String(), "coldplug", u.cfg.Coldplug, "probe", u.cfg.Probe && u.isNetlink(), "plugins", len(u.router.Plugins()))
	if u.isNetlink() {
		subs, all := u.scanSet(-1)
		for _, ev := range scanSysfs(u.sysRoot, subs, all) {
			if u.cfg.Coldplug {
				u.routeLocked(ev, "coldplug", -1)
			} else {
				u.remember(&ev)
			}
		}
	}
	u.wg.Add(1)
	go u.loop(src)
	return nil
}

// loop reads the source until Close, reopening it after a failure and then
// rescanning /sys, because a failed or overflowed socket lost events.
func (u *Udev) loop(src source) {
	defer u.wg.Done()
	delay := 100 * time.Millisecond
	for {
		err := src.run(u.ctx, u.emit)
		src.close()
		if u.ctx.Err() != nil {
			return
		}
		u.log.Warn("udev event source failed; reopening and rescanning /sys", "source", src.String(), "error", err.Error())
		for {
			t := time.NewTimer(delay)
			select {
			case <-u.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if err := src.open(); err != nil {
				delay = min(delay*2, 30*time.Second)
				u.log.Warn("udev event source: reopen failed", "error", err.Error(), "retry_in", delay.String())
				continue
			}
			break
		}
		delay = 100 * time.Millisecond
		u.mu.Lock()
		u.resyncLocked()
		u.mu.Unlock()
	}
}

// Inject routes ev as if the event source had read it: matched against every
// plugin's rules, probed and remembered like a real event. The simulated
// device's scenario and plugin test harnesses use it; events are delivered
// once Start has run.
func (u *Udev) Inject(ev UEvent) { u.emit(ev) }

func (u *Udev) emit(ev UEvent) {
	u.events.Add(1)
	u.mu.Lock()
	u.routeLocked(ev, "", -1)
	u.mu.Unlock()
}

// scanSet returns the subsystems that coldplug scans for plugin i (-1: all
// plugins): those named by rules that accept "add", or every one if such a
// rule names none.
func (u *Udev) scanSet(i int) (map[string]bool, bool) {
	if i < 0 {
		return u.router.subsystems, u.router.anySubsystem
	}
	subs, all := map[string]bool{}, false
	for _, r := range u.router.rules[i] {
		if r.wantsAdd() {
			if r.Subsystem == "" {
				all = true
			}
			subs[r.Subsystem] = true
		}
	}
	return subs, all
}

// coldplugLocked delivers an add to one newly subscribed plugin for each
// present device its rules match.
func (u *Udev) coldplugLocked(plugin string) {
	i := u.router.Index(plugin)
	if i < 0 || u.ctx.Err() != nil {
		return
	}
	subs, all := u.scanSet(i)
	if u.isNetlink() {
		for _, ev := range scanSysfs(u.sysRoot, subs, all) {
			u.routeLocked(ev, "coldplug", i)
		}
		return
	}
	// A recording has no /sys: what it has added and not removed is present.
	var evs []UEvent
	for _, d := range u.known {
		if all || subs[d.last.Subsystem] {
			ev := d.last.clone()
			ev.Action = "add"
			evs = append(evs, ev)
		}
	}
	sortByDevPath(evs)
	for _, ev := range evs {
		u.routeLocked(ev, "coldplug", i)
	}
}

// resyncLocked compares /sys with what we believe is present and delivers
// the adds and removes that the lost events would have carried.
func (u *Udev) resyncLocked() {
	if !u.isNetlink() {
		return
	}
	subs, all := u.scanSet(-1)
	found := map[string]bool{}
	for _, ev := range scanSysfs(u.sysRoot, subs, all) {
		found[ev.DevPath] = true
		if u.known[ev.DevPath] == nil {
			u.routeLocked(ev, "resync", -1)
		}
	}
	var gone []UEvent
	for p, d := range u.known {
		if !found[p] && (all || subs[d.last.Subsystem]) {
			ev := d.last.clone()
			ev.Action, ev.SeqNum = "remove", ""
			gone = append(gone, ev)
		}
	}
	sortByDevPath(gone)
	for i := len(gone) - 1; i >= 0; i-- { // children before parents
		u.routeLocked(gone[i], "resync", -1)
	}
}

// remember updates what is known of a device from an event that no plugin
// needs to see.
func (u *Udev) remember(ev *UEvent) *device {
	d := u.known[ev.DevPath]
	if ev.Action == "remove" {
		delete(u.known, ev.DevPath)
		return d
	}
	if d == nil {
		u.epoch++
		d = &device{epoch: u.epoch}
		u.known[ev.DevPath] = d
	}
	if ev.Action != "change" {
		u.epoch++
		d.epoch = u.epoch
	}
	d.last = *ev
	return d
}

// routeLocked completes ev (probed or remembered ID_FS_*), matches it and
// delivers it to plugin only (or, if only is -1, to every plugin whose
// rules match). synth, if not "", marks an event we made up.
func (u *Udev) routeLocked(ev UEvent, synth string, only int) {
	if synth != "" {
		ev.Props = cloneProps(ev.Props)
		ev.Props[Synth] = synth
	}
	if ev.Subsystem == "block" && only < 0 && synth != "coldplug" {
		u.devs.Apply(blockEvent(&ev))
	}
	d := u.remember(&ev)
	if d != nil {
		if ev.Action == "remove" || ev.Action != "add" && ev.Action != "change" || synth == "coldplug" && d.fs != nil {
			// Never probe a device that is going away; and the superblock
			// does not change on bind, online, or a second look.
			ev.Props = merge(ev.Props, d.fs)
		} else if u.shouldProbe(&ev) {
			props, err := u.probe(&ev)
			if err != nil {
				// No medium, no permission (a sandbox that hides the boot
				// disk): expected, so not worth a warning each time.
				level := slog.LevelWarn
				if quietProbeError(err) || errors.Is(err, os.ErrPermission) {
					level = slog.LevelDebug
				}
				u.log.Log(context.Background(), level, "probe failed; event delivered without ID_FS_*", "device", ev.DevName, "error", err.Error())
			}
			d.fs = props
			ev.Props = merge(ev.Props, props)
			if ev.Action != "remove" {
				d.last = ev
			}
		}
	}
	var idx []int
	if only >= 0 {
		if u.router.MatchPlugin(only, &ev) {
			idx = append(u.matched[:0], only)
		}
	} else {
		idx = u.router.Match(&ev, u.matched[:0], u.seen)
	}
	u.matched = idx[:0]
	if len(idx) == 0 {
		return
	}
	out := capability.Event{Kind: uint32(abi.EventUdev), Payload: abi.AppendRecord(nil, ev.Record())}
	if ev.Action == "change" && d != nil {
		// A storm of changes for one device (a card reader polling, a
		// battery) keeps only the newest in a plugin's queue. The epoch
		// keeps a change from jumping over an add or remove queued after
		// an older change of the same device.
		out.Coalesce = "udev:" + ev.DevPath + "#" + strconv.FormatUint(d.epoch, 10)
	}
	plugins := u.router.Plugins()
	for _, i := range idx {
		if u.deliver(plugins[i], out) {
			u.deliveries.Add(1)
		} else {
			u.refused.Add(1)
		}
	}
}

// shouldProbe: a netlink block event without ID_FS_TYPE that some rule
// could match. udevd's events carry ID_FS_* already; a recording is from
// another machine, whose /dev is not ours.
func (u *Udev) shouldProbe(ev *UEvent) bool {
	return u.cfg.Probe && u.isNetlink() && ev.Subsystem == "block" && ev.Props["ID_FS_TYPE"] == "" &&
		ev.devNode() != "" && u.router.Candidate(ev)
}

func merge(dst, src map[string]string) map[string]string {
	if len(src) == 0 {
		return dst
	}
	if dst == nil {
		dst = make(map[string]string, len(src))
	}
	for k, v := range src {
		if _, ok := dst[k]; !ok {
			dst[k] = v
		}
	}
	return dst
}

func cloneProps(p map[string]string) map[string]string {
	c := make(map[string]string, len(p)+1)
	for k, v := range p {
		c[k] = v
	}
	return c
}

func sortByDevPath(evs []UEvent) {
	for i := 1; i < len(evs); i++ {
		for j := i; j > 0 && evs[j].DevPath < evs[j-1].DevPath; j-- {
			evs[j], evs[j-1] = evs[j-1], evs[j]
		}
	}
}
