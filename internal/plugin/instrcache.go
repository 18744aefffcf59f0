package plugin

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"

	"github.com/airlockhq/airlock/internal/atomicfile"
	"github.com/airlockhq/airlock/internal/wasmbin"
)

// instrumentCache is a directory (Options.InstrumentCache) of instrument's
// output, so that a warm start compiles the module without CheckCounts and
// instrument: about a third of a Go plugin's load (host/RATIONALE.md). An
// entry is named by the sha256 of the original module and instrumentVersion,
// and holds the instrumented module followed by its CRC-32C, as wazero's
// cache next to it checks its code: a damaged entry is instrumented again
// rather than given to wazero unchecked.
type instrumentCache struct {
	dir string // "" for no cache
	log *slog.Logger
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// module returns what Prepare compiles for the module wasm: instrument's copy
// when it has one, from the cache or made now, and otherwise wasm itself
// (interruptible false), with a warning. An error is CheckCounts' refusal.
// hit says the copy came from the cache, which holds only modules wazero
// has compiled; on a miss, keep stores the copy once Load has compiled it
// (it does nothing for a module not instrumented, or with no cache).
func (c instrumentCache) module(wasm []byte) (out []byte, interruptible, hit bool, keep func(), err error) {
	keep = func() {}
	var path string
	if c.dir != "" {
		path = c.path(wasm)
		// An entry is only ever made from a module that passed both, so
		// a hit needs neither.
		if cached := c.get(path); cached != nil {
			return cached, true, true, keep, nil
		}
	}
	// wazero allocates by the counts a module declares before it reads
	// what they count; a few hostile bytes must not cost the host its memory.
	if err := wasmbin.CheckCounts(wasm); err != nil {
		return nil, false, false, keep, err
	}
	// The watchdog stops a runaway handler through the checks instrument
	// adds. A module it cannot instrument gets wazero's own checks instead,
	// which cost more per call and per loop; see host/RATIONALE.md. It is
	// not cached: instrument refuses it quickly.
	patched, err := wasmbin.Instrument(wasm)
	if err != nil {
		c.log.Warn("module not instrumented for the watchdog; using wazero's slower termination checks", "reason", err.Error())
		return wasm, false, false, keep, nil
	}
	if path != "" {
		keep = func() { c.put(path, patched) }
	}
	return patched, true, false, keep, nil
}

// path is the entry for the module wasm.
func (c instrumentCache) path(wasm []byte) string {
	return filepath.Join(c.dir, fmt.Sprintf("%x.v%d", sha256.Sum256(wasm), wasmbin.InstrumentVersion))
}

// get returns the instrumented module in the entry at path, or nil if there
// is none or it is damaged.
func (c instrumentCache) get(path string) []byte {
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		// A miss. If the directory cannot be made, put says so.
		return nil
	case err != nil:
		c.log.Warn("cannot read the cached instrumented module; instrumenting it again", "file", path, "error", err.Error())
		return nil
	}
	n := len(b) - 4
	if n < 8 || string(b[:8]) != "\x00asm\x01\x00\x00\x00" || crc32.Checksum(b[:n], castagnoli) != binary.LittleEndian.Uint32(b[n:]) {
		c.log.Warn("the cached instrumented module is damaged; instrumenting it again", "file", path)
		return nil
	}
	c.log.Debug("instrumented module from the cache", "file", path)
	return b[:n:n]
}

// put writes the entry at path for the instrumented module wasm. A reader
// finds the whole entry or none. A failure costs only the next load's
// instrument, so it is a warning.
func (c instrumentCache) put(path string, wasm []byte) {
	err := os.MkdirAll(c.dir, 0o700)
	if err == nil {
		entry := binary.LittleEndian.AppendUint32(wasm[:len(wasm):len(wasm)], crc32.Checksum(wasm, castagnoli))
		err = atomicfile.Replace(path, entry, 0o600)
	}
	if err != nil {
		c.log.Warn("cannot cache the instrumented module; the next load will instrument it again", "dir", c.dir, "error", err.Error())
	}
}
