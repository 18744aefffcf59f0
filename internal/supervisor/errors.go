package supervisor

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/airlockhq/airlock/abi"
)

// maxMessage bounds the supervisor text we pass on: it ends up in guest
// memory and in logs, and the supervisor can echo arbitrary input.
const maxMessage = 256

// deniedMessage is what a 401 becomes. The supervisor's own body says only
// "Unauthorized"; the plugin author needs to know it is the host's key, not
// their grant, that failed.
const deniedMessage = "the supervisor refused the host's API key; check BALENA_SUPERVISOR_API_KEY in the device or runtime.toml"

// scopeMessage is what a route's own 401 becomes: the key was accepted, but
// the application id the host sent is not the one the key is scoped to.
const scopeMessage = "the supervisor's key is not scoped to the application the host named; check BALENA_APP_ID or app_id in runtime.toml"

// failedMessage returns the message of a {"status":"failed","message":...}
// body, or "".
func failedMessage(body []byte) string {
	var v struct{ Status, Message string }
	if json.Unmarshal(bytes.TrimSpace(body), &v) != nil || v.Status != "failed" {
		return ""
	}
	return v.Message
}

// Error is a failed supervisor call, already in the ABI's error space.
// Message never contains the API key.
type Error struct {
	Op      string    // the grant name of the operation, e.g. "reboot"
	Status  int       // the HTTP status, or 0 when no reply came
	Code    abi.Errno // what the guest sees
	Message string    // why, in words fit for a plugin log

	endpoint string // "POST /v1/reboot", for the error text
	err      error  // the transport cause, with the key scrubbed
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("supervisor ")
	b.WriteString(e.Op)
	if e.endpoint != "" {
		b.WriteString(" (" + e.endpoint + ")")
	}
	b.WriteString(": ")
	b.WriteString(e.Code.String())
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap returns the transport cause, if any, so that errors.Is finds
// context.DeadlineExceeded and friends.
func (e *Error) Unwrap() error { return e.err }

// Is makes errors.Is(err, abi.Locked) and the like work on an *Error.
func (e *Error) Is(target error) bool {
	code, ok := target.(abi.Errno)
	return ok && code == e.Code
}

// Errno returns the ABI code of err: OK for nil, the Code of an *Error, and
// Failed for anything else.
func Errno(err error) abi.Errno {
	if err == nil {
		return abi.OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return abi.Failed
}

// statusErrno maps an HTTP status onto the ABI. The supervisor answers 503
// for any error its handlers did not foresee (including a malformed body),
// so 503 means "it failed", not "try later": Failed, with its message.
func statusErrno(status int) abi.Errno {
	switch status {
	case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnprocessableEntity:
		return abi.Invalid
	case http.StatusUnauthorized, http.StatusForbidden:
		return abi.Denied
	case http.StatusNotFound:
		return abi.NotFound
	case http.StatusLocked:
		return abi.Locked
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return abi.Timeout
	case http.StatusTooManyRequests, http.StatusConflict:
		return abi.Busy
	}
	return abi.Failed
}

// decodeError turns a non-2xx reply into an *Error. The supervisor answers
// errors in three shapes: {"status":"failed","message":...} from its generic
// handler, {"Data":...,"Error":...} from the v1 routes written in Go long
// ago, and plain text. Any body, however hostile, yields a short, printable
// message.
func decodeError(op string, status int, body []byte) *Error {
	e := &Error{Op: op, Status: status, Code: statusErrno(status)}
	if status == http.StatusUnauthorized {
		// The auth middleware refuses a key with a plain "Unauthorized";
		// the routes' scope checks answer JSON: the key is good, the app
		// id is not its app.
		e.Message = deniedMessage
		if msg := failedMessage(body); msg != "" {
			e.Message = cleanMessage(scopeMessage + " (" + msg + ")")
		}
		return e
	}
	e.Message = cleanMessage(errorText(body))
	if e.Message == "" {
		e.Message = strings.ToLower(http.StatusText(status))
	}
	if e.Message == "" {
		e.Message = "unexpected reply"
	}
	return e
}

// errorText picks the human part out of an error body.
func errorText(body []byte) string {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return ""
	}
	if body[0] == '{' {
		var m map[string]json.RawMessage
		if json.Unmarshal(body, &m) == nil {
			for _, k := range []string{"message", "Error", "error", "Data"} {
				if s := jsonString(m[k]); s != "" {
					return s
				}
			}
			return ""
		}
	}
	if body[0] == '"' {
		if s := jsonString(body); s != "" {
			return s
		}
	}
	if bytes.HasPrefix(body, []byte("<")) {
		return stripTags(string(body))
	}
	return string(body)
}

func jsonString(raw json.RawMessage) string {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return ""
	}
	return s
}

// stripTags keeps the text of an HTML error page (express answers unknown
// routes with "<pre>Cannot GET /x</pre>").
func stripTags(s string) string {
	var b strings.Builder
	in := false
	for _, r := range s {
		switch {
		case r == '<':
			in = true
			b.WriteRune(' ')
		case r == '>':
			in = false
		case !in:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cleanMessage makes text safe to log and to hand to a guest: valid UTF-8,
// no control characters, collapsed spaces, at most maxMessage bytes.
func cleanMessage(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	var b strings.Builder
	space := false
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	out := b.String()
	if len(out) > maxMessage {
		cut := maxMessage - len("…")
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut] + "…"
	}
	return out
}

// redact removes the key from text, raw and in the escaped forms a URL's
// query or path gives it. The key reaches a URL only as ?apikey= (a key the
// Authorization header cannot carry), and the supervisor or a proxy could
// echo it back in any form.
func redact(s, key string) string {
	if key == "" {
		return s
	}
	s = strings.ReplaceAll(s, key, "[redacted]")
	for _, esc := range []string{url.QueryEscape(key), url.PathEscape(key)} {
		if esc != key {
			s = strings.ReplaceAll(s, esc, "[redacted]")
		}
	}
	return s
}

// Errno returns the ABI code, so that capability.ErrnoOf maps an *Error
// without knowing this package.
func (e *Error) Errno() abi.Errno { return e.Code }
