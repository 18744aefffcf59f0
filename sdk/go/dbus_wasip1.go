//go:build wasip1

package airlock

import "unsafe"

//go:wasmimport airlock_dbus_v1 call
func dbusCallRaw(req unsafe.Pointer, n uint32, out *byte, cap uint32, outLen *uint32) uint32

//go:wasmimport airlock_dbus_v1 get_property
func dbusGetPropertyRaw(req unsafe.Pointer, n uint32, out *byte, cap uint32, outLen *uint32) uint32

//go:wasmimport airlock_dbus_v1 get_all_properties
func dbusGetAllPropertiesRaw(req unsafe.Pointer, n uint32, out *byte, cap uint32, outLen *uint32) uint32

//go:wasmimport airlock_dbus_v1 set_property
func dbusSetPropertyRaw(req unsafe.Pointer, n uint32, out *byte, cap uint32, outLen *uint32) uint32

func reqPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return nil
	}
	return unsafe.Pointer(&b[0])
}

func dbusCall(req []byte, out *byte, cap uint32, n *uint32) uint32 {
	return dbusCallRaw(reqPtr(req), uint32(len(req)), out, cap, n)
}

func dbusGetProperty(req []byte, out *byte, cap uint32, n *uint32) uint32 {
	return dbusGetPropertyRaw(reqPtr(req), uint32(len(req)), out, cap, n)
}

func dbusGetAllProperties(req []byte, out *byte, cap uint32, n *uint32) uint32 {
	return dbusGetAllPropertiesRaw(reqPtr(req), uint32(len(req)), out, cap, n)
}

func dbusSetProperty(req []byte, out *byte, cap uint32, n *uint32) uint32 {
	return dbusSetPropertyRaw(reqPtr(req), uint32(len(req)), out, cap, n)
}
