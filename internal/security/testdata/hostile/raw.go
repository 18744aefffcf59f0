package main

import "unsafe"

// Raw imports of every host function of every airlock module, so that the
// guest can pass what no SDK would. The test compares this table with the
// host's own list (each capability's Functions()), so that a new host
// function cannot be left out of the out-of-bounds sweep.

//go:wasmimport airlock_v1 log
func rawLog(level, ptr, n uint32) uint32

//go:wasmimport airlock_v1 log_fields
func rawLogFields(level, ptr, n, fields, fn uint32) uint32

//go:wasmimport airlock_v1 config_get
func rawConfigGet(kp, kn, out, cap, outLen uint32) uint32

//go:wasmimport airlock_v1 clock_now
func rawClockNow(out uint32) uint32

//go:wasmimport airlock_v1 sleep
func rawSleep(ns int64) uint32

//go:wasmimport airlock_v1 deadline
func rawDeadline(out uint32) uint32

//go:wasmimport airlock_v1 result_read
func rawResultRead(out, cap, outLen uint32) uint32

//go:wasmimport airlock_supervisor_v1 call
func rawSupervisorCall(op, opLen, req, reqLen, out, cap, outLen uint32) uint32

//go:wasmimport airlock_cloud_v1 call
func rawCloudCall(op, opLen, req, reqLen, out, cap, outLen uint32) uint32

//go:wasmimport airlock_dbus_v1 call
func rawDBusCall(req, reqLen, out, cap, outLen uint32) uint32

//go:wasmimport airlock_dbus_v1 get_property
func rawDBusGetProperty(req, reqLen, out, cap, outLen uint32) uint32

//go:wasmimport airlock_dbus_v1 get_all_properties
func rawDBusGetAll(req, reqLen, out, cap, outLen uint32) uint32

//go:wasmimport airlock_dbus_v1 set_property
func rawDBusSetProperty(req, reqLen, out, cap, outLen uint32) uint32

//go:wasmimport airlock_mount_v1 mount
func rawMount(req, reqLen, out, cap, outLen uint32) uint32

//go:wasmimport airlock_mount_v1 unmount
func rawUnmount(target, targetLen, out, cap, outLen uint32) uint32

//go:wasmimport airlock_mount_v1 list
func rawMountList(out, cap, outLen uint32) uint32

//go:wasmimport airlock_http_v1 request
func rawHTTPRequest(req, reqLen, body, bodyLen, out, cap, outLen uint32) uint32

//go:wasmimport airlock_http_v1 body_read
func rawHTTPBodyRead(body, bodyLen, out, cap, outLen uint32) uint32

//go:wasmimport airlock_http_v1 body_close
func rawHTTPBodyClose(body, bodyLen, out, cap, outLen uint32) uint32

//go:wasmimport wasi_snapshot_preview1 poll_oneoff
func rawPollOneoff(in, out, n, nevents uint32) uint32

// pollSleep asks WASI's poll_oneoff for one relative clock sleep of ns,
// as a C or Rust guest's sleep does.
func pollSleep(ns uint64) uint32 {
	var sub [48]byte
	var ev [32]byte
	var nevents uint32
	sub[8] = 0  // a clock subscription
	sub[16] = 1 // CLOCK_MONOTONIC
	for i := range 8 {
		sub[24+i] = byte(ns >> (8 * i))
	}
	return rawPollOneoff(uint32(uintptr(unsafe.Pointer(&sub[0]))), uint32(uintptr(unsafe.Pointer(&ev[0]))), 1, uint32(uintptr(unsafe.Pointer(&nevents))))
}

// Kinds of i32 parameter, for building bad arguments:
// i: a plain integer, p: an input pointer, n: its length,
// o: an output pointer, c: its capacity, l: the out_len pointer,
// w: a u64 output pointer, t: an i64 duration.
type rawFunc struct {
	module, name, kinds string
	call                func(a []uint32) uint32
}

var rawFuncs = []rawFunc{
	{"airlock_v1", "log", "ipn", func(a []uint32) uint32 { return rawLog(a[0], a[1], a[2]) }},
	{"airlock_v1", "log_fields", "ipnpn", func(a []uint32) uint32 { return rawLogFields(a[0], a[1], a[2], a[3], a[4]) }},
	{"airlock_v1", "config_get", "pnocl", func(a []uint32) uint32 { return rawConfigGet(a[0], a[1], a[2], a[3], a[4]) }},
	{"airlock_v1", "clock_now", "w", func(a []uint32) uint32 { return rawClockNow(a[0]) }},
	{"airlock_v1", "sleep", "t", func(a []uint32) uint32 { return rawSleep(int64(int32(a[0]))) }},
	{"airlock_v1", "deadline", "w", func(a []uint32) uint32 { return rawDeadline(a[0]) }},
	{"airlock_v1", "result_read", "ocl", func(a []uint32) uint32 { return rawResultRead(a[0], a[1], a[2]) }},
	{"airlock_supervisor_v1", "call", "pnpnocl", func(a []uint32) uint32 {
		return rawSupervisorCall(a[0], a[1], a[2], a[3], a[4], a[5], a[6])
	}},
	{"airlock_cloud_v1", "call", "pnpnocl", func(a []uint32) uint32 { return rawCloudCall(a[0], a[1], a[2], a[3], a[4], a[5], a[6]) }},
	{"airlock_dbus_v1", "call", "pnocl", func(a []uint32) uint32 { return rawDBusCall(a[0], a[1], a[2], a[3], a[4]) }},
	{"airlock_dbus_v1", "get_property", "pnocl", func(a []uint32) uint32 { return rawDBusGetProperty(a[0], a[1], a[2], a[3], a[4]) }},
	{"airlock_dbus_v1", "get_all_properties", "pnocl", func(a []uint32) uint32 { return rawDBusGetAll(a[0], a[1], a[2], a[3], a[4]) }},
	{"airlock_dbus_v1", "set_property", "pnocl", func(a []uint32) uint32 { return rawDBusSetProperty(a[0], a[1], a[2], a[3], a[4]) }},
	{"airlock_mount_v1", "mount", "pnocl", func(a []uint32) uint32 { return rawMount(a[0], a[1], a[2], a[3], a[4]) }},
	{"airlock_mount_v1", "unmount", "pnocl", func(a []uint32) uint32 { return rawUnmount(a[0], a[1], a[2], a[3], a[4]) }},
	{"airlock_mount_v1", "list", "ocl", func(a []uint32) uint32 { return rawMountList(a[0], a[1], a[2]) }},
	{"airlock_http_v1", "request", "pnpnocl", func(a []uint32) uint32 {
		return rawHTTPRequest(a[0], a[1], a[2], a[3], a[4], a[5], a[6])
	}},
	{"airlock_http_v1", "body_read", "pnocl", func(a []uint32) uint32 { return rawHTTPBodyRead(a[0], a[1], a[2], a[3], a[4]) }},
	{"airlock_http_v1", "body_close", "pnocl", func(a []uint32) uint32 { return rawHTTPBodyClose(a[0], a[1], a[2], a[3], a[4]) }},
}
