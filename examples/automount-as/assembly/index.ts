// automount-as mounts external storage by UUID under its label while it is
// plugged in, counts its files, and unmounts it when it goes away.
// ../../plugins/automount in AssemblyScript.
import * as airlock from "../../../sdk/assemblyscript/assembly/index";
export { airlock_abi_v1, airlock_on_event } from "../../../sdk/assemblyscript/assembly/index";
import * as mount from "../../../sdk/assemblyscript/assembly/mount";

// Logged once per stick that goes while mounted, by whichever of the host's
// mount event and the device's udev remove finds it mounted.
const PULLED_OUT = "pulled out while mounted; unmounted (unplug only after unmounting to be sure writes are on it)";

function attach(e: airlock.UEvent): string | null {
  if (e.uuid.length == 0) {
    airlock.warn("not mounted: the filesystem has no UUID", new airlock.Record().push("device", e.devname));
    return null;
  }
  // Mount by UUID, which is unique, named after the label.
  const o = new mount.MountOptions();
  o.target = e.label.trim().replaceAll("/", "_");
  const r = mount.byUUID(e.uuid, o);
  if (r.err == airlock.Errno.DENIED) {
    airlock.warn("not mounted: " + r.toString(), new airlock.Record().push("device", e.devname));
    return null;
  }
  if (r.err == airlock.Errno.BUSY) {
    airlock.info("already mounted", new airlock.Record().push("device", e.devname));
    return null;
  }
  if (!r.ok) return r.toString();
  const m = r.value;
  const entries = airlock.readDir(m.path);
  if (entries == null) return "reading " + m.path + " failed";
  airlock.info("mounted", new airlock.Record().push("device", m.device).push("path", m.path).push("fstype", m.fstype)
    .push("readonly", m.readonly ? "true" : "false").push("entries", entries!.length.toString()));
  if (m.note.length > 0) airlock.warn(m.note, new airlock.Record().push("path", m.path));
  const name = airlock.configString("write_file", "");
  if (name.length > 0 && !m.readonly) {
    const p = m.path + "/" + name;
    if (!airlock.writeText(p, "written by the airlock automount plugin\n")) return "writing " + p + " failed";
    airlock.info("wrote", new airlock.Record().push("path", p));
  }
  return null;
}

function detach(e: airlock.UEvent, why: string): string | null {
  const l = mount.list();
  if (!l.ok) return l.toString();
  for (let i = 0; i < l.value.length; i++) {
    const m = l.value[i];
    if (m.device != e.devname) continue;
    // Not found: the host detached it first, and its mount event, queued
    // behind this event, logs the stick.
    const u = mount.unmount(m.target);
    if (!u.ok && u.err == airlock.Errno.NOT_FOUND) continue;
    if (!u.ok) return u.toString();
    airlock.warn(PULLED_OUT, new airlock.Record().push("target", m.target).push("device", m.device).push("reason", why));
  }
  return null;
}

// wholeDiskFS: a filesystem on the disk itself, no partition table.
function wholeDiskFS(e: airlock.UEvent): bool {
  const usage = e.prop("ID_FS_USAGE");
  const pt = e.prop("ID_PART_TABLE_TYPE");
  return e.fstype.length > 0 && (usage == null || usage! == "filesystem") && (pt == null || pt!.length == 0);
}

airlock.onUdev((e: airlock.UEvent): string | null => {
  if (e.action == "remove") return detach(e, "device removed");
  if (e.devtype == "disk" && !wholeDiskFS(e)) return detach(e, "medium removed"); // partitions, or the medium went
  if (e.action == "add") return attach(e);
  if (e.action == "change" && e.devtype == "disk") {
    // A superfloppy announces its filesystem with a change.
    const l = mount.list();
    if (!l.ok) return l.toString();
    for (let i = 0; i < l.value.length; i++) {
      const m = l.value[i];
      if (m.device != e.devname) continue;
      if (m.uuid == e.uuid) return null; // the same medium, still mounted
      const err = detach(e, "medium changed");
      if (err != null) return err;
      break;
    }
    return attach(e);
  }
  return null;
});

airlock.onMount((ev: airlock.MountEvent): string | null => {
  airlock.warn(PULLED_OUT, new airlock.Record().push("target", ev.target).push("device", ev.device).push("reason", ev.reason));
  return null;
});
