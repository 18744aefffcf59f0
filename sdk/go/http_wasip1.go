//go:build wasip1

package airlock

import "unsafe"

//go:wasmimport airlock_http_v1 request
func httpRequestRaw(req *byte, n uint32, body *byte, bn uint32, out *byte, cap uint32, outLen *uint32) uint32

//go:wasmimport airlock_http_v1 body_read
func httpBodyReadRaw(h unsafe.Pointer, hn uint32, out *byte, cap uint32, outLen *uint32) uint32

//go:wasmimport airlock_http_v1 body_close
func httpBodyCloseRaw(h unsafe.Pointer, hn uint32, out *byte, cap uint32, outLen *uint32) uint32

func httpRequest(req, body []byte, out *byte, cap uint32, n *uint32) uint32 {
	return httpRequestRaw(unsafe.SliceData(req), uint32(len(req)), unsafe.SliceData(body), uint32(len(body)), out, cap, n)
}

func httpBodyRead(h string, out *byte, cap uint32, n *uint32) uint32 {
	return httpBodyReadRaw(unsafe.Pointer(unsafe.StringData(h)), uint32(len(h)), out, cap, n)
}

func httpBodyClose(h string, out *byte, cap uint32, n *uint32) uint32 {
	return httpBodyCloseRaw(unsafe.Pointer(unsafe.StringData(h)), uint32(len(h)), out, cap, n)
}
