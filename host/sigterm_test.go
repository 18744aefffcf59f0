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

	"github.com/airlockhq/airlock/host/admin"
	"github.com/airlockhq/airlock/host/internal/testenv"
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

// TestSIGTERMDuringBurst runs the real binary with a slow counting plugin
// and a small queue, fires 1000 udev events at it over the admin socket
// from four clients, and sends SIGTERM after 300 have been answered. The
// host must exit 0; every event it accepted (answered 200) must have been
// handled before the stop handler ran, and every one refused while the
// plugin ran must have been reported to it as dropped. The totals come
// from the stop handler, so an event delivered after stop would be missing
// from them: stop was delivered last.
//
// The queue drops the newest: with drop_oldest, the admin socket answers
// 503 when the event was queued but an older one was dropped, so the
// client could not tell what was accepted.
func TestSIGTERMDuringBurst(t *testing.T) {
	testenv.NeedCommand(t, "dbus-daemon", "dbus")
	bin := testenv.Airlock(t)
	dir := t.TempDir()
	testenv.PluginDir(t, filepath.Join(dir, "plugins"), "counter",
		// A udev rule no real event matches: airlock trigger refuses an
		// event kind the plugin has no trigger for.
		"name = \"counter\"\nversion = \"0.1.0\"\n[limits]\nqueue = 16\n[config]\nwork = \"sleep\"\n[[trigger.udev]]\nsubsystem = \"airlock-test\"\n",
		"host/security/testdata/counter")
	sock := filepath.Join(dir, "admin.sock")
	conf := filepath.Join(dir, "runtime.toml")
	rt := fmt.Sprintf("plugins = [\"plugins\"]\nstate_dir = \"state\"\ndevice = \"sim\"\n[log]\naudit = \"off\"\n[admin]\nsocket = %q\n[scenario]\nplay = \"none\"\n", sock)
	if err := os.WriteFile(conf, []byte(rt), 0o644); err != nil {
		t.Fatal(err)
	}
	r := startAirlock(t, bin, conf)
	r.wait(t, "airlock running")
	r.wait(t, "started", "plugin=counter")

	const burst, clients, termAfter = 1000, 4, 300
	var sent, accepted, refused atomic.Int64
	var wg sync.WaitGroup
	termed := make(chan struct{})
	var termOnce sync.Once
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
				_, err := c.Trigger(ctx, admin.TriggerRequest{Plugin: "counter", Kind: admin.KindUdev, Action: "add",
					DevPath: fmt.Sprintf("/devices/virtual/tty/burst%d", i), Props: map[string]string{"SUBSYSTEM": "tty"}})
				cancel()
				if err != nil {
					refused.Add(1)
				} else {
					accepted.Add(1)
				}
				if accepted.Load()+refused.Load() >= termAfter {
					termOnce.Do(func() {
						r.cmd.Process.Signal(syscall.SIGTERM)
						close(termed)
					})
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-termed:
	default:
		t.Fatalf("SIGTERM was never sent:\n%s", r.output())
	}
	err := r.cmd.Wait()
	<-r.eof
	out := r.output()
	if err != nil {
		t.Fatalf("airlock exited with %v after SIGTERM:\n%s", err, out)
	}
	r.wait(t, "airlock stopped")
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
	t.Logf("%d events sent, %d accepted (SIGTERM after %d answers), %d refused; the plugin handled %d and was told of %d dropped",
		min(sent.Load(), burst), accepted.Load(), termAfter, refused.Load(), handled, dropped)
	if int64(handled) != accepted.Load() {
		t.Errorf("the plugin handled %d events, want the %d accepted", handled, accepted.Load())
	}
	if int64(handled+dropped) > min(sent.Load(), burst) {
		t.Errorf("handled %d + dropped %d is more than the %d sent", handled, dropped, min(sent.Load(), burst))
	}
	if accepted.Load() == 0 || accepted.Load() >= burst {
		t.Errorf("%d of %d events accepted: SIGTERM did not land mid-burst", accepted.Load(), burst)
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
