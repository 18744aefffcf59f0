package supervisor

import (
	"strings"
	"testing"

	"github.com/airlockhq/airlock/abi"
)

// FuzzRequest feeds arbitrary operation names and request bytes through the
// checks a guest's call passes before the gate and after it. Whatever the
// bytes, they never panic, an accepted service name is a compose name, and
// the gate's verdict on an ungranted operation is a denial.
func FuzzRequest(f *testing.F) {
	rec := func(kv ...string) []byte {
		var r abi.Record
		for i := 0; i+1 < len(kv); i += 2 {
			r = append(r, abi.Field{Key: kv[i], Value: []byte(kv[i+1])})
		}
		return abi.AppendRecord(nil, r)
	}
	f.Add("reboot", rec("force", "true"))
	f.Add("service.restart", rec("service", "main", "force", "false"))
	f.Add("service.stop", rec("service", "../etc"))
	f.Add("device.read", rec("what", "status"))
	f.Add("hostname.set", rec("hostname", ""))
	f.Add("ping", rec("what", "healthy", "what", "ping"))
	f.Add("frobnicate", []byte{1, 0, 0, 0, 255, 255, 255, 255})
	grant, err := ParseGrant([]string{"service.restart:main", "device.read"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, op string, b []byte) {
		// hostCall refuses an over-long or non-printable operation name
		// before it parses the request (ABI.md §3.2, step 1).
		if len(op) > maxOpLen || !printable(op) {
			return
		}
		req, err := parseRequest(op, b)
		if err != nil {
			if Errno(err) != abi.Invalid {
				t.Fatalf("parse error %v has errno %s", err, Errno(err))
			}
			return
		}
		if info, ok := LookupOp(op); ok && info.PerService && !validService(req[fieldService]) {
			t.Fatalf("accepted service %q", req[fieldService])
		}
		d := decide(grant, op, req[fieldService])
		if d.Allowed && op != OpDeviceRead && !(op == OpServiceRestart && req[fieldService] == "main") {
			t.Fatalf("%s %q allowed by %v: %s", op, req[fieldService], grant, d.Reason)
		}
		if err := req.check(op); err != nil && (Errno(err) != abi.Invalid || strings.Contains(err.Error(), "\n")) {
			t.Fatalf("check error %q", err)
		}
	})
}
