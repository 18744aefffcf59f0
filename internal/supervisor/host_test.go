package supervisor_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/simdevice/supsim"
	"github.com/airlockhq/airlock/internal/supervisor"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/timer"
)

func randomKey(t *testing.T) string {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "key" + hex.EncodeToString(b)
}

func exampleManifest(t *testing.T) string {
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "examples/supervisor-reboot/plugin.toml"))
	if err != nil {
		t.Fatal(err)
	}
	// The test fires the checks itself.
	return strings.Replace(string(b), `every = "30s"`, `every = "24h"`, 1)
}

func (r *rig) running(name string) {
	r.t.Helper()
	for _, s := range r.h.Status() {
		if s.Name == name {
			if s.State != plugin.StateRunning || s.Restarts != 0 {
				r.t.Errorf("plugin %s: %+v, want running with no restarts", name, s)
			}
			return
		}
	}
	r.t.Errorf("no plugin %s", name)
}

// The simulated device: every operation through the real host, the SDK and
// loopback HTTP; grants and denials; load-time refusal; update locks; the
// example plugin; a supervisor that goes away.
func TestSimulatedDevice(t *testing.T) {
	key := randomKey(t)
	r := start(t, "sim", "", supervisor.CapabilityOptions{Sim: supsim.Options{APIKey: key, RebootDelay: 20 * time.Millisecond}}, key,
		plug{"p", manifest("p", everything, ""), guestSrc},
		plug{"narrow", manifest("narrow", `"service.restart:main"`, ""), guestSrc},
		plug{"greedy", "# BROKEN\n" + manifest("greedy", "-", ""), guestSrc},
		plug{"typo", "# BROKEN\n" + manifest("typo", `"rebot", "service.restart"`, ""), guestSrc},
		plug{"supervisor-reboot", exampleManifest(t), "examples/supervisor-reboot"},
	)
	step := steps(t)
	dev := r.cap.Sim()
	if dev == nil {
		t.Fatal("no simulator on the simulated device")
	}
	r.log.Wait(1, "airlock running")
	settle := func() {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := dev.Settle(ctx); err != nil {
			t.Fatal(err)
		}
	}

	step("load", func() {
		var errs []string
		for _, err := range r.h.Failures() {
			errs = append(errs, err.Error())
		}
		all := strings.Join(errs, "\n")
		for _, want := range []string{
			`plugin "greedy": supervisor import airlock_supervisor_v1 denied: plugin.toml has no [supervisor] section`,
			`supervisor.allow: entry 0 "rebot": unknown supervisor operation; did you mean "reboot"?`,
			`supervisor.allow: entry 1 "service.restart": service.restart needs a service name: write "service.restart:<service>", or "service.restart:*" for every service`,
		} {
			if !strings.Contains(all, want) {
				t.Errorf("load errors lack %q:\n%s", want, all)
			}
		}
		if n := r.audit.Count("plugin=greedy", "capability=supervisor", "op=import airlock_supervisor_v1", "decision=deny"); n != 1 {
			t.Errorf("greedy's refusal audited %d times, want 1", n)
		}
	})

	step("reads", func() {
		r.expect("p", "ping", "ok")
		r.expect("p", "healthy", "ok true")
		dev.SetHealthy(false)
		r.expect("p", "healthy", "ok false")
		dev.SetHealthy(true)
		r.expect("p", "version", "ok "+supsim.SupervisorVersion)
		r.expect("p", "name", "ok airlock-sim")
		r.expect("p", "tags", "ok map[role:simulated]")
		r.expect("p", "hostname", "ok airlock-sim")
		r.expect("p", "device", "ok status=Idle supervisor="+supsim.SupervisorVersion+" json=true")
		r.expect("p", "state", "ok app=applied services=bluetooth-helper=Running,main=Running")
		r.expect("p", "apps", "ok airlock-sim:done:2")
		r.expect("p", "app-state", "ok commit=true json=true")
		r.expect("p", "vpn", "ok enabled=true connected=false")
		r.expect("p", "device-type", "ok type=true arch=true")
		r.expect("p", "container-ids", "ok bluetooth-helper,main")
		dev.HostLog("ssh.service", "one")
		dev.HostLog("ssh.service", "two")
		dev.HostLog("other.service", "three")
		r.expect("p", "journal ssh", `ok ["one" "two"] end=lines`)
		r.expect("p", "journal other", `denied: plugin "p": supervisor journal.read:other denied: supervisor.allow does not list "journal.read:other"; it grants journal.read only for "ssh"`)
		r.expect("p", "logs main", "ok lines=0 end=deadline")
		r.expect("p", "logs bluetooth-helper", `denied: plugin "p": supervisor logs.read:bluetooth-helper denied: supervisor.allow does not list "logs.read:bluetooth-helper"; it grants logs.read only for "main"`)
	})

	step("actions", func() {
		r.expect("p", "blink", "ok")
		r.expect("p", "update", "ok triggered=true")
		r.expect("p", "set-hostname plant-7", "ok")
		r.expect("p", "hostname", "ok plant-7")
		r.expect("p", "purge", "ok")
		r.expect("p", "restart-app", "ok")
		st := dev.State()
		if st.Blinks != 1 || st.Updates != 1 || st.Hostname != "plant-7" || st.Purges != 1 {
			t.Errorf("device state after the actions: %+v", st)
		}
		before, _ := dev.State().Service("main")
		r.expect("p", "restart main", "ok")
		if after, _ := dev.State().Service("main"); after.Restarts != before.Restarts+1 {
			t.Errorf("main restarts %d → %d, want one more", before.Restarts, after.Restarts)
		}
		r.expect("p", "stop bluetooth-helper", "ok")
		if sv, _ := dev.State().Service("bluetooth-helper"); sv.Status != supsim.Stopped {
			t.Errorf("bluetooth-helper is %s after stop", sv.Status)
		}
		r.expect("p", "start bluetooth-helper", "ok")
		if sv, _ := dev.State().Service("bluetooth-helper"); sv.Status != supsim.Running {
			t.Errorf("bluetooth-helper is %s after start", sv.Status)
		}
		r.expect("p", "set-tag location=lab", "ok ")
		r.expect("p", "set-tag owner=x", `denied: plugin "p": supervisor tags.set:owner denied: supervisor.allow does not list "tags.set:owner"; it grants tags.set only for "location"`)
		r.expect("p", "cleanup", "ok ")
		r.expect("p", "restart-app-v1", "ok ")
		r.expect("p", "restart nosuch", `not_found: supervisor service.restart: not_found: the app has no service "nosuch" (the supervisor would act on another service instead)`)
	})

	step("grants", func() {
		r.expect("narrow", "restart main", "ok")
		if n := r.audit.Count("plugin=narrow", "capability=supervisor", "op=service.restart:main", "decision=allow"); n != 1 {
			t.Errorf("allow audited %d times, want 1", n)
		}
		sent := dev.Count(http.MethodPost, "/v2/applications/1/restart-service")
		r.expect("narrow", "restart bluetooth-helper",
			`denied: plugin "narrow": supervisor service.restart:bluetooth-helper denied: supervisor.allow does not list "service.restart:bluetooth-helper"; it grants service.restart only for "main"`)
		r.expect("narrow", "reboot", `denied: plugin "narrow": supervisor reboot denied: supervisor.allow does not list "reboot" (add it to [supervisor] allow in plugin.toml)`)
		r.expect("p", "raw frobnicate", `denied: plugin "p": supervisor frobnicate denied: "frobnicate" is not a supervisor operation this host knows (ping, blink, reboot,`)
		if n := dev.Count(http.MethodPost, "/v2/applications/1/restart-service"); n != sent {
			t.Errorf("a denied restart reached the supervisor")
		}
		if dev.State().Rebooting {
			t.Errorf("a denied reboot reached the supervisor")
		}
		for _, deny := range []string{"op=service.restart:bluetooth-helper", "op=reboot"} {
			if n := r.audit.Count("plugin=narrow", "capability=supervisor", deny, "decision=deny"); n != 1 {
				t.Errorf("deny %s audited %d times, want 1:\n%s", deny, n, strings.Join(r.audit.Lines(), "\n"))
			}
		}
		if n := r.audit.Count("plugin=p", "op=frobnicate", "decision=deny"); n != 1 {
			t.Errorf("unknown op audited %d times, want 1", n)
		}
		r.running("narrow")
	})

	step("invalid requests", func() {
		r.expect("p", "raw reboot:forse=true", `invalid: supervisor reboot: invalid: unknown request field "forse" (reboot takes force)`)
		r.expect("p", "raw reboot:force=yes", `invalid: supervisor reboot: invalid: force must be "true" or "false", not "yes"`)
		r.expect("p", "raw service.restart", `invalid: supervisor service.restart: invalid: the request has no service name (field "service")`)
		r.expect("p", "raw service.stop:service=../etc", `invalid: supervisor service.stop: invalid: service name "../etc" is not a compose service name`)
		r.expect("p", "raw device.read:what=secrets", `invalid: supervisor device.read: invalid: what = "secrets" is not one of device, status,`)
		r.expect("p", "raw hostname.set", `invalid: supervisor hostname.set: invalid: the request has no "hostname" field`)
	})

	// Each check is fired after the previous one was handled, so that
	// timer coalescing never merges two.
	fire := func() {
		t.Helper()
		if !r.h.Deliver("supervisor-reboot", timer.Event("supervisor-reboot", "check", time.Now())) {
			t.Fatal("check not queued")
		}
	}
	step("update lock and the example", func() {
		r.expect("p", "stop main", "ok")
		if !dev.Lock("main") {
			t.Fatal("lock taken")
		}
		got := r.expect("p", "reboot", "locked: supervisor reboot (POST /v1/reboot): locked (HTTP 423): ")
		if !strings.Contains(got, "is_locked=true") {
			t.Errorf("errors.Is(err, abi.Locked) was false in the guest: %s", got)
		}
		for i := 1; i <= 3; i++ {
			fire()
			r.log.Wait(1, "service is not running", "service=main", "status=Stopped", fmt.Sprintf("strikes=%d", i))
		}
		r.log.Wait(1, "the update lock refused the reboot; asking again at the next check", "plugin=supervisor-reboot")
		if st := dev.State(); st.Rebooting || st.Reboots != 0 {
			t.Fatalf("rebooted through the lock: %+v", st)
		}
		dev.Unlock()
		fire()
		r.log.Wait(1, "reboot requested", "plugin=supervisor-reboot", "down_for_checks=4")
		settle()
		if st := dev.State(); st.Reboots != 1 {
			t.Fatalf("reboots = %d, want 1", st.Reboots)
		}
		fire()
		r.log.Wait(1, "DEBUG service is running service=main", "plugin=supervisor-reboot")

		// force overrides the lock, as the manifest's grant allows.
		dev.Lock("main")
		r.expect("p", "reboot force", "ok")
		settle()
		if st := dev.State(); st.Reboots != 2 || st.LockHolder != "" {
			t.Errorf("after a forced reboot: %+v", st)
		}
		r.running("supervisor-reboot")
	})

	step("shutdown", func() {
		r.expect("p", "shutdown", "ok")
		settle()
		if !dev.State().PoweredOff {
			t.Fatal("device did not power off")
		}
		r.expect("p", "ping", "unavailable: supervisor ping (GET /ping): unavailable: supervisor unreachable")
		dev.PowerOn()
		r.expect("p", "ping", "ok")
	})

	step("supervisor down", func() {
		dev.Close()
		r.expect("p", "blink", "unavailable: supervisor blink (POST /v1/blink): unavailable: supervisor unreachable: ")
		r.expect("narrow", "restart main", "unavailable: ")
		r.expect("p", "raw shutdown:bogus=1", `invalid: supervisor shutdown: invalid: unknown request field "bogus"`) // still answered
		r.running("p")
		r.running("narrow")
	})
}

// A real supervisor configured by runtime.toml and the environment, played
// by the simulator behind a front that can be slow, hostile or given the
// wrong key.
func TestConfiguredSupervisor(t *testing.T) {
	key := randomKey(t)
	dev := supsim.New(supsim.Options{APIKey: key, RebootDelay: 20 * time.Millisecond})
	defer dev.Close()
	var mode atomic.Value
	mode.Store("")
	release := make(chan struct{})
	cancelled := make(chan struct{}, 8)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch mode.Load() {
		case "slow":
			// Read the body first: only then does net/http watch the
			// connection and cancel the request's context when it closes.
			io.Copy(io.Discard, req.Body)
			select {
			case <-req.Context().Done():
				cancelled <- struct{}{}
			case <-release:
			}
			return
		case "wrongkey":
			req.Header.Set("Authorization", "Bearer not-the-key")
		case "echo":
			// A peer that echoes the key in every reply.
			if req.Method == http.MethodGet {
				w.Header().Set("Content-Type", "application/json")
				fmt.Fprintf(w, `{"status":"Idle %s","commit":%q,"supervisor_version":"17.0.0"}`, key, key)
				return
			}
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"status":"failed","message":"bad key %s"}`, key)
			return
		}
		dev.ServeHTTP(w, req)
	}))
	defer front.Close()
	defer close(release)

	section := fmt.Sprintf("[supervisor]\naddress = %q\napi_key_env = \"AIRLOCK_TEST_SUPERVISOR_KEY\"\napp_id = 1\nretries = 0\n", front.URL)
	getenv := func(name string) string {
		if name == "AIRLOCK_TEST_SUPERVISOR_KEY" {
			return key
		}
		return ""
	}
	r := start(t, "real", section, supervisor.CapabilityOptions{Getenv: getenv}, key,
		plug{"p", manifest("p", everything, "[limits]\nhandler_timeout = \"3s\""), guestSrc})
	if r.cap.Sim() != nil {
		t.Error("a simulator started on a real device")
	}

	step := steps(t)
	r.expect("p", "ping", "ok")
	r.expect("p", "restart main", "ok")
	if sv, _ := dev.State().Service("main"); sv.Restarts != 1 {
		t.Errorf("main restarts = %d, want 1", sv.Restarts)
	}
	for _, e := range dev.Events() {
		if e.Auth != "header" && e.Auth != "none" {
			t.Errorf("the key was not sent as a Bearer header: %+v", e)
		}
	}

	step("wrong key", func() {
		mode.Store("wrongkey")
		defer mode.Store("")
		r.expect("p", "blink", "denied: supervisor blink (POST /v1/blink): denied (HTTP 401): the supervisor refused the host's API key; check BALENA_SUPERVISOR_API_KEY")
		if dev.State().Blinks != 0 {
			t.Error("blinked with a wrong key")
		}
	})

	step("peer echoes the key", func() {
		mode.Store("echo")
		defer mode.Store("")
		r.expect("p", "device", "ok status=Idle [redacted] supervisor=17.0.0 json=true")
		r.expect("p", "blink", "invalid: supervisor blink (POST /v1/blink): invalid (HTTP 400): bad key [redacted]")
	})

	step("slow supervisor", func() {
		mode.Store("slow")
		r.expect("p", "reboot", "timeout: supervisor reboot (POST /v1/reboot): timeout: no reply before the deadline")
		select {
		case <-cancelled:
		case <-time.After(60 * time.Second): // a liveness bound
			t.Fatal("the supervisor never saw the request given up")
		}
		mode.Store("")
		r.expect("p", "ping", "ok")
		if dev.State().Rebooting {
			t.Error("the slow reboot reached the device")
		}
		r.running("p")
	})
}

// No supervisor in the environment or runtime.toml: the host runs, and
// calls say why they cannot work.
func TestNotConfigured(t *testing.T) {
	r := start(t, "real", "", supervisor.CapabilityOptions{Getenv: func(string) string { return "" }}, "no-key-anywhere",
		plug{"p", manifest("p", everything, ""), guestSrc})
	r.expect("p", "reboot", "unavailable: supervisor reboot: unavailable: no supervisor configured: BALENA_SUPERVISOR_ADDRESS is not set (give the service the io.balena.features.supervisor-api label")
	r.expect("p", "device", "unavailable: supervisor device.read: unavailable: no supervisor configured")
	r.log.Wait(1, "no supervisor; plugins' supervisor calls will return unavailable", "capability=supervisor")
	r.running("p")
}

// runtime.toml's [supervisor] is decoded strictly, and a key written there
// is refused without being repeated.
func TestRuntimeConfigErrors(t *testing.T) {
	dir := t.TempDir()
	rt := `plugins = ["plugins"]
[supervisor]
address = "ftp://device"
api_key = "SECRETVALUE123"
api_key_env = "sk_live_0123abc"
retries = 11
timout = "1s"
`
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Capabilities: []capability.Capability{supervisor.NewCapability(supervisor.CapabilityOptions{})}})
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		`runtime.toml:3: supervisor.address: address is not an http:// URL`,
		`runtime.toml:4: supervisor.api_key: the supervisor API key must not be written in runtime.toml`,
		`runtime.toml:5: supervisor.api_key_env: api_key_env is not an environment variable name`,
		`runtime.toml:6: supervisor.retries: retries = 11 is out of range`,
		`supervisor.timout: unknown key`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	for _, secret := range []string{"SECRETVALUE123", "sk_live_0123abc"} {
		if strings.Contains(msg, secret) {
			t.Errorf("the error repeats %q:\n%s", secret, msg)
		}
	}
}

// steps runs the parts of one long scenario in order on the test's own t:
// the rig's log helpers fail that t, which a subtest must not do.
func steps(t *testing.T) func(string, func()) {
	return func(name string, f func()) {
		t.Helper()
		t.Logf("--- step: %s", name)
		f()
	}
}
