package supsim

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// This file holds the routes that reach past the application: device tags,
// volume clean-up, local mode, the two log streams and key regeneration.

// tagsPatch is PATCH /v2/device/tags: an object of string values, keys
// without whitespace; 202 once queued for the cloud. The simulator applies
// it at once, so that GET /v2/device/tags shows it.
func (s *Server) tagsPatch(w http.ResponseWriter, r *http.Request) {
	const shape = "Invalid tags body, must be an object like `{[tagKey: string]: string}`"
	var raw json.RawMessage
	if !decodeBody(w, r, &raw) {
		return
	}
	tags := map[string]any{}
	if len(raw) > 0 {
		var v any
		_ = json.Unmarshal(raw, &v) // decodeBody already parsed it
		switch v := v.(type) {
		case map[string]any:
			tags = v
		case []any: // typeof [] is "object": Object.entries gives index keys
			for i, e := range v {
				tags[strconv.Itoa(i)] = e
			}
		}
	}
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		if _, ok := v.(string); !ok {
			writeFailed(w, http.StatusBadRequest, shape)
			return
		}
		if strings.IndexFunc(k, jsSpace) >= 0 {
			writeFailed(w, http.StatusBadRequest, "Tag keys cannot contain whitespace")
			return
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s.mu.Lock()
	for _, k := range keys {
		i := slices.IndexFunc(s.st.Tags, func(t Tag) bool { return t.Name == k })
		if i >= 0 {
			s.st.Tags[i].Value = tags[k].(string)
			continue
		}
		next := 1
		for _, t := range s.st.Tags {
			next = max(next, t.ID+1)
		}
		s.st.Tags = append(s.st.Tags, Tag{ID: next, Name: k, Value: tags[k].(string)})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusAccepted, map[string]string{"status": "success"})
}

// jsSpace is JavaScript's \s.
func jsSpace(r rune) bool { return unicode.IsSpace(r) || r == '\uFEFF' }

// AddVolume puts a docker volume on the device, as an old release would
// have left one behind.
func (s *Server) AddVolume(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !slices.Contains(s.st.Volumes, name) {
		s.st.Volumes = append(s.st.Volumes, name)
	}
}

// cleanupVolumes is GET /v2/cleanup-volumes: remove the volumes the target
// release does not reference (here: all but "<appId>_data").
func (s *Server) cleanupVolumes(w http.ResponseWriter, r *http.Request) {
	keep := fmt.Sprintf("%d_data", s.opts.AppID)
	s.mu.Lock()
	s.st.Volumes = slices.DeleteFunc(s.st.Volumes, func(v string) bool { return v != keep })
	s.st.VolumeCleanups++
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"status": "success"})
}

// localTargetGet is GET /v2/local/target-state. The real one reports the
// supervisor's internal target ({local: {name, config, apps}}); the
// simulator reports the last target set in local mode, or one built from
// the device.
func (s *Server) localTargetGet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := json.RawMessage(s.st.LocalTarget)
	if state == nil {
		svcs := []map[string]any{}
		for _, sv := range s.st.Services {
			svcs = append(svcs, map[string]any{
				"serviceName": sv.Name, "serviceId": sv.ServiceID, "imageId": sv.ImageID,
				"imageName": imageName(sv.ImageID), "releaseId": ReleaseID, "commit": Release,
			})
		}
		b, _ := json.Marshal(map[string]any{"local": map[string]any{
			"name":   s.st.DeviceName,
			"config": map[string]string{"HOST_CONFIG_gpu_mem": "16"},
			"apps": map[string]any{strconv.Itoa(s.opts.AppID): map[string]any{
				"appId": s.opts.AppID, "appUuid": AppUUID, "appName": AppName, "commit": Release,
				"releaseId": ReleaseID, "services": svcs,
			}},
		}})
		state = b
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "success", "state": state})
}

// localTargetPost is POST /v2/local/target-state: refused unless the device
// is in local mode; a target without a "local" object is refused as the
// real state validation refuses it.
func (s *Server) localTargetPost(w http.ResponseWriter, r *http.Request) {
	var body map[string]json.RawMessage
	if !decodeBody(w, r, &body) {
		return
	}
	if !s.opts.LocalMode {
		writeFailed(w, http.StatusBadRequest, "Target state can only set when device is in local mode")
		return
	}
	var local map[string]json.RawMessage
	if err := json.Unmarshal(body["local"], &local); err != nil || local == nil {
		writeFailed(w, http.StatusBadRequest, "Invalid target state: local must be an object with name, config and apps")
		return
	}
	delete(body, "force")
	b, _ := json.Marshal(body)
	s.mu.Lock()
	s.st.LocalTarget = b
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"status": "success", "message": "OK"})
}

// regenerateKey is POST /v1/regenerate-api-key: the old key stops working
// and the new one is the reply, as a string (res.send, so text/html).
func (s *Server) regenerateKey(w http.ResponseWriter, r *http.Request) {
	b := make([]byte, 16)
	rand.Read(b)
	k := hex.EncodeToString(b)
	s.mu.Lock()
	s.key = k
	s.st.KeyRotations++
	s.mu.Unlock()
	writeSend(w, http.StatusOK, k)
}

// logBuffer is how many lines a /v2/local/logs reader may fall behind
// before lines are dropped (and counted in State.LogLinesDropped).
const logBuffer = 256

// AppLog is a line a service writes. In local mode the supervisor streams
// it to /v2/local/logs readers; on a managed device it goes to the cloud,
// and local readers never see it.
func (s *Server) AppLog(service, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.opts.LocalMode {
		return
	}
	id := 0
	for _, sv := range s.st.Services {
		if sv.Name == service {
			id = sv.ServiceID
		}
	}
	// local-backend.ts: Object.assign({}, {serviceName}, message).
	line, _ := json.Marshal(struct {
		ServiceName string `json:"serviceName"`
		Message     string `json:"message"`
		Timestamp   int64  `json:"timestamp"`
		ServiceID   int    `json:"serviceId"`
	}{service, message, time.Now().UnixMilli(), id})
	line = append(line, '\n')
	for ch := range s.logSubs {
		select {
		case ch <- line:
		default:
			s.st.LogLinesDropped++
		}
	}
}

// localLogs is GET /v2/local/logs: a first system line, then every service
// log line until the reader goes away.
func (s *Server) localLogs(w http.ResponseWriter, r *http.Request) {
	ch := make(chan []byte, logBuffer)
	s.mu.Lock()
	s.logSubs[ch] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.logSubs, ch)
		s.mu.Unlock()
	}()
	rc := http.NewResponseController(w)
	w.Header()["Content-Type"] = nil // piped, never labelled
	w.WriteHeader(http.StatusOK)
	io.WriteString(w, `{"message":"Streaming logs","isSystem":true}`+"\n")
	rc.Flush()
	pump(s, w, r, ch, func(line []byte) []byte { return line })
}

// pump writes what ch brings, flushing each, until the reader goes away or
// the simulator closes. format returns nil for what to skip.
func pump[T any](s *Server, w http.ResponseWriter, r *http.Request, ch <-chan T, format func(T) []byte) {
	rc := http.NewResponseController(w)
	for {
		select {
		case v := <-ch:
			b := format(v)
			if b == nil {
				continue
			}
			if _, err := w.Write(b); err != nil {
				return
			}
			rc.Flush()
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		}
	}
}

// journalEntry is one line of the host's systemd journal.
type journalEntry struct {
	At         time.Time
	Unit       string // _SYSTEMD_UNIT
	Identifier string // SYSLOG_IDENTIFIER; a container's short id for its logs
	Message    string
}

func (s *Server) seedJournal() {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	add := func(unit, ident, msg string) {
		s.hostLog = append(s.hostLog, journalEntry{At: at, Unit: unit, Identifier: ident, Message: msg})
		at = at.Add(time.Second)
	}
	add("balena.service", "balenad", "Started Balena Application Container Engine.")
	add("NetworkManager.service", "NetworkManager", "manager: NetworkManager state is now CONNECTED_GLOBAL")
	add("balena-supervisor.service", "balena-supervisor", "Supervisor API successfully started on port 48484")
	for _, sv := range s.st.Services {
		add("balena.service", sv.ContainerID[:12], sv.Name+" started")
	}
}

// HostLog appends a line to the host's journal, as a unit of the host OS
// writes one; POST /v2/journal-logs followers see it at once.
func (s *Server) HostLog(unit, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ident := strings.TrimSuffix(unit, ".service")
	e := journalEntry{At: time.Now().UTC(), Unit: unit, Identifier: ident, Message: message}
	s.hostLog = append(s.hostLog, e)
	for ch := range s.jnlSubs {
		select {
		case ch <- e:
		default:
			s.st.LogLinesDropped++
		}
	}
}

// journalFormats are the journalctl output formats the simulator writes.
// journalctl fails on any other, and the supervisor then answers 200 with
// an empty body, since it pipes only stdout.
var journalFormats = []string{"short", "short-iso", "cat", "json"}

func formatEntry(e journalEntry, format string) []byte {
	var line string
	switch format {
	case "short":
		line = e.At.Format(time.Stamp) + " airlock-sim " + e.Identifier + "[1]: " + e.Message
	case "short-iso":
		line = e.At.Format("2006-01-02T15:04:05-0700") + " airlock-sim " + e.Identifier + "[1]: " + e.Message
	case "cat":
		line = e.Message
	case "json":
		b, _ := json.Marshal(map[string]string{
			"__REALTIME_TIMESTAMP": strconv.FormatInt(e.At.UnixMicro(), 10),
			"_HOSTNAME":            "airlock-sim", "_SYSTEMD_UNIT": e.Unit,
			"SYSLOG_IDENTIFIER": e.Identifier, "MESSAGE": e.Message,
		})
		line = string(b)
	}
	return []byte(line + "\n")
}

// journalTime parses what the simulator accepts for since and until (a
// subset of journalctl's: "2006-01-02 15:04:05" and RFC 3339).
func journalTime(v string) (time.Time, bool) {
	for _, layout := range []string{"2006-01-02 15:04:05", time.RFC3339} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// journalLogs is POST /v2/journal-logs: journalctl's stdout, piped as it
// comes, 200 whatever journalctl makes of the arguments.
func (s *Server) journalLogs(w http.ResponseWriter, r *http.Request) {
	var body struct {
		All         flexBool `json:"all"`
		Follow      flexBool `json:"follow"`
		Count       any      `json:"count"`
		Unit        any      `json:"unit"`
		Format      any      `json:"format"`
		ContainerID any      `json:"containerId"`
		Since       any      `json:"since"`
		Until       any      `json:"until"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	w.Header()["Content-Type"] = nil
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	format := "short"
	if f, ok := body.Format.(string); ok {
		format = f
	}
	unit, _ := body.Unit.(string)
	ident, _ := body.ContainerID.(string)
	var since, until time.Time
	for _, b := range []struct {
		v   any
		out *time.Time
	}{{body.Since, &since}, {body.Until, &until}} {
		if v, ok := b.v.(string); ok {
			t, ok := journalTime(v)
			if !ok {
				return // journalctl: "Failed to parse timestamp"
			}
			*b.out = t
		}
	}
	if !slices.Contains(journalFormats, format) {
		return // journalctl: "Unknown output format"
	}
	match := func(e journalEntry) bool {
		return (unit == "" || e.Unit == unit || e.Unit == unit+".service") &&
			(ident == "" || e.Identifier == ident) &&
			(since.IsZero() || !e.At.Before(since)) && (until.IsZero() || !e.At.After(until))
	}
	count, hasCount := checkInt(body.Count)
	ch := make(chan journalEntry, logBuffer)
	s.mu.Lock()
	var lines []journalEntry
	for _, e := range s.hostLog {
		if match(e) {
			lines = append(lines, e)
		}
	}
	if hasCount && count > 0 && count < len(lines) {
		lines = lines[len(lines)-count:]
	}
	if body.Follow {
		s.jnlSubs[ch] = true
		defer func() {
			s.mu.Lock()
			delete(s.jnlSubs, ch)
			s.mu.Unlock()
		}()
	}
	s.mu.Unlock()
	for _, e := range lines {
		if _, err := w.Write(formatEntry(e, format)); err != nil {
			return
		}
	}
	rc.Flush()
	if !body.Follow {
		return
	}
	pump(s, w, r, ch, func(e journalEntry) []byte {
		if !match(e) {
			return nil
		}
		return formatEntry(e, format)
	})
}
