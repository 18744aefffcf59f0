package host_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
)

// testCap is a minimal capability: [testcap] allow = ["ping"] grants its
// one function. It exercises the gate as every real capability does.
type testCap struct{}

type testGrant struct {
	Allow []string `toml:"allow"`
}

func (testCap) Name() string   { return "testcap" }
func (testCap) Module() string { return "airlock_test_v1" }
func (testCap) DecodeGrant(s manifest.Section) (any, error) {
	var g testGrant
	if !s.Decode(&g) {
		return nil, errDecode
	}
	return &g, nil
}

var errDecode = &manifest.Error{Msg: "decode"}

var testGrantKey = capability.GrantKey[*testGrant]("testcap")

func (testCap) Functions() []capability.Func {
	return []capability.Func{capability.HostFuncBytes("ping", func(ctx context.Context, in *capability.Caller, a *capability.Args) ([]byte, error) {
		d := gate.Deny(`testcap.allow does not list "ping"`)
		if g := testGrantKey.Of(in); g != nil && slices.Contains(g.Allow, "ping") {
			d = gate.Allow(`testcap.allow lists "ping"`)
		}
		if err := in.Check(ctx, "testcap", "ping", d); err != nil {
			return nil, err
		}
		return []byte("pong to " + string(a.Bytes(0))), nil
	}, capability.Input{Name: "msg"})}
}

const importer = "host/testdata/importer"

func TestUngrantedImportIsRefusedAtLoad(t *testing.T) {
	r := start(t, nil, []capability.Capability{testCap{}},
		plug{"greedy", "# BROKEN\n" + toml("greedy", ""), importer},
		plug{"good", toml("good", ""), guest})
	r.log.Wait(1, "INFO started", "plugin=good")
	r.log.Wait(1, "plugin not loaded", "greedy")
	want := `plugin "greedy" refused at load:
  plugin "greedy": testcap import airlock_test_v1 denied: plugin.toml has no [testcap] section (add a [testcap] section to`
	var got string
	for _, err := range r.h.Failures() {
		got = err.Error()
	}
	if !strings.HasPrefix(got, want) {
		t.Errorf("load error =\n%s\nwant prefix\n%s", got, want)
	}
	if r.audit.Count("plugin=greedy", "capability=testcap", "decision=deny", "op=import airlock_test_v1") != 1 {
		t.Errorf("the refusal was not audited:\n%s", strings.Join(r.audit.Lines(), "\n"))
	}
}

func TestUnknownModuleIsRefused(t *testing.T) {
	r := start(t, nil, nil, plug{"future", "# BROKEN\n" + toml("future", ""), importer}, plug{"good", toml("good", ""), guest})
	r.log.Wait(1, "plugin not loaded", "future")
	for _, err := range r.h.Failures() {
		if !strings.Contains(err.Error(), `from unknown module "airlock_test_v1" (built for a newer airlock?`) {
			t.Errorf("load error = %v", err)
		}
	}
}

func TestGrantedCallIsAllowedAndAudited(t *testing.T) {
	r := start(t, nil, []capability.Capability{testCap{}}, plug{"p", toml("p", "[testcap]\nallow = [\"ping\"]"), importer})
	r.log.Wait(1, "ping replied pong to ping", "plugin=p")
	if r.audit.Count("plugin=p", "capability=testcap", "op=ping", "decision=allow") != 1 {
		t.Errorf("allow not audited:\n%s", strings.Join(r.audit.Lines(), "\n"))
	}
}

func TestCallOutsideGrantIsDeniedWithReadableError(t *testing.T) {
	r := start(t, nil, []capability.Capability{testCap{}}, plug{"p", toml("p", "[testcap]\nallow = []"), importer})
	r.log.Wait(1, `ping failed: denied: plugin "p": testcap ping denied: testcap.allow does not list "ping"`, "plugin=p")
	if r.audit.Count("plugin=p", "op=ping", "decision=deny") != 1 {
		t.Errorf("deny not audited:\n%s", strings.Join(r.audit.Lines(), "\n"))
	}
	if s := r.status("p"); s.Restarts != 0 {
		t.Errorf("a denial crashed the plugin: %+v", s)
	}
}
