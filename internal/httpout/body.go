package httpout

import (
	"bytes"
	"io"

	"github.com/airlockhq/airlock/abi"
)

// maxOpenBodies bounds the response bodies one plugin holds open. A body
// whose request's deadline has passed no longer counts: its connection is
// already gone.
const maxOpenBodies = 8

// bodySet is one plugin's open bodies, by handle. Guarded by Capability.mu
// for the map; a body is read only by its plugin's goroutine.
type bodySet struct {
	next   uint32
	bodies map[uint32]*Response
}

// reserve checks, before a request is sent, that its body will have a
// handle, dropping bodies whose deadline passed.
func (c *Capability) reserve(plugin string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.bodies[plugin]
	if set == nil || len(set.bodies) < maxOpenBodies {
		return nil
	}
	for h, r := range set.bodies {
		if r.expired() {
			r.Body.Close()
			delete(set.bodies, h)
		}
	}
	if len(set.bodies) < maxOpenBodies {
		return nil
	}
	return errorf(abi.Busy, "http: %d response bodies are open; close one (body_close) before the next request", maxOpenBodies)
}

func (r *Response) expired() bool {
	return r.ctx != nil && r.ctx.Err() != nil
}

// open gives r a handle.
func (c *Capability) open(plugin string, r *Response) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	set := c.bodies[plugin]
	if set == nil {
		set = &bodySet{bodies: map[uint32]*Response{}}
		c.bodies[plugin] = set
	}
	set.next++
	if set.next == 0 {
		set.next = 1
	}
	set.bodies[set.next] = r
	return set.next
}

func (c *Capability) body(plugin string, h uint32) *Response {
	c.mu.Lock()
	defer c.mu.Unlock()
	if set := c.bodies[plugin]; set != nil {
		return set.bodies[h]
	}
	return nil
}

// closeBody closes and forgets handle h; false if the plugin has no such body.
func (c *Capability) closeBody(plugin string, h uint32) bool {
	c.mu.Lock()
	set := c.bodies[plugin]
	var r *Response
	if set != nil {
		r = set.bodies[h]
		delete(set.bodies, h)
	}
	c.mu.Unlock()
	if r == nil {
		return false
	}
	r.Body.Close()
	return true
}

func (s *bodySet) closeAll() {
	if s == nil {
		return
	}
	for _, r := range s.bodies {
		r.Body.Close()
	}
}

// redactor replaces each secret in a stream with "[redacted]", holding
// back what could be the start of one until the next read shows it is not.
type redactor struct {
	r       io.Reader
	secrets [][]byte
	longest int
	buf     []byte // read, not yet returned
	out     []byte // redacted, not yet returned
	eof     bool
	err     error
}

func newRedactor(r io.Reader, secrets []string) *redactor {
	x := &redactor{r: r}
	for _, s := range secrets {
		x.secrets = append(x.secrets, []byte(s))
		x.longest = max(x.longest, len(s))
	}
	return x
}

func (x *redactor) Read(p []byte) (int, error) {
	for len(x.out) == 0 {
		if x.eof {
			if len(x.buf) == 0 {
				return 0, x.err
			}
		} else {
			chunk := make([]byte, max(4096, len(p)))
			n, err := x.r.Read(chunk)
			x.buf = append(x.buf, chunk[:n]...)
			if err != nil {
				x.eof, x.err = true, err
			}
		}
		x.scan()
	}
	n := copy(p, x.out)
	x.out = x.out[n:]
	return n, nil
}

// scan moves what is decided from buf to out: whole secrets become the
// marker, and a tail that could still grow into one stays, unless the
// stream has ended.
func (x *redactor) scan() {
	i := 0
	for i < len(x.buf) {
		rest := x.buf[i:]
		if s := x.match(rest); s > 0 {
			x.out = append(x.out, redacted...)
			i += s
			continue
		}
		if !x.eof && len(rest) < x.longest && x.prefix(rest) {
			break
		}
		x.out = append(x.out, x.buf[i])
		i++
	}
	x.buf = append(x.buf[:0], x.buf[i:]...)
}

func (x *redactor) match(b []byte) int {
	for _, s := range x.secrets {
		if bytes.HasPrefix(b, s) {
			return len(s)
		}
	}
	return 0
}

// prefix reports whether b is the start of a secret.
func (x *redactor) prefix(b []byte) bool {
	for _, s := range x.secrets {
		if len(b) < len(s) && bytes.HasPrefix(s, b) {
			return true
		}
	}
	return false
}
