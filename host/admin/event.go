package admin

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/host/timer"
	"github.com/airlockhq/airlock/host/udev"
)

// errRequest is a request that is the caller's mistake (400).
type errRequest struct{ msg string }

func (e *errRequest) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &errRequest{fmt.Sprintf(format, args...)}
}

// Event builds the synthetic event that r asks for, checked against the
// plugin's manifest m. It has the same record as a real event of its kind,
// plus Synth = SynthValue, and is never coalesced with a real one.
func Event(r TriggerRequest, m *manifest.Manifest, now time.Time) (capability.Event, string, error) {
	switch r.Kind {
	case KindTimer:
		var names []string
		for _, t := range m.Timers {
			names = append(names, t.Name)
		}
		if !slices.Contains(names, r.Name) {
			if len(names) == 0 {
				return capability.Event{}, "", badRequest("plugin %q has no [[trigger.timer]]", m.Name)
			}
			return capability.Event{}, "", badRequest("plugin %q has no timer %q (its timers: %s)", m.Name, r.Name, strings.Join(names, ", "))
		}
		ev := timer.Event(m.Name, r.Name, now)
		ev.Payload = appendSynth(ev.Payload)
		ev.Coalesce = ""
		return ev, fmt.Sprintf("timer %s", r.Name), nil
	case KindUdev:
		if err := hasTrigger(m, "udev", "a device event"); err != nil {
			return capability.Event{}, "", err
		}
		if r.Action == "" || !strings.HasPrefix(r.DevPath, "/") {
			return capability.Event{}, "", badRequest("udev needs an ACTION and a DEVPATH starting with / (such as: add /devices/virtual/block/loop0)")
		}
		for k, v := range r.Props {
			if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
				return capability.Event{}, "", badRequest("udev property %q: write KEY=VALUE", k)
			}
			if k == "ACTION" || k == "DEVPATH" {
				return capability.Event{}, "", badRequest("udev property %s: give it as the ACTION or DEVPATH argument", k)
			}
		}
		ev := udev.NewEvent(r.Action, r.DevPath, r.Props)
		if ev.DevName != "" {
			ev.DevName = filepath.Clean(ev.DevName)
		}
		ev.Props[Synth] = SynthValue
		payload := abi.AppendRecord(nil, ev.Record())
		return capability.Event{Kind: uint32(abi.EventUdev), Payload: payload}, fmt.Sprintf("udev %s %s", r.Action, r.DevPath), nil
	case KindDBus:
		if err := hasTrigger(m, "dbus", "a D-Bus signal"); err != nil {
			return capability.Event{}, "", err
		}
		if !strings.HasPrefix(r.Path, "/") || r.Interface == "" || r.Member == "" {
			return capability.Event{}, "", badRequest("dbus needs an object path starting with /, an interface and a member")
		}
		rec := abi.Record{
			{Key: "sender", Value: nil},
			{Key: "path", Value: []byte(r.Path)},
			{Key: "interface", Value: []byte(r.Interface)},
			{Key: "member", Value: []byte(r.Member)},
			{Key: "signature", Value: nil},
			{Key: "body", Value: nil},
			{Key: "sender_name", Value: nil},
			{Key: Synth, Value: []byte(SynthValue)},
		}
		return capability.Event{Kind: uint32(abi.EventDBusSignal), Payload: abi.AppendRecord(nil, rec)}, fmt.Sprintf("dbus %s %s.%s", r.Path, r.Interface, r.Member), nil
	}
	return capability.Event{}, "", badRequest("unknown trigger kind %q (use timer, udev or dbus)", r.Kind)
}

// hasTrigger refuses an event of a kind that m has no [[trigger.kind]]
// for: the plugin would never receive a real one, so a synthetic one tests
// nothing it will meet.
func hasTrigger(m *manifest.Manifest, kind, what string) error {
	if _, ok := m.Triggers[kind]; !ok {
		return badRequest("plugin %q has no [[trigger.%s]], so it never receives %s (add one to %s)", m.Name, kind, what, m.File)
	}
	return nil
}

// appendSynth adds the Synth field to an encoded record.
func appendSynth(payload []byte) []byte {
	rec, err := abi.DecodeRecord(payload)
	if err != nil {
		panic("admin: the host built a malformed record: " + err.Error())
	}
	return abi.AppendRecord(nil, append(rec, abi.Field{Key: Synth, Value: []byte(SynthValue)}))
}
