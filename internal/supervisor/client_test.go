package supervisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/internal/simdevice/supsim"
)

// testKey is long and distinctive, so that a leak of any of it is easy to find.
const testKey = "k3y-d0-n0t-l3ak-7f1c9e2a4b6d8f0a"

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type rig struct {
	sim  *supsim.Server
	c    *Client
	url  string
	logs *syncBuffer
}

// newRig starts a simulator and a client wired to it over loopback. mod may
// adjust the client's config (a wrong key, no retries...).
func newRig(t *testing.T, opts supsim.Options, mod func(*Config)) *rig {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = testKey
	}
	if opts.AppID == 0 {
		opts.AppID = 42
	}
	if opts.RebootDelay == 0 {
		opts.RebootDelay = 5 * time.Millisecond
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Logger = log
	s := supsim.New(opts)
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	cfg := Config{Address: url, APIKey: opts.APIKey, AppID: opts.AppID, Backoff: time.Millisecond, Logger: log}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if strings.Contains(logs.String(), testKey) {
			t.Errorf("the API key appears in the log output")
		}
	})
	return &rig{sim: s, c: c, url: url, logs: logs}
}

func settle(t *testing.T, s *supsim.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Settle(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestEndpoints(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		call  func(*Client) error
		path  string // the request the simulator must have seen
		check func(*testing.T, supsim.State)
	}{
		{"ping", func(c *Client) error { return c.Ping(ctx) }, "GET /ping", nil},
		{"healthy", func(c *Client) error { return c.Healthy(ctx) }, "GET /v1/healthy", nil},
		{"blink", func(c *Client) error { return c.Blink(ctx) }, "POST /v1/blink",
			func(t *testing.T, st supsim.State) {
				if st.Blinks != 1 {
					t.Errorf("blinks %d", st.Blinks)
				}
			}},
		{"reboot", func(c *Client) error { return c.Reboot(ctx, false) }, "POST /v1/reboot",
			func(t *testing.T, st supsim.State) {
				if !st.Rebooting {
					t.Errorf("not rebooting: %+v", st)
				}
			}},
		{"shutdown", func(c *Client) error { return c.Shutdown(ctx, false) }, "POST /v1/shutdown",
			func(t *testing.T, st supsim.State) {
				if !st.ShuttingDown {
					t.Errorf("not shutting down: %+v", st)
				}
			}},
		{"update", func(c *Client) error {
			triggered, err := c.Update(ctx, true)
			if err == nil && !triggered {
				err = errors.New("204 not reported as triggered")
			}
			return err
		}, "POST /v1/update", func(t *testing.T, st supsim.State) {
			if st.Updates != 1 {
				t.Errorf("updates %d", st.Updates)
			}
		}},
		{"app.restart", func(c *Client) error { return c.RestartApp(ctx, false) }, "POST /v2/applications/42/restart",
			func(t *testing.T, st supsim.State) {
				for _, sv := range st.Services {
					if sv.Restarts != 1 {
						t.Errorf("%s restarts %d", sv.Name, sv.Restarts)
					}
				}
			}},
		{"app.purge", func(c *Client) error { return c.Purge(ctx, false) }, "POST /v2/applications/42/purge",
			func(t *testing.T, st supsim.State) {
				if st.Purges != 1 {
					t.Errorf("purges %d", st.Purges)
				}
			}},
		{"service.restart", func(c *Client) error { return c.RestartService(ctx, "worker", false) }, "POST /v2/applications/42/restart-service",
			func(t *testing.T, st supsim.State) {
				w, _ := st.Service("worker")
				m, _ := st.Service("main")
				if w.Restarts != 1 || m.Restarts != 0 {
					t.Errorf("worker %+v main %+v", w, m)
				}
			}},
		{"service.stop", func(c *Client) error { return c.StopService(ctx, "worker", false) }, "POST /v2/applications/42/stop-service",
			func(t *testing.T, st supsim.State) {
				if w, _ := st.Service("worker"); w.Status != supsim.Stopped {
					t.Errorf("worker %+v", w)
				}
			}},
		{"service.start", func(c *Client) error {
			if err := c.StopService(ctx, "main", false); err != nil {
				return err
			}
			return c.StartService(ctx, "main", false)
		}, "POST /v2/applications/42/start-service",
			func(t *testing.T, st supsim.State) {
				if m, _ := st.Service("main"); m.Status != supsim.Running || m.Restarts != 1 {
					t.Errorf("main %+v", m)
				}
			}},
		{"device", func(c *Client) error {
			d, err := c.Device(ctx)
			if err == nil && (d.SupervisorVersion != supsim.SupervisorVersion || d.Commit != supsim.Release || d.Status != "Idle" || len(d.Raw) == 0) {
				err = fmt.Errorf("device %+v", d)
			}
			return err
		}, "GET /v1/device", nil},
		{"state status", func(c *Client) error {
			s, err := c.StateStatus(ctx)
			if err == nil && (s.AppState != "applied" || len(s.Containers) != 2 || s.Containers[1].ServiceName != "worker" || s.Containers[0].Status != supsim.Running || s.Release != supsim.Release) {
				err = fmt.Errorf("status %+v", s)
			}
			return err
		}, "GET /v2/state/status", nil},
		{"version", func(c *Client) error {
			v, err := c.Version(ctx)
			if err == nil && v != supsim.SupervisorVersion {
				err = fmt.Errorf("version %q", v)
			}
			return err
		}, "GET /v2/version", nil},
		{"device name", func(c *Client) error {
			v, err := c.DeviceName(ctx)
			if err == nil && v != "airlock-sim" {
				err = fmt.Errorf("name %q", v)
			}
			return err
		}, "GET /v2/device/name", nil},
		{"tags", func(c *Client) error {
			v, err := c.Tags(ctx)
			if err == nil && (len(v) != 1 || v[0] != (Tag{ID: 1, Name: "role", Value: "simulated"})) {
				err = fmt.Errorf("tags %+v", v)
			}
			return err
		}, "GET /v2/device/tags", nil},
		{"host config", func(c *Client) error {
			h, err := c.HostConfig(ctx)
			if err == nil && h.Network.Hostname != "airlock-sim" {
				err = fmt.Errorf("host config %+v", h)
			}
			return err
		}, "GET /v1/device/host-config", nil},
		{"hostname.set", func(c *Client) error { return c.SetHostname(ctx, "kiosk-7", false) }, "PATCH /v1/device/host-config",
			func(t *testing.T, st supsim.State) {
				if st.Hostname != "kiosk-7" {
					t.Errorf("hostname %q", st.Hostname)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// The reboot must stay pending while the test looks at it.
			r := newRig(t, supsim.Options{Services: []string{"main", "worker"}, RebootDelay: time.Hour}, nil)
			if err := tc.call(r.c); err != nil {
				t.Fatal(err)
			}
			sawOnce(t, r.sim, tc.path)
			if tc.check != nil {
				tc.check(t, r.sim.State())
			}
		})
	}
}

// sawOnce checks that the simulator saw "METHOD /path" exactly once and
// answered every request with a success.
func sawOnce(t *testing.T, s *supsim.Server, request string) {
	t.Helper()
	method, path, _ := strings.Cut(request, " ")
	if n := s.Count(method, path); n != 1 {
		t.Errorf("simulator saw %s %d times, want once; journal %+v", request, n, s.Events())
	}
	for _, e := range s.Events() {
		if e.Status >= 300 {
			t.Errorf("simulator answered %+v", e)
		}
	}
}

func TestErrorsMapToABI(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		call   func(*Client) error
		code   abi.Errno
		status int
		msg    string // a substring of the message
	}{
		{"unknown service", func(c *Client) error { return c.RestartService(ctx, "nope", false) }, abi.NotFound, 404, "Service not found"},
		{"unknown service for its container id", func(c *Client) error { _, err := c.ContainerID(ctx, "nope"); return err }, abi.Failed, 503, "Could not find service with that name"},
		{"v1 app on a multi-container app", func(c *Client) error { _, err := c.AppV1(ctx); return err }, abi.Invalid, 400, "only allowed on single-container apps"},
		{"v1 stop on a multi-container app", func(c *Client) error { _, err := c.StopAppV1(ctx, false); return err }, abi.Invalid, 400, "Use the v2 service action endpoints"},
		{"local target outside local mode", func(c *Client) error { return c.SetLocalTargetState(ctx, []byte(`{"local":{}}`), false) }, abi.Invalid, 400, "only set when device is in local mode"},
		{"bad hostname", func(c *Client) error { return c.SetHostname(ctx, "no spaces allowed", false) }, abi.Invalid, 400, "Invalid hostname"},
		{"empty service name", func(c *Client) error { return c.StopService(ctx, "", false) }, abi.Invalid, 0, "service name is empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// Two services: on a one-service app the supervisor acts on
			// that service whatever name a request gives.
			r := newRig(t, supsim.Options{Services: []string{"main", "worker"}}, nil)
			err := tc.call(r.c)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err %v (%T), want *Error", err, err)
			}
			if e.Code != tc.code || e.Status != tc.status || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("got %+v, want code %s status %d message ~%q", e, tc.code, tc.status, tc.msg)
			}
			if Errno(err) != tc.code || !errors.Is(err, tc.code) {
				t.Fatalf("Errno/errors.Is disagree with %v", err)
			}
		})
	}
}

func TestNoAppID(t *testing.T) {
	r := newRig(t, supsim.Options{}, func(c *Config) { c.AppID = 0 })
	err := r.c.RestartService(context.Background(), "main", false)
	if Errno(err) != abi.Unavailable || !strings.Contains(err.Error(), "BALENA_APP_ID") {
		t.Fatalf("err %v, want unavailable naming BALENA_APP_ID", err)
	}
	if len(r.sim.Events()) != 0 {
		t.Fatal("a request went out without an app id")
	}
}

func TestWrongKey(t *testing.T) {
	const wrong = "wr0ng-k3y-that-must-not-leak-1234"
	r := newRig(t, supsim.Options{}, func(c *Config) { c.APIKey = wrong })
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"reboot":  func() error { return r.c.Reboot(ctx, false) },
		"device":  func() error { _, err := r.c.Device(ctx); return err },
		"service": func() error { return r.c.RestartService(ctx, "main", true) },
	} {
		err := call()
		if Errno(err) != abi.Denied {
			t.Fatalf("%s: %v, want denied", name, err)
		}
		if !strings.Contains(err.Error(), "refused the host's API key") {
			t.Errorf("%s: %q does not say the host's key was refused", name, err)
		}
		if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), testKey) {
			t.Errorf("%s: error carries a key: %q", name, err)
		}
	}
	// 401 is final: a wrong key is not retried even on a safe read.
	if n := r.sim.Count("GET", "/v1/device"); n != 1 {
		t.Errorf("GET /v1/device sent %d times on 401, want 1", n)
	}
	if st := r.sim.State(); st.Rebooting || st.Services[0].Restarts != 0 {
		t.Errorf("a refused request changed the device: %+v", st)
	}
	// Ping needs no key, so it works with a wrong one.
	if err := r.c.Ping(ctx); err != nil {
		t.Errorf("ping with a wrong key: %v", err)
	}
	if strings.Contains(r.logs.String(), wrong) {
		t.Error("the wrong key appears in the log output")
	}
}

// TestOutOfScopeAppID: a route's own 401 (JSON) says the app id, not the
// key, is wrong; the auth middleware's (plain text) says the key is.
func TestOutOfScopeAppID(t *testing.T) {
	r := newRig(t, supsim.Options{}, func(c *Config) { c.AppID = 43 })
	ctx := context.Background()
	for name, call := range map[string]func() error{
		"app.restart": func() error { return r.c.RestartApp(ctx, false) },
		"v1 restart":  func() error { return r.c.RestartAppV1(ctx, false) },
		"v1 app":      func() error { _, err := r.c.AppV1(ctx); return err },
	} {
		err := call()
		if Errno(err) != abi.Denied || !strings.Contains(err.Error(), "not scoped to the application") || strings.Contains(err.Error(), "refused the host's API key") {
			t.Errorf("%s with another app's id: %v", name, err)
		}
	}
}

func TestUpdateLock(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		call   func(c *Client, force bool) error
		locked bool // whether an update lock refuses it without force
	}{
		{"reboot", func(c *Client, f bool) error { return c.Reboot(ctx, f) }, true},
		{"shutdown", func(c *Client, f bool) error { return c.Shutdown(ctx, f) }, true},
		{"app.restart", func(c *Client, f bool) error { return c.RestartApp(ctx, f) }, true},
		{"app.purge", func(c *Client, f bool) error { return c.Purge(ctx, f) }, true},
		{"service.restart", func(c *Client, f bool) error { return c.RestartService(ctx, "main", f) }, true},
		{"service.stop", func(c *Client, f bool) error { return c.StopService(ctx, "main", f) }, true},
		{"hostname.set", func(c *Client, f bool) error { return c.SetHostname(ctx, "h2", f) }, true},
		{"service.start", func(c *Client, f bool) error { return c.StartService(ctx, "main", f) }, false},
		{"update", func(c *Client, f bool) error { _, err := c.Update(ctx, f); return err }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, supsim.Options{}, nil)
			r.sim.Lock("main")
			before := r.sim.State()
			err := tc.call(r.c, false)
			if !tc.locked {
				if err != nil {
					t.Fatalf("under a lock: %v, want success", err)
				}
				return
			}
			if !errors.Is(err, abi.Locked) {
				t.Fatalf("under a lock: %v, want abi.Locked", err)
			}
			var e *Error
			errors.As(err, &e)
			if e.Status != 423 || !strings.Contains(e.Message, "Lockfile exists for { appId: 42, service: main }") {
				t.Fatalf("error %+v", e)
			}
			after := r.sim.State()
			after.Requests = before.Requests
			if fmt.Sprint(after) != fmt.Sprint(before) {
				t.Fatalf("a locked request changed the device:\n%+v\n%+v", before, after)
			}
			if err := tc.call(r.c, true); err != nil {
				t.Fatalf("with force: %v", err)
			}
		})
	}
}

func TestRebootEffects(t *testing.T) {
	r := newRig(t, supsim.Options{Services: []string{"main", "worker"}}, nil)
	ctx := context.Background()
	r.sim.Lock("main")
	if err := r.c.Reboot(ctx, true); err != nil {
		t.Fatal(err)
	}
	// A second reboot while the first is pending meets the supervisor's
	// own lock, which force does not override.
	if err := r.c.Reboot(ctx, true); !errors.Is(err, abi.Locked) {
		t.Fatalf("reboot during reboot: %v, want locked", err)
	}
	if s, err := r.c.StateStatus(ctx); err != nil || s.AppState != "applying" {
		t.Fatalf("status during reboot: %+v %v", s, err)
	}
	settle(t, r.sim)
	st := r.sim.State()
	if st.Reboots != 1 || st.Rebooting || st.LockHolder != "" {
		t.Fatalf("after reboot: %+v", st)
	}
	for _, sv := range st.Services {
		if sv.Status != supsim.Running || sv.Restarts != 1 {
			t.Errorf("%s after reboot: %+v", sv.Name, sv)
		}
	}
	// The lock lived on tmpfs; an unforced reboot works now.
	if err := r.c.Reboot(ctx, false); err != nil {
		t.Fatal(err)
	}
	settle(t, r.sim)
	if st := r.sim.State(); st.Reboots != 2 {
		t.Fatalf("reboots %d, want 2", st.Reboots)
	}
}

func TestShutdownThenUnavailable(t *testing.T) {
	r := newRig(t, supsim.Options{}, func(c *Config) { c.Retries = -1 })
	ctx := context.Background()
	if err := r.c.Shutdown(ctx, false); err != nil {
		t.Fatal(err)
	}
	settle(t, r.sim)
	err := r.c.Ping(ctx)
	if Errno(err) != abi.Unavailable {
		t.Fatalf("ping a powered-off device: %v, want unavailable", err)
	}
}

func TestRetries(t *testing.T) {
	ctx := context.Background()
	t.Run("safe reads retry", func(t *testing.T) {
		r := newRig(t, supsim.Options{}, func(c *Config) { c.Retries = 2 })
		r.sim.FailNext(2)
		if _, err := r.c.Device(ctx); err != nil {
			t.Fatalf("after two failures: %v", err)
		}
		if n := r.sim.Count("GET", "/v1/device"); n != 3 {
			t.Fatalf("GET /v1/device sent %d times, want 3", n)
		}
	})
	t.Run("retries run out", func(t *testing.T) {
		r := newRig(t, supsim.Options{}, func(c *Config) { c.Retries = 2 })
		r.sim.FailNext(10)
		_, err := r.c.Version(ctx)
		var e *Error
		if !errors.As(err, &e) || e.Code != abi.Failed || e.Status != 503 || e.Message != "simulated supervisor failure" {
			t.Fatalf("err %#v, want failed with the supervisor's message", err)
		}
		if n := r.sim.Count("GET", "/v2/version"); n != 3 {
			t.Fatalf("sent %d times, want 3", n)
		}
	})
	t.Run("reboot never retries", func(t *testing.T) {
		r := newRig(t, supsim.Options{}, func(c *Config) { c.Retries = 5 })
		r.sim.FailNext(1)
		err := r.c.Reboot(ctx, false)
		if Errno(err) != abi.Failed {
			t.Fatalf("err %v, want failed", err)
		}
		if n := r.sim.Count("POST", "/v1/reboot"); n != 1 {
			t.Fatalf("POST /v1/reboot sent %d times, want exactly 1", n)
		}
		if st := r.sim.State(); st.Rebooting || st.Reboots != 0 {
			t.Fatalf("state %+v", st)
		}
	})
	t.Run("no mutation retries", func(t *testing.T) {
		r := newRig(t, supsim.Options{}, func(c *Config) { c.Retries = 5 })
		for _, call := range []func() error{
			func() error { return r.c.Blink(ctx) },
			func() error { return r.c.Shutdown(ctx, false) },
			func() error { _, err := r.c.Update(ctx, false); return err },
			func() error { return r.c.RestartApp(ctx, false) },
			func() error { return r.c.Purge(ctx, false) },
			func() error { return r.c.RestartService(ctx, "main", false) },
			func() error { return r.c.StopService(ctx, "main", false) },
			func() error { return r.c.StartService(ctx, "main", false) },
			func() error { return r.c.SetHostname(ctx, "x", false) },
		} {
			r.sim.FailNext(1)
			if err := call(); Errno(err) != abi.Failed {
				t.Fatalf("err %v, want failed", err)
			}
		}
		if n := len(r.sim.Events()); n != 9 {
			t.Fatalf("%d requests for 9 failing mutations, want 9: %+v", n, r.sim.Events())
		}
	})
}

// flaky answers a fixed sequence of statuses, then 200 with body.
func flaky(statuses []int, body string) (*httptest.Server, *int) {
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		i := n
		n++
		mu.Unlock()
		if i < len(statuses) {
			if statuses[i] == 0 {
				// Drop the connection: a supervisor restarting.
				if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
					conn.Close()
				}
				return
			}
			w.WriteHeader(statuses[i])
			io.WriteString(w, `{"status":"failed","message":"busy restarting"}`)
			return
		}
		io.WriteString(w, body)
	}))
	return srv, &n
}

func TestRetryOnDroppedConnection(t *testing.T) {
	srv, n := flaky([]int{0, 502, 0}, `{"status":"success","version":"9.9.9"}`)
	defer srv.Close()
	c, err := New(Config{Address: srv.URL, APIKey: testKey, Retries: 3, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.Version(context.Background())
	if err != nil || v != "9.9.9" || *n != 4 {
		t.Fatalf("version %q err %v after %d requests, want 9.9.9 after 4", v, err, *n)
	}
}

func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c, err := New(Config{Address: "http://" + addr, APIKey: testKey, Retries: 1, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Reboot(context.Background(), false)
	var e *Error
	if !errors.As(err, &e) || e.Code != abi.Unavailable || e.Status != 0 || !strings.Contains(e.Message, "unreachable") {
		t.Fatalf("err %v, want unavailable", err)
	}
	if strings.Contains(err.Error(), testKey) {
		t.Fatal("key in error")
	}
}

func TestTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	c, err := New(Config{Address: srv.URL, APIKey: testKey, Retries: -1, Timeout: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Reboot(context.Background(), false); Errno(err) != abi.Timeout || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("per-attempt timeout: %v, want timeout", err)
	}
	// The caller's deadline (the plugin handler's) bounds the call too.
	c, _ = New(Config{Address: srv.URL, APIKey: testKey, Retries: 3, Timeout: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Device(ctx); Errno(err) != abi.Timeout {
		t.Fatalf("handler deadline: %v, want timeout", err)
	}
}

// TestKeyNeverLeaks drives every failure path with a peer that echoes the
// key back in every way it can, and checks errors and logs.
func TestKeyNeverLeaks(t *testing.T) {
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		key := strings.TrimPrefix(auth, "Bearer ")
		switch r.URL.Path {
		case "/v1/reboot":
			w.WriteHeader(503)
			fmt.Fprintf(w, `{"status":"failed","message":"bad key %s in %s"}`, key, auth)
		case "/v1/blink":
			w.WriteHeader(400)
			fmt.Fprintf(w, "text with the key %s", key)
		case "/v1/shutdown":
			w.WriteHeader(500)
			fmt.Fprintf(w, `{"Data":"","Error":"%s"}`, key)
		case "/v1/device":
			fmt.Fprintf(w, `{"api_port":"%s"}`, key) // a reply that does not decode
		case "/v1/update":
			w.WriteHeader(423)
			fmt.Fprintf(w, "locked by %s%s", key[:len(key)/2], key[len(key)/2:])
		default:
			w.WriteHeader(401)
			fmt.Fprintf(w, "Unauthorized: %s", key)
		}
	}))
	defer echo.Close()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg := Config{Address: echo.URL, APIKey: testKey, AppID: 1, Retries: 1, Backoff: time.Millisecond, Logger: log}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var errs []error
	errs = append(errs, c.Reboot(ctx, false), c.Blink(ctx), c.Shutdown(ctx, true), c.RestartApp(ctx, false))
	_, err = c.Device(ctx)
	errs = append(errs, err)
	_, err = c.Update(ctx, false)
	errs = append(errs, err)
	for i, err := range errs {
		if err == nil {
			t.Fatalf("call %d succeeded against the echo peer", i)
		}
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			if strings.Contains(s, testKey) {
				t.Errorf("call %d: key in %q", i, s)
			}
		}
		if u := errors.Unwrap(err); u != nil && strings.Contains(u.Error(), testKey) {
			t.Errorf("call %d: key in the wrapped cause", i)
		}
	}
	for _, s := range []string{cfg.String(), fmt.Sprintf("%v %+v %#v %s", cfg, cfg, cfg, cfg)} {
		if strings.Contains(s, testKey) {
			t.Errorf("config printed with the key: %s", s)
		}
	}
	log.Info("config", "cfg", cfg)
	if strings.Contains(logs.String(), testKey) {
		t.Errorf("key in the log output:\n%s", logs.String())
	}
}

func TestNewRejects(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
	}{
		{"no address", Config{APIKey: testKey}},
		{"no key", Config{Address: "http://127.0.0.1:48484"}},
		{"not http", Config{Address: "unix:///run/sup.sock", APIKey: testKey}},
		{"key in URL", Config{Address: "http://u:" + testKey + "@127.0.0.1:1", APIKey: testKey}},
		{"key in query", Config{Address: "http://127.0.0.1:1/?apikey=" + testKey, APIKey: testKey}},
		{"key with newline", Config{Address: "http://127.0.0.1:1", APIKey: "a\nb"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), testKey) {
				t.Fatalf("key in %q", err)
			}
		})
	}
}
