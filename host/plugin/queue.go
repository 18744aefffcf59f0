package plugin

import (
	"sync"

	"github.com/airlockhq/airlock/host/capability"
)

// queue is a plugin's bounded event queue. The router pushes without
// blocking; the plugin's goroutine pops. Overflow loses an event by policy
// but never silently: the count is kept exactly and handed to the plugin as
// a "dropped" event before the next one.
type queue struct {
	mu         sync.Mutex
	buf        []capability.Event // ring
	head, n    int
	dropOldest bool
	dropped    uint64 // lost since the last report to the plugin
	total      uint64 // lost since start, for status
	closed     bool
	ready      chan struct{} // has a token when the queue may have work
}

func newQueue(size int, dropOldest bool) *queue {
	return &queue{buf: make([]capability.Event, size), dropOldest: dropOldest, ready: make(chan struct{}, 1)}
}

// push adds ev. It reports whether ev itself was queued: false under
// drop_newest overflow or on a closed queue. Under drop_oldest, ev is queued
// and an older event is lost (and counted).
func (q *queue) push(ev capability.Event) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	if ev.Coalesce != "" {
		for i := 0; i < q.n; i++ {
			j := (q.head + i) % len(q.buf)
			if q.buf[j].Coalesce == ev.Coalesce {
				q.buf[j] = ev
				return true
			}
		}
	}
	if q.n == len(q.buf) {
		q.dropped++
		q.total++
		if !q.dropOldest {
			return false
		}
		// ev is queued; the oldest pending event is the one lost.
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
	q.buf[(q.head+q.n)%len(q.buf)] = ev
	q.n++
	q.signal()
	return true
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop takes the next event. dropped is the count lost since the last pop
// that reported one; the caller delivers a notice for it first. ok is false
// when the queue is empty.
func (q *queue) pop() (ev capability.Event, dropped uint64, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	dropped, q.dropped = q.dropped, 0
	if q.n == 0 {
		return ev, dropped, false
	}
	ev = q.buf[q.head]
	q.buf[q.head] = capability.Event{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return ev, dropped, true
}

// close refuses further pushes; what is queued stays to be drained.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// stats returns the depth and the total dropped since start.
func (q *queue) stats() (depth int, dropped uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, q.total
}

// takeAll closes the queue to further pushes and empties it, returning what
// was queued in order and the count of drops not yet reported.
func (q *queue) takeAll() ([]capability.Event, uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	dropped := q.dropped
	q.dropped = 0
	out := make([]capability.Event, 0, q.n)
	for i := 0; i < q.n; i++ {
		j := (q.head + i) % len(q.buf)
		out = append(out, q.buf[j])
		q.buf[j] = capability.Event{}
	}
	q.head, q.n = 0, 0
	q.signal()
	return out, dropped
}

// addDropped counts n drops that happened elsewhere (in the queue of the
// version this one replaced), to be reported before the next event.
func (q *queue) addDropped(n uint64) {
	if n == 0 {
		return
	}
	q.mu.Lock()
	q.dropped += n
	q.mu.Unlock()
	q.signal()
}

// Handoff closes p's queue to new events and returns those still queued,
// in order, for a reloaded version of the plugin to take over, with the
// count of drops p has not yet told its handler about (TakeOver reports
// them to the new version). The event being handled, if any, finishes; a
// later Stop then delivers stop without any events left to drain.
func (p *Plugin) Handoff() ([]capability.Event, uint64) { return p.q.takeAll() }

// TakeOver gives p the drops that the version it replaces had not yet
// reported: p's handler gets the "events dropped" notice for them before
// its next event.
func (p *Plugin) TakeOver(dropped uint64) { p.q.addDropped(dropped) }
