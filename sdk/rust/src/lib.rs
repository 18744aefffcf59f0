//! The Rust SDK for airlock plugins (ABI v1, `abi/ABI.md`).
//!
//! A plugin is a `cdylib` built for `wasm32-wasi` as a WASI reactor (see
//! README.md for why and how). It registers its handlers in an init function
//! that [`plugin!`] wires to the exports the host calls:
//!
//! ```ignore
//! fn init() {
//!     airlock::on_start(|| {
//!         let greeting = airlock::config("greeting").unwrap_or_else(|| "hello".into());
//!         airlock::info(&format!("{} from Rust", greeting));
//!         Ok(())
//!     });
//! }
//! airlock::plugin!(init);
//! ```
//!
//! Handlers run one at a time, in the order their events arrived. A host
//! call that fails returns an [`Error`] with an [`Errno`] and the host's
//! message; nothing the host refuses ever traps the plugin. A handler that
//! returns `Err(e)` is logged as `<kind> handler: <e>`, as in the Go SDK.
//! Files (`std::fs` under `/data`), `std::env` and stdout are plain `std`.

use std::cell::RefCell;
use std::fmt;
use std::time::Duration;

mod record;

/// Replaces the file at `path` with `data` so that a crash leaves the old
/// contents or the new, never a torn mix: it writes `<path>.tmp-airlock`,
/// syncs it and renames it over `path`. A file rewritten in place
/// (`std::fs::write`) can be left half-written.
pub fn write_file_atomic(path: impl AsRef<std::path::Path>, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let path = path.as_ref();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp-airlock");
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
pub use record::{Record, RecordError, MAX_RECORD_FIELDS};

pub mod cloud;
pub mod dbus;
pub mod http;
pub mod mount;
pub mod supervisor;

/// The raw imports of ABI v1, exactly as ABI.md §3.1 declares them.
pub mod sys {
    #[link(wasm_import_module = "airlock_v1")]
    extern "C" {
        pub fn log(level: i32, msg_ptr: *const u8, msg_len: u32) -> u32;
        pub fn log_fields(level: i32, msg_ptr: *const u8, msg_len: u32, fields_ptr: *const u8, fields_len: u32) -> u32;
        pub fn config_get(key_ptr: *const u8, key_len: u32, out_ptr: *mut u8, out_cap: u32, out_len_ptr: *mut u32) -> u32;
        pub fn clock_now(out_ptr: *mut u64) -> u32;
        pub fn sleep(ns: i64) -> u32;
        pub fn deadline(out_ptr: *mut u64) -> u32;
        pub fn result_read(out_ptr: *mut u8, out_cap: u32, out_len_ptr: *mut u32) -> u32;
    }
}

// ---- errors (ABI.md §4) ---------------------------------------------------

/// The ABI's one error space. Every host function returns one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Errno {
    Denied = 1,
    Invalid = 2,
    NotFound = 3,
    Unavailable = 4,
    Timeout = 5,
    TooLarge = 6,
    Locked = 7,
    Failed = 8,
    Busy = 9,
    Fault = 10,
    NoResult = 11,
}

impl Errno {
    /// Converts a nonzero code; ABI.md says to read an unknown one as
    /// `failed`. Zero (success) gives `None`.
    pub fn from_code(code: u32) -> Option<Errno> {
        use Errno::*;
        Some(match code {
            0 => return None,
            1 => Denied,
            2 => Invalid,
            3 => NotFound,
            4 => Unavailable,
            5 => Timeout,
            6 => TooLarge,
            7 => Locked,
            9 => Busy,
            10 => Fault,
            11 => NoResult,
            _ => Failed,
        })
    }

    /// The name as ABI.md spells it: `not_found`, ...
    pub fn name(self) -> &'static str {
        use Errno::*;
        match self {
            Denied => "denied",
            Invalid => "invalid",
            NotFound => "not_found",
            Unavailable => "unavailable",
            Timeout => "timeout",
            TooLarge => "too_large",
            Locked => "locked",
            Failed => "failed",
            Busy => "busy",
            Fault => "fault",
            NoResult => "no_result",
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error: from the host (with its code and message), or a plugin's own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The host's code; `None` for an error the plugin made itself.
    pub code: Option<Errno>,
    pub msg: String,
    /// The D-Bus error name of an error from a D-Bus peer
    /// ("org.freedesktop.systemd1.NoSuchUnit"), which the host sends as a
    /// field of its own (ABI.md §3.3.3); see [`dbus::error_name`].
    pub name: Option<String>,
}

impl Error {
    pub fn host(code: Errno, msg: impl Into<String>) -> Error {
        Error { code: Some(code), msg: msg.into(), name: None }
    }
    /// Reports whether the host returned code.
    pub fn is(&self, code: Errno) -> bool {
        self.code == Some(code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.msg.is_empty()) {
            (Some(c), true) => write!(f, "{}", c),
            (Some(c), false) => write!(f, "{}: {}", c, self.msg),
            (None, _) => f.write_str(&self.msg),
        }
    }
}

impl std::error::Error for Error {}

impl From<&str> for Error {
    fn from(s: &str) -> Error {
        Error { code: None, msg: s.to_string(), name: None }
    }
}
impl From<String> for Error {
    fn from(s: String) -> Error {
        Error { code: None, msg: s, name: None }
    }
}
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error { code: None, msg: e.to_string(), name: None }
    }
}

pub type Result<T = ()> = std::result::Result<T, Error>;

// ---- logs -------------------------------------------------------------------

/// Log levels, numbered as Go's log/slog numbers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Debug = -4,
    Info = 0,
    Warn = 4,
    Error = 8,
}

/// Writes one log record at level.
pub fn log(level: Level, msg: &str) {
    unsafe { sys::log(level as i32, msg.as_ptr(), msg.len() as u32) };
}
pub fn debug(msg: &str) {
    log(Level::Debug, msg)
}
pub fn info(msg: &str) {
    log(Level::Info, msg)
}
pub fn warn(msg: &str) {
    log(Level::Warn, msg)
}
pub fn error(msg: &str) {
    log(Level::Error, msg)
}

/// Writes one log record at level with key/value fields, which the host
/// logs as attributes of the line (at most 32; keys of letters, digits,
/// '_', '.' and '-'), as the Go SDK's `Log(level, msg, kv...)` does:
///
/// ```ignore
/// airlock::info_fields("tick", &[("timer", &name), ("count", &n)]);
/// ```
pub fn log_fields(level: Level, msg: &str, fields: &[(&str, &dyn fmt::Display)]) {
    if fields.is_empty() {
        return log(level, msg);
    }
    let mut r = Record::new();
    for (k, v) in fields {
        r.push(k, v.to_string());
    }
    let b = r.encode();
    unsafe { sys::log_fields(level as i32, msg.as_ptr(), msg.len() as u32, b.as_ptr(), b.len() as u32) };
}
pub fn debug_fields(msg: &str, fields: &[(&str, &dyn fmt::Display)]) {
    log_fields(Level::Debug, msg, fields)
}
pub fn info_fields(msg: &str, fields: &[(&str, &dyn fmt::Display)]) {
    log_fields(Level::Info, msg, fields)
}
pub fn warn_fields(msg: &str, fields: &[(&str, &dyn fmt::Display)]) {
    log_fields(Level::Warn, msg, fields)
}
pub fn error_fields(msg: &str, fields: &[(&str, &dyn fmt::Display)]) {
    log_fields(Level::Error, msg, fields)
}

// ---- results ----------------------------------------------------------------

const SCRATCH: usize = 4096;

thread_local! {
    // Small results land here without an allocation. Wasm is single-threaded
    // and a host call never calls back into the guest.
    static SCRATCH_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH]);
}

/// Runs a host function that follows the ABI's result convention
/// (`out_ptr, out_cap, out_len_ptr`) and returns its result, fetching a
/// large one with `result_read`; or the host's code and message. Capability
/// wrappers are built on it.
pub fn call<F: FnOnce(*mut u8, u32, *mut u32) -> u32>(f: F) -> Result<Vec<u8>> {
    match call_bytes(f)? {
        (None, data) => Ok(data),
        (Some(e), data) => Err(Error::host(e, String::from_utf8_lossy(&data).into_owned())),
    }
}

/// `call`, but an error's result is returned as bytes with its code.
pub(crate) fn call_bytes<F: FnOnce(*mut u8, u32, *mut u32) -> u32>(f: F) -> Result<(Option<Errno>, Vec<u8>)> {
    let mut n: u32 = 0;
    let (code, mut data) = SCRATCH_BUF.with(|s| {
        let mut s = s.borrow_mut();
        let code = f(s.as_mut_ptr(), SCRATCH as u32, &mut n);
        let data = if (n as usize) <= SCRATCH { s[..n as usize].to_vec() } else { Vec::new() };
        (code, data)
    });
    if code == Errno::Fault as u32 {
        return Err(Error::host(Errno::Fault, ""));
    }
    if (n as usize) > SCRATCH {
        data = vec![0; n as usize];
        read_result(&mut data)?;
    }
    Ok((Errno::from_code(code), data))
}

fn read_result(buf: &mut [u8]) -> Result {
    let mut n: u32 = 0;
    let code = unsafe { sys::result_read(buf.as_mut_ptr(), buf.len() as u32, &mut n) };
    match Errno::from_code(code) {
        None => Ok(()),
        Some(e) => Err(Error::host(e, "result_read")),
    }
}

// ---- base functions -----------------------------------------------------------

/// Returns the value of key in the manifest's `[config]`, or `NotFound` with
/// the host's message.
pub fn config_value(key: &str) -> Result<String> {
    let v = call(|out, cap, n| unsafe { sys::config_get(key.as_ptr(), key.len() as u32, out, cap, n) })?;
    Ok(String::from_utf8_lossy(&v).into_owned())
}

/// Returns the value of key in the manifest's `[config]`, if it is there.
pub fn config(key: &str) -> Option<String> {
    config_value(key).ok()
}

/// Returns the host's wall clock in Unix nanoseconds.
pub fn now_ns() -> u64 {
    let mut t: u64 = 0;
    unsafe { sys::clock_now(&mut t) };
    t
}

/// Pauses the handler for d, but never past its deadline: `Timeout` if the
/// deadline cut it short. Prefer it to `std::thread::sleep`, which the host
/// cannot bound.
pub fn sleep(d: Duration) -> Result {
    sleep_ns(d.as_nanos().min(i64::MAX as u128) as i64)
}

/// sleep with a signed duration (a negative one is `Invalid`).
pub fn sleep_ns(ns: i64) -> Result {
    match Errno::from_code(unsafe { sys::sleep(ns) }) {
        None => Ok(()),
        Some(e) => Err(Error::host(e, "")),
    }
}

/// Returns the time left before the running handler is stopped.
pub fn deadline() -> Duration {
    let mut d: u64 = 0;
    unsafe { sys::deadline(&mut d) };
    Duration::from_nanos(d)
}

// ---- events (ABI.md §5) -------------------------------------------------------

pub const EVENT_START: u32 = 1;
pub const EVENT_STOP: u32 = 2;
pub const EVENT_TIMER: u32 = 3;
pub const EVENT_UDEV: u32 = 4;
pub const EVENT_DBUS_SIGNAL: u32 = 5;
pub const EVENT_DROPPED: u32 = 6;
pub const EVENT_MOUNT: u32 = 7;

/// Returns the kind's name as manifests and logs spell it.
pub fn event_name(kind: u32) -> String {
    match kind {
        1 => "start".into(),
        2 => "stop".into(),
        3 => "timer".into(),
        4 => "udev".into(),
        5 => "dbus_signal".into(),
        6 => "dropped".into(),
        7 => "mount".into(),
        k => format!("event({})", k),
    }
}

/// Any event, as delivered: its kind and its fields.
#[derive(Clone, Debug)]
pub struct Event {
    pub kind: u32,
    pub fields: Record,
}

impl Event {
    /// The value of a field, or "".
    pub fn get(&self, key: &str) -> String {
        self.fields.get_str(key).unwrap_or_default()
    }
}

/// A `[[trigger.timer]]` firing.
#[derive(Clone, Debug)]
pub struct Timer {
    /// The timer's name in plugin.toml.
    pub name: String,
    /// When it was due, RFC 3339 with nanoseconds.
    pub time: String,
    /// The same in Unix nanoseconds (0 if it does not parse).
    pub time_ns: i64,
}

/// Events that did not reach the plugin (abi/ABI.md §5). `count` were
/// lost: never delivered, to a full queue or over
/// `limits.events_per_second` (`rate_limited` of them). `coalesced` were
/// replaced in the queue by a newer event of the same source (a timer's
/// tick, a device's udev change), which is delivered; they are not in
/// `count`. `by_kind` and `coalesced_by_kind` split the two by event kind
/// name ("timer", "udev", "dbus_signal", "mount"), in the host's order. A
/// host older than these fields sends only `count` and `reason`.
#[derive(Clone, Debug)]
pub struct Dropped {
    pub count: u64,
    /// "queue full", "rate limit", both, or "coalesced".
    pub reason: String,
    pub rate_limited: u64,
    pub coalesced: u64,
    pub by_kind: Vec<(String, u64)>,
    pub coalesced_by_kind: Vec<(String, u64)>,
}

impl Dropped {
    fn from_event(e: &Event) -> Dropped {
        let num = |s: &str| s.parse().unwrap_or(0);
        let mut d = Dropped {
            count: num(&e.get("count")),
            reason: e.get("reason"),
            rate_limited: num(&e.get("rate_limited")),
            coalesced: num(&e.get("coalesced")),
            by_kind: Vec::new(),
            coalesced_by_kind: Vec::new(),
        };
        for (k, v) in &e.fields.fields {
            let v = num(&String::from_utf8_lossy(v));
            if let Some(kind) = k.strip_prefix("dropped.") {
                d.by_kind.push((kind.to_string(), v));
            } else if let Some(kind) = k.strip_prefix("coalesced.") {
                d.coalesced_by_kind.push((kind.to_string(), v));
            }
        }
        d
    }
}

/// A device event from a `[[trigger.udev]]` rule, under udev's names.
#[derive(Clone, Debug)]
pub struct UEvent {
    pub action: String,
    pub subsystem: String,
    pub devtype: String,
    pub devpath: String,
    pub devname: String,
    /// Every property, the above included, in the order sent.
    pub props: Record,
}

impl UEvent {
    /// A property by its udev name.
    pub fn prop(&self, key: &str) -> Option<String> {
        self.props.get_str(key)
    }
    /// The filesystem label as written on the device: `ID_FS_LABEL_ENC`
    /// decoded (`ID_FS_LABEL` has unsafe bytes replaced by `_`).
    pub fn label(&self) -> String {
        match self.props.get("ID_FS_LABEL_ENC") {
            Some(v) => String::from_utf8_lossy(&udev_unescape(v)).into_owned(),
            None => self.prop("ID_FS_LABEL").unwrap_or_default(),
        }
    }
    pub fn uuid(&self) -> String {
        self.prop("ID_FS_UUID").unwrap_or_default()
    }
    pub fn fstype(&self) -> String {
        self.prop("ID_FS_TYPE").unwrap_or_default()
    }
    /// The kernel's sequence number, or 0 for a synthetic event.
    pub fn seqnum(&self) -> u64 {
        self.prop("SEQNUM").and_then(|s| s.parse().ok()).unwrap_or(0)
    }
    /// Whether the device was present before the plugin loaded.
    pub fn coldplug(&self) -> bool {
        self.prop("AIRLOCK_SYNTH").as_deref() == Some("coldplug")
    }
}

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Undoes udev's `\xNN` escaping of `*_ENC` properties.
pub fn udev_unescape(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'\\' && i + 3 < s.len() && s[i + 1] == b'x' {
            if let (Some(h), Some(l)) = (hexval(s[i + 2]), hexval(s[i + 3])) {
                out.push(h << 4 | l);
                i += 4;
                continue;
            }
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

type Handler = Box<dyn Fn(&Event) -> Result>;

const MAX_KIND: usize = 32;

thread_local! {
    static HANDLERS: RefCell<Vec<Option<std::rc::Rc<Handler>>>> = RefCell::new((0..MAX_KIND).map(|_| None).collect());
    static INITIALISED: RefCell<bool> = RefCell::new(false);
}

/// Registers h for every event of kind (below 32); a later registration
/// replaces an earlier one. The typed `on_*` functions are built on it.
pub fn handle<F: Fn(&Event) -> Result + 'static>(kind: u32, h: F) {
    if (kind as usize) < MAX_KIND {
        HANDLERS.with(|hs| hs.borrow_mut()[kind as usize] = Some(std::rc::Rc::new(Box::new(h))));
    }
}

/// Runs when the instance starts (and after each restart).
pub fn on_start<F: Fn() -> Result + 'static>(h: F) {
    handle(EVENT_START, move |_| h())
}

/// Runs once before the instance closes, after the queue drained.
pub fn on_stop<F: Fn() -> Result + 'static>(h: F) {
    handle(EVENT_STOP, move |_| h())
}

/// Runs when a `[[trigger.timer]]` fires.
pub fn on_timer<F: Fn(&Timer) -> Result + 'static>(h: F) {
    handle(EVENT_TIMER, move |e| {
        let time = e.get("time");
        h(&Timer { name: e.get("name"), time_ns: parse_rfc3339(&time).unwrap_or(0), time })
    })
}

/// Runs when events were lost or coalesced, before the next event.
pub fn on_dropped<F: Fn(&Dropped) -> Result + 'static>(h: F) {
    handle(EVENT_DROPPED, move |e| h(&Dropped::from_event(e)))
}

/// Runs for each device event that the plugin's `[[trigger.udev]]` rules
/// match.
pub fn on_udev<F: Fn(&UEvent) -> Result + 'static>(h: F) {
    handle(EVENT_UDEV, move |e| {
        h(&UEvent {
            action: e.get("ACTION"),
            subsystem: e.get("SUBSYSTEM"),
            devtype: e.get("DEVTYPE"),
            devpath: e.get("DEVPATH"),
            devname: e.get("DEVNAME"),
            props: e.fields.clone(),
        })
    })
}

/// The body of the `airlock_on_event` export that [`plugin!`] defines:
/// runs init once, reads and decodes the payload and runs the handler.
#[doc(hidden)]
pub fn dispatch(kind: u32, len: u32, init: fn()) -> i32 {
    let first = INITIALISED.with(|i| !std::mem::replace(&mut *i.borrow_mut(), true));
    if first {
        init();
    }
    let h = HANDLERS.with(|hs| hs.borrow().get(kind as usize).and_then(|h| h.clone()));
    let h = match h {
        Some(h) => h,
        None => {
            if kind == EVENT_DROPPED {
                warn("events dropped and no OnDropped handler");
            }
            return 0;
        }
    };
    let mut fields = Record::default();
    if len > 0 {
        let mut buf = vec![0u8; len as usize];
        if let Err(e) = read_result(&mut buf) {
            error(&format!("reading event payload: {}", e));
            return 1;
        }
        fields = match Record::decode(&buf) {
            Ok(r) => r,
            Err(_) => {
                error("decoding event payload: abi: malformed record");
                return 1;
            }
        };
    }
    match h(&Event { kind, fields }) {
        Ok(()) => 0,
        Err(e) => {
            error(&format!("{} handler: {}", event_name(kind), e));
            1
        }
    }
}

/// Defines the exports the host needs (`airlock_abi_v1`,
/// `airlock_on_event`) and runs `init` (where the plugin registers its
/// handlers) before the first event.
#[macro_export]
macro_rules! plugin {
    ($init:path) => {
        /// The version marker: the host refuses a module without it.
        #[no_mangle]
        pub extern "C" fn airlock_abi_v1() {}

        #[no_mangle]
        pub extern "C" fn airlock_on_event(kind: u32, len: u32) -> i32 {
            $crate::dispatch(kind, len, $init)
        }
    };
}

// ---- time ---------------------------------------------------------------------

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn digits(s: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as i64;
    }
    Some(v)
}

/// Parses RFC 3339 time (`2006-01-02T15:04:05.999999999Z07:00`) to Unix
/// nanoseconds.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b't') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let (h, mi, sec) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    let mut p = 19;
    let mut frac = 0i64;
    if b[p] == b'.' {
        p += 1;
        let mut n = 0;
        while p < b.len() && b[p].is_ascii_digit() {
            if n < 9 {
                frac = frac * 10 + (b[p] - b'0') as i64;
            }
            n += 1;
            p += 1;
        }
        while n < 9 {
            frac *= 10;
            n += 1;
        }
    }
    let rest = &b[p..];
    let offset = match rest {
        b"Z" | b"z" => 0,
        [sign @ (b'+' | b'-'), hh0, hh1, b':', mm0, mm1] => {
            let o = digits(&[*hh0, *hh1])? * 3600 + digits(&[*mm0, *mm1])? * 60;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    Some(secs * 1_000_000_000 + frac)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(parse_rfc3339("2024-02-29T12:34:56.123456789+02:00"), Some(1709202896123456789));
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("nope"), None);
    }

    #[test]
    fn unescape() {
        assert_eq!(udev_unescape(br"MY\x20STICK\x2"), b"MY STICK\\x2".to_vec());
    }
}
