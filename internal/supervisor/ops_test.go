package supervisor

import (
	"slices"
	"strings"
	"testing"
)

func TestParseGrantErrors(t *testing.T) {
	cases := []struct {
		allow []string
		want  string // the whole error text: these messages are the user interface
	}{
		{[]string{"reboto"}, `supervisor.allow[0] "reboto": unknown supervisor operation; did you mean "reboot"?`},
		{[]string{"ping", "device.raed"}, `supervisor.allow[1] "device.raed": unknown supervisor operation; did you mean "device.read"?`},
		{[]string{"purge"}, `supervisor.allow[0] "purge": unknown supervisor operation; did you mean "app.purge"?`},
		{[]string{"service.restart"}, `supervisor.allow[0] "service.restart": service.restart needs a service name: write "service.restart:<service>", or "service.restart:*" for every service`},
		{[]string{"service.stop:"}, `supervisor.allow[0] "service.stop:": service.stop needs a service name: write "service.stop:<service>", or "service.stop:*" for every service`},
		{[]string{"reboot:main"}, `supervisor.allow[0] "reboot:main": reboot takes no service name; write "reboot"`},
		{[]string{"service.start:ma in"}, `supervisor.allow[0] "service.start:ma in": service name "ma in" is not a compose service name (a letter or digit, then letters, digits, '.', '_', '-')`},
		{[]string{"regenerate-api-key"}, `supervisor.allow[0] "regenerate-api-key": unknown supervisor operation; known: ping, blink, reboot, shutdown, update, app.restart, app.purge, service.restart, service.stop, service.start, device.read, hostname.set, app.read, volumes.cleanup, tags.set, logs.read, journal.read`},
		{[]string{"rebot", "ok-not"}, "supervisor.allow[0] \"rebot\": unknown supervisor operation; did you mean \"reboot\"?\nsupervisor.allow[1] \"ok-not\": unknown supervisor operation; known: ping, blink, reboot, shutdown, update, app.restart, app.purge, service.restart, service.stop, service.start, device.read, hostname.set, app.read, volumes.cleanup, tags.set, logs.read, journal.read"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.allow, ","), func(t *testing.T) {
			_, err := ParseGrant(tc.allow)
			if err == nil {
				t.Fatal("accepted")
			}
			if err.Error() != tc.want {
				t.Fatalf("error\n%s\nwant\n%s", err, tc.want)
			}
		})
	}
}

func TestGrantAllows(t *testing.T) {
	g, err := ParseGrant([]string{"reboot", "device.read", "service.restart:main", "service.stop:*", " blink "})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		op, service string
		want        bool
	}{
		{"reboot", "", true},
		{"reboot", "main", true}, // the service is ignored for unscoped ops
		{"blink", "", true},
		{"device.read", "", true},
		{"shutdown", "", false},
		{"hostname.set", "", false},
		{"service.restart", "main", true},
		{"service.restart", "worker", false},
		{"service.restart", "", false},
		{"service.restart", "*", false}, // "*" from a caller is a name, not a wildcard
		{"service.stop", "anything", true},
		{"service.start", "main", false},
		{"no.such.op", "", false},
	}
	for _, tc := range cases {
		if got := g.Allows(tc.op, tc.service); got != tc.want {
			t.Errorf("Allows(%q, %q) = %v, want %v", tc.op, tc.service, got, tc.want)
		}
	}
	want := []string{"blink", "device.read", "reboot", "service.restart:main", "service.stop:*"}
	if got := g.List(); !slices.Equal(got, want) {
		t.Errorf("List() = %q, want %q", got, want)
	}
	var zero Grant
	for _, op := range Ops {
		if zero.Allows(op.Name, "main") {
			t.Errorf("the zero Grant allows %s", op.Name)
		}
	}
}

func TestOpsTableIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, op := range Ops {
		if seen[op.Name] {
			t.Errorf("%s listed twice", op.Name)
		}
		seen[op.Name] = true
		if len(op.Endpoints) == 0 || op.Doc == "" {
			t.Errorf("%s lacks endpoints or docs", op.Name)
		}
		if op.PerService != (op.Scope != nil) || strings.HasPrefix(op.Name, "service.") && op.Scope != scopeService {
			t.Errorf("%s: PerService=%v, Scope=%+v", op.Name, op.PerService, op.Scope)
		}
	}
}
