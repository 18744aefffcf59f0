// Command importer imports the test capability's module, so that the host
// must refuse it unless its manifest grants that capability.
package main

import (
	"unsafe"

	airlock "github.com/airlockhq/airlock/sdk/go"
)

//go:wasmimport airlock_test_v1 ping
func ping(p unsafe.Pointer, n uint32, out *byte, cap uint32, outLen *uint32) uint32

func init() {
	airlock.OnStart(func() error {
		msg := "ping"
		res, err := airlock.Call(func(out *byte, cap uint32, n *uint32) uint32 {
			return ping(unsafe.Pointer(unsafe.StringData(msg)), uint32(len(msg)), out, cap, n)
		})
		if err != nil {
			airlock.Info("ping failed: " + err.Error())
			return nil
		}
		airlock.Info("ping replied " + string(res))
		return nil
	})
}

func main() {}
