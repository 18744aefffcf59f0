package supervisor

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/airlockhq/airlock/host/manifest"
)

// Operation names, as a manifest's [supervisor] allow list spells them.
const (
	OpPing           = "ping"
	OpBlink          = "blink"
	OpReboot         = "reboot"
	OpShutdown       = "shutdown"
	OpUpdate         = "update"
	OpAppRestart     = "app.restart"
	OpAppPurge       = "app.purge"
	OpServiceRestart = "service.restart"
	OpServiceStop    = "service.stop"
	OpServiceStart   = "service.start"
	OpDeviceRead     = "device.read"
	OpHostnameSet    = "hostname.set"
	// OpAppRead, OpVolumesCleanup, OpTagsSet, OpLocalLogs and OpJournalRead
	// are in endpoints.go, with the names that are never granted.
)

// Scope is what a scoped operation's grant names after its colon.
type Scope struct {
	Field string            // the request field that carries it: "service"
	What  string            // in messages: "service name"
	Rule  string            // what a valid name is, in messages
	Valid func(string) bool // a name a grant may hold and a request may send
}

var (
	scopeService = &Scope{Field: fieldService, What: "service name", Valid: validService,
		Rule: "a compose service name (a letter or digit, then letters, digits, '.', '_', '-')"}
	scopeTag = &Scope{Field: fieldKey, What: "tag key", Valid: validTagKey,
		Rule: fmt.Sprintf("a tag key (1 to %d bytes of UTF-8 without whitespace, control characters or ':')", maxTagKey)}
	scopeUnit = &Scope{Field: fieldUnit, What: "unit name", Valid: validUnit,
		Rule: "a systemd unit name (a letter or digit, then letters, digits, ':', '_', '.', '@', '-', '\\')"}
)

// OpInfo describes one grantable operation.
type OpInfo struct {
	Name       string
	PerService bool     // scoped: granted per name, "service.restart:main"
	Scope      *Scope   // for a scoped operation, what the name is
	Endpoints  []string // what the client calls for it
	Doc        string
}

// Ops lists every operation a manifest can grant, in the order docs show
// them. Anything not here is denied.
var Ops = []OpInfo{
	{Name: OpPing, Endpoints: []string{"GET /ping", "GET /v1/healthy"}, Doc: "check that the supervisor answers and is healthy"},
	{Name: OpBlink, Endpoints: []string{"POST /v1/blink"}, Doc: "blink the identification LED"},
	{Name: OpReboot, Endpoints: []string{"POST /v1/reboot"}, Doc: "reboot the device (update locks apply unless forced)"},
	{Name: OpShutdown, Endpoints: []string{"POST /v1/shutdown"}, Doc: "power the device off"},
	{Name: OpUpdate, Endpoints: []string{"POST /v1/update"}, Doc: "trigger an update check"},
	{Name: OpAppRestart, Endpoints: []string{"POST /v2/applications/:appId/restart"}, Doc: "restart every service of the app"},
	{Name: OpAppPurge, Endpoints: []string{"POST /v2/applications/:appId/purge"}, Doc: "delete the app's data volumes"},
	{Name: OpServiceRestart, PerService: true, Endpoints: []string{"POST /v2/applications/:appId/restart-service"}, Doc: "restart the named service"},
	{Name: OpServiceStop, PerService: true, Endpoints: []string{"POST /v2/applications/:appId/stop-service"}, Doc: "stop the named service"},
	{Name: OpServiceStart, PerService: true, Endpoints: []string{"POST /v2/applications/:appId/start-service"}, Doc: "start the named service"},
	{Name: OpDeviceRead, Endpoints: []string{"GET /v1/device", "GET /v2/state/status", "GET /v2/version", "GET /v2/device/name", "GET /v2/device/tags", "GET /v1/device/host-config"}, Doc: "read device info, status, version, name, tags and host config"},
	{Name: OpHostnameSet, Endpoints: []string{"PATCH /v1/device/host-config"}, Doc: "change the hostname"},
	{Name: OpAppRead, Endpoints: []string{"GET /v1/apps/:appId", "GET /v2/applications/state", "GET /v2/applications/:appId/state"}, Doc: "read the app's release, services, images and states (never its environment)"},
	{Name: OpVolumesCleanup, Endpoints: []string{"GET /v2/cleanup-volumes"}, Doc: "delete the volumes no app references"},
	{Name: OpTagsSet, PerService: true, Scope: scopeTag, Endpoints: []string{"PATCH /v2/device/tags"}, Doc: "set the named device tag"},
	{Name: OpLocalLogs, PerService: true, Scope: scopeService, Endpoints: []string{"GET /v2/local/logs"}, Doc: "read the named service's log lines (local mode), bounded"},
	{Name: OpJournalRead, PerService: true, Scope: scopeUnit, Endpoints: []string{"POST /v2/journal-logs"}, Doc: "read the host journal of the named unit, bounded"},
}

func init() {
	for i := range Ops {
		if Ops[i].PerService && Ops[i].Scope == nil {
			Ops[i].Scope = scopeService
		}
	}
}

// LookupOp returns the named operation.
func LookupOp(name string) (OpInfo, bool) {
	for _, op := range Ops {
		if op.Name == name {
			return op, true
		}
	}
	return OpInfo{}, false
}

// AnyService in a grant ("service.restart:*") allows every service. It is
// the only wildcard, and only where the manifest writes it.
const AnyService = "*"

// Grant is a parsed allow list. The zero Grant denies everything. A Grant is
// immutable once parsed, so it can be shared between goroutines.
type Grant struct {
	ops      map[string]bool            // operations granted without a service
	services map[string]map[string]bool // per-service operation → service names
}

// ParseGrant parses a manifest's [supervisor] allow list. Every bad entry is
// reported, each naming its index, with a "did you mean" when one is close.
func ParseGrant(allow []string) (Grant, error) {
	g := Grant{ops: map[string]bool{}, services: map[string]map[string]bool{}}
	var errs []error
	for i, entry := range allow {
		if err := g.add(entry); err != nil {
			errs = append(errs, fmt.Errorf("supervisor.allow[%d] %q: %w", i, entry, err))
		}
	}
	if len(errs) > 0 {
		return Grant{}, errors.Join(errs...)
	}
	return g, nil
}

func (g Grant) add(entry string) error {
	name, service, scoped := strings.Cut(strings.TrimSpace(entry), ":")
	op, ok := LookupOp(name)
	if !ok {
		return unknownOp(name)
	}
	if !op.PerService {
		if scoped {
			return fmt.Errorf("%s takes no service name; write %q", op.Name, op.Name)
		}
		g.ops[op.Name] = true
		return nil
	}
	sc := op.Scope
	if !scoped || service == "" {
		return fmt.Errorf("%s needs a %s: write \"%s:<%s>\", or \"%s:*\" for every %s", op.Name, sc.What, op.Name, sc.Field, op.Name, sc.Field)
	}
	if service != AnyService && !sc.Valid(service) {
		return fmt.Errorf("%s %q is not %s", sc.What, service, sc.Rule)
	}
	if g.services[op.Name] == nil {
		g.services[op.Name] = map[string]bool{}
	}
	g.services[op.Name][service] = true
	return nil
}

// validService accepts a compose service name: [a-zA-Z0-9][a-zA-Z0-9_.-]*.
// The first character rules out "..", "." and names a tool could read as
// an option ("-x").
func validService(s string) bool {
	for i, c := range s {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return s != ""
}

func unknownOp(name string) error {
	best := ""
	// A bare word such as "purge" is most likely the last segment of a
	// dotted name, even when a short name ("ping") is closer in spelling.
	for _, op := range Ops {
		if _, last, ok := strings.Cut(op.Name, "."); ok && last == name {
			best = op.Name
			break
		}
	}
	if best == "" {
		bestD := 4
		for _, op := range Ops {
			if d := manifest.EditDistance(name, op.Name); d < bestD {
				best, bestD = op.Name, d
			}
		}
	}
	if best != "" {
		return fmt.Errorf("unknown supervisor operation; did you mean %q?", best)
	}
	names := make([]string, len(Ops))
	for i, op := range Ops {
		names[i] = op.Name
	}
	return fmt.Errorf("unknown supervisor operation; known: %s", strings.Join(names, ", "))
}

// Allows reports whether the grant covers op. For a per-service operation,
// service names the target; for the others it is ignored.
func (g Grant) Allows(op, service string) bool {
	info, ok := LookupOp(op)
	if !ok {
		return false
	}
	if !info.PerService {
		return g.ops[op]
	}
	set := g.services[op]
	return service != "" && (set[service] || set[AnyService])
}

// List returns the grant in canonical form, sorted: what a check command
// prints and what the audit log records at load.
func (g Grant) List() []string {
	var out []string
	for op := range g.ops {
		out = append(out, op)
	}
	for op, set := range g.services {
		for s := range set {
			out = append(out, op+":"+s)
		}
	}
	slices.Sort(out)
	return out
}

// String is the canonical list, quoted, for logs.
func (g Grant) String() string {
	l := g.List()
	q := make([]string, len(l))
	for i, s := range l {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}
