package mount_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/mount"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/udev"
)

const guest = "internal/mount/testdata/guest"

// run is one host run: its logs, audit, state directory, and stop.
type run struct {
	log, audit *testenv.Log
	dir        string
	stop       func()
}

// plugin is a plugin directory to make: a manifest and the source to build.
type plugin struct{ name, manifest, src string }

// runHost runs the real host with the udev and mount capabilities wired as
// in host/builtin, the runtime.toml text given, and the plugins.
func runHost(t *testing.T, runtime string, plugins ...plugin) *run {
	t.Helper()
	return runHostDev(t, "", runtime, plugins...)
}

// runHostDev is runHost with the capabilities looking for device nodes in
// devDir instead of /dev ("" for /dev).
func runHostDev(t *testing.T, devDir, runtime string, plugins ...plugin) *run {
	t.Helper()
	dir := t.TempDir()
	for _, p := range plugins {
		testenv.PluginDir(t, filepath.Join(dir, "plugins"), p.name, p.manifest, p.src)
	}
	rt := "plugins = [\"plugins\"]\nstate_dir = \"state\"\n" + runtime + "\n"
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	log, logger := testenv.NewLog(t)
	audit, auditLogger := testenv.NewLog(t)
	u := udev.New()
	m := mount.New(mount.Options{CheckEvery: 50 * time.Millisecond, DevDir: devDir, Devices: u.Devices()})
	if devDir != "" {
		u.WithDevDir(devDir)
	}
	h, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Audit: auditLogger,
		Capabilities: []capability.Capability{u, m}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	stopped := false
	r := &run{log: log, audit: audit, dir: dir}
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Error(err)
			}
		case <-time.After(60 * time.Second):
			t.Error("host did not stop")
		}
	}
	t.Cleanup(r.stop)
	return r
}

func (r *run) media(plugin string) string { return filepath.Join(r.dir, "state", "media", plugin) }

func simRuntime(replay string) string {
	rt := "device = \"sim\"\n[udev]\nsource = \"replay\"\n"
	if replay != "" {
		rt += "replay = \"" + replay + "\"\n"
	}
	return rt
}

// An empty scenario: the simulated stick stays plugged in.
func quietReplay(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "quiet.udev")
	if err := os.WriteFile(p, []byte("KERNEL[1.000000] add      /devices/virtual/tty/ttyQ (tty)\nSEQNUM=1\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func guestManifest(name, grant, config string) string {
	return "name = \"" + name + "\"\nversion = \"1.0.0\"\n[storage]\ndata = true\n" + grant + "\n[config]\n" + config + "\n"
}

// The shipped automount plugin on the simulated device: the built-in
// scenario plugs in the MEDIA stick and pulls it out; the plugin mounts it
// under its label, lists it and writes a file, and the mount is gone
// afterwards with the file kept on the "stick".
func TestSimAutomount(t *testing.T) {
	man, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "plugins/automount/plugin.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(man), `write_file = ""`, `write_file = "hello.txt"`, 1)
	r := runHost(t, simRuntime(""), plugin{"automount", text, "plugins/automount"})
	r.log.Wait(1, "mounted device=/dev/sdb1 path=/media/MEDIA fstype=vfat readonly=false entries=3", "plugin=automount")
	r.log.Wait(1, "wrote path=/media/MEDIA/hello.txt", "plugin=automount")
	r.log.Wait(1, "INFO unmounted capability=mount", "capability=mount", "target=MEDIA")
	r.stop()
	if _, err := os.Stat(filepath.Join(r.media("automount"), "MEDIA")); !os.IsNotExist(err) {
		t.Errorf("mount point left behind: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(r.dir, "state", "sim-devices", "sdb1", "hello.txt"))
	if err != nil || !strings.Contains(string(b), "automount") {
		t.Errorf("the file written through /media is not on the simulated stick: %q, %v", b, err)
	}
	if n := r.audit.Count("plugin=automount", "capability=mount", "op=uuid:1234-ABCD", "decision=allow"); n != 1 {
		t.Errorf("%d allow records for the mount, want 1:\n%s", n, strings.Join(r.audit.Lines(), "\n"))
	}
}

// Every denial on the simulated device has a readable message that says
// what the manifest lacks, and an audit record; none crashes the plugin.
func TestSimDenials(t *testing.T) {
	grant := "[[mount]]\nsource = [\"label:MEDIA*\", \"label:resin-*\"]\nfstype = [\"vfat\"]\noptions = [\"sync\"]\n"
	script := `start = "` + strings.Join([]string{
		"mount label:MEDIA opt=uid=5",
		"mount label:MEDIA opt=exec",
		"mount label:MEDIA opt=utf8,uid=0",
		"mount label:MEDIA target=../other",
		"mount label:MEDIA target=a/b",
		"mount label:resin-boot",
		"mount uuid:6f1e2d3c-0000-4000-8000-000000000006",
		"mount label:NOPE",
		"mount floppy:A",
		"unmount ../other/MEDIA",
		"unmount MEDIA",
		"mkdir /media/MEDIA",
		"write /media/MEDIA/keep.txt mine",
		"mount label:MEDIA opt=sync",
		"read /media/MEDIA-2/README.txt",
		"list",
		"mount device:/dev/sdb1",
		"unmount MEDIA-2",
		"list",
		"read /media/MEDIA/keep.txt",
	}, "; ") + `"`
	r := runHost(t, simRuntime(quietReplay(t)),
		plugin{"p", guestManifest("p", grant, script), guest},
		plugin{"q", guestManifest("q", "[[mount]]\nsource = [\"label:MEDIA\"]\nfstype = [\"exfat\"]\n", `start = "mount label:MEDIA"`), guest},
		plugin{"s", guestManifest("s", "[[mount]]\nsource = [\"uuid:0000-*\"]\nfstype = [\"vfat\"]\n", `start = "mount device:/dev/sdb1"`), guest})
	want := []string{
		`mount label:MEDIA opt=uid=5 err=denied: plugin "p": mount label:MEDIA denied: option "uid=5" is not in [[mount]] options ["sync"]`,
		`mount label:MEDIA opt=exec err=denied: plugin "p": mount label:MEDIA denied: option "exec" would undo nosuid,nodev,noexec, which are always forced`,
		`mount label:MEDIA opt=utf8,uid=0 err=denied: plugin "p": mount label:MEDIA denied: option "utf8,uid=0" contains a comma, a newline or a NUL`,
		`mount label:MEDIA target=../other err=denied: plugin "p": mount label:MEDIA denied: target "../other" has a /: a target is one name under the media root, such as "MEDIA"`,
		`mount label:MEDIA target=a/b err=denied: plugin "p": mount label:MEDIA denied: target "a/b" has a /`,
		`mount label:resin-boot err=denied: plugin "p": mount label:resin-boot denied: /dev/mmcblk0p1 is a system partition of the device (label resin-boot) and is never mounted for plugins`,
		`mount uuid:6f1e2d3c-0000-4000-8000-000000000006 err=denied: plugin "p": mount uuid:6f1e2d3c-0000-4000-8000-000000000006 denied: /dev/mmcblk0p6 is a system partition of the device (label resin-data)`,
		`mount label:NOPE err=not_found: plugin "p": mount label:NOPE: no block device with a filesystem has label "NOPE"`,
		`mount floppy:A err=invalid: plugin "p": mount: source "floppy:A": unknown kind "floppy" (use label:, uuid:, partlabel:, partuuid: or device:)`,
		`unmount ../other/MEDIA err=denied: plugin "p": mount unmount ../other/MEDIA denied: target "../other/MEDIA" has a /`,
		`unmount MEDIA err=not_found: plugin "p": unmount MEDIA: nothing is mounted there`,
		// A name in use (here a directory with the plugin's own file)
		// gets a suffix rather than hiding what is there.
		`mount label:MEDIA opt=sync ok target=MEDIA-2 path=/media/MEDIA-2 device=/dev/sdb1 readonly=false options=nosuid,nodev,noexec,uid=`,
		`read /media/MEDIA-2/README.txt = "Files on the simulated USB stick labelled MEDIA.`,
		`list n=1 targets=MEDIA-2`,
		`mount device:/dev/sdb1 err=busy: plugin "p": mount device:/dev/sdb1: /dev/sdb1 is already mounted for plugin "p" at MEDIA-2`,
		`unmount MEDIA-2 ok`,
		`list n=0 targets=`,
		`read /media/MEDIA/keep.txt = "mine"`,
		`mount label:MEDIA err=denied: plugin "q": mount label:MEDIA denied: fstype vfat is not in [[mount]] fstype ["exfat"]`,
		`mount device:/dev/sdb1 err=denied: plugin "s": mount device:/dev/sdb1 denied: /dev/sdb1 (label MEDIA, uuid 1234-ABCD) is not in [[mount]] source ["uuid:0000-*"]`,
	}
	for _, w := range want {
		r.log.Wait(1, w)
	}
	denials := r.audit.Count("capability=mount", "decision=deny")
	if denials != 10 {
		t.Errorf("%d deny records, want 10 (one per denial):\n%s", denials, strings.Join(r.audit.Lines(), "\n"))
	}
	for _, p := range []string{"p", "q", "s"} {
		if n := r.log.Count("plugin crashed", "plugin="+p); n != 0 {
			t.Errorf("a denial crashed plugin %s", p)
		}
	}
}

// A plugin that crashes with a mount held: the host unmounts it when the
// instance ends, the restarted instance mounts afresh, and host shutdown
// unmounts what is left.
func TestSimCrashAndShutdownCleanup(t *testing.T) {
	r := runHost(t, simRuntime(quietReplay(t)), plugin{"c", guestManifest("c",
		"[[mount]]\nsource = [\"label:MEDIA\"]\nfstype = [\"vfat\"]\n", `start = "mount label:MEDIA; crash-once"`), guest})
	r.log.Wait(1, "INFO unmounted capability=mount", "plugin=c", "target=MEDIA", "why=plugin instance ended")
	r.log.Wait(2, "mount label:MEDIA ok target=MEDIA ", "plugin=c")
	r.stop()
	if n := r.log.Count("INFO unmounted capability=mount", "plugin=c", "why=host shutdown") + r.log.Count("INFO unmounted capability=mount", "plugin=c", "why=plugin instance ended"); n != 2 {
		t.Errorf("%d unmounts, want one after the crash and one at shutdown:\n%s", n, strings.Join(r.log.Lines(), "\n"))
	}
	if entries, _ := os.ReadDir(r.media("c")); len(entries) != 0 {
		t.Errorf("media root not empty after shutdown: %v", entries)
	}
}

// The stick is pulled out while a plugin holds it mounted: the host
// unmounts it and tells the plugin with a mount event.
func TestSimDeviceGone(t *testing.T) {
	scenario := filepath.Join(t.TempDir(), "pull.udev")
	src, err := os.ReadFile(filepath.Join(testenv.RepoRoot(t), "internal/udev/testdata/usb-stick.udev"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(scenario, src, 0o644); err != nil {
		t.Fatal(err)
	}
	r := runHost(t, "device = \"sim\"\n[udev]\nsource = \"replay\"\nreplay = \""+scenario+"\"\n",
		plugin{"g", guestManifest("g", "[[mount]]\nsource = [\"label:MEDIA\"]\nfstype = [\"vfat\"]\n[[trigger.udev]]\nsubsystem = \"block\"\naction = \"add\"\n",
			`add_MEDIA = "mount label:MEDIA; hold /media/MEDIA/README.txt"`), guest})
	r.log.Wait(1, "mount label:MEDIA ok target=MEDIA", "plugin=g")
	r.log.Wait(1, `mount-event action=unmounted target=MEDIA source=label:MEDIA device=/dev/sdb1 reason="device removed"`, "plugin=g")
	if _, err := os.Stat(filepath.Join(r.media("g"), "MEDIA")); !os.IsNotExist(err) {
		t.Errorf("stale mount point: %v", err)
	}
}
