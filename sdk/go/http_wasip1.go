//go:build wasip1

package airlock

import "unsafe"

//go:wasmimport airlock_http_v1 request
func httpRequestRaw(req *byte, n uint32, body *byte, bn uint32, out *byte, cap uint32, outLen *uint32) uint32

//go:wasmimport airlock_http_v1 body_read
func httpBodyRead(h uint32, out *byte, cap uint32, n *uint32) uint32

//go:wasmimport airlock_http_v1 body_close
func httpBodyClose(h uint32) uint32

func httpRequest(req, body []byte, out *byte, cap uint32, n *uint32) uint32 {
	return httpRequestRaw(unsafe.SliceData(req), uint32(len(req)), unsafe.SliceData(body), uint32(len(body)), out, cap, n)
}
