// Command ticker shows timers: an interval timer that counts, and a cron
// timer, keeping its count in the plugin's private /data directory so that it
// survives restarts.
package main

import (
	"os"
	"strconv"
	"strings"

	airlock "github.com/airlockhq/airlock/sdk/go"
)

const countFile = "/data/count"

func init() {
	airlock.OnTimer(func(t airlock.Timer) error {
		n := 0
		if b, err := os.ReadFile(countFile); err == nil {
			n, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		n++
		if err := os.WriteFile(countFile, []byte(strconv.Itoa(n)), 0o600); err != nil {
			return err
		}
		airlock.Info("tick", "timer", t.Name, "count", n)
		return nil
	})
	airlock.OnDropped(func(d airlock.Dropped) error {
		airlock.Warn("missed ticks", "count", d.Count)
		return nil
	})
}

func main() {}
