// External storage (ABI.md §3.4), as plugin.toml's [[mount]] grants allow
// it. Mounts appear under the plugin's media root (/media unless the grant
// says otherwise), where the plugin uses them with readFile/writeFile:
//
//   import * as mount from "../../sdk/assemblyscript/assembly/mount";
//   const m = mount.byLabel("MEDIA", null);      // m.value.path == "/media/MEDIA"
//   if (m.ok) airlock.readText(m.value.path + "/config.json");
//
// The host forces nosuid,nodev,noexec, falls back to read-only when a
// read-write mount is refused (readonly, note), and unmounts what the
// plugin left mounted when its instance ends. Errors: Errno.DENIED (not
// granted, a system partition), NOT_FOUND, BUSY (already mounted), INVALID.
// Mount events (the host unmounted a device pulled out) arrive through
// onMount in index.ts.

import { Errno, Record, Reply, Result, decodeRecord, finish, outLenPtr, scratchPtr, SCRATCH_CAP } from "./index";

// @ts-ignore: decorator
@external("airlock_mount_v1", "mount")
declare function rawMount(req: usize, reqLen: u32, out: usize, cap: u32, outLen: usize): u32;
// @ts-ignore: decorator
@external("airlock_mount_v1", "unmount")
declare function rawUnmount(target: usize, targetLen: u32, out: usize, cap: u32, outLen: usize): u32;
// @ts-ignore: decorator
@external("airlock_mount_v1", "list")
declare function rawList(out: usize, cap: u32, outLen: usize): u32;

/** Optional mount settings; null (or empty fields) means the defaults. */
export class MountOptions {
  /** vfat, exfat, ext4, ...; "" uses what the host probed. */
  fstype: string = "";
  /** The name under the media root; "" is the label, else the UUID, else the kernel name. */
  target: string = "";
  /** Extra options the grant allows: "ro", "sync", "uid=1000". */
  options: string[] = [];
}

/** One of the plugin's mounts. */
export class MountInfo {
  /** The name under the media root: "MEDIA", "MEDIA-2". */
  target: string = "";
  /** Where the plugin sees it: "/media/MEDIA". */
  path: string = "";
  /** As asked: "label:MEDIA". */
  source: string = "";
  device: string = "";
  fstype: string = "";
  label: string = "";
  uuid: string = "";
  /** Every option in effect, forced ones first. */
  options: string[] = [];
  readonly: bool = false;
  /** Why it differs from the request (a read-only fallback), or "". */
  note: string = "";
}

/** byLabel mounts the filesystem labelled label. */
export function byLabel(label: string, o: MountOptions | null): Result<MountInfo> { return source("label:" + label, o); }
/** byUUID mounts the filesystem with that UUID. */
export function byUUID(uuid: string, o: MountOptions | null): Result<MountInfo> { return source("uuid:" + uuid, o); }
/** device mounts the filesystem on a device node, such as "/dev/sdb1". */
export function device(node: string, o: MountOptions | null): Result<MountInfo> { return source("device:" + node, o); }

/** source mounts "label:X", "uuid:X" or "device:/dev/X". */
export function source(src: string, o: MountOptions | null): Result<MountInfo> {
  const req = new Record().push("source", src);
  if (o != null) {
    if (o.fstype.length > 0) req.push("fstype", o.fstype);
    if (o.target.length > 0) req.push("target", o.target);
    for (let i = 0; i < o.options.length; i++) req.push("option", o.options[i]);
  }
  const b = req.encode();
  const r = finish(rawMount(b.dataStart, b.length, scratchPtr(), SCRATCH_CAP, outLenPtr()));
  if (!r.ok) return new Result<MountInfo>(new MountInfo(), r.err, r.text);
  const ms = decodeMounts(r.data);
  if (ms == null || ms.length != 1) return new Result<MountInfo>(new MountInfo(), Errno.FAILED, "mount: malformed reply");
  return new Result<MountInfo>(ms[0], Errno.OK, "");
}

/** unmount unmounts a target the plugin mounted. A busy mount is detached
 * lazily (value true): it goes away when the last open file is closed. */
export function unmount(target: string): Result<bool> {
  const t = String.UTF8.encode(target);
  const r = finish(rawUnmount(changetype<usize>(t), t.byteLength, scratchPtr(), SCRATCH_CAP, outLenPtr()));
  if (!r.ok) return new Result<bool>(false, r.err, r.text);
  const rec = decodeRecord(r.data);
  return new Result<bool>(rec != null && rec.str("lazy") == "true", Errno.OK, "");
}

/** list returns the plugin's mounts, sorted by target. */
export function list(): Result<MountInfo[]> {
  const r = finish(rawList(scratchPtr(), SCRATCH_CAP, outLenPtr()));
  if (!r.ok) return new Result<MountInfo[]>([], r.err, r.text);
  const ms = decodeMounts(r.data);
  if (ms == null) return new Result<MountInfo[]>([], Errno.FAILED, "mount: malformed reply");
  return new Result<MountInfo[]>(ms, Errno.OK, "");
}

/** decodeMounts reads a sequence of mount records, each led by "target". */
export function decodeMounts(b: Uint8Array): MountInfo[] | null {
  const rec = decodeRecord(b);
  if (rec == null) return null;
  const out: MountInfo[] = [];
  for (let i = 0; i < rec.fields.length; i++) {
    const k = rec.fields[i].key, v = rec.fields[i].text;
    if (k == "target") {
      const m = new MountInfo();
      m.target = v;
      out.push(m);
      continue;
    }
    if (out.length == 0) continue;
    const m = out[out.length - 1];
    if (k == "path") m.path = v;
    else if (k == "source") m.source = v;
    else if (k == "device") m.device = v;
    else if (k == "fstype") m.fstype = v;
    else if (k == "label") m.label = v;
    else if (k == "uuid") m.uuid = v;
    else if (k == "options") m.options = v.length > 0 ? v.split(",") : [];
    else if (k == "readonly") m.readonly = v == "true";
    else if (k == "note") m.note = v;
  }
  return out;
}
