package httpout

import (
	"context"
	"io"
	"strconv"
	"strings"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
)

// The functions of airlock_http_v1 (ABI.md §3.6). A body is named by its
// handle, the decimal text of the request's reply field "body".
const (
	FuncRequest   = "request"    // (req_ptr, req_len, body_ptr, body_len, out_ptr, out_cap, out_len_ptr) -> errno
	FuncBodyRead  = "body_read"  // (body_ptr, body_len, out_ptr, out_cap, out_len_ptr) -> errno
	FuncBodyClose = "body_close" // (body_ptr, body_len, out_ptr, out_cap, out_len_ptr) -> errno
)

// Record fields of a request and of its reply.
const (
	fieldMethod         = "method"
	fieldURL            = "url"
	headerPrefix        = "header."
	fieldStatus         = "status"
	fieldBody           = "body"
	fieldContentLength  = "content_length"
	fieldRedirects      = "redirects"
	fieldHeadersDropped = "headers_dropped"
)

const (
	maxRequestRecord = maxURLLen + maxRequestHeaderSize + 1<<10
	maxReadChunk     = 64 << 10
	maxHandleLen     = 10 // a u32 in decimal
)

// grant is the typed access to a plugin's [http] grant.
var grant = capability.GrantKey[*Grant](Name)

// Functions returns airlock_http_v1's functions, through the host's one
// glue: every range is checked before a handler runs.
func (c *Capability) Functions() []capability.Func {
	handle := capability.Input{Name: "body", Max: maxHandleLen}
	return []capability.Func{
		capability.HostFunc(FuncRequest, c.request,
			capability.Input{Name: "req", Max: maxRequestRecord, Record: true,
				Malformed: func(error) error { return errorf(abi.Invalid, "http: the request is not a record (ABI.md §2)") }},
			capability.Input{Name: "body"}), // bounded by max_request_body, with its own message
		capability.HostFuncBytes(FuncBodyRead, c.bodyRead, handle),
		capability.HostFuncBytes(FuncBodyClose, c.bodyClose, handle),
	}
}

// request decodes a request record, sends it and returns the reply record.
func (c *Capability) request(ctx context.Context, cl *capability.Caller, a *capability.Args) (abi.Record, error) {
	var r Request
	seen := map[string]bool{}
	for _, f := range a.Record(0) {
		switch {
		case f.Key == fieldMethod || f.Key == fieldURL:
			if seen[f.Key] {
				return nil, errorf(abi.Invalid, "http: request field %q is repeated", f.Key)
			}
			seen[f.Key] = true
			if f.Key == fieldMethod {
				r.Method = string(f.Value)
			} else {
				r.URL = string(f.Value)
			}
		case strings.HasPrefix(f.Key, headerPrefix):
			r.Header = append(r.Header, [2]string{f.Key[len(headerPrefix):], string(f.Value)})
		default:
			return nil, errorf(abi.Invalid, "http: unknown request field %q (method, url, header.<Name>)", clip(f.Key))
		}
	}
	if r.URL == "" {
		return nil, errorf(abi.Invalid, "http: the request has no url")
	}
	if body := a.Bytes(1); len(body) > 0 {
		r.Body = body // sent before request returns, while guest memory is still ours
	}
	if err := c.reserve(cl.Plugin); err != nil {
		return nil, err
	}
	resp, err := c.Do(ctx, cl, grant.Of(cl), r)
	if err != nil {
		c.logFailure(ctx, cl, err)
		return nil, err
	}
	h := c.open(cl.Plugin, resp)
	var rec abi.Record
	add := func(k, v string) { rec = append(rec, abi.Field{Key: k, Value: []byte(v)}) }
	add(fieldStatus, strconv.Itoa(resp.Status))
	add(fieldURL, resp.URL)
	add(fieldBody, strconv.FormatUint(uint64(h), 10))
	add(fieldRedirects, strconv.Itoa(resp.Redirects))
	if resp.ContentLength >= 0 {
		add(fieldContentLength, strconv.FormatInt(resp.ContentLength, 10))
	}
	if resp.HeadersDropped > 0 {
		add(fieldHeadersDropped, strconv.Itoa(resp.HeadersDropped))
	}
	for _, kv := range resp.Header {
		add(headerPrefix+kv[0], kv[1])
	}
	return rec, nil
}

// bodyRead returns the next chunk of a body, at most out_cap bytes so that
// it is delivered at once: empty at the end. An error closes the body.
func (c *Capability) bodyRead(_ context.Context, cl *capability.Caller, a *capability.Args) ([]byte, error) {
	h, err := parseHandle(a.Bytes(0))
	if err != nil {
		return nil, err
	}
	r := c.body(cl.Plugin, h)
	if r == nil {
		return nil, errorf(abi.NotFound, "http: no open response body %d (closed, or never opened)", h)
	}
	if a.OutCap() == 0 {
		return nil, errorf(abi.Invalid, "http: body_read needs a buffer of at least one byte")
	}
	want := min(int(a.OutCap()), maxReadChunk)
	if len(r.chunk) < want {
		r.chunk = make([]byte, want)
	}
	for {
		// The body's errors carry their errno (limitedBody).
		n, err := r.Body.Read(r.chunk[:want])
		if n > 0 {
			return r.chunk[:n], nil
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			c.closeBody(cl.Plugin, h)
			return nil, err
		}
	}
}

func (c *Capability) bodyClose(_ context.Context, cl *capability.Caller, a *capability.Args) ([]byte, error) {
	h, err := parseHandle(a.Bytes(0))
	if err != nil {
		return nil, err
	}
	if !c.closeBody(cl.Plugin, h) {
		return nil, errorf(abi.NotFound, "http: no open response body %d", h)
	}
	return nil, nil
}

func parseHandle(b []byte) (uint32, error) {
	h, err := strconv.ParseUint(string(b), 10, 32)
	if err != nil || h == 0 {
		return 0, errorf(abi.Invalid, "http: %q is not a body handle (the request's reply field \"body\")", clip(string(b)))
	}
	return uint32(h), nil
}

func (c *Capability) logFailure(ctx context.Context, cl *capability.Caller, err error) {
	if capability.ErrnoOf(err) == abi.Denied {
		return // the gate's audit has it
	}
	log := cl.Log
	if log == nil {
		log = c.log
	}
	log.WarnContext(ctx, "http request failed", "capability", Name, "error", err.Error())
}
