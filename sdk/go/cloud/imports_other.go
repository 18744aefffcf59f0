//go:build !wasip1

package cloud

import "github.com/airlockhq/airlock/sdk/go/abi"

// Outside wasm there is no host: every call reports abi.Unavailable, so a
// plugin's logic compiles and can be unit-tested natively.
func hostCall(_ string, _ []byte, _ *byte, _ uint32, n *uint32) uint32 {
	*n = 0
	return uint32(abi.Unavailable)
}
