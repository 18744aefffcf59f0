// Package dbussim is the simulated device's system bus: a private dbus-daemon
// and small Go services that play systemd1's Manager, logind's Manager,
// timedate1 and hostname1. The embedded default device runs them, and tests
// use them as peers beside the real systemd-timedated and systemd-hostnamed.
package dbussim

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/godbus/dbus/v5"
	"github.com/godbus/dbus/v5/prop"
)

// Bus is a private dbus-daemon listening on a unix socket in Dir. Its
// policy allows everything: it stands in for a device's system bus, where
// root in the host container is allowed the same.
type Bus struct {
	Dir     string
	Socket  string
	Address string // unix:path=<Socket>
	conf    string

	mu  sync.Mutex
	cmd *exec.Cmd
}

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  %s
%s
</busconfig>
`

// AllowAll is the simulated device's bus policy: everyone may own any name
// and send anything.
const AllowAll = `  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
  <limit name="max_message_size">8388608</limit>`

// StartBus starts dbus-daemon with its socket in dir and the AllowAll
// policy. serviceDir, when not "", holds .service files for bus activation.
func StartBus(dir, serviceDir string) (*Bus, error) {
	return StartBusWithPolicy(dir, serviceDir, AllowAll)
}

// StartBusWithPolicy is StartBus with policy, the <policy> and <limit>
// elements of the bus's configuration.
func StartBusWithPolicy(dir, serviceDir, policy string) (*Bus, error) {
	if _, err := exec.LookPath("dbus-daemon"); err != nil {
		return nil, fmt.Errorf("dbus-daemon not found (apt-get install dbus): %w", err)
	}
	b := &Bus{Dir: dir, Socket: filepath.Join(dir, "system_bus_socket"), conf: filepath.Join(dir, "bus.conf")}
	b.Address = "unix:path=" + b.Socket
	sd := ""
	if serviceDir != "" {
		sd = "<servicedir>" + serviceDir + "</servicedir>"
	}
	if err := os.WriteFile(b.conf, []byte(fmt.Sprintf(busConfig, b.Socket, sd, policy)), 0o644); err != nil {
		return nil, err
	}
	return b, b.Start()
}

// Start (re)starts the daemon on the same socket, and returns once it
// accepts connections.
func (b *Bus) Start() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return errors.New("bus already running")
	}
	b.reapLeftover()
	os.Remove(b.Socket)
	cmd := exec.Command("dbus-daemon", "--config-file="+b.conf, "--nofork", "--nopidfile", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	cmd.Stderr = nil
	// The daemon dies with us, even by kill -9 (dieWithParent); and if it
	// did not (a kernel without it), the next Start reaps it by its pid file.
	if err := dieWithParent(cmd); err != nil {
		return fmt.Errorf("start dbus-daemon: %w", err)
	}
	os.WriteFile(b.pidFile(), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && !strings.HasPrefix(line, "unix:") {
			err = fmt.Errorf("dbus-daemon printed %q", line)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(30 * time.Second):
		err = errors.New("dbus-daemon did not start within 30s")
	}
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return err
	}
	b.cmd = cmd
	return nil
}

// Stop kills the daemon, as a crash would; every connection drops.
func (b *Bus) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	b.cmd.Process.Kill()
	b.cmd.Wait()
	b.cmd = nil
	os.Remove(b.pidFile())
}

func (b *Bus) pidFile() string { return filepath.Join(b.Dir, "dbus-daemon.pid") }

// reapLeftover kills a daemon that a host killed before it could stop it
// left running on this directory: the one the pid file names, if it is
// still a dbus-daemon with this bus's config (not a stranger that took the
// pid since).
func (b *Bus) reapLeftover() {
	pb, err := os.ReadFile(b.pidFile())
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pb)))
	if err != nil || pid <= 0 {
		return
	}
	if !OwnDaemon(pid, b.conf) {
		return
	}
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
	// It is not our child: wait for it to go (a bound only for a hang).
	for i := 0; i < 500 && OwnDaemon(pid, b.conf); i++ {
		time.Sleep(10 * time.Millisecond)
	}
}

// OwnDaemon reports whether process pid is a live dbus-daemon running the
// config file conf.
func OwnDaemon(pid int, conf string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
		// A zombie has exited; only its parent's wait is missing.
		if _, rest, ok := strings.Cut(string(st), ") "); ok && strings.HasPrefix(rest, "Z") {
			return false
		}
	}
	args := strings.Split(string(cmdline), "\x00")
	return len(args) > 0 && filepath.Base(args[0]) == "dbus-daemon" && slices.Contains(args, "--config-file="+conf)
}

// Config is the path of the daemon's config file, which names it in ps.
func (b *Bus) Config() string { return b.conf }

// Connect opens a new connection to the bus.
func (b *Bus) Connect() (*dbus.Conn, error) { return dbus.Connect(b.Address) }

// Unit is one simulated systemd unit.
type Unit struct {
	Name        string
	ActiveState string // active, inactive, ...
	path        dbus.ObjectPath
	props       *prop.Properties
}

// Device holds the simulated services on one bus connection.
type Device struct {
	conn *dbus.Conn

	mu      sync.Mutex // guards everything below
	units   map[string]*Unit
	jobs    uint32
	reboots int
	subs    int
	time    *prop.Properties
	host    *prop.Properties
	// OnReboot, if set, is told of each Reboot (systemd1's or logind's).
	OnReboot func(via string)
}

const (
	systemdPath  = dbus.ObjectPath("/org/freedesktop/systemd1")
	systemdIface = "org.freedesktop.systemd1.Manager"
	unitIface    = "org.freedesktop.systemd1.Unit"
)

// DefaultUnits are the units the simulated systemd knows, all active.
var DefaultUnits = []string{"bluetooth.service", "ssh.service", "systemd-timesyncd.service", "NetworkManager.service"}

// Names are the well-known names a Device owns.
var Names = []string{"org.freedesktop.systemd1", "org.freedesktop.login1", "org.freedesktop.timedate1", "org.freedesktop.hostname1"}

// Serve exports the simulated services on conn and takes the names in
// names (nil means all of Names). A name another peer already owns (a real
// systemd-timedated, say) is left to it.
func Serve(conn *dbus.Conn, names []string) (*Device, error) {
	if names == nil {
		names = Names
	}
	d := &Device{conn: conn, units: map[string]*Unit{}}
	for _, n := range names {
		var err error
		switch n {
		case "org.freedesktop.systemd1":
			err = d.serveSystemd()
		case "org.freedesktop.login1":
			err = conn.ExportMethodTable(map[string]any{
				"Reboot":   func(interactive bool) *dbus.Error { d.reboot("logind"); return nil },
				"PowerOff": func(interactive bool) *dbus.Error { d.reboot("logind poweroff"); return nil },
			}, "/org/freedesktop/login1", "org.freedesktop.login1.Manager")
		case "org.freedesktop.timedate1":
			err = d.serveTimedate()
		case "org.freedesktop.hostname1":
			err = d.serveHostname()
		default:
			err = fmt.Errorf("no simulated service %q", n)
		}
		if err != nil {
			return nil, err
		}
		r, err := conn.RequestName(n, dbus.NameFlagDoNotQueue)
		if err != nil {
			return nil, fmt.Errorf("request %s: %w", n, err)
		}
		if r != dbus.RequestNameReplyPrimaryOwner {
			return nil, fmt.Errorf("request %s: already owned", n)
		}
	}
	return d, nil
}

func (d *Device) reboot(via string) {
	d.mu.Lock()
	d.reboots++
	f := d.OnReboot
	d.mu.Unlock()
	if f != nil {
		f(via)
	}
}

// Reboots counts Reboot calls.
func (d *Device) Reboots() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.reboots
}

// unitPath escapes a unit name as systemd does for its object paths.
func unitPath(name string) dbus.ObjectPath {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' && i > 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "_%02x", c)
		}
	}
	return dbus.ObjectPath("/org/freedesktop/systemd1/unit/" + b.String())
}

func (d *Device) serveSystemd() error {
	for _, n := range DefaultUnits {
		u := &Unit{Name: n, ActiveState: "active", path: unitPath(n)}
		props, err := prop.Export(d.conn, u.path, prop.Map{unitIface: {
			"Id":          {Value: n, Emit: prop.EmitConst},
			"ActiveState": {Value: "active", Emit: prop.EmitTrue},
			"SubState":    {Value: "running", Emit: prop.EmitTrue},
		}})
		if err != nil {
			return err
		}
		u.props = props
		d.units[n] = u
	}
	job := func(name, mode string, state, sub string) (dbus.ObjectPath, *dbus.Error) {
		d.mu.Lock()
		u := d.units[name]
		if u == nil {
			d.mu.Unlock()
			return "", dbus.NewError("org.freedesktop.systemd1.NoSuchUnit", []any{"Unit " + name + " not loaded."})
		}
		switch mode {
		case "replace", "fail", "isolate", "ignore-dependencies", "ignore-requirements":
		default:
			d.mu.Unlock()
			return "", dbus.NewError("org.freedesktop.DBus.Error.InvalidArgs", []any{"Job mode " + mode + " invalid."})
		}
		d.jobs++
		id := d.jobs
		subscribed := d.subs > 0
		u.ActiveState = state
		d.mu.Unlock()
		u.props.SetMust(unitIface, "ActiveState", state)
		u.props.SetMust(unitIface, "SubState", sub)
		path := dbus.ObjectPath(fmt.Sprintf("/org/freedesktop/systemd1/job/%d", id))
		if subscribed {
			d.conn.Emit(systemdPath, systemdIface+".JobRemoved", id, path, name, "done")
		}
		return path, nil
	}
	return d.conn.ExportMethodTable(map[string]any{
		"Reboot":      func() *dbus.Error { d.reboot("systemd1"); return nil },
		"StartUnit":   func(name, mode string) (dbus.ObjectPath, *dbus.Error) { return job(name, mode, "active", "running") },
		"StopUnit":    func(name, mode string) (dbus.ObjectPath, *dbus.Error) { return job(name, mode, "inactive", "dead") },
		"RestartUnit": func(name, mode string) (dbus.ObjectPath, *dbus.Error) { return job(name, mode, "active", "running") },
		"GetUnit": func(name string) (dbus.ObjectPath, *dbus.Error) {
			d.mu.Lock()
			defer d.mu.Unlock()
			if u := d.units[name]; u != nil {
				return u.path, nil
			}
			return "", dbus.NewError("org.freedesktop.systemd1.NoSuchUnit", []any{"Unit " + name + " not loaded."})
		},
		"Subscribe":   func() *dbus.Error { d.mu.Lock(); d.subs++; d.mu.Unlock(); return nil },
		"Unsubscribe": func() *dbus.Error { d.mu.Lock(); d.subs--; d.mu.Unlock(); return nil },
	}, systemdPath, systemdIface)
}

// ActiveState returns a unit's state, or "" for an unknown unit.
func (d *Device) ActiveState(unit string) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u := d.units[unit]; u != nil {
		return u.ActiveState
	}
	return ""
}

// Subscribed reports how many Manager.Subscribe calls are outstanding.
func (d *Device) Subscribed() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.subs
}

const timedatePath = dbus.ObjectPath("/org/freedesktop/timedate1")

func (d *Device) serveTimedate() error {
	props, err := prop.Export(d.conn, timedatePath, prop.Map{"org.freedesktop.timedate1": {
		"Timezone":        {Value: "UTC", Emit: prop.EmitTrue},
		"LocalRTC":        {Value: false, Emit: prop.EmitTrue},
		"CanNTP":          {Value: true, Emit: prop.EmitFalse},
		"NTP":             {Value: true, Emit: prop.EmitTrue},
		"NTPSynchronized": {Value: false, Emit: prop.EmitTrue},
		"TimeUSec":        {Value: uint64(0), Emit: prop.EmitFalse},
	}})
	if err != nil {
		return err
	}
	d.time = props
	return d.conn.ExportMethodTable(map[string]any{
		"SetNTP": func(use, interactive bool) *dbus.Error {
			props.SetMust("org.freedesktop.timedate1", "NTP", use)
			return nil
		},
	}, timedatePath, "org.freedesktop.timedate1")
}

// SetNTPSynchronized flips timedate1's NTPSynchronized, emitting
// PropertiesChanged as timedated does when timesyncd reports.
func (d *Device) SetNTPSynchronized(v bool) {
	if d.time != nil {
		d.time.SetMust("org.freedesktop.timedate1", "NTPSynchronized", v)
	}
}

const hostnamePath = dbus.ObjectPath("/org/freedesktop/hostname1")

func (d *Device) serveHostname() error {
	props, err := prop.Export(d.conn, hostnamePath, prop.Map{"org.freedesktop.hostname1": {
		"Hostname":       {Value: "airlock-sim", Emit: prop.EmitTrue},
		"StaticHostname": {Value: "airlock-sim", Emit: prop.EmitTrue},
		"PrettyHostname": {Value: "", Emit: prop.EmitTrue},
	}})
	if err != nil {
		return err
	}
	d.host = props
	set := func(prop string) func(string, bool) *dbus.Error {
		return func(name string, interactive bool) *dbus.Error {
			props.SetMust("org.freedesktop.hostname1", prop, name)
			return nil
		}
	}
	return d.conn.ExportMethodTable(map[string]any{
		"SetHostname":       set("Hostname"),
		"SetStaticHostname": set("StaticHostname"),
		"SetPrettyHostname": set("PrettyHostname"),
	}, hostnamePath, "org.freedesktop.hostname1")
}

// Run is the simulated device's whole bus: a daemon in dir and the services
// on it. Close stops both.
type Run struct {
	Bus    *Bus
	Device *Device
	conn   *dbus.Conn
}

// Start starts a private bus in dir with every simulated service on it.
func Start(ctx context.Context, dir string) (*Run, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	b, err := StartBus(dir, "")
	if err != nil {
		return nil, err
	}
	conn, err := b.Connect()
	if err != nil {
		b.Stop()
		return nil, err
	}
	dev, err := Serve(conn, nil)
	if err != nil {
		conn.Close()
		b.Stop()
		return nil, err
	}
	return &Run{Bus: b, Device: dev, conn: conn}, nil
}

// Close stops the services and the daemon.
func (r *Run) Close() {
	r.conn.Close()
	r.Bus.Stop()
}
