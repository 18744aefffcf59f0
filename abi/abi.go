package abi

// Version is the ABI major version. A guest declares it by exporting the
// function named ExportVersion; the host refuses a module without it.
const Version = 1

// Import modules. Each capability lives in its own module, so that a
// module's import section shows which powers it wants.
const (
	ModuleBase       = "airlock_v1"            // log, config, clock, sleep, results and events
	ModuleSupervisor = "airlock_supervisor_v1" // device supervisor API
	ModuleDBus       = "airlock_dbus_v1"       // system bus calls and properties
	ModuleMount      = "airlock_mount_v1"      // external storage
	ModuleCloud      = "airlock_cloud_v1"      // this device's record in the balena cloud
	ModuleHTTP       = "airlock_http_v1"       // outbound HTTP(S)
	ModuleMQTT       = "airlock_mqtt_v1"       // MQTT publish (subscriptions are triggers)
)

// Guest exports.
const (
	ExportVersion = "airlock_abi_v1"   // () -> (); a marker, never called
	ExportEvent   = "airlock_on_event" // (kind i32, len i32) -> (status i32)
	ExportInit    = "_initialize"      // wasip1 reactor initialiser
)

// Functions of ModuleBase.
const (
	FuncLog        = "log"         // (level, msg_ptr, msg_len) -> errno
	FuncLogFields  = "log_fields"  // (level, msg_ptr, msg_len, fields_ptr, fields_len) -> errno
	FuncConfigGet  = "config_get"  // (key_ptr, key_len, out_ptr, out_cap, out_len_ptr) -> errno
	FuncClockNow   = "clock_now"   // (out_ptr) -> errno; u64 Unix nanoseconds
	FuncSleep      = "sleep"       // (ns i64) -> errno
	FuncDeadline   = "deadline"    // (out_ptr) -> errno; u64 ns left in this handler
	FuncResultRead = "result_read" // (out_ptr, out_cap, out_len_ptr) -> errno
)

// Log levels for FuncLog; they follow log/slog's numbering.
const (
	LevelDebug int32 = -4
	LevelInfo  int32 = 0
	LevelWarn  int32 = 4
	LevelError int32 = 8
)

// EventKind says what woke a plugin. The payload is a Record (see record.go).
type EventKind uint32

const (
	EventStart      EventKind = 1 // first event after instantiation; no fields
	EventStop       EventKind = 2 // last event before the instance closes; no fields
	EventTimer      EventKind = 3 // fields: name, time (RFC 3339 nanoseconds)
	EventUdev       EventKind = 4 // fields: ACTION, SUBSYSTEM, DEVPATH, ... as udev names them
	EventDBusSignal EventKind = 5 // fields: sender, path, interface, member, body
	EventDropped    EventKind = 6 // fields: count, reason; events were lost to overflow
	EventMount      EventKind = 7 // fields: action, target, source, reason
	EventMQTT       EventKind = 8 // fields: broker, topic, payload, qos, retained

	// LastEventKind is the highest kind this ABI defines: tables indexed by
	// kind are sized from it, so a new kind is added here and nowhere else.
	LastEventKind = EventMQTT
)

var eventNames = map[EventKind]string{
	EventStart: "start", EventStop: "stop", EventTimer: "timer", EventUdev: "udev",
	EventDBusSignal: "dbus_signal", EventDropped: "dropped", EventMount: "mount", EventMQTT: "mqtt",
}

// String returns the kind's name as manifests and logs spell it.
func (k EventKind) String() string {
	if n, ok := eventNames[k]; ok {
		return n
	}
	return "event(" + itoa(uint64(k)) + ")"
}

// Handler status returned by ExportEvent.
const (
	HandlerOK    int32 = 0 // handled
	HandlerError int32 = 1 // the handler failed; the host logs it, the instance lives on
)
