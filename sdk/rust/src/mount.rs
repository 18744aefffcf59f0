//! External storage (ABI.md §3.4), as plugin.toml's `[[mount]]` grants
//! allow it. Mounts appear under the plugin's media root (`/media` unless
//! the grant says otherwise), where the plugin uses them with `std::fs`:
//!
//! ```ignore
//! let m = airlock::mount::by_label("MEDIA", None)?;        // m.path == "/media/MEDIA"
//! let cfg = std::fs::read_to_string(format!("{}/config.json", m.path))?;
//! airlock::mount::unmount(&m.target)?;
//! ```
//!
//! The host forces `nosuid,nodev,noexec`, falls back to read-only when a
//! read-write mount is refused (`readonly`, `note`), and unmounts what the
//! plugin left mounted when its instance ends. A source the grant does not
//! allow is `Denied`; no such device, `NotFound`; already mounted, `Busy`;
//! a label two devices share, `Invalid`.

use crate::{Errno, Error, Event, Record, Result};

/// The raw imports of ABI.md §3.4.
pub mod sys {
    #[link(wasm_import_module = "airlock_mount_v1")]
    extern "C" {
        pub fn mount(req_ptr: *const u8, req_len: u32, out_ptr: *mut u8, out_cap: u32, out_len_ptr: *mut u32) -> u32;
        pub fn unmount(target_ptr: *const u8, target_len: u32, out_ptr: *mut u8, out_cap: u32, out_len_ptr: *mut u32) -> u32;
        pub fn list(out_ptr: *mut u8, out_cap: u32, out_len_ptr: *mut u32) -> u32;
    }
}

/// Optional mount settings; `None` (or empty fields) means the defaults.
#[derive(Clone, Debug, Default)]
pub struct MountOptions {
    /// vfat, exfat, ext4, ...; "" uses what the host probed.
    pub fstype: String,
    /// The name under the media root; "" is the label, else the UUID, else
    /// the kernel name. A name in use gets -2, -3, ...
    pub target: String,
    /// Extra options the grant allows: "ro", "sync", "uid=1000".
    pub options: Vec<String>,
}

/// One of the plugin's mounts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MountInfo {
    /// The name under the media root: "MEDIA", "MEDIA-2".
    pub target: String,
    /// Where the plugin sees it: "/media/MEDIA".
    pub path: String,
    /// As asked: "label:MEDIA".
    pub source: String,
    /// "/dev/sdb1".
    pub device: String,
    pub fstype: String,
    pub label: String,
    pub uuid: String,
    /// Every option in effect, forced ones first.
    pub options: Vec<String>,
    pub readonly: bool,
    /// Why it differs from the request (a read-only fallback), or "".
    pub note: String,
}

/// The host changed one of the plugin's mounts on its own: a device pulled
/// out while mounted was detached (action "unmounted").
#[derive(Clone, Debug)]
pub struct MountEvent {
    pub action: String,
    pub target: String,
    pub source: String,
    pub device: String,
    /// "device removed", "loop device detached (losetup -d)".
    pub reason: String,
}

/// Mounts the filesystem labelled label.
pub fn by_label(label: &str, o: Option<&MountOptions>) -> Result<MountInfo> {
    source(&format!("label:{}", label), o)
}

/// Mounts the filesystem with that UUID (as blkid prints it).
pub fn by_uuid(uuid: &str, o: Option<&MountOptions>) -> Result<MountInfo> {
    source(&format!("uuid:{}", uuid), o)
}

/// Mounts the filesystem on a device node, such as "/dev/sdb1".
pub fn device(node: &str, o: Option<&MountOptions>) -> Result<MountInfo> {
    source(&format!("device:{}", node), o)
}

/// Mounts "label:X", "uuid:X" or "device:/dev/X".
pub fn source(source: &str, o: Option<&MountOptions>) -> Result<MountInfo> {
    let mut req = Record::new();
    req.push("source", source);
    if let Some(o) = o {
        if !o.fstype.is_empty() {
            req.push("fstype", &o.fstype);
        }
        if !o.target.is_empty() {
            req.push("target", &o.target);
        }
        for opt in &o.options {
            req.push("option", opt);
        }
    }
    let b = req.encode();
    let out = crate::call(|p, cap, n| unsafe { sys::mount(b.as_ptr(), b.len() as u32, p, cap, n) })?;
    let mut ms = decode_mounts(&out)?;
    if ms.len() != 1 {
        return Err(Error::host(Errno::Failed, "mount: malformed reply"));
    }
    Ok(ms.remove(0))
}

/// Unmounts a target the plugin mounted. A busy mount is detached lazily
/// (it goes away when the last open file on it is closed): then it returns
/// true.
pub fn unmount(target: &str) -> Result<bool> {
    let out = crate::call(|p, cap, n| unsafe { sys::unmount(target.as_ptr(), target.len() as u32, p, cap, n) })?;
    Ok(Record::decode(&out).ok().and_then(|r| r.get_str("lazy")).as_deref() == Some("true"))
}

/// The plugin's mounts, sorted by target.
pub fn list() -> Result<Vec<MountInfo>> {
    let out = crate::call(|p, cap, n| unsafe { sys::list(p, cap, n) })?;
    decode_mounts(&out)
}

/// Runs h when the host changes one of the plugin's mounts.
pub fn on_mount<F: Fn(&MountEvent) -> Result + 'static>(h: F) {
    crate::handle(crate::EVENT_MOUNT, move |e: &Event| {
        h(&MountEvent {
            action: e.get("action"),
            target: e.get("target"),
            source: e.get("source"),
            device: e.get("device"),
            reason: e.get("reason"),
        })
    })
}

/// Reads a sequence of mount records, each led by "target".
pub fn decode_mounts(b: &[u8]) -> Result<Vec<MountInfo>> {
    let rec = Record::decode(b).map_err(|_| Error::host(Errno::Failed, "mount: malformed reply"))?;
    let mut out: Vec<MountInfo> = Vec::new();
    for (k, v) in &rec.fields {
        let v = String::from_utf8_lossy(v).into_owned();
        if k == "target" {
            out.push(MountInfo { target: v, ..Default::default() });
            continue;
        }
        let m = match out.last_mut() {
            Some(m) => m,
            None => continue,
        };
        match k.as_str() {
            "path" => m.path = v,
            "source" => m.source = v,
            "device" => m.device = v,
            "fstype" => m.fstype = v,
            "label" => m.label = v,
            "uuid" => m.uuid = v,
            "options" => m.options = if v.is_empty() { Vec::new() } else { v.split(',').map(String::from).collect() },
            "readonly" => m.readonly = v == "true",
            "note" => m.note = v,
            _ => {}
        }
    }
    Ok(out)
}
