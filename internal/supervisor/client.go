package supervisor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/airlockhq/airlock/abi"
)

// maxReply bounds what we read of a reply; the endpoints we call answer a
// few kilobytes, and the host must not buffer whatever a broken peer sends.
const maxReply = 1 << 20

// Client calls the supervisor. It is safe for concurrent use.
type Client struct {
	cfg  Config // cfg.APIKey is the key New was given; see key
	base *url.URL
	http *http.Client
	log  *slog.Logger

	// keyMu guards the key, which RegenerateAPIKey replaces, and every key
	// this client ever held, which scrub keeps redacting.
	keyMu   sync.RWMutex
	key     string
	oldKeys []string
}

// headerKey is what the supervisor's auth middleware accepts in the
// Authorization header: /^(?:ApiKey|Bearer) (\w+)$/i, with JavaScript's
// ASCII \w. A key with any other character only works as ?apikey=.
var headerKey = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// keyInQuery reports whether key must travel as ?apikey=.
func keyInQuery(key string) bool { return !headerKey.MatchString(key) }

// New checks cfg and returns a client. It does not contact the supervisor;
// call Ping for that.
func New(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if cfg.Address == "" {
		return nil, fmt.Errorf("supervisor: address is empty: %w", ErrNotConfigured)
	}
	u, err := url.Parse(strings.TrimRight(cfg.Address, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("supervisor: address %q is not an http:// URL", redact(cfg.Address, cfg.APIKey))
	}
	if u.User != nil || u.RawQuery != "" {
		// The key belongs in the Authorization header only, where no URL
		// printed in an error can carry it.
		return nil, fmt.Errorf("supervisor: address must not carry credentials or a query")
	}
	if err := checkKey(cfg.APIKey); err != nil {
		return nil, err
	}
	hc := cfg.HTTPClient
	if hc == nil {
		// No proxy from the environment: the supervisor is on the device,
		// and an HTTP proxy must never see the key.
		hc = &http.Client{
			Transport: &http.Transport{
				Proxy:               nil,
				DialContext:         (&net.Dialer{Timeout: cfg.Timeout}).DialContext,
				MaxIdleConnsPerHost: 4,
				IdleConnTimeout:     30 * time.Second,
			},
			// The supervisor never redirects; a redirect would be someone
			// else's server asking for a request that carries the key.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	c := &Client{
		cfg:  cfg,
		base: u,
		http: hc,
		log:  cfg.Logger, // the host hands us a logger that already says capability=supervisor
		key:  cfg.APIKey,
	}
	if keyInQuery(cfg.APIKey) {
		c.log.Info("the API key has characters the supervisor does not accept in the Authorization header; sending it as the apikey query parameter")
	}
	return c, nil
}

// checkKey refuses a key that could not travel safely: empty, too long, or
// with spaces, control characters or non-ASCII (which could split a header
// or a URL). The message never shows the key.
func checkKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("supervisor: API key is empty: %w", ErrNotConfigured)
	case len(key) > maxKeyLen:
		return fmt.Errorf("supervisor: API key is longer than %d bytes", maxKeyLen)
	case strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		return fmt.Errorf("supervisor: API key contains spaces, control characters or non-ASCII characters")
	}
	return nil
}

// maxKeyLen bounds the key; the supervisor's are 32 hex digits.
const maxKeyLen = 256

// currentKey returns the key to send now.
func (c *Client) currentKey() string {
	c.keyMu.RLock()
	defer c.keyMu.RUnlock()
	return c.key
}

// call is one request to make.
type call struct {
	op     string // grant name, for errors and logs
	method string
	path   string     // escaped by the caller where it holds a value
	query  url.Values // nil for none
	body   any        // JSON-encoded when non-nil
	safe   bool       // read-only: may be retried
}

// do runs c and returns the body of a 2xx reply, or an *Error.
//
// Only safe calls are retried. A POST that failed after it was sent may
// still have taken effect, and repeating a reboot or a service restart is
// worse than reporting the failure to the plugin, which can decide.
func (c *Client) do(ctx context.Context, k call) (int, []byte, error) {
	var payload []byte
	if k.body != nil {
		var err error
		if payload, err = json.Marshal(k.body); err != nil {
			return 0, nil, &Error{Op: k.op, Code: abi.Invalid, Message: "encoding request: " + err.Error()}
		}
	}
	attempts := 1
	if k.safe {
		attempts += c.cfg.Retries
	}
	wait := c.cfg.Backoff
	var last *Error
	for attempt := 1; ; attempt++ {
		start := time.Now()
		status, body, err := c.once(ctx, k, payload)
		c.log.Debug("call", "op", k.op, "method", k.method, "path", k.path,
			"status", status, "attempt", attempt, "elapsed", time.Since(start))
		if err == nil {
			return status, body, nil
		}
		last = err
		if attempt >= attempts || !retryable(err) || ctx.Err() != nil {
			return status, nil, last
		}
		// Full jitter over [wait/2, wait], so that many plugins retrying
		// after one supervisor hiccup do not arrive together.
		d := wait/2 + rand.N(wait/2+1)
		c.log.Warn("retrying", "op", k.op, "path", k.path, "attempt", attempt, "err", err.Error(), "in", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return status, nil, last
		case <-t.C:
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// retryable: no reply at all, or a 5xx other than 501.
func retryable(e *Error) bool {
	if e.Status == 0 {
		return e.Code == abi.Unavailable || e.Code == abi.Timeout
	}
	return e.Status >= 500 && e.Status != http.StatusNotImplemented
}

// newRequest builds the request for k: the path under the base URL, the
// query, and the key in the Authorization header or, for a key the header
// cannot carry, in the apikey parameter. The URL it returns may hold the
// key: it must never be logged or put in an error unredacted.
func (c *Client) newRequest(ctx context.Context, k call, payload []byte) (*http.Request, error) {
	u := *c.base
	u.Path = strings.TrimRight(c.base.Path, "/") + k.path
	q := url.Values{}
	for name, vs := range k.query {
		q[name] = vs
	}
	key := c.currentKey()
	if keyInQuery(key) {
		q.Set("apikey", key)
	}
	u.RawQuery = q.Encode()
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, k.method, u.String(), rd)
	if err != nil {
		return nil, err
	}
	if !keyInQuery(key) {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Accept", "application/json, text/plain")
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return req, nil
}

// once makes one HTTP attempt.
func (c *Client) once(ctx context.Context, k call, payload []byte) (int, []byte, *Error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	endpoint := k.method + " " + k.path
	req, err := c.newRequest(ctx, k, payload)
	if err != nil {
		return 0, nil, c.scrub(&Error{Op: k.op, Code: abi.Invalid, Message: cleanMessage(err.Error()), endpoint: endpoint})
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, c.scrub(transportError(k.op, endpoint, err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return resp.StatusCode, nil, c.scrub(transportError(k.op, endpoint, err))
	}
	if len(body) > maxReply {
		return resp.StatusCode, nil, &Error{Op: k.op, Status: resp.StatusCode, Code: abi.TooLarge,
			Message: "reply larger than " + strconv.Itoa(maxReply) + " bytes", endpoint: endpoint}
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, body, nil
	}
	return resp.StatusCode, nil, c.replyError(k.op, endpoint, resp.StatusCode, body)
}

// replyError turns a non-2xx reply into a scrubbed *Error.
func (c *Client) replyError(op, endpoint string, status int, body []byte) *Error {
	e := decodeError(op, status, []byte(c.redact(string(body))))
	e.endpoint = endpoint
	return c.scrub(e)
}

// transportError classifies a failure that produced no reply.
func transportError(op, endpoint string, err error) *Error {
	// The *url.Error repeats the URL, which may hold the key (apikey=);
	// its cause does not, and keeps errors.Is working.
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	e := &Error{Op: op, Code: abi.Unavailable, endpoint: endpoint, err: err}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		e.Code = abi.Timeout
		e.Message = "no reply before the deadline"
	case errors.Is(err, context.Canceled):
		e.Code = abi.Timeout
		e.Message = "the call was cancelled"
	default:
		e.Message = "supervisor unreachable: " + rootCause(err)
	}
	return e
}

// rootCause drops net/http's `Post "http://…":` prefix, which only repeats
// the endpoint.
func rootCause(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return cleanMessage(err.Error())
}

// scrub is the last line of defence for the key: nothing leaves the client
// with it, whatever the peer or the transport put in a message.
func (c *Client) scrub(e *Error) *Error {
	e.Message = c.redact(e.Message)
	if e.err != nil {
		if s := c.redact(e.err.Error()); s != e.err.Error() {
			e.err = errors.New(s)
		}
	}
	return e
}

// redact removes from s every key this client held, also in the escaped
// forms a URL gives it (the apikey parameter).
func (c *Client) redact(s string) string {
	c.keyMu.RLock()
	defer c.keyMu.RUnlock()
	for _, k := range append([]string{c.key}, c.oldKeys...) {
		s = redact(s, k)
	}
	return s
}

// decodeReply unmarshals a 2xx JSON body, keeping the raw bytes.
func decodeReply(op string, body []byte, v any) *Error {
	if err := json.Unmarshal(body, v); err != nil {
		return &Error{Op: op, Code: abi.Failed, Message: "unreadable reply: " + cleanMessage(err.Error())}
	}
	return nil
}

func (c *Client) appPath(op, suffix string) (string, error) {
	id, err := c.appID(op)
	if err != nil {
		return "", err
	}
	return "/v2/applications/" + strconv.Itoa(id) + suffix, nil
}

type forceBody struct {
	Force bool `json:"force"`
}

// Ping checks that the supervisor answers. It needs no key.
func (c *Client) Ping(ctx context.Context) error {
	_, _, err := c.do(ctx, call{op: OpPing, method: http.MethodGet, path: "/ping", safe: true})
	return err
}

// Healthy asks the supervisor whether it considers itself healthy; an
// unhealthy supervisor answers 500, which becomes a Failed error.
func (c *Client) Healthy(ctx context.Context) error {
	_, _, err := c.do(ctx, call{op: OpPing, method: http.MethodGet, path: "/v1/healthy", safe: true})
	return err
}

// Blink makes the device's identification LED blink for 15 seconds.
func (c *Client) Blink(ctx context.Context) error {
	_, _, err := c.do(ctx, call{op: OpBlink, method: http.MethodPost, path: "/v1/blink"})
	return err
}

// Reboot asks the supervisor to stop the services and reboot. It returns
// once the supervisor accepted (202); the reboot follows. Without force an
// update lock makes it fail with abi.Locked.
func (c *Client) Reboot(ctx context.Context, force bool) error {
	_, _, err := c.do(ctx, call{op: OpReboot, method: http.MethodPost, path: "/v1/reboot", body: forceBody{force}})
	return err
}

// Shutdown is Reboot's twin that powers the device off.
func (c *Client) Shutdown(ctx context.Context, force bool) error {
	_, _, err := c.do(ctx, call{op: OpShutdown, method: http.MethodPost, path: "/v1/shutdown", body: forceBody{force}})
	return err
}

// Update triggers an update check. It reports whether the supervisor
// started one (204) rather than ignoring the request (202).
func (c *Client) Update(ctx context.Context, force bool) (triggered bool, err error) {
	status, _, err := c.do(ctx, call{op: OpUpdate, method: http.MethodPost, path: "/v1/update", body: forceBody{force}})
	return err == nil && status == http.StatusNoContent, err
}

// RestartApp restarts every service of the application.
func (c *Client) RestartApp(ctx context.Context, force bool) error {
	p, err := c.appPath(OpAppRestart, "/restart")
	if err != nil {
		return err
	}
	_, _, err = c.do(ctx, call{op: OpAppRestart, method: http.MethodPost, path: p, body: forceBody{force}})
	return err
}

// Purge deletes the application's data volumes and restarts its services.
func (c *Client) Purge(ctx context.Context, force bool) error {
	p, err := c.appPath(OpAppPurge, "/purge")
	if err != nil {
		return err
	}
	_, _, err = c.do(ctx, call{op: OpAppPurge, method: http.MethodPost, path: p, body: forceBody{force}})
	return err
}

type serviceBody struct {
	ServiceName string `json:"serviceName"`
	Force       bool   `json:"force"`
}

func (c *Client) serviceAction(ctx context.Context, op, action, name string, force bool) error {
	if err := checkServiceName(op, name); err != nil {
		return err
	}
	p, err := c.appPath(op, "/"+action+"-service")
	if err != nil {
		return err
	}
	_, _, err = c.do(ctx, call{op: op, method: http.MethodPost, path: p, body: serviceBody{name, force}})
	return err
}

// RestartService restarts one service of the application by name.
func (c *Client) RestartService(ctx context.Context, name string, force bool) error {
	return c.serviceAction(ctx, OpServiceRestart, "restart", name, force)
}

// StopService stops one service; it stays stopped until started or until
// the device reboots.
func (c *Client) StopService(ctx context.Context, name string, force bool) error {
	return c.serviceAction(ctx, OpServiceStop, "stop", name, force)
}

// StartService starts a stopped service. Starting kills nothing, so the
// supervisor ignores update locks here; force is sent for symmetry.
func (c *Client) StartService(ctx context.Context, name string, force bool) error {
	return c.serviceAction(ctx, OpServiceStart, "start", name, force)
}

func (c *Client) get(ctx context.Context, path string, v any) ([]byte, error) {
	return c.getAs(ctx, OpDeviceRead, path, nil, v)
}

// getAs is a retried GET whose JSON reply is decoded into v; it returns the
// raw reply too.
func (c *Client) getAs(ctx context.Context, op, path string, query url.Values, v any) ([]byte, error) {
	_, body, err := c.do(ctx, call{op: op, method: http.MethodGet, path: path, query: query, safe: true})
	if err != nil {
		return nil, err
	}
	if e := decodeReply(op, body, v); e != nil {
		e.endpoint = "GET " + path
		return nil, c.scrub(e)
	}
	return body, nil
}

// Device reads GET /v1/device.
func (c *Client) Device(ctx context.Context) (Device, error) {
	var d Device
	raw, err := c.get(ctx, "/v1/device", &d)
	if err != nil {
		return Device{}, err
	}
	d.Raw = raw
	return d, nil
}

// StateStatus reads GET /v2/state/status.
func (c *Client) StateStatus(ctx context.Context) (StateStatus, error) {
	var s StateStatus
	raw, err := c.get(ctx, "/v2/state/status", &s)
	if err != nil {
		return StateStatus{}, err
	}
	s.Raw = raw
	return s, nil
}

// Version returns the supervisor's version, from GET /v2/version.
func (c *Client) Version(ctx context.Context) (string, error) {
	var v struct {
		Version string `json:"version"`
	}
	_, err := c.get(ctx, "/v2/version", &v)
	return v.Version, err
}

// DeviceName returns the device's name as balenaCloud last reported it.
func (c *Client) DeviceName(ctx context.Context) (string, error) {
	var v struct {
		DeviceName string `json:"deviceName"`
	}
	_, err := c.get(ctx, "/v2/device/name", &v)
	return v.DeviceName, err
}

// Tags returns the device's tags.
func (c *Client) Tags(ctx context.Context) ([]Tag, error) {
	var v struct {
		Tags []Tag `json:"tags"`
	}
	_, err := c.get(ctx, "/v2/device/tags", &v)
	return v.Tags, err
}

// HostConfig reads GET /v1/device/host-config.
func (c *Client) HostConfig(ctx context.Context) (HostConfig, error) {
	var h HostConfig
	raw, err := c.get(ctx, "/v1/device/host-config", &h)
	if err != nil {
		return HostConfig{}, err
	}
	h.Raw = raw
	return h, nil
}

// SetHostname changes the host's hostname through PATCH
// /v1/device/host-config, leaving the proxy settings alone. An empty name
// restores the default. Without force an update lock refuses it.
func (c *Client) SetHostname(ctx context.Context, name string, force bool) error {
	body := map[string]any{"network": map[string]any{"hostname": name}, "force": force}
	_, _, err := c.do(ctx, call{op: OpHostnameSet, method: http.MethodPatch, path: "/v1/device/host-config", body: body})
	return err
}
