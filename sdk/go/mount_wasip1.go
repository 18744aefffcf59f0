//go:build wasip1

package airlock

import "unsafe"

//go:wasmimport airlock_mount_v1 mount
func mountMountRaw(req unsafe.Pointer, n uint32, out *byte, cap uint32, outLen *uint32) uint32

//go:wasmimport airlock_mount_v1 unmount
func mountUnmountRaw(target unsafe.Pointer, n uint32, out *byte, cap uint32, outLen *uint32) uint32

//go:wasmimport airlock_mount_v1 list
func mountListRaw(out *byte, cap uint32, outLen *uint32) uint32

func mountMount(req []byte, out *byte, cap uint32, n *uint32) uint32 {
	return mountMountRaw(reqPtr(req), uint32(len(req)), out, cap, n)
}

func mountUnmount(target string, out *byte, cap uint32, n *uint32) uint32 {
	return mountUnmountRaw(unsafe.Pointer(unsafe.StringData(target)), uint32(len(target)), out, cap, n)
}

func mountList(out *byte, cap uint32, n *uint32) uint32 { return mountListRaw(out, cap, n) }
