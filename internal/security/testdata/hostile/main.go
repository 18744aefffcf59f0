// Command hostile is the security suite's plugin: each timer event's name
// selects an attack on the host, and the guest logs what the host answered,
// one line per attempt, so that the test can judge it. Crashing behaviours
// end the instance on purpose.
package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
)

const (
	far  = 0xFFFF_FFF0 // beyond any memory the host allows
	huge = 0xFFFF_FFFF
)

var (
	signals, ticks, told uint64 // D-Bus signals and ticks handled, drops told

	buf   [256]byte // a valid in-memory buffer
	sink  [][]byte
	depth int
)

func ptr(b []byte) uint32 {
	if len(b) == 0 {
		return uint32(uintptr(unsafe.Pointer(&buf[0])))
	}
	return uint32(uintptr(unsafe.Pointer(&b[0])))
}

func init() {
	airlock.OnStart(func() error { airlock.Info("started"); return nil })
	airlock.OnStop(func() error {
		if v, _ := airlock.Config("on_stop"); v != "" {
			onStop(v)
		}
		airlock.Info(fmt.Sprintf("stopped signals=%d ticks=%d dropped=%d", signals, ticks, told))
		return nil
	})
	airlock.OnDropped(func(d airlock.Dropped) error {
		told += d.Count
		airlock.Info("dropped", "count", d.Count)
		return nil
	})
	// A self-sustaining loop that feeds on its own effect: each
	// PropertiesChanged of hostname1 (the [[trigger.dbus]] rule) makes it
	// set PrettyHostname twice, and each set emits another signal.
	airlock.OnDBusSignal(func(airlock.Signal) error {
		signals++
		host := airlock.DBus.Object("org.freedesktop.hostname1", "/org/freedesktop/hostname1")
		for range 2 {
			host.Call("org.freedesktop.hostname1.SetPrettyHostname", fmt.Sprint("loop", signals), false)
		}
		return nil
	})
	airlock.OnTimer(func(t airlock.Timer) error {
		name, arg, _ := strings.Cut(t.Name, ":")
		switch name {
		case "table":
			for _, f := range rawFuncs {
				airlock.Info(fmt.Sprintf("table %s.%s %s", f.module, f.name, f.kinds))
			}
			airlock.Info("table done")
		case "oob":
			outOfBounds()
		case "sidefx":
			sideEffects()
		case "env":
			env := os.Environ()
			sort.Strings(env)
			airlock.Info("env " + strings.Join(env, ","))
			for _, p := range []string{"/proc/self/environ", "/etc/passwd", "/proc/1/root/etc/passwd"} {
				b, err := os.ReadFile(p)
				airlock.Info(outcome("env-file "+p, b, err))
			}
		case "escape":
			escape(arg)
		case "dbus-bad":
			badVariants()
		case "past-grant":
			pastGrant()
		case "alloc":
			b := make([]byte, 1<<30)
			b[len(b)-1] = 1
			sink = append(sink, b)
		case "grow":
			for {
				sink = append(sink, make([]byte, 1<<20))
			}
		case "loop":
			for i := 0; ; i++ {
				if i == -1 {
					break
				}
			}
		case "recurse":
			airlock.Info(fmt.Sprint("recursed ", recurse(0)))
		case "flood":
			for i := 0; i < 20000; i++ {
				airlock.Info(fmt.Sprintf("flood %d %s", i, strings.Repeat("x", 100)))
				fmt.Printf("stdout flood %d\n", i)
			}
			airlock.Info("flood done")
		case "denyflood":
			denyFlood(arg)
		case "seq":
			airlock.Info("seq " + arg)
		case "poll":
			ns, _ := strconv.ParseUint(arg, 10, 64)
			began := time.Now()
			e := pollSleep(ns)
			airlock.Info(fmt.Sprintf("poll asked=%d slept=%d errno=%d", ns, time.Since(began).Nanoseconds(), e))
		case "feedback": // start the loop of OnDBusSignal
			airlock.DBus.Object("org.freedesktop.hostname1", "/org/freedesktop/hostname1").
				Call("org.freedesktop.hostname1.SetPrettyHostname", "loop0", false)
			airlock.Info("feedback started")
		case "ticks": // a [[trigger.timer]] flood: count each tick
			ticks++
		default:
			airlock.Warn("unknown behaviour " + t.Name)
		}
		return nil
	})
}

//go:noinline
func recurse(n int) int {
	var pad [512]byte
	pad[n%512] = byte(n)
	depth = n
	return recurse(n+1) + int(pad[(n+1)%512])
}

// args builds one bad argument list for kinds by pattern.
func args(kinds, pattern string) ([]uint32, bool) {
	in := ptr(nil)
	out := ptr(buf[64:])
	lenp := ptr(buf[200:])
	a := make([]uint32, len(kinds))
	applies := false
	for i, k := range kinds {
		switch pattern {
		case "far": // every pointer outside memory
			switch k {
			case 'p', 'o', 'l', 'w':
				a[i], applies = far, true
			case 'n', 'c':
				a[i] = 64
			}
		case "wrap": // ranges whose end wraps around 2^32
			switch k {
			case 'p', 'o':
				a[i], applies = far, true
			case 'n', 'c':
				a[i] = 0x20
			case 'l':
				a[i] = lenp
			case 'w':
				a[i], applies = huge-3, true
			}
		case "huge": // a length that covers all of memory and more
			switch k {
			case 'p':
				a[i] = in
			case 'n':
				a[i], applies = huge, true
			case 'o':
				a[i] = out
			case 'c':
				a[i] = 16
			case 'l':
				a[i] = lenp
			case 'w':
				a[i] = out
			}
		case "outlen": // valid input, the length written outside memory
			switch k {
			case 'p':
				a[i] = in
			case 'n':
				a[i] = 0
			case 'o':
				a[i] = out
			case 'c':
				a[i] = 16
			case 'l', 'w':
				a[i], applies = far, true
			}
		case "outcap": // the out buffer claims more room than memory has
			switch k {
			case 'p':
				a[i] = in
			case 'n':
				a[i] = 0
			case 'o':
				a[i], applies = far-0x100000, true
			case 'c':
				a[i] = huge
			case 'l':
				a[i] = lenp
			}
		}
	}
	return a, applies
}

var patterns = []string{"far", "wrap", "huge", "outlen", "outcap"}

func outOfBounds() {
	for _, f := range rawFuncs {
		for _, pat := range patterns {
			a, ok := args(f.kinds, pat)
			if !ok {
				continue
			}
			airlock.Info(fmt.Sprintf("oob %s.%s %s errno=%d", f.module, f.name, pat, f.call(a)))
		}
	}
	airlock.Info("oob done")
}

func record(kv ...string) []byte {
	var r abi.Record
	for i := 0; i+1 < len(kv); i += 2 {
		r = append(r, abi.Field{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return abi.AppendRecord(nil, r)
}

// sideEffects makes granted, valid calls whose out_len pointer is outside
// memory: ABI §2 says such a call returns fault without side effects.
func sideEffects() {
	op := []byte("blink")
	e := rawSupervisorCall(ptr(op), uint32(len(op)), ptr(nil), 0, ptr(buf[64:]), 64, far)
	airlock.Info(fmt.Sprintf("sidefx supervisor blink errno=%d", e))
	req := record("source", "label:MEDIA")
	e = rawMount(ptr(req), uint32(len(req)), ptr(buf[64:]), 64, far)
	airlock.Info(fmt.Sprintf("sidefx mount errno=%d", e))
	hreq := record("method", "POST", "url", "http://echo.sim.airlock/sidefx")
	e = rawHTTPRequest(ptr(hreq), uint32(len(hreq)), ptr(nil), 0, ptr(buf[64:]), 64, far)
	airlock.Info(fmt.Sprintf("sidefx http errno=%d", e))
	ms, err := airlock.Mount.List()
	airlock.Info(fmt.Sprintf("sidefx mounted=%d err=%v", len(ms), err))
	for _, m := range ms {
		airlock.Mount.Unmount(m.Target)
	}
}

func errno(err error) string {
	var he *airlock.HostError
	if errors.As(err, &he) {
		return he.Code.String()
	}
	if err == nil {
		return "ok"
	}
	return "error"
}

func outcome(what string, b []byte, err error) string {
	if err != nil {
		return what + " refused: " + err.Error()
	}
	return what + " LEAKED: " + string(b)
}

// escape mounts the stick, then tries to leave the media root and /data by
// "..", absolute paths and symlinks, both planted on the stick by the test
// and made by the plugin. outside is a host directory the test watches.
func escape(outside string) {
	m, err := airlock.Mount.Source("label:MEDIA", nil)
	if err != nil {
		airlock.Info("escape mount failed: " + err.Error())
		return
	}
	root := m.Path
	reads := []string{
		root + "/../../etc/passwd",
		"/media/../etc/passwd",
		"/media/../../../../etc/passwd",
		"/etc/passwd",
		"/data/../../etc/passwd",
		"/data/../media/" + m.Target + "/planted-abs/passwd",
		root + "/planted-abs/passwd",
		root + "/planted-rel/etc/passwd",
		root + "/planted-peer/secret",
		root + "/planted-dir/passwd",
		outside + "/secret",
	}
	for _, p := range reads {
		b, err := os.ReadFile(p)
		airlock.Info(outcome("escape read "+p, b, err))
	}
	for _, p := range []string{root + "/planted-dir/pwned", root + "/planted-abs/pwned", outside + "/pwned"} {
		err := os.WriteFile(p, []byte("pwned"), 0o644)
		airlock.Info(outcome("escape write "+p, nil, err))
	}
	for _, l := range []struct{ target, link string }{
		{"/etc", root + "/mine"},
		{"../../..", root + "/mine-rel"},
		{outside, "/data/mine"},
	} {
		err := os.Symlink(l.target, l.link)
		airlock.Info(outcome("escape symlink "+l.link, nil, err))
		b, rerr := os.ReadFile(l.link + "/passwd")
		airlock.Info(outcome("escape read-own-link "+l.link, b, rerr))
	}
	if err := airlock.Mount.Unmount(m.Target); err != nil {
		airlock.Info("escape unmount: " + err.Error())
	}
	airlock.Info("escape done")
}

// D-Bus bodies that lie about their shape, sent to a call the grant allows
// with any arguments.
func badVariants() {
	u32 := func(v uint32) string { return string([]byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}) }
	str := func(s string) string { return u32(uint32(len(s))) + s }
	nested := ""
	for i := 0; i < 100; i++ {
		nested += str("v")
	}
	nested += str("s") + str("deep")
	cases := []struct{ name, sig, body string }{
		{"variant-two-types", "v", str("ss") + str("a") + str("b")},
		{"variant-sig-overrun", "v", u32(0xFFFFFFFF) + "s"},
		{"variant-bad-sig", "v", str("(") + "x"},
		{"variant-fd", "v", str("h") + u32(0)},
		{"variant-nested-100", "v", nested},
		{"variant-short-body", "v", str("t") + "\x01\x02"},
		{"variant-trailing", "v", str("y") + "\x01\x02\x03"},
		{"array-count-bomb", "aay", u32(0xFFFFFFFF)},
		{"dict-variant-key", "a{vs}", u32(1) + str("s") + str("k") + str("v")},
		{"bad-utf8", "s", str("\xff\xfe")},
		{"bad-bool", "b", "\x07"},
		{"bad-object-path", "o", str("not/a/path")},
		{"sig-not-a-type", "(((", ""},
		{"sig-too-long", strings.Repeat("a", 300) + "y", ""},
	}
	for _, c := range cases {
		req := record("destination", "org.freedesktop.systemd1", "path", "/org/freedesktop/systemd1",
			"interface", "org.freedesktop.systemd1.Manager", "member", "GetUnit", "signature", c.sig, "body", c.body)
		_, err := airlock.Call(func(out *byte, cap uint32, n *uint32) uint32 {
			return rawDBusCall(ptr(req), uint32(len(req)), uint32(uintptr(unsafe.Pointer(out))), cap, uint32(uintptr(unsafe.Pointer(n))))
		})
		airlock.Info(fmt.Sprintf("dbus-bad %s errno=%s", c.name, errno(err)))
	}
	airlock.Info("dbus-bad done")
}

// denyFlood makes 100,000 supervisor calls the manifest does not grant, each
// the same ("same") or each a different operation ("vary"), and logs how
// the host answered them, by errno, so that the test can match the audit's
// counts against the calls made.
func denyFlood(mode string) {
	counts := map[string]int{}
	const calls = 100_000
	for i := 0; i < calls; i++ {
		op := "reboot"
		if mode == "vary" {
			op = fmt.Sprintf("op%d", i)
		}
		_, err := airlock.Call(func(out *byte, cap uint32, n *uint32) uint32 {
			b := []byte(op)
			return rawSupervisorCall(ptr(b), uint32(len(b)), ptr(nil), 0, uint32(uintptr(unsafe.Pointer(out))), cap, uint32(uintptr(unsafe.Pointer(n))))
		})
		counts[errno(err)]++
	}
	airlock.Info(fmt.Sprintf("denyflood %s calls=%d denied=%d busy=%d other=%d", mode, calls, counts["denied"], counts["busy"],
		calls-counts["denied"]-counts["busy"]))
}

// pastGrant calls each capability beyond what the manifest grants.
func pastGrant() {
	sup := func(op string) error {
		_, err := airlock.Call(func(out *byte, cap uint32, n *uint32) uint32 {
			b := []byte(op)
			return rawSupervisorCall(ptr(b), uint32(len(b)), ptr(nil), 0, uint32(uintptr(unsafe.Pointer(out))), cap, uint32(uintptr(unsafe.Pointer(n))))
		})
		return err
	}
	airlock.Info("past-grant supervisor reboot " + errno(sup("reboot")))
	airlock.Info("past-grant supervisor frobnicate " + errno(sup("frobnicate")))
	_, err := airlock.DBus.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1").Call("org.freedesktop.systemd1.Manager.StopUnit", "ssh.service", "replace")
	airlock.Info("past-grant dbus StopUnit " + errno(err))
	_, err = airlock.DBus.Object("org.freedesktop.login1", "/org/freedesktop/login1").Call("org.freedesktop.login1.Manager.Reboot", false)
	airlock.Info("past-grant dbus login1.Reboot " + errno(err))
	err = airlock.DBus.Object("org.freedesktop.hostname1", "/org/freedesktop/hostname1").SetProperty("org.freedesktop.hostname1.Hostname", "pwned")
	airlock.Info("past-grant dbus set Hostname " + errno(err))
	_, err = airlock.Mount.Source("label:resin-boot", nil)
	airlock.Info("past-grant mount resin-boot " + errno(err))
	_, err = airlock.Mount.Source("label:MEDIA", &airlock.MountOptions{Options: []string{"exec"}})
	airlock.Info("past-grant mount exec " + errno(err))
	airlock.Info("past-grant done")
}

// onStop runs at the stop event: every host function with sane arguments,
// then, if asked, a loop that never returns.
func onStop(what string) {
	for _, f := range rawFuncs {
		a, _ := args(f.kinds, "outlen")
		for i, k := range f.kinds {
			if k == 'l' || k == 'w' {
				a[i] = ptr(buf[200:])
			}
		}
		airlock.Info(fmt.Sprintf("stop-call %s.%s errno=%d", f.module, f.name, f.call(a)))
	}
	if strings.Contains(what, "loop") {
		for i := 0; ; i++ {
			if i == -1 {
				break
			}
		}
	}
}

func main() {}
