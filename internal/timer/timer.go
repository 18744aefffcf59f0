// Package timer fires a plugin's [[trigger.timer]] entries: intervals
// (every) and cron schedules. A tick that finds the previous one of the same
// timer still queued replaces it, so a slow plugin sees one pending tick per
// timer, not a backlog.
package timer

import (
	"context"
	"sync"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/cron"
)

// Event builds the timer event for name, scheduled at t.
func Event(plugin, name string, t time.Time) capability.Event {
	return capability.Event{Kind: uint32(abi.EventTimer), Payload: abi.AppendRecord(nil, record(name, t)), Coalesce: "timer:" + name}
}

func record(name string, t time.Time) abi.Record {
	return abi.Record{{Key: "name", Value: []byte(name)}, {Key: "time", Value: t.AppendFormat(nil, time.RFC3339Nano)}}
}

// Start fires timers until ctx ends. deliver is called from the timers'
// goroutines; it must not block. Wait for the returned group before
// releasing what deliver uses.
func Start(ctx context.Context, plugin string, timers []manifest.Timer, deliver func(capability.Event) bool) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, t := range timers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if t.Cron != "" {
				runCron(ctx, plugin, t, deliver)
			} else {
				runEvery(ctx, plugin, t, deliver)
			}
		}()
	}
	return &wg
}

func runEvery(ctx context.Context, plugin string, t manifest.Timer, deliver func(capability.Event) bool) {
	tk := time.NewTicker(t.Every.D())
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tk.C:
			deliver(Event(plugin, t.Name, now))
		}
	}
}

func runCron(ctx context.Context, plugin string, t manifest.Timer, deliver func(capability.Event) bool) {
	s, err := cron.Parse(t.Cron) // validated when the manifest was loaded
	if err != nil {
		return
	}
	loc := t.Location
	if loc == nil {
		loc = time.Local
	}
	for {
		next := s.Next(time.Now().In(loc))
		if next.IsZero() {
			return
		}
		tm := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			tm.Stop()
			return
		case <-tm.C:
			deliver(Event(plugin, t.Name, next))
		}
	}
}
