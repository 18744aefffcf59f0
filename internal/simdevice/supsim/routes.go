package supsim

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Release is the commit the simulated application runs.
const Release = "5e1ea5ede1ea5ede1ea5ede1ea5ede1e"

// maxBody is the supervisor's express.json({limit: '10mb'}).
const maxBody = 10 << 20

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
	m.HandleFunc("GET /ping", func(w http.ResponseWriter, r *http.Request) { writeSend(w, 200, "OK") })
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
	m.HandleFunc("PATCH /v2/device/tags", s.tagsPatch)
	m.HandleFunc("GET /v2/cleanup-volumes", s.cleanupVolumes)
	m.HandleFunc("GET /v2/local/target-state", s.localTargetGet)
	m.HandleFunc("POST /v2/local/target-state", s.localTargetPost)
	m.HandleFunc("GET /v2/local/device-info", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"status": "success", "info": map[string]string{"arch": DeviceArch, "deviceType": DeviceType}})
	})
	m.HandleFunc("GET /v2/local/logs", s.localLogs)
	m.HandleFunc("POST /v2/journal-logs", s.journalLogs)
	m.HandleFunc("POST /v1/regenerate-api-key", s.regenerateKey)
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
		if raw, ok := v.(*json.RawMessage); ok {
			*raw = append((*raw)[:0], data...) // PATCH tags reads the array itself
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

// lockedLocked reports whether an action that must stop services is blocked,
// with the real UpdatesLockedError's message. The app's lock file yields to
// force; a reboot or shutdown in progress does not, because then the
// supervisor itself holds the locks. The caller holds s.mu.
func (s *Server) lockedLocked(force bool) (string, bool) {
	switch {
	case s.st.Rebooting, s.st.ShuttingDown:
		return fmt.Sprintf("Locks for app %d are being held by another supervisor operation", s.opts.AppID), true
	case s.st.LockHolder != "" && !force:
		return fmt.Sprintf("Lockfile exists for { appId: %d, service: %s }", s.opts.AppID, s.st.LockHolder), true
	}
	return "", false
}

// checkInt is the supervisor's checkInt: digits, an optional minus, and
// trailing zero decimals ("7", "007", "7.00"); a JSON number too.
func checkInt(v any) (int, bool) {
	var str string
	switch v := v.(type) {
	case string:
		str = v
	case json.Number:
		str = string(v)
	case float64:
		str = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		return 0, false
	}
	if !numerals.MatchString(str) {
		return 0, false
	}
	f, err := strconv.ParseFloat(str, 64)
	if err != nil || f != float64(int(f)) {
		return 0, false
	}
	return int(f), true
}

var numerals = regexp.MustCompile(`^-?[0-9]+\.?0*$`)

// checkString is the supervisor's checkString: "", "null" and "undefined"
// count as absent.
func checkString(v any) string {
	str, _ := v.(string)
	if str == "null" || str == "undefined" {
		return ""
	}
	return str
}

// The real messages of src/device-api/messages.ts.
const (
	msgServiceNotFound   = "Service not found, a container must exist for this endpoint to work"
	msgV2ServiceEndpoint = "serviceName or imageId parameters were not provided or the app is multi-container. Use the v2 service action endpoints."
	msgSingleContainer   = "Some v1 endpoints are only allowed on single-container apps"
)

func (s *Server) healthy(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	ok := s.st.Healthy
	s.mu.Unlock()
	if !ok {
		writeSend(w, http.StatusInternalServerError, "Unhealthy")
		return
	}
	writeText(w, http.StatusOK, "OK") // res.sendStatus(200)
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
		// v1.ts handleDeviceAction answers its own errors: 423 for a lock,
		// 500 otherwise, both {Data:"",Error}.
		writeJSON(w, http.StatusLocked, map[string]any{"Data": "", "Error": msg})
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
	// actions.updateTarget: only a forced request or a device with instant
	// updates on triggers a check (204); otherwise the request is ignored
	// (202). An update lock delays applying the result, not the check.
	s.mu.Lock()
	defer s.mu.Unlock()
	if !bool(body.Force) && s.opts.NoInstantUpdates {
		s.st.UpdatesIgnored++
		writeText(w, http.StatusAccepted, "Accepted") // res.sendStatus(202)
		return
	}
	s.st.Updates++
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
		AppID any      `json:"appId"`
		Force flexBool `json:"force"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	id, ok := checkInt(body.AppID)
	if !ok {
		if purge {
			writeSend(w, http.StatusBadRequest, "Invalid or missing appId")
		} else {
			writeSend(w, http.StatusBadRequest, "Missing app id")
		}
		return
	}
	if id != s.opts.AppID {
		writeFailed(w, http.StatusUnauthorized, "Unauthorized")
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
	writeSend(w, http.StatusOK, "OK")
}

// v2AppID checks the :appId of a v2 route: a missing, zero or malformed id
// is 400 JSON with the route's message, another app's id 401 JSON, as the
// key is scoped to one app.
func (s *Server) v2AppID(w http.ResponseWriter, r *http.Request, badMsg string) bool {
	id, ok := checkInt(r.PathValue("appId"))
	if !ok || id == 0 {
		writeFailed(w, http.StatusBadRequest, badMsg)
		return false
	}
	if id != s.opts.AppID {
		writeFailed(w, http.StatusUnauthorized, "Unauthorized")
		return false
	}
	return true
}

func (s *Server) v1AppGet(w http.ResponseWriter, r *http.Request) {
	id, ok := checkInt(r.PathValue("appId"))
	if !ok {
		writeSend(w, http.StatusBadRequest, "Missing app id")
		return
	}
	if id != s.opts.AppID {
		writeFailed(w, http.StatusUnauthorized, "Application is not available")
		return
	}
	if len(s.opts.Services) != 1 {
		writeSend(w, http.StatusBadRequest, msgSingleContainer)
		return
	}
	s.mu.Lock()
	sv := s.st.Services[0]
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"appId":       s.opts.AppID,
		"commit":      Release,
		"containerId": sv.ContainerID,
		"env":         map[string]string{},
		"imageId":     imageName(sv.ImageID),
		"releaseId":   ReleaseID,
	})
}

// imageName is how the simulated images are named.
func imageName(imageID int) string {
	return fmt.Sprintf("registry2.balena-cloud.com/v2/%d", imageID)
}

// v1AppStartStop is v1.ts handleLegacyServiceAction: text replies, and on a
// multi-container app the v2 endpoints are the way.
func (s *Server) v1AppStartStop(w http.ResponseWriter, r *http.Request, start bool) {
	var body struct {
		Force flexBool `json:"force"`
	}
	if !decodeBody(w, r, &body) {
		return
	}
	id, ok := checkInt(r.PathValue("appId"))
	if !ok {
		writeSend(w, http.StatusBadRequest, "Invalid app id")
		return
	}
	if id != s.opts.AppID {
		writeSend(w, http.StatusUnauthorized, "Unauthorized")
		return
	}
	if len(s.opts.Services) != 1 {
		writeSend(w, http.StatusBadRequest, msgV2ServiceEndpoint)
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
	if !decodeBody(w, r, &body) || !s.v2AppID(w, r, "Missing app id") {
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
	writeSend(w, http.StatusOK, "OK")
}

// serviceAction is v2 restart-service, stop-service and start-service. Only
// stop and restart kill a container, so only they respect the update lock.
// As in actions.executeServiceAction, a single-container app's one service
// is the target whatever name the request gives.
func (s *Server) serviceAction(w http.ResponseWriter, r *http.Request, action string) {
	var body struct {
		ServiceName any      `json:"serviceName"`
		ImageID     any      `json:"imageId"`
		Force       flexBool `json:"force"`
	}
	if !decodeBody(w, r, &body) || !s.v2AppID(w, r, "Invalid app id") {
		return
	}
	name := checkString(body.ServiceName)
	imageID, hasImage := checkInt(body.ImageID)
	if name == "" && (!hasImage || imageID == 0) {
		writeSend(w, http.StatusBadRequest, msgV2ServiceEndpoint)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	idx := -1
	for i, sv := range s.st.Services {
		if len(s.st.Services) == 1 || (hasImage && sv.ImageID == imageID) || (name != "" && sv.Name == name) {
			idx = i
			break
		}
	}
	if idx < 0 {
		writeSend(w, http.StatusNotFound, msgServiceNotFound)
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
	writeSend(w, http.StatusOK, "OK")
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
		writeSend(w, http.StatusBadRequest, "Invalid host config: no network settings given")
		return
	}
	name := ""
	if body.Network.Hostname != nil {
		name = *body.Network.Hostname
		if name == "" {
			name = "airlock-sim" // an empty hostname restores the default
		}
		if !validHostname(name) {
			writeSend(w, http.StatusBadRequest, "Invalid hostname: "+strconv.Quote(name))
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Applying host config restarts host services, so it respects the lock.
	// This route answers a lock in text, unlike the error middleware.
	if msg, locked := s.lockedLocked(bool(body.Force)); locked {
		writeSend(w, http.StatusLocked, msg)
		return
	}
	if name != "" {
		s.st.Hostname = name
	}
	writeSend(w, http.StatusOK, "OK")
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

// appsState is GET /v2/applications/state: the scoped apps by name, each
// service with its image and the release's update status.
func (s *Server) appsState(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svcs := map[string]any{}
	for _, sv := range s.st.Services {
		svcs[sv.Name] = map[string]any{
			"status": sv.Status, "image": imageName(sv.ImageID), "downloadProgress": nil, "releaseId": ReleaseID,
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		AppName: map[string]any{
			"appId": s.opts.AppID, "appUuid": AppUUID, "commit": Release, "updateStatus": "done", "services": svcs,
		},
	})
}

// appState is GET /v2/applications/:appId/state, the legacy shape:
// {commit, local: {<appId>: {services: {<imageId>: {status, releaseId,
// download_progress}}}}}. Since v14.8 there is no "dependent" key.
func (s *Server) appState(w http.ResponseWriter, r *http.Request) {
	id, ok := checkInt(r.PathValue("appId"))
	if !ok || id == 0 {
		writeFailed(w, http.StatusBadRequest, "Invalid application ID: "+r.PathValue("appId"))
		return
	}
	if id != s.opts.AppID {
		// Out of scope and absent look the same: 409.
		writeFailed(w, http.StatusConflict, fmt.Sprintf("Application ID does not exist: %d", id))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	svcs := map[string]any{}
	for _, sv := range s.st.Services {
		svcs[strconv.Itoa(sv.ImageID)] = map[string]any{"status": sv.Status, "releaseId": ReleaseID, "download_progress": nil}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"commit": Release,
		"local":  map[string]any{strconv.Itoa(s.opts.AppID): map[string]any{"services": svcs}},
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
			"name": imageName(sv.ImageID), "appId": s.opts.AppID,
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

// writeText is express's res.sendStatus: plain text.
func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(code)
	io.WriteString(w, body)
}

// writeSend is express's res.send(string), which labels any string HTML.
func writeSend(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
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
