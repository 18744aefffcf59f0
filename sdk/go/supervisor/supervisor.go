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
