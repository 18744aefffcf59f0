package supervisor

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/gate"
)

// FuncCall is the one function of airlock_supervisor_v1 (ABI.md §3.2):
//
//	call(op_ptr, op_len, req_ptr, req_len, out_ptr, out_cap, out_len_ptr) -> errno
const FuncCall = "call"

// Bounds on what a guest passes in. An op is a grant name; a request holds
// at most a service name, a hostname and a flag.
const (
	maxOpLen      = 64
	maxRequestLen = 4 << 10
	maxServiceLen = 128
	maxHostname   = 255
)

// Request fields, as ABI.md §3.2 names them.
const (
	fieldForce    = "force"
	fieldService  = "service"
	fieldHostname = "hostname"
	fieldWhat     = "what"
	fieldV1       = "v1"        // app.restart, app.purge: the legacy /v1 route
	fieldKey      = "key"       // tags.set
	fieldValue    = "value"     // tags.set
	fieldUnit     = "unit"      // journal.read
	fieldCont     = "container" // journal.read: a syslog identifier, needs journal.read:*
	fieldCount    = "count"     // journal.read: the last count entries
	fieldSince    = "since"     // journal.read
	fieldUntil    = "until"     // journal.read
	fieldFormat   = "format"    // journal.read
	fieldFollow   = "follow"    // journal.read: wait for new entries until the wait ends
	fieldMaxLines = "max_lines" // logs.read, journal.read
	fieldMaxBytes = "max_bytes" // logs.read, journal.read
	fieldWaitMS   = "wait_ms"   // logs.read, journal.read
)

// opFields lists the request fields each operation takes. Anything else is
// refused, so that a field a newer SDK adds is never silently ignored.
var opFields = map[string][]string{
	OpPing:           {fieldWhat},
	OpBlink:          nil,
	OpReboot:         {fieldForce},
	OpShutdown:       {fieldForce},
	OpUpdate:         {fieldForce},
	OpAppRestart:     {fieldForce, fieldV1},
	OpAppPurge:       {fieldForce, fieldV1},
	OpServiceRestart: {fieldService, fieldForce},
	OpServiceStop:    {fieldService, fieldForce},
	OpServiceStart:   {fieldService, fieldForce},
	OpDeviceRead:     {fieldWhat},
	OpHostnameSet:    {fieldHostname, fieldForce},
	OpAppRead:        {fieldWhat},
	OpVolumesCleanup: nil,
	OpTagsSet:        {fieldKey, fieldValue},
	OpLocalLogs:      {fieldService, fieldMaxLines, fieldMaxBytes, fieldWaitMS},
	OpJournalRead: {fieldUnit, fieldCont, fieldCount, fieldSince, fieldUntil, fieldFormat, fieldFollow,
		fieldMaxLines, fieldMaxBytes, fieldWaitMS},
}

// Values of the what field.
var (
	pingWhat   = []string{"ping", "healthy"}
	deviceWhat = []string{"device", "status", "version", "name", "tags", "host-config", "vpn", "device-info", "container-ids"}
	appWhat    = []string{"app", "apps", "state"}
)

// Functions returns airlock_supervisor_v1's one function.
func (c *Capability) Functions() []capability.Func {
	return []capability.Func{capability.HostFunc(FuncCall, c.hostCall,
		capability.Input{Name: "op", Max: maxOpLen, TooLong: func(uint32) error {
			return c.scrub(invalid("?", "the operation name is longer than %d bytes", maxOpLen))
		}},
		capability.Input{Name: "req", Max: maxRequestLen, TooLong: func(uint32) error {
			return c.scrub(&Error{Op: "?", Code: abi.TooLarge, Message: fmt.Sprintf("the request is larger than %d bytes", maxRequestLen)})
		}})}
}

// hostCall implements call, once the glue has read the op and the request
// and checked every range: check the arguments, ask the gate, then the
// supervisor. Nothing here traps: every failure is an errno with a message,
// scrubbed of the key, as is the reply.
func (c *Capability) hostCall(ctx context.Context, in *capability.Caller, a *capability.Args) (abi.Record, error) {
	r, err := c.serve(ctx, in, string(a.Bytes(0)), a.Bytes(1))
	if err != nil {
		return nil, c.scrub(err)
	}
	return c.scrubRecord(r), nil
}

func (c *Capability) serve(ctx context.Context, in *capability.Caller, op string, reqBytes []byte) (abi.Record, error) {
	if !printable(op) {
		return nil, invalid("?", "the operation name %q is not printable ASCII", op)
	}
	req, err := parseRequest(op, reqBytes)
	if err != nil {
		return nil, err
	}
	// The gate sees the operation as the manifest would spell its grant:
	// "service.restart:main", so that the audit names the service.
	auditOp, name := op, ""
	info, known := LookupOp(op)
	if known && info.PerService {
		name = req.scope(info)
		auditOp = op + ":" + name
	}
	if err := in.Check(ctx, CapabilityName, auditOp, decide(grant.Of(in), op, name)); err != nil {
		return nil, err
	}
	if err := req.check(op); err != nil {
		return nil, err
	}
	if c.client == nil {
		return nil, &Error{Op: op, Code: abi.Unavailable, Message: c.notReady}
	}
	callCtx, cancel := capability.CallContext(ctx, 0)
	defer cancel()
	r, err := c.do(callCtx, op, req)
	if err != nil {
		level := "warn"
		if errnoOf(err) == abi.Locked {
			level = "info"
		}
		c.logFailure(ctx, in, level, op, err)
		return nil, err
	}
	return r, nil
}

func (c *Capability) logFailure(ctx context.Context, in *capability.Caller, level, op string, err error) {
	log := in.Log
	if log == nil {
		log = c.log
	}
	msg := c.scrubText(err.Error())
	if level == "info" {
		log.InfoContext(ctx, "supervisor call refused", "capability", CapabilityName, "op", op, "error", msg)
		return
	}
	log.WarnContext(ctx, "supervisor call failed", "capability", CapabilityName, "op", op, "error", msg)
}

// decide is the supervisor's verdict for the gate. An unknown operation is
// a denial too: the audit records the attempt and the guest learns which
// operations this host knows.
func decide(g Grant, op, service string) gate.Decision {
	info, ok := LookupOp(op)
	if !ok {
		return gate.Deny(fmt.Sprintf("%q is not a supervisor operation this host knows (%s)", op, opNames()))
	}
	if !info.PerService {
		if g.Allows(op, "") {
			return gate.Allow(fmt.Sprintf("supervisor.allow lists %q", op))
		}
		return gate.Deny(fmt.Sprintf("supervisor.allow does not list %q (add it to [supervisor] allow in plugin.toml)", op))
	}
	set := g.services[op]
	switch {
	case set[service]:
		return gate.Allow(fmt.Sprintf("supervisor.allow lists %q", op+":"+service))
	case set[AnyService]:
		return gate.Allow(fmt.Sprintf("supervisor.allow lists %q", op+":"+AnyService))
	case len(set) == 0:
		return gate.Deny(fmt.Sprintf("supervisor.allow does not list %q (add it to [supervisor] allow in plugin.toml)", op+":"+service))
	}
	var names []string
	for s := range set {
		names = append(names, strconv.Quote(s))
	}
	slices.Sort(names)
	return gate.Deny(fmt.Sprintf("supervisor.allow does not list %q; it grants %s only for %s", op+":"+service, op, strings.Join(names, ", ")))
}

// request is a decoded request record, one value per field.
type request map[string]string

// parseRequest decodes the record and rejects repeated fields and a service
// name that could not be granted, before the gate sees it.
func parseRequest(op string, b []byte) (request, error) {
	rec, err := abi.DecodeRecord(b)
	if err != nil {
		return nil, invalid(op, "the request is not a record (ABI.md §2)")
	}
	req := request{}
	for _, f := range rec {
		if _, dup := req[f.Key]; dup {
			return nil, invalid(op, "request field %q is repeated", f.Key)
		}
		req[f.Key] = string(f.Value)
	}
	if info, ok := LookupOp(op); ok && info.PerService {
		sc := info.Scope
		s, ok := req[sc.Field]
		c, cont := req[fieldCont]
		if cont && (len(c) > maxServiceLen || !validService(c)) {
			return nil, invalid(op, "container %q is not a container id or syslog identifier (a letter or digit, then letters, digits, '.', '_', '-')", clip(c))
		}
		switch {
		case op == OpJournalRead && cont && s == "":
			// A container's logs, of any unit: only journal.read:* (the
			// gate sees the op as that) may read them.
		case !ok || s == "":
			return nil, invalid(op, "the request has no %s (field %q)", sc.What, sc.Field)
		case len(s) > maxServiceLen || !sc.Valid(s):
			return nil, invalid(op, "%s %q is not %s", sc.What, clip(s), sc.Rule)
		}
	}
	return req, nil
}

// scope is the name the gate sees after the op's colon: the service, tag
// key or unit. A journal read that names a container (another container's
// logs, which a unit grant does not cover) is seen as journal.read:*,
// which only that grant allows.
func (r request) scope(info OpInfo) string {
	if _, cont := r[fieldCont]; cont && info.Name == OpJournalRead {
		return AnyService
	}
	return r[info.Scope.Field]
}

// check validates the request's fields for op, once the gate allowed it.
func (r request) check(op string) error {
	allowed := opFields[op]
	for k, v := range r {
		if !slices.Contains(allowed, k) {
			takes := "no fields"
			if len(allowed) > 0 {
				takes = strings.Join(allowed, ", ")
			}
			return invalid(op, "unknown request field %q (%s takes %s)", clip(k), op, takes)
		}
		switch k {
		case fieldForce:
			if v != "true" && v != "false" {
				return invalid(op, "force must be \"true\" or \"false\", not %q", clip(v))
			}
		case fieldV1, fieldFollow:
			if v != "true" && v != "false" {
				return invalid(op, "%s must be \"true\" or \"false\", not %q", k, clip(v))
			}
		case fieldWhat:
			want := deviceWhat
			switch op {
			case OpPing:
				want = pingWhat
			case OpAppRead:
				want = appWhat
			}
			if !slices.Contains(want, v) {
				return invalid(op, "what = %q is not one of %s", clip(v), strings.Join(want, ", "))
			}
		case fieldHostname:
			if len(v) > maxHostname || !printable(v) {
				return invalid(op, "hostname %q is not a hostname", clip(v))
			}
		}
	}
	switch op {
	case OpHostnameSet:
		if _, ok := r[fieldHostname]; !ok {
			return invalid(op, "the request has no %q field (an empty one restores the default hostname)", fieldHostname)
		}
	case OpAppRead:
		if _, ok := r[fieldWhat]; !ok {
			return invalid(op, "the request has no %q field (%s)", fieldWhat, strings.Join(appWhat, ", "))
		}
	case OpTagsSet:
		if _, ok := r[fieldValue]; !ok {
			return invalid(op, "the request has no %q field (an empty one is an empty value)", fieldValue)
		}
	}
	return nil
}

func (r request) force() bool { return r[fieldForce] == "true" }

// do runs an allowed, checked operation and returns its reply record.
func (c *Capability) do(ctx context.Context, op string, r request) (abi.Record, error) {
	cl := c.client
	var rec abi.Record
	add := func(k, v string) { rec = append(rec, abi.Field{Key: k, Value: []byte(v)}) }
	var err error
	switch op {
	case OpPing:
		if r[fieldWhat] != "healthy" {
			return rec, cl.Ping(ctx)
		}
		err = cl.Healthy(ctx)
		if e, ok := err.(*Error); ok && e.Status == http.StatusInternalServerError {
			// An unhealthy supervisor answers 500: that is the answer, not
			// a failure of the call.
			add("healthy", "false")
			return rec, nil
		}
		if err == nil {
			add("healthy", "true")
		}
	case OpBlink:
		err = cl.Blink(ctx)
	case OpReboot:
		err = cl.Reboot(ctx, r.force())
	case OpShutdown:
		err = cl.Shutdown(ctx, r.force())
	case OpUpdate:
		var triggered bool
		triggered, err = cl.Update(ctx, r.force())
		add("triggered", strconv.FormatBool(triggered))
	case OpAppRestart:
		if r[fieldV1] == "true" {
			err = cl.RestartAppV1(ctx, r.force())
		} else {
			err = cl.RestartApp(ctx, r.force())
		}
	case OpAppPurge:
		if r[fieldV1] == "true" {
			err = cl.PurgeV1(ctx, r.force())
		} else {
			err = cl.Purge(ctx, r.force())
		}
	case OpServiceRestart, OpServiceStop, OpServiceStart:
		err = c.serviceAction(ctx, op, r[fieldService], r.force())
	case OpAppRead:
		return c.readApp(ctx, r[fieldWhat])
	case OpVolumesCleanup:
		err = cl.CleanupVolumes(ctx)
	case OpTagsSet:
		err = cl.SetTags(ctx, map[string]string{r[fieldKey]: r[fieldValue]})
	case OpLocalLogs, OpJournalRead:
		return c.readStream(ctx, op, r)
	case OpHostnameSet:
		err = cl.SetHostname(ctx, r[fieldHostname], r.force())
	case OpDeviceRead:
		return c.read(ctx, r[fieldWhat])
	default:
		return nil, invalid(op, "not implemented") // unreachable: the gate denies unknown ops
	}
	if err != nil {
		return nil, err
	}
	return rec, nil
}

// read answers device.read: the fields a plugin usually wants, flat, and
// the supervisor's whole reply as "json" for the rest.
func (c *Capability) read(ctx context.Context, what string) (abi.Record, error) {
	cl := c.client
	var rec abi.Record
	add := func(k, v string) { rec = append(rec, abi.Field{Key: k, Value: []byte(v)}) }
	progress := func(k string, p *float64) {
		if p != nil {
			add(k, strconv.FormatFloat(*p, 'f', -1, 64))
		}
	}
	switch what {
	case "", "device":
		d, err := cl.Device(ctx)
		if err != nil {
			return nil, err
		}
		add("status", d.Status)
		add("commit", d.Commit)
		add("os_version", d.OSVersion)
		add("supervisor_version", d.SupervisorVersion)
		add("ip_address", d.IPAddress)
		add("mac_address", d.MACAddress)
		add("api_port", strconv.Itoa(d.APIPort))
		add("update_pending", strconv.FormatBool(d.UpdatePending))
		add("update_downloaded", strconv.FormatBool(d.UpdateDownloaded))
		add("update_failed", strconv.FormatBool(d.UpdateFailed))
		progress("download_progress", d.DownloadProgress)
		add("json", string(d.Raw))
	case "status":
		s, err := cl.StateStatus(ctx)
		if err != nil {
			return nil, err
		}
		add("status", s.Status)
		add("app_state", s.AppState)
		add("release", s.Release)
		progress("download_progress", s.OverallDownloadProgress)
		for _, ct := range s.Containers {
			add("service."+ct.ServiceName, ct.Status)
		}
		add("json", string(s.Raw))
	case "version":
		v, err := cl.Version(ctx)
		if err != nil {
			return nil, err
		}
		add("version", v)
	case "name":
		n, err := cl.DeviceName(ctx)
		if err != nil {
			return nil, err
		}
		add("name", n)
	case "tags":
		tags, err := cl.Tags(ctx)
		if err != nil {
			return nil, err
		}
		for _, t := range tags {
			add("tag."+t.Name, t.Value)
		}
	case "host-config":
		h, err := cl.HostConfig(ctx)
		if err != nil {
			return nil, err
		}
		add("hostname", h.Network.Hostname)
		add("json", string(h.Raw))
	case "vpn":
		v, err := cl.VPN(ctx)
		if err != nil {
			return nil, err
		}
		add("enabled", strconv.FormatBool(v.Enabled))
		add("connected", strconv.FormatBool(v.Connected))
	case "device-info":
		d, err := cl.LocalDeviceInfo(ctx)
		if err != nil {
			return nil, err
		}
		add("arch", d.Arch)
		add("device_type", d.DeviceType)
	case "container-ids":
		ids, err := cl.ContainerIDs(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range slices.Sorted(maps.Keys(ids)) {
			add("service."+s, ids[s])
		}
	}
	return rec, nil
}

// scrubText and scrubRecord are the last line of defence for the key: the
// client never puts it in a reply or a message, but a hostile or broken peer
// could echo it, and nothing that reaches a guest or a log may carry it.
func (c *Capability) scrubText(s string) string { return redact(s, c.key) }

// scrub is err as the guest sees it: its message scrubbed, its errno kept.
func (c *Capability) scrub(err error) error {
	if c.key == "" {
		return err
	}
	return capability.Errorf(errnoOf(err), "%s", c.scrubText(err.Error()))
}

func (c *Capability) scrubRecord(r abi.Record) abi.Record {
	if c.key == "" {
		return r
	}
	for i, f := range r {
		if strings.Contains(string(f.Value), c.key) || strings.Contains(f.Key, c.key) {
			r[i] = abi.Field{Key: redact(f.Key, c.key), Value: []byte(redact(string(f.Value), c.key))}
		}
	}
	return r
}

func invalid(op, format string, args ...any) *Error {
	return &Error{Op: op, Code: abi.Invalid, Message: fmt.Sprintf(format, args...)}
}

// errnoOf is capability.ErrnoOf, which knows *Error and *gate.Denial.
func errnoOf(err error) abi.Errno { return capability.ErrnoOf(err) }

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// clip bounds guest text that we quote back, so a message stays short.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
