// Package supervisor lets an airlock plugin use the device supervisor (the
// balena Supervisor API) without ever holding its API key. Each function is
// one operation that plugin.toml must grant:
//
//	[supervisor]
//	allow = ["reboot", "device.read", "service.restart:main"]
//
// Importing this package adds the airlock_supervisor_v1 import to the
// module, so the host refuses the plugin at load unless its manifest has a
// [supervisor] section. Errors are *airlock.HostError values: test them with
// errors.Is(err, abi.Locked), abi.Denied, abi.Unavailable, abi.Timeout...
//
//	if err := supervisor.Reboot(false); errors.Is(err, abi.Locked) {
//		airlock.Info("an update lock holds off the reboot; asking again later")
//	}
package supervisor

import (
	"strconv"
	"strings"

	airlock "github.com/airlockhq/airlock/sdk/go"
	"github.com/airlockhq/airlock/sdk/go/abi"
)

// Operation names, as plugin.toml grants them and ABI.md §3.2 lists them.
const (
	OpPing           = "ping"
	OpBlink          = "blink"
	OpReboot         = "reboot"
	OpShutdown       = "shutdown"
	OpUpdate         = "update"
	OpAppRestart     = "app.restart"
	OpAppPurge       = "app.purge"
	OpServiceRestart = "service.restart"
	OpServiceStop    = "service.stop"
	OpServiceStart   = "service.start"
	OpDeviceRead     = "device.read"
	OpHostnameSet    = "hostname.set"
	OpAppRead        = "app.read"
	OpVolumesCleanup = "volumes.cleanup"
	OpTagsSet        = "tags.set"     // scoped: "tags.set:<key>"
	OpLogsRead       = "logs.read"    // scoped: "logs.read:<service>"
	OpJournalRead    = "journal.read" // scoped: "journal.read:<unit>"
)

// Call runs one supervisor operation with a request record and returns the
// reply record. The typed functions below are built on it; use it for an
// operation this SDK does not wrap yet.
func Call(op string, req abi.Record) (abi.Record, error) {
	b := abi.AppendRecord(nil, req)
	res, err := airlock.Call(func(out *byte, cap uint32, n *uint32) uint32 {
		return hostCall(op, b, out, cap, n)
	})
	if err != nil {
		return nil, err
	}
	rec, err := abi.DecodeRecord(res)
	if err != nil {
		return nil, &airlock.HostError{Code: abi.Failed, Msg: "supervisor " + op + ": unreadable reply: " + err.Error()}
	}
	return rec, nil
}

func field(k, v string) abi.Field { return abi.Field{Key: k, Value: []byte(v)} }

func forceField(f bool) abi.Field { return field("force", strconv.FormatBool(f)) }

func run(op string, fields ...abi.Field) error {
	_, err := Call(op, fields)
	return err
}

// Ping checks that the supervisor answers (GET /ping). Grant: "ping".
func Ping() error { return run(OpPing) }

// Healthy asks whether the supervisor considers itself healthy
// (GET /v1/healthy). Grant: "ping".
func Healthy() (bool, error) {
	r, err := Call(OpPing, abi.Record{field("what", "healthy")})
	if err != nil {
		return false, err
	}
	v, _ := r.Get("healthy")
	return v == "true", nil
}

// Blink blinks the device's identification LED for 15 seconds. Grant: "blink".
func Blink() error { return run(OpBlink) }

// Reboot asks the supervisor to stop the services cleanly and reboot the
// device. It returns once the supervisor accepted; the reboot follows. An
// update lock refuses it with abi.Locked unless force is true. Grant: "reboot".
func Reboot(force bool) error { return run(OpReboot, forceField(force)) }

// Shutdown is Reboot's twin that powers the device off. Grant: "shutdown".
func Shutdown(force bool) error { return run(OpShutdown, forceField(force)) }

// Update asks the supervisor to check for an update now. It reports whether
// a check was started (the supervisor may ignore a request that comes too
// soon after another). Grant: "update".
func Update(force bool) (triggered bool, err error) {
	r, err := Call(OpUpdate, abi.Record{forceField(force)})
	if err != nil {
		return false, err
	}
	v, _ := r.Get("triggered")
	return v == "true", nil
}

// RestartApp restarts every service of the application. Grant: "app.restart".
func RestartApp(force bool) error { return run(OpAppRestart, forceField(force)) }

// PurgeApp deletes the application's data volumes and restarts its
// services. Grant: "app.purge".
func PurgeApp(force bool) error { return run(OpAppPurge, forceField(force)) }

// RestartService restarts one service of the application by its compose
// name. Grant: "service.restart:<name>" (or "service.restart:*").
func RestartService(name string, force bool) error {
	return run(OpServiceRestart, field("service", name), forceField(force))
}

// StopService stops one service; it stays stopped until started again or
// until the device reboots. Grant: "service.stop:<name>".
func StopService(name string, force bool) error {
	return run(OpServiceStop, field("service", name), forceField(force))
}

// StartService starts a stopped service. Update locks do not apply.
// Grant: "service.start:<name>".
func StartService(name string, force bool) error {
	return run(OpServiceStart, field("service", name), forceField(force))
}

// SetHostname changes the host OS's hostname; "" restores the default. An
// update lock refuses it unless force is true. Grant: "hostname.set".
func SetHostname(name string, force bool) error {
	return run(OpHostnameSet, field("hostname", name), forceField(force))
}

// DeviceInfo is GET /v1/device.
type DeviceInfo struct {
	Status            string   // "Idle", "Downloading", "Stopping", ...
	Commit            string   // the running release
	OSVersion         string   // "balenaOS 5.3.0"
	SupervisorVersion string   // "17.0.0"
	IPAddresses       []string // the device's addresses
	MACAddresses      []string
	APIPort           int
	UpdatePending     bool
	UpdateDownloaded  bool
	UpdateFailed      bool
	// DownloadProgress is a percentage, or -1 when nothing is downloading.
	DownloadProgress float64
	// JSON is the supervisor's whole reply, for fields not listed here.
	JSON []byte
}

func read(what string) (abi.Record, error) {
	return Call(OpDeviceRead, abi.Record{field("what", what)})
}

func get(r abi.Record, k string) string { v, _ := r.Get(k); return v }

func progress(r abi.Record) float64 {
	v, ok := r.Get("download_progress")
	if !ok {
		return -1
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return -1
	}
	return f
}

// Device reads the device's state (GET /v1/device). Grant: "device.read".
func Device() (DeviceInfo, error) {
	r, err := read("device")
	if err != nil {
		return DeviceInfo{}, err
	}
	port, _ := strconv.Atoi(get(r, "api_port"))
	return DeviceInfo{
		Status:            get(r, "status"),
		Commit:            get(r, "commit"),
		OSVersion:         get(r, "os_version"),
		SupervisorVersion: get(r, "supervisor_version"),
		IPAddresses:       strings.Fields(get(r, "ip_address")),
		MACAddresses:      strings.Fields(get(r, "mac_address")),
		APIPort:           port,
		UpdatePending:     get(r, "update_pending") == "true",
		UpdateDownloaded:  get(r, "update_downloaded") == "true",
		UpdateFailed:      get(r, "update_failed") == "true",
		DownloadProgress:  progress(r),
		JSON:              []byte(get(r, "json")),
	}, nil
}

// Status is GET /v2/state/status: the application's state and each
// service's container status.
type Status struct {
	Status   string            // "success", ...
	AppState string            // "applied" or "applying"
	Release  string            // the target release's commit
	Services map[string]string // service name → "Running", "Stopped", ...
	// DownloadProgress is a percentage, or -1 when nothing is downloading.
	DownloadProgress float64
	JSON             []byte // the whole reply
}

// State reads the application's state (GET /v2/state/status).
// Grant: "device.read".
func State() (Status, error) {
	r, err := read("status")
	if err != nil {
		return Status{}, err
	}
	s := Status{Status: get(r, "status"), AppState: get(r, "app_state"), Release: get(r, "release"),
		Services: map[string]string{}, DownloadProgress: progress(r), JSON: []byte(get(r, "json"))}
	for _, f := range r {
		if name, ok := strings.CutPrefix(f.Key, "service."); ok {
			s.Services[name] = string(f.Value)
		}
	}
	return s, nil
}

// Version returns the supervisor's version (GET /v2/version). Grant: "device.read".
func Version() (string, error) {
	r, err := read("version")
	return get(r, "version"), err
}

// DeviceName returns the device's name in the fleet (GET /v2/device/name).
// Grant: "device.read".
func DeviceName() (string, error) {
	r, err := read("name")
	return get(r, "name"), err
}

// Tags returns the device's tags by name (GET /v2/device/tags).
// Grant: "device.read".
func Tags() (map[string]string, error) {
	r, err := read("tags")
	if err != nil {
		return nil, err
	}
	tags := map[string]string{}
	for _, f := range r {
		if name, ok := strings.CutPrefix(f.Key, "tag."); ok {
			tags[name] = string(f.Value)
		}
	}
	return tags, nil
}

// Hostname returns the host OS's hostname (GET /v1/device/host-config).
// Grant: "device.read".
func Hostname() (string, error) {
	r, err := read("host-config")
	return get(r, "hostname"), err
}

// RestartAppV1 is RestartApp through the legacy POST /v1/restart.
// Grant: "app.restart".
func RestartAppV1(force bool) error { return run(OpAppRestart, forceField(force), field("v1", "true")) }

// PurgeAppV1 is PurgeApp through the legacy POST /v1/purge. Grant: "app.purge".
func PurgeAppV1(force bool) error { return run(OpAppPurge, forceField(force), field("v1", "true")) }

// App is GET /v1/apps/:appId, for an app with one service (the supervisor
// refuses it, abi.Invalid, for more). The app's environment is never given.
type App struct {
	AppID       int
	Commit      string
	ContainerID string
	Image       string
	ReleaseID   int
}

func readApp(what string) (abi.Record, error) {
	return Call(OpAppRead, abi.Record{field("what", what)})
}

// AppInfo reads the app (GET /v1/apps/:appId). Grant: "app.read".
func AppInfo() (App, error) {
	r, err := readApp("app")
	if err != nil {
		return App{}, err
	}
	id, _ := strconv.Atoi(get(r, "app_id"))
	rel, _ := strconv.Atoi(get(r, "release_id"))
	return App{AppID: id, Commit: get(r, "commit"), ContainerID: get(r, "container_id"), Image: get(r, "image"), ReleaseID: rel}, nil
}

// AppState is one app of GET /v2/applications/state.
type AppState struct {
	AppID        int
	AppUUID      string
	Commit       string
	UpdateStatus string            // "done", "downloading", ...
	Services     map[string]string // service name → status
	Images       map[string]string // service name → image
}

// Apps reads every app's state by app name (GET /v2/applications/state).
// Grant: "app.read".
func Apps() (map[string]AppState, error) {
	r, err := readApp("apps")
	if err != nil {
		return nil, err
	}
	apps := map[string]AppState{}
	for _, f := range r {
		if f.Key != "app" {
			continue
		}
		name := string(f.Value)
		a := AppState{AppUUID: get(r, name+".app_uuid"), Commit: get(r, name+".commit"),
			UpdateStatus: get(r, name+".update_status"), Services: map[string]string{}, Images: map[string]string{}}
		a.AppID, _ = strconv.Atoi(get(r, name+".app_id"))
		for _, g := range r {
			if s, ok := strings.CutPrefix(g.Key, name+".service."); ok {
				a.Services[s] = string(g.Value)
			} else if s, ok := strings.CutPrefix(g.Key, name+".image."); ok {
				a.Images[s] = string(g.Value)
			}
		}
		apps[name] = a
	}
	return apps, nil
}

// AppStateJSON reads the app's legacy state (GET
// /v2/applications/:appId/state): its commit and the whole reply.
// Grant: "app.read".
func AppStateJSON() (commit string, json []byte, err error) {
	r, err := readApp("state")
	return get(r, "commit"), []byte(get(r, "json")), err
}

// VPN reads the cloud VPN's state (GET /v2/device/vpn). Grant: "device.read".
func VPN() (enabled, connected bool, err error) {
	r, err := read("vpn")
	return get(r, "enabled") == "true", get(r, "connected") == "true", err
}

// DeviceType reads the device type and CPU architecture (GET
// /v2/local/device-info). Grant: "device.read".
func DeviceType() (deviceType, arch string, err error) {
	r, err := read("device-info")
	return get(r, "device_type"), get(r, "arch"), err
}

// ContainerIDs returns each service's container id (GET /v2/containerId).
// Grant: "device.read".
func ContainerIDs() (map[string]string, error) {
	r, err := read("container-ids")
	if err != nil {
		return nil, err
	}
	ids := map[string]string{}
	for _, f := range r {
		if name, ok := strings.CutPrefix(f.Key, "service."); ok {
			ids[name] = string(f.Value)
		}
	}
	return ids, nil
}

// CleanupVolumes deletes the volumes no app references (GET
// /v2/cleanup-volumes). Grant: "volumes.cleanup".
func CleanupVolumes() error { return run(OpVolumesCleanup) }

// SetTag sets one device tag (PATCH /v2/device/tags); the supervisor sends
// it to the cloud. Grant: "tags.set:<key>" (or "tags.set:*").
func SetTag(key, value string) error {
	return run(OpTagsSet, field("key", key), field("value", value))
}

// Bounds bound one read of a stream. Zero fields take the host's defaults
// (100 lines, 64 KiB, 1000 ms; at most 1000 lines, 256 KiB, 10000 ms).
type Bounds struct {
	MaxLines, MaxBytes, WaitMS int
}

func (b Bounds) fields(r abi.Record) abi.Record {
	for _, f := range []struct {
		k string
		v int
	}{{"max_lines", b.MaxLines}, {"max_bytes", b.MaxBytes}, {"wait_ms", b.WaitMS}} {
		if f.v != 0 {
			r = append(r, field(f.k, strconv.Itoa(f.v)))
		}
	}
	return r
}

// Lines is what one read of a stream returned.
type Lines struct {
	Lines   []string // without their newlines
	Dropped int      // lines read but not delivered (other services', or past MaxBytes)
	Cut     int      // lines cut to a bound
	// End says why the read ended: "eof", "lines", "bytes", "deadline" or
	// "budget" (the host's byte budget for the stream).
	End string
}

func lines(r abi.Record, err error) (Lines, error) {
	if err != nil {
		return Lines{}, err
	}
	l := Lines{End: get(r, "end")}
	l.Dropped, _ = strconv.Atoi(get(r, "dropped"))
	l.Cut, _ = strconv.Atoi(get(r, "cut"))
	if t := get(r, "lines"); t != "" {
		l.Lines = strings.Split(strings.TrimSuffix(t, "\n"), "\n")
	}
	return l, nil
}

// ReadLogs reads one service's log lines (GET /v2/local/logs, local mode
// only) as they come, until a bound: each line is the supervisor's JSON
// ({"serviceName":..., "message":..., "timestamp":...}). Lines of other
// services never reach the plugin. Grant: "logs.read:<service>".
func ReadLogs(service string, b Bounds) (Lines, error) {
	return lines(Call(OpLogsRead, b.fields(abi.Record{field("service", service)})))
}

// JournalQuery selects host journal entries (POST /v2/journal-logs).
type JournalQuery struct {
	Unit      string // the systemd unit; the grant names it
	Container string // a syslog identifier; needs "journal.read:*"
	Count     int    // the last Count entries (0: all)
	Since     string // journalctl's -S
	Until     string // journalctl's -U
	Format    string // journalctl's -o ("short" when empty)
	Follow    bool   // wait for new entries until the read's bound
	Bounds
}

// ReadJournal reads host journal entries. Grant: "journal.read:<unit>".
func ReadJournal(q JournalQuery) (Lines, error) {
	var r abi.Record
	for _, f := range [][2]string{{"unit", q.Unit}, {"container", q.Container}, {"since", q.Since},
		{"until", q.Until}, {"format", q.Format}} {
		if f[1] != "" {
			r = append(r, field(f[0], f[1]))
		}
	}
	if q.Count > 0 {
		r = append(r, field("count", strconv.Itoa(q.Count)))
	}
	if q.Follow {
		r = append(r, field("follow", "true"))
	}
	return lines(Call(OpJournalRead, q.Bounds.fields(r)))
}
