// Package mount is the "mount" capability: plugins mount and unmount
// external storage (USB sticks, SD cards) by label, UUID or device, inside
// a media root of their own that they see at /media, within what their
// [[mount]] grants allow. The host resolves sources by probing, forces
// nosuid,nodev,noexec, and cleans up after plugins and vanished devices.
package mount

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/blockdev"
	"github.com/airlockhq/airlock/internal/devnode"

	"github.com/moby/sys/mountinfo"
)

// Mount is the capability. Create it with New.
type Mount struct {
	opts Options

	// Set by Provision; read-only after.
	base    string // absolute <state_dir>/media; plugin p's media root is base/p
	tmpBase string // absolute <state_dir>/tmp; see tmp.go
	be      backend
	log     *slog.Logger
	sim     bool
	disks   *Config // runtime.toml's [mount]; nil means the defaults
	deliver capability.Deliver
	stop    context.CancelFunc
	wg      sync.WaitGroup
	watch   sync.Once // subscribes to the device table at the first user

	// mu guards everything below. It is held for a whole mount or unmount,
	// so that "already mounted" and collision checks cannot race.
	mu      sync.Mutex
	held    map[string]*held     // by host path of the mount point
	users   int                  // plugins that import the module
	unwatch func()               // ends the subscription to the device table
	events  chan blockdev.Change // block devices' adds and removes, to the worker
	// Scratch /tmp of plugins with [storage] tmp (tmp.go).
	tmps     []*scratch
	tmpLoads map[string]int // loads so far, by plugin: names each load's directory
	// Shared mounts (share.go): plugins with a [[mount]] grant, and the
	// views of owners' mounts in readers' media roots, by host path.
	readers map[string]reader
	views   map[string]*held
}

// Options configure New.
type Options struct {
	// CheckEvery is how often the real backend looks for mounted devices
	// that went away without a uevent reaching us (a detach that waits
	// for our mount, lost netlink messages). Zero means 2s.
	CheckEvery time.Duration
	// DevDir is where the real backend looks for a device's node first;
	// "" means /dev. A device whose node is missing there, or names
	// another device, gets one made in <state_dir>/dev (internal/devnode).
	DevDir string
	// Sticks are extra USB sticks of the simulated device, absent until
	// SimStick plugs them in (plugintest, airlock test's [[stick]]).
	Sticks []Stick
	// Devices is the block-device table that the udev capability feeds
	// (udev's Devices()): mounts look devices up in it, and hear of
	// devices that vanish. nil: a table of the capability's own, which
	// reads sysfs at each mount but hears no uevents.
	Devices *blockdev.Table
}

// held is one mount made for a plugin.
type held struct {
	plugin   string
	name     string // target name under the plugin's media root
	path     string // host path of the mount point
	guest    string // guest path: /media/NAME
	source   string // as the plugin asked
	dev      Device
	fstype   string
	driver   string // "kernel" or "fuse:HELPER" (driver.String)
	options  []string
	readOnly bool
	note     string
	from     *held  // a reader's view: the owner's mount it shows (share.go)
	shared   string // an owner's mount: its shares as offered, "reader=ro,..."
}

// New returns the capability, unprovisioned.
func New(o Options) *Mount {
	if o.CheckEvery <= 0 {
		o.CheckEvery = 2 * time.Second
	}
	if o.Devices == nil {
		o.Devices = blockdev.New()
	}
	return &Mount{opts: o, log: slog.New(slog.DiscardHandler), held: map[string]*held{}, tmpLoads: map[string]int{},
		readers: map[string]reader{}, views: map[string]*held{}, events: make(chan blockdev.Change, 256)}
}

var (
	_ capability.Capability    = (*Mount)(nil)
	_ capability.Provisioner   = (*Mount)(nil)
	_ capability.Configurer    = (*Mount)(nil)
	_ capability.Closer        = (*Mount)(nil)
	_ capability.Preopener     = (*Mount)(nil)
	_ capability.InstanceEnder = (*Mount)(nil)
)

// grant is the plugin's [[mount]] grant.
var grant = capability.GrantKey[*Grant]("mount")

func (*Mount) Name() string   { return grant.Name() }
func (*Mount) Module() string { return abi.ModuleMount }

// DecodeGrant decodes plugin.toml's [[mount]] tables into a *Grant.
func (*Mount) DecodeGrant(s manifest.Section) (any, error) { return decodeGrant(s) }

// Provision picks the backend, reconciles leftovers of an earlier run with
// the mount table, and starts the worker that handles vanished devices.
func (m *Mount) Provision(ctx context.Context, env capability.Env) error {
	if env.Logger != nil {
		m.log = env.Logger
	}
	state := "."
	if env.Runtime != nil && env.Runtime.StateDir != "" {
		state = env.Runtime.StateDir
	}
	base, err := filepath.Abs(filepath.Join(state, "media"))
	if err != nil {
		return err
	}
	if err := os.MkdirAll(base, 0o755); err != nil {
		return fmt.Errorf("media directory: %w", err)
	}
	m.base, m.sim, m.deliver = base, env.Sim, env.Deliver
	m.disks, _ = env.Config.(*Config)
	m.tmpBase = filepath.Join(filepath.Dir(base), "tmp")
	if env.Sim {
		m.be, err = newSimBackend(filepath.Join(filepath.Dir(base), "sim-devices"), m.opts.Sticks)
	} else {
		devDir := m.opts.DevDir
		if devDir == "" {
			devDir = "/dev"
		}
		m.be, err = newRealBackend(base, &devnode.Nodes{DevDir: devDir, Dir: filepath.Join(filepath.Dir(base), "dev")}, m.opts.Devices)
	}
	if err != nil {
		return err
	}
	for _, msg := range m.be.reconcile(base) {
		m.log.Warn("leftover from an earlier run cleaned up", "detail", msg)
	}
	m.reconcileTmp()
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	m.stop = cancel
	m.wg.Add(1)
	go m.worker(wctx)
	return nil
}

// Close unmounts everything still mounted for plugins (host shutdown) and
// stops the worker. It is safe after a partial Provision and more than once.
func (m *Mount) Close() error {
	m.mu.Lock()
	unwatch := m.unwatch
	m.unwatch = nil
	m.mu.Unlock()
	if unwatch != nil {
		unwatch()
	}
	if m.stop != nil {
		m.stop()
		m.wg.Wait()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	var errs []error
	for _, h := range m.sortedHeld("") {
		if _, err := m.unmountLocked(h, "host shutdown", false); err != nil {
			errs = append(errs, err)
		}
	}
	if m.be != nil {
		m.be.close()
	}
	if m.tmpBase != "" {
		m.endTmpLocked("", "host shutdown")
		m.tmps = nil
		if err := os.RemoveAll(m.tmpBase); err != nil {
			errs = append(errs, fmt.Errorf("tmp: %w", err))
		}
	}
	return errors.Join(errs...)
}

// Preopens gives a plugin its media root at its grant's target, and its
// scratch /tmp if the manifest has [storage] tmp.
func (m *Mount) Preopens(man *manifest.Manifest) ([]capability.Preopen, error) {
	if m.base == "" {
		return nil, nil
	}
	var out []capability.Preopen
	if g := grant.In(man); g != nil {
		root := filepath.Join(m.base, man.StateName())
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, fmt.Errorf("media root: %w", err)
		}
		if err := m.addReader(man.Name, g, root); err != nil {
			return nil, err
		}
		m.mu.Lock() // plugins load in parallel
		m.users++
		m.mu.Unlock()
		// Device events matter once a plugin can mount: a device removed
		// while mounted is unmounted lazily and its plugin told
		// (watch.go). Subscribing may open udev's event source.
		m.watch.Do(func() {
			unwatch := m.opts.Devices.Subscribe(m.deviceChanged)
			m.mu.Lock()
			m.unwatch = unwatch
			m.mu.Unlock()
		})
		out = append(out, capability.Preopen{GuestPath: g.Target, Dir: root})
	}
	if man.Tmp > 0 {
		p, err := m.preopenTmp(man)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// InstanceEnded unmounts what the plugin left mounted: its instance
// stopped, crashed or was killed, and nobody else can unmount it.
func (m *Mount) InstanceEnded(plugin string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, h := range m.sortedHeld(plugin) {
		if _, err := m.unmountLocked(h, "plugin instance ended", false); err != nil {
			m.log.Error("unmount after the plugin's instance ended failed", "plugin", plugin, "target", h.name, "error", err.Error())
		}
	}
	m.endViewsLocked(plugin, "plugin instance ended")
	m.endTmpLocked(plugin, "plugin instance ended")
}

// sortedHeld returns the plugin's mounts ("" for all), deepest path first.
func (m *Mount) sortedHeld(plugin string) []*held {
	var out []*held
	for _, h := range m.held {
		if plugin == "" || h.plugin == plugin {
			out = append(out, h)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path > out[j].path })
	return out
}

// unmountLocked unmounts h: normally, then lazily if it is busy. It
// removes the mount point, so that none is left stale.
func (m *Mount) unmountLocked(h *held, why string, gone bool) (lazy bool, err error) {
	m.dropViewsLocked(h, why) // readers' views of it go first
	lazy, err = m.be.unmount(h.path, gone)
	if err != nil {
		return false, err
	}
	delete(m.held, h.path)
	delete(m.views, h.path)
	if err := os.Remove(h.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		// Not empty: after a lazy detach the plugin can still write into
		// the bare directory before the host removes it, and those files
		// are on the host's disk, not on the stick. Once the path is no
		// longer a mount point (so nothing of the stick can be reached
		// through it), discard them rather than leave a stale mount point.
		if mounted, merr := mountinfo.Mounted(h.path); merr == nil && !mounted {
			if err := os.RemoveAll(h.path); err != nil {
				m.log.Warn("files written to the mount point after the device was detached could not be removed", "path", h.path, "error", err.Error())
			} else {
				m.log.Warn("discarded files written to the mount point after the device was detached", "path", h.path)
			}
		} else {
			m.log.Warn("mount point not removed", "path", h.path, "error", err.Error())
		}
	}
	m.log.Info("unmounted", "plugin", h.plugin, "target", h.name, "device", h.dev.Node, "lazy", lazy, "why", why)
	return lazy, nil
}

func (m *Mount) uid() int { return os.Getuid() }
func (m *Mount) gid() int { return os.Getgid() }

// fail is an error with an errno of its own; see capability.ErrnoOf.
var fail = capability.Errorf

// validName checks a target name: one path component of the media root.
func validName(name string) error {
	switch {
	case name == "":
		return errors.New("empty target")
	case name == "." || name == "..":
		return fmt.Errorf("target %q is not a name", name)
	case strings.Contains(name, "/"):
		return fmt.Errorf("target %q has a /: a target is one name under the media root, such as \"MEDIA\"", name)
	case len(name) > 200:
		return fmt.Errorf("target is longer than 200 bytes")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("target %q has a control character", name)
	}
	return nil
}

// targetFor derives a target name from what the device says of itself.
func targetFor(d *Device) string {
	for _, v := range []string{d.Label, d.UUID, d.Name} {
		v = strings.Map(func(r rune) rune {
			if r == '/' || r < 0x20 || r == 0x7f {
				return '_'
			}
			return r
		}, strings.TrimSpace(v))
		if v != "" && v != "." && v != ".." {
			return v
		}
	}
	return "disk"
}
