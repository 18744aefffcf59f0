package admin_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/builtin"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/admin"
	"github.com/airlockhq/airlock/internal/hostrun"
	"github.com/airlockhq/airlock/internal/testenv"
)

const echo = "internal/admin/testdata/echo"

// rig is a real host with the echo plugin and a broken one, serving its
// admin socket in its state directory.
type rig struct {
	dir, socket string
	log, audit  *testenv.Log
	client      *admin.Client
}

const echoManifest = `name = "echo"
version = "1.2.3"

[config]
tag = "v1"

[storage]
data = true

[[trigger.timer]]
name = "tick"
cron = "0 0 1 1 *"

[[trigger.udev]]
subsystem = "block"

[[trigger.dbus]]
name = "time"
sender = "org.freedesktop.timedate1"
path = "/org/freedesktop/timedate1"
interface = "org.freedesktop.DBus.Properties"
member = "PropertiesChanged"
`

// timerOnly is the echo plugin with a timer and no other trigger.
const timerOnly = `name = "timer-only"
version = "1.0.0"

[[trigger.timer]]
name = "tick"
cron = "0 0 1 1 *"
`

func start(t *testing.T, runtimeExtra string) *rig {
	t.Helper()
	dir := t.TempDir()
	testenv.PluginDir(t, filepath.Join(dir, "plugins"), "echo", echoManifest, echo)
	testenv.PluginDir(t, filepath.Join(dir, "plugins"), "timer-only", timerOnly, echo)
	broken := filepath.Join(dir, "plugins", "broken")
	os.MkdirAll(broken, 0o755)
	os.WriteFile(filepath.Join(broken, "plugin.toml"), []byte("name = \"broken\"\nversoin = \"1\"\n"), 0o644)
	conf := filepath.Join(dir, "runtime.toml")
	// The udev and D-Bus triggers of the simulated device, with no
	// recorded events: every event comes from the test.
	os.WriteFile(conf, []byte("plugins = [\"plugins\"]\nstate_dir = \"state\"\n"+runtimeExtra+
		"\n[udev]\nsource = \"replay\"\nreplay = \"none\"\ncoldplug = false\n"), 0o644)
	log, logger := testenv.NewLog(t)
	audit, auditLogger := testenv.NewLog(t)
	h, err := host.New(conf, host.Options{Logger: logger, Audit: auditLogger, Capabilities: builtin.Capabilities()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Error("host did not stop")
		}
	})
	log.Wait(1, "airlock running")
	log.Wait(1, "started tag=v1")
	socket := filepath.Join(dir, "state", "admin.sock")
	return &rig{dir: dir, socket: socket, log: log, audit: audit, client: admin.NewClient(socket)}
}

func TestStatus(t *testing.T) {
	r := start(t, "")
	st, err := os.Stat(r.socket)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("admin socket mode = %v, want a socket with 0600", st.Mode())
	}
	rep, err := r.client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Plugins) != 2 || rep.Plugins[1].Name != "timer-only" {
		t.Fatalf("plugins = %+v, want echo and timer-only", rep.Plugins)
	}
	p := rep.Plugins[0]
	if p.Name != "echo" || p.Version != "1.2.3" || p.State != "running" || p.Restarts != 0 || p.QueueCap != 64 ||
		strings.Join(p.Grants, ",") != "storage.data" || strings.Join(p.Triggers, ",") != "timer:tick,dbus,udev" {
		t.Errorf("echo's report = %+v", p)
	}
	if rep.PID != os.Getpid() || rep.Device != "sim" || rep.Reload || rep.AuditFailures != 0 {
		t.Errorf("report = %+v", rep)
	}
	if len(rep.Failed) != 1 || rep.Failed[0].Dir != filepath.Join(r.dir, "plugins", "broken") ||
		!strings.Contains(rep.Failed[0].Error, `versoin: unknown key (did you mean "version"?)`) {
		t.Errorf("failed = %+v", rep.Failed)
	}
	r.audit.Wait(1, "INFO audit", "plugin=-", "capability=admin", "op=status", "decision=allow", "reason=peer uid ")
}

// Status counts the audit records that the audit file could not take.
// /dev/full fails every write with ENOSPC, as a full disk does, and a
// status request is audited before it is answered, so the first says 1.
// The ones after it are identical decisions, folded by the gate into one
// record with a count at the end of its window (host/gate), so they add at
// most one more each.
func TestStatusCountsAuditFailures(t *testing.T) {
	if _, err := os.Stat("/dev/full"); err != nil {
		testenv.Missing(t, "/dev/full, a device whose writes fail with ENOSPC")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "plugins"), 0o755)
	conf := filepath.Join(dir, "runtime.toml")
	os.WriteFile(conf, []byte("plugins = [\"plugins\"]\nstate_dir = \"state\"\n[log]\naudit = \"/dev/full\"\n"), 0o644)
	log, logger := testenv.NewLog(t)
	hostrun.Start(t, conf, host.Options{Logger: logger})
	log.Wait(1, "airlock running")
	c := admin.NewClient(filepath.Join(dir, "state", "admin.sock"))
	for n := uint64(1); n <= 3; n++ {
		rep, err := c.Status(context.Background())
		if err != nil {
			t.Fatalf("status %d: %v", n, err)
		}
		if rep.AuditFailures < 1 || rep.AuditFailures > n || n == 1 && rep.AuditFailures != 1 {
			t.Errorf("status %d: audit_failures = %d, want 1 (at most %d)", n, rep.AuditFailures, n)
		}
	}
}

func TestTrigger(t *testing.T) {
	r := start(t, "")
	ctx := context.Background()
	cases := []struct {
		req  admin.TriggerRequest
		want []string // in the plugin's log line
		op   string   // in the audit
	}{
		{admin.TriggerRequest{Plugin: "echo", Kind: "timer", Args: []string{"name=tick"}},
			[]string{"event timer tag=v1 AIRLOCK_SYNTH=trigger name=tick"}, "op=trigger timer tick "},
		{admin.TriggerRequest{Plugin: "echo", Kind: "udev", Args: []string{"ACTION=add", "DEVPATH=/devices/virtual/block/sdz/sdz1",
			"SUBSYSTEM=block", "DEVNAME=sdz1", "ID_FS_LABEL=MEDIA"}},
			[]string{"event udev tag=v1 ACTION=add AIRLOCK_SYNTH=trigger DEVNAME=/dev/sdz1 DEVPATH=/devices/virtual/block/sdz/sdz1 DEVTYPE= ID_FS_LABEL=MEDIA SEQNUM= SUBSYSTEM=block"},
			"op=trigger udev add /devices/virtual/block/sdz/sdz1 "},
		{admin.TriggerRequest{Plugin: "echo", Kind: "dbus", Args: []string{"path=/org/freedesktop/timedate1", "interface=org.freedesktop.DBus.Properties", "member=PropertiesChanged"}},
			[]string{"event dbus_signal tag=v1 AIRLOCK_SYNTH=trigger body= interface=org.freedesktop.DBus.Properties member=PropertiesChanged path=/org/freedesktop/timedate1 sender= sender_name= signature="},
			"op=trigger dbus /org/freedesktop/timedate1 org.freedesktop.DBus.Properties.PropertiesChanged "},
	}
	for _, c := range cases {
		rep, err := r.client.Trigger(ctx, c.req)
		if err != nil || !rep.Queued {
			t.Fatalf("trigger %+v: %+v, %v", c.req, rep, err)
		}
		r.log.Wait(1, append(c.want, "plugin=echo")...)
		r.audit.Wait(1, "plugin=echo", "capability=admin", c.op, "decision=allow")
	}

	refused := []struct {
		req  admin.TriggerRequest
		want string
	}{
		{admin.TriggerRequest{Plugin: "echo", Kind: "timer", Args: []string{"name=tock"}}, `plugin "echo" has no timer "tock" (its timers: tick)`},
		{admin.TriggerRequest{Plugin: "nope", Kind: "timer", Args: []string{"name=tick"}}, `no plugin "nope" is running (see airlock status)`},
		{admin.TriggerRequest{Plugin: "echo", Kind: "udev", Args: []string{"ACTION=add", "DEVPATH=sdz"}}, "udev needs an ACTION and a DEVPATH starting with /"},
		{admin.TriggerRequest{Plugin: "echo", Kind: "udev", Args: []string{"ACTION=add", "DEVPATH=/x", "ACTION=remove"}}, "give it as the ACTION or DEVPATH argument"},
		{admin.TriggerRequest{Plugin: "echo", Kind: "mount"}, `unknown event "mount" (use timer, udev, dbus or mqtt)`},
		{admin.TriggerRequest{Plugin: "timer-only", Kind: "udev", Args: []string{"ACTION=add", "DEVPATH=/x"}}, `plugin "timer-only" has no [[trigger.udev]], so it never receives a device event (add one to `},
		{admin.TriggerRequest{Plugin: "timer-only", Kind: "dbus", Args: []string{"path=/x", "interface=a.b", "member=C"}}, `plugin "timer-only" has no [[trigger.dbus]], so it never receives a D-Bus signal`},
	}
	for _, c := range refused {
		if _, err := r.client.Trigger(ctx, c.req); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("trigger %+v: error %v, want %q", c.req, err, c.want)
		}
	}
	r.audit.Wait(1, "plugin=nope", "capability=admin", "decision=deny", "no such plugin is running")
	r.audit.Wait(1, "plugin=echo", "capability=admin", "op=trigger timer decision=deny", "has no timer")
}

func TestSocketOff(t *testing.T) {
	r := start(t, "[admin]\nsocket = \"off\"\n")
	if _, err := os.Stat(r.socket); !os.IsNotExist(err) {
		t.Errorf("admin socket exists with socket = \"off\": %v", err)
	}
	_, err := r.client.Status(context.Background())
	if err == nil || !strings.Contains(err.Error(), "no airlock host is listening on") {
		t.Errorf("status with the socket off: %v", err)
	}
}

// A second host on the same socket is refused while the first serves it,
// and a socket left behind by a dead host is replaced.
func TestSocketInUseAndStale(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.sock")
	first, err := admin.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Listen(path); err == nil || !strings.Contains(err.Error(), "another airlock host is serving it") {
		t.Errorf("second Listen: %v", err)
	}
	// A dead host's socket: the file stays, nobody answers.
	first.Close()
	os.WriteFile(filepath.Join(dir, "plain"), nil, 0o600)
	if _, err := admin.Listen(filepath.Join(dir, "plain")); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("Listen over a plain file: %v", err)
	}
	stale, err := admin.Listen(path)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	stale.Close()
}

// fakeHost serves the peer-credential test without plugins.
type fakeHost struct{}

func (fakeHost) Report() admin.Report                   { return admin.Report{Device: "sim"} }
func (fakeHost) Manifest(string) *manifest.Manifest     { return nil }
func (fakeHost) Deliver(string, capability.Event) bool  { return false }
func (fakeHost) Synthesizers() []capability.Synthesizer { return nil }

// dialAs connects to path from a thread whose effective uid is uid, so that
// the kernel records that uid for SO_PEERCRED and checks the socket file's
// mode against it. Only that thread changes identity; it ends with the
// goroutine, since it stays locked.
func dialAs(t *testing.T, path string, uid int) (net.Conn, error) {
	t.Helper()
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESUID, ^uintptr(0), uintptr(uid), ^uintptr(0)); e != 0 {
			ch <- result{err: e}
			return
		}
		c, err := net.Dial("unix", path)
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// Other users are kept out twice: by the socket's mode, and (should the
// mode be loosened) by the peer's credentials, which are audited.
func TestOtherUsersRefused(t *testing.T) {
	testenv.NeedRoot(t, "connect to the admin socket as another user")
	// Not t.TempDir: its parent is 0700, which would keep the other user
	// out before the socket's own mode is tested.
	dir, err := os.MkdirTemp("", "airlock-admin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "admin.sock")
	srv, err := admin.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	audit, auditLogger := testenv.NewLog(t)
	_, logger := testenv.NewLog(t)
	srv.Serve(fakeHost{}, gate.New(auditLogger), logger)
	defer srv.Close()

	if c, err := dialAs(t, path, 65534); err == nil || !errors.Is(err, syscall.EACCES) {
		if c != nil {
			c.Close()
		}
		t.Fatalf("uid 65534 connected to a 0600 socket: %v", err)
	}
	os.Chmod(path, 0o666)
	c, err := dialAs(t, path, 65534)
	if err != nil {
		t.Fatalf("connect as uid 65534 after chmod 0666: %v", err)
	}
	defer c.Close()
	io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: airlock\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "permission denied: uid 65534 pid ") {
		t.Errorf("uid 65534 got %s: %s", resp.Status, body)
	}
	audit.Wait(1, "capability=admin", "op=GET /v1/status", "decision=deny", "reason=uid 65534 pid")
	// Root still gets in.
	if _, err := admin.NewClient(path).Status(context.Background()); err != nil {
		t.Errorf("root: %v", err)
	}
}
