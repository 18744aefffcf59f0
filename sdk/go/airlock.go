// Package airlock is the Go SDK for airlock plugins. A plugin is an ordinary
// Go package built with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared (or
// `airlock build`). It registers handlers in init and leaves main empty:
//
//	func init() {
//		airlock.OnStart(func() error { airlock.Info("hello"); return nil })
//		airlock.OnTimer(func(t airlock.Timer) error { ...; return nil })
//	}
//	func main() {}
//
// Handlers run one at a time, in the order their events arrived. Errors from
// host calls are *HostError values with an abi.Errno code; nothing the host
// refuses ever traps the plugin.
package airlock

import (
	"fmt"
	"strings"
	"time"

	"github.com/airlockhq/airlock/sdk/go/abi"
)

// HostError is what a host call returns when it fails: a code from the ABI's one
// error space and the host's message.
type HostError struct {
	Code abi.Errno
	Msg  string
	// ErrorName is the D-Bus error name of an error from a D-Bus peer
	// ("org.freedesktop.systemd1.NoSuchUnit"), which the host sends as a
	// field of its own (ABI §3.3.3); "" for any other error.
	ErrorName string
}

func (e *HostError) Error() string {
	if e.Msg == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Msg
}

// Is lets errors.Is(err, abi.Denied) test the code.
func (e *HostError) Is(target error) bool {
	c, ok := target.(abi.Errno)
	return ok && c == e.Code
}

// Event is any event, as delivered: its kind and its fields.
type Event struct {
	Kind   abi.EventKind
	Fields abi.Record
}

// Get returns the value of a field.
func (e Event) Get(key string) string { v, _ := e.Fields.Get(key); return v }

// Timer is a [[trigger.timer]] firing.
type Timer struct {
	Name string    // the timer's name in plugin.toml
	Time time.Time // when it was scheduled to fire
}

// Dropped tells a plugin that events did not reach it (abi/ABI.md §5).
// Count were lost: never delivered, to a full queue or over
// limits.events_per_second (RateLimited of them). Coalesced were replaced
// in the queue by a newer event of the same source (a timer's tick, a
// device's udev change), which is delivered; they are not in Count.
// ByKind and CoalescedByKind split the two by event kind name ("timer",
// "udev", "dbus_signal", "mount"). A host older than these fields sends
// only Count and Reason.
type Dropped struct {
	Count           uint64
	Reason          string // "queue full", "rate limit", both, or "coalesced"
	RateLimited     uint64
	Coalesced       uint64
	ByKind          map[string]uint64
	CoalescedByKind map[string]uint64
}

var handlers = map[abi.EventKind]func(Event) error{}

// Handle registers h for every event of kind. Later registrations replace
// earlier ones. Typed helpers (OnStart, OnTimer, ...) are built on it.
func Handle(kind abi.EventKind, h func(Event) error) { handlers[kind] = h }

// OnStart runs when the plugin's instance starts (and after each restart).
func OnStart(h func() error) { Handle(abi.EventStart, func(Event) error { return h() }) }

// OnStop runs once before the instance is closed, after the queue drained.
func OnStop(h func() error) { Handle(abi.EventStop, func(Event) error { return h() }) }

// OnTimer runs when a [[trigger.timer]] fires.
func OnTimer(h func(Timer) error) {
	Handle(abi.EventTimer, func(e Event) error {
		t, _ := time.Parse(time.RFC3339Nano, e.Get("time"))
		return h(Timer{Name: e.Get("name"), Time: t})
	})
}

// OnDropped runs when events were lost or coalesced, before the next event.
func OnDropped(h func(Dropped) error) {
	Handle(abi.EventDropped, func(e Event) error {
		num := func(s string) (n uint64) { fmt.Sscan(s, &n); return n }
		d := Dropped{Count: num(e.Get("count")), Reason: e.Get("reason"), RateLimited: num(e.Get("rate_limited")),
			Coalesced: num(e.Get("coalesced")), ByKind: map[string]uint64{}, CoalescedByKind: map[string]uint64{}}
		for _, f := range e.Fields {
			if k, ok := strings.CutPrefix(f.Key, "dropped."); ok {
				d.ByKind[k] = num(string(f.Value))
			} else if k, ok := strings.CutPrefix(f.Key, "coalesced."); ok {
				d.CoalescedByKind[k] = num(string(f.Value))
			}
		}
		return h(d)
	})
}

// dispatch decodes the pending payload and runs the handler for kind.
func dispatch(kind uint32, n uint32) int32 {
	h := handlers[abi.EventKind(kind)]
	if h == nil {
		if abi.EventKind(kind) == abi.EventDropped {
			Warn(fmt.Sprintf("events dropped and no OnDropped handler"))
		}
		return abi.HandlerOK
	}
	var fields abi.Record
	if n > 0 {
		buf := make([]byte, n)
		if err := resultRead(buf); err != nil {
			Error("reading event payload: " + err.Error())
			return abi.HandlerError
		}
		var err error
		if fields, err = abi.DecodeRecord(buf); err != nil {
			Error("decoding event payload: " + err.Error())
			return abi.HandlerError
		}
	}
	if err := h(Event{Kind: abi.EventKind(kind), Fields: fields}); err != nil {
		Error(abi.EventKind(kind).String() + " handler: " + err.Error())
		return abi.HandlerError
	}
	return abi.HandlerOK
}

// Log writes msg at level (abi.LevelInfo, ...). kv are key/value pairs,
// as log/slog takes them: the host logs each as an attribute of the line
// (at most 32; keys of letters, digits, '_', '.' and '-'). A key without a
// value is logged as !BADKEY, as slog does.
func Log(level int32, msg string, kv ...any) {
	if len(kv) == 0 {
		hostLog(level, msg)
		return
	}
	var r abi.Record
	for i := 0; i < len(kv); i += 2 {
		k, v := "!BADKEY", kv[i]
		if i+1 < len(kv) {
			k, v = fmt.Sprint(kv[i]), kv[i+1]
		}
		r = append(r, abi.Field{Key: k, Value: []byte(fmt.Sprint(v))})
	}
	hostLogFields(level, msg, abi.AppendRecord(nil, r))
}

func Debug(msg string, kv ...any) { Log(abi.LevelDebug, msg, kv...) }
func Info(msg string, kv ...any)  { Log(abi.LevelInfo, msg, kv...) }
func Warn(msg string, kv ...any)  { Log(abi.LevelWarn, msg, kv...) }
func Error(msg string, kv ...any) { Log(abi.LevelError, msg, kv...) }

// Config returns a value from the manifest's [config] table. A key that is
// not there is an *HostError with abi.NotFound and the host's message,
// which names the key (errors.Is(err, abi.NotFound) tests for it).
func Config(key string) (string, error) {
	v, err := call(func(out *byte, cap uint32, n *uint32) uint32 {
		return configGet(key, out, cap, n)
	})
	if err != nil {
		return "", err
	}
	return string(v), nil
}

// Now returns the host's wall clock.
func Now() time.Time { return time.Unix(0, int64(clockNow())) }

// Sleep pauses the handler for d, but never past its deadline: it returns an
// *HostError with abi.Timeout if the deadline cut it short. Prefer it to
// time.Sleep, which the host cannot bound.
func Sleep(d time.Duration) error {
	if e := sleep(int64(d)); e != 0 {
		return &HostError{Code: abi.Errno(e), Msg: "sleep cut short by the handler deadline"}
	}
	return nil
}

// Deadline returns the time left before the running handler is stopped.
func Deadline() time.Duration { return time.Duration(deadline()) }

// scratch receives small results without an allocation. Host calls run one
// at a time (wasm is single-threaded and a host call never yields).
var scratch [4096]byte

// call runs a host function that follows the ABI's result convention and
// returns a copy of its result, or an *HostError with the host's message.
func call(fn func(out *byte, cap uint32, n *uint32) uint32) ([]byte, error) {
	var n uint32
	e := fn(&scratch[0], uint32(len(scratch)), &n)
	var data []byte
	if n <= uint32(len(scratch)) {
		data = append([]byte(nil), scratch[:n]...)
	} else {
		data = make([]byte, n)
		if err := resultRead(data); err != nil {
			return nil, err
		}
	}
	if e != 0 {
		return nil, &HostError{Code: abi.Errno(e), Msg: string(data)}
	}
	return data, nil
}

// Call is call for capability packages of this SDK: it runs a host function
// that follows the result convention.
func Call(fn func(out *byte, cap uint32, n *uint32) uint32) ([]byte, error) { return call(fn) }
