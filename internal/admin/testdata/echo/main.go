// Command echo is the admin, reload and metrics tests' plugin: it logs every
// event it gets, with its fields, and its config "tag" (so that a test can
// tell two versions apart). A timer named "slow:<duration>" holds the
// plugin in its handler, so that events queue behind it.
package main

import (
	"sort"
	"strings"
	"time"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
)

func tag() string { v, _ := airlock.Config("tag"); return v }

func echo(e airlock.Event) error {
	if name := e.Get("name"); e.Kind == abi.EventTimer && strings.HasPrefix(name, "slow:") {
		d, _ := time.ParseDuration(strings.TrimPrefix(name, "slow:"))
		airlock.Info("slow begin tag=" + tag())
		airlock.Sleep(d)
		airlock.Info("slow done tag=" + tag())
		return nil
	}
	var fields []string
	for _, f := range e.Fields {
		if f.Key != "time" {
			fields = append(fields, f.Key+"="+string(f.Value))
		}
	}
	sort.Strings(fields)
	airlock.Info("event " + e.Kind.String() + " tag=" + tag() + " " + strings.Join(fields, " "))
	return nil
}

func init() {
	airlock.OnStart(func() error { airlock.Info("started tag=" + tag()); return nil })
	airlock.OnStop(func() error { airlock.Info("stopped tag=" + tag()); return nil })
	for _, k := range []abi.EventKind{abi.EventTimer, abi.EventUdev, abi.EventDBusSignal, abi.EventDropped} {
		airlock.Handle(k, echo)
	}
}

func main() {}
