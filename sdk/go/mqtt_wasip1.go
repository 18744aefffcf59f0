//go:build wasip1

package airlock

import "unsafe"

//go:wasmimport airlock_mqtt_v1 publish
func mqttPublishRaw(req *byte, n uint32, payload *byte, pn uint32, out *byte, cap uint32, outLen *uint32) uint32

func mqttPublish(req, payload []byte, out *byte, cap uint32, n *uint32) uint32 {
	return mqttPublishRaw(unsafe.SliceData(req), uint32(len(req)), unsafe.SliceData(payload), uint32(len(payload)), out, cap, n)
}
