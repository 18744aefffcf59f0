package plugin

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
	"github.com/airlockhq/airlock/internal/wasmbin"
)

// handlerCtx is the context of one handler call. Its Done is nil: the
// watchdog, not the context, stops a runaway call. Host functions read the
// deadline from it to bound their own waits (sleep, HTTP, D-Bus).
//
// It keeps the values of the context the instance was made with, but not
// its cancellation, as context.WithoutCancel would; it does not wrap that,
// because wazero asks the context for a value on every call and a
// WithoutCancel context allocates for each Value.
type handlerCtx struct {
	values   context.Context
	deadline time.Time
}

func (c *handlerCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c *handlerCtx) Done() <-chan struct{}       { return nil }
func (c *handlerCtx) Err() error                  { return nil }
func (c *handlerCtx) Value(key any) any           { return c.values.Value(key) }

// Instance is one instantiation of the plugin's module. Run drives one at
// a time; tests, benchmarks and the plugin test harness may drive one
// directly with Handle. It is not safe for concurrent use.
type Instance struct {
	p        *Plugin
	mod      api.Module
	onEvent  api.Function
	stack    [2]uint64
	hctx     handlerCtx
	watchdog *time.Timer
	timedOut atomic.Bool
	// over is instrument's OverExport: non-zero after a table.grow past
	// the budget trapped; stackUsed is its StackExport, above the limit after
	// a call past it trapped. nil for a module without instrument's
	// checks.
	over, stackUsed api.MutableGlobal
}

// Run is the plugin's goroutine. It instantiates the module, delivers
// events until Stop, and restarts the instance with backoff after a crash.
// It returns after the stop event has been delivered and the instance closed.
func (p *Plugin) Run(ctx context.Context) {
	defer close(p.done)
	rs := p.opts.Runtime.Restart
	delay := rs.Initial.D()
	var crashes []time.Time
	for {
		started := time.Now()
		ran, err := p.runInstance(ctx)
		if err == nil || p.stopping() && errors.Is(err, errStopped) {
			p.setState(StateStopped, "")
			return
		}
		p.mu.Lock()
		p.restarts++
		p.mu.Unlock()
		// A crash after a long healthy run starts the backoff afresh.
		if time.Since(started) > rs.Window.D() {
			delay, crashes = rs.Initial.D(), nil
		}
		now := time.Now()
		crashes = append(crashes, now)
		for len(crashes) > 0 && now.Sub(crashes[0]) > rs.Window.D() {
			crashes = crashes[1:]
		}
		state := StateRestarting
		if len(crashes) >= rs.CrashLoop {
			state, delay = StateCrashLooping, rs.Max.D()
		}
		if p.stopping() {
			// Crashed while draining for shutdown: do not loop; say what
			// is left undelivered.
			depth, _ := p.q.stats()
			p.log.Error("plugin crashed during shutdown", "error", err.Error(), "undelivered", depth)
			p.setState(StateStopped, err.Error())
			return
		}
		p.setState(state, err.Error())
		p.log.Error("plugin crashed; restarting", "error", err.Error(), "state", string(state), "restart_in", delay.String())
		select {
		case <-time.After(delay):
		case <-p.stop:
			// Stopping while down: run one more instance to drain the
			// queue and deliver the stop event; unless the last one
			// never got past its start (a start function, _initialize or
			// start handler that traps or runs past its deadline), which
			// would only spend another handler_timeout of the shutdown.
			if !ran {
				depth, _ := p.q.stats()
				p.log.Error("plugin stopped while it could not start", "error", err.Error(), "undelivered", depth)
				p.setState(StateStopped, err.Error())
				return
			}
		}
		delay = min(delay*2, rs.Max.D())
	}
}

// logLosses says what a dropped notice reports: a warning for events lost
// (each cause with its limit), debug for coalesced ones, which are routine.
func (p *Plugin) logLosses(l *Losses) {
	kinds := func(m map[string]uint64) string {
		var b strings.Builder
		for i := range kindSlots {
			if n := m[KindName(i)]; n > 0 {
				if b.Len() > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "%s=%d", KindName(i), n)
			}
		}
		return b.String()
	}
	if n := l.Dropped(); n > 0 {
		p.log.Warn("events dropped: "+l.Reason(), "count", n, "by_kind", kinds(l.DroppedByKind()), "rate_limited", l.RateLimited(),
			"queue", p.M.Limits.Queue, "overflow", p.M.Limits.Overflow, "events_per_second", p.M.Limits.EventsPerSecond)
	}
	if n := l.CoalescedTotal(); n > 0 {
		p.log.Debug("events coalesced", "count", n, "by_kind", kinds(l.CoalescedByKind()))
	}
}

var (
	errStopped  = errors.New("stopped")
	errWatchdog = errors.New("watchdog")
)

// grace is how long past its deadline a handler may run before the watchdog
// stops it. Host functions honour the deadline itself (sleep returns
// abi.Timeout at it), so a handler that keeps to the deadline has time to
// return; only guest code that ignores it meets the watchdog.
func grace(timeout time.Duration) time.Duration {
	return min(max(timeout/10, 50*time.Millisecond), time.Second)
}

// startFunction names the module's start function (its wasm start
// section) in errors.
const startFunction = "the module's start function (its wasm start section)"

// Instantiate makes a fresh instance, runs the module's start function and
// _initialize, and delivers start, each under the watchdog with a deadline
// of limits.handler_timeout. Run uses it; so can a caller that drives
// events itself, while Run is not running.
func (p *Plugin) Instantiate(ctx context.Context) (*Instance, error) {
	p.caller.Reset()
	timeout := p.M.Limits.HandlerTimeout.D()
	ictx := ctx
	if !p.interruptible {
		// wazero runs the start section inside InstantiateModule; for a
		// module without instrument's checks (which call it afterwards),
		// a deadline on the context stops it there, by wazero's own
		// checks (WithCloseOnContextDone).
		var cancel context.CancelFunc
		ictx, cancel = context.WithTimeout(ctx, timeout+grace(timeout))
		defer cancel()
	}
	mod, err := p.runtime.InstantiateModule(ictx, p.compiled, p.modCfg)
	if err != nil {
		if ictx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("%s ran past limits.handler_timeout = %s and was stopped (make it return sooner, or raise the limit in plugin.toml)", startFunction, timeout)
		}
		return nil, fmt.Errorf("instantiate: %w", err)
	}
	in := &Instance{p: p, mod: mod, onEvent: mod.ExportedFunction(abi.ExportEvent)}
	in.hctx.values = ctx
	stop := func() { mod.CloseWithExitCode(context.Background(), exitTimeout) }
	if p.interruptible {
		flag, ok := mod.ExportedGlobal(wasmbin.InterruptExport).(api.MutableGlobal)
		budget, ok2 := mod.ExportedGlobal(wasmbin.BudgetExport).(api.MutableGlobal)
		in.over, _ = mod.ExportedGlobal(wasmbin.OverExport).(api.MutableGlobal)
		in.stackUsed, _ = mod.ExportedGlobal(wasmbin.StackExport).(api.MutableGlobal)
		stackLimit, ok3 := mod.ExportedGlobal(wasmbin.StackLimitExport).(api.MutableGlobal)
		if !ok || !ok2 || !ok3 || in.over == nil || in.stackUsed == nil {
			mod.Close(ctx)
			return nil, fmt.Errorf("instantiate: the instrumented module lacks one of the globals instrument adds (%s)", strings.Join(wasmbin.ReservedExports[:5], ", "))
		}
		// Linear memory and tables together stay within limits.memory,
		// and the call stack within a quarter of it.
		budget.Set(uint64(p.M.Limits.Memory))
		stackLimit.Set(uint64(p.stackLimit()))
		// The guest traps at its next trip through Go, within yieldEvery
		// checks. The module stays open until the call has unwound; Close
		// follows.
		stop = func() { flag.Set(1) }
	}
	in.watchdog = time.AfterFunc(time.Hour, func() {
		in.timedOut.Store(true)
		stop()
	})
	in.watchdog.Stop()
	if start := mod.ExportedFunction(wasmbin.StartExport); start != nil && p.interruptible {
		if err := in.call(startFunction, func() error { _, err := start.Call(&in.hctx); return err }); err != nil {
			in.Close()
			return nil, err
		}
	}
	if init := mod.ExportedFunction(abi.ExportInit); init != nil {
		if err := in.call("_initialize", func() error { _, err := init.Call(&in.hctx); return err }); err != nil {
			in.Close()
			return nil, err
		}
	}
	if err := in.Handle(capability.Event{Kind: uint32(abi.EventStart)}); err != nil {
		in.Close()
		return nil, err
	}
	return in, nil
}

// MemorySize returns the instance's linear memory size in bytes.
func (in *Instance) MemorySize() uint32 { return in.mod.Memory().Size() }

// Close ends the instance, and lets the capabilities that hold resources
// for the plugin (mounts) release them.
func (in *Instance) Close() {
	in.watchdog.Stop()
	in.mod.Close(context.Background())
	for _, c := range in.p.caps {
		if e, ok := c.(capability.InstanceEnder); ok {
			e.InstanceEnded(in.p.M.Name)
		}
	}
}

// runInstance runs one instantiation until Stop (returns errStopped after
// draining and the stop event) or a crash (returns what happened). ran is
// false if the instance never got past Instantiate.
func (p *Plugin) runInstance(ctx context.Context) (ran bool, err error) {
	in, err := p.Instantiate(ctx)
	if err != nil {
		return false, err
	}
	return true, p.serve(in)
}

// serve delivers events to in until Stop or a crash, as runInstance.
func (p *Plugin) serve(in *Instance) error {
	defer in.Close()
	p.setState(StateRunning, "")
	for {
		ev, lost, ok := p.q.pop()
		if !lost.empty() {
			p.logLosses(&lost)
			notice := abi.AppendRecord(nil, lost.Record())
			if err := in.Handle(capability.Event{Kind: uint32(abi.EventDropped), Payload: notice}); err != nil {
				return err
			}
		}
		if ok {
			if err := in.Handle(ev); err != nil {
				return err
			}
			continue
		}
		if p.stopping() {
			// The queue is closed and drained: say goodbye.
			if err := in.Handle(capability.Event{Kind: uint32(abi.EventStop)}); err != nil {
				p.log.Warn("stop handler failed", "error", err.Error())
			}
			return errStopped
		}
		select {
		case <-p.q.ready:
		case <-p.stop:
		}
	}
}

// Handle delivers one event and waits for the handler. A handler that
// returns an error status is logged and the instance lives on; a trap, exit
// or timeout is returned, and the instance is then dead.
func (in *Instance) Handle(ev capability.Event) error {
	p := in.p
	p.caller.SetPending(ev.Payload)
	kind := abi.EventKind(ev.Kind)
	in.stack[0], in.stack[1] = uint64(ev.Kind), uint64(len(ev.Payload))
	var err error
	if p.opts.Observe == nil {
		err = in.call(kind.String(), in.callEvent)
	} else {
		began := time.Now()
		err = in.call(kind.String(), in.callEvent)
		p.opts.Observe(p.M.Name, kind, time.Since(began), err)
	}
	if err != nil {
		return err
	}
	if status := int32(in.stack[0]); status != abi.HandlerOK {
		p.log.Warn("handler reported an error", "event", kind.String(), "status", status)
	}
	return nil
}

func (in *Instance) callEvent() error { return in.onEvent.CallWithStack(&in.hctx, in.stack[:]) }

// call runs fn under the watchdog and turns what went wrong into an error
// that says which event, and how to fix it.
func (in *Instance) call(what string, fn func() error) error {
	p := in.p
	timeout := p.M.Limits.HandlerTimeout.D()
	in.hctx.deadline = time.Now().Add(timeout)
	p.sleepUntil.Store(in.hctx.deadline.UnixNano())
	in.watchdog.Reset(timeout + grace(timeout))
	err := fn()
	if !in.watchdog.Stop() && in.timedOut.Load() {
		// The watchdog fired as the call returned: the module is closed
		// and this call is the one that overran.
		err = errWatchdog
	}
	if err == nil {
		return nil
	}
	said := ""
	if p.out.fatal != "" {
		said = fmt.Sprintf(" after printing %q", p.out.fatal)
		if strings.Contains(p.out.fatal, "out of memory") {
			said += fmt.Sprintf(": it reached limits.memory = %s (use less, or raise the limit in plugin.toml)", p.M.Limits.Memory)
		}
		p.out.fatal = ""
	}
	subject := what + " handler"
	if what == startFunction {
		subject = what
	}
	var exit *sys.ExitError
	switch {
	case in.timedOut.Load():
		return fmt.Errorf("%s ran past limits.handler_timeout = %s and was stopped (make it return sooner, or raise the limit in plugin.toml)", subject, timeout)
	case in.over != nil && in.over.Get() != 0:
		entries := in.over.Get()
		in.over.Set(0)
		return fmt.Errorf("%s trapped: table.grow would take the tables to %d entries (%s at %d bytes each), which with %s of linear memory is past limits.memory = %s (grow them less, or raise the limit in plugin.toml)",
			subject, entries, mib(entries*wasmbin.TableEntryBytes), wasmbin.TableEntryBytes, mib(uint64(in.mod.Memory().Size())), p.M.Limits.Memory)
	case in.stackUsed != nil && uint32(in.stackUsed.Get()) > p.stackLimit():
		return fmt.Errorf("%s trapped: its call stack would take %d bytes as the host counts frames, past its limit of %d, a quarter of limits.memory = %s (recurse less deeply, or raise limits.memory in plugin.toml)",
			subject, uint32(in.stackUsed.Get()), p.stackLimit(), p.M.Limits.Memory)
	case errors.As(err, &exit):
		return fmt.Errorf("%s exited with code %d%s", subject, exit.ExitCode(), said)
	default:
		// wazero appends the wasm stack trace; keep it for debugging, but
		// report the first line.
		msg, trace, _ := strings.Cut(err.Error(), "\n")
		p.log.Debug("trap stack trace", "event", what, "trace", trace)
		return fmt.Errorf("%s trapped (%s)%s", subject, msg, said)
	}
}

// mib formats n bytes in MiB, to one decimal.
func mib(n uint64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// stackLimit is the most bytes the guest's call stack may take, as
// instrument counts them: a quarter of limits.memory (host/RATIONALE.md).
func (p *Plugin) stackLimit() uint32 {
	return uint32(min(uint64(p.M.Limits.Memory)/4, 1<<30))
}
