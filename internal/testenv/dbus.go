package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	godbus "github.com/godbus/dbus/v5"

	"github.com/airlockhq/airlock/internal/simdevice/dbussim"
)

// DBusEnv is a private system bus for a test: a dbus-daemon on a socket in
// a temporary directory, the Go services of internal/simdevice/dbussim on it, and, when
// asked for, the real systemd-timedated and systemd-hostnamed, activated by
// the bus on first use.
type DBusEnv struct {
	Bus    *dbussim.Bus
	Device *dbussim.Device // the Go services (systemd1, login1, and any not run for real)
	// Real lists the names served by real systemd binaries.
	Real []string
	// Etc is the scratch /etc that the real services see.
	Etc string

	t     testing.TB
	conn  *godbus.Conn
	names []string
}

// realServices are the systemd daemons that run here against a private bus.
var realServices = []struct{ name, bin string }{
	{"org.freedesktop.timedate1", "/lib/systemd/systemd-timedated"},
	{"org.freedesktop.hostname1", "/lib/systemd/systemd-hostnamed"},
}

// StartDBus starts a private bus. With real, timedate1 and hostname1 are
// the real systemd daemons: each runs in its own mount and UTS namespace
// (unshare -mu) with a scratch /etc bind-mounted over /etc, because their
// Set* methods write there and sethostname would rename the test machine;
// timedated gets SYSTEMD_TIMEDATED_NTP_SERVICES= so that it looks for no
// NTP unit. Missing prerequisites skip (or, strict, fail) the test.
//
// Never call timedated's SetTimezone or SetLocalRTC from a test: they set
// the kernel's timezone, and the first such call after boot warps the
// machine's clock by the zone's offset.
func StartDBus(t testing.TB, real bool) *DBusEnv {
	t.Helper()
	return startDBus(t, real, dbussim.AllowAll)
}

// StartSystemDBus starts a private bus whose policy is that of a device's
// system bus (/usr/share/dbus-1/system.conf): deny by default, no name
// owned and no method call sent unless a rule punches a hole, the driver's
// own interfaces open to all, Monitoring only to the privileged user (the
// one running the test, as the host runs privileged on a device), and
// dbus-daemon's default limits. Holes are punched, as a service's
// system.d file does, for the simulated services and for names: the
// privileged user may own each, and everyone may call it.
func StartSystemDBus(t testing.TB, names ...string) *DBusEnv {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return startDBus(t, false, systemPolicy(u.Username, append(slices.Clone(simNames), names...)))
}

// simNames are the services that internal/simdevice/dbussim serves.
var simNames = []string{"org.freedesktop.systemd1", "org.freedesktop.login1", "org.freedesktop.timedate1", "org.freedesktop.hostname1"}

func systemPolicy(privileged string, names []string) string {
	var own, send strings.Builder
	for _, n := range names {
		fmt.Fprintf(&own, "    <allow own=%q/>\n", n)
		fmt.Fprintf(&send, "    <allow send_destination=%q/>\n", n)
	}
	return fmt.Sprintf(`  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus" send_member="UpdateActivationEnvironment"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
%s  </policy>
  <policy user=%q>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Monitoring"/>
%s  </policy>`, send.String(), privileged, own.String())
}

func startDBus(t testing.TB, real bool, policy string) *DBusEnv {
	t.Helper()
	NeedCommand(t, "dbus-daemon", "dbus")
	// A unix socket path has a 108-byte limit; t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "airlock-dbus-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := &DBusEnv{t: t, Etc: filepath.Join(dir, "etc")}
	svcDir := ""
	if real {
		NeedRoot(t, "bind-mount a scratch /etc for systemd-timedated and systemd-hostnamed")
		NeedCommand(t, "unshare", "util-linux")
		for _, s := range realServices {
			if _, err := os.Stat(s.bin); err != nil {
				Missing(t, s.bin+" not found; install it with apt-get install systemd")
			}
		}
		svcDir = filepath.Join(dir, "services")
		if err := e.writeServices(dir, svcDir); err != nil {
			t.Fatal(err)
		}
	}
	b, err := dbussim.StartBusWithPolicy(dir, svcDir, policy)
	if err != nil {
		t.Fatal(err)
	}
	e.Bus = b
	t.Cleanup(func() {
		if e.conn != nil {
			e.conn.Close()
		}
		b.Stop()
	})
	e.names = simNames
	if real {
		e.names = simNames[:2]
		for _, s := range realServices {
			e.Real = append(e.Real, s.name)
		}
	}
	e.serve()
	return e
}

func (e *DBusEnv) serve() {
	e.t.Helper()
	conn, err := e.Bus.Connect()
	if err != nil {
		e.t.Fatal(err)
	}
	dev, err := dbussim.Serve(conn, e.names)
	if err != nil {
		conn.Close()
		e.t.Fatal(err)
	}
	e.conn, e.Device = conn, dev
}

// Restart kills the bus, as a crash would, and starts it again on the same
// socket, with the Go services reconnected. Between the two, call
// between (may be nil): the bus is down then.
func (e *DBusEnv) Restart(between func()) {
	e.t.Helper()
	e.conn.Close()
	e.Bus.Stop()
	if between != nil {
		between()
	}
	if err := e.Bus.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.serve()
}

// Conn opens a client connection to the bus, closed at the test's end.
func (e *DBusEnv) Conn() *godbus.Conn {
	e.t.Helper()
	c, err := e.Bus.Connect()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// writeServices writes bus-activation files that start the real daemons
// in their namespaces, and the scratch /etc they see.
func (e *DBusEnv) writeServices(dir, svcDir string) error {
	if err := os.MkdirAll(svcDir, 0o755); err != nil {
		return err
	}
	if err := os.MkdirAll(e.Etc, 0o755); err != nil {
		return err
	}
	// What the daemons read: os-release for hostnamed, machine-id, and
	// a static hostname of our own.
	for _, f := range []string{"os-release", "machine-id"} {
		if b, err := os.ReadFile(filepath.Join("/etc", f)); err == nil {
			os.WriteFile(filepath.Join(e.Etc, f), b, 0o644)
		}
	}
	if err := os.WriteFile(filepath.Join(e.Etc, "hostname"), []byte("airlock-test\n"), 0o644); err != nil {
		return err
	}
	addr := "unix:path=" + filepath.Join(dir, "system_bus_socket")
	for _, s := range realServices {
		base := filepath.Base(s.bin)
		script := filepath.Join(dir, base+".sh")
		body := fmt.Sprintf("#!/bin/sh\nexec unshare -mu sh -c 'mount --bind %s /etc && exec env DBUS_SYSTEM_BUS_ADDRESS=%s SYSTEMD_TIMEDATED_NTP_SERVICES= SYSTEMD_LOG_LEVEL=warning %s'\n", e.Etc, addr, s.bin)
		if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
			return err
		}
		unit := fmt.Sprintf("[D-BUS Service]\nName=%s\nExec=%s\nUser=root\n", s.name, script)
		if err := os.WriteFile(filepath.Join(svcDir, s.name+".service"), []byte(unit), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// DBusSend runs dbus-send --print-reply against the bus, for comparing
// airlock's results with the reference tool's.
func (e *DBusEnv) DBusSend(args ...string) string {
	e.t.Helper()
	bin := NeedCommand(e.t, "dbus-send", "dbus")
	cmd := exec.Command(bin, append([]string{"--bus=" + e.Bus.Address, "--print-reply"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		e.t.Fatalf("dbus-send %v: %v\n%s", args, err, out)
	}
	return string(out)
}
