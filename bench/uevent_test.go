package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/airlockhq/airlock/host"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/host/manifest"
	"github.com/airlockhq/airlock/internal/udev"
)

// probe is a capability that exists only in this benchmark: its one host
// function, airlock_benchprobe_v1.mark, is what the probe guest calls from
// its udev handler once it has read the event's payload. mark takes the
// time there, so a latency is "the injecting goroutine calls Inject" to
// "the plugin's handler is running with the event in its memory", all on
// the monotonic clock of one process. Each plugin's handler sees every
// event in order (its queue is larger than a round and nothing coalesces
// add or remove), so its k-th mark belongs to the k-th injected event.
type probe struct {
	base   time.Time
	t0     []int64 // injection times since base, by event index % len
	tracks map[string]*track
	total  atomic.Int64 // marks so far, all plugins
	want   atomic.Int64 // the total at which to signal done
	done   chan struct{}
}

// track is one plugin's marks; only that plugin's goroutine writes it, and
// the benchmark reads it after done, which orders the writes before.
type track struct {
	n   int64   // events marked
	lat []int64 // ns from Inject to mark, one per event
}

const probeRing = 1 << 13

func newProbe(plugins []string) *probe {
	p := &probe{base: time.Now(), t0: make([]int64, probeRing), tracks: map[string]*track{}, done: make(chan struct{}, 1)}
	for _, n := range plugins {
		p.tracks[n] = &track{lat: make([]int64, 0, 1<<16)}
	}
	return p
}

func (*probe) Name() string   { return "benchprobe" }
func (*probe) Module() string { return "airlock_benchprobe_v1" }
func (*probe) DecodeGrant(manifest.Section) (any, error) {
	return struct{}{}, nil
}
func (p *probe) Functions() []capability.Func {
	return []capability.Func{{Name: "mark", Results: []api.ValueType{api.ValueTypeI32}, Call: p.mark}}
}

func (p *probe) mark(_ context.Context, in *capability.Caller, _ api.Module, stack []uint64) {
	now := int64(time.Since(p.base))
	tr := p.tracks[in.Plugin]
	tr.lat = append(tr.lat, now-p.t0[tr.n%probeRing])
	tr.n++
	if p.total.Add(1) == p.want.Load() {
		p.done <- struct{}{}
	}
	stack[0] = 0
}

// expect arms done for n more marks; call it with nothing in flight.
func (p *probe) expect(n int64) { p.want.Store(p.total.Load() + n) }

func (p *probe) wait(b *testing.B) {
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		b.Fatalf("only %d of %d handler marks after a minute: events were lost (queue overflow?)", p.total.Load(), p.want.Load())
	}
}

// mark positions of every track, to take the latencies of one phase.
func (p *probe) marks() map[string]int {
	m := map[string]int{}
	for n, tr := range p.tracks {
		m[n] = len(tr.lat)
	}
	return m
}

func (p *probe) since(from map[string]int) []int64 {
	var all []int64
	for n, tr := range p.tracks {
		all = append(all, tr.lat[from[n]:]...)
	}
	slices.Sort(all)
	return all
}

func reportLatency(b *testing.B, lat []int64) {
	if len(lat) == 0 {
		return
	}
	q := func(f float64) float64 { return float64(lat[min(len(lat)-1, int(f*float64(len(lat))))]) / 1e3 }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(float64(lat[len(lat)-1])/1e3, "max-µs")
	b.ReportMetric(float64(len(lat)), "samples")
}

// ueventHost runs the real host with the udev capability (replay source,
// nothing recorded: events come only from Inject) and n probe plugins, each
// with the automount plugin's rule. It returns once the udev source has
// started.
func ueventHost(b *testing.B, n int) (*udev.Udev, *probe) {
	b.Helper()
	dir := b.TempDir()
	var names []string
	wasm := probeModule()
	for i := range n {
		name := fmt.Sprintf("p%03d", i)
		names = append(names, name)
		pd := filepath.Join(dir, "plugins", name)
		if err := os.MkdirAll(pd, 0o755); err != nil {
			b.Fatal(err)
		}
		man := "name = \"" + name + "\"\nversion = \"1.0.0\"\nwasm = \"p.wasm\"\n[benchprobe]\n" +
			"[[trigger.udev]]\nsubsystem = \"block\"\ndevtype = \"partition\"\naction = [\"add\", \"remove\"]\nproperties = { ID_FS_TYPE = \"vfat|exfat|ext4\" }\n"
		if err := os.WriteFile(filepath.Join(pd, "plugin.toml"), []byte(man), 0o644); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(pd, "p.wasm"), wasm, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	rt := "plugins = [\"plugins\"]\nstate_dir = \"state\"\ndevice = \"real\"\n[log]\naudit = \"off\"\n[admin]\nsocket = \"off\"\n" +
		"[limits]\nqueue = 4096\n[udev]\nsource = \"replay\"\nreplay = \"none\"\nreplay_pace = \"instant\"\n"
	if err := os.WriteFile(filepath.Join(dir, "runtime.toml"), []byte(rt), 0o644); err != nil {
		b.Fatal(err)
	}
	u, pr := udev.New(), newProbe(names)
	started := make(chan struct{})
	logger := slog.New(&watchHandler{msg: "airlock running", seen: started})
	h, err := host.New(filepath.Join(dir, "runtime.toml"), host.Options{Logger: logger, Capabilities: []capability.Capability{u, pr}})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	})
	select {
	case <-started:
	case err := <-done:
		b.Fatalf("host ended: %v", err)
	case <-time.After(2 * time.Minute):
		b.Fatal("host did not start")
	}
	if f := h.Failures(); len(f) > 0 {
		b.Fatalf("plugins failed to load: %v", f)
	}
	return u, pr
}

// cpuTime is the process's user and system CPU time so far, in ns.
func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// watchHandler discards logs but closes seen at the first record whose
// message is msg.
type watchHandler struct {
	msg  string
	seen chan struct{}
	once atomic.Bool
}

func (h *watchHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *watchHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg && h.once.CompareAndSwap(false, true) {
		close(h.seen)
	}
	return nil
}
func (h *watchHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *watchHandler) WithGroup(string) slog.Handler      { return h }

// stickEvents are a USB stick's partition coming and going, as udevd
// reports it (ID_FS_* present, so the host probes nothing).
func stickEvents() [2]udev.UEvent {
	props := map[string]string{
		"MAJOR": "8", "MINOR": "17", "PARTN": "1", "ID_BUS": "usb", "ID_VENDOR": "SanDisk", "ID_MODEL": "Cruzer_Blade",
		"ID_SERIAL": "SanDisk_Cruzer_Blade_4C530001230101115384-0:0", "ID_FS_TYPE": "vfat", "ID_FS_LABEL": "MEDIA",
		"ID_FS_UUID": "1234-ABCD", "ID_FS_VERSION": "FAT32", "ID_FS_USAGE": "filesystem", "ID_PART_ENTRY_TYPE": "0xc",
	}
	ev := udev.UEvent{Action: "add", DevPath: "/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/host6/target6:0:0/6:0:0:0/block/sdb/sdb1",
		Subsystem: "block", DevType: "partition", DevName: "/dev/sdb1", SeqNum: "4721", Props: props}
	rm := ev
	rm.Action, rm.SeqNum = "remove", "4722"
	return [2]udev.UEvent{ev, rm}
}

// BenchmarkUEvent: a uevent through the real host (udev routing, plugin
// queues, plugin goroutines) to the handlers of 1, 10 and 100 subscribed
// plugins. See probe for what a latency spans.
func BenchmarkUEvent(b *testing.B) {
	evs := stickEvents()
	for _, n := range []int{1, 10, 100} {
		b.Run("plugins="+strconv.Itoa(n), func(b *testing.B) {
			u, pr := ueventHost(b, n)
			var k int64 // events injected
			inject := func() {
				pr.t0[k%probeRing] = int64(time.Since(pr.base))
				u.Inject(evs[k&1])
				k++
			}
			// Warm up: instances started, code paths hot.
			for range 100 {
				pr.expect(int64(n))
				inject()
				pr.wait(b)
			}
			// One event in flight: the latency of a lone event, as device
			// events usually come. ns/op is until the last handler ran.
			b.Run("idle", func(b *testing.B) {
				from := pr.marks()
				for b.Loop() {
					pr.expect(int64(n))
					inject()
					pr.wait(b)
				}
				reportLatency(b, pr.since(from))
			})
			// Offered load of 50k events/s (the target rate): rounds of
			// 1000 events, one every 20 µs. The injector yields while it
			// waits for the next slot, as a reader blocked in recvmsg would.
			b.Run("load=50k", func(b *testing.B) {
				const round, gap = 1000, 20 * time.Microsecond
				from := pr.marks()
				for b.Loop() {
					pr.expect(int64(n * round))
					start := time.Since(pr.base)
					for i := range round {
						slot := start + time.Duration(i)*gap
						for time.Since(pr.base) < slot {
							runtime.Gosched()
						}
						inject()
					}
					pr.wait(b)
				}
				reportLatency(b, pr.since(from))
			})
			// Throughput: rounds of 1000 events injected back to back; an
			// op ends when every plugin has handled all of them.
			b.Run("burst", func(b *testing.B) {
				const round = 1000
				cpu0 := cpuTime()
				for b.Loop() {
					pr.expect(int64(n * round))
					for range round {
						inject()
					}
					pr.wait(b)
				}
				b.ReportMetric(float64(b.N*round)/b.Elapsed().Seconds(), "events/s")
				b.ReportMetric(float64(b.N*round*n)/b.Elapsed().Seconds(), "deliveries/s")
				// CPU time of the whole process per event: what the
				// machine's other load does not change much.
				b.ReportMetric(float64(cpuTime()-cpu0)/1e3/float64(b.N*round), "cpu-µs/event")
			})
			if st := u.Stats(); st.Refused != 0 {
				b.Errorf("%d deliveries refused (queue full)", st.Refused)
			}
		})
	}
}

// BenchmarkUEventShellAnchor is the classic handler's floor: a udev rule's
// RUN+="/bin/sh -c ..." forks and execs a shell per event. This measures
// fork+exec of `/bin/sh -c :` to its exit, one event at a time, with no
// udevd and no rule processing around it.
func BenchmarkUEventShellAnchor(b *testing.B) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		b.Skip("no sh")
	}
	var lat []int64
	for b.Loop() {
		t0 := time.Now()
		if err := exec.Command(sh, "-c", ":").Run(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, int64(time.Since(t0)))
	}
	slices.Sort(lat)
	reportLatency(b, lat)
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
