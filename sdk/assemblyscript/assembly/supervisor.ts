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
export const OP_APP_READ = "app.read";
export const OP_VOLUMES_CLEANUP = "volumes.cleanup";
/** Scoped: "tags.set:<key>". */
export const OP_TAGS_SET = "tags.set";
/** Scoped: "logs.read:<service>". */
export const OP_LOGS_READ = "logs.read";
/** Scoped: "journal.read:<unit>". */
export const OP_JOURNAL_READ = "journal.read";

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

/** restartAppV1 is restartApp through the legacy POST /v1/restart. Grant: "app.restart". */
export function restartAppV1(force_: bool): Reply { return run(OP_APP_RESTART, force(force_).push("v1", "true")); }
/** purgeAppV1 is purgeApp through the legacy POST /v1/purge. Grant: "app.purge". */
export function purgeAppV1(force_: bool): Reply { return run(OP_APP_PURGE, force(force_).push("v1", "true")); }

function readApp(what: string): Result<Record> { return call(OP_APP_READ, new Record().push("what", what)); }

/** GET /v1/apps/:appId, for an app with one service; never its environment. */
export class App {
  appId: i32 = 0;
  commit: string = "";
  containerId: string = "";
  image: string = "";
  releaseId: i32 = 0;
}

/** appInfo reads the app (GET /v1/apps/:appId). Grant: "app.read". */
export function appInfo(): Result<App> {
  const r = readApp("app");
  const a = new App();
  const v = r.value;
  a.appId = I32.parseInt(v.str("app_id") || "0");
  a.commit = v.str("commit");
  a.containerId = v.str("container_id");
  a.image = v.str("image");
  a.releaseId = I32.parseInt(v.str("release_id") || "0");
  return new Result<App>(a, r.err, r.message);
}

/** apps reads every app's state (GET /v2/applications/state): a field "app"
 * per app name N, then N.app_id, N.app_uuid, N.commit, N.update_status,
 * N.service.<s> (status), N.image.<s>, and json. Grant: "app.read". */
export function apps(): Result<Record> { return readApp("apps"); }

/** appState reads the app's legacy state (GET /v2/applications/:appId/state):
 * commit and json. Grant: "app.read". */
export function appState(): Result<Record> { return readApp("state"); }

/** vpn reads GET /v2/device/vpn: fields enabled and connected ("true",
 * "false"). Grant: "device.read". */
export function vpn(): Result<Record> { return read("vpn"); }
/** deviceType is the device type (GET /v2/local/device-info). Grant: "device.read". */
export function deviceType(): Result<string> { return field("device-info", "device_type"); }
/** arch is the CPU architecture (GET /v2/local/device-info). Grant: "device.read". */
export function arch(): Result<string> { return field("device-info", "arch"); }
/** containerIds returns a record of "service.<name>" = container id
 * (GET /v2/containerId). Grant: "device.read". */
export function containerIds(): Result<Record> { return read("container-ids"); }

/** cleanupVolumes deletes the volumes no app references (GET
 * /v2/cleanup-volumes). Grant: "volumes.cleanup". */
export function cleanupVolumes(): Reply { return run(OP_VOLUMES_CLEANUP, new Record()); }

/** setTag sets one device tag (PATCH /v2/device/tags). Grant: "tags.set:<key>". */
export function setTag(key: string, value: string): Reply {
  return run(OP_TAGS_SET, new Record().push("key", key).push("value", value));
}

/** Bounds of one stream read; 0 takes the host's default (100 lines,
 * 64 KiB, 1000 ms; at most 1000 lines, 256 KiB, 10000 ms). */
export class Bounds {
  maxLines: u32 = 0;
  maxBytes: u32 = 0;
  waitMs: u32 = 0;
}

function addBounds(r: Record, b: Bounds): Record {
  if (b.maxLines > 0) r.push("max_lines", b.maxLines.toString());
  if (b.maxBytes > 0) r.push("max_bytes", b.maxBytes.toString());
  if (b.waitMs > 0) r.push("wait_ms", b.waitMs.toString());
  return r;
}

/** What one stream read returned. */
export class Lines {
  lines: string[] = [];
  /** Lines read but not delivered (other services', or past maxBytes). */
  dropped: i32 = 0;
  cut: i32 = 0;
  /** "eof", "lines", "bytes", "deadline" or "budget". */
  end: string = "";
}

function lines(r: Result<Record>): Result<Lines> {
  const l = new Lines();
  const v = r.value;
  const t = v.str("lines");
  if (t.length > 0) l.lines = t.substring(0, t.length - 1).split("\n");
  l.dropped = I32.parseInt(v.str("dropped") || "0");
  l.cut = I32.parseInt(v.str("cut") || "0");
  l.end = v.str("end");
  return new Result<Lines>(l, r.err, r.message);
}

/** readLogs reads one service's log lines (GET /v2/local/logs, local mode),
 * each the supervisor's JSON, until a bound. Grant: "logs.read:<service>". */
export function readLogs(service: string, b: Bounds): Result<Lines> {
  return lines(call(OP_LOGS_READ, addBounds(new Record().push("service", service), b)));
}

/** A query of the host journal (POST /v2/journal-logs). */
export class JournalQuery {
  unit: string = "";
  /** A syslog identifier; needs "journal.read:*". */
  container: string = "";
  count: u32 = 0;
  since: string = "";
  until: string = "";
  format: string = "";
  /** Wait for new entries until the read's bound. */
  follow: bool = false;
  bounds: Bounds = new Bounds();
}

/** readJournal reads host journal entries. Grant: "journal.read:<unit>". */
export function readJournal(q: JournalQuery): Result<Lines> {
  const r = new Record();
  if (q.unit.length > 0) r.push("unit", q.unit);
  if (q.container.length > 0) r.push("container", q.container);
  if (q.since.length > 0) r.push("since", q.since);
  if (q.until.length > 0) r.push("until", q.until);
  if (q.format.length > 0) r.push("format", q.format);
  if (q.count > 0) r.push("count", q.count.toString());
  if (q.follow) r.push("follow", "true");
  return lines(call(OP_JOURNAL_READ, addBounds(r, q.bounds)));
}
