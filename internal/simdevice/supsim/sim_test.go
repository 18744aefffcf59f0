package supsim

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// key is all word characters, as a real one (32 hex digits) is, so the
// Authorization header can carry it.
const key = "test_key_0123456789"

func start(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = key
	}
	if opts.RebootDelay == 0 {
		opts.RebootDelay = 5 * time.Millisecond
	}
	s := New(opts)
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, url
}

type reply struct {
	status int
	ctype  string
	body   string
}

func send(t *testing.T, method, url, auth, ctype, body string) reply {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, resp.Header.Get("Content-Type"), string(b)}
}

func TestStartRefusesNonLoopback(t *testing.T) {
	s := New(Options{})
	if _, err := s.Start("0.0.0.0:0"); err == nil {
		s.Close()
		t.Fatal("Start on 0.0.0.0 succeeded; the simulator must stay on loopback")
	}
}

func TestAuth(t *testing.T) {
	_, url := start(t, Options{})
	cases := []struct {
		name   string
		method string
		path   string
		auth   string
		want   int
	}{
		{"ping needs no key", "GET", "/ping", "", 200},
		{"healthy needs no key", "GET", "/v1/healthy", "", 200},
		{"no key", "GET", "/v2/version", "", 401},
		{"apikey param", "GET", "/v2/version?apikey=" + key, "", 200},
		{"wrong apikey param", "GET", "/v2/version?apikey=nope", "", 401},
		{"param wins over a good header", "GET", "/v2/version?apikey=nope", "Bearer " + key, 401},
		// An empty apikey is falsy and a repeated one parses to an array:
		// the middleware ignores both and reads the header.
		{"empty param is ignored", "GET", "/v2/version?apikey=", "Bearer " + key, 200},
		{"repeated param is ignored", "GET", "/v2/version?apikey=" + key + "&apikey=" + key, "", 401},
		{"repeated param falls to the header", "GET", "/v2/version?apikey=x&apikey=y", "Bearer " + key, 200},
		{"two spaces", "GET", "/v2/version", "Bearer  " + key, 401},
		{"scheme only", "GET", "/v2/version", "Bearer", 401},
		{"trailing junk", "GET", "/v2/version", "Bearer " + key + " x", 401},
		{"Bearer", "GET", "/v2/version", "Bearer " + key, 200},
		{"bearer lower case", "GET", "/v2/version", "bearer " + key, 200},
		{"ApiKey", "GET", "/v2/version", "ApiKey " + key, 200},
		{"APIKEY upper case", "GET", "/v2/version", "APIKEY " + key, 200},
		{"wrong key", "GET", "/v2/version", "Bearer wrong", 401},
		{"Basic scheme", "GET", "/v2/version", "Basic " + key, 401},
		{"no scheme", "GET", "/v2/version", key, 401},
		{"POST needs a key too", "POST", "/v1/blink", "", 401},
		{"unknown route with key", "GET", "/v3/nothing", "Bearer " + key, 404},
		{"unknown route without key", "GET", "/v3/nothing", "", 401},
		{"wrong method is 404 not 405", "GET", "/v1/reboot", "Bearer " + key, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := send(t, c.method, url+c.path, c.auth, "", "")
			if r.status != c.want {
				t.Fatalf("%s %s: status %d (%q), want %d", c.method, c.path, r.status, r.body, c.want)
			}
			if c.want == 401 && (r.body != "Unauthorized" || !strings.HasPrefix(r.ctype, "text/plain")) {
				t.Errorf("401 body %q (%s), want plain text Unauthorized", r.body, r.ctype)
			}
		})
	}
}

func TestBodies(t *testing.T) {
	s, url := start(t, Options{AppID: 7, Services: []string{"main", "worker"}})
	auth := "Bearer " + key
	js := "application/json"
	cases := []struct {
		method, path, body string
		status             int
		want               string // exact body, or JSON fields when it starts with {
	}{
		{"GET", "/ping", "", 200, "OK"},
		{"POST", "/v1/blink", "", 200, "OK"},
		{"POST", "/v1/update", `{"force":false}`, 204, ""},
		{"POST", "/v1/restart", `{"appId":7}`, 200, "OK"},
		{"POST", "/v1/restart", `{"appId":"7.00"}`, 200, "OK"},
		{"POST", "/v1/restart", `{}`, 400, "Missing app id"},
		{"POST", "/v1/restart", `{"appId":8}`, 401, `{"status":"failed","message":"Unauthorized"}`},
		{"POST", "/v1/purge", `{"appId":7}`, 200, `{"Data":"OK","Error":""}`},
		{"POST", "/v1/purge", `{"appId":"x"}`, 400, "Invalid or missing appId"},
		{"POST", "/v1/purge", `{"appId":8}`, 401, `{"status":"failed","message":"Unauthorized"}`},
		{"GET", "/v1/apps/7", "", 400, "Some v1 endpoints are only allowed on single-container apps"},
		{"GET", "/v1/apps/x", "", 400, "Missing app id"},
		{"GET", "/v1/apps/8", "", 401, `{"status":"failed","message":"Application is not available"}`},
		{"POST", "/v1/apps/7/stop", "", 400, "serviceName or imageId parameters were not provided or the app is multi-container. Use the v2 service action endpoints."},
		{"POST", "/v1/apps/x/stop", "", 400, "Invalid app id"},
		{"POST", "/v1/apps/8/start", "", 401, "Unauthorized"},
		{"POST", "/v2/applications/7/restart", `{"force":true}`, 200, "OK"},
		{"POST", "/v2/applications/7/purge", ``, 200, "OK"},
		{"POST", "/v2/applications/abc/restart", ``, 400, `{"status":"failed","message":"Missing app id"}`},
		{"POST", "/v2/applications/0/purge", ``, 400, `{"status":"failed","message":"Missing app id"}`},
		{"POST", "/v2/applications/8/restart", ``, 401, `{"status":"failed","message":"Unauthorized"}`},
		{"POST", "/v2/applications/7/restart-service", `{"serviceName":"worker"}`, 200, "OK"},
		{"POST", "/v2/applications/7/restart-service", `{"imageId":1001}`, 200, "OK"},
		{"POST", "/v2/applications/7/stop-service", `{"serviceName":"nope"}`, 404, "Service not found, a container must exist for this endpoint to work"},
		{"POST", "/v2/applications/7/start-service", `{}`, 400, "serviceName or imageId parameters were not provided or the app is multi-container. Use the v2 service action endpoints."},
		{"POST", "/v2/applications/7/start-service", `{"serviceName":"null"}`, 400, "serviceName or imageId parameters were not provided or the app is multi-container. Use the v2 service action endpoints."},
		{"POST", "/v2/applications/x/start-service", `{"serviceName":"main"}`, 400, `{"status":"failed","message":"Invalid app id"}`},
		{"POST", "/v2/applications/8/stop-service", `{"serviceName":"main"}`, 401, `{"status":"failed","message":"Unauthorized"}`},
		{"GET", "/v2/version", "", 200, `{"status":"success","version":"` + SupervisorVersion + `"}`},
		{"GET", "/v2/device/name", "", 200, `{"status":"success","deviceName":"airlock-sim"}`},
		{"GET", "/v2/device/tags", "", 200, `{"status":"success","tags":[{"id":1,"name":"role","value":"simulated"}]}`},
		{"GET", "/v1/device/host-config", "", 200, `{"network":{"hostname":"airlock-sim","proxy":{}}}`},
		{"PATCH", "/v1/device/host-config", `{"network":{"hostname":"kiosk-1"}}`, 200, "OK"},
		{"PATCH", "/v1/device/host-config", `{"network":{"hostname":"bad name"}}`, 400, `Invalid hostname: "bad name"`},
		{"PATCH", "/v1/device/host-config", `{}`, 400, "Invalid host config: no network settings given"},
		{"GET", "/v2/applications/8/state", "", 409, `{"status":"failed","message":"Application ID does not exist: 8"}`},
		{"GET", "/v2/applications/x1/state", "", 400, `{"status":"failed","message":"Invalid application ID: x1"}`},
		{"GET", "/v2/applications/7/state", "", 200, `{"commit":"` + Release + `","local":{"7":{"services":{"1000":{"status":"Running","releaseId":1,"download_progress":null},"1001":{"status":"Running","releaseId":1,"download_progress":null}}}}}`},
		{"GET", "/v2/applications/state", "", 200, `{"airlock-sim":{"appId":7,"appUuid":"` + AppUUID + `","commit":"` + Release + `","updateStatus":"done","services":{` +
			`"main":{"status":"Running","image":"registry2.balena-cloud.com/v2/1000","downloadProgress":null,"releaseId":1},` +
			`"worker":{"status":"Running","image":"registry2.balena-cloud.com/v2/1001","downloadProgress":null,"releaseId":1}}}}`},
		{"GET", "/v2/local/device-info", "", 200, `{"status":"success","info":{"arch":"aarch64","deviceType":"raspberrypi4-64"}}`},
		{"POST", "/v2/local/target-state", `{"local":{}}`, 400, `{"status":"failed","message":"Target state can only set when device is in local mode"}`},
		{"PATCH", "/v2/device/tags", `{"zone":"b"}`, 202, `{"status":"success"}`},
		{"PATCH", "/v2/device/tags", `{"bad key":"b"}`, 400, `{"status":"failed","message":"Tag keys cannot contain whitespace"}`},
		{"PATCH", "/v2/device/tags", `{"n":1}`, 400, "{\"status\":\"failed\",\"message\":\"Invalid tags body, must be an object like `{[tagKey: string]: string}`\"}"},
		{"GET", "/v2/cleanup-volumes", "", 200, `{"status":"success"}`},
		{"POST", "/v1/reboot", `{"force":`, 503, ""},
		{"POST", "/v2/applications/7/restart", `not json`, 503, ""},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path+" "+c.body, func(t *testing.T) {
			r := send(t, c.method, url+c.path, auth, js, c.body)
			if r.status != c.status {
				t.Fatalf("status %d (%q), want %d", r.status, r.body, c.status)
			}
			if c.status == 503 {
				var f struct{ Status, Message string }
				if err := json.Unmarshal([]byte(r.body), &f); err != nil || f.Status != "failed" || f.Message == "" {
					t.Fatalf("503 body %q, want {\"status\":\"failed\",\"message\":...}", r.body)
				}
				return
			}
			if strings.HasPrefix(c.want, "{") {
				var got, want any
				if err := json.Unmarshal([]byte(r.body), &got); err != nil {
					t.Fatalf("body %q: %v", r.body, err)
				}
				json.Unmarshal([]byte(c.want), &want)
				gb, _ := json.Marshal(got)
				wb, _ := json.Marshal(want)
				if string(gb) != string(wb) {
					t.Fatalf("body %s, want %s", gb, wb)
				}
				return
			}
			if r.body != c.want {
				t.Fatalf("body %q, want %q", r.body, c.want)
			}
		})
	}
	st := s.State()
	if st.Hostname != "kiosk-1" || st.Blinks != 1 || st.Updates != 1 || st.Purges != 2 || len(st.Tags) != 2 || st.Tags[1] != (Tag{2, "zone", "b"}) {
		t.Errorf("state after the table: %+v", st)
	}
	// A malformed body must not have started a reboot.
	if st.Rebooting || st.Reboots != 0 {
		t.Errorf("malformed reboot body changed state: %+v", st)
	}
}

func TestLockAndReboot(t *testing.T) {
	s, url := start(t, Options{Services: []string{"main", "worker"}})
	auth := "Bearer " + key
	js := "application/json"
	if !s.Lock("main") {
		t.Fatal("Lock failed on an unlocked device")
	}
	if s.Lock("worker") {
		t.Fatal("a second holder took a held lock")
	}
	// v1.ts answers its own errors here: {Data:"",Error}, not the
	// middleware's {status,message}.
	r := send(t, "POST", url+"/v1/reboot", auth, js, `{"force":false}`)
	if r.status != 423 || r.body != `{"Data":"","Error":"Lockfile exists for { appId: 1, service: main }"}` {
		t.Fatalf("locked reboot: %d %q, want 423 {Data,Error}", r.status, r.body)
	}
	r = send(t, "POST", url+"/v1/shutdown", auth, js, `{}`)
	if r.status != 423 || r.body != `{"Data":"","Error":"Lockfile exists for { appId: 1, service: main }"}` {
		t.Fatalf("locked shutdown: %d %q, want 423 {Data,Error}", r.status, r.body)
	}
	r = send(t, "PATCH", url+"/v1/device/host-config", auth, js, `{"network":{"hostname":"x"}}`)
	if r.status != 423 || r.body != "Lockfile exists for { appId: 1, service: main }" {
		t.Fatalf("locked host-config: %d %q, want 423 in text", r.status, r.body)
	}
	r = send(t, "POST", url+"/v2/applications/1/start-service", auth, js, `{"serviceName":"main"}`)
	if r.status != 200 {
		t.Fatalf("start-service under a lock: %d, want 200 (starting kills nothing)", r.status)
	}
	r = send(t, "POST", url+"/v1/reboot", auth, js, `{"force":"true"}`)
	if r.status != 202 || r.body != `{"Data":"OK","Error":null}` {
		t.Fatalf("forced reboot: %d %q", r.status, r.body)
	}
	st := s.State()
	if !st.Rebooting || st.Services[0].Status != Stopped {
		t.Fatalf("right after 202: %+v, want rebooting with services stopped", st)
	}
	// While rebooting the supervisor holds the locks; force does not help.
	r = send(t, "POST", url+"/v2/applications/1/restart", auth, js, `{"force":true}`)
	if r.status != 423 {
		t.Fatalf("restart during reboot: %d, want 423", r.status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	st = s.State()
	if st.Rebooting || st.Reboots != 1 || st.LockHolder != "" {
		t.Fatalf("after reboot: %+v", st)
	}
	for _, sv := range st.Services {
		if sv.Status != Running || sv.Restarts != 1 {
			t.Errorf("service %s after reboot: %+v, want running, restarted once", sv.Name, sv)
		}
	}
	if n := s.Count("POST", "/v1/reboot"); n != 2 {
		t.Errorf("journal has %d reboot requests, want 2", n)
	}
}

func TestShutdownDropsConnections(t *testing.T) {
	s, url := start(t, Options{})
	r := send(t, "POST", url+"/v1/shutdown", "Bearer "+key, "", "")
	if r.status != 202 {
		t.Fatalf("shutdown: %d", r.status)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Settle(ctx); err != nil {
		t.Fatal(err)
	}
	if !s.State().PoweredOff {
		t.Fatal("device not powered off")
	}
	if _, err := http.Get(url + "/ping"); err == nil {
		t.Fatal("a powered-off device answered")
	}
	s.PowerOn()
	if r := send(t, "GET", url+"/ping", "", "", ""); r.status != 200 {
		t.Fatalf("after PowerOn: %d", r.status)
	}
}

func TestJournalNeverHoldsTheKey(t *testing.T) {
	s, url := start(t, Options{})
	send(t, "GET", url+"/v2/version?apikey="+key, "", "", "")
	send(t, "GET", url+"/v2/version", "Bearer "+key, "", "")
	for _, e := range s.Events() {
		if strings.Contains(e.Path, key) {
			t.Fatalf("journal entry %+v holds the key", e)
		}
	}
	if ev := s.Events(); len(ev) != 2 || ev[0].Auth != "query" || ev[1].Auth != "header" {
		t.Fatalf("journal %+v", ev)
	}
}

func TestFailNext(t *testing.T) {
	s, url := start(t, Options{})
	s.FailNext(1)
	if r := send(t, "GET", url+"/ping", "", "", ""); r.status != 200 {
		t.Fatalf("open route consumed the failure: %d", r.status)
	}
	if r := send(t, "GET", url+"/v2/version", "Bearer "+key, "", ""); r.status != 503 {
		t.Fatalf("first call: %d, want 503", r.status)
	}
	if r := send(t, "GET", url+"/v2/version", "Bearer "+key, "", ""); r.status != 200 {
		t.Fatalf("second call: %d, want 200", r.status)
	}
	// Reboot and shutdown catch their own errors: 500 {Data:"",Error}.
	s.FailNext(1)
	if r := send(t, "POST", url+"/v1/reboot", "Bearer "+key, "", ""); r.status != 500 || r.body != `{"Data":"","Error":"simulated supervisor failure"}` {
		t.Fatalf("failing reboot: %d %q, want 500 {Data,Error}", r.status, r.body)
	}
}
