// Command counter counts what it is given: udev events handled, and events
// the host reported as dropped or coalesced. It logs the totals at stop, so
// that a load test can check handled + dropped + coalesced == sent without
// a log line per event.
// A [config] "work" of "sleep" makes each event take a millisecond; "crash"
// makes every start crash.
package main

import (
	"fmt"
	"os"
	"time"

	airlock "github.com/airlockhq/airlock/sdk/go"
)

var handled, dropped, coalesced uint64

func init() {
	slow := false
	airlock.OnStart(func() error {
		v, _ := airlock.Config("work")
		slow = v == "sleep"
		if v == "crash" {
			panic("crash on every start")
		}
		airlock.Info("started")
		return nil
	})
	airlock.OnUdev(func(e airlock.UEvent) error {
		handled++
		if handled == 1 {
			airlock.Info("first event")
		}
		if slow {
			airlock.Sleep(time.Millisecond)
		}
		return nil
	})
	airlock.OnDropped(func(d airlock.Dropped) error { dropped += d.Count; coalesced += d.Coalesced; return nil })
	airlock.OnTimer(func(t airlock.Timer) error {
		// write:N writes N KiB to /data until the disk refuses.
		var n int
		fmt.Sscanf(t.Name, "write:%d", &n)
		err := os.WriteFile("/data/fill", make([]byte, n<<10), 0o600)
		airlock.Info(fmt.Sprintf("write %d KiB: %v", n, err))
		return nil
	})
	airlock.OnStop(func() error {
		airlock.Info(fmt.Sprintf("totals handled=%d dropped=%d coalesced=%d", handled, dropped, coalesced))
		return nil
	})
}

func main() {}
