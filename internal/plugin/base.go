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
	{Name: abi.FuncLog, Params: []api.ValueType{i32, i32, i32}, ParamNames: []string{"level", "msg_ptr", "msg_len"},
		Results: []api.ValueType{i32}, Call: hostLog},
	{Name: abi.FuncLogFields, Params: []api.ValueType{i32, i32, i32, i32, i32}, ParamNames: []string{"level", "msg_ptr", "msg_len", "fields_ptr", "fields_len"},
		Results: []api.ValueType{i32}, Call: hostLogFields},
	capability.HostFuncBytes(abi.FuncConfigGet, hostConfigGet, capability.Input{Name: "key"}),
	{Name: abi.FuncClockNow, Params: []api.ValueType{i32}, ParamNames: []string{"out_ptr"}, Results: []api.ValueType{i32}, Call: hostClockNow},
	{Name: abi.FuncSleep, Params: []api.ValueType{i64}, ParamNames: []string{"ns"}, Results: []api.ValueType{i32}, Call: hostSleep},
	{Name: abi.FuncDeadline, Params: []api.ValueType{i32}, ParamNames: []string{"out_ptr"}, Results: []api.ValueType{i32}, Call: hostDeadline},
	{Name: abi.FuncResultRead, Params: []api.ValueType{i32, i32, i32}, ParamNames: []string{"out_ptr", "out_cap", "out_len_ptr"},
		Results: []api.ValueType{i32}, Call: hostResultRead},
}

// BaseFunctions lists the functions of airlock_v1, so that tools and tests
// can enumerate every host function the ABI offers (the security suite
// calls each with out-of-bounds ranges).
func BaseFunctions() []capability.Func { return baseFuncs }

// log(level i32, msg_ptr, msg_len) -> errno
func hostLog(ctx context.Context, in *capability.Caller, m api.Module, stack []uint64) {
	logLine(ctx, in, nil, m, stack, false)
}

// log_fields(level i32, msg_ptr, msg_len, fields_ptr, fields_len) -> errno
func hostLogFields(ctx context.Context, in *capability.Caller, m api.Module, stack []uint64) {
	logLine(ctx, in, nil, m, stack, true)
}

// logLine is log, or log_fields if withFields, with the plugin's rate
// limit (nil: none). A suppressed line still returns OK: the guest is not
// told, only the log is. Every line says source=plugin after the host's
// plugin=NAME, at one of the four levels (pluginLevel), and the guest's
// fields follow as attributes that cannot take the host's keys
// (pluginFields), so that a plugin's line is never mistaken for the host's.
func logLine(ctx context.Context, in *capability.Caller, lim *logLimit, m api.Module, stack []uint64, withFields bool) {
	level, ptr, n := pluginLevel(int32(stack[0])), uint32(stack[1]), uint32(stack[2])
	size := uint64(m.Memory().Size())
	var fp, fn uint32
	if withFields {
		fp, fn = uint32(stack[3]), uint32(stack[4])
	}
	if uint64(ptr)+uint64(n) > size || uint64(fp)+uint64(fn) > size {
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
	e := abi.OK
	if in.Log.Enabled(ctx, level) && lim.allow() {
		s := string(msg)
		if !utf8.ValidString(s) {
			s = string([]rune(s)) // replaces invalid bytes with U+FFFD
		}
		if cut {
			s += " …[truncated]"
		}
		attrs := []slog.Attr{slog.String("source", "plugin")}
		if fn > maxLogFieldBytes {
			attrs, e = append(attrs, slog.String("fields_dropped", fmt.Sprintf("all: the record is %d bytes, above %d", fn, maxLogFieldBytes))), abi.Invalid
		} else if fn > 0 {
			rec, _ := capability.Read(m, fp, fn)
			var fields []slog.Attr
			fields, e = pluginFields(rec)
			attrs = append(attrs, fields...)
		}
		in.Log.LogAttrs(ctx, level, s, attrs...)
	}
	stack[0] = uint64(e)
}

// pluginLevel maps a guest's level onto the four the ABI names, so that no
// plugin line says ERROR+92 or DEBUG-8, and every plugin line is at a
// level an operator filters on.
func pluginLevel(l int32) slog.Level {
	switch {
	case l < abi.LevelInfo:
		return slog.LevelDebug
	case l < abi.LevelWarn:
		return slog.LevelInfo
	case l < abi.LevelError:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// Bounds on a log line's fields: how many, the size of a key and of a
// value, and of the whole record.
const (
	maxLogFields     = 32
	maxLogFieldKey   = 64
	maxLogFieldValue = 1 << 10
	maxLogFieldBytes = 16 << 10
)

// reservedKeys are the keys the host writes on a plugin's line, or may; a
// guest's field with one of these names is logged as field.NAME.
var reservedKeys = map[string]bool{"time": true, "level": true, "msg": true, "source": true, "plugin": true,
	"stream": true, "capability": true, "component": true, "fields_dropped": true}

// pluginFields turns a guest's fields record (abi.Record) into attributes:
// at most maxLogFields, keys of [A-Za-z0-9_.-] cut to maxLogFieldKey
// bytes, values cut to maxLogFieldValue, no key twice and none of the
// host's (reservedKeys). How many were left out is fields_dropped.
func pluginFields(rec []byte) ([]slog.Attr, abi.Errno) {
	r, err := abi.DecodeRecord(rec)
	if err != nil {
		return []slog.Attr{slog.String("fields_dropped", "all: the record is malformed")}, abi.Invalid
	}
	seen := make(map[string]bool, min(len(r), maxLogFields))
	out := make([]slog.Attr, 0, min(len(r), maxLogFields)+1)
	dropped := 0
	for _, f := range r {
		k := fieldKey(f.Key)
		if len(out) == maxLogFields || seen[k] {
			dropped++
			continue
		}
		seen[k] = true
		v := f.Value
		cut := len(v) > maxLogFieldValue
		if cut {
			v = v[:maxLogFieldValue]
		}
		s := string(v)
		if !utf8.ValidString(s) {
			s = string([]rune(s))
		}
		if cut {
			s += " …[truncated]"
		}
		out = append(out, slog.String(k, s))
	}
	if dropped > 0 {
		out = append(out, slog.Int("fields_dropped", dropped))
	}
	return out, abi.OK
}

// fieldKey makes a guest's key safe to log: at most maxLogFieldKey bytes
// of [A-Za-z0-9_.-] (others become '_'), never empty, never the host's.
func fieldKey(k string) string {
	if len(k) > maxLogFieldKey {
		k = k[:maxLogFieldKey]
	}
	b := []byte(k)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			b[i] = '_'
		}
	}
	k = string(b)
	switch {
	case k == "":
		return "_"
	case reservedKeys[k]:
		return "field." + k
	}
	return k
}

// config_get(key_ptr, key_len, out_ptr, out_cap, out_len_ptr) -> errno
func hostConfigGet(_ context.Context, in *capability.Caller, a *capability.Args) ([]byte, error) {
	key := a.Bytes(0)
	v, found := in.Config[string(key)]
	if !found {
		return nil, capability.Errorf(abi.NotFound, "no config key %s in the manifest's [config]", quote(key))
	}
	// The host only reads the bytes (Reply copies them), so the string's
	// own bytes serve without an allocation per call.
	return unsafe.Slice(unsafe.StringData(v), len(v)), nil
}

// clock_now(out_ptr) -> errno: u64 Unix nanoseconds.
func hostClockNow(_ context.Context, _ *capability.Caller, m api.Module, stack []uint64) {
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
func hostSleep(ctx context.Context, _ *capability.Caller, _ api.Module, stack []uint64) {
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
func hostDeadline(ctx context.Context, _ *capability.Caller, m api.Module, stack []uint64) {
	left := max(capability.Remaining(ctx), 0)
	if !m.Memory().WriteUint64Le(uint32(stack[0]), uint64(left)) {
		stack[0] = uint64(abi.Fault)
		return
	}
	stack[0] = uint64(abi.OK)
}

// result_read(out_ptr, out_cap, out_len_ptr) -> errno
func hostResultRead(_ context.Context, in *capability.Caller, m api.Module, stack []uint64) {
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
