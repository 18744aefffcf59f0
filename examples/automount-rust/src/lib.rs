//! automount-rust mounts external storage by UUID under its label while it
//! is plugged in, counts its files, and unmounts it when it goes away.
//! ../../plugins/automount in Rust.

use airlock::mount::{self, MountOptions};
use airlock::{Errno, UEvent};

/// Logged once per stick that goes while mounted, by whichever of the
/// host's mount event and the device's udev remove finds it mounted.
const PULLED_OUT: &str = "pulled out while mounted; unmounted (unplug only after unmounting to be sure writes are on it)";

fn attach(e: &UEvent) -> airlock::Result {
    if e.uuid().is_empty() {
        airlock::warn_fields("not mounted: the filesystem has no UUID", &[("device", &e.devname)]);
        return Ok(());
    }
    // Mount by UUID, which is unique, named after the label.
    let o = MountOptions { target: e.label().trim().replace('/', "_"), ..Default::default() };
    let m = match mount::by_uuid(&e.uuid(), Some(&o)) {
        Err(err) if err.is(Errno::Denied) => {
            airlock::warn_fields(&format!("not mounted: {}", err), &[("device", &e.devname)]);
            return Ok(());
        }
        Err(err) if err.is(Errno::Busy) => {
            airlock::info_fields("already mounted", &[("device", &e.devname)]);
            return Ok(());
        }
        r => r?,
    };
    let entries = std::fs::read_dir(&m.path)?.count();
    airlock::info_fields(
        "mounted",
        &[("device", &m.device), ("path", &m.path), ("fstype", &m.fstype), ("readonly", &m.readonly), ("entries", &entries)],
    );
    if !m.note.is_empty() {
        airlock::warn_fields(&m.note, &[("path", &m.path)]);
    }
    if let Some(name) = airlock::config("write_file").filter(|n| !n.is_empty()) {
        if !m.readonly {
            let p = format!("{}/{}", m.path, name);
            std::fs::write(&p, "written by the airlock automount plugin\n")?;
            airlock::info_fields("wrote", &[("path", &p)]);
        }
    }
    Ok(())
}

fn detach(e: &UEvent, why: &str) -> airlock::Result {
    for m in mount::list()?.iter().filter(|m| m.device == e.devname) {
        // Not found: the host detached it first, and its mount event,
        // queued behind this event, logs the stick.
        match mount::unmount(&m.target) {
            Err(err) if err.is(Errno::NotFound) => {}
            Err(err) => return Err(err),
            Ok(_) => airlock::warn_fields(PULLED_OUT, &[("target", &m.target), ("device", &m.device), ("reason", &why)]),
        }
    }
    Ok(())
}

/// A filesystem on the disk itself, no partition table.
fn whole_disk_fs(e: &UEvent) -> bool {
    !e.fstype().is_empty()
        && e.prop("ID_FS_USAGE").map_or(true, |u| u == "filesystem")
        && e.prop("ID_PART_TABLE_TYPE").unwrap_or_default().is_empty()
}

fn on_udev(e: &UEvent) -> airlock::Result {
    if e.action == "remove" {
        return detach(e, "device removed");
    }
    if e.devtype == "disk" && !whole_disk_fs(e) {
        return detach(e, "medium removed"); // partitions, or the medium went
    }
    if e.action == "add" {
        return attach(e);
    }
    if e.action == "change" && e.devtype == "disk" {
        // A superfloppy announces its filesystem with a change.
        if let Some(m) = mount::list()?.into_iter().find(|m| m.device == e.devname) {
            if m.uuid == e.uuid() {
                return Ok(()); // the same medium, still mounted
            }
            detach(e, "medium changed")?;
        }
        return attach(e);
    }
    Ok(())
}

fn init() {
    airlock::on_udev(on_udev);
    mount::on_mount(|ev| {
        airlock::warn_fields(PULLED_OUT, &[("target", &ev.target), ("device", &ev.device), ("reason", &ev.reason)]);
        Ok(())
    });
}

airlock::plugin!(init);
