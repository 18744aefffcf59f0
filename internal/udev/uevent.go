package udev

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// maxMessage bounds one netlink message. The kernel builds uevents in 2 KiB
// (UEVENT_BUFFER_SIZE) and libudev reads 8 KiB; go-udev reads 32 KiB.
const maxMessage = 32 << 10

// libudev's monitor header (struct udev_monitor_netlink_header in systemd's
// libudev/sd-device): "libudev\0", magic 0xfeedcafe big-endian, then the
// header size and the properties' offset and length in native byte order.
const (
	udevPrefix      = "libudev\x00"
	udevMagic       = 0xfeedcafe
	udevHeaderLen   = 40
	udevMagicOff    = 8
	udevHeaderSzOff = 12
	udevPropsOffOff = 16
	udevPropsLenOff = 20
)

var errMessage = errors.New("malformed uevent message")

// ParseUEvent decodes one netlink uevent message, from the kernel
// ("action@devpath\0KEY=VALUE\0...") or from udevd (libudev header, then
// KEY=VALUE\0 pairs). We parse it ourselves rather than with go-udev's
// netlink.ParseUEvent, which splits the header at every "@" and so drops
// events of devices whose path holds one (device-tree names such as
// /devices/platform/soc@0/...), and which loses the properties' order.
func ParseUEvent(msg []byte) (UEvent, error) {
	var e UEvent
	if len(msg) > maxMessage {
		return e, fmt.Errorf("%w: %d bytes", errMessage, len(msg))
	}
	var props []byte
	var hdrAction, hdrPath string
	if bytes.HasPrefix(msg, []byte(udevPrefix)) {
		if len(msg) < udevHeaderLen || binary.BigEndian.Uint32(msg[udevMagicOff:]) != udevMagic {
			return e, fmt.Errorf("%w: bad libudev header", errMessage)
		}
		hs := binary.NativeEndian.Uint32(msg[udevHeaderSzOff:])
		off := binary.NativeEndian.Uint32(msg[udevPropsOffOff:])
		n := binary.NativeEndian.Uint32(msg[udevPropsLenOff:])
		if hs < udevHeaderLen || uint64(off) < uint64(hs) || uint64(off)+uint64(n) > uint64(len(msg)) {
			return e, fmt.Errorf("%w: libudev header offsets outside the message", errMessage)
		}
		props = msg[off : off+n]
	} else {
		h, rest, ok := bytes.Cut(msg, []byte{0})
		if !ok {
			return e, fmt.Errorf("%w: no header", errMessage)
		}
		a, p, ok := strings.Cut(string(h), "@")
		if !ok || a == "" || !strings.HasPrefix(p, "/") {
			return e, fmt.Errorf("%w: header %q is not action@devpath", errMessage, h)
		}
		hdrAction, hdrPath, props = a, p, rest
	}
	for len(props) > 0 {
		var kv []byte
		kv, props, _ = bytes.Cut(props, []byte{0})
		if len(kv) == 0 {
			continue // padding; libudev ends with \0
		}
		k, v, ok := bytes.Cut(kv, []byte("="))
		if !ok || len(k) == 0 {
			return e, fmt.Errorf("%w: property %q is not KEY=VALUE", errMessage, kv)
		}
		e.set(string(k), string(v))
	}
	if e.Action == "" {
		e.Action = hdrAction
	}
	if e.DevPath == "" {
		e.DevPath = hdrPath
	}
	switch {
	case e.Action == "" || e.DevPath == "":
		return e, fmt.Errorf("%w: no ACTION or DEVPATH", errMessage)
	case !isWord(e.Action) || !strings.HasPrefix(e.DevPath, "/"):
		return e, fmt.Errorf("%w: ACTION=%q DEVPATH=%q", errMessage, e.Action, e.DevPath)
	case hdrAction != "" && (e.Action != hdrAction || e.DevPath != hdrPath):
		return e, fmt.Errorf("%w: header %s@%s disagrees with ACTION=%s DEVPATH=%s", errMessage, hdrAction, hdrPath, e.Action, e.DevPath)
	}
	return e, nil
}

// AppendKernelMessage appends e in the kernel's wire format. It is the
// inverse of ParseUEvent for tests and fuzzing.
func AppendKernelMessage(dst []byte, e *UEvent) []byte {
	dst = append(dst, e.Action+"@"+e.DevPath+"\x00"...)
	for _, f := range e.Record() {
		if len(f.Value) == 0 && f.Key != keyAction && f.Key != keyDevPath {
			if _, ok := e.Props[f.Key]; !ok {
				continue
			}
		}
		dst = append(dst, f.Key...)
		dst = append(dst, '=')
		dst = append(dst, f.Value...)
		dst = append(dst, 0)
	}
	return dst
}

// isWord reports whether s is a lower-case word, as every kernel action is.
// Unknown words pass, so that a newer kernel's action still reaches a
// rule without an action key.
func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return s != ""
}
