package mount

import (
	"context"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/udev"
)

// deviceEvent is the part of a block uevent that mounts care about.
type deviceEvent struct {
	action, node, devpath, majmin string
}

// watcher is the name under which the mount capability subscribes to the
// udev capability. Plugin names cannot contain ":", so it is nobody's.
const watcher = "airlock:mount"

// WatchDevices returns the udev capability u, wired so that the mount
// capability also sees block devices come and go: a device removed while
// mounted is unmounted lazily and its plugin told. Register the returned
// value instead of u; it is u in every other way.
func (m *Mount) WatchDevices(u *udev.Udev) capability.Capability { return &watchedUdev{Udev: u, m: m} }

type watchedUdev struct {
	*udev.Udev
	m *Mount
}

// Start subscribes the mount capability (when some plugin can mount) and
// starts u with a Deliver that keeps its events for it.
func (w *watchedUdev) Start(ctx context.Context, deliver capability.Deliver) error {
	w.m.mu.Lock()
	w.m.deliver = deliver
	users, sim := w.m.users, w.m.sim
	w.m.mu.Unlock()
	if users > 0 {
		actions := []string{"remove"}
		if sim {
			actions = append(actions, "add") // the scenario adds the stick
		}
		w.Udev.Subscribe(watcher, udev.Rules{{Actions: actions, Subsystem: "block"}})
	}
	return w.Udev.Start(ctx, func(plugin string, ev capability.Event) bool {
		if plugin == watcher {
			w.m.uevent(ev.Payload)
			return true
		}
		return deliver(plugin, ev)
	})
}

// uevent runs on udev's goroutine with its lock held, so it only queues.
func (m *Mount) uevent(payload []byte) {
	rec, err := abi.DecodeRecord(payload)
	if err != nil {
		return
	}
	get := func(k string) string { v, _ := rec.Get(k); return v }
	ev := deviceEvent{action: get("ACTION"), node: get("DEVNAME"), devpath: get("DEVPATH")}
	if maj, min := get("MAJOR"), get("MINOR"); maj != "" {
		ev.majmin = maj + ":" + min
	}
	select {
	case m.events <- ev:
	default:
		m.log.Warn("device events queue full; the periodic check will find removed devices")
	}
}

// worker handles device events, and on the real device looks for mounted
// devices that vanished unannounced.
func (m *Mount) worker(ctx context.Context) {
	defer m.wg.Done()
	var tick <-chan time.Time
	if !m.sim {
		t := time.NewTicker(m.opts.CheckEvery)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-m.events:
			m.mu.Lock()
			m.be.uevent(ev)
			if ev.action == "remove" {
				for _, h := range m.sortedHeld("") {
					if h.dev.Node == ev.node || ev.majmin != "" && h.dev.MajMin == ev.majmin && !m.sim {
						m.deviceGoneLocked(h, "device removed")
					}
				}
			}
			m.mu.Unlock()
		case <-tick:
			m.mu.Lock()
			for _, h := range m.sortedHeld("") {
				if gone, why := m.be.gone(h); gone {
					m.deviceGoneLocked(h, why)
				}
			}
			m.mu.Unlock()
		}
	}
}

// deviceGoneLocked detaches the mount of a vanished device at once (a
// normal unmount would fail or hang on I/O errors), removes the mount
// point and tells the plugin with a mount event.
func (m *Mount) deviceGoneLocked(h *held, why string) {
	if _, err := m.unmountLocked(h, why, true); err != nil {
		m.log.Error("lazy unmount of a vanished device failed", "plugin", h.plugin, "target", h.name, "device", h.dev.Node, "error", err.Error())
		return
	}
	m.log.Warn("device gone while mounted; unmounted lazily", "plugin", h.plugin, "target", h.name, "device", h.dev.Node, "reason", why)
	if m.deliver == nil {
		return
	}
	f := func(k, v string) abi.Field { return abi.Field{Key: k, Value: []byte(v)} }
	rec := abi.Record{f("action", "unmounted"), f("target", h.name), f("source", h.source), f("device", h.dev.Node), f("reason", why)}
	if !m.deliver(h.plugin, capability.Event{Kind: uint32(abi.EventMount), Payload: abi.AppendRecord(nil, rec)}) {
		m.log.Warn("mount event not delivered (queue full or plugin stopped)", "plugin", h.plugin, "target", h.name)
	}
}
