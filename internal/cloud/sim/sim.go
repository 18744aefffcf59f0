// Package sim is a simulator of the balena cloud API's v7 OData endpoints
// that the cloud capability calls, on real HTTP: the device, its tags, its
// and its fleet's environment and config variables, and the fleet. It
// answers as the API does for the shapes internal/cloud/README.md lists:
// {"d":[...]} for reads, 201 and the new entity for a POST, 200 "OK" for a
// PATCH or DELETE, 401 "Unauthorized" without the key, 404 for a resource
// it does not have, 400 for an OData query it cannot parse. A device's key
// sees only its own device and its fleet, as a device API key does.
package sim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// Device is a device's record.
type Device struct {
	ID    int
	UUID  string
	Name  string
	Fleet int
	// Key is the device API key that authenticates as this device.
	Key string
}

// Fleet is an application's record.
type Fleet struct {
	ID         int
	Name, Slug string
	DeviceType string
	Public     bool
}

// Var is an environment or config variable, of a device or a fleet
// according to the table it is in.
type Var struct{ Name, Value string }

// Options seed the simulator.
type Options struct {
	Devices []Device
	Fleets  []Fleet
	// Tags, Env and Config are keyed by device id; FleetEnv and
	// FleetConfig by fleet id.
	Tags               map[int]map[string]string
	Env, Config        map[int][]Var
	FleetEnv, FleetCfg map[int][]Var
	Logger             *slog.Logger
	// EchoAuth makes every 400 body repeat the Authorization header, as a
	// careless proxy might: tests use it to show that the key never reaches
	// a plugin through an error.
	EchoAuth bool
	// Fail, if not 0, is the status every request gets (with EchoAuth, its
	// body repeats the Authorization header): an API in trouble.
	Fail int
}

type tag struct {
	id, device int
	key, value string
}

// Server is a running simulator.
type Server struct {
	mu      sync.Mutex
	o       Options
	devices []Device
	fleets  []Fleet
	tags    []tag
	nextID  int
	calls   []string
	ln      net.Listener
	srv     *http.Server
	log     *slog.Logger
}

// New returns an unstarted simulator seeded from o.
func New(o Options) *Server {
	s := &Server{o: o, devices: append([]Device(nil), o.Devices...), fleets: append([]Fleet(nil), o.Fleets...), nextID: 1000, log: o.Logger}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	devs := make([]int, 0, len(o.Tags))
	for d := range o.Tags {
		devs = append(devs, d)
	}
	sort.Ints(devs)
	for _, d := range devs {
		keys := make([]string, 0, len(o.Tags[d]))
		for k := range o.Tags[d] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			s.nextID++
			s.tags = append(s.tags, tag{id: s.nextID, device: d, key: k, value: o.Tags[d][k]})
		}
	}
	return s
}

// Start listens on addr (use "127.0.0.1:0") and returns the base URL.
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.ln = ln
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve)}
	go s.srv.Serve(ln)
	return "http://" + ln.Addr().String(), nil
}

// Close stops the server.
func (s *Server) Close() {
	if s.srv != nil {
		s.srv.Close()
	}
}

// Calls returns "METHOD path?query" of every request so far, as received.
func (s *Server) Calls() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.calls...)
}

// Tags returns device id's tags.
func (s *Server) Tags(device int) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]string{}
	for _, t := range s.tags {
		if t.device == device {
			m[t.key] = t.value
		}
	}
	return m
}

// DeviceName returns device id's name.
func (s *Server) DeviceName(id int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, d := range s.devices {
		if d.ID == id {
			return d.Name
		}
	}
	return ""
}

var pathRE = regexp.MustCompile(`^/v7/([a-z_]+)(?:\(([^()]*)\))?$`)

// maxBody bounds a request body.
const maxBody = 64 << 10

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, r.Method+" "+r.URL.RequestURI())
	if s.o.Fail != 0 {
		msg := "Simulated failure"
		if s.o.EchoAuth {
			msg += " (" + r.Header.Get("Authorization") + ")"
		}
		http.Error(w, msg, s.o.Fail)
		return
	}
	me, ok := s.auth(r)
	if !ok {
		http.Error(w, "Unauthorized", http.StatusUnauthorized)
		return
	}
	m := pathRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		http.Error(w, "Not Found", http.StatusNotFound)
		return
	}
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		s.bad(w, r, err)
		return
	}
	h := &call{s: s, w: w, r: r, me: me, res: m[1], key: m[2], hasKey: strings.Contains(r.URL.Path, "("), q: q}
	h.route()
}

func (s *Server) auth(r *http.Request) (Device, bool) {
	h := r.Header.Get("Authorization")
	k, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || k == "" {
		return Device{}, false
	}
	for _, d := range s.devices {
		if d.Key == k {
			return d, true
		}
	}
	return Device{}, false
}

func (s *Server) bad(w http.ResponseWriter, r *http.Request, err error) {
	msg := err.Error()
	if s.o.EchoAuth {
		msg += " (" + r.Header.Get("Authorization") + ")"
	}
	http.Error(w, msg, http.StatusBadRequest)
}

// query is the OData options the simulator understands.
type query struct {
	filter []clause
	sel    []string
	expand string
}

// clause is "field eq literal"; a filter is clauses joined by "and".
type clause struct {
	field string
	str   *string
	num   *int
}

func parseQuery(raw string) (query, error) {
	var q query
	if raw == "" {
		return q, nil
	}
	for _, part := range strings.Split(raw, "&") {
		k, v, _ := strings.Cut(part, "=")
		k, err1 := unescape(k)
		v, err2 := unescape(v)
		if err := errors.Join(err1, err2); err != nil {
			return q, fmt.Errorf("Malformed url: %v", err)
		}
		switch k {
		case "$filter":
			f, err := parseFilter(v)
			if err != nil {
				return q, err
			}
			q.filter = f
		case "$select":
			q.sel = strings.Split(v, ",")
		case "$expand":
			q.expand = v
		default:
			return q, fmt.Errorf("Unknown query option %q", k)
		}
	}
	return q, nil
}

func unescape(s string) (string, error) {
	// OData clients write spaces as %20; a '+' is a literal plus.
	return urlUnescape(s)
}

// parseFilter parses "a eq 'x' and b eq 3", with ” inside a string
// literal standing for one quote, as OData's ABNF says.
func parseFilter(f string) ([]clause, error) {
	var out []clause
	rest := f
	for {
		var c clause
		i := strings.IndexByte(rest, ' ')
		if i <= 0 {
			return nil, fmt.Errorf("Malformed filter %q", f)
		}
		c.field, rest = rest[:i], rest[i+1:]
		if !validField(c.field) {
			return nil, fmt.Errorf("Unknown field %q in filter", c.field)
		}
		op, r2, ok := strings.Cut(rest, " ")
		if !ok || op != "eq" {
			return nil, fmt.Errorf("Unsupported operator in filter %q", f)
		}
		rest = r2
		if strings.HasPrefix(rest, "'") {
			var b strings.Builder
			j := 1
			for {
				if j >= len(rest) {
					return nil, fmt.Errorf("Unterminated string in filter %q", f)
				}
				if rest[j] == '\'' {
					if j+1 < len(rest) && rest[j+1] == '\'' {
						b.WriteByte('\'')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(rest[j])
				j++
			}
			v := b.String()
			c.str, rest = &v, rest[j+1:]
		} else {
			end := strings.IndexByte(rest, ' ')
			if end < 0 {
				end = len(rest)
			}
			n, err := strconv.Atoi(rest[:end])
			if err != nil {
				return nil, fmt.Errorf("Malformed literal %q in filter", rest[:end])
			}
			c.num, rest = &n, rest[end:]
		}
		out = append(out, c)
		if rest == "" {
			return out, nil
		}
		r3, ok := strings.CutPrefix(rest, " and ")
		if !ok {
			return nil, fmt.Errorf("Malformed filter %q", f)
		}
		rest = r3
	}
}

func validField(f string) bool {
	switch f {
	case "device", "application", "tag_key", "name", "uuid", "id":
		return true
	}
	return false
}

type call struct {
	s      *Server
	w      http.ResponseWriter
	r      *http.Request
	me     Device
	res    string
	key    string
	hasKey bool
	q      query
}

func (c *call) route() {
	switch c.res {
	case "device":
		c.device()
	case "device_tag":
		c.deviceTag()
	case "device_environment_variable", "device_config_variable":
		c.vars("device", c.me.ID, c.pick(c.s.o.Env, c.s.o.Config))
	case "application_environment_variable", "application_config_variable":
		c.vars("application", c.me.Fleet, c.pick(c.s.o.FleetEnv, c.s.o.FleetCfg))
	case "application":
		c.application()
	default:
		http.Error(c.w, "Not Found", http.StatusNotFound)
	}
}

func (c *call) pick(env, cfg map[int][]Var) map[int][]Var {
	if strings.Contains(c.res, "config") {
		return cfg
	}
	return env
}

// entity is one row: its fields as the API names them, in order.
type entity map[string]any

func (c *call) reply(rows []entity, fields []string) {
	if len(c.q.sel) > 0 {
		for _, f := range c.q.sel {
			if !contains(fields, f) {
				c.s.bad(c.w, c.r, fmt.Errorf("Unknown field %q in $select", f))
				return
			}
		}
		for i, row := range rows {
			out := entity{}
			for _, f := range c.q.sel {
				out[f] = row[f]
			}
			if nav, _, ok := strings.Cut(c.q.expand, "("); ok {
				out[nav] = row[nav] // OData returns an expanded property whatever $select says
			}
			rows[i] = out
		}
	}
	if rows == nil {
		rows = []entity{}
	}
	c.w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(c.w).Encode(map[string]any{"d": rows})
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (c *call) match(row entity) bool {
	for _, cl := range c.q.filter {
		v, ok := row[cl.field]
		if nav, isNav := v.(map[string]int); isNav {
			v = nav["__id"]
		}
		switch {
		case !ok:
			return false
		case cl.str != nil && v != *cl.str:
			return false
		case cl.num != nil && v != *cl.num:
			return false
		}
	}
	return true
}

var deviceFields = []string{"id", "uuid", "device_name", "belongs_to__application"}

func devRow(d Device) entity {
	return entity{"id": d.ID, "uuid": d.UUID, "device_name": d.Name, "belongs_to__application": map[string]int{"__id": d.Fleet}}
}

func (c *call) device() {
	switch c.r.Method {
	case http.MethodGet:
		var rows []entity
		for _, d := range c.s.devices {
			if d.ID != c.me.ID || !c.keyMatches(devRow(d)) {
				continue // a device key sees only its own device
			}
			if row := devRow(d); c.match(row) {
				rows = append(rows, row)
			}
		}
		c.reply(rows, deviceFields)
	case http.MethodPatch:
		if !c.hasKey {
			http.Error(c.w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		var body map[string]any
		if !c.body(&body) {
			return
		}
		for i, d := range c.s.devices {
			if !c.keyMatches(devRow(d)) {
				continue
			}
			if d.ID != c.me.ID {
				http.Error(c.w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			for k, v := range body {
				name, ok := v.(string)
				if k != "device_name" || !ok {
					c.s.bad(c.w, c.r, fmt.Errorf("the simulator patches only device_name, got %q", k))
					return
				}
				c.s.devices[i].Name = name
			}
		}
		c.ok()
	default:
		http.Error(c.w, "Method Not Allowed", http.StatusMethodNotAllowed)
	}
}

// keyMatches reports whether row is the one a (key) in the path names:
// (123) or (uuid='...'). No key matches every row.
func (c *call) keyMatches(row entity) bool {
	if !c.hasKey {
		return true
	}
	if n, err := strconv.Atoi(c.key); err == nil {
		return row["id"] == n
	}
	if v, ok := strings.CutPrefix(c.key, "uuid="); ok {
		cl, err := parseFilter("uuid eq " + v)
		return err == nil && len(cl) == 1 && cl[0].str != nil && row["uuid"] == *cl[0].str
	}
	return false
}

func tagRow(t tag) entity {
	return entity{"id": t.id, "device": map[string]int{"__id": t.device}, "tag_key": t.key, "value": t.value}
}

func (c *call) deviceTag() {
	switch c.r.Method {
	case http.MethodGet:
		var rows []entity
		for _, t := range c.s.tags {
			if row := tagRow(t); t.device == c.me.ID && c.keyMatches(row) && c.match(row) {
				rows = append(rows, row)
			}
		}
		c.reply(rows, []string{"id", "device", "tag_key", "value"})
	case http.MethodPost:
		var body struct {
			Device *int    `json:"device"`
			Key    *string `json:"tag_key"`
			Value  *string `json:"value"`
		}
		if c.hasKey || !c.body(&body) {
			return
		}
		if body.Device == nil || body.Key == nil || body.Value == nil {
			c.s.bad(c.w, c.r, errors.New("device, tag_key and value are required"))
			return
		}
		if *body.Device != c.me.ID {
			http.Error(c.w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		for _, t := range c.s.tags {
			if t.device == *body.Device && t.key == *body.Key {
				http.Error(c.w, "Conflict", http.StatusConflict)
				return
			}
		}
		c.s.nextID++
		t := tag{id: c.s.nextID, device: *body.Device, key: *body.Key, value: *body.Value}
		c.s.tags = append(c.s.tags, t)
		c.w.Header().Set("Content-Type", "application/json")
		c.w.WriteHeader(http.StatusCreated)
		json.NewEncoder(c.w).Encode(tagRow(t))
	case http.MethodPatch, http.MethodDelete:
		id, err := strconv.Atoi(c.key)
		if !c.hasKey || err != nil {
			c.s.bad(c.w, c.r, fmt.Errorf("the simulator addresses a device_tag by its id, got %q", c.key))
			return
		}
		var body struct {
			Value *string `json:"value"`
		}
		if c.r.Method == http.MethodPatch && (!c.body(&body) || body.Value == nil) {
			if body.Value == nil {
				c.s.bad(c.w, c.r, errors.New("value is required"))
			}
			return
		}
		for i, t := range c.s.tags {
			if t.id != id {
				continue
			}
			if t.device != c.me.ID {
				http.Error(c.w, "Unauthorized", http.StatusUnauthorized)
				return
			}
			if c.r.Method == http.MethodDelete {
				c.s.tags = append(c.s.tags[:i], c.s.tags[i+1:]...)
			} else {
				c.s.tags[i].value = *body.Value
			}
		}
		c.ok() // pine answers OK when no row matched, too
	default:
		http.Error(c.w, "Method Not Allowed", http.StatusMethodNotAllowed)
	}
}

func (c *call) vars(owner string, id int, table map[int][]Var) {
	if c.r.Method != http.MethodGet || c.hasKey {
		http.Error(c.w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	var rows []entity
	for i, v := range table[id] {
		row := entity{"id": id*1000 + i, owner: map[string]int{"__id": id}, "name": v.Name, "value": v.Value}
		if c.match(row) {
			rows = append(rows, row)
		}
	}
	c.reply(rows, []string{"id", owner, "name", "value"})
}

func (c *call) application() {
	if c.r.Method != http.MethodGet {
		http.Error(c.w, "Method Not Allowed", http.StatusMethodNotAllowed)
		return
	}
	if c.q.expand != "" && c.q.expand != "is_for__device_type($select=slug)" {
		c.s.bad(c.w, c.r, fmt.Errorf("the simulator expands only is_for__device_type($select=slug), got %q", c.q.expand))
		return
	}
	var rows []entity
	for _, f := range c.s.fleets {
		row := entity{"id": f.ID, "app_name": f.Name, "slug": f.Slug, "is_public": f.Public,
			"is_for__device_type": map[string]int{"__id": 1}}
		if f.ID != c.me.Fleet || !c.keyMatches(row) || !c.match(row) {
			continue // a device key sees its own fleet
		}
		if c.q.expand != "" {
			row["is_for__device_type"] = []map[string]string{{"slug": f.DeviceType}}
		}
		rows = append(rows, row)
	}
	c.reply(rows, []string{"id", "app_name", "slug", "is_public", "is_for__device_type"})
}

func (c *call) body(v any) bool {
	b, err := io.ReadAll(io.LimitReader(c.r.Body, maxBody+1))
	if err != nil || len(b) > maxBody {
		c.s.bad(c.w, c.r, errors.New("request body too large"))
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		c.s.bad(c.w, c.r, fmt.Errorf("Malformed JSON body: %v", err))
		return false
	}
	return true
}

func (c *call) ok() {
	c.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(c.w, "OK")
}

func urlUnescape(s string) (string, error) { return url.PathUnescape(s) }
