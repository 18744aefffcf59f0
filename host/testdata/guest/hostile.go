package main

import (
	"fmt"

	airlock "github.com/airlockhq/airlock/sdk/go"
)

// Raw imports, so that the guest can pass what the SDK never would.

//go:wasmimport airlock_v1 log
func rawLog(level int32, ptr uint32, n uint32) uint32

//go:wasmimport airlock_v1 config_get
func rawConfigGet(kp, kn, out, cap, outLen uint32) uint32

//go:wasmimport airlock_v1 clock_now
func rawClockNow(out uint32) uint32

//go:wasmimport airlock_v1 deadline
func rawDeadline(out uint32) uint32

//go:wasmimport airlock_v1 result_read
func rawResultRead(out, cap, outLen uint32) uint32

//go:wasmimport airlock_v1 sleep
func rawSleep(ns int64) uint32

// badPointers calls every base function with ranges outside memory and
// logs the errnos; none may trap.
func badPointers() {
	const far = 0xFFFF_FFF0
	res := []uint32{
		rawLog(0, far, 64),
		rawLog(0, 0, 0xFFFF_FFFF),
		rawConfigGet(far, 8, 0, 0, 0),
		rawConfigGet(0, 0, far, 16, far),
		rawClockNow(far),
		rawDeadline(far),
		rawResultRead(far, 16, far),
		rawSleep(-1),
	}
	airlock.Info(fmt.Sprintf("badptr errnos %v", res))
}
