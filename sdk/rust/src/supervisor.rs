//! The device supervisor (the balena Supervisor API, ABI.md §3.2), without
//! its API key. Each function is one operation that plugin.toml must grant:
//!
//! ```toml
//! [supervisor]
//! allow = ["reboot", "device.read", "service.restart:main"]
//! ```
//!
//! Using any of them adds the `airlock_supervisor_v1` import, and the host
//! refuses the plugin at load unless its manifest has a `[supervisor]`
//! section. Errors carry the ABI's code and the host's message:
//!
//! ```ignore
//! match airlock::supervisor::reboot(false) {
//!     Err(e) if e.is(airlock::Errno::Locked) => airlock::info("update lock held; asking again later"),
//!     r => r?,
//! }
//! ```

use std::collections::BTreeMap;

use crate::{Errno, Error, Record, Result};

/// The raw import of ABI.md §3.2.
pub mod sys {
    #[link(wasm_import_module = "airlock_supervisor_v1")]
    extern "C" {
        pub fn call(
            op_ptr: *const u8,
            op_len: u32,
            req_ptr: *const u8,
            req_len: u32,
            out_ptr: *mut u8,
            out_cap: u32,
            out_len_ptr: *mut u32,
        ) -> u32;
    }
}

// Operation names, as plugin.toml grants them.
pub const OP_PING: &str = "ping";
pub const OP_BLINK: &str = "blink";
pub const OP_REBOOT: &str = "reboot";
pub const OP_SHUTDOWN: &str = "shutdown";
pub const OP_UPDATE: &str = "update";
pub const OP_APP_RESTART: &str = "app.restart";
pub const OP_APP_PURGE: &str = "app.purge";
pub const OP_SERVICE_RESTART: &str = "service.restart";
pub const OP_SERVICE_STOP: &str = "service.stop";
pub const OP_SERVICE_START: &str = "service.start";
pub const OP_DEVICE_READ: &str = "device.read";
pub const OP_HOSTNAME_SET: &str = "hostname.set";
pub const OP_APP_READ: &str = "app.read";
pub const OP_VOLUMES_CLEANUP: &str = "volumes.cleanup";
/// Scoped: `tags.set:<key>`.
pub const OP_TAGS_SET: &str = "tags.set";
/// Scoped: `logs.read:<service>`.
pub const OP_LOGS_READ: &str = "logs.read";
/// Scoped: `journal.read:<unit>`.
pub const OP_JOURNAL_READ: &str = "journal.read";

/// Runs one operation with a request record and returns the reply record.
/// The typed functions are built on it; use it for an operation they do
/// not wrap.
pub fn call(op: &str, req: &Record) -> Result<Record> {
    let b = if req.is_empty() { Vec::new() } else { req.encode() };
    let out = crate::call(|p, cap, n| unsafe { sys::call(op.as_ptr(), op.len() as u32, b.as_ptr(), b.len() as u32, p, cap, n) })?;
    Record::decode(&out).map_err(|e| Error::host(Errno::Failed, format!("supervisor {}: unreadable reply: {}", op, e)))
}

fn force(f: bool) -> Record {
    let mut r = Record::new();
    r.push("force", if f { "true" } else { "false" });
    r
}

fn run(op: &str, req: Record) -> Result {
    call(op, &req).map(|_| ())
}

fn read(what: &str) -> Result<Record> {
    let mut r = Record::new();
    r.push("what", what);
    call(OP_DEVICE_READ, &r)
}

fn get(r: &Record, k: &str) -> String {
    r.get_str(k).unwrap_or_default()
}

fn progress(r: &Record) -> f64 {
    r.get_str("download_progress").and_then(|v| v.parse().ok()).unwrap_or(-1.0)
}

/// Checks that the supervisor answers (`GET /ping`). Grant: `ping`.
pub fn ping() -> Result {
    run(OP_PING, Record::new())
}

/// Whether the supervisor considers itself healthy (`GET /v1/healthy`).
/// Grant: `ping`.
pub fn healthy() -> Result<bool> {
    let mut r = Record::new();
    r.push("what", "healthy");
    Ok(call(OP_PING, &r)?.get_str("healthy").as_deref() == Some("true"))
}

/// Blinks the identification LED. Grant: `blink`.
pub fn blink() -> Result {
    run(OP_BLINK, Record::new())
}

/// Asks the supervisor to stop the services and reboot. An update lock
/// refuses it with `Locked` unless force. Grant: `reboot`.
pub fn reboot(force_lock: bool) -> Result {
    run(OP_REBOOT, force(force_lock))
}

/// reboot's twin that powers the device off. Grant: `shutdown`.
pub fn shutdown(force_lock: bool) -> Result {
    run(OP_SHUTDOWN, force(force_lock))
}

/// Asks for an update check now; reports whether one started. Grant: `update`.
pub fn update(force_lock: bool) -> Result<bool> {
    Ok(call(OP_UPDATE, &force(force_lock))?.get_str("triggered").as_deref() == Some("true"))
}

/// Restarts every service of the application. Grant: `app.restart`.
pub fn restart_app(force_lock: bool) -> Result {
    run(OP_APP_RESTART, force(force_lock))
}

/// Deletes the application's volumes and restarts it. Grant: `app.purge`.
pub fn purge_app(force_lock: bool) -> Result {
    run(OP_APP_PURGE, force(force_lock))
}

fn service_op(op: &str, service: &str, force_lock: bool) -> Result {
    let mut r = Record::new();
    r.push("service", service);
    r.push("force", if force_lock { "true" } else { "false" });
    run(op, r)
}

/// Restarts one service by its compose name. Grant: `service.restart:<name>`.
pub fn restart_service(service: &str, force_lock: bool) -> Result {
    service_op(OP_SERVICE_RESTART, service, force_lock)
}

/// Stops one service. Grant: `service.stop:<name>`.
pub fn stop_service(service: &str, force_lock: bool) -> Result {
    service_op(OP_SERVICE_STOP, service, force_lock)
}

/// Starts a stopped service. Grant: `service.start:<name>`.
pub fn start_service(service: &str, force_lock: bool) -> Result {
    service_op(OP_SERVICE_START, service, force_lock)
}

/// Sets the host OS's hostname; "" restores the default. Grant: `hostname.set`.
pub fn set_hostname(hostname: &str, force_lock: bool) -> Result {
    let mut r = Record::new();
    r.push("hostname", hostname);
    r.push("force", if force_lock { "true" } else { "false" });
    run(OP_HOSTNAME_SET, r)
}

/// `GET /v1/device`.
#[derive(Clone, Debug, Default)]
pub struct DeviceInfo {
    pub status: String,
    pub commit: String,
    pub os_version: String,
    pub supervisor_version: String,
    pub ip_addresses: Vec<String>,
    pub mac_addresses: Vec<String>,
    pub api_port: u16,
    pub update_pending: bool,
    pub update_downloaded: bool,
    pub update_failed: bool,
    /// A percentage, or -1 when nothing is downloading.
    pub download_progress: f64,
    /// The supervisor's whole reply, for fields not listed here.
    pub json: String,
}

/// Reads the device's state (`GET /v1/device`). Grant: `device.read`.
pub fn device() -> Result<DeviceInfo> {
    let r = read("device")?;
    let list = |k| get(&r, k).split_whitespace().map(String::from).collect();
    Ok(DeviceInfo {
        status: get(&r, "status"),
        commit: get(&r, "commit"),
        os_version: get(&r, "os_version"),
        supervisor_version: get(&r, "supervisor_version"),
        ip_addresses: list("ip_address"),
        mac_addresses: list("mac_address"),
        api_port: get(&r, "api_port").parse().unwrap_or(0),
        update_pending: get(&r, "update_pending") == "true",
        update_downloaded: get(&r, "update_downloaded") == "true",
        update_failed: get(&r, "update_failed") == "true",
        download_progress: progress(&r),
        json: get(&r, "json"),
    })
}

/// `GET /v2/state/status`: the application's state and each service's
/// container status.
#[derive(Clone, Debug, Default)]
pub struct Status {
    pub status: String,
    pub app_state: String,
    pub release: String,
    /// Service name → "Running", "Stopped", ...
    pub services: BTreeMap<String, String>,
    pub download_progress: f64,
    pub json: String,
}

/// Reads the application's state. Grant: `device.read`.
pub fn state() -> Result<Status> {
    let r = read("status")?;
    let services = r
        .fields
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("service.").map(|n| (n.to_string(), String::from_utf8_lossy(v).into_owned())))
        .collect();
    Ok(Status {
        status: get(&r, "status"),
        app_state: get(&r, "app_state"),
        release: get(&r, "release"),
        services,
        download_progress: progress(&r),
        json: get(&r, "json"),
    })
}

/// The supervisor's version (`GET /v2/version`). Grant: `device.read`.
pub fn version() -> Result<String> {
    Ok(get(&read("version")?, "version"))
}

/// The device's name in the fleet (`GET /v2/device/name`). Grant: `device.read`.
pub fn device_name() -> Result<String> {
    Ok(get(&read("name")?, "name"))
}

/// The device's tags by name (`GET /v2/device/tags`). Grant: `device.read`.
pub fn tags() -> Result<BTreeMap<String, String>> {
    let r = read("tags")?;
    Ok(r.fields
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("tag.").map(|n| (n.to_string(), String::from_utf8_lossy(v).into_owned())))
        .collect())
}

/// The host OS's hostname (`GET /v1/device/host-config`). Grant: `device.read`.
pub fn hostname() -> Result<String> {
    Ok(get(&read("host-config")?, "hostname"))
}

fn fields(op: &str, kv: &[(&str, &str)]) -> Result<Record> {
    let mut r = Record::new();
    for (k, v) in kv {
        r.push(k, v);
    }
    call(op, &r)
}

fn prefixed(r: &Record, prefix: &str) -> BTreeMap<String, String> {
    r.fields
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(prefix).map(|n| (n.to_string(), String::from_utf8_lossy(v).into_owned())))
        .collect()
}

/// restart_app through the legacy `POST /v1/restart`. Grant: `app.restart`.
pub fn restart_app_v1(force_lock: bool) -> Result {
    fields(OP_APP_RESTART, &[("force", if force_lock { "true" } else { "false" }), ("v1", "true")]).map(|_| ())
}

/// purge_app through the legacy `POST /v1/purge`. Grant: `app.purge`.
pub fn purge_app_v1(force_lock: bool) -> Result {
    fields(OP_APP_PURGE, &[("force", if force_lock { "true" } else { "false" }), ("v1", "true")]).map(|_| ())
}

/// `GET /v1/apps/:appId`, for an app with one service; never its environment.
#[derive(Clone, Debug, Default)]
pub struct App {
    pub app_id: i64,
    pub commit: String,
    pub container_id: String,
    pub image: String,
    pub release_id: i64,
}

/// Reads the app (`GET /v1/apps/:appId`). Grant: `app.read`.
pub fn app_info() -> Result<App> {
    let r = fields(OP_APP_READ, &[("what", "app")])?;
    Ok(App {
        app_id: get(&r, "app_id").parse().unwrap_or(0),
        commit: get(&r, "commit"),
        container_id: get(&r, "container_id"),
        image: get(&r, "image"),
        release_id: get(&r, "release_id").parse().unwrap_or(0),
    })
}

/// One app of `GET /v2/applications/state`.
#[derive(Clone, Debug, Default)]
pub struct AppState {
    pub app_id: i64,
    pub app_uuid: String,
    pub commit: String,
    pub update_status: String,
    /// Service name → status.
    pub services: BTreeMap<String, String>,
    /// Service name → image.
    pub images: BTreeMap<String, String>,
}

/// Every app's state by app name (`GET /v2/applications/state`). Grant: `app.read`.
pub fn apps() -> Result<BTreeMap<String, AppState>> {
    let r = fields(OP_APP_READ, &[("what", "apps")])?;
    let mut out = BTreeMap::new();
    for (k, v) in &r.fields {
        if k != "app" {
            continue;
        }
        let n = String::from_utf8_lossy(v).into_owned();
        out.insert(
            n.clone(),
            AppState {
                app_id: get(&r, &format!("{}.app_id", n)).parse().unwrap_or(0),
                app_uuid: get(&r, &format!("{}.app_uuid", n)),
                commit: get(&r, &format!("{}.commit", n)),
                update_status: get(&r, &format!("{}.update_status", n)),
                services: prefixed(&r, &format!("{}.service.", n)),
                images: prefixed(&r, &format!("{}.image.", n)),
            },
        );
    }
    Ok(out)
}

/// The app's legacy state (`GET /v2/applications/:appId/state`): its commit
/// and the whole reply. Grant: `app.read`.
pub fn app_state_json() -> Result<(String, String)> {
    let r = fields(OP_APP_READ, &[("what", "state")])?;
    Ok((get(&r, "commit"), get(&r, "json")))
}

/// The cloud VPN's (enabled, connected) (`GET /v2/device/vpn`). Grant: `device.read`.
pub fn vpn() -> Result<(bool, bool)> {
    let r = read("vpn")?;
    Ok((get(&r, "enabled") == "true", get(&r, "connected") == "true"))
}

/// The (device type, architecture) (`GET /v2/local/device-info`). Grant: `device.read`.
pub fn device_type() -> Result<(String, String)> {
    let r = read("device-info")?;
    Ok((get(&r, "device_type"), get(&r, "arch")))
}

/// Each service's container id (`GET /v2/containerId`). Grant: `device.read`.
pub fn container_ids() -> Result<BTreeMap<String, String>> {
    Ok(prefixed(&read("container-ids")?, "service."))
}

/// Deletes the volumes no app references (`GET /v2/cleanup-volumes`).
/// Grant: `volumes.cleanup`.
pub fn cleanup_volumes() -> Result {
    run(OP_VOLUMES_CLEANUP, Record::new())
}

/// Sets one device tag (`PATCH /v2/device/tags`). Grant: `tags.set:<key>`.
pub fn set_tag(key: &str, value: &str) -> Result {
    fields(OP_TAGS_SET, &[("key", key), ("value", value)]).map(|_| ())
}

/// Bounds of one stream read; 0 takes the host's default (100 lines,
/// 64 KiB, 1000 ms; at most 1000 lines, 256 KiB, 10000 ms).
#[derive(Clone, Copy, Debug, Default)]
pub struct Bounds {
    pub max_lines: u32,
    pub max_bytes: u32,
    pub wait_ms: u32,
}

impl Bounds {
    fn push(&self, r: &mut Record) {
        for (k, v) in [("max_lines", self.max_lines), ("max_bytes", self.max_bytes), ("wait_ms", self.wait_ms)] {
            if v != 0 {
                r.push(k, v.to_string());
            }
        }
    }
}

/// What one stream read returned.
#[derive(Clone, Debug, Default)]
pub struct Lines {
    pub lines: Vec<String>,
    /// Lines read but not delivered (other services', or past max_bytes).
    pub dropped: u32,
    pub cut: u32,
    /// "eof", "lines", "bytes", "deadline" or "budget".
    pub end: String,
}

fn lines(r: Record) -> Lines {
    let text = get(&r, "lines");
    Lines {
        lines: text.lines().map(String::from).collect(),
        dropped: get(&r, "dropped").parse().unwrap_or(0),
        cut: get(&r, "cut").parse().unwrap_or(0),
        end: get(&r, "end"),
    }
}

/// One service's log lines (`GET /v2/local/logs`, local mode), each the
/// supervisor's JSON, until a bound. Grant: `logs.read:<service>`.
pub fn read_logs(service: &str, b: Bounds) -> Result<Lines> {
    let mut r = Record::new();
    r.push("service", service);
    b.push(&mut r);
    Ok(lines(call(OP_LOGS_READ, &r)?))
}

/// A query of the host journal (`POST /v2/journal-logs`).
#[derive(Clone, Debug, Default)]
pub struct JournalQuery {
    /// The systemd unit; the grant names it.
    pub unit: String,
    /// A syslog identifier; needs `journal.read:*`.
    pub container: String,
    pub count: u32,
    pub since: String,
    pub until: String,
    pub format: String,
    /// Wait for new entries until the read's bound.
    pub follow: bool,
    pub bounds: Bounds,
}

/// Host journal entries. Grant: `journal.read:<unit>`.
pub fn read_journal(q: &JournalQuery) -> Result<Lines> {
    let mut r = Record::new();
    for (k, v) in [("unit", &q.unit), ("container", &q.container), ("since", &q.since), ("until", &q.until), ("format", &q.format)] {
        if !v.is_empty() {
            r.push(k, v);
        }
    }
    if q.count > 0 {
        r.push("count", q.count.to_string());
    }
    if q.follow {
        r.push("follow", "true");
    }
    q.bounds.push(&mut r);
    Ok(lines(call(OP_JOURNAL_READ, &r)?))
}
