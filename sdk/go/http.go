package airlock

import (
	"io"
	"strconv"
	"strings"

	"github.com/airlockhq/airlock/sdk/go/abi"
)

// HTTP is outbound HTTP(S), as the plugin's [[http.request]] grants allow
// it. It is shaped like net/http's client, without net/http's weight:
//
//	resp, err := airlock.HTTP.Post("https://hooks.example.com/stick", "application/json", body)
//	if err != nil { ... }          // *HostError: abi.Denied, abi.Timeout, ...
//	defer resp.Body.Close()
//	data, err := io.ReadAll(resp.Body)
//
// The host makes the request: it checks the URL against the grants (and
// every redirect), refuses addresses on the device's own networks unless a
// grant names them, and adds the headers a grant attaches, such as a
// host-held token, which the plugin never sees (a server that echoes it
// back is read with it replaced by "[redacted]").
var HTTP Client

// Client is the type of HTTP.
type Client struct{}

// Header is a request's or response's header fields, by canonical name
// ("Content-Type"), as net/http's Header.
type Header map[string][]string

// Get returns the first value of key, or "".
func (h Header) Get(key string) string {
	if v := h[CanonicalHeaderKey(key)]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set replaces key's values with value.
func (h Header) Set(key, value string) { h[CanonicalHeaderKey(key)] = []string{value} }

// Add appends value to key's values.
func (h Header) Add(key, value string) {
	k := CanonicalHeaderKey(key)
	h[k] = append(h[k], value)
}

// CanonicalHeaderKey is net/http's: "content-type" is "Content-Type".
func CanonicalHeaderKey(s string) string {
	b := []byte(s)
	upper := true
	for i, c := range b {
		switch {
		case upper && 'a' <= c && c <= 'z':
			b[i] = c - 'a' + 'A'
		case !upper && 'A' <= c && c <= 'Z':
			b[i] = c - 'A' + 'a'
		}
		upper = c == '-'
	}
	return string(b)
}

// Request is one outbound request.
type Request struct {
	Method string // "" is GET
	URL    string
	Header Header
	Body   []byte
}

// NewRequest returns a request with an empty Header.
func NewRequest(method, url string, body []byte) *Request {
	return &Request{Method: method, URL: url, Header: Header{}, Body: body}
}

// Response is the server's answer. Body must be closed; it is read from
// the host in chunks, and ends at runtime.toml's [http] max_response with
// an *HostError (abi.TooLarge).
type Response struct {
	StatusCode    int
	URL           string // after redirects
	Header        Header
	ContentLength int64 // -1 if unknown
	Redirects     int
	Body          io.ReadCloser
}

// Get sends a GET.
func (Client) Get(url string) (*Response, error) { return HTTP.Do(NewRequest("GET", url, nil)) }

// Post sends a POST with a body of contentType.
func (Client) Post(url, contentType string, body []byte) (*Response, error) {
	r := NewRequest("POST", url, body)
	r.Header.Set("Content-Type", contentType)
	return HTTP.Do(r)
}

// Do sends r. A status of 4xx or 5xx is a Response, not an error; an
// error is the host's (*HostError): abi.Denied (not granted, or an
// address the rules refuse), abi.Invalid (a bad header: CR, LF, NUL, or
// one the host sets), abi.Timeout, abi.TooLarge, abi.Unavailable (no
// answer; a secret the host lacks), abi.Failed (TLS, too many redirects).
func (Client) Do(r *Request) (*Response, error) {
	req := abi.Record{{Key: "method", Value: []byte(r.Method)}, {Key: "url", Value: []byte(r.URL)}}
	for k, vs := range r.Header {
		for _, v := range vs {
			req = append(req, abi.Field{Key: "header." + k, Value: []byte(v)})
		}
	}
	b := abi.AppendRecord(nil, req)
	out, err := call(func(p *byte, c uint32, n *uint32) uint32 { return httpRequest(b, r.Body, p, c, n) })
	if err != nil {
		return nil, err
	}
	rec, err := abi.DecodeRecord(out)
	if err != nil {
		return nil, &HostError{Code: abi.Failed, Msg: "http: malformed reply"}
	}
	resp := &Response{Header: Header{}, ContentLength: -1}
	body := &httpBody{}
	for _, f := range rec {
		v := string(f.Value)
		switch {
		case f.Key == "status":
			resp.StatusCode, _ = strconv.Atoi(v)
		case f.Key == "url":
			resp.URL = v
		case f.Key == "body":
			body.h = v
		case f.Key == "content_length":
			resp.ContentLength, _ = strconv.ParseInt(v, 10, 64)
		case f.Key == "redirects":
			resp.Redirects, _ = strconv.Atoi(v)
		case strings.HasPrefix(f.Key, "header."):
			k := f.Key[len("header."):]
			resp.Header[k] = append(resp.Header[k], v)
		}
	}
	resp.Body = body
	return resp, nil
}

// httpBody reads a response body from the host, one chunk per call. It
// closes the host's handle at the end, so a body read to its end needs no
// Close (though Close is always safe).
type httpBody struct {
	h      string // the host's handle, as the reply's "body" field gave it
	closed bool
	err    error
}

func (b *httpBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if len(p) == 0 {
		return 0, nil
	}
	var n uint32
	e := httpBodyRead(b.h, &p[0], uint32(len(p)), &n) // at most len(p): nothing is left pending
	switch {
	case e != 0:
		msg := ""
		if n <= uint32(len(p)) {
			msg = string(p[:n])
		} else {
			buf := make([]byte, n)
			if resultRead(buf) == nil {
				msg = string(buf)
			}
		}
		b.err, b.closed = &HostError{Code: abi.Errno(e), Msg: msg}, true // the host closed it
		return 0, b.err
	case n == 0:
		b.err = io.EOF
		b.Close()
		return 0, io.EOF
	}
	return int(n), nil
}

func (b *httpBody) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	if b.err == nil {
		b.err = &HostError{Code: abi.Invalid, Msg: "http: read on a closed body"}
	}
	call(func(p *byte, c uint32, n *uint32) uint32 { return httpBodyClose(b.h, p, c, n) })
	return nil
}
