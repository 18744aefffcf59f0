//go:build !wasip1

package airlock

import (
	"fmt"
	"os"
	"time"

	"github.com/airlockhq/airlock/sdk/go/abi"
)

// Outside wasm there is no host: these stand-ins let a plugin's pure logic
// compile and be unit-tested natively. Logs go to stderr; every host call
// reports abi.Unavailable.

func hostLog(level int32, msg string)                 { fmt.Fprintf(os.Stderr, "[%d] %s\n", level, msg) }
func configGet(string, *byte, uint32, *uint32) uint32 { return uint32(abi.Unavailable) }
func clockNow() uint64                                { return uint64(time.Now().UnixNano()) }
func sleep(ns int64) uint32                           { time.Sleep(time.Duration(ns)); return 0 }
func deadline() uint64                                { return uint64(24 * time.Hour) }
func resultRead([]byte) error                         { return &HostError{Code: abi.Unavailable} }

// hostLogFields writes the fields after the message, as key="value".
func hostLogFields(level int32, msg string, fields []byte) {
	r, _ := abi.DecodeRecord(fields)
	for _, f := range r {
		msg += fmt.Sprintf(" %s=%q", f.Key, f.Value)
	}
	hostLog(level, msg)
}
