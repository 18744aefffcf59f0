package host

import (
	"context"
	"fmt"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"

	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/plugin"
	"github.com/airlockhq/airlock/internal/sandboxfs"
)

// dataFS makes the sandboxed file systems of m's directories: its /data
// with its quota and the runtime's file bound, the others (capabilities'
// directories, such as mount's media root) with the open-file bound only,
// read-only when the capability says so (a read-only shared directory).
// A refusal is audited as a denial of capability "storage", so that the
// operator reads which bound the plugin ran into (the guest reads EIO).
func (h *Host) dataFS(m *manifest.Manifest) func(dir string, readOnly bool) experimentalsys.FS {
	data := plugin.DataDir(h.rt, m)
	return func(dir string, readOnly bool) experimentalsys.FS {
		o := sandboxfs.Options{ReadOnly: readOnly, OnLimit: func(what string) { h.storageDenied(m, dir, what) }}
		if dir == data {
			o.Quota, o.MaxFiles = int64(m.Quota), int64(h.rt.Storage.Files)
		}
		return sandboxfs.New(dir, o)
	}
}

func (h *Host) storageDenied(m *manifest.Manifest, dir, what string) {
	var op, reason string
	switch what {
	case "bytes":
		op, reason = "write /data", fmt.Sprintf("the /data quota of %s is used up (raise [storage] quota in plugin.toml, up to storage.quota_ceiling in %s)", m.Quota, h.rt.File)
	case "files":
		op, reason = "create /data", fmt.Sprintf("/data holds %d files and directories, the bound (storage.files in %s)", h.rt.Storage.Files, h.rt.File)
	default:
		op, reason = "open "+dir, fmt.Sprintf("the plugin holds %d files open there, the bound; it must close some", sandboxfs.DefaultMaxOpen)
	}
	h.gate.Check(context.Background(), m.Name, "storage", op, gate.Deny(reason))
}
