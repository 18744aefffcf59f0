package supervisor

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/internal/simdevice/supsim"
)

// opsRig is the capability over a client to sim (or to cfg's peer), with
// a plugin granted allow: it drives serve as the host function would.
type opsRig struct {
	*rig
	t   *testing.T
	cap *Capability
	in  *capability.Caller
}

func newOpsRig(t *testing.T, opts supsim.Options, mod func(*Config), allow ...string) *opsRig {
	t.Helper()
	r := newRig(t, opts, mod)
	g, err := ParseGrant(allow)
	if err != nil {
		t.Fatal(err)
	}
	c := NewCapability(CapabilityOptions{})
	c.client, c.key, c.notReady = r.c, testKey, ""
	return &opsRig{rig: r, t: t, cap: c,
		in: &capability.Caller{Plugin: "p", Grants: map[string]any{CapabilityName: g}, Gate: gate.New(nil)}}
}

// call runs op with a request of key, value pairs, under a 20 s handler
// deadline (only a hang reaches it).
func (o *opsRig) call(op string, kv ...string) (abi.Record, error) {
	var req abi.Record
	for i := 0; i+1 < len(kv); i += 2 {
		req = append(req, abi.Field{Key: kv[i], Value: []byte(kv[i+1])})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return o.cap.serve(ctx, o.in, op, abi.AppendRecord(nil, req))
}

func get(r abi.Record, k string) string {
	v, _ := r.Get(k)
	return string(v)
}

// TestNewOpsOutsideTheGrant: every new operation, and every scoped one for
// a name its grant does not list, is denied before any request.
func TestNewOpsOutsideTheGrant(t *testing.T) {
	o := newOpsRig(t, supsim.Options{LocalMode: true}, nil,
		"device.read", "tags.set:location", "logs.read:main", "journal.read:ssh")
	for _, c := range [][]string{
		{OpAppRead, "what", "app"},
		{OpVolumesCleanup},
		{OpAppRestart, "v1", "true"},
		{OpAppPurge, "v1", "true"},
		{OpTagsSet, "key", "owner", "value", "x"},
		{OpLocalLogs, "service", "bluetooth-helper"},
		{OpJournalRead, "unit", "NetworkManager"},
		{OpJournalRead, "unit", "ssh", "container", "abc123"}, // a container needs journal.read:*
		{OpLocalTargetRead}, {OpLocalTargetWrite}, {OpKeyRegenerate},
	} {
		if _, err := o.call(c[0], c[1:]...); errnoOf(err) != abi.Denied {
			t.Errorf("%q: %v, want denied", c, err)
		}
	}
	if ev := o.sim.Events(); len(ev) != 0 {
		t.Fatalf("denied operations reached the supervisor: %+v", ev)
	}
	// The same grant allows what it lists.
	if _, err := o.call(OpTagsSet, "key", "location", "value", "lab"); err != nil {
		t.Errorf("tags.set:location: %v", err)
	}
	if r, err := o.call(OpDeviceRead, "what", "device-info"); err != nil || get(r, "device_type") == "" {
		t.Errorf("device-info: %v %v", r, err)
	}
}

// TestNewOpsRefuseHostileNames: a service, unit, container, tag key or any
// other guest string that could walk a path, split a header or a URL, or
// be read as an option is refused as invalid, and nothing is sent.
func TestNewOpsRefuseHostileNames(t *testing.T) {
	o := newOpsRig(t, supsim.Options{LocalMode: true}, nil,
		"logs.read:*", "journal.read:*", "tags.set:*", "service.restart:*", "service.stop:*", "app.read")
	names := []string{"../x", "..", "%2e%2e", "%2e%2e%2fv1%2freboot", "main/../worker", "a/b", "/", "ma\x00in",
		"main\r\nX-Injected: 1", "main\n", "-u", "--file=/etc/shadow", "ma in", "main?apikey=x"}
	for _, v := range names {
		for _, c := range [][]string{
			{OpLocalLogs, "service", v},
			{OpJournalRead, "unit", v},
			{OpJournalRead, "container", v},
			{OpServiceRestart, "service", v},
			{OpServiceStop, "service", v},
		} {
			if _, err := o.call(c[0], c[1:]...); errnoOf(err) != abi.Invalid {
				t.Errorf("%s %s=%q: %v, want invalid", c[0], c[1], v, err)
			}
		}
	}
	for _, c := range [][]string{
		{OpTagsSet, "key", "a\r\nX-Injected: 1", "value", "x"},
		{OpTagsSet, "key", "a\x00", "value", "x"},
		{OpTagsSet, "key", "a:b", "value", "x"},
		{OpTagsSet, "key", "k", "value", "a\r\nX-Injected: 1"},
		{OpJournalRead, "unit", "ssh", "since", "today\r\nX-Injected: 1"},
		{OpJournalRead, "unit", "ssh", "until", "x\x00"},
		{OpJournalRead, "unit", "ssh", "format", "short\r\nX: 1"},
		{OpJournalRead, "unit", "ssh", "count", "-1"},
		{OpLocalLogs, "service", "main", "max_bytes", "99999999"},
		{OpLocalLogs, "service", "main", "wait_ms", "0"},
		{OpLocalLogs, "service", "main", "x_extra", "1"},
		{OpAppRead, "what", "env"},
	} {
		if _, err := o.call(c[0], c[1:]...); errnoOf(err) != abi.Invalid {
			t.Errorf("%q: %v, want invalid", c, err)
		}
	}
	if ev := o.sim.Events(); len(ev) != 0 {
		t.Fatalf("hostile values reached the supervisor: %+v", ev)
	}
}

// TestLogsOfAnUngrantedServiceNeverReachThePlugin: /v2/local/logs carries
// every service's lines; a plugin granted logs.read:main gets main's only,
// and the others are counted as dropped.
func TestLogsOfAnUngrantedServiceNeverReachThePlugin(t *testing.T) {
	o := newOpsRig(t, supsim.Options{LocalMode: true}, nil, "logs.read:main")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // both services write until the read returns
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
			o.sim.AppLog("bluetooth-helper", "helper-secret")
			o.sim.AppLog("main", "main says hi")
		}
	}()
	r, err := o.call(OpLocalLogs, "service", "main", "max_lines", "5", "wait_ms", "10000")
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	lines := get(r, "lines")
	if strings.Contains(lines, "helper-secret") || strings.Contains(lines, "Streaming logs") {
		t.Fatalf("another service's or the system's lines reached the plugin:\n%s", lines)
	}
	if get(r, "count") != "5" || get(r, "end") != endLines || get(r, "dropped") == "0" {
		t.Fatalf("reply %v", r)
	}
	for _, l := range strings.Split(strings.TrimSuffix(lines, "\n"), "\n") {
		var v struct{ ServiceName, Message string }
		if json.Unmarshal([]byte(l), &v) != nil || v.ServiceName != "main" || v.Message != "main says hi" {
			t.Errorf("line %q", l)
		}
	}
}

// journalPeer is a supervisor that records the bodies of journal-logs
// requests and answers with body.
func journalPeer(t *testing.T, body string) (*Config, func() []string) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r.Method+" "+r.URL.Path+" "+string(b))
		mu.Unlock()
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return &Config{Address: srv.URL, APIKey: testKey, AppID: 42}, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
}

// TestJournalContainerOnlyWithTheWildcard: the unit sent is the granted
// one, and containerId (another container's logs) is never sent unless
// the grant is journal.read:*.
func TestJournalContainerOnlyWithTheWildcard(t *testing.T) {
	peer, bodies := journalPeer(t, "one\ntwo\n")
	use := func(c *Config) { *c = *peer }
	unit := newOpsRig(t, supsim.Options{}, use, "journal.read:ssh")
	if _, err := unit.call(OpJournalRead, "unit", "ssh", "container", "abc123"); errnoOf(err) != abi.Denied {
		t.Fatalf("container under journal.read:ssh: %v, want denied", err)
	}
	if _, err := unit.call(OpJournalRead, "container", "abc123"); errnoOf(err) != abi.Denied {
		t.Fatalf("container alone under journal.read:ssh: %v, want denied", err)
	}
	r, err := unit.call(OpJournalRead, "unit", "ssh", "count", "2")
	if err != nil || get(r, "lines") != "one\ntwo\n" || get(r, "end") != endEOF {
		t.Fatalf("journal.read:ssh: %v %v", r, err)
	}
	got := bodies()
	if len(got) != 1 || got[0] != `POST /v2/journal-logs {"count":2,"unit":"ssh"}` {
		t.Fatalf("sent %q", got)
	}
	all := newOpsRig(t, supsim.Options{}, use, "journal.read:*")
	if _, err := all.call(OpJournalRead, "container", "abc123"); err != nil {
		t.Fatalf("container under journal.read:*: %v", err)
	}
	if got := bodies(); len(got) != 2 || got[1] != `POST /v2/journal-logs {"containerId":"abc123"}` {
		t.Fatalf("sent %q", got)
	}
}

// TestStreamReadsAreBounded: a journal that never ends, a flood of lines
// and one huge line are each cut at the read's bound: the wait, max_lines,
// max_bytes, or the stream's byte budget for lines the plugin may not see.
func TestStreamReadsAreBounded(t *testing.T) {
	t.Run("follow ends at the wait", func(t *testing.T) {
		o := newOpsRig(t, supsim.Options{}, nil, "journal.read:ssh")
		start := time.Now()
		r, err := o.call(OpJournalRead, "unit", "ssh", "follow", "true", "wait_ms", "100")
		if err != nil || get(r, "end") != endDeadline {
			t.Fatalf("%v %v", r, err)
		}
		// Only a hang until the handler's deadline (20 s) fails this.
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("the read ran %v: wait_ms did not bound it", d)
		}
	})
	t.Run("many lines", func(t *testing.T) {
		o := newOpsRig(t, supsim.Options{}, nil, "journal.read:ssh")
		for range 3000 {
			o.sim.HostLog("ssh.service", strings.Repeat("z", 100))
		}
		r, err := o.call(OpJournalRead, "unit", "ssh", "format", "cat", "max_lines", "10")
		if err != nil || get(r, "count") != "10" || get(r, "end") != endLines {
			t.Fatalf("%v %v", r, err)
		}
		r, err = o.call(OpJournalRead, "unit", "ssh", "format", "cat", "max_bytes", "1000", "max_lines", "1000")
		if err != nil || len(get(r, "lines")) > 1000 || get(r, "end") != endBytes {
			t.Fatalf("%d bytes, end %q: %v", len(get(r, "lines")), get(r, "end"), err)
		}
	})
	endlessRig := func(t *testing.T, chunk, allow string) *opsRig {
		srv, _ := endless(t, chunk)
		return newOpsRig(t, supsim.Options{}, func(c *Config) { c.Address = srv.URL }, allow)
	}
	t.Run("endless granted lines", func(t *testing.T) {
		o := endlessRig(t, `{"serviceName":"main","message":"m"}`+"\n", "logs.read:main")
		r, err := o.call(OpLocalLogs, "service", "main", "max_lines", "1000", "max_bytes", "4096")
		if err != nil || len(get(r, "lines")) > 4096 || get(r, "end") != endBytes {
			t.Fatalf("%d bytes, end %q: %v", len(get(r, "lines")), get(r, "end"), err)
		}
	})
	t.Run("endless lines of another service", func(t *testing.T) {
		o := endlessRig(t, `{"serviceName":"other","message":"m"}`+"\n", "logs.read:main")
		r, err := o.call(OpLocalLogs, "service", "main", "wait_ms", "10000")
		if err != nil || get(r, "count") != "0" || get(r, "end") != endBudget {
			t.Fatalf("%v %v", r, err)
		}
	})
	t.Run("one endless line", func(t *testing.T) {
		o := endlessRig(t, "y", "journal.read:ssh")
		r, err := o.call(OpJournalRead, "unit", "ssh", "max_bytes", "2048")
		if err != nil || len(get(r, "lines")) != 2048 || get(r, "cut") == "0" {
			t.Fatalf("%d bytes, cut %q, end %q: %v", len(get(r, "lines")), get(r, "cut"), get(r, "end"), err)
		}
	})
}

// TestNeverGrantedEndpointsAreUnreachable: no operation calls the target
// state or key regeneration routes, no grant names them, and calling them
// by any name is denied with nothing sent.
func TestNeverGrantedEndpointsAreUnreachable(t *testing.T) {
	never := []string{"/v2/local/target-state", "/v1/regenerate-api-key"}
	for _, op := range Ops {
		for _, e := range op.Endpoints {
			for _, n := range never {
				if strings.HasSuffix(e, " "+n) {
					t.Errorf("operation %s reaches %s", op.Name, e)
				}
			}
		}
	}
	names := []string{OpLocalTargetRead, OpLocalTargetWrite, OpKeyRegenerate, "regenerate-api-key",
		"local.target-state", "target-state", "api-key.regenerate:*", "local.target.write:*"}
	for _, n := range names {
		if _, err := ParseGrant([]string{n}); err == nil {
			t.Errorf("ParseGrant(%q) accepted", n)
		}
	}
	all := make([]string, 0, len(Ops))
	for _, op := range Ops {
		if op.PerService {
			all = append(all, op.Name+":*")
		} else {
			all = append(all, op.Name)
		}
	}
	o := newOpsRig(t, supsim.Options{LocalMode: true}, nil, all...)
	for _, n := range names {
		if _, err := o.call(n, "force", "true"); errnoOf(err) != abi.Denied {
			t.Errorf("%q: %v, want denied", n, err)
		}
	}
	if ev := o.sim.Events(); len(ev) != 0 {
		t.Fatalf("requests sent: %+v", ev)
	}
}

// TestOneServiceAppChecksTheName: the supervisor acts on a one-service
// app's only service whatever name it is given, so service.restart:worker
// must not restart main: the host checks that worker exists first.
func TestOneServiceAppChecksTheName(t *testing.T) {
	o := newOpsRig(t, supsim.Options{Services: []string{"main"}}, nil, "service.restart:worker", "service.stop:worker")
	before, _ := o.sim.State().Service("main")
	for _, op := range []string{OpServiceRestart, OpServiceStop} {
		if _, err := o.call(op, "service", "worker"); errnoOf(err) != abi.NotFound {
			t.Errorf("%s worker: %v, want not_found", op, err)
		}
	}
	after, _ := o.sim.State().Service("main")
	if after.Restarts != before.Restarts || after.Status != before.Status {
		t.Fatalf("main went %+v → %+v on a request for worker", before, after)
	}
}

// TestNewOpsOnTheSimulator: each new read and action does what its
// endpoint does.
func TestNewOpsOnTheSimulator(t *testing.T) {
	o := newOpsRig(t, supsim.Options{Services: []string{"main"}}, nil,
		"app.read", "device.read", "volumes.cleanup", "app.restart", "app.purge")
	for _, c := range []struct {
		req  []string
		want string // a field that must be non-empty
	}{
		{[]string{OpAppRead, "what", "app"}, "container_id"},
		{[]string{OpAppRead, "what", "apps"}, "json"},
		{[]string{OpAppRead, "what", "state"}, "commit"},
		{[]string{OpDeviceRead, "what", "vpn"}, "connected"},
		{[]string{OpDeviceRead, "what", "device-info"}, "arch"},
		{[]string{OpDeviceRead, "what", "container-ids"}, "service.main"},
		{[]string{OpVolumesCleanup}, ""},
		{[]string{OpAppRestart, "v1", "true"}, ""},
		{[]string{OpAppPurge, "v1", "true", "force", "true"}, ""},
	} {
		r, err := o.call(c.req[0], c.req[1:]...)
		if err != nil || c.want != "" && get(r, c.want) == "" {
			t.Errorf("%q: %v %v", c.req, r, err)
		}
	}
	for _, p := range []string{"POST /v1/restart", "POST /v1/purge", "GET /v2/cleanup-volumes"} {
		m, path, _ := strings.Cut(p, " ")
		if n := o.sim.Count(m, path); n != 1 {
			t.Errorf("%s called %d times", p, n)
		}
	}
}
