// Package abi holds the constants and codecs of airlock's host–guest ABI v1,
// shared by the host and the Go SDK. It has no dependencies, so that any guest
// can import it. abi/ABI.md is the normative description; this file follows it.
package abi

// Errno is the one error space of ABI v1. Every host function returns one as
// its i32 result. Zero means success.
type Errno uint32

const (
	OK          Errno = 0  // success
	Denied      Errno = 1  // the manifest does not grant this operation
	Invalid     Errno = 2  // a malformed or out-of-range argument
	NotFound    Errno = 3  // the named thing does not exist
	Unavailable Errno = 4  // the backend is down or not configured; retry later
	Timeout     Errno = 5  // the handler deadline or the call's timeout passed
	TooLarge    Errno = 6  // a request or reply exceeds its bound
	Locked      Errno = 7  // the device holds an update lock (supervisor 423)
	Failed      Errno = 8  // the backend reported an error; see the message
	Busy        Errno = 9  // the resource is in use (for example EBUSY on unmount)
	Fault       Errno = 10 // a pointer or length outside the guest's memory
	NoResult    Errno = 11 // result_read with nothing pending
)

var errnoNames = [...]string{
	OK:          "ok",
	Denied:      "denied",
	Invalid:     "invalid",
	NotFound:    "not_found",
	Unavailable: "unavailable",
	Timeout:     "timeout",
	TooLarge:    "too_large",
	Locked:      "locked",
	Failed:      "failed",
	Busy:        "busy",
	Fault:       "fault",
	NoResult:    "no_result",
}

// String returns the errno's name as ABI.md spells it.
func (e Errno) String() string {
	if int(e) < len(errnoNames) {
		return errnoNames[e]
	}
	return "errno(" + itoa(uint64(e)) + ")"
}

// Error lets an Errno be used as a Go error.
func (e Errno) Error() string { return e.String() }

func itoa(v uint64) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + v%10)
		v /= 10
		if v == 0 {
			return string(b[i:])
		}
	}
}
