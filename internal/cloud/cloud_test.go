package cloud_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/logtest"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/bundle"
	"github.com/airlockhq/airlock/internal/cloud"
	"github.com/airlockhq/airlock/internal/cloud/sim"
)

// rig is a provisioned capability on the simulated cloud, a plugin's
// caller with a grant, and the logs it writes.
type rig struct {
	c      *cloud.Cloud
	caller *capability.Caller
	audit  *logtest.Log // the gate's audit
	log    *logtest.Log // the capability's and the plugin's log
}

func newRig(t *testing.T, so *sim.Options, allow ...string) *rig {
	t.Helper()
	if so == nil {
		d := cloud.DefaultSim()
		so = &d
	}
	c := cloud.New(cloud.Options{Sim: so})
	logs, logger := logtest.New(t)
	if err := c.Provision(t.Context(), capability.Env{Sim: true, Logger: logger}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return withCaller(t, c, logs, logger, allow...)
}

func withCaller(t *testing.T, c *cloud.Cloud, logs *logtest.Log, logger any, allow ...string) *rig {
	t.Helper()
	g, err := cloud.ParseGrant(allow...)
	if err != nil {
		t.Fatal(err)
	}
	audit, auditLogger := logtest.New(t)
	gt := gate.New(auditLogger)
	t.Cleanup(gt.Close)
	_, pluginLog := logtest.New(t)
	caller := &capability.Caller{Plugin: "p", Grants: map[string]any{cloud.Name: g}, Gate: gt, Log: pluginLog}
	return &rig{c: c, caller: caller, audit: audit, log: logs}
}

func (r *rig) do(t *testing.T, op string, kv ...string) (abi.Record, error) {
	t.Helper()
	var req abi.Record
	for i := 0; i+1 < len(kv); i += 2 {
		req = append(req, abi.Field{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return r.c.Do(t.Context(), r.caller, op, req)
}

func (r *rig) must(t *testing.T, op string, kv ...string) abi.Record {
	t.Helper()
	rec, err := r.do(t, op, kv...)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return rec
}

func text(r abi.Record) string {
	var b []string
	for _, f := range r {
		b = append(b, f.Key+"="+string(f.Value))
	}
	return strings.Join(b, " ")
}

func errno(err error) abi.Errno { return capability.ErrnoOf(err) }

// Every operation, against the simulator over real HTTP.
func TestOperations(t *testing.T) {
	r := newRig(t, nil, "device.read", "name.set", "tags.read", "tags.set:location", "tags.set:new", "tags.delete:owner",
		"env.read", "config.read", "fleet.read")
	for _, tc := range []struct {
		op   string
		kv   []string
		want string
	}{
		{"device.read", nil, "uuid=" + cloud.SimUUID + " name=airlock-sim"},
		{"tags.read", nil, "location=lab owner=ops"},
		{"tags.set", []string{"key", "location", "value", "roof"}, ""},
		{"tags.set", []string{"key", "new", "value", ""}, ""},
		{"tags.delete", []string{"key", "owner"}, "deleted=true"},
		{"tags.delete", []string{"key", "owner"}, "deleted=false"},
		{"tags.read", nil, "location=roof new="},
		{"env.read", nil, "LOG_LEVEL=debug"},
		{"env.read", []string{"scope", "fleet"}, "LOG_LEVEL=info REGION=eu"},
		{"config.read", []string{"scope", "device"}, "BALENA_HOST_CONFIG_gpu_mem=64"},
		{"config.read", []string{"scope", "fleet"}, "BALENA_SUPERVISOR_POLL_INTERVAL=900000"},
		{"fleet.read", nil, "id=7 name=airlock-demo slug=acme/airlock-demo device_type=raspberrypi4-64 is_public=false"},
		{"name.set", []string{"name", "kitchen sensor"}, ""},
		{"device.read", nil, "uuid=" + cloud.SimUUID + " name=kitchen sensor"},
	} {
		if got := text(r.must(t, tc.op, tc.kv...)); got != tc.want {
			t.Errorf("%s %v = %q, want %q", tc.op, tc.kv, got, tc.want)
		}
	}
	if got := r.c.Sim().DeviceName(101); got != "kitchen sensor" {
		t.Errorf("the simulator's device name is %q", got)
	}
	if r.audit.Count("allow", "tags.set:location") != 1 {
		t.Errorf("no audit of tags.set:location:\n%s", strings.Join(r.audit.Lines(), "\n"))
	}
}

// Hostile: each operation outside the grant is denied and audited, and the
// API is not called. A per-key grant covers its key only.
func TestOutsideGrant(t *testing.T) {
	r := newRig(t, nil, "tags.read", "tags.set:location")
	for _, tc := range []struct {
		op string
		kv []string
	}{
		{"tags.set", []string{"key", "owner", "value", "x"}},
		{"tags.delete", []string{"key", "location"}},
		{"name.set", []string{"name", "x"}},
		{"env.read", nil},
		{"config.read", nil},
		{"fleet.read", nil},
		{"device.read", nil},
		{"proxy", []string{"path", "/v7/device"}},
	} {
		_, err := r.do(t, tc.op, tc.kv...)
		if errno(err) != abi.Denied {
			t.Errorf("%s %v: %v (errno %v), want denied", tc.op, tc.kv, err, errno(err))
		}
	}
	if n := len(r.c.Sim().Calls()); n != 0 {
		t.Errorf("denied calls reached the API: %q", r.c.Sim().Calls())
	}
	if r.audit.Count("deny", "tags.set:owner") != 1 {
		t.Errorf("the denial of tags.set:owner is not audited:\n%s", strings.Join(r.audit.Lines(), "\n"))
	}
	// No [cloud] section at all.
	r.caller.Grants = nil
	if _, err := r.do(t, "tags.read"); errno(err) != abi.Denied {
		t.Errorf("no grant: %v", err)
	}
}

// Hostile: tag keys that would end the OData string literal, close the key
// predicate, add a query option or climb the path are stored as the literal
// keys they are, and touch no other device's tags.
func TestODataInjection(t *testing.T) {
	r := newRig(t, nil, "tags.read", "tags.set:*", "tags.delete:*")
	keys := []string{
		`x'or'1'eq'1`,                 // ends the literal
		`a')`,                         // closes a key predicate
		`k&$filter=device%20eq%20102`, // a second $filter
		`../device(102)`,              // path traversal
		`q'';--`,                      // doubled quotes already
		`%27`,                         // an escaped quote, literally
	}
	for i, k := range keys {
		r.must(t, "tags.set", "key", k, "value", "v"+string(rune('0'+i)))
	}
	got := r.c.Sim().Tags(101)
	for i, k := range keys {
		if got[k] != "v"+string(rune('0'+i)) {
			t.Errorf("tag %q = %q after tags.set, want v%d (all: %q)", k, got[k], i, got)
		}
	}
	// Each set again updates the one tag it names.
	for _, k := range keys {
		r.must(t, "tags.set", "key", k, "value", "again")
	}
	if n := len(r.c.Sim().Tags(101)); n != 2+len(keys) {
		t.Errorf("device has %d tags, want %d: %q", n, 2+len(keys), r.c.Sim().Tags(101))
	}
	for _, k := range keys {
		if rec := r.must(t, "tags.delete", "key", k); text(rec) != "deleted=true" {
			t.Errorf("tags.delete %q: %s", k, text(rec))
		}
	}
	if got := text(r.must(t, "tags.read")); got != "location=lab owner=ops" {
		t.Errorf("tags.read after the deletes = %q", got)
	}
	if got := r.c.Sim().Tags(102); len(got) != 1 || got["secret"] != "neighbour's" {
		t.Errorf("the other device's tags changed: %q", got)
	}
}

// Hostile: bad names, keys and values are refused before any request:
// control characters (CR LF for header injection), over-long values, keys
// with spaces, unknown or repeated fields.
func TestBoundsAndHeaderInjection(t *testing.T) {
	r := newRig(t, nil, "name.set", "tags.set:*", "env.read")
	long := func(n int) string { return strings.Repeat("a", n) }
	for _, tc := range []struct {
		op string
		kv []string
	}{
		{"name.set", []string{"name", "x\r\nAuthorization: Bearer evil"}},
		{"name.set", []string{"name", "x\nX-Evil: 1"}},
		{"name.set", []string{"name", long(cloud.MaxName + 1)}},
		{"name.set", []string{"name", ""}},
		{"name.set", []string{"name", "\xff"}},
		{"tags.set", []string{"key", "a\r\nX-Evil:1", "value", "v"}},
		{"tags.set", []string{"key", "a b", "value", "v"}},
		{"tags.set", []string{"key", long(cloud.MaxKey + 1), "value", "v"}},
		{"tags.set", []string{"key", "", "value", "v"}},
		{"tags.set", []string{"key", "k", "value", long(cloud.MaxValue + 1)}},
		{"tags.set", []string{"key", "k", "value", "a\x00b"}},
		{"tags.set", []string{"key", "k"}},
		{"tags.set", []string{"key", "k", "value", "v", "value", "w"}},
		{"env.read", []string{"scope", "../application"}},
		{"env.read", []string{"filter", "device eq 102"}},
		{"tags.read\r\nINFO forged audit line", nil},
		{"", nil},
	} {
		_, err := r.do(t, tc.op, tc.kv...)
		if errno(err) != abi.Invalid {
			t.Errorf("%s %q: %v (errno %v), want invalid", tc.op, tc.kv, err, errno(err))
		}
	}
	if calls := r.c.Sim().Calls(); len(calls) != 0 {
		t.Errorf("refused requests reached the API: %q", calls)
	}
	// The bounds themselves are accepted.
	r.must(t, "name.set", "name", long(cloud.MaxName))
	r.must(t, "tags.set", "key", long(cloud.MaxKey), "value", long(cloud.MaxValue))
}

// Hostile: another device is unreachable. No request field names a
// device; every request the client makes names this device or its fleet.
func TestOtherDeviceUnreachable(t *testing.T) {
	r := newRig(t, nil, "device.read", "tags.read", "tags.set:*", "env.read", "config.read", "fleet.read", "name.set")
	for _, kv := range [][]string{{"uuid", "ffffffffffffffffffffffffffffffff"}, {"device", "102"}, {"id", "102"}} {
		if _, err := r.do(t, "device.read", kv...); errno(err) != abi.Invalid {
			t.Errorf("device.read %q: %v, want invalid", kv, err)
		}
	}
	r.must(t, "device.read")
	if got := text(r.must(t, "tags.read")); strings.Contains(got, "secret") {
		t.Errorf("tags.read shows the other device's tag: %s", got)
	}
	r.must(t, "tags.set", "key", "k", "value", "v")
	r.must(t, "env.read")
	r.must(t, "config.read", "scope", "fleet")
	r.must(t, "fleet.read")
	r.must(t, "name.set", "name", "n")
	for _, call := range r.c.Sim().Calls() {
		if strings.Contains(call, "102") || strings.Contains(call, "ffff") {
			t.Errorf("a request names another device: %s", call)
		}
	}
	if r.c.Sim().DeviceName(102) != "neighbour" {
		t.Error("the other device was renamed")
	}
}

// Hostile: the key never reaches a plugin or a log: not through an error
// body that echoes it, not through a value that contains it.
func TestKeyNeverLeaks(t *testing.T) {
	so := cloud.DefaultSim()
	key := so.Devices[0].Key
	so.FleetEnv[7] = append(so.FleetEnv[7], sim.Var{Name: "PASTED", Value: "token " + key})
	r := newRig(t, &so, "env.read", "tags.read")
	rec := r.must(t, "env.read", "scope", "fleet")
	if strings.Contains(text(rec), key) || !strings.Contains(text(rec), "PASTED=token [redacted]") {
		t.Errorf("env.read shows the key: %s", text(rec))
	}

	bad := cloud.DefaultSim()
	bad.EchoAuth, bad.Fail = true, 400
	r = newRig(t, &bad, "tags.read")
	_, err := r.do(t, "tags.read")
	if err == nil || errno(err) != abi.Invalid {
		t.Fatalf("tags.read against a failing API: %v", err)
	}
	if strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("the error shows the key: %v", err)
	}
	for _, l := range append(r.log.Lines(), r.audit.Lines()...) {
		if strings.Contains(l, key) {
			t.Errorf("a log line shows the key: %s", l)
		}
	}
	if !slices.Contains(r.c.SecretEnv(), cloud.EnvKey) {
		t.Errorf("SecretEnv %q does not name %s", r.c.SecretEnv(), cloud.EnvKey)
	}
}

// On a real device the capability reads the platform's environment; a key
// the API refuses is a denial with the API's status, without the key.
func TestEnvironment(t *testing.T) {
	s := sim.New(cloud.DefaultSim())
	url, err := s.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	for _, tc := range []struct {
		env     map[string]string
		errno   abi.Errno
		wantErr string
	}{
		{map[string]string{}, abi.Unavailable, "BALENA_API_URL is not set"},
		{map[string]string{"BALENA_API_URL": url}, abi.Unavailable, "BALENA_API_KEY is not set"},
		{map[string]string{"BALENA_API_URL": url, "BALENA_API_KEY": "k", "BALENA_DEVICE_UUID": "../x"}, abi.Unavailable, "not a balena device uuid"},
		{map[string]string{"BALENA_API_URL": url + "/", "BALENA_API_KEY": "wrongkey123", "BALENA_DEVICE_UUID": cloud.SimUUID}, abi.Denied, "401 Unauthorized: Unauthorized"},
		{map[string]string{"BALENA_API_URL": url, "BALENA_API_KEY": "simcloudkey0123456789abcdef", "BALENA_DEVICE_UUID": "ffffffffffffffffffffffffffffffff"}, abi.NotFound, "no device ffffffffffffffffffffffffffffffff"},
		{map[string]string{"BALENA_API_URL": url, "BALENA_API_KEY": "simcloudkey0123456789abcdef", "BALENA_DEVICE_UUID": cloud.SimUUID}, abi.OK, ""},
	} {
		c := cloud.New(cloud.Options{Getenv: func(k string) string { return tc.env[k] }})
		logs, logger := logtest.New(t)
		if err := c.Provision(t.Context(), capability.Env{Logger: logger}); err != nil {
			t.Fatal(err)
		}
		r := withCaller(t, c, logs, logger, "device.read")
		_, err := r.do(t, "device.read")
		if errno(err) != tc.errno || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("env %q: %v (errno %v), want %v %q", tc.env, err, errno(err), tc.errno, tc.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "wrongkey123") {
			t.Errorf("the error shows the key: %v", err)
		}
		c.Close()
	}
}

func TestGrantEntries(t *testing.T) {
	for _, tc := range []struct{ entry, want string }{
		{"tags.set", "granted per tag key"},
		{"tags.read:x", "takes no key"},
		{"proxy", "not a cloud operation"},
		{"tags.set:a b", "outside printable ASCII or a space"},
	} {
		_, err := cloud.ParseGrant(tc.entry)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.entry, err, tc.want)
		}
	}
	if _, err := cloud.ParseGrant("tags.set:*", "tags.delete:x'y", "fleet.read"); err != nil {
		t.Error(err)
	}
}

// Hostile: a vendor's plugin asks for more than its ceiling. Without
// Grant.Within, bundle.CheckCeiling allows a grant whole whenever the
// ceiling names the capability.
func TestCeiling(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	caps := []capability.Capability{cloud.New(cloud.Options{})}
	rt, err := manifest.ParseRuntime(filepath.Join(t.TempDir(), "runtime.toml"), []byte("[trust]\nallow_unsigned = []\n[[trust.vendor]]\nname = \"acme\"\nkey = \""+
		base64.StdEncoding.EncodeToString(pub)+"\"\n[trust.vendor.ceiling.cloud]\nallow = [\"tags.read\", \"tags.set:location\", \"tags.delete:*\"]\n"), host.RuntimeSections(caps))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		allow, excess string
	}{
		{`"tags.read", "tags.set:location", "tags.delete:x"`, ""},
		{`"tags.set:owner"`, `"tags.set:owner" is outside the ceiling`},
		{`"tags.set:*"`, `"tags.set:*" is outside the ceiling`},
		{`"name.set"`, `"name.set" is outside the ceiling`},
	} {
		m, err := manifest.ParseManifest(filepath.Join(t.TempDir(), "plugin.toml"),
			[]byte("name = \"p\"\nversion = \"1.0.0\"\n[cloud]\nallow = ["+tc.allow+"]\n"), rt, host.Schema(caps))
		if err != nil {
			t.Fatal(err)
		}
		err = bundle.CheckCeiling(m, &rt.Trust.Vendors[0])
		if (err == nil) != (tc.excess == "") || (err != nil && !strings.Contains(err.Error(), tc.excess)) {
			t.Errorf("allow = [%s]: %v, want %q", tc.allow, err, tc.excess)
		}
	}
	g, _ := cloud.ParseGrant("tags.set:*", "fleet.read")
	if got := strings.Join(g.Describe(), "; "); got != "may read its fleet's id, name, slug, device type and visibility in the balena cloud; may set this device's tag (any key) in the balena cloud" {
		t.Errorf("Describe: %s", got)
	}
}

// runtime.toml's [cloud]: a key written there is refused without being
// echoed; the timeout is bounded; and it bounds a request to an API that
// accepts the connection and never answers (timeout, not a hang).
func TestRuntimeConfig(t *testing.T) {
	caps := []capability.Capability{cloud.New(cloud.Options{})}
	parse := func(text string) (*manifest.Runtime, error) {
		return manifest.ParseRuntime(filepath.Join(t.TempDir(), "runtime.toml"), []byte(text), host.RuntimeSections(caps))
	}
	for _, tc := range []struct{ text, want string }{
		{"[cloud]\napi_key = \"hunter2secret\"\n", "the cloud API key must not be written in runtime.toml"},
		{"[cloud]\ntimeout = \"10m\"\n", "timeout = 10m0s is out of range"},
	} {
		_, err := parse(tc.text)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("%q: %v, want %q", tc.text, err, tc.want)
		}
	}
	rt, err := parse("[cloud]\ntimeout = \"200ms\"\n")
	if err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() }) // hold it open, never answer
		}
	}()
	env := map[string]string{"BALENA_API_URL": "http://" + ln.Addr().String(), "BALENA_API_KEY": "k3y", "BALENA_DEVICE_UUID": cloud.SimUUID}
	c := cloud.New(cloud.Options{Getenv: func(k string) string { return env[k] }})
	logs, logger := logtest.New(t)
	if err := c.Provision(t.Context(), capability.Env{Config: rt.Sections[cloud.Name], Logger: logger}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	r := withCaller(t, c, logs, logger, "device.read")
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute) // only a hang reaches this
	defer cancel()
	_, err = c.Do(ctx, r.caller, "device.read", nil)
	if errno(err) != abi.Timeout || ctx.Err() != nil {
		t.Errorf("device.read against a silent API: %v (errno %v), want timeout before the test's bound", err, errno(err))
	}
}
