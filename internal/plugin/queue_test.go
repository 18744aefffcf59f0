package plugin

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host/capability"
)

func ev(i int, coalesce string) capability.Event {
	return capability.Event{Kind: 3, Payload: []byte(strconv.Itoa(i)), Coalesce: coalesce}
}

func drain(q *queue) (got []string, dropped uint64) {
	got, lost := drainLosses(q)
	return got, lost.Dropped()
}

// drainLosses pops until the queue is empty, adding up what each pop
// reported lost.
func drainLosses(q *queue) (got []string, lost Losses) {
	for {
		e, l, ok := q.pop()
		lost.add(l)
		if !ok {
			return got, lost
		}
		got = append(got, string(e.Payload))
	}
}

func TestQueueDropNewest(t *testing.T) {
	q := newQueue(3, false, 0)
	accepted := 0
	for i := 0; i < 10; i++ {
		if q.push(ev(i, "")) {
			accepted++
		}
	}
	got, dropped := drain(q)
	if accepted != 3 || dropped != 7 || len(got) != 3 || got[0] != "0" || got[2] != "2" {
		t.Fatalf("accepted %d, got %v, dropped %d; want the first 3 kept and 7 dropped", accepted, got, dropped)
	}
	if _, total := q.stats(); total.Dropped() != 7 {
		t.Errorf("total dropped = %d, want 7", total)
	}
}

func TestQueueDropOldest(t *testing.T) {
	q := newQueue(3, true, 0)
	for i := 0; i < 10; i++ {
		if !q.push(ev(i, "")) {
			t.Fatalf("push %d: drop_oldest always queues the new event", i)
		}
	}
	got, dropped := drain(q)
	if dropped != 7 || len(got) != 3 || got[0] != "7" || got[2] != "9" {
		t.Fatalf("got %v, dropped %d; want the last 3 kept and 7 dropped", got, dropped)
	}
}

func TestQueueCoalesce(t *testing.T) {
	q := newQueue(4, false, 0)
	q.push(ev(1, "timer:a"))
	q.push(ev(2, ""))
	q.push(ev(3, "timer:a"))
	q.push(ev(4, "timer:b"))
	got, lost := drainLosses(q)
	if want := "[3 2 4]"; lost.Dropped() != 0 || fmtList(got) != want {
		t.Fatalf("got %v (dropped %d), want %s: a newer tick replaces the queued one in place", got, lost.Dropped(), want)
	}
	if lost.Coalesced[3] != 1 || lost.CoalescedTotal() != 1 {
		t.Errorf("coalesced = %v, want the one replaced timer tick counted", lost.Coalesced)
	}
}

func TestQueueDropReportComesOnce(t *testing.T) {
	q := newQueue(1, false, 0)
	q.push(ev(1, ""))
	q.push(ev(2, ""))
	if _, d, _ := q.pop(); d.Dropped() != 1 {
		t.Fatalf("first pop reports %d dropped, want 1", d)
	}
	q.push(ev(3, ""))
	if _, d, _ := q.pop(); !d.empty() {
		t.Fatalf("second pop reports %d dropped again", d)
	}
}

func TestQueueClosedRefuses(t *testing.T) {
	q := newQueue(2, false, 0)
	q.push(ev(1, ""))
	q.close()
	if q.push(ev(2, "")) {
		t.Fatal("a closed queue took an event")
	}
	if got, _ := drain(q); len(got) != 1 {
		t.Fatalf("closing lost queued events: %v", got)
	}
}

// Concurrent producers: every event is either delivered or counted.
func TestQueueConcurrentAccounting(t *testing.T) {
	q := newQueue(8, false, 0)
	const producers, each = 4, 5000
	var wg sync.WaitGroup
	delivered := make(chan int, 1)
	stop := make(chan struct{})
	go func() {
		n := 0
		var dropped uint64
		for {
			_, d, ok := q.pop()
			dropped += d.Dropped()
			if ok {
				n++
				continue
			}
			select {
			case <-stop:
				rest, d := drain(q)
				delivered <- n + len(rest) + int(dropped+d)
				return
			case <-q.ready:
			}
		}
	}()
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				q.push(ev(i, ""))
			}
		}()
	}
	wg.Wait()
	close(stop)
	q.signal()
	if got := <-delivered; got != producers*each {
		t.Fatalf("delivered+dropped = %d, want %d", got, producers*each)
	}
}

func fmtList(s []string) string {
	out := "["
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out + "]"
}

// takeAll (a reload's handoff) returns what waits, in order, across the
// ring's wrap, and leaves the queue empty and closed.
func TestQueueTakeAll(t *testing.T) {
	q := newQueue(4, false, 0)
	for i := 0; i < 3; i++ {
		q.push(ev(i, ""))
	}
	q.pop()
	q.pop()
	for i := 3; i < 6; i++ {
		q.push(ev(i, "")) // wraps around the ring
	}
	var got []string
	taken, _ := q.takeAll()
	for _, e := range taken {
		got = append(got, string(e.Payload))
	}
	if want := "2,3,4,5"; strings.Join(got, ",") != want {
		t.Errorf("takeAll = %v, want %s", got, want)
	}
	if q.push(ev(9, "")) {
		t.Error("push after takeAll was accepted")
	}
	if rest, _ := drain(q); len(rest) != 0 {
		t.Errorf("queue after takeAll holds %v", rest)
	}
}

// Drops the old version had not reported when it was replaced reach the
// new version, before its first event, and are not reported twice.
func TestHandoffCarriesUnreportedDrops(t *testing.T) {
	old := newQueue(2, false, 0)
	for i := 0; i < 5; i++ {
		old.push(ev(i, ""))
	}
	queued, lost := old.takeAll()
	if dropped := lost.Dropped(); len(queued) != 2 || dropped != 3 {
		t.Fatalf("takeAll: %d events and %d drops, want 2 and 3", len(queued), dropped)
	}
	if _, d, _ := old.pop(); !d.empty() {
		t.Errorf("the old queue still reports %d drops after the handoff", d)
	}
	next := newQueue(4, false, 0)
	next.addLosses(lost)
	for _, e := range queued {
		next.push(e)
	}
	got, d := drain(next)
	if d != 3 || strings.Join(got, ",") != "0,1" {
		t.Errorf("new queue: events %v and %d drops, want [0 1] and 3", got, d)
	}
}

// A replaced change is counted as coalesced, apart from dropped, so that
// handled + dropped + coalesced = sent, exactly, whatever the interleaving
// of producers and the consumer; and each loss is counted under the kind of
// the event that was lost.
func TestQueueCoalescedCountedExactly(t *testing.T) {
	q := newQueue(4, false, 0)
	const sent = 20000
	done := make(chan struct{})
	var handled int
	var lost Losses
	go func() {
		defer close(done)
		for {
			_, l, ok := q.pop()
			lost.add(l)
			if ok {
				handled++
				continue
			}
			q.mu.Lock()
			closed := q.closed && q.n == 0
			q.mu.Unlock()
			if closed {
				_, l, _ := q.pop()
				lost.add(l)
				return
			}
			<-q.ready
		}
	}()
	for i := range sent {
		// Changes of 3 devices (kind 4), and distinct timer ticks (kind 3)
		// that overflow the queue now and then.
		if i%5 == 0 {
			q.push(capability.Event{Kind: 3})
		} else {
			q.push(capability.Event{Kind: 4, Coalesce: "udev:/devices/d" + strconv.Itoa(i%3)})
		}
	}
	q.close()
	<-done
	total := uint64(handled) + lost.Dropped() + lost.CoalescedTotal()
	t.Logf("sent %d: handled %d, dropped %v, coalesced %v", sent, handled, lost.DroppedByKind(), lost.CoalescedByKind())
	if total != sent {
		t.Fatalf("handled %d + dropped %d + coalesced %d = %d, want %d", handled, lost.Dropped(), lost.CoalescedTotal(), total, sent)
	}
	if lost.Coalesced[3] != 0 || lost.Coalesced[4] == 0 {
		t.Errorf("coalesced by kind %v: only udev changes coalesce here", lost.CoalescedByKind())
	}
	if _, st := q.stats(); st != lost {
		t.Errorf("status totals %+v differ from what the plugin was told %+v", st, lost)
	}
}

// Drops are counted under the kind of the event lost: under drop_oldest
// that is the queued event pushed out, not the new one.
func TestQueueLossesByKind(t *testing.T) {
	q := newQueue(2, true, 0)
	q.push(capability.Event{Kind: 3})
	q.push(capability.Event{Kind: 5})
	q.push(capability.Event{Kind: 4}) // pushes out the timer
	q.push(capability.Event{Kind: 4}) // pushes out the signal
	_, lost := drainLosses(q)
	if lost.QueueFull[3] != 1 || lost.QueueFull[5] != 1 || lost.QueueFull[4] != 0 {
		t.Errorf("drop_oldest losses by kind %v, want one timer and one dbus_signal", lost.DroppedByKind())
	}
	q = newQueue(1, false, 0)
	q.push(capability.Event{Kind: 3})
	q.push(capability.Event{Kind: 7})
	q.push(capability.Event{Kind: 99}) // a kind this host does not know yet
	_, lost = drainLosses(q)
	if got := fmt.Sprint(lost.DroppedByKind()); got != "map[mount:1 other:1]" {
		t.Errorf("drop_newest losses by kind %s, want the refused mount and the unknown kind", got)
	}
}

// The dropped event's record: count and reason first, as v1 hosts always
// sent them, then the new fields, kinds in abi order.
func TestLossesRecord(t *testing.T) {
	var l Losses
	l.QueueFull[4] = 3
	l.Rate[4] = 2
	l.Rate[5] = 1
	l.Coalesced[3] = 7
	var b strings.Builder
	for _, f := range l.Record() {
		fmt.Fprintf(&b, "%s=%s;", f.Key, f.Value)
	}
	want := "count=6;reason=queue full, rate limit;rate_limited=3;coalesced=7;dropped.udev=5;dropped.dbus_signal=1;coalesced.timer=7;"
	if b.String() != want {
		t.Errorf("record\n got %s\nwant %s", b.String(), want)
	}
	l = Losses{}
	l.Coalesced[4] = 2
	if r := l.Reason(); r != "coalesced" {
		t.Errorf("reason for coalesced only = %q", r)
	}
}

// limits.events_per_second: a token bucket with ten seconds of burst.
// Bursts up to it pass, the excess is refused and counted as rate-limited
// by kind, and tokens come back with time (the clock is the test's).
func TestRateLimit(t *testing.T) {
	r := newRateLimit(5)
	now := time.Unix(1000, 0)
	passed := 0
	for range 200 {
		if r.take(now) {
			passed++
		}
	}
	if passed != 5*RateBurstSeconds {
		t.Errorf("%d passed at once, want the burst of %d", passed, 5*RateBurstSeconds)
	}
	now = now.Add(2 * time.Second)
	passed = 0
	for range 200 {
		if r.take(now) {
			passed++
		}
	}
	if passed != 10 {
		t.Errorf("%d passed after 2s, want 10 (5 a second)", passed)
	}
	q := newQueue(1000, false, 1)
	for range 30 {
		q.push(capability.Event{Kind: 5})
	}
	got, lost := drainLosses(q)
	if len(got) != RateBurstSeconds || lost.Rate[5] != 30-RateBurstSeconds || lost.Reason() != "rate limit" {
		t.Errorf("queued %d, losses %+v (%s); want %d queued and the rest rate-limited", len(got), lost.Rate, lost.Reason(), RateBurstSeconds)
	}
	if none := newRateLimit(0); !none.take(now) {
		t.Error("0 (no limit) refused an event")
	}
}
