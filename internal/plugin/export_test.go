package plugin

import "github.com/tetratelabs/wazero/api"

// InstrumentCacheEntry is the file that Options.InstrumentCache = dir keeps
// the module wasm's instrumented copy in: that copy, then its CRC-32C.
func InstrumentCacheEntry(dir string, wasm []byte) string {
	return instrumentCache{dir: dir}.path(wasm)
}

// Interruptible reports whether p's module carries instrument's checks.
func (p *Plugin) Interruptible() bool { return p.interruptible }

// HostModule is the host module name as wazero defined it for p.
func (p *Plugin) HostModule(name string) api.Module { return p.runtime.Module(name) }
