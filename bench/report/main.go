// Command report turns `go test -bench` output into BENCHMARKS.md, with
// each airlock figure beside its anchors from the same run.
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

type result struct {
	nsOp, bOp, allocs float64
	metrics           map[string]float64
}

var line = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+(.*)$`)

func main() {
	res := map[string]result{}
	var order []string
	cpu := ""
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		t := sc.Text()
		if strings.HasPrefix(t, "cpu: ") {
			cpu = strings.TrimPrefix(t, "cpu: ")
		}
		m := line.FindStringSubmatch(t)
		if m == nil {
			continue
		}
		r := result{metrics: map[string]float64{}}
		f := strings.Fields(m[2])
		for i := 0; i+1 < len(f); i += 2 {
			v, _ := strconv.ParseFloat(f[i], 64)
			switch f[i+1] {
			case "ns/op":
				r.nsOp = v
			case "B/op":
				r.bOp = v
			case "allocs/op":
				r.allocs = v
			default:
				r.metrics[f[i+1]] = v
			}
		}
		res[m[1]] = r
		order = append(order, m[1])
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	fmt.Fprintf(w, "# Benchmarks\n\nWritten by `bench/run.sh` on %s, %s/%s, %d cores (%s). Every figure is from the same run as its anchors. Re-run: `bench/run.sh`.\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpu)

	fmt.Fprintf(w, "## Event delivery: host to handler, 32-byte payload\n\nTarget: under 1 µs and 0 allocations.\n\n| | ns/event | B/event | allocs/event |\n|---|---:|---:|---:|\n")
	for _, k := range []string{"airlock", "airlock-go-sdk", "wazero-raw", "wazero-raw-interruptible", "extism"} {
		if r, ok := res["EventDelivery/"+k]; ok {
			fmt.Fprintf(w, "| %s | %.0f | %.0f | %.0f |\n", label(k), r.nsOp, r.bOp, r.allocs)
		}
	}
	fmt.Fprintf(w, "\n`airlock` delivers to a hand-assembled module that reads the payload with `result_read`; `wazero-raw` calls the same export with no host around it; `extism` is `Plugin.Call` on the same module. `airlock-go-sdk` is the hello example built with the Go SDK (decoding the record included).\n\n")

	fmt.Fprintf(w, "## Capability call: guest to host to guest (`config_get`)\n\nTarget: within 2× of raw wazero.\n\n| | ns/call | ratio to raw | B/1000 calls | allocs/1000 calls |\n|---|---:|---:|---:|---:|\n")
	raw := res["CapabilityCall/wazero-raw"].nsOp
	for _, k := range []string{"airlock", "wazero-raw", "extism"} {
		if r, ok := res["CapabilityCall/"+k]; ok {
			ratio := "–"
			if raw > 0 {
				ratio = fmt.Sprintf("%.2f×", r.nsOp/raw)
			}
			fmt.Fprintf(w, "| %s | %.0f | %s | %.0f | %.0f |\n", label(k), r.nsOp/1000, ratio, r.bOp, r.allocs)
		}
	}
	fmt.Fprintf(w, "\nEach op is a guest loop of 1000 calls; the anchors register the same host function body the cheapest way their API allows.\n\n")

	fmt.Fprintf(w, "## Cold start: N plugins loaded, instantiated and started\n\nTarget: 20 Go plugins under 300 ms with a warm cache.\n\n| guest | N | warm cache | no cache |\n|---|---:|---:|---:|\n")
	var cs []string
	for _, k := range order {
		if strings.HasPrefix(k, "ColdStart/") && strings.HasSuffix(k, "/cache=warm") {
			cs = append(cs, k)
		}
	}
	sort.Slice(cs, func(i, j int) bool {
		pi, pj := strings.Split(cs[i], "/"), strings.Split(cs[j], "/")
		if pi[1] != pj[1] {
			return pi[1] < pj[1]
		}
		ni, _ := strconv.Atoi(strings.TrimPrefix(pi[2], "n="))
		nj, _ := strconv.Atoi(strings.TrimPrefix(pj[2], "n="))
		return ni < nj
	})
	for _, k := range cs {
		parts := strings.Split(k, "/")
		cold := res[strings.TrimSuffix(k, "warm")+"none"]
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", parts[1], strings.TrimPrefix(parts[2], "n="), dur(res[k].nsOp), dur(cold.nsOp))
	}
	fmt.Fprintf(w, "\n## Memory per instance\n\n| guest | module size | linear memory per started instance |\n|---|---:|---:|\n")
	for _, k := range order {
		if strings.HasPrefix(k, "InstanceMemory/") {
			r := res[k]
			fmt.Fprintf(w, "| %s | %s | %s |\n", strings.TrimPrefix(k, "InstanceMemory/"), size(r.metrics["module-bytes"]), size(r.metrics["mem-bytes/instance"]))
		}
	}
	fmt.Fprintf(w, "\n`wat` is the hand-assembled module. The C, Rust and AssemblyScript SDKs' footprints are measured by `go test -v -run TestFootprint ./host/conformance` and listed in sdk/README.md.\n")
	fmt.Fprintf(w, "\n## Against the targets\n\n")
	ev, raw2, rawI := res["EventDelivery/airlock"], res["EventDelivery/wazero-raw"], res["EventDelivery/wazero-raw-interruptible"]
	fmt.Fprintf(w, "- Event delivery: %.2f µs and %.0f allocations, against a target of 1 µs and 0: **%s**. Raw wazero costs %.2f µs per call, and %.2f µs (%.0f allocations) once `WithCloseOnContextDone` is on: wazero then starts a goroutine per call (`CloseModuleOnCanceledOrTimeout`). airlock keeps it on because it is what makes a runaway plugin stoppable; see host/RATIONALE.md.\n",
		ev.nsOp/1000, ev.allocs, verdict(ev.nsOp < 1000 && ev.allocs == 0), raw2.nsOp/1000, rawI.nsOp/1000, rawI.allocs)
	cc := res["CapabilityCall/airlock"].nsOp / raw
	fmt.Fprintf(w, "- Capability call: %.2f× raw wazero, against a target of 2×: **%s**.\n", cc, verdict(cc <= 2))
	g20 := res["ColdStart/go/n=20/cache=warm"].nsOp
	fmt.Fprintf(w, "- Cold start: 20 Go plugins with a warm cache in %s, against a target of 300 ms: **%s**. This run loads plugins one after another; the host loads them in parallel, one per core. Each Go instance runs the Go runtime's own start-up in `_initialize`; the small modules (`wat`, and the C, Rust and AssemblyScript SDKs) start in a few milliseconds.\n", dur(g20), verdict(g20 > 0 && g20 < 300e6))
	fmt.Fprintf(w, "\nFigures taken while other work shared the machine's two cores are noisy; compare rows within one run, not across runs.\n")
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

func label(k string) string {
	switch k {
	case "wazero-raw":
		return "raw wazero (anchor)"
	case "wazero-raw-interruptible":
		return "raw wazero with WithCloseOnContextDone"
	case "extism":
		return "Extism Go SDK (anchor)"
	}
	return k
}

func dur(ns float64) string {
	if ns == 0 {
		return "–"
	}
	return time.Duration(ns).Round(10 * time.Microsecond).String()
}

func size(b float64) string {
	switch {
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", b/(1<<20))
	case b >= 1<<10:
		return fmt.Sprintf("%.0f KiB", b/(1<<10))
	}
	return fmt.Sprintf("%.0f B", b)
}
