package sim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Release is the commit the simulated application runs.
const Release = "5e1ea5ede1ea5ede1ea5ede1ea5ede1e"

// maxBody mirrors express.json's default limit of 100 kB.
const maxBody = 100 << 10

// route dispatches an authorised request. The supervisor is an express app,
// where a path or method nobody registered falls through to a 404 text
// reply, never a 405; routes() keeps that behaviour.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	s.routesOnce.Do(s.routes)
	// Handler only looks the route up; ServeHTTP then fills in the path
	// values, which Handler does not.
	if _, pattern := s.mux.Handler(r); pattern == "" {
		writeText(w, http.StatusNotFound, "Cannot "+r.Method+" "+r.URL.Path)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) { writeText(w, 200, "OK") })
	m.HandleFunc("GET /v1/healthy", s.healthy)
	m.HandleFunc("POST /v1/blink", s.blink)
	m.HandleFunc("POST /v1/reboot", func(w http.ResponseWriter, r *http.Request) { s.power(w, r, false) })
	m.HandleFunc("POST /v1/shutdown", func(w http.ResponseWriter, r *http.Request) { s.power(w, r, true) })
	m.HandleFunc("POST /v1/update", s.update)
	m.HandleFunc("POST /v1/restart", func(w http.ResponseWriter, r *http.Request) { s.v1App(w, r, false) })
	m.HandleFunc("POST /v1/purge", func(w http.ResponseWriter, r *http.Request) { s.v1App(w, r, true) })
	m.HandleFunc("GET /v1/apps/{appId}", s.v1AppGet)
	m.HandleFunc("POST /v1/apps/{appId}/stop", func(w http.ResponseWriter, r *http.Request) { s.v1AppStartStop(w, r, false) })
	m.HandleFunc("POST /v1/apps/{appId}/start", func(w http.ResponseWriter, r *http.Request) { s.v1AppStartStop(w, r, true) })
	m.HandleFunc("GET /v1/device", s.device)
	m.HandleFunc("GET /v1/device/host-config", s.hostConfigGet)
	m.HandleFunc("PATCH /v1/device/host-config", s.hostConfigPatch)
	m.HandleFunc("POST /v2/applications/{appId}/restart", func(w http.ResponseWriter, r *http.Request) { s.v2App(w, r, false) })
	m.HandleFunc("POST /v2/applications/{appId}/purge", func(w http.ResponseWriter, r *http.Request) { s.v2App(w, r, true) })
	for _, action := range []string{"restart", "stop", "start"} {
		m.HandleFunc("POST /v2/applications/{appId}/"+action+"-service", func(w http.ResponseWriter, r *http.Request) {
			s.serviceAction(w, r, action)
		})
	}
	m.HandleFunc("GET /v2/applications/state", s.appsState)
	m.HandleFunc("GET /v2/applications/{appId}/state", s.appState)
	m.HandleFunc("GET /v2/state/status", s.stateStatus)
	m.HandleFunc("GET /v2/device/name", s.deviceName)
	m.HandleFunc("GET /v2/device/tags", s.tags)
	m.HandleFunc("GET /v2/device/vpn", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"status": "success", "vpn": map[string]bool{"enabled": true, "connected": false}})
	})
	m.HandleFunc("GET /v2/version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]string{"status": "success", "version": SupervisorVersion})
	})
	m.HandleFunc("GET /v2/containerId", s.containerID)
	s.mux = m
}

// flexBool reads a body flag the way the supervisor does: true, "true", 1,
// "1" and "on" are true; anything else, including a missing flag, is false.
type flexBool bool

func (b *flexBool) UnmarshalJSON(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	switch v := v.(type) {
	case bool:
		*b = flexBool(v)
	case string:
		*b = flexBool(v == "true" || v == "1" || v == "on")
	case float64:
		*b = flexBool(v == 1)
	default:
		*b = false
	}
	return nil
}

// decodeBody parses a JSON body into v. Like express.json it only looks at
// bodies sent as application/json; an empty one is an empty object. It
// reports false after answering the request itself: a body that does not
// parse reaches the supervisor's generic error handler, which answers 503,
// not 400.
func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" {
		return true
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		writeFailed(w, http.StatusServiceUnavailable, "request entity too large")
		return false
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return true
	}
	// express.json is strict: only an object or an array is a body.
	if t := bytes.TrimSpace(data)[0]; t != '{' && t != '[' {
		writeFailed(w, http.StatusServiceUnavailable, "Unexpected token in JSON at position 0")
		return false
	}
	if bytes.TrimSpace(data)[0] == '[' {
		// An array parses but carries no fields.
		var a []any
		if err := json.Unmarshal(data, &a); err != nil {
			writeFailed(w, http.StatusServiceUnavailable, jsonMessage(err))
			return false
		}
		return true
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			// A field of the wrong type is ignored by the supervisor's
			// handlers (they test it), so the request goes on.
			return true
		}
		writeFailed(w, http.StatusServiceUnavailable, jsonMessage(err))
		return false
	}
	return true
}

func jsonMessage(err error) string { return "Invalid JSON body: " + err.Error() }

// lockedLocked reports whether an action that must stop services is blocked.
// The app's lock file yields to force; a reboot or shutdown in progress does
// not, because then the supervisor itself holds the locks.
// The caller holds s.mu.
func (s *Server) lockedLocked(force bool) (string, bool) {
	switch {
	case s.st.Rebooting:
		return "Updates are locked: the device is rebooting", true
	case s.st.ShuttingDown:
		return "Updates are locked: the device is shutting down", true
	case s.st.LockHolder != "" && !force:
		return "Updates are locked: lock held by " + s.st.LockHolder, true
	}
	return "", false
}

func (s *Server) healthy(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ok := s.st.Healthy
	s.mu.Unlock()
	if !ok {
		writeText(w, http.StatusInternalServerError, "Unhealthy")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) blink(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.st.Blinks++
	s.mu.Unlock()
	writeText(w, http.StatusOK, "OK")
}

// power accepts a reboot or shutdown: it stops the services now, answers
// 202, and finishes after RebootDelay, as the supervisor does once the
// response is out.
func (s *Server) power(w http.ResponseWriter, r *http.Request, shutdown bool) {
	var body struct {
		Force flexBool `json:"force"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg, locked := s.lockedLocked(bool(body.Force)); locked {
		writeFailed(w, http.StatusLocked, msg)
		return
	}
	if shutdown {
		s.st.ShuttingDown = true
	} else {
		s.st.Rebooting = true
	}
	for i := range s.st.Services {
		s.st.Services[i].Status = Stopped
	}
	s.settled = make(chan struct{})
	done := s.settled
	s.timer = time.AfterFunc(s.opts.RebootDelay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.settled != done {
			return // Close or a later action replaced this one
		}
		if shutdown {
			s.st.ShuttingDown = false
			s.st.PoweredOff = true
			s.st.LockHolder = "" // lock files live on tmpfs
			s.log.Info("device shut down")
		} else {
			s.st.Rebooting = false
			s.st.Reboots++
			s.bootLocked()
			s.log.Info("device rebooted", "reboots", s.st.Reboots)
		}
		s.timer = nil
		close(done)
	})
	writeJSON(w, http.StatusAccepted, map[string]any{"Data": "OK", "Error": nil})
}

// bootLocked starts every service, as a boot does. Update locks live on
// tmpfs, so a boot clears them. The caller holds s.mu.
func (s *Server) bootLocked() {
	s.st.LockHolder = ""
	for i := range s.st.Services {
		s.st.Services[i].Status = Running
		s.st.Services[i].Restarts++
	}
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Force  flexBool `json:"force"`
		Cancel flexBool `json:"cancel"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	s.mu.Lock()
	s.st.Updates++
	s.mu.Unlock()
	// An update check is only triggered; an update lock delays applying the
	// result, it does not refuse the check.
	w.WriteHeader(http.StatusNoContent)
}

// restartAllLocked restarts every service. The caller holds s.mu.
func (s *Server) restartAllLocked() {
	for i := range s.st.Services {
		s.st.Services[i].Status = Running
		s.st.Services[i].Restarts++
	}
}

func (s *Server) v1App(w http.ResponseWriter, r *http.Request, purge bool) {
	var body struct {
		AppID json.Number `json:"appId"`
		Force flexBool    `json:"force"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	id, err := strconv.Atoi(string(body.AppID))
	if err != nil || id <= 0 {
		writeText(w, http.StatusBadRequest, "Missing app id")
		return
	}
	if id != s.opts.AppID {
		writeText(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg, locked := s.lockedLocked(bool(body.Force)); locked {
		writeFailed(w, http.StatusLocked, msg)
		return
	}
	s.restartAllLocked()
	if purge {
		s.st.Purges++
		writeJSON(w, http.StatusOK, map[string]string{"Data": "OK", "Error": ""})
		return
	}
	writeText(w, http.StatusOK, "OK")
}

// pathApp checks the :appId of a route. The key is scoped to one app, so
// another app's id is refused as the supervisor refuses it: 401.
func (s *Server) pathApp(w http.ResponseWriter, r *http.Request) bool {
	id, err := strconv.Atoi(r.PathValue("appId"))
	if err != nil || id <= 0 {
		writeText(w, http.StatusBadRequest, "Invalid app id")
		return false
	}
	if id != s.opts.AppID {
		writeText(w, http.StatusUnauthorized, "Unauthorized")
		return false
	}
	return true
}

// singleContainer answers 400 for v1 app routes on a multi-container app.
func (s *Server) singleContainer(w http.ResponseWriter) bool {
	if len(s.opts.Services) != 1 {
		writeText(w, http.StatusBadRequest, "Some v1 endpoints are only allowed on single-container apps")
		return false
	}
	return true
}

func (s *Server) v1AppGet(w http.ResponseWriter, r *http.Request) {
	if !s.pathApp(w, r) || !s.singleContainer(w) {
		return
	}
	s.mu.Lock()
	sv := s.st.Services[0]
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"appId":       s.opts.AppID,
		"commit":      Release,
		"imageId":     fmt.Sprintf("registry2.balena-cloud.com/v2/%d", sv.ImageID),
		"containerId": sv.ContainerID,
		"env":         map[string]string{},
	})
}

func (s *Server) v1AppStartStop(w http.ResponseWriter, r *http.Request, start bool) {
	var body struct {
		Force flexBool `json:"force"`
	}
	if !decodeBody(w, r, &body) || !s.pathApp(w, r) || !s.singleContainer(w) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sv := &s.st.Services[0]
	if !start {
		if msg, locked := s.lockedLocked(bool(body.Force)); locked {
			writeFailed(w, http.StatusLocked, msg)
			return
		}
		sv.Status = Stopped
	} else if sv.Status != Running {
		sv.Status = Running
		sv.Restarts++
	}
	writeJSON(w, http.StatusOK, map[string]string{"containerId": sv.ContainerID})
}

func (s *Server) v2App(w http.ResponseWriter, r *http.Request, purge bool) {
	var body struct {
		Force flexBool `json:"force"`
	}
	if !decodeBody(w, r, &body) || !s.pathApp(w, r) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if msg, locked := s.lockedLocked(bool(body.Force)); locked {
		writeFailed(w, http.StatusLocked, msg)
		return
	}
	s.restartAllLocked()
	if purge {
		s.st.Purges++
	}
	writeText(w, http.StatusOK, "OK")
}

// serviceAction is v2 restart-service, stop-service and start-service. Only
// stop and restart kill a container, so only they respect the update lock.
func (s *Server) serviceAction(w http.ResponseWriter, r *http.Request, action string) {
	var body struct {
		ServiceName string      `json:"serviceName"`
		ImageID     json.Number `json:"imageId"`
		Force       flexBool    `json:"force"`
	}
	if !decodeBody(w, r, &body) || !s.pathApp(w, r) {
		return
	}
	if body.ServiceName == "" && body.ImageID == "" {
		writeText(w, http.StatusBadRequest, "Missing serviceName or imageId")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := -1
	for i, sv := range s.st.Services {
		if (body.ServiceName != "" && sv.Name == body.ServiceName) ||
			(body.ServiceName == "" && string(body.ImageID) == strconv.Itoa(sv.ImageID)) {
			idx = i
			break
		}
	}
	if idx < 0 {
		writeText(w, http.StatusNotFound, "Service not found, a container must exist for this endpoint to work")
		return
	}
	sv := &s.st.Services[idx]
	if action != "start" {
		if msg, locked := s.lockedLocked(bool(body.Force)); locked {
			writeFailed(w, http.StatusLocked, msg)
			return
		}
	}
	switch action {
	case "restart":
		sv.Status = Running
		sv.Restarts++
	case "stop":
		sv.Status = Stopped
	case "start":
		if sv.Status != Running {
			sv.Status = Running
			sv.Restarts++
		}
	}
	writeText(w, http.StatusOK, "OK")
}

func (s *Server) device(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	status := "Idle"
	if s.st.Rebooting || s.st.ShuttingDown {
		status = "Stopping"
	}
	s.mu.Unlock()
	port := 48484
	if s.ln != nil {
		if a, ok := s.ln.Addr().(*net.TCPAddr); ok {
			port = a.Port
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"api_port":           port,
		"ip_address":         "127.0.0.1",
		"mac_address":        "02:42:AC:11:00:02",
		"commit":             Release,
		"status":             status,
		"download_progress":  nil,
		"os_version":         "balenaOS 6.0.0",
		"supervisor_version": SupervisorVersion,
		"update_pending":     false,
		"update_downloaded":  false,
		"update_failed":      false,
	})
}

func (s *Server) hostConfigGet(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	host := s.st.Hostname
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"network": map[string]any{"hostname": host, "proxy": map[string]any{}},
	})
}

func (s *Server) hostConfigPatch(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Network *struct {
			Hostname *string        `json:"hostname"`
			Proxy    map[string]any `json:"proxy"`
		} `json:"network"`
		Force flexBool `json:"force"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	if body.Network == nil || (body.Network.Hostname == nil && body.Network.Proxy == nil) {
		writeText(w, http.StatusBadRequest, "Invalid host config: no network settings given")
		return
	}
	name := ""
	if body.Network.Hostname != nil {
		name = *body.Network.Hostname
		if name == "" {
			name = "airlock-sim" // an empty hostname restores the default
		}
		if !validHostname(name) {
			writeText(w, http.StatusBadRequest, "Invalid hostname: "+strconv.Quote(name))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Applying host config restarts host services, so it respects the lock.
	if msg, locked := s.lockedLocked(bool(body.Force)); locked {
		writeFailed(w, http.StatusLocked, msg)
		return
	}
	if name != "" {
		s.st.Hostname = name
	}
	writeText(w, http.StatusOK, "OK")
}

// validHostname accepts one RFC 1123 label, which is what balenaOS takes.
func validHostname(h string) bool {
	if len(h) == 0 || len(h) > 63 || h[0] == '-' || h[len(h)-1] == '-' {
		return false
	}
	for _, c := range h {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Server) appServicesLocked() map[string]any {
	svcs := map[string]any{}
	for _, sv := range s.st.Services {
		svcs[sv.Name] = map[string]any{"status": sv.Status, "releaseId": 1, "downloadProgress": nil}
	}
	return svcs
}

func (s *Server) appsState(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"airlock-sim": map[string]any{"appId": s.opts.AppID, "commit": Release, "services": s.appServicesLocked()},
	})
}

func (s *Server) appState(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("appId"))
	if err != nil || id <= 0 {
		writeText(w, http.StatusBadRequest, "Invalid app id")
		return
	}
	if id != s.opts.AppID {
		// This one route answers 409, not 401, for an app out of scope.
		writeFailed(w, http.StatusConflict, "Application ID does not exist or is out of scope")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"appId": s.opts.AppID, "commit": Release, "services": s.appServicesLocked(),
	})
}

func (s *Server) stateStatus(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	appState := "applied"
	if s.st.Rebooting || s.st.ShuttingDown {
		appState = "applying"
	}
	containers := []map[string]any{}
	images := []map[string]any{}
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339)
	for _, sv := range s.st.Services {
		containers = append(containers, map[string]any{
			"status": sv.Status, "serviceName": sv.Name, "appId": s.opts.AppID,
			"imageId": sv.ImageID, "serviceId": sv.ServiceID, "containerId": sv.ContainerID,
			"createdAt": created,
		})
		images = append(images, map[string]any{
			"name": fmt.Sprintf("registry2.balena-cloud.com/v2/%d", sv.ImageID), "appId": s.opts.AppID,
			"serviceName": sv.Name, "imageId": sv.ImageID, "dockerImageId": fmt.Sprintf("sha256:%064x", sv.ImageID),
			"status": "Downloaded", "downloadProgress": nil,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"status": "success", "appState": appState, "overallDownloadProgress": nil,
		"containers": containers, "images": images, "release": Release,
	})
}

func (s *Server) deviceName(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	name := s.st.DeviceName
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]string{"status": "success", "deviceName": name})
}

func (s *Server) tags(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	tags := append([]Tag{}, s.st.Tags...)
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"status": "success", "tags": tags})
}

func (s *Server) containerID(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	name := q.Get("serviceName")
	if name == "" {
		name = q.Get("service")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if name == "" {
		all := map[string]string{}
		for _, sv := range s.st.Services {
			all[sv.Name] = sv.ContainerID
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "success", "services": all})
		return
	}
	for _, sv := range s.st.Services {
		if sv.Name == name {
			writeJSON(w, http.StatusOK, map[string]string{"status": "success", "containerId": sv.ContainerID})
			return
		}
	}
	writeFailed(w, http.StatusServiceUnavailable, "Could not find service with that name")
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		writeFailed(w, http.StatusInternalServerError, "encoding reply: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(data)
}

// writeFailed is the supervisor's generic error shape.
func writeFailed(w http.ResponseWriter, code int, msg string) {
	data, _ := json.Marshal(map[string]string{"status": "failed", "message": strings.TrimSpace(msg)})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(data)
}
