package supsim

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Each test here pins one way the real supervisor (v19.0.5, src/device-api)
// behaves that the simulator once did not.

// TestHeaderKeyMustBeWordCharacters: the auth middleware reads the header
// with /^(?:ApiKey|Bearer) (\w+)$/i, so a key with '-' or '.' works only as
// ?apikey=.
func TestHeaderKeyMustBeWordCharacters(t *testing.T) {
	for _, k := range []string{"dash-key-123", "dot.key", "plus+key"} {
		_, url := start(t, Options{APIKey: k})
		if r := send(t, "GET", url+"/v2/version", "Bearer "+k, "", ""); r.status != 401 || r.body != "Unauthorized" {
			t.Errorf("%q in the header: %d %q, want 401 Unauthorized", k, r.status, r.body)
		}
		q := strings.NewReplacer("+", "%2B").Replace(k)
		if r := send(t, "GET", url+"/v2/version?apikey="+q, "", "", ""); r.status != 200 {
			t.Errorf("%q as ?apikey=: %d, want 200", k, r.status)
		}
	}
}

// TestReplyContentTypes: res.sendStatus answers text/plain, res.send(string)
// text/html.
func TestReplyContentTypes(t *testing.T) {
	_, url := start(t, Options{Services: []string{"main", "worker"}})
	auth := "Bearer " + key
	for _, c := range []struct{ method, path, auth, ctype, body string }{
		{"GET", "/v2/version", "", "text/plain", "Unauthorized"},
		{"POST", "/v1/blink", auth, "text/plain", "OK"},
		{"GET", "/v1/healthy", "", "text/plain", "OK"},
		{"GET", "/ping", "", "text/html", "OK"},
		{"POST", "/v2/applications/1/restart", auth, "text/html", "OK"},
		{"POST", "/v2/applications/1/stop-service", auth, "text/html", ""},
	} {
		r := send(t, c.method, url+c.path, c.auth, "", "")
		if !strings.HasPrefix(r.ctype, c.ctype) || (c.body != "" && r.body != c.body) {
			t.Errorf("%s %s: %q %q, want %s %q", c.method, c.path, r.ctype, r.body, c.ctype, c.body)
		}
	}
}

// TestUpdateAnswers202WithoutInstantUpdates: actions.updateTarget triggers
// only when forced or when instant updates are on (their default).
func TestUpdateAnswers202WithoutInstantUpdates(t *testing.T) {
	s, url := start(t, Options{NoInstantUpdates: true})
	auth, js := "Bearer "+key, "application/json"
	if r := send(t, "POST", url+"/v1/update", auth, js, `{"force":false}`); r.status != 202 {
		t.Fatalf("unforced update, instant updates off: %d, want 202", r.status)
	}
	if r := send(t, "POST", url+"/v1/update", auth, js, `{"force":"1"}`); r.status != 204 {
		t.Fatalf("forced update: %d, want 204", r.status)
	}
	if st := s.State(); st.Updates != 1 || st.UpdatesIgnored != 1 {
		t.Fatalf("updates %d ignored %d, want 1 and 1", st.Updates, st.UpdatesIgnored)
	}
}

// TestLocalMode: no key is checked, and a local target can be set.
func TestLocalMode(t *testing.T) {
	s, url := start(t, Options{LocalMode: true})
	if r := send(t, "GET", url+"/v2/version", "", "", ""); r.status != 200 {
		t.Fatalf("no key in local mode: %d, want 200", r.status)
	}
	js := "application/json"
	if r := send(t, "POST", url+"/v2/local/target-state", "", js, `{"apps":{}}`); r.status != 400 {
		t.Fatalf("target without local: %d %q, want 400", r.status, r.body)
	}
	target := `{"local":{"name":"x","config":{},"apps":{}}}`
	if r := send(t, "POST", url+"/v2/local/target-state", "", js, `{"force":true,"local":{"name":"x","config":{},"apps":{}}}`); r.status != 200 || r.body != `{"message":"OK","status":"success"}` {
		t.Fatalf("set target: %d %q", r.status, r.body)
	}
	if got := string(s.State().LocalTarget); got != target {
		t.Fatalf("stored target %s, want %s", got, target)
	}
	r := send(t, "GET", url+"/v2/local/target-state", "", "", "")
	var v struct {
		Status string
		State  json.RawMessage
	}
	if json.Unmarshal([]byte(r.body), &v); v.Status != "success" || string(v.State) != target {
		t.Fatalf("get target: %q", r.body)
	}
}

// TestRegenerateAPIKey: the reply is the new key; the old one stops working.
func TestRegenerateAPIKey(t *testing.T) {
	s, url := start(t, Options{})
	r := send(t, "POST", url+"/v1/regenerate-api-key", "Bearer "+key, "", "")
	if r.status != 200 || len(r.body) != 32 || r.body != s.APIKey() {
		t.Fatalf("regenerate: %d %q (sim key %q)", r.status, r.body, s.APIKey())
	}
	if r := send(t, "GET", url+"/v2/version", "Bearer "+key, "", ""); r.status != 401 {
		t.Fatalf("old key after regeneration: %d, want 401", r.status)
	}
	if r2 := send(t, "GET", url+"/v2/version", "Bearer "+r.body, "", ""); r2.status != 200 {
		t.Fatalf("new key: %d, want 200", r2.status)
	}
}

// TestCleanupVolumes removes what the app does not reference.
func TestCleanupVolumes(t *testing.T) {
	s, url := start(t, Options{AppID: 3})
	s.AddVolume("3_old")
	s.AddVolume("9_other")
	if r := send(t, "GET", url+"/v2/cleanup-volumes", "Bearer "+key, "", ""); r.status != 200 {
		t.Fatal(r.status)
	}
	if st := s.State(); len(st.Volumes) != 1 || st.Volumes[0] != "3_data" || st.VolumeCleanups != 1 {
		t.Fatalf("after clean-up: %+v", st)
	}
}

// openStream starts a streaming request and returns its line reader.
func openStream(t *testing.T, method, url, body string) *bufio.Reader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 {
		t.Fatalf("%s: %d", url, resp.StatusCode)
	}
	return bufio.NewReader(resp.Body)
}

func line(t *testing.T, br *bufio.Reader) string {
	t.Helper()
	l, err := br.ReadString('\n')
	if err != nil {
		t.Fatalf("reading a line: %v (got %q)", err, l)
	}
	return strings.TrimSuffix(l, "\n")
}

// waitFor polls cond until it holds; it fails only on a real hang.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(time.Millisecond)
	}
}

func (s *Server) readers() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.logSubs) + len(s.jnlSubs)
}

// TestLocalLogsStream: a first system line, then the services' lines as
// local-backend.ts writes them.
func TestLocalLogsStream(t *testing.T) {
	s, url := start(t, Options{LocalMode: true})
	br := openStream(t, "GET", url+"/v2/local/logs", "")
	if l := line(t, br); l != `{"message":"Streaming logs","isSystem":true}` {
		t.Fatalf("first line %q", l)
	}
	waitFor(t, func() bool { return s.readers() == 1 })
	s.AppLog("main", "hello")
	var m struct {
		ServiceName, Message string
		ServiceID            int
		Timestamp            int64
	}
	l := line(t, br)
	if err := json.Unmarshal([]byte(l), &m); err != nil || m.ServiceName != "main" || m.Message != "hello" || m.ServiceID != 100 || m.Timestamp == 0 {
		t.Fatalf("log line %q", l)
	}
	if !strings.HasPrefix(l, `{"serviceName":"main",`) {
		t.Errorf("serviceName is not first: %q", l)
	}
}

// TestJournalLogs: journalctl's filters and formats, and follow.
func TestJournalLogs(t *testing.T) {
	s, url := start(t, Options{})
	br := openStream(t, "POST", url+"/v2/journal-logs", `{"unit":"NetworkManager","format":"cat"}`)
	if l := line(t, br); l != "manager: NetworkManager state is now CONNECTED_GLOBAL" {
		t.Fatalf("unit filter: %q", l)
	}
	if _, err := br.ReadString('\n'); err == nil {
		t.Fatal("more than the one NetworkManager line")
	}
	r := send(t, "POST", url+"/v2/journal-logs", "Bearer "+key, "application/json", `{"format":"no-such-format"}`)
	if r.status != 200 || r.body != "" {
		t.Fatalf("bad format: %d %q, want 200 and nothing (journalctl failed)", r.status, r.body)
	}
	r = send(t, "POST", url+"/v2/journal-logs", "Bearer "+key, "application/json", `{"count":1,"format":"json"}`)
	var e map[string]string
	if err := json.Unmarshal([]byte(r.body), &e); err != nil || e["MESSAGE"] != "main started" || e["SYSLOG_IDENTIFIER"] != strings.Repeat("0", 12) {
		t.Fatalf("count 1, json: %q", r.body)
	}
	fb := openStream(t, "POST", url+"/v2/journal-logs", `{"follow":true,"unit":"airlock.service","format":"cat"}`)
	waitFor(t, func() bool { return s.readers() == 1 })
	s.HostLog("other.service", "not for us")
	s.HostLog("airlock.service", "followed")
	if l := line(t, fb); l != "followed" {
		t.Fatalf("follow: %q", l)
	}
}

// TestOneServiceAppIgnoresTheName: on an app with one service, the
// supervisor acts on it whatever serviceName says
// (actions.executeServiceAction), which the host functions must allow for.
func TestOneServiceAppIgnoresTheName(t *testing.T) {
	s, url := start(t, Options{Services: []string{"main"}})
	r := send(t, "POST", url+"/v2/applications/1/restart-service", "Bearer "+key, "application/json", `{"serviceName":"worker"}`)
	if m, _ := s.State().Service("main"); r.status != 200 || m.Restarts != 1 {
		t.Fatalf("restart of 'worker' on a one-service app: %d, main %+v; want 200 and main restarted", r.status, m)
	}
}
