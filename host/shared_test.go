package host_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/mount"
	"github.com/airlockhq/airlock/internal/shared"
	"github.com/airlockhq/airlock/internal/testenv"
	"github.com/airlockhq/airlock/internal/udev"
)

// The shared-directory tests' plugins: one that probes a share, and the
// example that backs the app's logs up onto a stick.
const (
	probeGuest  = "internal/shared/testdata/probe"
	backupGuest = "examples/backup-logs"
)

// appVolume makes an application's volume under a temporary directory:
// logs/ (app.log, app.log.1, old/), with a link to a file outside it
// (escape) and to a directory outside it (escape-dir); inbox/, empty; and
// beside them secret.txt and outside/secret.txt, which no plugin may read.
func appVolume(t *testing.T) (logs, inbox string) {
	t.Helper()
	app := filepath.Join(t.TempDir(), "app")
	logs, inbox = filepath.Join(app, "logs"), filepath.Join(app, "inbox")
	files := map[string]string{
		"logs/app.log":       "boot ok\nservice up\n",
		"logs/app.log.1":     "yesterday\n",
		"logs/old/keep.txt":  "kept\n",
		"secret.txt":         "SECRET beside the share\n",
		"outside/secret.txt": "SECRET in another directory\n",
	}
	for p, text := range files {
		p = filepath.Join(app, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(inbox, 0o755); err != nil {
		t.Fatal(err)
	}
	for link, to := range map[string]string{"escape": "../secret.txt", "escape-dir": filepath.Join(app, "outside")} {
		if err := os.Symlink(to, filepath.Join(logs, link)); err != nil {
			t.Fatal(err)
		}
	}
	return logs, inbox
}

// sharedRuntime declares logs read-only as app-logs and inbox read-write
// as app-inbox.
func sharedRuntime(logs, inbox string) string {
	return "[[shared]]\nname = \"app-logs\"\npath = \"" + logs + "\"\nmode = \"ro\"\n" +
		"[[shared]]\nname = \"app-inbox\"\npath = \"" + inbox + "\"\nmode = \"rw\"\n"
}

// runWith runs a host with caps, runtime.toml's first lines and then the
// text given, and the plugins, until the test ends. A plugin whose
// manifest says BROKEN is not waited for.
func runWith(t *testing.T, caps []capability.Capability, runtime string, plugs ...plug) (log, audit *testenv.Log) {
	t.Helper()
	r := startWith(t, "plugins = [\"plugins\"]\nstate_dir = \"state\"\n"+runtime+"\n", nil, caps, plugs...)
	return r.log, r.audit
}

// probeResults runs the guest's probe of /shared/app-logs, granted
// read-only, and returns each attempt's errno name by op.
func probeResults(t *testing.T, logs, inbox string) map[string]string {
	t.Helper()
	man := toml("prober", "[shared]\nro = [\"app-logs\"]\n[config]\nprobe = \"/shared/app-logs\"\n")
	log, _ := runWith(t, []capability.Capability{shared.New()}, sharedRuntime(logs, inbox), plug{"prober", man, probeGuest})
	log.Wait(1, "probe op=done", "plugin=prober")
	got := map[string]string{}
	for _, l := range log.Lines() {
		if _, rest, ok := strings.Cut(l, "probe op="); ok && strings.Contains(l, "plugin=prober") {
			op, e, _ := strings.Cut(rest, " err=")
			got[op] = strings.Fields(e)[0]
		}
	}
	return got
}

// A plugin granted a directory read-only cannot change it in any way
// WASI offers: writing, appending, truncating (by open, by path, through
// a file it opened to read), creating, making a directory, renaming,
// removing, setting times, linking. The host's sandbox refuses each with
// EROFS (links with EPERM, as everywhere; a file opened to read refuses
// writes with EBADF); the files on the host are unchanged. WASI has no
// chmod.
func TestSharedReadOnlyIsEnforced(t *testing.T) {
	logs, inbox := appVolume(t)
	got := probeResults(t, logs, inbox)
	if got["read"] != "ok" {
		t.Fatalf("reading app.log through the share: %s, want ok (all: %v)", got["read"], got)
	}
	want := map[string]string{"link": "EPERM", "symlink": "EPERM", // sandboxfs never makes a link
		"ftruncate": "EBADF", "fwrite": "EBADF"} // a file opened to read
	for _, op := range []string{"open-write", "append", "open-trunc", "create", "mkdir", "rename", "remove", "rmdir", "truncate", "chtimes"} {
		want[op] = "EROFS"
	}
	for op, e := range want {
		if got[op] != e {
			t.Errorf("%s on a read-only share: %q, want %s", op, got[op], e)
		}
	}
	b, err := os.ReadFile(filepath.Join(logs, "app.log"))
	if err != nil || string(b) != "boot ok\nservice up\n" {
		t.Errorf("app.log on the host after the probe: %q, %v", b, err)
	}
	ents, _ := os.ReadDir(logs)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != "app.log app.log.1 escape escape-dir old" {
		t.Errorf("the share on the host after the probe holds %q", names)
	}
}

// A shared directory is no way out: a link in it that leads outside (to a
// file or a directory) is a dead end (ELOOP), and ".." beneath a
// directory of it stops at the share (EPERM), however deep.
func TestSharedEscapes(t *testing.T) {
	logs, inbox := appVolume(t)
	got := probeResults(t, logs, inbox)
	for op, want := range map[string]string{"symlink-file": "ELOOP", "symlink-dir": "ELOOP", "dotdot": "EPERM", "dotdot-deep": "EPERM"} {
		if got[op] != want {
			t.Errorf("%s out of the share: %q, want %s", op, got[op], want)
		}
	}
}

// A plugin that asks for a shared directory runtime.toml does not declare
// is refused at load, with the fix in the message and a deny in the
// audit; so is one that asks to write a directory declared read-only, and
// one whose shared directory would lie inside its media root (a [[mount]]
// target of /shared). The others run on.
func TestSharedUndeclaredNameIsRefused(t *testing.T) {
	logs, inbox := appVolume(t)
	rt := sharedRuntime(logs, inbox)
	m := mount.New(mount.Options{})
	log, audit := runWith(t, []capability.Capability{m, shared.New()}, rt,
		plug{"greedy", toml("greedy", "# BROKEN\n[shared]\nro = [\"app-secrets\"]\n"), probeGuest},
		plug{"pushy", toml("pushy", "# BROKEN\n[shared]\nrw = [\"app-logs\"]\n"), probeGuest},
		plug{"modest", toml("modest", "[shared]\nro = [\"app-logs\"]\n"), probeGuest},
		plug{"overlap", toml("overlap", "# BROKEN\n[shared]\nro = [\"app-logs\"]\n[[mount]]\nsource = [\"label:NONE\"]\nfstype = [\"ext4\"]\ntarget = \"/shared\"\n"), backupGuest})
	log.Wait(1, "plugin not loaded", `shared open /shared/app-secrets ro denied:`, `asks for shared directory "app-secrets", which`, "does not declare (declared: app-inbox (rw), app-logs (ro))", `declares it with [[shared]] name = "app-secrets"`)
	log.Wait(1, "plugin not loaded", `shared open /shared/app-logs rw denied:`, `asks to write shared directory "app-logs", which`, "declares read-only", `move it to ro = [...]`)
	audit.Wait(1, "plugin=greedy", "capability=shared", "op=open /shared/app-secrets ro", "decision=deny")
	audit.Wait(1, "plugin=pushy", "capability=shared", "op=open /shared/app-logs rw", "decision=deny")
	audit.Wait(1, "plugin=modest", "capability=shared", "op=open /shared/app-logs ro", "decision=allow")
	log.Wait(1, "plugin not loaded", `plugin "overlap": shared: its directory /shared/app-logs would overlap /shared, which the plugin sees already`)
	if c := log.Count("plugin loaded", "plugin=greedy") + log.Count("plugin loaded", "plugin=pushy") + log.Count("plugin loaded", "plugin=overlap"); c != 0 {
		t.Errorf("a refused plugin loaded (%d)", c)
	}
}

// The use case, end to end on a real loop device: "copy the app's logs to
// a stick labelled BACKUP". The plugin holds the app's logs read-only and
// an inbox read-write, and a mount grant; when the stick is plugged in
// (a kernel uevent) it mounts it, copies /shared/app-logs into app-logs/
// on it, notes
// the backup in the inbox and unmounts. The files are then on the stick,
// as a mount of it by the test shows, and the note in the app's inbox.
func TestSharedBackupToStick(t *testing.T) {
	tl := testenv.NeedLoop(t, "attach a loop device and mount it")
	const label = "SHBACKUP" // not AIR*, which the mount tests' automount takes
	img := tl.MakeImage(t, t.TempDir(), "backup.img", []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: label}})
	logs, inbox := appVolume(t)
	man := toml("backup", `[shared]
ro = ["app-logs"]
rw = ["app-inbox"]

[[mount]]
source = ["label:`+label+`"]
fstype = ["ext4"]

[limits]
handler_timeout = "30s"

[[trigger.udev]]
subsystem = "block"
devtype = "partition"
action = ["add"]

[config]
label = "`+label+`"
from = "/shared/app-logs"
note = "/shared/app-inbox/last-backup.txt"
`)
	u := udev.New()
	m := mount.New(mount.Options{Devices: u.Devices()})
	rt := "device = \"real\"\n[udev]\nsource = \"kernel\"\n[mount]\ndisks = [\"removable\", \"loop\"]\n" + sharedRuntime(logs, inbox)
	log, audit := runWith(t, []capability.Capability{u, m, shared.New()}, rt, plug{"backup", man, backupGuest})
	audit.Wait(1, "plugin=backup", "capability=shared", "op=open /shared/app-logs ro", "decision=allow")
	audit.Wait(1, "plugin=backup", "capability=shared", "op=open /shared/app-inbox rw", "decision=allow")

	dev := tl.Attach(t, img, 1)
	log.Wait(1, "backup done files=2 to=/media/"+label+"/app-logs", "plugin=backup")
	note, err := os.ReadFile(filepath.Join(inbox, "last-backup.txt"))
	if err != nil || string(note) != "backed up 2 files to "+label+"\n" {
		t.Errorf("the note in the app's inbox: %q, %v", note, err)
	}
	// The plugin unmounted the stick; mount it here, read-only, to read
	// what is on the device itself.
	audit.Wait(1, "plugin=backup", "capability=mount", "op=unmount", "decision=allow")
	at := t.TempDir()
	testenv.Run(t, "mount", "-o", "ro", "/dev/"+dev+"p1", at)
	defer testenv.Run(t, "umount", at)
	for _, f := range []string{"app.log", "app.log.1"} {
		want, _ := os.ReadFile(filepath.Join(logs, f))
		got, err := os.ReadFile(filepath.Join(at, "app-logs", f))
		if err != nil || string(got) != string(want) {
			t.Errorf("%s on the stick: %q, %v; want %q", f, got, err, want)
		}
	}
	for _, f := range []string{"escape", "escape-dir", "old"} {
		if _, err := os.Lstat(filepath.Join(at, "app-logs", f)); err == nil {
			t.Errorf("%s was copied, but the plugin copies regular files only", f)
		}
	}
}
