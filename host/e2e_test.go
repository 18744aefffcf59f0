package host_test

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/testenv"
)

// TestRunShippedConfig runs the real airlock binary on the shipped
// runtime.toml, as the README's first command does: the bundled plugins on
// the simulated device, playing the demo scenario. It reads the plugins'
// output, then stops it with SIGTERM and expects a clean exit.
func TestRunShippedConfig(t *testing.T) {
	// The simulated device's system bus is a private dbus-daemon.
	testenv.NeedCommand(t, "dbus-daemon", "dbus")
	root := testenv.RepoRoot(t)
	bin := filepath.Join(t.TempDir(), "airlock")
	build := exec.Command("go", "build", "-o", bin, "./cmd/airlock")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build airlock: %v\n%s", err, out)
	}
	// Run from a copy of the shipped config whose state lives in a temp
	// dir, so the test leaves the work tree alone.
	cfg, err := os.ReadFile(filepath.Join(root, "runtime.toml"))
	if err != nil {
		t.Fatal(err)
	}
	state := t.TempDir()
	cfg = bytes.Replace(cfg, []byte(`state_dir = ".airlock"`), []byte(`state_dir = "`+state+`"`), 1)
	if !bytes.Contains(cfg, []byte(state)) {
		t.Fatal(`runtime.toml no longer sets state_dir = ".airlock"; update this test`)
	}
	conf := filepath.Join(root, ".e2e-runtime.toml")
	if err := os.WriteFile(conf, cfg, 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(conf)

	cmd := exec.Command(bin, "run", "--config", conf)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "BALENA_DEVICE_TYPE=raspberrypi4-64", "BALENA_SUPERVISOR_API_KEY=must-not-leak")
	stderr, _ := cmd.StderrPipe()
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var lines []string
	seen := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			if strings.Contains(sc.Text(), "end of the demo") {
				once.Do(func() { close(seen) })
			}
		}
	}()
	select {
	case <-seen:
	case <-time.After(3 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the demo scenario did not end; output:\n%s", strings.Join(lines, "\n"))
	}
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	mu.Lock()
	out := strings.Join(lines, "\n")
	mu.Unlock()
	if err != nil {
		t.Fatalf("airlock run exited with %v after SIGTERM; output:\n%s", err, out)
	}
	for _, want := range []string{
		// A plugin's fields are attributes after its source, not text in
		// its message.
		`msg="hello from a sandboxed plugin" plugin=hello source=plugin device_type=raspberrypi4-64`,
		// The demo: a stick is automounted and unmounted, NTP sync is
		// lost, and the update lock refuses a reboot.
		`msg=mounted plugin=automount source=plugin device=/dev/sdb1 path=/media/MEDIA fstype=vfat readonly=false entries=3`,
		`msg="pulled out while mounted; unmounted (unplug only after unmounting to be sure writes are on it)" plugin=automount source=plugin target=MEDIA device=/dev/sdb1 reason="device removed"`,
		`msg="NTPSynchronized changed" plugin=ntp-check source=plugin synced=false`,
		// The stick's webhook went out with the host's token, redacted
		// in the echo the plugin read back.
		`msg="webhook sent" plugin=webhook source=plugin label=MEDIA status=200`,
		`\"Authorization\":[\"Bearer [redacted]\"]`,
		`msg="the update lock refused the reboot; asking again at the next check" plugin=supervisor-reboot source=plugin service=main`,
		// A read-only supervisor operation of issue 20.
		`msg="device report" plugin=device-info source=plugin device_type=raspberrypi4-64 arch=aarch64 app=airlock-sim update_status=done`,
		`msg=goodbye plugin=hello source=plugin`,
		`msg="airlock stopped"`,
		// The audit shares stderr with the text log, so it is text too.
		`msg=audit stream=audit plugin=supervisor-reboot capability=supervisor`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "{") {
			t.Errorf("a JSON line in the text log: %s", l)
			break
		}
	}
	if strings.Contains(out, "must-not-leak") {
		t.Errorf("the supervisor API key appeared in the output")
	}
}
