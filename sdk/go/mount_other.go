//go:build !wasip1

package airlock

import "github.com/airlockhq/airlock/sdk/go/abi"

// Outside wasm there is nothing to mount: every call reports abi.Unavailable.

func mountMount([]byte, *byte, uint32, *uint32) uint32   { return uint32(abi.Unavailable) }
func mountUnmount(string, *byte, uint32, *uint32) uint32 { return uint32(abi.Unavailable) }
func mountList(*byte, uint32, *uint32) uint32            { return uint32(abi.Unavailable) }
