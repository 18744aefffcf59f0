package httpout

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero/api"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
)

// The functions of airlock_http_v1 (ABI.md §3.5).
const (
	FuncRequest   = "request"    // (req_ptr, req_len, body_ptr, body_len, out_ptr, out_cap, out_len_ptr) -> errno
	FuncBodyRead  = "body_read"  // (handle, out_ptr, out_cap, out_len_ptr) -> errno
	FuncBodyClose = "body_close" // (handle) -> errno
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
)

var chunks = sync.Pool{New: func() any { b := make([]byte, maxReadChunk); return &b }}

// Functions returns airlock_http_v1's functions.
func (c *Capability) Functions() []capability.Func {
	i32 := api.ValueTypeI32
	return []capability.Func{
		{Name: FuncRequest, Params: []api.ValueType{i32, i32, i32, i32, i32, i32, i32}, Results: []api.ValueType{i32}, Call: c.hostRequest},
		{Name: FuncBodyRead, Params: []api.ValueType{i32, i32, i32, i32}, Results: []api.ValueType{i32}, Call: c.hostBodyRead},
		{Name: FuncBodyClose, Params: []api.ValueType{i32}, Results: []api.ValueType{i32}, Call: c.hostBodyClose},
	}
}

func (c *Capability) hostRequest(ctx context.Context, in *capability.Instance, m api.Module, stack []uint64) {
	reqPtr, reqLen, bodyPtr, bodyLen := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	out, outCap, outLen := uint32(stack[4]), uint32(stack[5]), uint32(stack[6])
	reqBytes, ok1 := capability.Read(m, reqPtr, reqLen)
	body, ok2 := capability.Read(m, bodyPtr, bodyLen)
	if !ok1 || !ok2 || !capability.OutOK(m, out, outCap, outLen) {
		stack[0] = uint64(abi.Fault)
		return
	}
	rec, err := c.request(ctx, in, reqBytes, body)
	if err != nil {
		stack[0] = uint64(in.ReplyErr(m, out, outCap, outLen, err))
		return
	}
	stack[0] = uint64(in.Reply(m, out, outCap, outLen, abi.AppendRecord(nil, rec), abi.OK))
}

// request decodes a request record, sends it and returns the reply record.
func (c *Capability) request(ctx context.Context, in *capability.Instance, reqBytes, body []byte) (abi.Record, error) {
	if len(reqBytes) > maxRequestRecord {
		return nil, errorf(abi.TooLarge, "http: the request record is larger than %d bytes", maxRequestRecord)
	}
	rec, err := abi.DecodeRecord(reqBytes)
	if err != nil {
		return nil, errorf(abi.Invalid, "http: the request is not a record (ABI.md §2)")
	}
	var r Request
	seen := map[string]bool{}
	for _, f := range rec {
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
	if len(body) > 0 {
		r.Body = body // read by the transport before request returns, while guest memory is still ours
	}
	if err := c.reserve(in.Plugin); err != nil {
		return nil, err
	}
	g, _ := in.Grants[Name].(*Grant)
	resp, err := c.Do(ctx, in, g, r)
	if err != nil {
		c.logFailure(ctx, in, err)
		return nil, err
	}
	h := c.open(in.Plugin, resp)
	add := func(k, v string) { rec = append(rec, abi.Field{Key: k, Value: []byte(v)}) }
	rec = nil
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

func (c *Capability) hostBodyRead(ctx context.Context, in *capability.Instance, m api.Module, stack []uint64) {
	h, out, outCap, outLen := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3])
	if !capability.OutOK(m, out, outCap, outLen) {
		stack[0] = uint64(abi.Fault)
		return
	}
	bufp := chunks.Get().(*[]byte)
	defer chunks.Put(bufp)
	n, err := c.read(in.Plugin, h, (*bufp)[:min(int(outCap), maxReadChunk)])
	if err != nil {
		stack[0] = uint64(in.ReplyErr(m, out, outCap, outLen, err))
		return
	}
	// n <= outCap: the chunk always fits, and nothing is left pending.
	stack[0] = uint64(in.Reply(m, out, outCap, outLen, (*bufp)[:n], abi.OK))
}

// read reads the next chunk of body h into p: n > 0 bytes, or 0 at the
// end. An error closes the body.
func (c *Capability) read(plugin string, h uint32, p []byte) (int, error) {
	r := c.body(plugin, h)
	if r == nil {
		return 0, errorf(abi.NotFound, "http: no open response body %d (closed, or read to its end and closed)", h)
	}
	if len(p) == 0 {
		return 0, errorf(abi.Invalid, "http: body_read needs a buffer of at least one byte")
	}
	for {
		n, err := r.Body.Read(p)
		if n > 0 {
			return n, nil
		}
		if err == io.EOF {
			return 0, nil
		}
		if err != nil {
			c.closeBody(plugin, h)
			var e *Error
			if !errors.As(err, &e) {
				err = errorf(abi.Failed, "http: reading the body: %v", err)
			}
			return 0, err
		}
	}
}

func (c *Capability) hostBodyClose(_ context.Context, in *capability.Instance, _ api.Module, stack []uint64) {
	if !c.closeBody(in.Plugin, uint32(stack[0])) {
		stack[0] = uint64(abi.NotFound)
		return
	}
	stack[0] = uint64(abi.OK)
}

func (c *Capability) logFailure(ctx context.Context, in *capability.Instance, err error) {
	if capability.ErrnoOf(err) == abi.Denied {
		return // the gate's audit has it
	}
	log := in.Log
	if log == nil {
		log = c.log
	}
	log.WarnContext(ctx, "http request failed", "capability", Name, "error", err.Error())
}
