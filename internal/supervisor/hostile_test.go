package supervisor

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/airlockhq/airlock/abi"
	"github.com/airlockhq/airlock/internal/simdevice/supsim"
)

// TestHostileValuesNeverReachTheWire: a value that could walk a path
// (../), split a header or a URL (CR, LF, NUL), or be read by journalctl as
// an option is refused as Invalid, and no request is sent.
func TestHostileValuesNeverReachTheWire(t *testing.T) {
	ctx := context.Background()
	r := newRig(t, supsim.Options{Services: []string{"main", "worker"}}, nil)
	hostile := []string{"../../v1/reboot", "main/../worker", "..", "%2e%2e%2fv1%2freboot", "main\r\nX-Injected: 1", "main\n", "ma\x00in", "main?apikey=x", "main#x", "ma in", "é"}
	for _, v := range hostile {
		calls := map[string]func() error{
			"RestartService": func() error { return r.c.RestartService(ctx, v, true) },
			"StopService":    func() error { return r.c.StopService(ctx, v, true) },
			"StartService":   func() error { return r.c.StartService(ctx, v, true) },
			"ContainerID":    func() error { _, err := r.c.ContainerID(ctx, v); return err },
			"SetTags key":    func() error { return r.c.SetTags(ctx, map[string]string{v: "x"}) },
			"journal unit":   func() error { _, err := r.c.JournalLogs(ctx, JournalQuery{Unit: v}, StreamLimits{}); return err },
			"journal id":     func() error { _, err := r.c.JournalLogs(ctx, JournalQuery{ContainerID: v}, StreamLimits{}); return err },
			"journal format": func() error { _, err := r.c.JournalLogs(ctx, JournalQuery{Format: v}, StreamLimits{}); return err },
		}
		for name, call := range calls {
			if name == "SetTags key" && !strings.ContainsAny(v, " \r\n\x00") {
				continue // any other text is a fine tag key: it travels in JSON
			}
			if err := call(); Errno(err) != abi.Invalid {
				t.Errorf("%s(%q): %v, want invalid", name, v, err)
			}
		}
	}
	for name, call := range map[string]func() error{
		"tag value with a newline": func() error { return r.c.SetTags(ctx, map[string]string{"k": "a\nb"}) },
		"journal since with CR LF": func() error {
			_, err := r.c.JournalLogs(ctx, JournalQuery{Since: "today\r\nX-Injected: 1"}, StreamLimits{})
			return err
		},
		"unit that is an option": func() error {
			_, err := r.c.JournalLogs(ctx, JournalQuery{Unit: "--file=/etc/shadow"}, StreamLimits{})
			return err
		},
		"negative count":          func() error { _, err := r.c.JournalLogs(ctx, JournalQuery{Count: -1}, StreamLimits{}); return err },
		"target state not object": func() error { return r.c.SetLocalTargetState(ctx, []byte(`[1]`), false) },
		"no tags":                 func() error { return r.c.SetTags(ctx, nil) },
	} {
		if err := call(); Errno(err) != abi.Invalid {
			t.Errorf("%s: %v, want invalid", name, err)
		}
	}
	if ev := r.sim.Events(); len(ev) != 0 {
		t.Fatalf("hostile values reached the supervisor: %+v", ev)
	}
	if st := r.sim.State(); st.Rebooting || st.Reboots != 0 {
		t.Fatalf("state %+v", st)
	}
}

// TestHeaderInjectionInTheKey: a key that could split the Authorization
// header or the URL is refused by New, without repeating it.
func TestHeaderInjectionInTheKey(t *testing.T) {
	for _, k := range []string{"abc\r\nX-Injected: 1", "abc\rdef", "abc\x00", "abc def", "kéy", strings.Repeat("k", maxKeyLen+1)} {
		_, err := New(Config{Address: "http://127.0.0.1:1", APIKey: k})
		if err == nil {
			t.Errorf("key %q accepted", k)
			continue
		}
		if strings.Contains(err.Error(), k) {
			t.Errorf("error repeats the key: %q", err)
		}
	}
}

// endless is a peer that answers every request 200 with an endless body,
// counting what it managed to write.
func endless(t *testing.T, chunk string) (*httptest.Server, *atomic.Int64) {
	var written atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		b := []byte(strings.Repeat(chunk, 1+(32<<10)/len(chunk)))
		for {
			n, err := w.Write(b)
			written.Add(int64(n))
			if err != nil || rc.Flush() != nil {
				return
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &written
}

// TestEndlessReplies: a misbehaving supervisor that never stops sending gets
// read up to a bound, for a plain reply and for both streams, whether its
// lines never end or never stop coming.
func TestEndlessReplies(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// What the peer may write beyond what we read: socket buffers only.
	const slack = 16 << 20

	t.Run("plain reply", func(t *testing.T) {
		srv, written := endless(t, "x")
		c, err := New(Config{Address: srv.URL, APIKey: wordKey, Retries: -1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Device(ctx); Errno(err) != abi.TooLarge {
			t.Fatalf("endless reply: %v, want too_large", err)
		}
		if n := written.Load(); n > maxReply+slack {
			t.Errorf("the peer wrote %d bytes before the client stopped", n)
		}
	})
	for _, tc := range []struct {
		name, chunk string
		wantCut     bool
	}{{"a line without end", "y", true}, {"lines without end", "short line\n", false}} {
		t.Run(tc.name, func(t *testing.T) {
			srv, written := endless(t, tc.chunk)
			c, err := New(Config{Address: srv.URL, APIKey: wordKey, Retries: -1})
			if err != nil {
				t.Fatal(err)
			}
			lim := StreamLimits{MaxLine: 100, MaxBytes: 256 << 10}
			for _, open := range []func() (*Stream, error){
				func() (*Stream, error) { return c.LocalLogs(ctx, lim) },
				func() (*Stream, error) { return c.JournalLogs(ctx, JournalQuery{Follow: true}, lim) },
			} {
				before := written.Load()
				st, err := open()
				if err != nil {
					t.Fatal(err)
				}
				var lines, longest int
				for {
					l, _, err := st.Next()
					if err != nil {
						if Errno(err) != abi.TooLarge {
							t.Fatalf("end of an endless stream: %v, want too_large", err)
						}
						break
					}
					lines++
					longest = max(longest, len(l))
				}
				// An endless line is one cut line; endless lines are whole
				// but for the one the budget ends in.
				wrongCut := st.Cut > 1 || tc.wantCut && lines != 1
				if st.Consumed() != lim.MaxBytes || longest > lim.MaxLine || wrongCut {
					t.Errorf("read %d bytes (budget %d), %d lines, longest %d, %d cut", st.Consumed(), lim.MaxBytes, lines, longest, st.Cut)
				}
				if n := written.Load() - before; n > lim.MaxBytes+slack {
					t.Errorf("the peer wrote %d bytes for a %d-byte budget", n, lim.MaxBytes)
				}
				if _, _, err := st.Next(); Errno(err) != abi.TooLarge {
					t.Errorf("after the end: %v", err)
				}
			}
		})
	}
	t.Run("an endless error body", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(500)
			for {
				if _, err := w.Write([]byte(strings.Repeat("e", 32<<10))); err != nil {
					return
				}
			}
		}))
		defer srv.Close()
		c, _ := New(Config{Address: srv.URL, APIKey: wordKey, Retries: -1})
		_, err := c.LocalLogs(ctx, StreamLimits{})
		var e *Error
		if !errors.As(err, &e) || e.Status != 500 || len(e.Message) > maxMessage+4 {
			t.Fatalf("endless error body: %v", err)
		}
	})
	t.Run("a stream that stalls", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, "first")
			http.NewResponseController(w).Flush()
			select {
			case <-r.Context().Done():
			case <-release:
			}
		}))
		defer srv.Close()
		defer close(release)
		c, _ := New(Config{Address: srv.URL, APIKey: wordKey, Retries: -1})
		// The caller's context ends while the read is blocked (cancelled
		// rather than timed, so that a loaded machine cannot fail it).
		sctx, scancel := context.WithCancel(ctx)
		defer scancel()
		st, err := c.LocalLogs(sctx, StreamLimits{})
		if err != nil {
			t.Fatal(err)
		}
		if l, _, err := st.Next(); err != nil || string(l) != "first" {
			t.Fatalf("first line %q %v", l, err)
		}
		time.AfterFunc(10*time.Millisecond, scancel)
		if _, _, err := st.Next(); Errno(err) != abi.Timeout {
			t.Fatalf("stalled stream after the caller's context ended: %v, want timeout", err)
		}
	})
}
