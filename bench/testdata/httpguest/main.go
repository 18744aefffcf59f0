// Command httpguest is BenchmarkHTTPRoundTrip's guest: on event kind 100
// it GETs the URL in its [config] and reads the body to its end, through
// airlock_http_v1, as a plugin would. Kind 101 does nothing: what the Go
// guest itself costs per event.
package main

import (
	"fmt"
	"io"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
)

var url string

func init() {
	airlock.Handle(abi.EventKind(101), func(airlock.Event) error { return nil })
	airlock.Handle(abi.EventKind(100), func(airlock.Event) error {
		if url == "" {
			url, _ = airlock.Config("url")
		}
		resp, err := airlock.HTTP.Get(url)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != 200 {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		return err
	})
}

func main() {}
