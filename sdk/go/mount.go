package airlock

import (
	"strings"

	"github.com/airlockhq/airlock/sdk/go/abi"
)

// Mount is external storage, as the plugin's [[mount]] grants allow it.
// Mounts appear under the plugin's media root (/media unless the grant
// says otherwise), where the plugin reads and writes them with os:
//
//	m, err := airlock.Mount.ByLabel("MEDIA", nil)  // m.Path == "/media/MEDIA"
//	data, err := os.ReadFile(m.Path + "/config.json")
//	err = airlock.Mount.Unmount(m.Target)
//
// The host forces nosuid,nodev,noexec, falls back to read-only when a
// read-write mount is refused (m.ReadOnly, m.Note), and unmounts what the
// plugin left mounted when its instance ends. A source the grant does not
// allow gives a *HostError with abi.Denied; no such device, abi.NotFound;
// a label that two devices share, abi.Invalid.
var Mount Mounts

// Mounts is the type of Mount.
type Mounts struct{}

// MountOptions are optional; nil means the defaults.
type MountOptions struct {
	// FSType is vfat, exfat, ext4, ...; "" uses what the host probed.
	FSType string
	// Target is the name under the media root; "" is the device's label,
	// else its UUID, else its kernel name. A name in use gets -2, -3, ...
	Target string
	// Options are extra mount options the grant allows: "ro", "sync",
	// "uid=1000". "ro" is always allowed.
	Options []string
	// Share offers the mount to these plugins (names as in their
	// plugin.toml). Each must take shares from this plugin in its own
	// [[mount]] grant (from), or the mount is denied. A reader sees it in
	// its media root, read-only unless ShareRW is set and its grant says
	// mode = "rw".
	Share   []string
	ShareRW bool
}

// MountInfo is one of the plugin's mounts.
type MountInfo struct {
	Target   string // name under the media root: "MEDIA", "MEDIA-2"
	Path     string // where the plugin sees it: "/media/MEDIA"
	Source   string // as asked: "label:MEDIA"
	Device   string // "/dev/sdb1"
	FSType   string
	Label    string
	UUID     string
	Options  []string // in effect, forced ones included
	ReadOnly bool
	Note     string // e.g. why it is read-only
	Driver   string // "kernel", or "fuse:HELPER" when a FUSE helper mounted it ("" from older hosts)
	Owner    string // a view of a mount another plugin shared: that plugin ("" for the plugin's own)
	Shared   string // the plugin's own mount: its shares as offered, "reader=ro,other=rw"
}

// MountEvent tells the plugin that the host changed one of its mounts: a
// device pulled out while mounted was unmounted (Action "unmounted"), or
// another plugin shared a mount with it (Action "shared") or its view of
// one went away (Action "unmounted", Owner set).
type MountEvent struct {
	Action string // "unmounted"
	Target string
	Source string
	Device string
	Reason string // "device removed", "loop device detached (losetup -d)"
	Owner  string // a shared mount's owner (Action "shared", or its view "unmounted")
}

// ByLabel mounts the filesystem labelled label.
func (Mounts) ByLabel(label string, o *MountOptions) (MountInfo, error) {
	return Mount.Source("label:"+label, o)
}

// ByUUID mounts the filesystem with that UUID (as blkid prints it).
func (Mounts) ByUUID(uuid string, o *MountOptions) (MountInfo, error) {
	return Mount.Source("uuid:"+uuid, o)
}

// Device mounts the filesystem on a device node, such as "/dev/sdb1".
func (Mounts) Device(node string, o *MountOptions) (MountInfo, error) {
	return Mount.Source("device:"+node, o)
}

// Source mounts "label:X", "uuid:X" or "device:/dev/X".
func (Mounts) Source(source string, o *MountOptions) (MountInfo, error) {
	req := abi.Record{{Key: "source", Value: []byte(source)}}
	if o != nil {
		if o.FSType != "" {
			req = append(req, abi.Field{Key: "fstype", Value: []byte(o.FSType)})
		}
		if o.Target != "" {
			req = append(req, abi.Field{Key: "target", Value: []byte(o.Target)})
		}
		for _, opt := range o.Options {
			req = append(req, abi.Field{Key: "option", Value: []byte(opt)})
		}
		for _, p := range o.Share {
			req = append(req, abi.Field{Key: "share", Value: []byte(p)})
		}
		if o.ShareRW {
			req = append(req, abi.Field{Key: "share_mode", Value: []byte("rw")})
		}
	}
	b := abi.AppendRecord(nil, req)
	out, err := call(func(p *byte, c uint32, n *uint32) uint32 { return mountMount(b, p, c, n) })
	if err != nil {
		return MountInfo{}, err
	}
	infos, err := decodeMounts(out)
	if err != nil || len(infos) != 1 {
		return MountInfo{}, &HostError{Code: abi.Failed, Msg: "mount: malformed reply"}
	}
	return infos[0], nil
}

// Unmount unmounts a target the plugin mounted. A busy mount is detached
// lazily: it goes away when the last open file on it is closed.
func (Mounts) Unmount(target string) error {
	_, err := call(func(p *byte, c uint32, n *uint32) uint32 { return mountUnmount(target, p, c, n) })
	return err
}

// List returns the plugin's mounts.
func (Mounts) List() ([]MountInfo, error) {
	out, err := call(mountList)
	if err != nil {
		return nil, err
	}
	return decodeMounts(out)
}

// OnMount runs h when the host changes one of the plugin's mounts.
func OnMount(h func(MountEvent) error) {
	Handle(abi.EventMount, func(e Event) error {
		return h(MountEvent{Action: e.Get("action"), Target: e.Get("target"), Source: e.Get("source"),
			Device: e.Get("device"), Reason: e.Get("reason"), Owner: e.Get("owner")})
	})
}

// decodeMounts reads a sequence of mount records, each led by "target".
func decodeMounts(b []byte) ([]MountInfo, error) {
	rec, err := abi.DecodeRecord(b)
	if err != nil {
		return nil, err
	}
	var out []MountInfo
	for _, f := range rec {
		v := string(f.Value)
		if f.Key == "target" {
			out = append(out, MountInfo{Target: v})
			continue
		}
		if len(out) == 0 {
			continue
		}
		m := &out[len(out)-1]
		switch f.Key {
		case "path":
			m.Path = v
		case "source":
			m.Source = v
		case "device":
			m.Device = v
		case "fstype":
			m.FSType = v
		case "label":
			m.Label = v
		case "uuid":
			m.UUID = v
		case "options":
			if v != "" {
				m.Options = strings.Split(v, ",")
			}
		case "readonly":
			m.ReadOnly = v == "true"
		case "note":
			m.Note = v
		case "driver":
			m.Driver = v
		case "owner":
			m.Owner = v
		case "shared":
			m.Shared = v
		}
	}
	return out, nil
}
