package cloud

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
)

// client speaks the balena API v7 for one device: every path and filter it
// builds names the device (or its fleet) that the host's environment names,
// never one a plugin gave. README.md lists each request and the documentation
// page it follows.
type client struct {
	base    string // BALENA_API_URL, no trailing slash
	key     string
	uuid    string
	timeout time.Duration
	http    *http.Client

	mu    sync.Mutex
	dev   int // this device's id, once looked up
	fleet int // its fleet's id
}

// maxReply bounds an API reply the client reads.
const maxReply = capability.MaxResult

// odataString quotes s as an OData string literal: a quote inside it is
// doubled (OData ABNF, SQUOTE-in-string), so that no value can end the
// literal and add a clause of its own.
func odataString(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// queryEscape escapes a query value as OData clients write it (%20 for a
// space; '+' would be read as a literal plus).
func queryEscape(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }

// apiError is a reply the API refused. Its message carries the status and
// the start of the body, which the capability scrubs of the key.
type apiError struct {
	status int
	body   string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("the balena API answered %d %s: %s", e.status, http.StatusText(e.status), e.body)
}

func (e *apiError) Errno() abi.Errno {
	switch e.status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return abi.Denied
	case http.StatusNotFound:
		return abi.NotFound
	case http.StatusBadRequest:
		return abi.Invalid
	case http.StatusConflict, http.StatusTooManyRequests:
		return abi.Busy
	case http.StatusServiceUnavailable, http.StatusBadGateway, http.StatusGatewayTimeout:
		return abi.Unavailable
	}
	return abi.Failed
}

// do sends one request and decodes a JSON reply into out (nil: ignore it).
// resource is the path after /v7/, already escaped; query is raw.
func (c *client) do(ctx context.Context, method, resource, query string, body, out any) error {
	ctx, cancel := capability.CallContext(ctx, c.timeout)
	defer cancel()
	u := c.base + "/v7/" + resource
	if query != "" {
		u += "?" + query
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return capability.Errorf(abi.Failed, "building the request: %v", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return capability.Errorf(abi.Timeout, "the balena API did not answer %s %s in time", method, resource)
		}
		return capability.Errorf(abi.Unavailable, "the balena API is unreachable: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxReply+1))
	if err != nil {
		return capability.Errorf(abi.Unavailable, "reading the balena API's reply: %v", err)
	}
	if len(b) > maxReply {
		return capability.Errorf(abi.TooLarge, "the balena API's reply exceeds %d bytes", maxReply)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &apiError{status: resp.StatusCode, body: clip(strings.TrimSpace(string(b)))}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return capability.Errorf(abi.Failed, "the balena API's reply to %s %s is not the JSON expected: %v", method, resource, err)
	}
	return nil
}

// navID is a navigation property as v7 returns it unexpanded: {"__id": 7}.
type navID struct {
	ID int `json:"__id"`
}

type deviceRow struct {
	ID    int    `json:"id"`
	UUID  string `json:"uuid"`
	Name  string `json:"device_name"`
	Fleet navID  `json:"belongs_to__application"`
}

// device reads this device's record: GET /v7/device(uuid='...').
func (c *client) device(ctx context.Context) (deviceRow, error) {
	var r struct{ D []deviceRow }
	err := c.do(ctx, http.MethodGet, "device(uuid="+odataString(c.uuid)+")", "$select=id,uuid,device_name,belongs_to__application", nil, &r)
	if err != nil {
		return deviceRow{}, err
	}
	if len(r.D) != 1 {
		return deviceRow{}, capability.Errorf(abi.NotFound, "the balena API has no device %s that this key can see (BALENA_DEVICE_UUID)", c.uuid)
	}
	c.mu.Lock()
	c.dev, c.fleet = r.D[0].ID, r.D[0].Fleet.ID
	c.mu.Unlock()
	return r.D[0], nil
}

// ids returns this device's id and its fleet's, looking them up once.
func (c *client) ids(ctx context.Context) (int, int, error) {
	c.mu.Lock()
	d, f := c.dev, c.fleet
	c.mu.Unlock()
	if d != 0 {
		return d, f, nil
	}
	row, err := c.device(ctx)
	return row.ID, row.Fleet.ID, err
}

type tagRow struct {
	ID    int    `json:"id"`
	Key   string `json:"tag_key"`
	Value string `json:"value"`
}

// tags reads this device's tags, or the one with key if key is non-nil.
func (c *client) tags(ctx context.Context, key *string) ([]tagRow, error) {
	dev, _, err := c.ids(ctx)
	if err != nil {
		return nil, err
	}
	filter := "device eq " + strconv.Itoa(dev)
	if key != nil {
		filter += " and tag_key eq " + odataString(*key)
	}
	var r struct{ D []tagRow }
	err = c.do(ctx, http.MethodGet, "device_tag", "$filter="+queryEscape(filter)+"&$select=id,tag_key,value", nil, &r)
	return r.D, err
}

// setTag updates the tag if the device has it, or creates it.
func (c *client) setTag(ctx context.Context, key, value string) error {
	have, err := c.tags(ctx, &key)
	if err != nil {
		return err
	}
	if len(have) > 0 {
		return c.do(ctx, http.MethodPatch, "device_tag("+strconv.Itoa(have[0].ID)+")", "", map[string]string{"value": value}, nil)
	}
	dev, _, err := c.ids(ctx)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPost, "device_tag", "", map[string]any{"device": dev, "tag_key": key, "value": value}, nil)
}

// deleteTag deletes the tag; it reports whether the device had it.
func (c *client) deleteTag(ctx context.Context, key string) (bool, error) {
	have, err := c.tags(ctx, &key)
	if err != nil || len(have) == 0 {
		return false, err
	}
	return true, c.do(ctx, http.MethodDelete, "device_tag("+strconv.Itoa(have[0].ID)+")", "", nil, nil)
}

// setName renames this device: PATCH /v7/device(<id>) {"device_name": ...}.
func (c *client) setName(ctx context.Context, name string) error {
	dev, _, err := c.ids(ctx)
	if err != nil {
		return err
	}
	return c.do(ctx, http.MethodPatch, "device("+strconv.Itoa(dev)+")", "", map[string]string{"device_name": name}, nil)
}

type varRow struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// vars reads kind ("environment" or "config") variables of this device or
// of its fleet.
func (c *client) vars(ctx context.Context, kind, scope string) ([]varRow, error) {
	dev, fleet, err := c.ids(ctx)
	if err != nil {
		return nil, err
	}
	res, filter := "device_"+kind+"_variable", "device eq "+strconv.Itoa(dev)
	if scope == scopeFleet {
		res, filter = "application_"+kind+"_variable", "application eq "+strconv.Itoa(fleet)
	}
	var r struct{ D []varRow }
	err = c.do(ctx, http.MethodGet, res, "$filter="+queryEscape(filter)+"&$select=name,value", nil, &r)
	return r.D, err
}

type fleetRow struct {
	ID     int    `json:"id"`
	Name   string `json:"app_name"`
	Slug   string `json:"slug"`
	Public bool   `json:"is_public"`
	Type   []struct {
		Slug string `json:"slug"`
	} `json:"is_for__device_type"`
}

// fleet reads this device's fleet: GET /v7/application(<id>).
func (c *client) fleetInfo(ctx context.Context) (fleetRow, error) {
	_, fleet, err := c.ids(ctx)
	if err != nil {
		return fleetRow{}, err
	}
	var r struct{ D []fleetRow }
	err = c.do(ctx, http.MethodGet, "application("+strconv.Itoa(fleet)+")",
		"$select=id,app_name,slug,is_public&$expand="+queryEscape("is_for__device_type($select=slug)"), nil, &r)
	if err != nil {
		return fleetRow{}, err
	}
	if len(r.D) != 1 {
		return fleetRow{}, capability.Errorf(abi.NotFound, "the balena API has no fleet %d that this key can see", fleet)
	}
	return r.D[0], nil
}

// clip shortens a reply body for an error message.
func clip(s string) string {
	const n = 200
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
