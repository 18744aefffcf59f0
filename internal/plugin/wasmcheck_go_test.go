package plugin_test

import (
	"os"
	"testing"

	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/wasmbin"
)

// BenchmarkCheckCountsGo measures CheckCounts on a standard Go module
// (about 2.7 MB), which it walks instruction by instruction; Load runs it
// when the instrumented module is not in Options.InstrumentCache.
func BenchmarkCheckCountsGo(b *testing.B) {
	wasm, err := os.ReadFile(testenv.BuildGo(b, "examples/hello"))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(wasm)))
	b.ReportAllocs()
	for b.Loop() {
		if err := wasmbin.CheckCounts(wasm); err != nil {
			b.Fatal(err)
		}
	}
}
