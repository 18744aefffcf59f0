// The device supervisor (the balena Supervisor API, ABI.md §3.2), without
// its API key. Each function is one operation that plugin.toml must grant:
//
//   [supervisor]
//   allow = ["reboot", "device.read", "service.restart:main"]
//
// Using any of them adds the airlock_supervisor_v1 import, and the host
// refuses the plugin at load unless its manifest has a [supervisor]
// section. Actions return a Reply (ok, or the ABI's code and the host's
// message); reads return a Result whose value is set when ok:
//
//   import * as supervisor from "../../sdk/assemblyscript/assembly/supervisor";
//   const r = supervisor.reboot(false);
//   if (r.err == Errno.LOCKED) airlock.info("update lock held; asking again later");

import { Errno, Record, Reply, Result, decodeRecord, finish, outLenPtr, scratchPtr, SCRATCH_CAP } from "./index";

// @ts-ignore: decorator
@external("airlock_supervisor_v1", "call")
declare function rawCall(op: usize, opLen: u32, req: usize, reqLen: u32, out: usize, cap: u32, outLen: usize): u32;

// Operation names, as plugin.toml grants them.
export const OP_PING = "ping";
export const OP_BLINK = "blink";
export const OP_REBOOT = "reboot";
export const OP_SHUTDOWN = "shutdown";
export const OP_UPDATE = "update";
export const OP_APP_RESTART = "app.restart";
export const OP_APP_PURGE = "app.purge";
export const OP_SERVICE_RESTART = "service.restart";
export const OP_SERVICE_STOP = "service.stop";
export const OP_SERVICE_START = "service.start";
export const OP_DEVICE_READ = "device.read";
export const OP_HOSTNAME_SET = "hostname.set";

/** call runs any operation with a request record and returns the reply
 * record (an empty Record on failure). The typed functions are built on it. */
export function call(op: string, req: Record): Result<Record> {
  const o = String.UTF8.encode(op);
  const b = req.fields.length > 0 ? req.encode() : new Uint8Array(0);
  const r = finish(rawCall(changetype<usize>(o), o.byteLength, b.dataStart, b.length, scratchPtr(), SCRATCH_CAP, outLenPtr()));
  if (!r.ok) return new Result<Record>(new Record(), r.err, r.text);
  const rec = decodeRecord(r.data);
  if (rec == null) return new Result<Record>(new Record(), Errno.FAILED, "supervisor " + op + ": unreadable reply: abi: malformed record");
  return new Result<Record>(rec, Errno.OK, "");
}

function force(f: bool): Record { return new Record().push("force", f ? "true" : "false"); }

function run(op: string, req: Record): Reply {
  const r = call(op, req);
  return new Reply(r.err, Uint8Array.wrap(String.UTF8.encode(r.message)));
}

function read(what: string): Result<Record> { return call(OP_DEVICE_READ, new Record().push("what", what)); }

function field(what: string, key: string): Result<string> {
  const r = read(what);
  return new Result<string>(r.value.str(key), r.err, r.message);
}

function progress(r: Record): f64 {
  const v = r.get("download_progress");
  if (v == null || v.length == 0) return -1;
  const f = parseFloat(v);
  return isNaN(f) ? -1 : f;
}

/** ping checks that the supervisor answers (GET /ping). Grant: "ping". */
export function ping(): Reply { return run(OP_PING, new Record()); }
/** healthy asks GET /v1/healthy. Grant: "ping". */
export function healthy(): Result<bool> {
  const r = call(OP_PING, new Record().push("what", "healthy"));
  return new Result<bool>(r.value.str("healthy") == "true", r.err, r.message);
}
/** blink blinks the identification LED. Grant: "blink". */
export function blink(): Reply { return run(OP_BLINK, new Record()); }
/** reboot asks the supervisor to stop the services and reboot; an update
 * lock refuses it with Errno.LOCKED unless force. Grant: "reboot". */
export function reboot(force_: bool): Reply { return run(OP_REBOOT, force(force_)); }
/** shutdown is reboot's twin that powers off. Grant: "shutdown". */
export function shutdown(force_: bool): Reply { return run(OP_SHUTDOWN, force(force_)); }
/** update asks for an update check; value: whether one started. Grant: "update". */
export function update(force_: bool): Result<bool> {
  const r = call(OP_UPDATE, force(force_));
  return new Result<bool>(r.value.str("triggered") == "true", r.err, r.message);
}
/** restartApp restarts every service. Grant: "app.restart". */
export function restartApp(force_: bool): Reply { return run(OP_APP_RESTART, force(force_)); }
/** purgeApp deletes the app's volumes and restarts it. Grant: "app.purge". */
export function purgeApp(force_: bool): Reply { return run(OP_APP_PURGE, force(force_)); }
/** restartService restarts one service. Grant: "service.restart:<name>". */
export function restartService(name: string, force_: bool): Reply {
  return run(OP_SERVICE_RESTART, new Record().push("service", name).push("force", force_ ? "true" : "false"));
}
/** stopService stops one service. Grant: "service.stop:<name>". */
export function stopService(name: string, force_: bool): Reply {
  return run(OP_SERVICE_STOP, new Record().push("service", name).push("force", force_ ? "true" : "false"));
}
/** startService starts a stopped service. Grant: "service.start:<name>". */
export function startService(name: string, force_: bool): Reply {
  return run(OP_SERVICE_START, new Record().push("service", name).push("force", force_ ? "true" : "false"));
}
/** setHostname sets the host OS's hostname; "" restores the default.
 * Grant: "hostname.set". */
export function setHostname(hostname: string, force_: bool): Reply {
  return run(OP_HOSTNAME_SET, new Record().push("hostname", hostname).push("force", force_ ? "true" : "false"));
}

/** GET /v1/device. */
export class DeviceInfo {
  status: string = "";
  commit: string = "";
  osVersion: string = "";
  supervisorVersion: string = "";
  ipAddresses: string[] = [];
  macAddresses: string[] = [];
  apiPort: i32 = 0;
  updatePending: bool = false;
  updateDownloaded: bool = false;
  updateFailed: bool = false;
  /** A percentage, or -1 when nothing is downloading. */
  downloadProgress: f64 = -1;
  /** The supervisor's whole reply. */
  json: string = "";
}

function words(s: string): string[] {
  const out: string[] = [];
  const parts = s.split(" ");
  for (let i = 0; i < parts.length; i++) if (parts[i].length > 0) out.push(parts[i]);
  return out;
}

/** device reads GET /v1/device. Grant: "device.read". */
export function device(): Result<DeviceInfo> {
  const r = read("device");
  const d = new DeviceInfo();
  const v = r.value;
  d.status = v.str("status");
  d.commit = v.str("commit");
  d.osVersion = v.str("os_version");
  d.supervisorVersion = v.str("supervisor_version");
  d.ipAddresses = words(v.str("ip_address"));
  d.macAddresses = words(v.str("mac_address"));
  d.apiPort = v.str("api_port").length > 0 ? I32.parseInt(v.str("api_port")) : 0;
  d.updatePending = v.str("update_pending") == "true";
  d.updateDownloaded = v.str("update_downloaded") == "true";
  d.updateFailed = v.str("update_failed") == "true";
  d.downloadProgress = progress(v);
  d.json = v.str("json");
  return new Result<DeviceInfo>(d, r.err, r.message);
}

/** One service's container status. */
export class ServiceStatus {
  constructor(public name: string, public status: string) {}
}

/** GET /v2/state/status. */
export class Status {
  status: string = "";
  appState: string = "";
  release: string = "";
  /** Each service, in the order the host sent them. */
  services: ServiceStatus[] = [];
  downloadProgress: f64 = -1;
  json: string = "";
  /** service returns a service's status, or null. */
  service(name: string): string | null {
    for (let i = 0; i < this.services.length; i++) if (this.services[i].name == name) return this.services[i].status;
    return null;
  }
}

/** state reads the application's state. Grant: "device.read". */
export function state(): Result<Status> {
  const r = read("status");
  const s = new Status();
  const v = r.value;
  s.status = v.str("status");
  s.appState = v.str("app_state");
  s.release = v.str("release");
  s.downloadProgress = progress(v);
  s.json = v.str("json");
  for (let i = 0; i < v.fields.length; i++) {
    const k = v.fields[i].key;
    if (k.startsWith("service.")) s.services.push(new ServiceStatus(k.substring(8), v.fields[i].text));
  }
  return new Result<Status>(s, r.err, r.message);
}

/** version is the supervisor's version. Grant: "device.read". */
export function version(): Result<string> { return field("version", "version"); }
/** deviceName is the device's name in the fleet. Grant: "device.read". */
export function deviceName(): Result<string> { return field("name", "name"); }
/** hostname is the host OS's hostname. Grant: "device.read". */
export function hostname(): Result<string> { return field("host-config", "hostname"); }
/** tags returns a record of "tag.<name>" fields. Grant: "device.read". */
export function tags(): Result<Record> { return read("tags"); }
