package container

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/testenv"
)

// TestContainer runs the device image as a balena device would: a Docker
// engine of its own (Debian's dockerd, no iptables, no bridge), the image
// built without a registry (the Dockerfile's run stage on FROM scratch:
// the same static binary, paths, config, ENV and CMD, and the bundled
// plugins its build stage makes), the powers of privileged mode less CAP_SYS_RESOURCE, an empty
// named volume at /data and no /dev bind mount. The first boot starts and
// `airlock status` answers without flags; the device's overlay on /data
// gives out the test's own loop device; after a restart, the stick's
// partition appears (the kernel's add uevent; no /dev node in the
// container, no udevd) and is probed, mounted by the automount plugin and
// written to; losetup -d while mounted unmounts it; the file is on the
// stick.
//
// If dockerd cannot start on this machine (a kernel without what it
// needs), the test is skipped with a NOTE saying why, also under
// AIRLOCK_TEST_STRICT=1; a missing dockerd binary fails it there, since
// .ci/run installs docker.io.
func TestContainer(t *testing.T) {
	testenv.NeedRoot(t, "run dockerd")
	tl := testenv.NeedLoop(t, "attach the stick")
	dockerd := testenv.NeedCommand(t, "dockerd", "docker.io")
	docker := "/usr/bin/docker" // Debian's CLI, of dockerd's version
	if _, err := os.Stat(docker); err != nil {
		docker = testenv.NeedCommand(t, "docker", "docker.io")
	}
	root := testenv.RepoRoot(t)
	start := time.Now()
	dir := t.TempDir()
	e := startEngine(t, dockerd, docker, dir)
	t.Logf("dockerd up in %s", time.Since(start).Round(time.Millisecond))

	// The image: what the Dockerfile's run stage holds, on FROM scratch.
	step := time.Now()
	image := buildImage(t, e, root, filepath.Join(dir, "rootfs"))
	t.Logf("image %s built in %s", image, time.Since(step).Round(time.Millisecond))

	// The stick: an ext4 partition, its loop device held by this test from
	// the start (so the overlay can name it) but its partition not added
	// until the container runs, as a stick plugged in later. Its label
	// starts with no AIR: internal/mount's tests, which may run at the same
	// time in another package, mount loop devices labelled AIR*.
	img := tl.MakeImage(t, dir, "stick.img", []testenv.Partition{{Sfdisk: ",,83", FSType: "ext4", Label: "CTRSTICK"}})
	loop := testenv.Run(t, tl.Losetup, "-f", "--show", img)
	dev := filepath.Base(loop)
	t.Cleanup(func() {
		exec.Command(tl.Losetup, "-d", loop).Run()
		// Partitions added with partx outlive the detach; leave the
		// device as we found it.
		if _, err := os.Stat("/sys/class/block/" + dev + "p1"); err == nil {
			exec.Command(tl.Partx, "-d", "--nr", "1", loop).Run()
		}
	})
	if _, err := os.Stat("/sys/class/block/" + dev + "p1"); err == nil {
		t.Fatalf("%s has its partition before it is plugged in", loop)
	}

	name := fmt.Sprintf("airlock-ct-%d", os.Getpid())
	e.run(t, "volume", "create", name)
	t.Cleanup(func() { e.docker("volume", "rm", "-f", name) })
	ct := e.run(t, "run", "-d", "--name", name, "--network", "none",
		"--cap-add", "ALL", "--cap-drop", "SYS_RESOURCE", "--device-cgroup-rule", "b *:* rmw",
		"--security-opt", "apparmor=unconfined", "--security-opt", "seccomp=unconfined",
		"-v", name+":/data", image)
	t.Cleanup(func() { e.docker("rm", "-f", ct) })

	// First boot on the empty volume.
	step = time.Now()
	e.waitLog(t, ct, 1, `"msg":"airlock running"`)
	t.Logf("first boot (compiling the plugins) in %s", time.Since(step).Round(time.Millisecond))
	if logs, _ := e.docker("logs", ct); !strings.Contains(logs, `"failed":0`) {
		t.Errorf("a bundled plugin did not load on the first boot:\n%s", logs)
	}
	if out := e.run(t, "exec", ct, "airlock", "status"); !regexp.MustCompile(`automount\s+1\.0\.0\s+running`).MatchString(out) {
		t.Errorf("airlock status in the container, without flags:\n%s", out)
	} else {
		t.Logf("airlock status in the container:\n%s", out)
	}
	if out := e.run(t, "exec", ct, "airlock", "version"); !strings.Contains(out, "wazero v") {
		t.Errorf("airlock version in the container: %s", out)
	}

	// The device's overlay gives out this test's loop device, and only it.
	overlay := filepath.Join(dir, "overlay.toml")
	if err := os.WriteFile(overlay, []byte(fmt.Sprintf("[mount]\ndisks = [%q]\n", dev)), 0o600); err != nil {
		t.Fatal(err)
	}
	e.run(t, "cp", overlay, ct+":/data/airlock/overlay.toml")
	e.run(t, "restart", "-t", "30", ct)
	e.waitLog(t, ct, 2, `"msg":"airlock running"`)
	e.waitLog(t, ct, 1, `"msg":"runtime overlay applied"`)

	// Plugged in.
	testenv.Run(t, tl.Partx, "-a", loop)
	// The plugin's fields are attributes of its JSON log lines.
	mounted := fmt.Sprintf(`"msg":"mounted","plugin":"automount","source":"plugin","device":"/dev/%sp1","path":"/media/CTRSTICK","fstype":"ext4"`, dev)
	e.waitLog(t, ct, 1, mounted)
	e.waitLog(t, ct, 1, `"msg":"wrote","plugin":"automount","source":"plugin","path":"/media/CTRSTICK/airlock-was-here.txt"`)
	pid := strings.TrimSpace(e.run(t, "inspect", "-f", "{{.State.Pid}}", ct))
	if mi := readFile(t, "/proc/"+pid+"/mountinfo"); !regexp.MustCompile(`/data/airlock/media/automount/CTRSTICK \S*nosuid,nodev,noexec`).MatchString(mi) {
		t.Errorf("the container's mount table has no nosuid,nodev,noexec CTRSTICK mount:\n%s", mi)
	}
	if top := e.run(t, "top", ct); strings.Contains(top, "udev") {
		t.Errorf("a udevd runs in the container:\n%s", top)
	}
	vol := strings.TrimSpace(e.run(t, "volume", "inspect", "-f", "{{.Mountpoint}}", name))
	if left, err := os.ReadDir(filepath.Join(vol, "airlock", "dev")); err != nil || len(left) != 0 {
		t.Errorf("the host's own device nodes in /data/airlock/dev: %v, %v; want the directory, empty", left, err)
	}

	// Pulled out while mounted: unmounted, nothing left mounted.
	testenv.Run(t, tl.Losetup, "-d", loop)
	e.waitLog(t, ct, 1, `"msg":"unmounted","capability":"mount","plugin":"automount","target":"CTRSTICK"`)
	if mi := readFile(t, "/proc/"+pid+"/mountinfo"); strings.Contains(mi, "/media/automount/CTRSTICK") {
		t.Errorf("still mounted after the detach:\n%s", mi)
	}

	// What the plugin wrote is on the stick.
	testenv.WaitPath(t, "/sys/class/block/"+dev+"/loop", false)
	exec.Command(tl.Partx, "-d", "--nr", "1", loop).Run()
	check := testenv.Run(t, tl.Losetup, "-f", "--show", "-r", "-o", strconv.Itoa(1<<20), img)
	defer exec.Command(tl.Losetup, "-d", check).Run()
	mnt := filepath.Join(dir, "check")
	os.Mkdir(mnt, 0o755)
	testenv.Run(t, "mount", "-o", "ro", "-t", "ext4", check, mnt)
	defer exec.Command("umount", mnt).Run()
	if b, err := os.ReadFile(filepath.Join(mnt, "airlock-was-here.txt")); err != nil || !strings.Contains(string(b), "automount") {
		t.Errorf("the file the plugin wrote, read on the host: %q, %v", b, err)
	}
	t.Logf("whole test in %s", time.Since(start).Round(time.Millisecond))
}

// engine is a dockerd of the test's own: its data, state and socket in a
// temporary directory, so that it collides with no other engine.
type engine struct {
	bin  string   // the docker CLI
	env  []string // DOCKER_HOST and a private DOCKER_CONFIG
	logf string
}

func startEngine(t *testing.T, dockerd, docker, dir string) *engine {
	t.Helper()
	sock := filepath.Join(dir, "docker.sock")
	e := &engine{bin: docker, logf: filepath.Join(dir, "dockerd.log"),
		env: append(os.Environ(), "DOCKER_HOST=unix://"+sock, "DOCKER_CONFIG="+filepath.Join(dir, "cli"))}
	logf, err := os.Create(e.logf)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(dockerd, "--iptables=false", "--ip-masq=false", "--ip-forward=false", "--bridge=none",
		"--userland-proxy=false", "--data-root", filepath.Join(dir, "root"), "--exec-root", filepath.Join(dir, "exec"),
		"--pidfile", filepath.Join(dir, "dockerd.pid"), "-H", "unix://"+sock)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start dockerd: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait(); logf.Close() }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(60 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	for deadline := time.Now().Add(90 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		select {
		case err := <-exited:
			exited <- err
			t.Skipf("NOTE: dockerd cannot start on this machine (%v), so the container test does not run; its log ends:\n%s", err, tail(e.logf, 15))
		default:
		}
		if _, err := e.docker("version"); err == nil {
			return e
		}
		if time.Now().After(deadline) {
			t.Skipf("NOTE: dockerd did not answer within 90 s, so the container test does not run; its log ends:\n%s", tail(e.logf, 15))
		}
	}
}

// docker runs the CLI against the engine.
func (e *engine) docker(args ...string) (string, error) {
	cmd := exec.Command(e.bin, args...)
	cmd.Env = e.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// run runs the CLI and fails the test if it fails.
func (e *engine) run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := e.docker(args...)
	if err != nil {
		t.Fatalf("docker %s: %v\n%s\ndockerd's log ends:\n%s", strings.Join(args, " "), err, out, tail(e.logf, 10))
	}
	return strings.TrimSpace(out)
}

// waitLog waits until the container's log has n lines with want (a
// liveness bound only).
func (e *engine) waitLog(t *testing.T, ct string, n int, want string) {
	t.Helper()
	var out string
	for deadline := time.Now().Add(3 * time.Minute); time.Now().Before(deadline); time.Sleep(250 * time.Millisecond) {
		out, _ = e.docker("logs", ct)
		if strings.Count(out, want) >= n {
			return
		}
	}
	t.Fatalf("the container's log never had %d lines with %s; it is:\n%s", n, want, out)
}

// buildImage makes the Dockerfile's run stage on FROM scratch: the static
// binary built as its build stage builds it, the plugins of its build
// stage's loop, the device config, and its ENV and CMD; then docker import. The Dockerfile
// is read to keep the two in step.
func buildImage(t *testing.T, e *engine, root, rootfs string) string {
	t.Helper()
	df := readFile(t, filepath.Join(root, "Dockerfile"))
	runStage := df[strings.LastIndex(df, "\nFROM "):]
	for _, want := range []string{"COPY --from=build /out/airlock /usr/local/bin/airlock", "COPY --from=build /out/plugins /opt/airlock/plugins",
		"COPY docs/device/runtime.toml /etc/airlock/runtime.toml", "CGO_ENABLED=0 go build -trimpath -buildvcs=false"} {
		if !strings.Contains(df, want) {
			t.Fatalf("the Dockerfile no longer has %q; update this test's image to match it", want)
		}
	}
	var changes []string
	for _, l := range strings.Split(runStage, "\n") {
		if strings.HasPrefix(l, "ENV ") || strings.HasPrefix(l, "CMD ") || strings.HasPrefix(l, "WORKDIR ") {
			changes = append(changes, "--change", l)
		}
	}
	for _, d := range []string{"usr/local/bin", "etc/airlock", "tmp", "data"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	os.Chmod(filepath.Join(rootfs, "tmp"), 0o1777)
	bin := filepath.Join(rootfs, "usr", "local", "bin", "airlock")
	build := exec.Command("go", "build", "-trimpath", "-buildvcs=false",
		"-ldflags", "-X github.com/airlockhq/airlock/internal/version.Version=container-test", "-o", bin, "./cmd/airlock")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	// The bundled plugins, as the build stage's loop makes them.
	m := regexp.MustCompile(`for d in ([^;]+); do`).FindStringSubmatch(df)
	if m == nil {
		t.Fatal("the Dockerfile no longer builds its plugins in a `for d in ...; do` loop; update this test to match it")
	}
	for _, src := range strings.Fields(m[1]) {
		name := filepath.Base(src)
		plugin := filepath.Join(rootfs, "opt", "airlock", "plugins", name)
		os.MkdirAll(plugin, 0o755)
		testenv.Run(t, bin, "build", "-o", filepath.Join(plugin, name+".wasm"), filepath.Join(root, src))
		man := readFile(t, filepath.Join(root, src, "plugin.toml"))
		// The one change from the shipped plugins: automount writes a
		// file on each stick, which the test reads back (as
		// TestLoopAutomount does).
		man = strings.Replace(man, `write_file = ""`, `write_file = "airlock-was-here.txt"`, 1)
		if err := os.WriteFile(filepath.Join(plugin, "plugin.toml"), []byte(man), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := readFile(t, filepath.Join(root, "docs", "device", "runtime.toml"))
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "airlock", "runtime.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	image := "airlock-container-test:latest"
	tar := exec.Command("tar", "-C", rootfs, "-c", ".")
	imp := exec.Command(e.bin, append(append([]string{"import"}, changes...), "-", image)...)
	imp.Env = e.env
	pipe, err := tar.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	var out bytes.Buffer
	imp.Stdout, imp.Stderr = &out, &out
	if err := tar.Start(); err != nil {
		t.Fatal(err)
	}
	if err := imp.Run(); err != nil {
		t.Fatalf("docker import: %v\n%s", err, out.String())
	}
	tar.Wait()
	return image
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func tail(p string, n int) string {
	b, _ := os.ReadFile(p)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
