package host_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/airlockhq/airlock/internal/admin"
	"github.com/airlockhq/airlock/internal/simdevice/dbussim"
	"github.com/airlockhq/airlock/internal/testenv"
)

// runningAirlock is the real binary running a runtime.toml, its stderr
// collected line by line.
type runningAirlock struct {
	cmd   *exec.Cmd
	mu    sync.Mutex
	lines []string
	eof   chan struct{}
}

func startAirlock(t *testing.T, bin, conf string) *runningAirlock {
	t.Helper()
	cmd := exec.Command(bin, "run", "--config", conf)
	cmd.Dir = filepath.Dir(conf)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r := &runningAirlock{cmd: cmd, eof: make(chan struct{})}
	go func() {
		defer close(r.eof)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			r.mu.Lock()
			r.lines = append(r.lines, sc.Text())
			r.mu.Unlock()
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return r
}

func (r *runningAirlock) output() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.lines, "\n")
}

// wait waits for a line that contains all of parts (a liveness bound, not a
// timing assertion).
func (r *runningAirlock) wait(t *testing.T, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		for _, l := range r.lines {
			ok := true
			for _, p := range parts {
				ok = ok && strings.Contains(l, p)
			}
			if ok {
				r.mu.Unlock()
				return l
			}
		}
		r.mu.Unlock()
		select {
		case <-r.eof:
			t.Fatalf("airlock exited before logging %q:\n%s", parts, r.output())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("airlock did not log %q:\n%s", parts, r.output())
	return ""
}

var (
	totalsLine  = regexp.MustCompile(`totals handled=(\d+) dropped=(\d+)`)
	droppedLine = regexp.MustCompile(`events dropped: queue full" plugin=counter count=(\d+)`)
)

// TestSignalsDuringBurst runs the real binary with a slow counting plugin
// and a small queue, fires 1000 udev events at it over the admin socket
// from four clients, and sends a signal after 300 have been answered.
//
// SIGTERM, SIGINT and SIGQUIT each stop the host as SIGTERM does: exit 0;
// every event the admin socket accepted ({"queued":true}) was handled
// before the stop handler ran; every one refused while the plugin ran was
// reported to it as dropped, and the log says which signal ended the host.
// The totals come from the stop handler, so an event delivered after stop
// would be missing from them: stop was delivered last.
//
// SIGHUP re-reads runtime.toml mid-burst (whose log.level and [limits] the
// test has changed): the host applies log.level, says that [limits] waits
// for a restart, reloads no plugin and loses nothing; the burst completes,
// then SIGTERM stops it, and handled + dropped = sent exactly.
//
// The queue drops the newest: with drop_oldest, the admin socket answers
// 503 when the event was queued but an older one was dropped, so the
// client could not tell what was accepted.
func TestSignalsDuringBurst(t *testing.T) {
	testenv.NeedCommand(t, "dbus-daemon", "dbus")
	bin := testenv.Airlock(t)
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP} {
		t.Run(sigName[sig], func(t *testing.T) { signalDuringBurst(t, bin, sig) })
	}
}

var sigName = map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGHUP: "SIGHUP"}

func signalDuringBurst(t *testing.T, bin string, sig syscall.Signal) {
	dir := t.TempDir()
	testenv.PluginDir(t, filepath.Join(dir, "plugins"), "counter",
		// A udev rule no real event matches: airlock trigger refuses an
		// event kind the plugin has no trigger for.
		"name = \"counter\"\nversion = \"0.1.0\"\n[limits]\nqueue = 16\n[config]\nwork = \"sleep\"\n[[trigger.udev]]\nsubsystem = \"airlock-test\"\n",
		"internal/security/testdata/counter")
	sock := filepath.Join(dir, "admin.sock")
	conf := filepath.Join(dir, "runtime.toml")
	rt := fmt.Sprintf("plugins = [\"plugins\"]\nstate_dir = \"state\"\ndevice = \"sim\"\n[admin]\nsocket = %q\n[scenario]\nplay = \"none\"\n", sock)
	if err := os.WriteFile(conf, []byte(rt+"[log]\naudit = \"off\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startAirlock(t, bin, conf)
	r.wait(t, "airlock running")
	r.wait(t, "started", "plugin=counter")
	if sig == syscall.SIGHUP {
		// What SIGHUP finds: a new log level (applied) and new default
		// limits (not applied until a restart).
		if err := os.WriteFile(conf, []byte(rt+"[log]\naudit = \"off\"\nlevel = \"debug\"\n[limits]\nqueue = 8\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	const burst, clients, signalAfter = 1000, 4, 300
	var sent, accepted, refused atomic.Int64
	var wg sync.WaitGroup
	signalled := make(chan struct{})
	var once sync.Once
	c := admin.NewClient(sock)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := sent.Add(1)
				if i > burst {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := c.Trigger(ctx, admin.TriggerRequest{Plugin: "counter", Kind: "udev",
					Args: []string{"ACTION=add", fmt.Sprintf("DEVPATH=/devices/virtual/tty/burst%d", i), "SUBSYSTEM=tty"}})
				cancel()
				if err != nil {
					refused.Add(1)
				} else {
					accepted.Add(1)
				}
				if accepted.Load()+refused.Load() >= signalAfter {
					once.Do(func() {
						r.cmd.Process.Signal(sig)
						close(signalled)
					})
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-signalled:
	default:
		t.Fatalf("%s was never sent:\n%s", sigName[sig], r.output())
	}
	ended := sig
	if sig == syscall.SIGHUP {
		line := r.wait(t, "runtime.toml re-read", "signal=SIGHUP")
		if !strings.Contains(line, "applied=[log.level]") || !strings.Contains(line, "not_applied_until_restart=[limits]") {
			t.Errorf("the re-read says %q, want log.level applied and [limits] not", line)
		}
		ended = syscall.SIGTERM
		r.cmd.Process.Signal(ended)
	}
	err := r.cmd.Wait()
	<-r.eof
	out := r.output()
	if err != nil {
		t.Fatalf("airlock exited with %v after %s:\n%s", err, sigName[sig], out)
	}
	r.wait(t, "shutting down", `cause="signal `+sigName[ended]+`"`)
	r.wait(t, "airlock stopped", `cause="signal `+sigName[ended]+`"`)
	m := totalsLine.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the stop handler did not run (no totals line):\n%s", out)
	}
	handled, _ := strconv.Atoi(m[1])
	dropped, _ := strconv.Atoi(m[2])
	hostDropped := 0
	for _, d := range droppedLine.FindAllStringSubmatch(out, -1) {
		n, _ := strconv.Atoi(d[1])
		hostDropped += n
	}
	total := min(sent.Load(), burst)
	t.Logf("%d events sent, %d accepted (%s after %d answers), %d refused; the plugin handled %d and was told of %d dropped",
		total, accepted.Load(), sigName[sig], signalAfter, refused.Load(), handled, dropped)
	if int64(handled) != accepted.Load() {
		t.Errorf("the plugin handled %d events, want the %d accepted", handled, accepted.Load())
	}
	if int64(handled+dropped) > total {
		t.Errorf("handled %d + dropped %d is more than the %d sent", handled, dropped, total)
	}
	if sig == syscall.SIGHUP {
		// Nothing stopped mid-burst: every refusal was a counted drop.
		if int64(handled+dropped) != total {
			t.Errorf("handled %d + dropped %d = %d, want the %d sent", handled, dropped, handled+dropped, total)
		}
		if strings.Contains(out, "plugin reloaded") {
			t.Errorf("SIGHUP reloaded an unchanged plugin:\n%s", out)
		}
	} else if accepted.Load() == 0 || accepted.Load() >= burst {
		t.Errorf("%d of %d events accepted: %s did not land mid-burst", accepted.Load(), burst, sigName[sig])
	}
	if dropped != hostDropped {
		t.Errorf("the plugin was told of %d dropped events, the host logged %d", dropped, hostDropped)
	}
	// Nothing reaches the plugin after its stop handler.
	after := out[strings.Index(out, m[0]):]
	if strings.Contains(after, "plugin=counter") && strings.Contains(after, "events dropped") {
		t.Errorf("a dropped notice came after the stop event:\n%s", after)
	}
}

// TestKill9LeavesNoDBusDaemon kills the real binary, running the simulated
// device, with SIGKILL: the private dbus-daemon it started must not outlive
// it (it used to: one 4.7 MB daemon per kill).
func TestKill9LeavesNoDBusDaemon(t *testing.T) {
	testenv.NeedCommand(t, "dbus-daemon", "dbus")
	bin := testenv.Airlock(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "runtime.toml")
	rt := "plugins = [\"plugins\"]\nstate_dir = \"state\"\ndevice = \"sim\"\n[admin]\nsocket = \"off\"\n[scenario]\nplay = \"none\"\n[log]\naudit = \"off\"\n"
	if err := os.MkdirAll(filepath.Join(dir, "plugins"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(conf, []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startAirlock(t, bin, conf)
	r.wait(t, "airlock running")
	simDir := filepath.Join(dir, "state", "sim-dbus")
	b, err := os.ReadFile(filepath.Join(simDir, "dbus-daemon.pid"))
	if err != nil {
		t.Fatalf("the simulated bus wrote no pid file: %v\n%s", err, r.output())
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	busConf := filepath.Join(simDir, "bus.conf")
	if !dbussim.OwnDaemon(pid, busConf) {
		t.Fatalf("pid %d is not the host's dbus-daemon", pid)
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	// A liveness bound: the kernel kills it at once.
	for deadline := time.Now().Add(30 * time.Second); dbussim.OwnDaemon(pid, busConf); {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("dbus-daemon %d outlived the host killed with SIGKILL", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
