// Command webhook posts a JSON webhook when a partition is plugged in. It
// replaces the udev rule
//
//	ACTION=="add", SUBSYSTEM=="block", RUN+="/bin/sh -c 'curl -H \"Authorization: Bearer $TOKEN\" ...'"
//
// where the script holds the token and can reach any address. Here the
// host holds the token and the grant names the one receiver.
package main

import (
	"encoding/json"
	"io"
	"strings"

	airlock "github.com/airlockhq/airlock/sdk/go"
)

func init() {
	airlock.OnUdev(func(e airlock.UEvent) error {
		if e.Action != "add" || e.Coldplug() {
			return nil
		}
		url, err := airlock.Config("url")
		if err != nil {
			return err
		}
		body, _ := json.Marshal(map[string]string{
			"event": "stick plugged in", "device": e.DevName, "label": e.Label(), "uuid": e.UUID(), "fstype": e.FSType(),
		})
		resp, err := airlock.HTTP.Post(url, "application/json", body)
		if err != nil {
			return err // denied, timeout, unavailable: the host's message says which
		}
		defer resp.Body.Close()
		reply, err := io.ReadAll(io.LimitReader(resp.Body, 4096))
		if err != nil {
			return err
		}
		// The echo service reflects the request: its Authorization
		// header arrives here as "Bearer [redacted]".
		airlock.Info("webhook sent", "label", e.Label(), "status", resp.StatusCode, "reply", strings.TrimSpace(string(reply)))
		return nil
	})
}

func main() {}
