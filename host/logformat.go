package host

import (
	"io"
	"log/slog"
)

// LogHandler is how airlock writes a log stream: format "json" or "text",
// at level (nil: info), with durations as "1.5s" in both (slog's JSON
// handler writes them as nanoseconds). The host's log uses it, and so does
// the audit stream, in the log's format when they share stderr or stdout
// (see "Why the audit takes the log's format on a shared stream?" in
// host/RATIONALE.md) and in JSON in a file of its own.
func LogHandler(w io.Writer, format string, level slog.Leveler) slog.Handler {
	o := &slog.HandlerOptions{Level: level, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Value.Kind() == slog.KindDuration {
			a.Value = slog.StringValue(a.Value.Duration().String())
		}
		return a
	}}
	if format == "json" {
		return slog.NewJSONHandler(w, o)
	}
	return slog.NewTextHandler(w, o)
}
