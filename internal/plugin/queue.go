package plugin

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
)

// kindSlots indexes Losses by event kind: abi kinds 1 to
// abi.LastEventKind, and 0 for any kind outside them.
const kindSlots = int(abi.LastEventKind) + 1

func slot(kind uint32) int {
	if kind < uint32(kindSlots) {
		return int(kind)
	}
	return 0
}

// Losses counts the events a plugin did not get, by cause and by event
// kind (indexed by abi.EventKind). QueueFull and Rate are dropped: never
// delivered. Coalesced were replaced in the queue by a newer event of the
// same source (a timer's tick, a device's change), which is delivered. So
// for every plugin, handled + dropped + coalesced = queued, exactly.
type Losses struct {
	QueueFull [kindSlots]uint64 // the queue was full (limits.queue, limits.overflow)
	Rate      [kindSlots]uint64 // over limits.events_per_second
	Coalesced [kindSlots]uint64 // replaced by a newer event of the same source
}

func sum(a *[kindSlots]uint64) (n uint64) {
	for _, v := range a {
		n += v
	}
	return n
}

// Dropped is how many events were lost: never delivered.
func (l *Losses) Dropped() uint64 { return sum(&l.QueueFull) + sum(&l.Rate) }

// RateLimited is how many of Dropped were over limits.events_per_second.
func (l *Losses) RateLimited() uint64 { return sum(&l.Rate) }

// CoalescedTotal is how many events were replaced by a newer one.
func (l *Losses) CoalescedTotal() uint64 { return sum(&l.Coalesced) }

func (l *Losses) empty() bool { return l.Dropped() == 0 && l.CoalescedTotal() == 0 }

func (l *Losses) add(o Losses) {
	for i := range kindSlots {
		l.QueueFull[i] += o.QueueFull[i]
		l.Rate[i] += o.Rate[i]
		l.Coalesced[i] += o.Coalesced[i]
	}
}

// KindName names slot i as status, the metrics and the dropped event do.
func KindName(i int) string {
	if i == 0 {
		return "other"
	}
	return abi.EventKind(i).String()
}

// DroppedByKind returns the dropped events (queue full or rate limit) by
// kind name; CoalescedByKind the coalesced ones. Kinds with none are left
// out.
func (l *Losses) DroppedByKind() map[string]uint64 {
	out := map[string]uint64{}
	for i := range kindSlots {
		if n := l.QueueFull[i] + l.Rate[i]; n > 0 {
			out[KindName(i)] = n
		}
	}
	return out
}

func (l *Losses) CoalescedByKind() map[string]uint64 {
	out := map[string]uint64{}
	for i, n := range l.Coalesced {
		if n > 0 {
			out[KindName(i)] = n
		}
	}
	return out
}

// Reason says what caused the losses, as the dropped event's reason does.
func (l *Losses) Reason() string {
	var r []string
	if sum(&l.QueueFull) > 0 {
		r = append(r, "queue full")
	}
	if sum(&l.Rate) > 0 {
		r = append(r, "rate limit")
	}
	if len(r) == 0 && l.CoalescedTotal() > 0 {
		r = append(r, "coalesced")
	}
	return strings.Join(r, ", ")
}

// Record is the dropped event's payload (abi/ABI.md §5): count and reason
// as since v1's first host, then rate_limited, coalesced, and the counts by
// kind (dropped.<kind>, coalesced.<kind>) of the kinds that lost any.
func (l *Losses) Record() abi.Record {
	num := func(n uint64) []byte { return strconv.AppendUint(nil, n, 10) }
	r := abi.Record{
		{Key: "count", Value: num(l.Dropped())},
		{Key: "reason", Value: []byte(l.Reason())},
		{Key: "rate_limited", Value: num(l.RateLimited())},
		{Key: "coalesced", Value: num(l.CoalescedTotal())},
	}
	for i := 1; i < kindSlots+1; i++ {
		j := i % kindSlots // "other" (0) last
		if n := l.QueueFull[j] + l.Rate[j]; n > 0 {
			r = append(r, abi.Field{Key: "dropped." + KindName(j), Value: num(n)})
		}
	}
	for i := 1; i < kindSlots+1; i++ {
		j := i % kindSlots
		if n := l.Coalesced[j]; n > 0 {
			r = append(r, abi.Field{Key: "coalesced." + KindName(j), Value: num(n)})
		}
	}
	return r
}

// rateLimit is a token bucket: perSecond events a second on average, and a
// burst of up to burst at once. perSecond 0 means no limit.
type rateLimit struct {
	perSecond float64
	burst     float64
	tokens    float64
	last      time.Time
}

// RateBurstSeconds is how many seconds' worth of events a plugin may take
// at once, above limits.events_per_second, from a full bucket: a real burst
// (coldplug, a USB hub with its disks and partitions) is brief, a loop is
// not.
const RateBurstSeconds = 10

func newRateLimit(perSecond int) rateLimit {
	b := float64(perSecond) * RateBurstSeconds
	return rateLimit{perSecond: float64(perSecond), burst: b, tokens: b}
}

// take reports whether an event may pass now.
func (r *rateLimit) take(now time.Time) bool {
	if r.perSecond == 0 {
		return true
	}
	if !r.last.IsZero() {
		r.tokens = min(r.burst, r.tokens+now.Sub(r.last).Seconds()*r.perSecond)
	}
	r.last = now
	if r.tokens < 1 {
		return false
	}
	r.tokens--
	return true
}

// queue is a plugin's bounded event queue. The router pushes without
// blocking; the plugin's goroutine pops. An event is lost by policy (a full
// queue, the rate limit) or replaced by a newer one of the same source, but
// never silently: each is counted exactly, by cause and kind, and handed to
// the plugin as a "dropped" event before the next one.
type queue struct {
	mu         sync.Mutex
	buf        []capability.Event // ring
	head, n    int
	dropOldest bool
	rate       rateLimit
	unreported Losses // since the last report to the plugin
	total      Losses // since start, for status
	closed     bool
	ready      chan struct{} // has a token when the queue may have work
}

func newQueue(size int, dropOldest bool, perSecond int) *queue {
	return &queue{buf: make([]capability.Event, size), dropOldest: dropOldest, rate: newRateLimit(perSecond), ready: make(chan struct{}, 1)}
}

// push adds ev. It reports whether ev itself was queued: false over the
// rate limit, under drop_newest overflow or on a closed queue. Under
// drop_oldest, ev is queued and an older event is lost (and counted). An
// event that replaces a queued one of the same source (ev.Coalesce) is
// queued; the one it replaced is counted as coalesced.
func (q *queue) push(ev capability.Event) bool { return q.add(ev, true) }

// requeue adds an event that was queued before (a reload's handoff): it
// passed the rate limit then, so it does not pay again.
func (q *queue) requeue(ev capability.Event) bool { return q.add(ev, false) }

func (q *queue) add(ev capability.Event, limit bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	if ev.Coalesce != "" {
		for i := 0; i < q.n; i++ {
			j := (q.head + i) % len(q.buf)
			if q.buf[j].Coalesce == ev.Coalesce {
				q.count(func(l *Losses) *[kindSlots]uint64 { return &l.Coalesced }, q.buf[j].Kind)
				q.buf[j] = ev
				return true
			}
		}
	}
	if limit && !q.rate.take(time.Now()) {
		q.count(func(l *Losses) *[kindSlots]uint64 { return &l.Rate }, ev.Kind)
		return false
	}
	if q.n == len(q.buf) {
		if !q.dropOldest {
			q.count(func(l *Losses) *[kindSlots]uint64 { return &l.QueueFull }, ev.Kind)
			return false
		}
		// ev is queued; the oldest pending event is the one lost.
		q.count(func(l *Losses) *[kindSlots]uint64 { return &l.QueueFull }, q.buf[q.head].Kind)
		q.buf[q.head] = capability.Event{}
		q.head = (q.head + 1) % len(q.buf)
		q.n--
	}
	q.buf[(q.head+q.n)%len(q.buf)] = ev
	q.n++
	q.signal()
	return true
}

// count adds one loss of kind to the counter that which selects, in both
// the unreported and the total Losses. The caller holds mu.
func (q *queue) count(which func(*Losses) *[kindSlots]uint64, kind uint32) {
	which(&q.unreported)[slot(kind)]++
	which(&q.total)[slot(kind)]++
}

func (q *queue) signal() {
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// pop takes the next event. lost is what was lost since the last pop that
// reported a loss; the caller delivers a notice for it first. ok is false
// when the queue is empty.
func (q *queue) pop() (ev capability.Event, lost Losses, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	lost, q.unreported = q.unreported, Losses{}
	if q.n == 0 {
		return ev, lost, false
	}
	ev = q.buf[q.head]
	q.buf[q.head] = capability.Event{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return ev, lost, true
}

// close refuses further pushes; what is queued stays to be drained.
func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.signal()
}

// stats returns the depth and the losses since start.
func (q *queue) stats() (depth int, total Losses) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, q.total
}

// takeAll closes the queue to further pushes and empties it, returning what
// was queued in order and the losses not yet reported.
func (q *queue) takeAll() ([]capability.Event, Losses) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	lost := q.unreported
	q.unreported = Losses{}
	out := make([]capability.Event, 0, q.n)
	for i := 0; i < q.n; i++ {
		j := (q.head + i) % len(q.buf)
		out = append(out, q.buf[j])
		q.buf[j] = capability.Event{}
	}
	q.head, q.n = 0, 0
	q.signal()
	return out, lost
}

// addLosses counts losses that happened elsewhere (in the queue of the
// version this one replaced), to be reported before the next event. They
// are in that version's totals, not this one's.
func (q *queue) addLosses(l Losses) {
	if l.empty() {
		return
	}
	q.mu.Lock()
	q.unreported.add(l)
	q.mu.Unlock()
	q.signal()
}

// Handoff closes p's queue to new events and returns those still queued,
// in order, for a reloaded version of the plugin to take over, with the
// losses p has not yet told its handler about (TakeOver reports them to
// the new version). The event being handled, if any, finishes; a later
// Stop then delivers stop without any events left to drain.
func (p *Plugin) Handoff() ([]capability.Event, Losses) { return p.q.takeAll() }

// TakeOver gives p the losses that the version it replaces had not yet
// reported: p's handler gets the "dropped" notice for them before its next
// event.
func (p *Plugin) TakeOver(lost Losses) { p.q.addLosses(lost) }

// Requeue queues an event handed over by the version p replaces (Handoff):
// like Deliver, but it does not count against the rate limit again.
func (p *Plugin) Requeue(ev capability.Event) bool { return p.q.requeue(ev) }
