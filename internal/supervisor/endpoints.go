package supervisor

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/airlockhq/airlock/abi"
)

// Operation names of the endpoints added after the first set (ops.go lists
// the grantable ones), and of the endpoints no grant ever reaches:
// RATIONALE.md ("Which endpoints a plugin may get") says why.
const (
	OpAppRead        = "app.read"        // GET /v1/apps/:appId
	OpVolumesCleanup = "volumes.cleanup" // GET /v2/cleanup-volumes
	OpTagsSet        = "tags.set"        // PATCH /v2/device/tags, per tag key
	OpLocalLogs      = "logs.read"       // GET /v2/local/logs, per service
	OpJournalRead    = "journal.read"    // POST /v2/journal-logs, per unit

	// Never granted to a plugin.
	OpLocalTargetRead  = "local.target.read"  // GET /v2/local/target-state
	OpLocalTargetWrite = "local.target.write" // POST /v2/local/target-state
	OpKeyRegenerate    = "api-key.regenerate" // POST /v1/regenerate-api-key
)

type appBody struct {
	AppID int  `json:"appId"`
	Force bool `json:"force"`
}

// appID returns the configured application id, or why there is none.
func (c *Client) appID(op string) (int, error) {
	if c.cfg.AppID <= 0 {
		return 0, &Error{Op: op, Code: abi.Unavailable,
			Message: "no application id configured (BALENA_APP_ID); app and service operations need it"}
	}
	return c.cfg.AppID, nil
}

// v1App posts {appId, force} to a v1 app route.
func (c *Client) v1App(ctx context.Context, op, path string, force bool) error {
	id, err := c.appID(op)
	if err != nil {
		return err
	}
	_, _, err = c.do(ctx, call{op: op, method: http.MethodPost, path: path, body: appBody{id, force}})
	return err
}

// RestartAppV1 is POST /v1/restart: the same restart of every service as
// RestartApp, through the legacy route. It answers 200 "OK".
func (c *Client) RestartAppV1(ctx context.Context, force bool) error {
	return c.v1App(ctx, OpAppRestart, "/v1/restart", force)
}

// PurgeV1 is POST /v1/purge: Purge through the legacy route, which answers
// {"Data":"OK","Error":""}.
func (c *Client) PurgeV1(ctx context.Context, force bool) error {
	return c.v1App(ctx, OpAppPurge, "/v1/purge", force)
}

// AppV1 reads GET /v1/apps/:appId. The supervisor refuses it (Invalid, 400)
// for an app with more than one service.
func (c *Client) AppV1(ctx context.Context) (AppV1, error) {
	id, err := c.appID(OpAppRead)
	if err != nil {
		return AppV1{}, err
	}
	var a AppV1
	_, err = c.getAs(ctx, OpAppRead, "/v1/apps/"+strconv.Itoa(id), nil, &a)
	return a, err
}

// v1StartStop is POST /v1/apps/:appId/stop or start; it returns the
// container id of the app's one service.
func (c *Client) v1StartStop(ctx context.Context, op, action string, force bool) (string, error) {
	id, err := c.appID(op)
	if err != nil {
		return "", err
	}
	path := "/v1/apps/" + strconv.Itoa(id) + "/" + action
	_, body, err := c.do(ctx, call{op: op, method: http.MethodPost, path: path, body: forceBody{force}})
	if err != nil {
		return "", err
	}
	var v struct {
		ContainerID string `json:"containerId"`
	}
	if e := decodeReply(op, body, &v); e != nil {
		e.endpoint = "POST " + path
		return "", c.scrub(e)
	}
	return v.ContainerID, nil
}

// StopAppV1 is POST /v1/apps/:appId/stop, for a single-container app: it
// stops the one service and returns its container id. The supervisor
// answers Invalid (400) on a multi-container app.
func (c *Client) StopAppV1(ctx context.Context, force bool) (containerID string, err error) {
	return c.v1StartStop(ctx, OpServiceStop, "stop", force)
}

// StartAppV1 is POST /v1/apps/:appId/start, StopAppV1's twin.
func (c *Client) StartAppV1(ctx context.Context, force bool) (containerID string, err error) {
	return c.v1StartStop(ctx, OpServiceStart, "start", force)
}

// AppsState reads GET /v2/applications/state: the apps the key may see, by
// name.
func (c *Client) AppsState(ctx context.Context) (map[string]AppState, error) {
	var v map[string]AppState
	_, err := c.get(ctx, "/v2/applications/state", &v)
	return v, err
}

// AppState reads GET /v2/applications/:appId/state for the configured app.
func (c *Client) AppState(ctx context.Context) (LegacyAppState, error) {
	id, err := c.appID(OpDeviceRead)
	if err != nil {
		return LegacyAppState{}, err
	}
	var v LegacyAppState
	raw, err := c.get(ctx, "/v2/applications/"+strconv.Itoa(id)+"/state", &v)
	if err != nil {
		return LegacyAppState{}, err
	}
	v.Raw = raw
	return v, nil
}

// VPN reads GET /v2/device/vpn.
func (c *Client) VPN(ctx context.Context) (VPNStatus, error) {
	var v struct {
		VPN VPNStatus `json:"vpn"`
	}
	_, err := c.get(ctx, "/v2/device/vpn", &v)
	return v.VPN, err
}

// ContainerID returns the container id of one service, from GET
// /v2/containerId?serviceName=. An unknown service is Failed (the
// supervisor answers 503 "Could not find service with that name").
func (c *Client) ContainerID(ctx context.Context, service string) (string, error) {
	if err := checkServiceName(OpDeviceRead, service); err != nil {
		return "", err
	}
	var v struct {
		ContainerID string `json:"containerId"`
	}
	_, err := c.getAs(ctx, OpDeviceRead, "/v2/containerId", url.Values{"serviceName": {service}}, &v)
	return v.ContainerID, err
}

// ContainerIDs returns every service's container id, from GET
// /v2/containerId.
func (c *Client) ContainerIDs(ctx context.Context) (map[string]string, error) {
	var v struct {
		Services map[string]string `json:"services"`
	}
	_, err := c.get(ctx, "/v2/containerId", &v)
	return v.Services, err
}

// LocalDeviceInfo reads GET /v2/local/device-info: the device type and
// architecture.
func (c *Client) LocalDeviceInfo(ctx context.Context) (DeviceInfo, error) {
	var v struct {
		Info DeviceInfo `json:"info"`
	}
	_, err := c.get(ctx, "/v2/local/device-info", &v)
	return v.Info, err
}

// CleanupVolumes is GET /v2/cleanup-volumes: the supervisor removes the
// volumes no app in the key's scope references. It deletes data, so it is
// never retried, although it is a GET.
func (c *Client) CleanupVolumes(ctx context.Context) error {
	_, _, err := c.do(ctx, call{op: OpVolumesCleanup, method: http.MethodGet, path: "/v2/cleanup-volumes"})
	return err
}

// Bounds on tags, checked before anything is sent.
const (
	maxTags     = 64
	maxTagKey   = 100 // the balena API's limit on tag_key
	maxTagValue = 4 << 10
)

// SetTags is PATCH /v2/device/tags: it sets (adds or changes) the given
// tags; the supervisor queues them for the cloud and answers 202. Keys must
// be non-empty and without whitespace or control characters (the
// supervisor refuses whitespace), values valid UTF-8 without control
// characters; all bounded.
func (c *Client) SetTags(ctx context.Context, tags map[string]string) error {
	if len(tags) == 0 || len(tags) > maxTags {
		return invalid(OpTagsSet, "give between 1 and %d tags, not %d", maxTags, len(tags))
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := tags[k]
		switch {
		case !tagKeyOK(k):
			return invalid(OpTagsSet, "tag key %q must be 1 to %d bytes of UTF-8 without whitespace or control characters", clip(k), maxTagKey)
		case len(v) > maxTagValue || !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl):
			return invalid(OpTagsSet, "the value of tag %q must be at most %d bytes of UTF-8 without control characters", clip(k), maxTagValue)
		}
	}
	_, _, err := c.do(ctx, call{op: OpTagsSet, method: http.MethodPatch, path: "/v2/device/tags", body: tags})
	return err
}

// tagKeyOK accepts a key SetTags may send: 1 to maxTagKey bytes of UTF-8
// without whitespace (the supervisor refuses it) or control characters.
func tagKeyOK(k string) bool {
	return k != "" && len(k) <= maxTagKey && utf8.ValidString(k) &&
		!strings.ContainsFunc(k, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) })
}

// LocalTargetState reads GET /v2/local/target-state: the whole target
// state of the device, as the supervisor's "state" object. It holds every
// service's environment and config variables: never hand it to a plugin.
func (c *Client) LocalTargetState(ctx context.Context) (json.RawMessage, error) {
	var v struct {
		State json.RawMessage `json:"state"`
	}
	_, err := c.getAs(ctx, OpLocalTargetRead, "/v2/local/target-state", nil, &v)
	return v.State, err
}

// SetLocalTargetState is POST /v2/local/target-state, which replaces what
// the device runs. The supervisor accepts it only in local mode (else 400,
// Invalid). target must be a JSON object ({"local": {...}}); force is
// added to it.
func (c *Client) SetLocalTargetState(ctx context.Context, target json.RawMessage, force bool) error {
	var body map[string]json.RawMessage
	if err := json.Unmarshal(target, &body); err != nil || body == nil {
		return invalid(OpLocalTargetWrite, "the target state must be a JSON object")
	}
	body["force"] = json.RawMessage(strconv.FormatBool(force))
	_, _, err := c.do(ctx, call{op: OpLocalTargetWrite, method: http.MethodPost, path: "/v2/local/target-state", body: body})
	return err
}

// RegenerateAPIKey is POST /v1/regenerate-api-key: the supervisor expires
// the client's key and answers a new one, which the client uses from then
// on. The new key is never returned nor shown. Beware: the container's
// environment keeps the old key, so a host restarted before the supervisor
// recreates the container cannot reach the supervisor.
func (c *Client) RegenerateAPIKey(ctx context.Context) error {
	_, body, err := c.do(ctx, call{op: OpKeyRegenerate, method: http.MethodPost, path: "/v1/regenerate-api-key"})
	if err != nil {
		return err
	}
	k := strings.TrimSpace(string(body))
	if err := checkKey(k); err != nil {
		// Say why without the text, which may be most of a key.
		return &Error{Op: OpKeyRegenerate, Code: abi.Failed, endpoint: "POST /v1/regenerate-api-key",
			Message: fmt.Sprintf("the supervisor answered something that is not a key (%d bytes); the old key has probably expired", len(body))}
	}
	c.keyMu.Lock()
	c.oldKeys = append(c.oldKeys, c.key)
	c.key = k
	c.keyMu.Unlock()
	return nil
}

// checkServiceName refuses what is not a compose service name before it
// reaches a URL or a body.
func checkServiceName(op, name string) error {
	if name == "" {
		return invalid(op, "service name is empty")
	}
	if len(name) > maxServiceLen || !validService(name) {
		return invalid(op, "service name %q is not a compose service name (a letter or digit, then letters, digits, '.', '_', '-')", clip(name))
	}
	return nil
}

// validUnit accepts a systemd unit name or pattern as journalctl -u takes
// it, starting with a letter or digit (so never an option, nor "..").
func validUnit(u string) bool {
	for i, r := range u {
		alnum := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune(":_.@-\\", r)) {
			return false
		}
	}
	return u != ""
}

// Bounds on a JournalQuery.
const maxJournalArg = 256

// journalFormats are journalctl's output formats (-o).
var journalFormats = []string{"short", "short-full", "short-iso", "short-iso-precise", "short-precise",
	"short-monotonic", "short-delta", "short-unix", "verbose", "export", "json", "json-pretty", "json-sse",
	"json-seq", "cat", "with-unit"}

// check refuses a query that journalctl would read as something else, or
// that could not travel safely.
func (q JournalQuery) check() error {
	if q.Count < 0 {
		return invalid(OpJournalRead, "count must not be negative")
	}
	if q.Format != "" && !slices.Contains(journalFormats, q.Format) {
		return invalid(OpJournalRead, "format %q is not a journalctl output format (%s)", clip(q.Format), strings.Join(journalFormats, ", "))
	}
	if q.Unit != "" && (len(q.Unit) > maxJournalArg || !validUnit(q.Unit)) {
		return invalid(OpJournalRead, "unit %q is not a systemd unit name", clip(q.Unit))
	}
	if q.ContainerID != "" && (len(q.ContainerID) > maxJournalArg || !validService(q.ContainerID)) {
		return invalid(OpJournalRead, "containerId %q is not a container id or syslog identifier", clip(q.ContainerID))
	}
	for name, v := range map[string]string{"since": q.Since, "until": q.Until} {
		if len(v) > maxJournalArg || !printable(v) {
			return invalid(OpJournalRead, "%s %q must be printable ASCII, at most %d bytes", name, clip(v), maxJournalArg)
		}
	}
	return nil
}
