//go:build wasip1

package cloud

import "unsafe"

//go:wasmimport airlock_cloud_v1 call
func callRaw(op unsafe.Pointer, opLen uint32, req unsafe.Pointer, reqLen uint32, out *byte, cap uint32, n *uint32) uint32

func hostCall(op string, req []byte, out *byte, cap uint32, n *uint32) uint32 {
	var rp unsafe.Pointer
	if len(req) > 0 {
		rp = unsafe.Pointer(&req[0])
	}
	return callRaw(unsafe.Pointer(unsafe.StringData(op)), uint32(len(op)), rp, uint32(len(req)), out, cap, n)
}
