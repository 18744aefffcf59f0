//go:build !wasip1

package airlock

import "github.com/airlockhq/airlock/sdk/go/abi"

// Outside wasm there is no bus: every D-Bus call reports abi.Unavailable.

func dbusCall([]byte, *byte, uint32, *uint32) uint32             { return uint32(abi.Unavailable) }
func dbusGetProperty([]byte, *byte, uint32, *uint32) uint32      { return uint32(abi.Unavailable) }
func dbusGetAllProperties([]byte, *byte, uint32, *uint32) uint32 { return uint32(abi.Unavailable) }
func dbusSetProperty([]byte, *byte, uint32, *uint32) uint32      { return uint32(abi.Unavailable) }
