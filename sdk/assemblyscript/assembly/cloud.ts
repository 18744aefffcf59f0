// This device's record in the balena cloud (ABI.md §3.5): its name, tags,
// variables and its fleet's facts, through the host, which holds the API
// key. Each function is one operation that plugin.toml must grant:
//
//   [cloud]
//   allow = ["device.read", "tags.read", "tags.set:location"]
//
// Using any of them adds the airlock_cloud_v1 import, and the host refuses
// the plugin at load unless its manifest has a [cloud] section.
//
//   import * as cloud from "../../sdk/assemblyscript/assembly/cloud";
//   const tags = cloud.tags();
//   if (tags.ok) airlock.info("location: " + tags.value.str("location"));

import { Errno, Record, Reply, Result, decodeRecord, finish, outLenPtr, scratchPtr, SCRATCH_CAP } from "./index";

// @ts-ignore: decorator
@external("airlock_cloud_v1", "call")
declare function rawCall(op: usize, opLen: u32, req: usize, reqLen: u32, out: usize, cap: u32, outLen: usize): u32;

// Operation names, as plugin.toml grants them.
export const OP_DEVICE_READ = "device.read";
export const OP_NAME_SET = "name.set";
export const OP_TAGS_READ = "tags.read";
export const OP_TAG_SET = "tags.set"; // granted per key: "tags.set:<key>"
export const OP_TAG_DELETE = "tags.delete"; // granted per key
export const OP_ENV_READ = "env.read";
export const OP_CONFIG_READ = "config.read";
export const OP_FLEET_READ = "fleet.read";

/** call runs any operation with a request record and returns the reply
 * record (an empty Record on failure). */
export function call(op: string, req: Record): Result<Record> {
  const o = String.UTF8.encode(op);
  const b = req.fields.length > 0 ? req.encode() : new Uint8Array(0);
  const r = finish(rawCall(changetype<usize>(o), o.byteLength, b.dataStart, b.length, scratchPtr(), SCRATCH_CAP, outLenPtr()));
  if (!r.ok) return new Result<Record>(new Record(), r.err, r.text);
  const rec = decodeRecord(r.data);
  if (rec == null) return new Result<Record>(new Record(), Errno.FAILED, "cloud " + op + ": unreadable reply: abi: malformed record");
  return new Result<Record>(rec, Errno.OK, "");
}

function run(op: string, req: Record): Reply {
  const r = call(op, req);
  return new Reply(r.err, Uint8Array.wrap(String.UTF8.encode(r.message)));
}

function scope(fleet: bool): Record { return new Record().push("scope", fleet ? "fleet" : "device"); }

/** device returns uuid and name fields. Grant: "device.read". */
export function device(): Result<Record> { return call(OP_DEVICE_READ, new Record()); }

/** setName renames this device. Grant: "name.set". */
export function setName(name: string): Reply { return run(OP_NAME_SET, new Record().push("name", name)); }

/** tags returns one field per tag. Grant: "tags.read". */
export function tags(): Result<Record> { return call(OP_TAGS_READ, new Record()); }

/** setTag creates or updates a tag. Grant: "tags.set:<key>". */
export function setTag(key: string, value: string): Reply {
  return run(OP_TAG_SET, new Record().push("key", key).push("value", value));
}

/** deleteTag deletes a tag; value is true if the device had it.
 * Grant: "tags.delete:<key>". */
export function deleteTag(key: string): Result<bool> {
  const r = call(OP_TAG_DELETE, new Record().push("key", key));
  return new Result<bool>(r.value.str("deleted") == "true", r.err, r.message);
}

/** env returns the device's (or its fleet's) environment variables.
 * Grant: "env.read". */
export function env(fleet: bool): Result<Record> { return call(OP_ENV_READ, scope(fleet)); }

/** config returns the device's (or its fleet's) config variables.
 * Grant: "config.read". */
export function config(fleet: bool): Result<Record> { return call(OP_CONFIG_READ, scope(fleet)); }

/** fleet returns id, name, slug, device_type and is_public. Grant: "fleet.read". */
export function fleet(): Result<Record> { return call(OP_FLEET_READ, new Record()); }
