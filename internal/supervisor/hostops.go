package supervisor

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/host/capability"
)

// Bounds of one stream read (logs.read, journal.read): a plugin gets at
// most maxStreamLines lines and maxStreamBytes bytes of them per call, and
// the host waits at most maxStreamWait (and never past the handler's
// deadline). The stream itself reads at most DefaultStreamBytes, lines of
// other services included, so a chatty neighbour cannot keep the host busy.
const (
	defaultStreamLines = 100
	maxStreamLines     = 1000
	defaultStreamBytes = 64 << 10
	maxStreamBytes     = 256 << 10
	defaultStreamWait  = time.Second
	maxStreamWait      = 10 * time.Second
)

// How a stream read ended, the reply's "end" field.
const (
	endEOF      = "eof"      // the supervisor ended the stream
	endLines    = "lines"    // max_lines lines delivered
	endBytes    = "bytes"    // the next line would pass max_bytes
	endDeadline = "deadline" // wait_ms or the handler's deadline passed
	endBudget   = "budget"   // the stream read its whole byte budget
)

// validTagKey accepts what a tags.set grant may name: a tag key as SetTags
// takes it, without ':' (the grant's separator).
func validTagKey(k string) bool {
	return tagKeyOK(k) && !strings.ContainsRune(k, ':')
}

// serviceAction restarts, stops or starts a service once it is known to
// exist: on an app with one service the supervisor acts on that service
// whatever name it is given (actions.executeServiceAction), so without
// this check service.restart:worker would restart main there.
func (c *Capability) serviceAction(ctx context.Context, op, service string, force bool) error {
	cl := c.client
	if _, err := cl.ContainerID(ctx, service); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Status == http.StatusServiceUnavailable {
			return &Error{Op: op, Code: abi.NotFound,
				Message: "the app has no service " + strconv.Quote(service) + " (the supervisor would act on another service instead)"}
		}
		return err
	}
	switch op {
	case OpServiceRestart:
		return cl.RestartService(ctx, service, force)
	case OpServiceStop:
		return cl.StopService(ctx, service, force)
	default:
		return cl.StartService(ctx, service, force)
	}
}

// readApp answers app.read: the app as GET /v1/apps/:appId describes it
// (never its env), every app's state, or the legacy state of this one.
func (c *Capability) readApp(ctx context.Context, what string) (abi.Record, error) {
	cl := c.client
	var rec abi.Record
	add := func(k, v string) { rec = append(rec, abi.Field{Key: k, Value: []byte(v)}) }
	switch what {
	case "app":
		a, err := cl.AppV1(ctx)
		if err != nil {
			return nil, err
		}
		add("app_id", strconv.Itoa(a.AppID))
		add("commit", a.Commit)
		add("container_id", a.ContainerID)
		add("image", a.ImageID)
		add("release_id", strconv.Itoa(a.ReleaseID))
	case "apps":
		apps, err := cl.AppsState(ctx)
		if err != nil {
			return nil, err
		}
		for _, name := range slices.Sorted(maps.Keys(apps)) {
			a := apps[name]
			add("app", name)
			add(name+".app_id", strconv.Itoa(a.AppID))
			add(name+".app_uuid", a.AppUUID)
			add(name+".commit", a.Commit)
			add(name+".update_status", a.UpdateStatus)
			for _, s := range slices.Sorted(maps.Keys(a.Services)) {
				add(name+".service."+s, a.Services[s].Status)
				add(name+".image."+s, a.Services[s].Image)
			}
		}
		// The typed value, re-encoded: only the fields above, so nothing
		// the supervisor adds later reaches a plugin unread.
		b, _ := json.Marshal(apps)
		add("json", string(b))
	case "state":
		s, err := cl.AppState(ctx)
		if err != nil {
			return nil, err
		}
		add("commit", s.Commit)
		add("json", string(s.Raw))
	}
	return rec, nil
}

// streamBounds are a stream read's bounds, from the request.
type streamBounds struct {
	lines, bytes int
	wait         time.Duration
}

func (r request) bounds(op string) (streamBounds, error) {
	b := streamBounds{lines: defaultStreamLines, bytes: defaultStreamBytes, wait: defaultStreamWait}
	for _, f := range []struct {
		name     string
		dst      *int
		max      int
		scale    time.Duration
		duration *time.Duration
	}{
		{name: fieldMaxLines, dst: &b.lines, max: maxStreamLines},
		{name: fieldMaxBytes, dst: &b.bytes, max: maxStreamBytes},
		{name: fieldWaitMS, max: int(maxStreamWait / time.Millisecond), duration: &b.wait},
	} {
		v, ok := r[f.name]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > f.max {
			return b, invalid(op, "%s = %q must be a whole number from 1 to %d", f.name, clip(v), f.max)
		}
		if f.duration != nil {
			*f.duration = time.Duration(n) * time.Millisecond
		} else {
			*f.dst = n
		}
	}
	return b, nil
}

// readStream answers logs.read and journal.read with one bounded result:
// the lines that arrive until max_lines, max_bytes, wait_ms, the handler's
// deadline or the stream's end, whichever is first. A stream is never left
// open between calls.
func (c *Capability) readStream(ctx context.Context, op string, r request) (abi.Record, error) {
	b, err := r.bounds(op)
	if err != nil {
		return nil, err
	}
	var keep func([]byte) bool
	var open func(context.Context) (*Stream, error)
	if op == OpLocalLogs {
		service := r[fieldService]
		// The stream carries every service's lines (and system lines):
		// only the granted service's reach the plugin.
		keep = func(line []byte) bool {
			var l struct {
				ServiceName string `json:"serviceName"`
			}
			return json.Unmarshal(line, &l) == nil && l.ServiceName == service
		}
		open = func(ctx context.Context) (*Stream, error) { return c.client.LocalLogs(ctx, StreamLimits{}) }
	} else {
		q := JournalQuery{Unit: r[fieldUnit], ContainerID: r[fieldCont], Format: r[fieldFormat],
			Since: r[fieldSince], Until: r[fieldUntil], Follow: r[fieldFollow] == "true"}
		if v, ok := r[fieldCount]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > maxStreamLines {
				return nil, invalid(op, "count = %q must be a whole number from 1 to %d", clip(v), maxStreamLines)
			}
			q.Count = n
		}
		keep = func([]byte) bool { return true }
		open = func(ctx context.Context) (*Stream, error) { return c.client.JournalLogs(ctx, q, StreamLimits{}) }
	}
	sctx, cancel := capability.CallContext(ctx, b.wait)
	defer cancel()
	s, err := open(sctx)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var out []byte
	lines, dropped, cut, end := 0, 0, 0, ""
	for end == "" {
		line, _, err := s.Next()
		switch {
		case errors.Is(err, io.EOF):
			end = endEOF
		case err != nil && sctx.Err() != nil:
			end = endDeadline
		case Errno(err) == abi.TooLarge:
			end = endBudget
		case err != nil:
			if lines > 0 {
				end = "error: " + c.scrubText(err.Error())
				break
			}
			return nil, err
		case !keep(line):
			dropped++
		case len(out) == 0 && len(line)+1 > b.bytes:
			// One line longer than max_bytes: its head, counted as cut,
			// rather than nothing on every call.
			out = append(line[:b.bytes-1:b.bytes-1], '\n')
			lines, cut, end = 1, cut+1, endBytes
		case len(out)+len(line)+1 > b.bytes:
			dropped++
			end = endBytes
		default:
			out = append(append(out, line...), '\n')
			if lines++; lines == b.lines {
				end = endLines
			}
		}
	}
	return abi.Record{
		{Key: "lines", Value: out},
		{Key: "count", Value: []byte(strconv.Itoa(lines))},
		{Key: "dropped", Value: []byte(strconv.Itoa(dropped))},
		{Key: "cut", Value: []byte(strconv.Itoa(s.Cut + cut))},
		{Key: "end", Value: []byte(end)},
	}, nil
}
