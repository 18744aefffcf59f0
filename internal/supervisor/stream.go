package supervisor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/airlockhq/airlock/abi"
)

// Defaults for a zero StreamLimits.
const (
	DefaultStreamLine  = 16 << 10 // a journal or log line is rarely longer
	DefaultStreamBytes = 1 << 20
)

// StreamLimits bound what one stream delivers, so that a chatty or broken
// supervisor (or journal) cannot make the host read without end.
type StreamLimits struct {
	// MaxLine is the longest line delivered; the rest of a longer line is
	// read and discarded, and the line is reported as cut. Zero means
	// DefaultStreamLine.
	MaxLine int
	// MaxBytes is how much the stream reads in all; past it the stream
	// ends with abi.TooLarge. Zero means DefaultStreamBytes.
	MaxBytes int64
}

func (l StreamLimits) withDefaults() StreamLimits {
	if l.MaxLine <= 0 {
		l.MaxLine = DefaultStreamLine
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultStreamBytes
	}
	return l
}

// Stream is an open streaming reply (/v2/local/logs, /v2/journal-logs),
// read line by line or in chunks of whole lines. It ends at the reply's
// end (io.EOF), at its byte budget (abi.TooLarge), when the caller's
// context ends (abi.Timeout), or at Close. Lines never carry the API key.
// A Stream is for one reader at a time; Close may be called from another
// goroutine to stop a blocked read.
type Stream struct {
	op, endpoint string
	c            *Client
	body         io.ReadCloser
	br           *bufio.Reader
	cancel       context.CancelFunc
	ctx          context.Context
	lim          StreamLimits
	read         int64 // bytes consumed so far

	pending []byte // a line Chunk could not fit, delivered next
	err     error  // sticky end of the stream

	closeOnce sync.Once

	// Counters, for the caller's accounting.
	Lines int // lines delivered
	Cut   int // lines delivered cut to MaxLine
}

// openStream sends k and, on a 2xx, returns the reply body as a Stream. The
// client's Timeout bounds the wait for the reply's headers; after that only
// ctx, the byte budget and Close end it. A stream is never retried.
func (c *Client) openStream(ctx context.Context, k call, lim StreamLimits) (*Stream, error) {
	var payload []byte
	if k.body != nil {
		var err error
		if payload, err = json.Marshal(k.body); err != nil {
			return nil, &Error{Op: k.op, Code: abi.Invalid, Message: "encoding request: " + cleanMessage(err.Error())}
		}
	}
	endpoint := k.method + " " + k.path
	sctx, cancel := context.WithCancel(ctx)
	req, err := c.newRequest(sctx, k, payload)
	if err != nil {
		cancel()
		return nil, c.scrub(&Error{Op: k.op, Code: abi.Invalid, Message: cleanMessage(err.Error()), endpoint: endpoint})
	}
	headers := time.AfterFunc(c.cfg.Timeout, cancel)
	start := time.Now()
	resp, err := c.http.Do(req)
	late := !headers.Stop()
	c.log.Debug("stream", "op", k.op, "method", k.method, "path", k.path, "elapsed", time.Since(start))
	if err != nil {
		cancel()
		e := transportError(k.op, endpoint, err)
		if late && ctx.Err() == nil {
			e.Code, e.Message = abi.Timeout, "no reply before the deadline"
		}
		return nil, c.scrub(e)
	}
	if resp.StatusCode < 200 || resp.StatusCode >= 300 {
		defer cancel()
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxReply))
		return nil, c.replyError(k.op, endpoint, resp.StatusCode, body)
	}
	lim = lim.withDefaults()
	return &Stream{
		op: k.op, endpoint: endpoint, c: c, body: resp.Body, cancel: cancel, ctx: ctx, lim: lim,
		br: bufio.NewReaderSize(resp.Body, 4<<10),
	}, nil
}

// Next returns the next line without its newline, at most MaxLine bytes;
// cut says the line was longer and its rest was dropped. The slice is the
// caller's. A last line without a newline is delivered before io.EOF.
func (s *Stream) Next() (line []byte, cut bool, err error) {
	if s.pending != nil {
		line, s.pending = s.pending, nil
		return line, false, nil
	}
	if s.err != nil {
		return nil, false, s.err
	}
	var buf []byte
	for {
		if s.read >= s.lim.MaxBytes {
			e := &Error{Op: s.op, Code: abi.TooLarge, endpoint: s.endpoint,
				Message: "the stream passed its budget of " + strconv.FormatInt(s.lim.MaxBytes, 10) + " bytes; open a new one to read on"}
			if len(buf) > 0 || cut {
				// The budget ended inside a line: hand out what we have of
				// it, marked cut, and end on the next call.
				s.err = e
				s.Close()
				return s.deliver(buf, true)
			}
			return s.fail(e)
		}
		frag, err := s.br.ReadSlice('\n')
		// Never count past the budget: what lies beyond it is not read.
		if over := s.read + int64(len(frag)) - s.lim.MaxBytes; over > 0 {
			frag = frag[:len(frag)-int(over)]
			err = nil
		}
		s.read += int64(len(frag))
		done := len(frag) > 0 && frag[len(frag)-1] == '\n'
		if done {
			frag = frag[:len(frag)-1]
		}
		if room := s.lim.MaxLine - len(buf); room > 0 {
			buf = append(buf, frag[:min(room, len(frag))]...)
		}
		if len(frag) > 0 && len(buf)+len(frag) > s.lim.MaxLine {
			cut = true
		}
		switch {
		case done:
			return s.deliver(buf, cut)
		case err == nil || errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if len(buf) > 0 || cut {
				s.err = io.EOF
				return s.deliver(buf, cut)
			}
			return s.fail(io.EOF)
		default:
			if s.ctx.Err() != nil {
				return s.fail(s.c.scrub(transportError(s.op, s.endpoint, s.ctx.Err())))
			}
			return s.fail(s.c.scrub(transportError(s.op, s.endpoint, err)))
		}
	}
}

// deliver hands out one line, without the key.
func (s *Stream) deliver(line []byte, cut bool) ([]byte, bool, error) {
	s.Lines++
	if cut {
		s.Cut++
	}
	if r := s.c.redact(string(line)); r != string(line) {
		line = []byte(r)
	}
	if line == nil {
		line = []byte{}
	}
	return line, cut, nil
}

func (s *Stream) fail(err error) ([]byte, bool, error) {
	s.err = err
	s.Close()
	return nil, false, err
}

// Chunk returns whole lines, each ending in '\n', at most max bytes in all
// and at least one line (cut to max if it alone is longer). It is how a
// caller with a fixed buffer, such as a guest, reads a stream. It returns
// what it has with a nil error, and the end of the stream on the call after.
func (s *Stream) Chunk(max int) ([]byte, error) {
	if max <= 0 {
		return nil, &Error{Op: s.op, Code: abi.Invalid, Message: "chunk size must be positive"}
	}
	var out []byte
	for {
		line, _, err := s.Next()
		if err != nil {
			if len(out) > 0 {
				return out, nil
			}
			return nil, err
		}
		if len(out) == 0 && len(line)+1 > max {
			line = line[:max-1]
		}
		if len(out)+len(line)+1 > max {
			s.pending = line
			return out, nil
		}
		out = append(append(out, line...), '\n')
	}
}

// Close ends the stream and releases the connection. It is safe to call
// more than once and from another goroutine.
func (s *Stream) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.body.Close()
	})
	return nil
}

// Consumed reports how many bytes of the reply the stream read so far.
func (s *Stream) Consumed() int64 { return s.read }

// LocalLogs opens GET /v2/local/logs: JSON lines, the first a system line
// ("Streaming logs"), then every service's log lines. The supervisor sends
// service lines only in local mode. The stream is endless: lim and ctx
// bound it.
func (c *Client) LocalLogs(ctx context.Context, lim StreamLimits) (*Stream, error) {
	return c.openStream(ctx, call{op: OpLocalLogs, method: http.MethodGet, path: "/v2/local/logs"}, lim)
}

// JournalLogs opens POST /v2/journal-logs: the host's journal, as
// journalctl prints it. With q.Follow it never ends on its own. Every
// string of q is checked first (no control characters, bounded, Format one
// of journalctl's), though the supervisor passes them as separate
// arguments, never through a shell. A journalctl that fails (a bad Since,
// say) gives an empty stream: the supervisor forwards only its stdout.
func (c *Client) JournalLogs(ctx context.Context, q JournalQuery, lim StreamLimits) (*Stream, error) {
	if err := q.check(); err != nil {
		return nil, err
	}
	return c.openStream(ctx, call{op: OpJournalRead, method: http.MethodPost, path: "/v2/journal-logs", body: q}, lim)
}
