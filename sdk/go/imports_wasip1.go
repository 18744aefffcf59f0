//go:build wasip1

package airlock

import "unsafe"

//go:wasmimport airlock_v1 log
func hostLogRaw(level int32, ptr unsafe.Pointer, n uint32) uint32

//go:wasmimport airlock_v1 log_fields
func hostLogFieldsRaw(level int32, ptr unsafe.Pointer, n uint32, fields *byte, fn uint32) uint32

//go:wasmimport airlock_v1 config_get
func configGetRaw(kp unsafe.Pointer, kn uint32, out *byte, cap uint32, n *uint32) uint32

//go:wasmimport airlock_v1 clock_now
func clockNowRaw(out *uint64) uint32

//go:wasmimport airlock_v1 sleep
func sleep(ns int64) uint32

//go:wasmimport airlock_v1 deadline
func deadlineRaw(out *uint64) uint32

//go:wasmimport airlock_v1 result_read
func resultReadRaw(out *byte, cap uint32, n *uint32) uint32

// The version marker: the host refuses a module without it.
//
//go:wasmexport airlock_abi_v1
func abiV1() {}

//go:wasmexport airlock_on_event
func onEvent(kind uint32, n uint32) int32 { return dispatch(kind, n) }

func hostLog(level int32, msg string) {
	hostLogRaw(level, unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)))
}

func hostLogFields(level int32, msg string, fields []byte) {
	hostLogFieldsRaw(level, unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)), unsafe.SliceData(fields), uint32(len(fields)))
}

func configGet(key string, out *byte, cap uint32, n *uint32) uint32 {
	return configGetRaw(unsafe.Pointer(unsafe.StringData(key)), uint32(len(key)), out, cap, n)
}

func clockNow() uint64 {
	var t uint64
	clockNowRaw(&t)
	return t
}

func deadline() uint64 {
	var d uint64
	deadlineRaw(&d)
	return d
}

func resultRead(buf []byte) error {
	var n uint32
	var p *byte
	if len(buf) > 0 {
		p = &buf[0]
	}
	if e := resultReadRaw(p, uint32(len(buf)), &n); e != 0 {
		return &HostError{Code: abiErrno(e), Msg: "result_read"}
	}
	return nil
}
