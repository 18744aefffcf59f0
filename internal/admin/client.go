package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"syscall"
)

// Client talks to a host's admin socket.
type Client struct {
	path string
	hc   *http.Client
}

// NewClient returns a client for the socket at path. It connects on each
// request.
func NewClient(path string) *Client {
	return &Client{path: path, hc: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}}}
}

// Status fetches the host's report.
func (c *Client) Status(ctx context.Context) (Report, error) {
	var rep Report
	err := c.do(ctx, http.MethodGet, PathStatus, nil, &rep)
	return rep, err
}

// Trigger asks for a synthetic event.
func (c *Client) Trigger(ctx context.Context, req TriggerRequest) (TriggerReply, error) {
	var rep TriggerReply
	body, _ := json.Marshal(req)
	err := c.do(ctx, http.MethodPost, PathTrigger, body, &rep)
	return rep, err
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, "http://airlock"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		switch {
		case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED):
			return fmt.Errorf("no airlock host is listening on %s (is `airlock run` running with this runtime.toml?)", c.path)
		case errors.Is(err, os.ErrPermission):
			return fmt.Errorf("admin socket %s: permission denied (run as root or as the host's user)", c.path)
		}
		return fmt.Errorf("admin socket %s: %w", c.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return errors.New(e.Error)
		}
		return fmt.Errorf("admin socket: %s", resp.Status)
	}
	return json.Unmarshal(b, out)
}
