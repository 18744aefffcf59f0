package plugin

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/tetratelabs/wazero/api"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
)

// maxLogLine bounds one log message; longer ones are cut, with a marker.
const maxLogLine = 8 << 10

var (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
)

// baseFuncs are the functions of the airlock_v1 module that every plugin
// may import: logs, config, clock, sleep and results. They need no grant.
var baseFuncs = []capability.Func{
	{Name: abi.FuncLog, Params: []api.ValueType{i32, i32, i32}, Results: []api.ValueType{i32}, Call: hostLog},
	{Name: abi.FuncConfigGet, Params: []api.ValueType{i32, i32, i32, i32, i32}, Results: []api.ValueType{i32}, Call: hostConfigGet},
	{Name: abi.FuncClockNow, Params: []api.ValueType{i32}, Results: []api.ValueType{i32}, Call: hostClockNow},
	{Name: abi.FuncSleep, Params: []api.ValueType{i64}, Results: []api.ValueType{i32}, Call: hostSleep},
	{Name: abi.FuncDeadline, Params: []api.ValueType{i32}, Results: []api.ValueType{i32}, Call: hostDeadline},
	{Name: abi.FuncResultRead, Params: []api.ValueType{i32, i32, i32}, Results: []api.ValueType{i32}, Call: hostResultRead},
}

// BaseFunctions lists the functions of airlock_v1, so that tools and tests
// can enumerate every host function the ABI offers (the security suite
// calls each with out-of-bounds ranges).
func BaseFunctions() []capability.Func { return baseFuncs }

// log(level i32, msg_ptr, msg_len) -> errno
func hostLog(ctx context.Context, in *capability.Instance, m api.Module, stack []uint64) {
	logLine(ctx, in, nil, m, stack)
}

// logLine is log with the plugin's rate limit (nil: none). A suppressed line
// still returns OK: the guest is not told, only the log is.
func logLine(ctx context.Context, in *capability.Instance, lim *logLimit, m api.Module, stack []uint64) {
	level, ptr, n := int32(stack[0]), uint32(stack[1]), uint32(stack[2])
	if uint64(ptr)+uint64(n) > uint64(m.Memory().Size()) {
		stack[0] = uint64(abi.Fault)
		return
	}
	cut := n > maxLogLine
	if cut {
		n = maxLogLine
	}
	msg, ok := capability.Read(m, ptr, n)
	if !ok {
		stack[0] = uint64(abi.Fault)
		return
	}
	s := string(msg)
	if !utf8.ValidString(s) {
		s = string([]rune(s)) // replaces invalid bytes with U+FFFD
	}
	if cut {
		s += " …[truncated]"
	}
	if in.Log.Enabled(ctx, slog.Level(level)) && lim.allow() {
		in.Log.LogAttrs(ctx, slog.Level(level), s, slog.String("source", "plugin"))
	}
	stack[0] = uint64(abi.OK)
}

// config_get(key_ptr, key_len, out_ptr, out_cap, out_len_ptr) -> errno
func hostConfigGet(_ context.Context, in *capability.Instance, m api.Module, stack []uint64) {
	kp, kn, op, oc, ol := uint32(stack[0]), uint32(stack[1]), uint32(stack[2]), uint32(stack[3]), uint32(stack[4])
	key, ok := capability.Read(m, kp, kn)
	if !ok {
		stack[0] = uint64(abi.Fault)
		return
	}
	v, found := in.Config[string(key)]
	if !found {
		stack[0] = uint64(in.Reply(m, op, oc, ol, []byte("no config key "+quote(key)+" in the manifest's [config]"), abi.NotFound))
		return
	}
	// The host only reads the bytes (Reply copies them), so the string's
	// own bytes serve without an allocation per call.
	stack[0] = uint64(in.Reply(m, op, oc, ol, unsafe.Slice(unsafe.StringData(v), len(v)), abi.OK))
}

// clock_now(out_ptr) -> errno: u64 Unix nanoseconds.
func hostClockNow(_ context.Context, _ *capability.Instance, m api.Module, stack []uint64) {
	if !m.Memory().WriteUint64Le(uint32(stack[0]), uint64(time.Now().UnixNano())) {
		stack[0] = uint64(abi.Fault)
		return
	}
	stack[0] = uint64(abi.OK)
}

// sleep(ns i64) -> errno. It sleeps at most until the handler's deadline and
// returns abi.Timeout if the deadline cut it short, so a plugin that sleeps
// cannot outlive its handler timeout. (The handler context has no Done
// channel; see handlerCtx. Host functions bound their waits by its deadline.)
func hostSleep(ctx context.Context, _ *capability.Instance, _ api.Module, stack []uint64) {
	d := time.Duration(int64(stack[0]))
	if d < 0 {
		stack[0] = uint64(abi.Invalid)
		return
	}
	e := abi.OK
	if left := capability.Remaining(ctx); d >= left {
		d, e = max(left, 0), abi.Timeout
	}
	time.Sleep(d)
	stack[0] = uint64(e)
}

// deadline(out_ptr) -> errno: u64 nanoseconds left in this handler.
func hostDeadline(ctx context.Context, _ *capability.Instance, m api.Module, stack []uint64) {
	left := max(capability.Remaining(ctx), 0)
	if !m.Memory().WriteUint64Le(uint32(stack[0]), uint64(left)) {
		stack[0] = uint64(abi.Fault)
		return
	}
	stack[0] = uint64(abi.OK)
}

// result_read(out_ptr, out_cap, out_len_ptr) -> errno
func hostResultRead(_ context.Context, in *capability.Instance, m api.Module, stack []uint64) {
	stack[0] = uint64(in.TakePending(m, uint32(stack[0]), uint32(stack[1]), uint32(stack[2])))
}

// logLimit is a plugin's log rate limit: a token bucket of rate lines a
// second holding up to burst, so that a flood cannot fill the disk or drown
// the other plugins' lines. Suppressed lines are counted, and a timer
// reports them once per interval, even if the plugin never logs again.
// It outlives the plugin's instances, so a restart does not refill it.
type logLimit struct {
	log         *slog.Logger
	rate, burst float64

	mu         sync.Mutex // guards the fields below: the plugin's goroutine and the timer
	tokens     float64
	last       time.Time
	suppressed uint64
	notice     *time.Timer // pending report of suppressed, or nil
}

// logInterval is how often suppressed lines are reported.
const logInterval = time.Second

// newLogLimit returns a limit of rate lines a second, bursts of five
// seconds' worth; nil (no limit) if rate is 0.
func newLogLimit(log *slog.Logger, rate int) *logLimit {
	if rate <= 0 {
		return nil
	}
	return &logLimit{log: log, rate: float64(rate), burst: 5 * float64(rate), tokens: 5 * float64(rate)}
}

// allow takes a token for one line, or counts the line as suppressed.
func (l *logLimit) allow() bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return true
	}
	l.suppressed++
	if l.notice == nil {
		l.notice = time.AfterFunc(logInterval, l.report)
	}
	return false
}

// report logs how many lines were suppressed since the last report.
func (l *logLimit) report() {
	l.mu.Lock()
	n := l.suppressed
	l.suppressed, l.notice = 0, nil
	l.mu.Unlock()
	if n > 0 {
		l.log.Warn(fmt.Sprintf("%d log lines suppressed", n), "suppressed", n, "hint", "the plugin logs more than log.plugin_rate lines a second")
	}
}

func quote(b []byte) string {
	if len(b) > 64 {
		b = b[:64]
	}
	return `"` + string(b) + `"`
}
