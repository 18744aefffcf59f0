// Command automount measures item 4 of BENCHMARKS.md, as root: from
// `losetup -P` of a stick image to "mounted, and the plugin told", with
// plugins/automount in the real host (kernel uevents, real mount(2)),
// beside the classic way: a shell script (blkid + mount) run per event by
// systemd-udevd's RUN+=, and by a small netlink listener. It prints
// `go test -bench`-style lines that bench/report reads. Not root, or a
// missing tool or kernel feature: it says why on a "# automount:" line
// and exits 0.
//
//	go run ./automount -n 20
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/mount"
	"github.com/airlockhq/airlock/internal/udev"
)

const label = "AIRBENCH"

var (
	reps    = flag.Int("n", 20, "repetitions per method")
	methods = flag.String("methods", "airlock,udevd,netlink", "methods to measure, in order")
	verbose = flag.Bool("v", false, "print each repetition")
)

func main() {
	flag.Parse()
	if why := missing(); why != "" {
		fmt.Printf("# automount: skipped: %s\n", why)
		return
	}
	work, err := os.MkdirTemp("", "airlock-bench-automount-")
	if err != nil {
		fatal(err)
	}
	defer os.RemoveAll(work)
	img, err := makeImage(work)
	if err != nil {
		fatal(err)
	}
	fmt.Printf("# automount: image %s (dos label, one ext4 partition labelled %s), %d repetitions per method, %d CPUs\n", filepath.Base(img), label, *reps, runtime.NumCPU())
	for _, m := range strings.Split(*methods, ",") {
		var samples []time.Duration
		var err error
		switch m {
		case "airlock":
			samples, err = runAirlock(work, img)
		case "udevd":
			samples, err = runUdevd(work, img)
		case "netlink":
			samples, err = runNetlink(work, img)
		default:
			err = fmt.Errorf("unknown method %q", m)
		}
		if err != nil {
			fmt.Printf("# automount: %s: not measured: %v\n", m, oneLine(err))
			continue
		}
		report(m, samples)
	}
}

func fatal(err error) {
	fmt.Printf("# automount: failed: %v\n", oneLine(err))
	os.Exit(1)
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

// missing says why this machine cannot run the measurement, or "".
func missing() string {
	if os.Geteuid() != 0 {
		return "needs root (loop devices and mount(2)); run bench/run.sh as root to measure it"
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return "no /dev/loop-control (modprobe loop)"
	}
	for _, c := range []string{"losetup", "sfdisk", "partx", "blkid", "mkfs.ext4", "mount", "umount", "go"} {
		if _, err := exec.LookPath(c); err != nil {
			return "no " + c + " (apt-get install mount fdisk util-linux e2fsprogs golang)"
		}
	}
	b, _ := os.ReadFile("/proc/filesystems")
	if !bytes.Contains(b, []byte("\text4\n")) {
		return "the kernel cannot mount ext4"
	}
	return ""
}

func run(name string, args ...string) (string, error) {
	b, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(b))
	}
	return strings.TrimSpace(string(b)), nil
}

// attach is the stick being plugged in: losetup -P, and partx -a on a
// kernel without partition-table parsers (which ignores -P; partx then
// makes the same kernel add event through BLKPG). It returns "loopN".
func attach(img string) (string, error) {
	dev, err := run("losetup", "-P", "-f", "--show", img)
	if err != nil {
		return "", err
	}
	name := filepath.Base(dev)
	if _, err := os.Stat("/sys/class/block/" + name + "p1"); err != nil {
		if _, err := run("partx", "-a", dev); err != nil {
			return name, err
		}
	}
	return name, nil
}

// waitGone waits for the loop device's partition to go and the device to
// be free (a liveness bound only).
func waitGone(name string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		_, e1 := os.Stat("/sys/class/block/" + name + "p1")
		_, e2 := os.Stat("/sys/class/block/" + name + "/loop/backing_file")
		if os.IsNotExist(e1) && os.IsNotExist(e2) {
			return nil
		}
	}
	return fmt.Errorf("%s did not go away", name)
}

func makeImage(dir string) (string, error) {
	img := filepath.Join(dir, "stick.img")
	if err := os.WriteFile(img, nil, 0o644); err != nil {
		return "", err
	}
	if err := os.Truncate(img, 64<<20); err != nil {
		return "", err
	}
	cmd := exec.Command("sfdisk", "-q", img)
	cmd.Stdin = strings.NewReader("label: dos\n,,83\n")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("sfdisk: %v: %s", err, b)
	}
	name, err := attach(img)
	if err != nil {
		return "", err
	}
	defer func() { run("losetup", "-d", "/dev/"+name); waitGone(name) }()
	node := "/dev/" + name + "p1"
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(node); err == nil {
			break
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s never appeared", node)
		}
	}
	if _, err := run("mkfs.ext4", "-q", "-L", label, node); err != nil {
		return "", err
	}
	// A file, so that listing the stick lists something.
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if _, err := run("mount", node, mnt); err != nil {
		return "", err
	}
	os.WriteFile(filepath.Join(mnt, "hello.txt"), []byte("hello\n"), 0o644)
	if _, err := run("umount", mnt); err != nil {
		return "", err
	}
	return img, nil
}

// --- airlock ---------------------------------------------------------------

// mountedWatch discards logs and sends the device of each "mounted" line
// that the automount plugin itself logs (source=plugin): the plugin has
// been told, by the return of its mount call, and has listed the stick.
type mountedWatch struct {
	running chan struct{}
	once    sync.Once
	mounted chan string
	gone    chan string
}

func (h *mountedWatch) Enabled(context.Context, slog.Level) bool { return true }
func (h *mountedWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message == "airlock running" {
		h.once.Do(func() { close(h.running) })
		return nil
	}
	var plugin bool
	var device string
	text := r.Message
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "source":
			plugin = a.Value.String() == "plugin"
		case "device":
			device = a.Value.String()
		}
		text += " " + a.Key + "=" + a.Value.String()
		return true
	})
	if !plugin {
		return nil
	}
	if device == "" { // the SDK may put its key=values in the message
		if i := strings.Index(text, "device="); i >= 0 {
			device = strings.Fields(text[i+len("device="):])[0]
		}
	}
	switch {
	case strings.HasPrefix(text, "mounted "):
		h.mounted <- device
	case strings.HasPrefix(text, "unmounted ") || strings.HasPrefix(text, "pulled out"):
		select {
		case h.gone <- device:
		default:
		}
	}
	return nil
}
func (h *mountedWatch) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *mountedWatch) WithGroup(string) slog.Handler      { return h }

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

func runAirlock(work, img string) ([]time.Duration, error) {
	root := repoRoot()
	dir := filepath.Join(work, "airlock")
	pd := filepath.Join(dir, "plugins", "automount")
	if err := os.MkdirAll(pd, 0o755); err != nil {
		return nil, err
	}
	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-o", filepath.Join(pd, "automount.wasm"), "./plugins/automount")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build plugins/automount: %v: %s", err, b)
	}
	man, err := os.ReadFile(filepath.Join(root, "plugins/automount/plugin.toml"))
	if err != nil {
		return nil, err
	}
	// The shipped manifest, kept off the machine's other disks.
	text := strings.Replace(string(man), `properties = { ID_FS_TYPE = `, `properties = { ID_FS_LABEL = "`+label+`", ID_FS_TYPE = `, 1)
	if text == string(man) {
		return nil, errors.New("plugins/automount/plugin.toml changed: cannot add the label filter")
	}
	if err := os.WriteFile(filepath.Join(pd, "plugin.toml"), []byte(text), 0o644); err != nil {
		return nil, err
	}
	rt := "plugins = [\"plugins\"]\nstate_dir = \"state\"\ndevice = \"real\"\n[log]\naudit = \"off\"\n[admin]\nsocket = \"off\"\n[udev]\nsource = \"kernel\"\n" +
		"[mount]\ndisks = [\"loop\"]\n" // the benchmark's sticks are loop devices
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		return nil, err
	}
	w := &mountedWatch{running: make(chan struct{}), mounted: make(chan string, 16), gone: make(chan string, 16)}
	// CheckEvery only speeds up the clean-up between repetitions (a
	// loop device detached under a mount sends no uevent until unmounted).
	u := udev.New()
	m := mount.New(mount.Options{CheckEvery: 50 * time.Millisecond, Devices: u.Devices()})
	h, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Logger: slog.New(w), Capabilities: []capability.Capability{u, m}})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-w.running:
	case err := <-done:
		return nil, fmt.Errorf("host: %v", err)
	case <-time.After(5 * time.Minute):
		return nil, errors.New("host did not start")
	}
	if f := h.Failures(); len(f) > 0 {
		return nil, fmt.Errorf("automount failed to load: %v", f)
	}
	media := filepath.Join(dir, "state", "media", "automount")
	return repeat("airlock", func() (time.Duration, error) {
		t0 := time.Now()
		name, err := attach(img)
		if err != nil {
			return 0, err
		}
		want := "/dev/" + name + "p1"
		var d time.Duration
		for d == 0 {
			select {
			case got := <-w.mounted:
				if got == want {
					d = time.Since(t0)
				}
			case <-time.After(60 * time.Second):
				run("losetup", "-d", "/dev/"+name)
				return 0, fmt.Errorf("no mounted line for %s", want)
			}
		}
		// Pulled out: the host detaches the mount and the kernel then
		// removes the device.
		if _, err := run("losetup", "-d", "/dev/"+name); err != nil {
			return 0, err
		}
		if err := waitGone(name); err != nil {
			return 0, err
		}
		return d, waitUnmounted(media)
	})
}

// waitUnmounted waits until nothing is mounted below dir.
func waitUnmounted(dir string) error {
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b, _ := os.ReadFile("/proc/self/mountinfo")
		if !bytes.Contains(b, []byte(" "+dir+"/")) {
			return nil
		}
	}
	return fmt.Errorf("still mounted under %s", dir)
}

// repeat runs one warm-up and then n measured repetitions.
func repeat(method string, once func() (time.Duration, error)) ([]time.Duration, error) {
	if _, err := once(); err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	var out []time.Duration
	for i := range *reps {
		d, err := once()
		if err != nil {
			return nil, fmt.Errorf("repetition %d: %w", i+1, err)
		}
		if *verbose {
			fmt.Fprintf(os.Stderr, "%s %d: %v\n", method, i+1, d)
		}
		out = append(out, d)
	}
	return out, nil
}

func report(method string, s []time.Duration) {
	slices.Sort(s)
	q := func(f float64) time.Duration { return s[min(len(s)-1, int(f*float64(len(s))))] }
	p50 := s[len(s)/2]
	if len(s)%2 == 0 {
		p50 = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	fmt.Printf("BenchmarkAutomount/%s\t%d\t%d ns/op\t%.2f p50-ms\t%.2f p90-ms\t%.2f min-ms\t%.2f max-ms\t%d runs\n",
		method, len(s), p50.Nanoseconds(), ms(p50), ms(q(0.9)), ms(s[0]), ms(s[len(s)-1]), len(s))
}

// --- the classic way -------------------------------------------------------

// classic writes mount.sh, the script the udev rule or the listener runs
// per event, and a FIFO it reports to once the stick is mounted and
// listed. It returns the script's path, the FIFO's reader and the media
// root.
func classic(work, method string) (script string, fifo *os.File, media string, err error) {
	dir := filepath.Join(work, method)
	media = filepath.Join(dir, "media")
	if err := os.MkdirAll(media, 0o755); err != nil {
		return "", nil, "", err
	}
	fifoPath := filepath.Join(dir, "done.fifo")
	if err := syscall.Mkfifo(fifoPath, 0o600); err != nil {
		return "", nil, "", err
	}
	// O_RDWR: the read end never sees EOF between writers.
	fifo, err = os.OpenFile(fifoPath, os.O_RDWR, 0)
	if err != nil {
		return "", nil, "", err
	}
	script = filepath.Join(dir, "mount.sh")
	text := `#!/bin/sh
# The classic automount script: run per uevent, it probes the partition
# with blkid and mounts it under the media root by its label.
[ "$ACTION" = add ] || exit 0
dev=/dev/${DEVNAME#/dev/}
eval "$(blkid -o udev -p "$dev")"
case "$ID_FS_TYPE" in vfat|exfat|ext4) ;; *) exit 0 ;; esac
case "$ID_FS_LABEL" in ` + label + `) ;; *) exit 0 ;; esac
dir="` + media + `/${ID_FS_LABEL:-$ID_FS_UUID}"
mkdir -p "$dir"
mount -t "$ID_FS_TYPE" -o nosuid,nodev,noexec "$dev" "$dir" || exit 1
n=$(ls -A "$dir" | wc -l)
echo "$dev $n" > ` + fifoPath + `
`
	return script, fifo, media, os.WriteFile(script, []byte(text), 0o755)
}

// classicRep is one repetition of a classic method: attach, wait for the
// script's report, then unmount and detach.
func classicRep(img, media string, reports chan string) (time.Duration, error) {
	t0 := time.Now()
	name, err := attach(img)
	if err != nil {
		return 0, err
	}
	want := "/dev/" + name + "p1"
	var d time.Duration
	for d == 0 {
		select {
		case got := <-reports:
			if strings.Fields(got)[0] == want {
				d = time.Since(t0)
			}
		case <-time.After(60 * time.Second):
			run("losetup", "-d", "/dev/"+name)
			return 0, fmt.Errorf("mount.sh did not report %s", want)
		}
	}
	if _, err := run("umount", filepath.Join(media, label)); err != nil {
		return 0, err
	}
	if _, err := run("losetup", "-d", "/dev/"+name); err != nil {
		return 0, err
	}
	return d, waitGone(name)
}

func readReports(fifo *os.File) chan string {
	ch := make(chan string, 16)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := fifo.Read(buf)
			if err != nil {
				close(ch)
				return
			}
			for _, l := range strings.Split(strings.TrimSpace(string(buf[:n])), "\n") {
				ch <- l
			}
		}
	}()
	return ch
}

// runUdevd runs systemd-udevd (Debian's udev package) with its own rules
// and one more, the classic automount rule, for the time of the
// measurement only.
func runUdevd(work, img string) ([]time.Duration, error) {
	bin := ""
	for _, p := range []string{"/usr/lib/systemd/systemd-udevd", "/lib/systemd/systemd-udevd"} {
		if _, err := os.Stat(p); err == nil {
			bin = p
		}
	}
	if bin == "" {
		return nil, errors.New("no systemd-udevd (apt-get install udev)")
	}
	ps, _ := filepath.Glob("/proc/[0-9]*/comm")
	for _, p := range ps {
		if b, _ := os.ReadFile(p); strings.TrimSpace(string(b)) == "systemd-udevd" {
			return nil, errors.New("a systemd-udevd is already running; not starting a second")
		}
	}
	script, fifo, media, err := classic(work, "udevd")
	if err != nil {
		return nil, err
	}
	defer fifo.Close()
	_, statErr := os.Stat("/run/udev")
	createdRun := os.IsNotExist(statErr)
	if err := os.MkdirAll("/run/udev/rules.d", 0o755); err != nil {
		return nil, err
	}
	if createdRun {
		defer os.RemoveAll("/run/udev")
	}
	rule := "/run/udev/rules.d/99-airlock-bench-automount.rules"
	text := `ACTION=="add", SUBSYSTEM=="block", ENV{DEVTYPE}=="partition", KERNEL=="loop*", RUN+="/bin/sh -c '` + script + `'"` + "\n"
	if err := os.WriteFile(rule, []byte(text), 0o644); err != nil {
		return nil, err
	}
	defer os.Remove(rule)
	var stderr bytes.Buffer
	cmd := exec.Command(bin)
	cmd.Stderr = &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	}()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat("/run/udev/control"); err == nil {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("systemd-udevd exited: %v: %s", err, lastLine(stderr.String()))
		default:
		}
		if time.Now().After(deadline) {
			return nil, errors.New("systemd-udevd did not open /run/udev/control")
		}
	}
	reports := readReports(fifo)
	return repeat("udevd", func() (time.Duration, error) { return classicRep(img, media, reports) })
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

// runNetlink is the classic way without udevd: a listener on the kernel's
// uevent socket (netlink group 1) that forks /bin/sh mount.sh for each
// partition add, with the event's properties as its environment, as
// udevd's RUN+= would.
func runNetlink(work, img string) ([]time.Duration, error) {
	script, fifo, media, err := classic(work, "netlink")
	if err != nil {
		return nil, err
	}
	defer fifo.Close()
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_DGRAM|syscall.SOCK_CLOEXEC, syscall.NETLINK_KOBJECT_UEVENT)
	if err != nil {
		return nil, err
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK, Groups: 1}); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	stop := make(chan struct{})
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, _, err := syscall.Recvfrom(fd, buf, 0)
			select {
			case <-stop:
				return
			default:
			}
			if err != nil {
				if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.EAGAIN) {
					continue
				}
				return
			}
			// "add@/devices/...\0ACTION=add\0DEVPATH=...\0..."
			fields := strings.Split(string(buf[:n]), "\x00")
			env := []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
			props := map[string]string{}
			for _, f := range fields[1:] {
				if k, v, ok := strings.Cut(f, "="); ok {
					props[k] = v
					env = append(env, f)
				}
			}
			if props["ACTION"] != "add" || props["SUBSYSTEM"] != "block" || props["DEVTYPE"] != "partition" || !strings.HasPrefix(props["DEVNAME"], "loop") {
				continue
			}
			cmd := exec.Command("/bin/sh", script)
			cmd.Env = env
			if err := cmd.Start(); err == nil {
				go cmd.Wait()
			}
		}
	}()
	defer func() {
		close(stop)
		syscall.Shutdown(fd, syscall.SHUT_RDWR)
		syscall.Close(fd)
		// A recvfrom blocked on a closed socket may not wake; a last
		// event does, and the goroutine ends with the process otherwise.
	}()
	reports := readReports(fifo)
	return repeat("netlink", func() (time.Duration, error) { return classicRep(img, media, reports) })
}
