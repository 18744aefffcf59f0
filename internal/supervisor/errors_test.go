package supervisor

import (
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/airlockhq/airlock/abi"
)

// decodeCases are the reply shapes seen from the supervisor, each with what
// the guest must get. They double as the fuzz seeds.
var decodeCases = []struct {
	status int
	body   string
	code   abi.Errno
	msg    string
}{
	{503, `{"status":"failed","message":"Unexpected token } in JSON at position 10"}`, abi.Failed, "Unexpected token } in JSON at position 10"},
	{423, `{"status":"failed","message":"Updates are locked"}`, abi.Locked, "Updates are locked"},
	{500, `{"Data":"","Error":"Could not reboot: dbus timeout"}`, abi.Failed, "Could not reboot: dbus timeout"},
	{500, `{"Data":"","Error":null}`, abi.Failed, "internal server error"},
	{400, "Missing app id", abi.Invalid, "Missing app id"},
	{404, "Service not found, a container must exist for this endpoint to work", abi.NotFound, "Service not found, a container must exist for this endpoint to work"},
	{404, "<!DOCTYPE html>\n<html><body><pre>Cannot GET /v9/x</pre></body></html>", abi.NotFound, "Cannot GET /v9/x"},
	{401, "Unauthorized", abi.Denied, deniedMessage},
	{401, `{"status":"failed","message":"Application is not available"}`, abi.Denied, scopeMessage + " (Application is not available)"},
	{409, `{"status":"failed","message":"out of scope"}`, abi.Busy, "out of scope"},
	{504, "", abi.Timeout, "gateway timeout"},
	{503, "", abi.Failed, "service unavailable"},
	{599, "", abi.Failed, "unexpected reply"},
	{503, `"a JSON string"`, abi.Failed, "a JSON string"},
	{503, "line one\r\n\tline two\x00\x1b[31m", abi.Failed, "line one line two [31m"},
	{503, "\xff\xfe bad utf8", abi.Failed, "\uFFFD bad utf8"},
	{503, `{"message":42,"error":"fallback"}`, abi.Failed, "fallback"},
	{503, `{"unrelated":true}`, abi.Failed, "service unavailable"},
	{503, `{"status":"failed","message":"` + strings.Repeat("é", 300) + `"}`, abi.Failed, strings.Repeat("é", 126) + "…"},
}

func TestDecodeError(t *testing.T) {
	for _, tc := range decodeCases {
		e := decodeError("reboot", tc.status, []byte(tc.body))
		if e.Code != tc.code || e.Message != tc.msg || e.Status != tc.status || e.Op != "reboot" {
			t.Errorf("decodeError(%d, %q) = {%s %q}, want {%s %q}", tc.status, tc.body, e.Code, e.Message, tc.code, tc.msg)
		}
	}
}

func TestStatusErrno(t *testing.T) {
	cases := map[int]abi.Errno{
		400: abi.Invalid, 401: abi.Denied, 403: abi.Denied, 404: abi.NotFound, 409: abi.Busy,
		413: abi.Invalid, 423: abi.Locked, 429: abi.Busy, 408: abi.Timeout, 504: abi.Timeout,
		500: abi.Failed, 502: abi.Failed, 503: abi.Failed, 418: abi.Failed,
	}
	for status, want := range cases {
		if got := statusErrno(status); got != want {
			t.Errorf("statusErrno(%d) = %s, want %s", status, got, want)
		}
	}
}

func TestErrorText(t *testing.T) {
	e := &Error{Op: "reboot", Status: 423, Code: abi.Locked, Message: "Updates are locked", endpoint: "POST /v1/reboot"}
	want := "supervisor reboot (POST /v1/reboot): locked (HTTP 423): Updates are locked"
	if e.Error() != want {
		t.Fatalf("%q, want %q", e.Error(), want)
	}
}

// FuzzDecodeError feeds the error decoder arbitrary replies. Whatever the
// peer sends, the guest must get a non-OK code and a short, printable,
// valid UTF-8 message, and a 401 must always read as the host's key or its
// scope.
func FuzzDecodeError(f *testing.F) {
	for _, tc := range decodeCases {
		f.Add(tc.status, []byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := decodeError("device.read", status, body)
		if e.Code == abi.OK {
			t.Fatalf("status %d gave OK", status)
		}
		if status == http.StatusUnauthorized && (e.Code != abi.Denied || e.Message != deniedMessage && !strings.HasPrefix(e.Message, scopeMessage)) {
			t.Fatalf("401 gave %s %q", e.Code, e.Message)
		}
		if e.Message == "" || len(e.Message) > maxMessage || !utf8.ValidString(e.Message) {
			t.Fatalf("message %q (len %d)", e.Message, len(e.Message))
		}
		for _, r := range e.Message {
			if unicode.IsControl(r) || (unicode.IsSpace(r) && r != ' ') {
				t.Fatalf("message %q holds control or odd space %U", e.Message, r)
			}
		}
		if strings.HasPrefix(e.Message, " ") || strings.HasSuffix(e.Message, " ") || strings.Contains(e.Message, "  ") {
			t.Fatalf("message %q is not collapsed", e.Message)
		}
		_ = e.Error()
	})
}
