package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/airlockhq/airlock/host/gate"
	"github.com/airlockhq/airlock/internal/statedir"
)

// Server serves the admin API on a Unix socket.
type Server struct {
	path string
	ln   *net.UnixListener
	srv  *http.Server
	host Host
	gate *gate.Gate
	log  *slog.Logger
	uid  int // the host's uid; it and root may connect
	done chan struct{}
}

// Listen creates the socket at path with mode 0600. A socket left behind by
// a host that died is replaced; one that another host still answers on is
// an error.
func Listen(path string) (*Server, error) {
	if err := statedir.Make(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("admin socket: %w (or set [admin] socket in runtime.toml)", err)
	}
	if st, err := os.Lstat(path); err == nil {
		if st.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("admin socket %s: a file that is not a socket is in the way (remove it, or set [admin] socket in runtime.toml)", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("admin socket %s: another airlock host is serving it (stop it, or give this one another [admin] socket)", path)
		}
		os.Remove(path)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w (set [admin] socket in runtime.toml to a shorter or writable path, or \"off\")", err)
	}
	// The state directory is 0700, so nobody else can reach the socket in
	// the moment before the chmod.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	return &Server{path: path, ln: ln, uid: os.Getuid(), done: make(chan struct{})}, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Serve answers requests until Close. Every request is audited through g
// as capability "admin".
func (s *Server) Serve(h Host, g *gate.Gate, log *slog.Logger) {
	s.host, s.gate, s.log = h, g, log
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathStatus, s.status)
	mux.HandleFunc("POST "+PathTrigger, s.trigger)
	s.srv = &http.Server{
		Handler:           s.authorize(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, peerKey{}, peerOf(c))
		},
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("admin socket stopped", "error", err.Error())
		}
	}()
}

// Close stops serving and removes the socket.
func (s *Server) Close() error {
	if s.srv == nil {
		return s.ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	<-s.done
	return err
}

type peerKey struct{}

// peer is who is on the other end of a connection, from SO_PEERCRED: the
// credentials the kernel recorded when the peer connected, which it cannot
// forge.
type peer struct {
	uid, pid int
	err      error
}

func (p peer) String() string {
	if p.err != nil {
		return "unknown peer (" + p.err.Error() + ")"
	}
	return "uid " + strconv.Itoa(p.uid) + " pid " + strconv.Itoa(p.pid)
}

func peerOf(c net.Conn) peer {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return peer{err: errors.New("not a unix socket")}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return peer{err: err}
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return peer{err: err}
	}
	if cerr != nil {
		return peer{err: cerr}
	}
	return peer{uid: int(cred.Uid), pid: int(cred.Pid)}
}

// authorize lets root and the host's own user through. The socket's mode
// already keeps others out; this holds even if the mode is loosened.
func (s *Server) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := r.Context().Value(peerKey{}).(peer)
		if p.err != nil || (p.uid != 0 && p.uid != s.uid) {
			reason := fmt.Sprintf("%s is neither root nor the host's uid %d", p, s.uid)
			s.gate.Check(r.Context(), "-", "admin", r.Method+" "+r.URL.Path, gate.Deny(reason))
			s.log.Warn("admin request refused", "peer", p.String(), "path", r.URL.Path)
			writeError(w, http.StatusForbidden, "permission denied: "+reason)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) allow(r *http.Request, plugin, op string) {
	p, _ := r.Context().Value(peerKey{}).(peer)
	s.gate.Check(r.Context(), plugin, "admin", op, gate.Allow("peer "+p.String()))
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	s.allow(r, "-", "status")
	writeJSON(w, http.StatusOK, s.host.Report())
}

func (s *Server) trigger(w http.ResponseWriter, r *http.Request) {
	var req TriggerRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		s.gate.Check(r.Context(), "-", "admin", "trigger", gate.Deny("malformed request: "+err.Error()))
		writeError(w, http.StatusBadRequest, "malformed request: "+err.Error())
		return
	}
	m := s.host.Manifest(req.Plugin)
	if m == nil {
		s.gate.Check(r.Context(), req.Plugin, "admin", "trigger "+req.Kind, gate.Deny("no such plugin is running"))
		writeError(w, http.StatusNotFound, fmt.Sprintf("no plugin %q is running (see airlock status)", req.Plugin))
		return
	}
	ev, desc, err := Event(req, m, s.host.Synthesizers())
	if err != nil {
		s.gate.Check(r.Context(), req.Plugin, "admin", "trigger "+req.Kind, gate.Deny(err.Error()))
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.allow(r, req.Plugin, "trigger "+desc)
	queued := s.host.Deliver(req.Plugin, ev)
	s.log.Info("admin: synthetic event", "plugin", req.Plugin, "event", desc, "queued", queued)
	if !queued {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": fmt.Sprintf("plugin %q did not queue the event: its queue is full, it is over limits.events_per_second, or it is stopping (counted as dropped unless stopping; see airlock status)", req.Plugin), "queued": false, "event": desc})
		return
	}
	writeJSON(w, http.StatusOK, TriggerReply{Queued: true, Event: desc})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, map[string]string{"error": msg})
}
