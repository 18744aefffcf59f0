package mount

import (
	"context"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/blockdev"
)

// deviceChanged runs on the feeder's goroutine (the udev capability's,
// with its lock held), so it only queues.
func (m *Mount) deviceChanged(c blockdev.Change) {
	if c.Action != "add" && c.Action != "remove" {
		return
	}
	select {
	case m.events <- c:
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
			if ev.Action == "remove" {
				for _, h := range m.sortedHeld("") {
					if h.dev.Node == ev.Device.Node || ev.Device.MajMin != "" && h.dev.MajMin == ev.Device.MajMin && !m.sim {
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
