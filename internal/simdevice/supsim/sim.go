// Package supsim is a simulated balena device supervisor: an HTTP server on
// loopback that speaks the published Supervisor API (paths, auth, status codes
// and bodies) and keeps the device state that requests change, so that tests
// and the embedded demo device can watch the effects of what plugins ask for.
package supsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"slices"
	"sync"
	"time"
)

// SupervisorVersion is what the simulator reports from /v2/version and /v1/device.
const SupervisorVersion = "17.0.0"

// Service statuses as the supervisor's /v2/state/status reports them.
const (
	Running = "Running"
	Stopped = "Stopped"
)

// Options configures a simulator. Zero values get defaults.
type Options struct {
	APIKey      string        // the key requests must present; "" means a fixed test key
	AppID       int           // the application the key is scoped to; 0 means 1
	Services    []string      // service names; nil means ["main"]
	RebootDelay time.Duration // between the 202 and the "reboot"; 0 means 1s, like the real one
	Logger      *slog.Logger  // nil discards

	// LocalMode is the supervisor's local mode: it checks no API key at
	// all, accepts POST /v2/local/target-state, and streams the services'
	// logs on /v2/local/logs. Off, like a managed device.
	LocalMode bool
	// NoInstantUpdates turns the instantUpdates setting off
	// (SUPERVISOR_INSTANT_UPDATE_TRIGGER=false): POST /v1/update then
	// answers 202 and triggers nothing unless forced. The real default is
	// on, where every update request answers 204.
	NoInstantUpdates bool
}

// DefaultAPIKey is used when Options.APIKey is empty. It is not a secret:
// the simulator only listens on loopback. Like a real key (32 hex digits)
// it is all word characters, so the Authorization header can carry it.
const DefaultAPIKey = "0123456789abcdef0123456789abcdef"

// Facts of the simulated device that /v2/local/device-info and the target
// state report.
const (
	DeviceType = "raspberrypi4-64"
	DeviceArch = "aarch64"
	AppName    = "airlock-sim"
	AppUUID    = "a1e0a1e0a1e0a1e0a1e0a1e0a1e0a1e0"
	ReleaseID  = 1
)

// Service is one container of the simulated application.
type Service struct {
	Name        string
	ServiceID   int
	ImageID     int
	ContainerID string
	Status      string // Running or Stopped
	Restarts    int    // how many times it was (re)started since the simulator began
}

// Tag is a device tag, shaped like /v2/device/tags reports them.
type Tag struct {
	ID    int    `json:"id"`
	Name  string `json:"name"`
	Value string `json:"value"`
}

// State is a snapshot of the simulated device. It shares nothing with the
// simulator, so callers may keep and modify it.
type State struct {
	AppID      int
	DeviceName string
	Hostname   string
	Tags       []Tag
	Services   []Service

	LockHolder   string // who holds the update lock; "" when unlocked
	Rebooting    bool   // a reboot was accepted and has not happened yet
	ShuttingDown bool   // a shutdown was accepted and has not happened yet
	PoweredOff   bool   // the device shut down; it answers nothing now

	Reboots        int // completed reboots
	Blinks         int
	Updates        int // update checks triggered (answered 204)
	UpdatesIgnored int // update requests answered 202: instant updates off and not forced
	Purges         int
	Healthy        bool
	Requests       int // requests handled, including refused ones

	// Volumes are the docker volumes on the device ("<appId>_<name>");
	// GET /v2/cleanup-volumes removes those the app does not reference.
	Volumes        []string
	VolumeCleanups int
	// LocalTarget is the body of the last accepted POST
	// /v2/local/target-state, or nil.
	LocalTarget     []byte
	KeyRotations    int // POST /v1/regenerate-api-key accepted
	LogLinesDropped int // service log lines no /v2/local/logs reader took in time
}

// Service returns the named service from the snapshot.
func (s State) Service(name string) (Service, bool) {
	for _, sv := range s.Services {
		if sv.Name == name {
			return sv, true
		}
	}
	return Service{}, false
}

// Event is one handled request, in the journal.
type Event struct {
	Method string
	Path   string // without the query, so the apikey parameter never lands here
	Status int    // 0 when the connection was dropped (device powered off)
	Auth   string // "query", "header", "none" (open route), "local-mode" (no key checked), or "refused"
}

// Server is the simulated supervisor. All methods are safe for concurrent use.
type Server struct {
	opts Options
	log  *slog.Logger

	// mu guards everything below. Handlers and the reboot timer take it for
	// the whole of a state change, so every request sees a consistent device.
	mu       sync.Mutex
	key      string // the key requests must present; regenerate-api-key changes it
	st       State
	journal  []Event
	hostLog  []journalEntry             // the host's systemd journal, for /v2/journal-logs
	logSubs  map[chan []byte]bool       // readers of /v2/local/logs
	jnlSubs  map[chan journalEntry]bool // followers of /v2/journal-logs
	done     chan struct{}              // closed by Close: ends every stream
	failNext int                        // answer this many upcoming requests with 503
	timer    *time.Timer                // the pending reboot or shutdown
	settled  chan struct{}              // closed when no reboot or shutdown is pending

	routesOnce sync.Once
	mux        *http.ServeMux

	srv *http.Server
	ln  net.Listener
}

// New builds a simulator; Start makes it listen.
func New(opts Options) *Server {
	if opts.APIKey == "" {
		opts.APIKey = DefaultAPIKey
	}
	if opts.AppID == 0 {
		opts.AppID = 1
	}
	if opts.Services == nil {
		opts.Services = []string{"main"}
	}
	if opts.RebootDelay == 0 {
		opts.RebootDelay = time.Second
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{opts: opts, log: log.With("component", "supervisor-sim"), key: opts.APIKey,
		logSubs: map[chan []byte]bool{}, jnlSubs: map[chan journalEntry]bool{}, done: make(chan struct{})}
	s.st = State{
		AppID:      opts.AppID,
		DeviceName: "airlock-sim",
		Hostname:   "airlock-sim",
		Tags:       []Tag{{ID: 1, Name: "role", Value: "simulated"}},
		Healthy:    true,
		Volumes:    []string{fmt.Sprintf("%d_data", opts.AppID)},
	}
	for i, name := range opts.Services {
		s.st.Services = append(s.st.Services, Service{
			Name:        name,
			ServiceID:   100 + i,
			ImageID:     1000 + i,
			ContainerID: fmt.Sprintf("%064x", 0xa1e0000+i),
			Status:      Running,
			Restarts:    0,
		})
	}
	s.settled = make(chan struct{})
	close(s.settled)
	s.seedJournal()
	return s
}

// APIKey returns the key the simulator accepts now, for wiring a client to
// it. POST /v1/regenerate-api-key changes it.
func (s *Server) APIKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key
}

// Start listens on addr, which must be a loopback address ("127.0.0.1:0"
// picks a free port; "" means that), and returns the base URL to use as
// BALENA_SUPERVISOR_ADDRESS.
func (s *Server) Start(addr string) (string, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("supervisor sim: listen address %q: %w", addr, err)
	}
	// The simulator accepts a well-known key, so it must never be reachable
	// from the network.
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("supervisor sim: listen address %q is not loopback", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("supervisor sim: %w", err)
	}
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve", "err", err)
		}
	}()
	url := "http://" + ln.Addr().String()
	s.log.Info("listening", "url", url)
	return url, nil
}

// Close stops the server and any pending reboot. It is safe to call twice.
func (s *Server) Close() {
	s.mu.Lock()
	select {
	case <-s.done:
	default:
		close(s.done)
	}
	if s.timer != nil {
		s.timer.Stop()
		s.timer = nil
		// Nothing will finish the pending action now; release Settle waiters.
		close(s.settled)
		s.settled = make(chan struct{})
		close(s.settled)
	}
	s.mu.Unlock()
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = s.srv.Shutdown(ctx)
	}
}

// State returns a snapshot of the device.
func (s *Server) State() State {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.st
	c.Tags = slices.Clone(s.st.Tags)
	c.Services = slices.Clone(s.st.Services)
	c.Volumes = slices.Clone(s.st.Volumes)
	c.LocalTarget = slices.Clone(s.st.LocalTarget)
	return c
}

// Events returns a copy of the journal of handled requests, oldest first.
func (s *Server) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.journal)
}

// Count returns how many journal entries have this method and path.
func (s *Server) Count(method, path string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.journal {
		if e.Method == method && e.Path == path {
			n++
		}
	}
	return n
}

// Lock takes the update lock on behalf of holder (a service name, say), as
// an application does by creating /tmp/balena/updates.lock. It reports false
// when someone else already holds it.
func (s *Server) Lock(holder string) bool {
	if holder == "" {
		holder = "app"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.st.LockHolder != "" && s.st.LockHolder != holder {
		return false
	}
	s.st.LockHolder = holder
	return true
}

// Crash marks a service's container as exited, as when the app dies on its
// own. It reports false for an unknown service.
func (s *Server) Crash(service string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.st.Services {
		if s.st.Services[i].Name == service {
			s.st.Services[i].Status = Stopped
			return true
		}
	}
	return false
}

// Unlock releases the update lock, whoever holds it.
func (s *Server) Unlock() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.LockHolder = ""
}

// FailNext makes the next n authorised requests fail with the supervisor's
// generic 503 error, to play a supervisor that is briefly unwell.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext = n
}

// SetHealthy sets what /v1/healthy answers.
func (s *Server) SetHealthy(ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Healthy = ok
}

// Settle waits until no reboot or shutdown is pending, or ctx ends.
func (s *Server) Settle(ctx context.Context) error {
	s.mu.Lock()
	ch := s.settled
	s.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("supervisor sim: waiting for the device to settle: %w", ctx.Err())
	}
}

// PowerOn brings a shut-down device back, with every service started.
func (s *Server) PowerOn() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.st.PoweredOff {
		return
	}
	s.st.PoweredOff = false
	s.bootLocked()
}

// ServeHTTP authenticates, routes and journals one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &recorder{ResponseWriter: w}
	ev := Event{Method: r.Method, Path: r.URL.Path}
	defer func() {
		ev.Status = rec.status
		s.mu.Lock()
		s.journal = append(s.journal, ev)
		s.st.Requests++
		s.mu.Unlock()
		s.log.Debug("request", "method", ev.Method, "path", ev.Path, "status", ev.Status, "auth", ev.Auth)
	}()

	s.mu.Lock()
	off := s.st.PoweredOff
	s.mu.Unlock()
	if off {
		// A device that is off answers nothing: drop the connection so the
		// client sees what it would see on a real one.
		if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
			conn.Close()
		}
		ev.Auth = "none"
		return
	}

	open := r.Method == http.MethodGet && (r.URL.Path == "/ping" || r.URL.Path == "/v1/healthy")
	switch {
	case open:
		ev.Auth = "none"
	case s.opts.LocalMode:
		// In local mode the real supervisor checks no key at all.
		ev.Auth = "local-mode"
	default:
		how, ok := s.authorised(r)
		ev.Auth = how
		if !ok {
			// res.sendStatus(401): plain text, the status's name.
			writeText(rec, http.StatusUnauthorized, "Unauthorized")
			return
		}
	}

	s.mu.Lock()
	fail := s.failNext > 0 && !open
	if fail {
		s.failNext--
	}
	s.mu.Unlock()
	if fail {
		if r.Method == http.MethodPost && (r.URL.Path == "/v1/reboot" || r.URL.Path == "/v1/shutdown") {
			// These two routes catch their own errors: 500 {Data,Error}.
			writeJSON(rec, http.StatusInternalServerError, map[string]any{"Data": "", "Error": "simulated supervisor failure"})
			return
		}
		writeFailed(rec, http.StatusServiceUnavailable, "simulated supervisor failure")
		return
	}
	s.route(rec, r)
}

// headerKey is the real auth middleware's pattern for the Authorization
// header (case-insensitive; JavaScript's \w is ASCII only). A key with any
// other character cannot be sent this way; it works only as ?apikey=.
var headerKey = regexp.MustCompile(`(?i)^(?:ApiKey|Bearer) ([A-Za-z0-9_]+)$`)

// authorised follows the supervisor's auth middleware: a non-empty apikey
// query parameter (given once) wins; otherwise the Authorization header
// must match headerKey exactly, one space and all.
func (s *Server) authorised(r *http.Request) (how string, ok bool) {
	s.mu.Lock()
	want := s.key
	s.mu.Unlock()
	if q := r.URL.Query()["apikey"]; len(q) == 1 && q[0] != "" {
		// Express parses a repeated parameter into an array, which the
		// middleware ignores; an empty one is falsy and ignored too.
		return authResult("query", q[0] == want)
	}
	m := headerKey.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		return "refused", false
	}
	return authResult("header", m[1] == want)
}

func authResult(how string, ok bool) (string, bool) {
	if !ok {
		return "refused", false
	}
	return how, true
}

// recorder remembers the status for the journal.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

var _ io.Writer = (*recorder)(nil)
