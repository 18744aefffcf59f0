package plugin

import (
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/airlockhq/airlock/host/capability"
)

func ev(i int, coalesce string) capability.Event {
	return capability.Event{Kind: 3, Payload: []byte(strconv.Itoa(i)), Coalesce: coalesce}
}

func drain(q *queue) (got []string, dropped uint64) {
	for {
		e, d, ok := q.pop()
		dropped += d
		if !ok {
			return got, dropped
		}
		got = append(got, string(e.Payload))
	}
}

func TestQueueDropNewest(t *testing.T) {
	q := newQueue(3, false)
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
	if _, total := q.stats(); total != 7 {
		t.Errorf("total dropped = %d, want 7", total)
	}
}

func TestQueueDropOldest(t *testing.T) {
	q := newQueue(3, true)
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
	q := newQueue(4, false)
	q.push(ev(1, "timer:a"))
	q.push(ev(2, ""))
	q.push(ev(3, "timer:a"))
	q.push(ev(4, "timer:b"))
	got, dropped := drain(q)
	if want := "[3 2 4]"; dropped != 0 || fmtList(got) != want {
		t.Fatalf("got %v (dropped %d), want %s: a newer tick replaces the queued one in place", got, dropped, want)
	}
}

func TestQueueDropReportComesOnce(t *testing.T) {
	q := newQueue(1, false)
	q.push(ev(1, ""))
	q.push(ev(2, ""))
	if _, d, _ := q.pop(); d != 1 {
		t.Fatalf("first pop reports %d dropped, want 1", d)
	}
	q.push(ev(3, ""))
	if _, d, _ := q.pop(); d != 0 {
		t.Fatalf("second pop reports %d dropped again", d)
	}
}

func TestQueueClosedRefuses(t *testing.T) {
	q := newQueue(2, false)
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
	q := newQueue(8, false)
	const producers, each = 4, 5000
	var wg sync.WaitGroup
	delivered := make(chan int, 1)
	stop := make(chan struct{})
	go func() {
		n := 0
		var dropped uint64
		for {
			_, d, ok := q.pop()
			dropped += d
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
	q := newQueue(4, false)
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
	old := newQueue(2, false)
	for i := 0; i < 5; i++ {
		old.push(ev(i, ""))
	}
	queued, dropped := old.takeAll()
	if len(queued) != 2 || dropped != 3 {
		t.Fatalf("takeAll: %d events and %d drops, want 2 and 3", len(queued), dropped)
	}
	if _, d, _ := old.pop(); d != 0 {
		t.Errorf("the old queue still reports %d drops after the handoff", d)
	}
	next := newQueue(4, false)
	next.addDropped(dropped)
	for _, e := range queued {
		next.push(e)
	}
	got, d := drain(next)
	if d != 3 || strings.Join(got, ",") != "0,1" {
		t.Errorf("new queue: events %v and %d drops, want [0 1] and 3", got, d)
	}
}
