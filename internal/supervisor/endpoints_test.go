package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/internal/simdevice/supsim"
)

// wordKey is a key the Authorization header can carry, as a real one is.
const wordKey = "0f1e2d3c4b5a69788796a5b4c3d2e1f0"

// TestNewEndpoints calls each endpoint the client gained and checks what the
// simulator saw and did.
func TestNewEndpoints(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name string
		opts supsim.Options
		call func(*testing.T, *Client, *supsim.Server) error
		path string // the one request the simulator must have seen
	}{
		{"v1 restart", supsim.Options{}, func(t *testing.T, c *Client, s *supsim.Server) error {
			if err := c.RestartAppV1(ctx, false); err != nil {
				return err
			}
			if m, _ := s.State().Service("main"); m.Restarts != 1 {
				return fmt.Errorf("main %+v", m)
			}
			return nil
		}, "POST /v1/restart"},
		{"v1 purge", supsim.Options{}, func(t *testing.T, c *Client, s *supsim.Server) error {
			if err := c.PurgeV1(ctx, true); err != nil {
				return err
			}
			if st := s.State(); st.Purges != 1 {
				return fmt.Errorf("purges %d", st.Purges)
			}
			return nil
		}, "POST /v1/purge"},
		{"v1 app", supsim.Options{Services: []string{"main"}}, func(t *testing.T, c *Client, s *supsim.Server) error {
			a, err := c.AppV1(ctx)
			if err == nil && (a.AppID != 42 || a.Commit != supsim.Release || a.ContainerID == "" || a.ImageID == "" || a.ReleaseID != 1) {
				err = fmt.Errorf("app %+v", a)
			}
			return err
		}, "GET /v1/apps/42"},
		{"v1 stop", supsim.Options{Services: []string{"main"}}, func(t *testing.T, c *Client, s *supsim.Server) error {
			id, err := c.StopAppV1(ctx, false)
			if m, _ := s.State().Service("main"); err == nil && (id != m.ContainerID || m.Status != supsim.Stopped) {
				err = fmt.Errorf("container %q, main %+v", id, m)
			}
			return err
		}, "POST /v1/apps/42/stop"},
		{"v1 start", supsim.Options{Services: []string{"main"}}, func(t *testing.T, c *Client, s *supsim.Server) error {
			s.Crash("main")
			id, err := c.StartAppV1(ctx, false)
			if m, _ := s.State().Service("main"); err == nil && (id != m.ContainerID || m.Status != supsim.Running) {
				err = fmt.Errorf("container %q, main %+v", id, m)
			}
			return err
		}, "POST /v1/apps/42/start"},
		{"apps state", supsim.Options{}, func(t *testing.T, c *Client, s *supsim.Server) error {
			v, err := c.AppsState(ctx)
			a := v[supsim.AppName]
			if err == nil && (a.AppID != 42 || a.AppUUID != supsim.AppUUID || a.UpdateStatus != "done" || a.Services["worker"].Image == "" || a.Services["worker"].Status != supsim.Running) {
				err = fmt.Errorf("apps state %+v", v)
			}
			return err
		}, "GET /v2/applications/state"},
		{"app state", supsim.Options{}, func(t *testing.T, c *Client, s *supsim.Server) error {
			v, err := c.AppState(ctx)
			if err == nil && (v.Commit != supsim.Release || v.Local["42"].Services["1001"].Status != supsim.Running || len(v.Raw) == 0) {
				err = fmt.Errorf("app state %+v", v)
			}
			return err
		}, "GET /v2/applications/42/state"},
		{"vpn", supsim.Options{}, func(t *testing.T, c *Client, s *supsim.Server) error {
			v, err := c.VPN(ctx)
			if err == nil && (!v.Enabled || v.Connected) {
				err = fmt.Errorf("vpn %+v", v)
			}
			return err
		}, "GET /v2/device/vpn"},
		{"container id", supsim.Options{}, func(t *testing.T, c *Client, s *supsim.Server) error {
			id, err := c.ContainerID(ctx, "worker")
			if w, _ := s.State().Service("worker"); err == nil && id != w.ContainerID {
				err = fmt.Errorf("container id %q, want %q", id, w.ContainerID)
			}
			return err
		}, "GET /v2/containerId"},
		{"container ids", supsim.Options{}, func(t *testing.T, c *Client, s *supsim.Server) error {
			ids, err := c.ContainerIDs(ctx)
			if err == nil && (len(ids) != 2 || ids["main"] == "") {
				err = fmt.Errorf("container ids %v", ids)
			}
			return err
		}, "GET /v2/containerId"},
		{"device info", supsim.Options{}, func(t *testing.T, c *Client, s *supsim.Server) error {
			v, err := c.LocalDeviceInfo(ctx)
			if err == nil && (v.Arch != supsim.DeviceArch || v.DeviceType != supsim.DeviceType) {
				err = fmt.Errorf("device info %+v", v)
			}
			return err
		}, "GET /v2/local/device-info"},
		{"cleanup volumes", supsim.Options{}, func(t *testing.T, c *Client, s *supsim.Server) error {
			s.AddVolume("42_left_behind")
			if err := c.CleanupVolumes(ctx); err != nil {
				return err
			}
			if st := s.State(); len(st.Volumes) != 1 || st.VolumeCleanups != 1 {
				return fmt.Errorf("volumes %v", st.Volumes)
			}
			return nil
		}, "GET /v2/cleanup-volumes"},
		{"set tags", supsim.Options{}, func(t *testing.T, c *Client, s *supsim.Server) error {
			if err := c.SetTags(ctx, map[string]string{"role": "kiosk", "floor": "2"}); err != nil {
				return err
			}
			tags, err := c.Tags(ctx)
			if err == nil && (len(tags) != 2 || tags[0] != (Tag{1, "role", "kiosk"}) || tags[1] != (Tag{2, "floor", "2"})) {
				err = fmt.Errorf("tags after PATCH %+v", tags)
			}
			return err
		}, "PATCH /v2/device/tags"},
		{"local target state", supsim.Options{LocalMode: true}, func(t *testing.T, c *Client, s *supsim.Server) error {
			if err := c.SetLocalTargetState(ctx, []byte(`{"local":{"name":"dev","config":{},"apps":{}}}`), true); err != nil {
				return err
			}
			v, err := c.LocalTargetState(ctx)
			if err == nil && string(v) != `{"local":{"name":"dev","config":{},"apps":{}}}` {
				err = fmt.Errorf("target %s", v)
			}
			return err
		}, "POST /v2/local/target-state"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts.Services == nil {
				tc.opts.Services = []string{"main", "worker"}
			}
			r := newRig(t, tc.opts, nil)
			if err := tc.call(t, r.c, r.sim); err != nil {
				t.Fatal(err)
			}
			sawOnce(t, r.sim, tc.path)
		})
	}
}

// TestUpdateReportsWhatTheSupervisorDid: Update's triggered is 204, which
// the supervisor answers only when forced or with instant updates on.
func TestUpdateReportsWhatTheSupervisorDid(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		instantOff, force, want bool
	}{{false, false, true}, {false, true, true}, {true, false, false}, {true, true, true}} {
		r := newRig(t, supsim.Options{NoInstantUpdates: c.instantOff}, nil)
		got, err := r.c.Update(ctx, c.force)
		if err != nil || got != c.want {
			t.Errorf("instant updates off=%v force=%v: triggered %v (%v), want %v", c.instantOff, c.force, got, err, c.want)
		}
		if st := r.sim.State(); st.Updates != map[bool]int{true: 1, false: 0}[c.want] {
			t.Errorf("instant updates off=%v force=%v: the simulator triggered %d", c.instantOff, c.force, st.Updates)
		}
	}
}

// TestKeyTransport: a key of word characters travels in the Authorization
// header; any other key, which the supervisor's header pattern refuses,
// travels as ?apikey= — and appears in no error or log either way.
func TestKeyTransport(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		key, want string
	}{{wordKey, "header"}, {testKey, "query"}, {"k+y/with%odd=chars&more", "query"}} {
		r := newRig(t, supsim.Options{APIKey: c.key}, nil)
		if _, err := r.c.Version(ctx); err != nil {
			t.Fatalf("key %q: %v", c.key, err)
		}
		if ev := r.sim.Events(); len(ev) != 1 || ev[0].Auth != c.want {
			t.Fatalf("key %q: journal %+v, want auth by %s", c.key, ev, c.want)
		}
	}
	// A peer that echoes the whole request URL (with the apikey parameter,
	// escaped) in errors, and drops a connection, leaks nothing.
	const odd = "k+y/with%odd=chars-and-more"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/device" {
			if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
				conn.Close()
			}
			return
		}
		w.WriteHeader(503)
		fmt.Fprintf(w, `{"status":"failed","message":"bad request %s / %s"}`, r.URL.String(), r.URL.RawQuery)
	}))
	defer echo.Close()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cl, err := New(Config{Address: echo.URL, APIKey: odd, AppID: 1, Retries: 1, Backoff: time.Millisecond, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	_, err1 := cl.Version(ctx)
	_, err2 := cl.Device(ctx)
	for _, err := range []error{err1, err2} {
		if err == nil {
			t.Fatal("the echo peer's call succeeded")
		}
		for _, s := range leakForms(err) {
			for _, k := range keyForms(odd) {
				if strings.Contains(s, k) {
					t.Errorf("key form %q in %q", k, s)
				}
			}
		}
	}
	if !strings.Contains(err1.Error(), "[redacted]") {
		t.Errorf("the echoed key was not replaced: %q", err1)
	}
	if !errors.Is(err2, abi.Unavailable) {
		t.Errorf("dropped connection: %v", err2)
	}
	for _, k := range keyForms(odd) {
		if strings.Contains(logs.String(), k) {
			t.Errorf("key form %q in the log:\n%s", k, logs.String())
		}
	}
}

func leakForms(err error) []string {
	out := []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)}
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(u) {
		out = append(out, u.Error())
	}
	return out
}

func keyForms(k string) []string {
	return []string{k, strings.NewReplacer("+", "%2B", "/", "%2F", "%", "%25", "=", "%3D").Replace(k)}
}

// TestRegenerateAPIKey: the client takes the new key, which works, and
// neither key shows anywhere.
func TestRegenerateAPIKey(t *testing.T) {
	r := newRig(t, supsim.Options{APIKey: wordKey}, nil)
	ctx := context.Background()
	if err := r.c.RegenerateAPIKey(ctx); err != nil {
		t.Fatal(err)
	}
	newKey := r.sim.APIKey()
	if newKey == wordKey || r.sim.State().KeyRotations != 1 {
		t.Fatal("the simulator's key did not change")
	}
	if _, err := r.c.Version(ctx); err != nil {
		t.Fatalf("with the new key: %v", err)
	}
	r.sim.FailNext(1)
	_, err := r.c.Version(ctx)
	if err != nil {
		t.Fatalf("retry with the new key: %v", err)
	}
	if strings.Contains(r.logs.String(), newKey) {
		t.Error("the new key is in the log")
	}
	if got := r.c.redact("a " + wordKey + " b " + newKey); got != "a [redacted] b [redacted]" {
		t.Errorf("redaction of old and new keys: %q", got)
	}
}

// TestLocalLogsStream reads the service logs line by line.
func TestLocalLogsStream(t *testing.T) {
	r := newRig(t, supsim.Options{LocalMode: true}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := r.c.LocalLogs(ctx, StreamLimits{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if l, cut, err := st.Next(); err != nil || cut || string(l) != `{"message":"Streaming logs","isSystem":true}` {
		t.Fatalf("first line %q %v %v", l, cut, err)
	}
	r.sim.AppLog("main", "one")
	r.sim.AppLog("main", "two")
	for _, want := range []string{"one", "two"} {
		l, _, err := st.Next()
		var m struct{ ServiceName, Message string }
		if err != nil || json.Unmarshal(l, &m) != nil || m.ServiceName != "main" || m.Message != want {
			t.Fatalf("line %q %v, want main's %q", l, err, want)
		}
	}
	if st.Lines != 3 {
		t.Errorf("lines %d, want 3", st.Lines)
	}
}

// TestJournalLogsChunks reads the journal in chunks of whole lines.
func TestJournalLogsChunks(t *testing.T) {
	r := newRig(t, supsim.Options{}, nil)
	ctx := context.Background()
	st, err := r.c.JournalLogs(ctx, JournalQuery{Format: "cat"}, StreamLimits{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var chunks []string
	for {
		b, err := st.Chunk(40)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(b) > 40 || b[len(b)-1] != '\n' {
			t.Fatalf("chunk %q: more than 40 bytes or not whole lines", b)
		}
		chunks = append(chunks, string(b))
	}
	all := strings.Join(chunks, "")
	want := "Started Balena Application Container Engine.\nmanager: NetworkManager state is now CONNECTED_GLOBAL\nSupervisor API successfully started on port 48484\nmain started\n"
	// Lines longer than the chunk are cut to it.
	var cutWant []string
	for _, l := range strings.SplitAfter(want, "\n") {
		if len(l) > 40 {
			l = l[:39] + "\n"
		}
		cutWant = append(cutWant, l)
	}
	if all != strings.Join(cutWant, "") {
		t.Fatalf("chunks %q", chunks)
	}
	// follow: a line the host writes later arrives.
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	f, err := r.c.JournalLogs(fctx, JournalQuery{Follow: true, Unit: "airlock.service", Format: "cat"}, StreamLimits{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	go r.sim.HostLog("airlock.service", "later")
	if l, _, err := f.Next(); err != nil || string(l) != "later" {
		t.Fatalf("follow: %q %v", l, err)
	}
}
