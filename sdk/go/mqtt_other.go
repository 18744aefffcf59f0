//go:build !wasip1

package airlock

import "github.com/airlockhq/airlock/sdk/go/abi"

// Outside wasm there is no host to ask: every call reports abi.Unavailable.

func mqttPublish([]byte, []byte, *byte, uint32, *uint32) uint32 { return uint32(abi.Unavailable) }
