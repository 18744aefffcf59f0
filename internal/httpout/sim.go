package httpout

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sort"
	"sync/atomic"
	"time"
)

// SimHost is the simulated device's HTTP echo service, as plugins name it
// in a grant and a URL: http://echo.sim.airlock/anything. Only the
// simulated device knows the name; it reaches a loopback port of the host.
const SimHost = "echo.sim.airlock"

// echoServer answers every request with what it received, as JSON:
// method, path, query, headers, body. It is the simulated device's webhook
// receiver, and shows that a host-held secret reached the server (the
// plugin reads it back redacted).
type echoServer struct {
	ln       net.Listener
	srv      *http.Server
	requests atomic.Uint64
}

// Echo is the JSON the echo service answers with.
type Echo struct {
	Method string              `json:"method"`
	Path   string              `json:"path"`
	Query  string              `json:"query,omitempty"`
	Header map[string][]string `json:"header"`
	Body   string              `json:"body"`
}

func (c *Capability) startSim() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	e := &echoServer{ln: ln}
	e.srv = &http.Server{Handler: http.HandlerFunc(e.serve), ReadHeaderTimeout: 5 * time.Second}
	go e.srv.Serve(ln)
	c.sim = e
	c.simHosts = map[string]string{net.JoinHostPort(SimHost, "80"): ln.Addr().String()}
	c.log.Info("simulated HTTP echo service", "url", "http://"+SimHost, "addr", ln.Addr().String())
	return nil
}

func (e *echoServer) serve(w http.ResponseWriter, r *http.Request) {
	e.requests.Add(1)
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	h := map[string][]string{}
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		h[k] = r.Header[k]
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(Echo{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: h, Body: string(body)})
}

func (e *echoServer) close() { e.srv.Close() }

// SimRequests counts the requests the echo service has answered.
func (c *Capability) SimRequests() uint64 {
	if c.sim == nil {
		return 0
	}
	return c.sim.requests.Load()
}

// simSecret is a random value for a secret the simulated device lacks.
func simSecret() string {
	b := make([]byte, 12)
	rand.Read(b)
	return "sim-" + hex.EncodeToString(b)
}
