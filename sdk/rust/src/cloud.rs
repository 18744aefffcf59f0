//! This device's record in the balena cloud (ABI.md §3.5): its name, tags,
//! variables and its fleet's facts, through the host, which holds the API
//! key. Each function is one operation that plugin.toml must grant:
//!
//! ```toml
//! [cloud]
//! allow = ["device.read", "tags.read", "tags.set:location"]
//! ```
//!
//! Using any of them adds the `airlock_cloud_v1` import, and the host
//! refuses the plugin at load unless its manifest has a `[cloud]` section.

use crate::{Errno, Error, Record, Result};

/// The raw import of ABI.md §3.5. `call` shares its name with the
/// supervisor's; the import modules tell them apart.
#[allow(clashing_extern_declarations)]
pub mod sys {
    #[link(wasm_import_module = "airlock_cloud_v1")]
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
pub const OP_DEVICE_READ: &str = "device.read";
pub const OP_NAME_SET: &str = "name.set";
pub const OP_TAGS_READ: &str = "tags.read";
pub const OP_TAG_SET: &str = "tags.set"; // granted per key: "tags.set:<key>"
pub const OP_TAG_DELETE: &str = "tags.delete"; // granted per key
pub const OP_ENV_READ: &str = "env.read";
pub const OP_CONFIG_READ: &str = "config.read";
pub const OP_FLEET_READ: &str = "fleet.read";

/// Runs one operation with a request record and returns the reply record.
pub fn call(op: &str, req: &Record) -> Result<Record> {
    let b = if req.is_empty() { Vec::new() } else { req.encode() };
    let out = crate::call(|p, cap, n| unsafe { sys::call(op.as_ptr(), op.len() as u32, b.as_ptr(), b.len() as u32, p, cap, n) })?;
    Record::decode(&out).map_err(|e| Error::host(Errno::Failed, format!("cloud {}: unreadable reply: {}", op, e)))
}

fn get(r: &Record, k: &str) -> String {
    r.get_str(k).unwrap_or_default()
}

/// This device's identity in the cloud.
#[derive(Debug, Clone, Default)]
pub struct Device {
    pub uuid: String,
    pub name: String,
}

/// Returns this device's uuid and name. Grant: `device.read`.
pub fn read_device() -> Result<Device> {
    let r = call(OP_DEVICE_READ, &Record::new())?;
    Ok(Device { uuid: get(&r, "uuid"), name: get(&r, "name") })
}

/// Renames this device (1 to 128 bytes of text). Grant: `name.set`.
pub fn set_name(name: &str) -> Result {
    let mut r = Record::new();
    r.push("name", name);
    call(OP_NAME_SET, &r).map(|_| ())
}

/// Returns this device's tags, one field per tag, sorted by key.
/// Grant: `tags.read`.
pub fn tags() -> Result<Record> {
    call(OP_TAGS_READ, &Record::new())
}

/// Creates or updates a tag. Grant: `tags.set:<key>` (or `tags.set:*`).
pub fn set_tag(key: &str, value: &str) -> Result {
    let mut r = Record::new();
    r.push("key", key);
    r.push("value", value);
    call(OP_TAG_SET, &r).map(|_| ())
}

/// Deletes a tag; true if the device had it. Grant: `tags.delete:<key>`.
pub fn delete_tag(key: &str) -> Result<bool> {
    let mut r = Record::new();
    r.push("key", key);
    Ok(get(&call(OP_TAG_DELETE, &r)?, "deleted") == "true")
}

fn scope(fleet: bool) -> Record {
    let mut r = Record::new();
    r.push("scope", if fleet { "fleet" } else { "device" });
    r
}

/// The device's (or, with `fleet`, its fleet's) environment variables.
/// Grant: `env.read`.
pub fn env(fleet: bool) -> Result<Record> {
    call(OP_ENV_READ, &scope(fleet))
}

/// The device's (or its fleet's) configuration variables. Grant: `config.read`.
pub fn config(fleet: bool) -> Result<Record> {
    call(OP_CONFIG_READ, &scope(fleet))
}

/// This device's fleet.
#[derive(Debug, Clone, Default)]
pub struct Fleet {
    pub id: i64,
    pub name: String,
    pub slug: String,
    pub device_type: String,
    pub public: bool,
}

/// Returns this device's fleet. Grant: `fleet.read`.
pub fn read_fleet() -> Result<Fleet> {
    let r = call(OP_FLEET_READ, &Record::new())?;
    Ok(Fleet {
        id: get(&r, "id").parse().unwrap_or(0),
        name: get(&r, "name"),
        slug: get(&r, "slug"),
        device_type: get(&r, "device_type"),
        public: get(&r, "is_public") == "true",
    })
}
