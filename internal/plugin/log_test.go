package plugin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
)

// memModule is the smallest module with a memory (four pages), exported as
// "mem", so that the log functions can be called on real guest memory.
var memModule = []byte("\x00asm\x01\x00\x00\x00" +
	"\x05\x03\x01\x00\x04" +
	"\x07\x07\x01\x03mem\x02\x00")

// logRig calls the log functions of a plugin named "keeper" with bytes it
// puts in guest memory, and keeps what the host's text and JSON handlers
// write of each call.
type logRig struct {
	t          *testing.T
	mod        api.Module
	text, json bytes.Buffer
}

func newLogRig(t *testing.T) *logRig {
	ctx := context.Background()
	r := wazero.NewRuntime(ctx)
	t.Cleanup(func() { r.Close(ctx) })
	mod, err := r.Instantiate(ctx, memModule)
	if err != nil {
		t.Fatal(err)
	}
	return &logRig{t: t, mod: mod}
}

// call logs msg (and fields, if not nil, through log_fields) at level and
// returns the errno.
func (r *logRig) call(level int32, msg string, fields []byte) abi.Errno {
	r.t.Helper()
	r.text.Reset()
	r.json.Reset()
	mem := r.mod.Memory()
	if !mem.Write(0, []byte(msg)) || !mem.Write(uint32(len(msg)), fields) {
		r.t.Fatalf("%d+%d bytes do not fit the test's memory", len(msg), len(fields))
	}
	var e abi.Errno
	for _, h := range []slog.Handler{slog.NewTextHandler(&r.text, nil), slog.NewJSONHandler(&r.json, nil)} {
		in := &capability.Caller{Plugin: "keeper", Log: slog.New(h).With("plugin", "keeper")}
		stack := []uint64{uint64(uint32(level)), 0, uint64(len(msg)), uint64(len(msg)), uint64(len(fields))}
		logLine(context.Background(), in, nil, r.mod, stack, fields != nil)
		e = abi.Errno(stack[0])
	}
	return e
}

// record decodes the one JSON line the last call wrote.
func (r *logRig) record() map[string]any {
	r.t.Helper()
	if n := strings.Count(r.json.String(), "\n"); n != 1 {
		r.t.Fatalf("the JSON handler wrote %d lines, want 1:\n%s", n, r.json.String())
	}
	if n := strings.Count(r.text.String(), "\n"); n != 1 {
		r.t.Fatalf("the text handler wrote %d lines, want 1:\n%s", n, r.text.String())
	}
	var m map[string]any
	if err := json.Unmarshal(r.json.Bytes(), &m); err != nil {
		r.t.Fatal(err)
	}
	return m
}

func fields(kv ...string) []byte {
	var rec abi.Record
	for i := 0; i+1 < len(kv); i += 2 {
		rec = append(rec, abi.Field{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return abi.AppendRecord(nil, rec)
}

// TestPluginLogLevelsAreCapped: a plugin's level is one of the four the ABI
// names, never ERROR+992 or DEBUG-996, and its line always says
// source=plugin after plugin=NAME.
func TestPluginLogLevelsAreCapped(t *testing.T) {
	r := newLogRig(t)
	for _, c := range []struct {
		level int32
		want  string
	}{{1000, "ERROR"}, {9, "ERROR"}, {8, "ERROR"}, {5, "WARN"}, {2, "INFO"}, {-1, "DEBUG"}, {-1000, "DEBUG"}, {-1 << 31, "DEBUG"}, {1<<31 - 1, "ERROR"}} {
		r.call(c.level, "hello", nil)
		if c.want == "DEBUG" {
			// Below the handlers' default level: not written at all.
			if r.json.Len() != 0 {
				t.Errorf("level %d: written above debug: %s", c.level, r.json.String())
			}
			continue
		}
		m := r.record()
		if m["level"] != c.want || m["source"] != "plugin" || m["plugin"] != "keeper" {
			t.Errorf("level %d: got %v, want level %s, source=plugin, plugin=keeper", c.level, m, c.want)
		}
		if !strings.Contains(r.text.String(), "level="+c.want+" msg=hello plugin=keeper source=plugin") {
			t.Errorf("level %d: text line %q", c.level, r.text.String())
		}
	}
}

// TestPluginLogFieldsAreAttributes: a plugin's key/value fields become
// attributes, not text in msg, bounded in count and size, and a field can
// take none of the host's keys.
func TestPluginLogFieldsAreAttributes(t *testing.T) {
	r := newLogRig(t)
	t.Run("fields are attributes", func(t *testing.T) {
		r.t = t
		if e := r.call(abi.LevelWarn, "cannot read timedate1", fields("error", "unavailable: no bus", "attempt", "3")); e != abi.OK {
			t.Fatalf("errno %v", e)
		}
		m := r.record()
		if m["msg"] != "cannot read timedate1" || m["error"] != "unavailable: no bus" || m["attempt"] != "3" {
			t.Errorf("record %v", m)
		}
	})
	t.Run("keys that collide with the host's", func(t *testing.T) {
		r.t = t
		r.call(abi.LevelInfo, "hi", fields("plugin", "supervisor", "level", "ERROR", "time", "0", "source", "host", "msg", "spoof", "stream", "audit", "capability", "gate"))
		m := r.record()
		if m["plugin"] != "keeper" || m["source"] != "plugin" || m["level"] != "INFO" || m["msg"] != "hi" || m["stream"] != nil {
			t.Errorf("a field took a host key: %v", m)
		}
		for _, k := range []string{"plugin", "level", "time", "source", "msg", "stream", "capability"} {
			if m["field."+k] == nil {
				t.Errorf("field %q is not kept as field.%s: %v", k, k, m)
			}
		}
		if n := strings.Count(r.json.String(), `"plugin":`); n != 1 {
			t.Errorf("%d plugin keys in one JSON line: %s", n, r.json.String())
		}
	})
	t.Run("ten thousand fields", func(t *testing.T) {
		r.t = t
		var kv []string
		for i := range 10000 {
			kv = append(kv, fmt.Sprint("k", i), "v")
		}
		if e := r.call(abi.LevelInfo, "flood", fields(kv...)); e != abi.Invalid {
			t.Errorf("errno %v, want invalid for a record over %d bytes", e, maxLogFieldBytes)
		}
		m := r.record()
		if m["msg"] != "flood" || !strings.HasPrefix(fmt.Sprint(m["fields_dropped"]), "all") || len(m) > 6 {
			t.Errorf("record %v", m)
		}
	})
	t.Run("more fields than the limit", func(t *testing.T) {
		r.t = t
		var kv []string
		for i := range 1000 {
			kv = append(kv, fmt.Sprint("k", i), "v")
		}
		r.call(abi.LevelInfo, "many", fields(kv...))
		m := r.record()
		if m["k31"] != "v" || m["k32"] != nil || m["fields_dropped"] != float64(1000-maxLogFields) {
			t.Errorf("kept %d keys, fields_dropped %v; want %d kept and %d dropped", len(m), m["fields_dropped"], maxLogFields, 1000-maxLogFields)
		}
	})
	t.Run("huge key, hostile key characters, huge value, duplicates", func(t *testing.T) {
		r.t = t
		r.call(abi.LevelInfo, "odd", fields(strings.Repeat("K", 2000), "1", "a b\n=c\x1b", "2", "big", strings.Repeat("x", 12000), "dup", "1", "dup", "2", "", "empty"))
		m := r.record()
		if m[strings.Repeat("K", maxLogFieldKey)] != "1" || m["a_b__c_"] != "2" || m["dup"] != "1" || m["_"] != "empty" || m["fields_dropped"] != float64(1) {
			t.Errorf("record %v", m)
		}
		if v, _ := m["big"].(string); len(v) > maxLogFieldValue+20 || !strings.HasSuffix(v, "…[truncated]") {
			t.Errorf("a %d-byte value is logged as %d bytes", 12000, len(v))
		}
	})
	t.Run("malformed record", func(t *testing.T) {
		r.t = t
		if e := r.call(abi.LevelInfo, "bad", []byte{0xff, 0xff, 0xff, 0x7f, 1}); e != abi.Invalid {
			t.Errorf("errno %v, want invalid", e)
		}
		if m := r.record(); m["msg"] != "bad" || m["fields_dropped"] == nil {
			t.Errorf("record %v", m)
		}
	})
	t.Run("fields out of bounds", func(t *testing.T) {
		r.t = t
		in := &capability.Caller{Plugin: "keeper", Log: slog.New(slog.NewTextHandler(&r.text, nil))}
		stack := []uint64{0, 0, 2, 4<<16 - 10, 100}
		logLine(context.Background(), in, nil, r.mod, stack, true)
		if abi.Errno(stack[0]) != abi.Fault {
			t.Errorf("errno %v, want fault", abi.Errno(stack[0]))
		}
	})
}

// TestPluginLogCannotForgeLines: newlines, carriage returns and terminal
// escapes in a plugin's message, fields or stdout never start a line of
// their own in the host's log.
func TestPluginLogCannotForgeLines(t *testing.T) {
	r := newLogRig(t)
	forged := "ok\ntime=2026-01-01T00:00:00Z level=ERROR msg=\"supervisor key rotated\" source=host\r\x1b[2K"
	r.call(abi.LevelInfo, forged, fields("note", forged))
	m := r.record()
	if m["msg"] != forged || m["note"] != forged {
		t.Errorf("record %v", m)
	}
	for _, out := range []string{r.text.String(), r.json.String()} {
		if strings.ContainsAny(strings.TrimSuffix(out, "\n"), "\n\r\x1b") {
			t.Errorf("a control character reached the log: %q", out)
		}
	}
	var text bytes.Buffer
	w := &lineWriter{log: slog.New(slog.NewTextHandler(&text, nil)).With("plugin", "keeper")}
	fmt.Fprint(w, "one\rlevel=ERROR msg=forged\x1b[1A\ntwo\n")
	lines := strings.Split(strings.TrimSuffix(text.String(), "\n"), "\n")
	if len(lines) != 2 || strings.ContainsAny(text.String(), "\r\x1b") {
		t.Errorf("stdout made %d lines (want 2): %q", len(lines), text.String())
	}
	for _, l := range lines {
		if !strings.HasSuffix(l, "plugin=keeper source=stdout") {
			t.Errorf("a stdout line does not end with its source: %q", l)
		}
	}
}
