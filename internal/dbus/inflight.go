package dbus

import (
	"fmt"
	"sync"

	"github.com/airlockhq/airlock/abi"
)

// Calls the bus has not answered yet, per plugin. dbus-daemon counts a
// connection's calls awaiting a reply against max_replies_per_connection
// (128 by default) until the peer answers, even after the host stopped
// waiting at the call's deadline: a plugin calling a method that never
// answers, with a short timeout_ms, filled the host's quota and every
// plugin's calls then failed with LimitsExceeded. So each plugin may have
// maxInflightPerPlugin calls unanswered, and all together maxInflight,
// which leaves the host's own calls (AddMatch, GetNameOwner) room.
const (
	maxInflightPerPlugin = 4
	maxInflight          = 96
)

// replySlot is one call of ours. godbus decodes a struct as []any, so
// encoding a reply needs the signature of the message it came in: incoming
// writes sig before godbus hands the reply to the caller.
type replySlot struct {
	sig    string
	plugin string
	sent   bool // set by outgoing, on the caller's goroutine
}

// inflight is one connection's calls awaiting a reply. A new connection
// starts a new one: the old bus forgot its calls, and serials start over.
type inflight struct {
	mu        sync.Mutex
	total     int
	perPlugin map[string]int
	serials   map[uint32]*replySlot
}

func newInflight() *inflight {
	return &inflight{perPlugin: map[string]int{}, serials: map[uint32]*replySlot{}}
}

// reserve counts a call of s.plugin before it is sent, or says why it
// cannot be: abi.Busy, for this plugin only unless the host's connection
// as a whole is at its bound.
func (f *inflight) reserve(s *replySlot) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := f.perPlugin[s.plugin]; n >= maxInflightPerPlugin {
		return &callError{abi.Busy, fmt.Sprintf("%d earlier calls of this plugin still await their reply on the bus (they ended here at their timeout, but the bus counts them until the peer answers, and the host's connection may have only so many): retry later", n)}
	}
	if f.total >= maxInflight {
		return &callError{abi.Busy, fmt.Sprintf("the host's bus connection has %d calls awaiting a reply, its bound: retry later", f.total)}
	}
	f.perPlugin[s.plugin]++
	f.total++
	return nil
}

func (f *inflight) release(s *replySlot) {
	if f.perPlugin[s.plugin]--; f.perPlugin[s.plugin] <= 0 {
		delete(f.perPlugin, s.plugin)
	}
	f.total--
}

// sent records that the call went out with serial; outgoing calls it.
func (f *inflight) sent(serial uint32, s *replySlot) {
	f.mu.Lock()
	s.sent = true
	f.serials[serial] = s
	f.mu.Unlock()
}

// unsent releases a call that never went out: SendWithContext has
// returned, so outgoing will not run for it any more.
func (f *inflight) unsent(s *replySlot) {
	f.mu.Lock()
	if !s.sent {
		f.release(s)
	}
	f.mu.Unlock()
}

// answered releases the call that a reply or error with serial answers,
// and returns it (nil if it is not ours: the host's own calls are not
// counted); incoming calls it.
func (f *inflight) answered(serial uint32) *replySlot {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.serials[serial]
	if !ok {
		return nil
	}
	delete(f.serials, serial)
	f.release(s)
	return s
}
