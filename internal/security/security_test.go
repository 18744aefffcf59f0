// Package security is airlock's hostile-plugin suite: plugins built from
// source that try to escape the sandbox or hurt the host, all in one host
// with every capability on the simulated device, next to a bystander that
// must keep handling events throughout. Tests only.
package security

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/cloud"
	"github.com/airlockhq/airlock/internal/dbus"
	"github.com/airlockhq/airlock/internal/hostrun"
	"github.com/airlockhq/airlock/internal/httpout"
	"github.com/airlockhq/airlock/internal/mount"
	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/supervisor"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
	"github.com/airlockhq/airlock/internal/udev"
)

const (
	hostile   = "internal/security/testdata/hostile"
	bystander = "host/testdata/guest"
	apiKey    = "BALENA_SUPERVISOR_API_KEY=sekrit-never-shown"
)

// grants gives the hostile module every capability it imports, narrowly.
const grants = `
[supervisor]
allow = ["blink"]

[[dbus.call]]
destination = "org.freedesktop.systemd1"
path = "/org/freedesktop/systemd1"
interface = "org.freedesktop.systemd1.Manager"
member = "GetUnit"

[[mount]]
source = ["label:MEDIA"]
fstype = ["vfat"]

[cloud]
allow = ["tags.read"]

[[http.request]]
host = ["echo.sim.airlock"]
scheme = ["http"]
method = ["POST"]
`

func manifest(name, extra string, sections ...string) string {
	s := fmt.Sprintf("name = %q\nversion = \"0.1.0\"\n[storage]\ndata = true\n[env]\nallow = [\"BALENA_*\"]\n%s\n", name, extra)
	for _, sec := range sections {
		s += sec
	}
	return s
}

// only returns grants without the named section.
func without(section string) string {
	var keep []string
	for _, block := range strings.Split(strings.TrimSpace(grants), "\n\n") {
		if !strings.Contains(block, "["+section+"]") && !strings.Contains(block, "[["+section) {
			keep = append(keep, block)
		}
	}
	return "\n" + strings.Join(keep, "\n\n") + "\n"
}

type suite struct {
	t          *testing.T
	h          *host.Host
	log, audit *testenv.Log
	dir        string
	sup        *supervisor.Capability
	web        *httpout.Capability
	caps       []capability.Capability
	stop       func() error
	n          int
}

func startSuite(t *testing.T) *suite {
	testenv.NeedCommand(t, "dbus-daemon", "dbus")
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	testenv.PluginDir(t, plugins, "bystander", "name = \"bystander\"\nversion = \"0.1.0\"\n[storage]\ndata = true\n", bystander)
	for _, p := range []struct{ name, extra string }{
		{"attacker", ""},
		{"looper", "[limits]\nhandler_timeout = \"1s\""},
		{"grower", "[limits]\nmemory = \"32MiB\""},
		{"allocer", "[limits]\nmemory = \"32MiB\""},
		{"recurser", "[limits]\nmemory = \"32MiB\""},
		{"stopper", "[limits]\nhandler_timeout = \"1s\"\n[config]\non_stop = \"calls loop\""},
	} {
		testenv.PluginDir(t, plugins, p.name, manifest(p.name, p.extra, grants), hostile)
	}
	for _, sec := range []string{"supervisor", "dbus", "mount", "http"} {
		testenv.PluginDir(t, plugins, "no-"+sec, manifest("no-"+sec, "", without(sec)), hostile)
	}
	quiet := filepath.Join(dir, "quiet.udev")
	if err := os.WriteFile(quiet, []byte("KERNEL[1.000000] add      /devices/virtual/tty/ttyQ (tty)\nSEQNUM=1\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rt := fmt.Sprintf(`plugins = ["plugins"]
state_dir = "state"
device = "sim"
[restart]
initial = "10ms"
max = "200ms"
crash_loop = 3
window = "1m"
[udev]
source = "replay"
replay = %q
replay_pace = "instant"
`, quiet)
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	audit, auditLogger := testenv.NewLog(t)
	u := udev.New()
	m := mount.New(mount.Options{Devices: u.Devices()})
	sup := supervisor.NewCapability(supervisor.CapabilityOptions{})
	web := httpout.New(httpout.Options{})
	caps := []capability.Capability{u, dbus.New(), sup, m, cloud.New(cloud.Options{}), web}
	run := hostrun.Start(t, filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Audit: auditLogger, Capabilities: caps,
		Environ: []string{"BALENA_DEVICE_TYPE=raspberrypi4-64", apiKey, "BALENA_API_TOKEN=tok-never-shown", "HOME=/root"}})
	s := &suite{t: t, h: run.Host, log: log, audit: audit, dir: dir, sup: sup, web: web, caps: caps, stop: run.Stop}
	log.Wait(1, "airlock running")
	return s
}

func (s *suite) fire(plugin, name string) {
	s.t.Helper()
	s.n++
	if !s.h.Deliver(plugin, timer.Event(plugin, fmt.Sprintf("%s", name), time.Now())) {
		s.t.Fatalf("event %q for %s not queued", name, plugin)
	}
}

// bystanderAlive checks that the bystander still handles events.
func (s *suite) bystanderAlive(after string) {
	s.t.Helper()
	s.fire("bystander", "seq:after-"+after)
	s.log.Wait(1, "seq after-"+after, "plugin=bystander")
}

func (s *suite) lines(plugin, prefix string) []string {
	var out []string
	for _, l := range s.log.Lines() {
		if strings.HasPrefix(l, "INFO "+prefix) && strings.Contains(l, "plugin="+plugin+" ") || strings.HasPrefix(l, "INFO "+prefix) && strings.HasSuffix(l, "plugin="+plugin) {
			out = append(out, strings.TrimPrefix(l, "INFO "))
		}
	}
	return out
}

// suppressed sums the counts of plugin's "log lines suppressed" notices.
func (s *suite) suppressed(plugin string) int {
	n := 0
	for _, l := range s.log.Lines() {
		if m := suppressedLine.FindStringSubmatch(l); m != nil && strings.Contains(l, "plugin="+plugin+" ") {
			c, _ := strconv.Atoi(m[1])
			n += c
		}
	}
	return n
}

var suppressedLine = regexp.MustCompile(`^WARN (\d+) log lines suppressed `)

// floodLines counts the attacker's flood lines that were logged.
func (s *suite) floodLines() int {
	n := 0
	for _, l := range s.log.Lines() {
		if (strings.HasPrefix(l, "INFO flood ") || strings.HasPrefix(l, "INFO stdout flood ")) && strings.Contains(l, "plugin=attacker") {
			n++
		}
	}
	return n
}

func (s *suite) status(name string) plugin.Status {
	for _, st := range s.h.Status() {
		if st.Name == name {
			return st
		}
	}
	s.t.Fatalf("no plugin %q", name)
	return plugin.Status{}
}

// hostFunctions enumerates every host function the host offers, by module:
// the base module and each capability's Functions(), keyed "module.name".
func hostFunctions(caps []capability.Capability) map[string]capability.Func {
	out := map[string]capability.Func{}
	for _, f := range plugin.BaseFunctions() {
		out[abi.ModuleBase+"."+f.Name] = f
	}
	for _, c := range caps {
		if c.Module() == "" {
			continue
		}
		for _, f := range c.Functions() {
			out[c.Module()+"."+f.Name] = f
		}
	}
	return out
}

// takesRange reports whether f takes a guest range, by its parameters'
// names (ABI.md's NAME_ptr).
func takesRange(f capability.Func) bool {
	for _, p := range f.ParamNames {
		if strings.HasSuffix(p, "_ptr") {
			return true
		}
	}
	return false
}

var pollLine = regexp.MustCompile(`poll asked=(\d+) slept=(\d+) errno=0`)

var oobLine = regexp.MustCompile(`^oob (\S+) (\S+) errno=(\d+)`)

func TestHostilePlugins(t *testing.T) {
	s := startSuite(t)
	for _, p := range []string{"bystander", "attacker", "looper", "grower", "allocer", "recurser", "stopper"} {
		s.log.Wait(1, "INFO started", "plugin="+p)
	}

	t.Run("ungranted imports are refused at load", func(t *testing.T) {
		for _, sec := range []string{"supervisor", "dbus", "mount", "http"} {
			name := "no-" + sec
			err := s.h.Failures()[filepath.Join(s.dir, "plugins", name)]
			want := fmt.Sprintf("%s import airlock_%s_v1 denied: plugin.toml has no [%s] section", sec, sec, sec)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: load error = %v, want it to say %q", name, err, want)
			}
			if n := s.audit.Count("plugin="+name, "capability="+sec, "decision=deny", "op=import airlock_"+sec+"_v1"); n != 1 {
				t.Errorf("%s: %d audit records of the refused import, want 1", name, n)
			}
		}
		s.bystanderAlive("imports")
	})

	t.Run("every host function faults on bad ranges", func(t *testing.T) {
		s.fire("attacker", "table")
		s.log.Wait(1, "table done", "plugin=attacker")
		have := map[string]bool{}
		for _, l := range s.lines("attacker", "table ") {
			f := strings.Fields(l)
			if len(f) >= 3 && f[1] != "done" {
				have[f[1]] = true
			}
		}
		funcs := hostFunctions(s.caps)
		var names []string
		for name, f := range funcs {
			names = append(names, name)
			if len(f.ParamNames) != len(f.Params) {
				t.Errorf("host function %s has %d parameters and %d parameter names", name, len(f.Params), len(f.ParamNames))
			}
			if !have[name] {
				t.Errorf("host function %s (%s) is not called by the hostile guest: add it to %s/raw.go", name, f.Signature(), hostile)
			}
		}
		sort.Strings(names)
		for _, name := range names {
			t.Logf("%s.%s", name[:strings.LastIndex(name, ".")], funcs[name].Signature())
		}
		s.fire("attacker", "oob")
		s.log.Wait(1, "oob done", "plugin=attacker")
		called := map[string]int{}
		for _, l := range s.lines("attacker", "oob ") {
			m := oobLine.FindStringSubmatch(l)
			if m == nil {
				continue
			}
			called[m[1]]++
			e, _ := strconv.Atoi(m[3])
			// result_read with nothing pending has nothing to copy: it
			// writes the length 0 and says no_result.
			ok := abi.Errno(e) == abi.Fault || m[2] == "huge" && abi.Errno(e) == abi.TooLarge ||
				strings.HasSuffix(m[1], ".result_read") && abi.Errno(e) == abi.NoResult && (m[2] == "wrap" || m[2] == "outcap")
			if !ok {
				t.Errorf("%s with %s ranges returned %s, want fault", m[1], m[2], abi.Errno(e))
			}
		}
		for _, name := range names {
			if called[name] == 0 && takesRange(funcs[name]) {
				t.Errorf("%s (%s) was never called with bad ranges", name, funcs[name].Signature())
			}
		}
		t.Logf("%d host functions, %d bad-range calls", len(names), len(s.lines("attacker", "oob ")))
		if st := s.status("attacker"); st.Restarts != 0 {
			t.Errorf("bad ranges crashed the attacker: %+v", st)
		}
		s.bystanderAlive("oob")
	})

	t.Run("a fault has no side effects", func(t *testing.T) {
		before := s.sup.Sim().Count("POST", "/v1/blink")
		s.fire("attacker", "sidefx")
		s.log.Wait(1, "sidefx mounted=", "plugin=attacker")
		for _, want := range []string{"sidefx supervisor blink errno=10", "sidefx mount errno=10", "sidefx http errno=10", "sidefx mounted=0 "} {
			if s.log.Count(want, "plugin=attacker") != 1 {
				t.Errorf("want %q:\n%s", want, strings.Join(s.lines("attacker", "sidefx"), "\n"))
			}
		}
		if after := s.sup.Sim().Count("POST", "/v1/blink"); after != before {
			t.Errorf("a blink whose out_len pointer faulted reached the supervisor (%d requests)", after-before)
		}
		if n := s.web.SimRequests(); n != 0 {
			t.Errorf("an HTTP request whose out_len pointer faulted reached the echo service (%d requests)", n)
		}
	})

	t.Run("secrets never reach a plugin", func(t *testing.T) {
		s.fire("attacker", "env")
		s.log.Wait(1, "env-file /proc/1/root/etc/passwd", "plugin=attacker")
		if n := s.log.Count("INFO env BALENA_DEVICE_TYPE=raspberrypi4-64 ", "plugin=attacker"); n != 1 {
			t.Errorf("the plugin saw the wrong environment:\n%s", strings.Join(s.lines("attacker", "env"), "\n"))
		}
		if n := s.log.Count("LEAKED", "plugin=attacker"); n != 0 {
			t.Errorf("a host file was readable:\n%s", strings.Join(s.lines("attacker", "env-file"), "\n"))
		}
		// A path under none of its mounts is absent (the host's empty "/"), not EBADF.
		if n := s.log.Count("env-file /etc/passwd refused: open /etc/passwd: No such file or directory", "plugin=attacker"); n != 1 {
			t.Errorf("want ENOENT for a path outside every mount:\n%s", strings.Join(s.lines("attacker", "env-file"), "\n"))
		}
	})

	t.Run("calls past the grant are denied and audited", func(t *testing.T) {
		deniedBefore := map[string]int{}
		for _, c := range []string{"supervisor", "dbus", "mount"} {
			deniedBefore[c] = s.audit.Count("plugin=attacker", "capability="+c, "decision=deny")
		}
		s.fire("attacker", "past-grant")
		s.log.Wait(1, "past-grant done", "plugin=attacker")
		for _, want := range []string{
			"past-grant supervisor reboot denied",
			"past-grant supervisor frobnicate denied",
			"past-grant dbus StopUnit denied",
			"past-grant dbus login1.Reboot denied",
			"past-grant dbus set Hostname denied",
			"past-grant mount resin-boot denied",
			"past-grant mount exec denied",
		} {
			if s.log.Count(want, "plugin=attacker") != 1 {
				t.Errorf("want %q:\n%s", want, strings.Join(s.lines("attacker", "past-grant"), "\n"))
			}
		}
		for _, c := range []struct {
			capability string
			n          int
		}{{"supervisor", 2}, {"dbus", 3}, {"mount", 2}} {
			// Counted from this step on: earlier steps' empty requests were
			// denied too.
			if got := s.audit.Count("plugin=attacker", "capability="+c.capability, "decision=deny") - deniedBefore[c.capability]; got != c.n {
				t.Errorf("%d %s denials audited, want %d:\n%s", got, c.capability, c.n, strings.Join(s.audit.Lines(), "\n"))
			}
		}
		s.bystanderAlive("past-grant")
	})

	t.Run("malformed D-Bus values are invalid", func(t *testing.T) {
		s.fire("attacker", "dbus-bad")
		s.log.Wait(1, "dbus-bad done", "plugin=attacker")
		bad := s.lines("attacker", "dbus-bad ")
		if len(bad) < 14 {
			t.Fatalf("only %d dbus-bad lines", len(bad))
		}
		for _, l := range bad {
			if !strings.Contains(l, "done") && !strings.Contains(l, "errno=invalid") {
				t.Errorf("want invalid: %s", l)
			}
		}
		s.bystanderAlive("dbus-bad")
	})

	t.Run("no escape from /data or the media root", func(t *testing.T) {
		outside := t.TempDir()
		os.WriteFile(filepath.Join(outside, "passwd"), []byte("LEAKME-outside-passwd"), 0o644)
		os.WriteFile(filepath.Join(outside, "secret"), []byte("LEAKME-outside-secret"), 0o644)
		s.fire("bystander", "write:secret")
		s.log.Wait(1, "write: ok", "plugin=bystander")
		// Symlinks planted on the stick, as a hostile stick would carry.
		stick := filepath.Join(s.dir, "state", "sim-devices", "sdb1")
		// The simulated stick's directory is seeded at its first mount; make
		// it here, with the marker the simulator names it by.
		if err := os.MkdirAll(stick, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(stick, ".airlock-sim-device")); err != nil {
			os.WriteFile(filepath.Join(stick, ".airlock-sim-device"), []byte("sdb1\n"), 0o644)
		}
		for link, target := range map[string]string{
			"planted-abs":  outside,
			"planted-dir":  outside,
			"planted-rel":  strings.Repeat("../", 20),
			"planted-peer": filepath.Join(s.dir, "state", "data", "bystander"),
		} {
			if err := os.Symlink(target, filepath.Join(stick, link)); err != nil {
				t.Fatal(err)
			}
		}
		s.fire("attacker", "escape:"+outside)
		s.log.Wait(1, "escape done", "plugin=attacker")
		esc := s.lines("attacker", "escape ")
		if len(esc) < 18 {
			t.Errorf("only %d escape attempts logged:\n%s", len(esc), strings.Join(esc, "\n"))
		}
		for _, l := range esc {
			if strings.Contains(l, "LEAKED") && !strings.Contains(l, "escape write") && !strings.Contains(l, "escape symlink") {
				t.Errorf("escaped: %s", l)
			}
			if strings.Contains(l, "escape symlink") && strings.Contains(l, "LEAKED") {
				t.Errorf("the plugin made a symlink: %s", l)
			}
		}
		for _, l := range s.log.Lines() {
			if strings.Contains(l, "plugin=attacker") && (strings.Contains(l, "LEAKME") || strings.Contains(l, "secret of secret") || strings.Contains(l, "root:x:0")) {
				t.Errorf("host data reached the plugin: %s", l)
			}
		}
		if _, err := os.Stat(filepath.Join(outside, "pwned")); err == nil {
			t.Errorf("the plugin wrote outside its sandbox")
		}
		s.bystanderAlive("escape")
	})

	t.Run("runaway plugins are stopped and restarted", func(t *testing.T) {
		cases := []struct{ plugin, behaviour, want string }{
			{"looper", "loop", "ran past limits.handler_timeout = 1s"},
			{"grower", "grow", "out of memory"},
			{"allocer", "alloc", "out of memory"},
			{"recurser", "recurse", ""},
		}
		for _, c := range cases {
			s.fire(c.plugin, c.behaviour)
		}
		for _, c := range cases {
			s.log.Wait(1, "plugin crashed; restarting", "plugin="+c.plugin, c.want)
			s.log.Wait(2, "INFO started", "plugin="+c.plugin)
			s.fire(c.plugin, "seq:alive")
			s.log.Wait(1, "seq alive", "plugin="+c.plugin)
		}
		for _, l := range s.log.Lines() {
			if strings.Contains(l, "plugin crashed") && strings.Contains(l, "plugin=recurser") {
				t.Logf("deep recursion: %s", l)
			}
		}
		s.bystanderAlive("runaway")
	})

	t.Run("poll_oneoff sleeps, never past the handler's deadline", func(t *testing.T) {
		// A C or Rust guest's sleep is WASI poll_oneoff on a clock: it
		// sleeps at least what it asks (it used to return at once)...
		s.fire("attacker", "poll:300000000")
		s.log.Wait(1, "poll asked=300000000 ", "plugin=attacker")
		if m := pollLine.FindStringSubmatch(strings.Join(s.lines("attacker", "poll asked=300000000 "), "\n")); m == nil {
			t.Fatal("no poll line")
		} else if slept, _ := strconv.ParseInt(m[2], 10, 64); slept < 300_000_000 {
			t.Errorf("poll_oneoff asked for 300ms slept %dns", slept)
		}
		// ...but an hour's sleep ends at the deadline (1s for looper):
		// the handler returns, or, on a machine too busy to return within
		// the grace, the watchdog stops it; it never sleeps on.
		crashes := s.log.Count("plugin crashed; restarting", "plugin=looper")
		s.fire("looper", "poll:3600000000000")
		for end := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
			if s.log.Count("poll asked=3600000000000 ", "plugin=looper") > 0 || s.log.Count("plugin crashed; restarting", "plugin=looper") > crashes {
				break
			}
			if time.Now().After(end) {
				t.Fatal("an hour's poll_oneoff sleep outlived the 1s handler deadline by a minute")
			}
		}
		s.bystanderAlive("poll")
	})

	t.Run("a log flood is cut per line, rate-limited, and the host goes on", func(t *testing.T) {
		// 20 000 log calls and 20 000 stdout lines, then "flood done".
		const sent = 40001
		before := s.suppressed("attacker")
		start := time.Now()
		s.fire("attacker", "flood")
		// Every line is either logged or counted in a "suppressed" notice;
		// the last notice comes within a second of the flood's end.
		deadline := time.Now().Add(90 * time.Second)
		var emitted, suppressed int
		for {
			emitted, suppressed = s.floodLines(), s.suppressed("attacker")-before
			if emitted+suppressed >= sent || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if emitted+suppressed != sent {
			t.Fatalf("%d flood lines logged + %d reported suppressed = %d, want %d", emitted, suppressed, emitted+suppressed, sent)
		}
		// The default limit is 200 lines a second with a burst of 1000.
		// The bound grows with the time the flood took, so a slow machine
		// only loosens it; it stays far below what was sent.
		bound := 1000 + 200*(int(time.Since(start).Seconds())+2)
		t.Logf("%d of %d flood lines logged, %d suppressed", emitted, sent, suppressed)
		if suppressed == 0 || emitted > bound {
			t.Errorf("%d of %d flood lines logged (bound %d), %d suppressed", emitted, sent, bound, suppressed)
		}
		s.bystanderAlive("flood")
		for _, l := range s.log.Lines() {
			if len(l) > 9000 {
				t.Fatalf("a log line of %d bytes got through", len(l))
			}
		}
	})

	t.Run("host functions from a stop handler, and a stop handler that never returns", func(t *testing.T) {
		if err := s.stop(); err != nil {
			t.Fatalf("Run returned %v", err)
		}
		funcs := hostFunctions(s.caps)
		for name := range funcs {
			if s.log.Count("stop-call "+name+" errno=", "plugin=stopper") != 1 {
				t.Errorf("the stop handler did not call %s", name)
			}
		}
		s.log.Wait(1, "stop handler failed", "plugin=stopper", "ran past limits.handler_timeout = 1s")
		s.log.Wait(1, "seq after-flood", "plugin=bystander")
		if n := s.log.Count("INFO stopped cleanly", "plugin=bystander"); n != 1 {
			t.Errorf("the bystander's stop event was not delivered")
		}
	})

	for _, l := range append(s.log.Lines(), s.audit.Lines()...) {
		if strings.Contains(l, "sekrit-never-shown") || strings.Contains(l, "tok-never-shown") {
			t.Errorf("a secret reached the logs: %s", l)
		}
	}
	if st := s.status("bystander"); st.Restarts != 0 {
		t.Errorf("the bystander restarted: %+v", st)
	}
}
