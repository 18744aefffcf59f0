// The AssemblyScript SDK for airlock plugins (ABI v1, abi/ABI.md).
//
// A plugin registers handlers in its top-level code, which runs from
// `_initialize` (asconfig.json sets --exportStart _initialize), and
// re-exports the entry points the host calls:
//
//   import * as airlock from "../../sdk/assemblyscript/assembly/index";
//   export { airlock_abi_v1, airlock_on_event } from "../../sdk/assemblyscript/assembly/index";
//
//   airlock.onStart((): string | null => { airlock.info("hello"); return null; });
//
// A handler returns null when it handled the event, or a message when it
// failed; the SDK logs "<kind> handler: <message>" as the Go SDK does.
// AssemblyScript has no exceptions, so host calls return an errno (or a
// Reply holding one) instead of throwing; nothing the host refuses traps.

export { env, getenv, readFile, readDir, writeFile, readText, writeText } from "./wasi";
import { randomSeed } from "./wasi";

// ---- raw imports (ABI.md §3.1) ----------------------------------------------

export namespace sys {
  // @ts-ignore: decorator
  @external("airlock_v1", "log")
  export declare function log(level: i32, msg: usize, len: u32): u32;
  // @ts-ignore: decorator
  @external("airlock_v1", "log_fields")
  export declare function log_fields(level: i32, msg: usize, len: u32, fields: usize, fieldsLen: u32): u32;
  // @ts-ignore: decorator
  @external("airlock_v1", "config_get")
  export declare function config_get(key: usize, keyLen: u32, out: usize, cap: u32, outLen: usize): u32;
  // @ts-ignore: decorator
  @external("airlock_v1", "clock_now")
  export declare function clock_now(out: usize): u32;
  // @ts-ignore: decorator
  @external("airlock_v1", "sleep")
  export declare function sleep(ns: i64): u32;
  // @ts-ignore: decorator
  @external("airlock_v1", "deadline")
  export declare function deadline(out: usize): u32;
  // @ts-ignore: decorator
  @external("airlock_v1", "result_read")
  export declare function result_read(out: usize, cap: u32, outLen: usize): u32;
}

// ---- errors (ABI.md §4) -----------------------------------------------------

export namespace Errno {
  export const OK: u32 = 0;
  export const DENIED: u32 = 1;
  export const INVALID: u32 = 2;
  export const NOT_FOUND: u32 = 3;
  export const UNAVAILABLE: u32 = 4;
  export const TIMEOUT: u32 = 5;
  export const TOO_LARGE: u32 = 6;
  export const LOCKED: u32 = 7;
  export const FAILED: u32 = 8;
  export const BUSY: u32 = 9;
  export const FAULT: u32 = 10;
  export const NO_RESULT: u32 = 11;
}

const errnoNames: string[] = [
  "ok", "denied", "invalid", "not_found", "unavailable", "timeout",
  "too_large", "locked", "failed", "busy", "fault", "no_result",
];

/** errnoName returns the errno's name as ABI.md spells it; an unknown code
 * reads as "failed", as ABI.md says to treat it. */
export function errnoName(e: u32): string {
  return e < <u32>errnoNames.length ? errnoNames[e] : "failed";
}

// ---- logs -------------------------------------------------------------------

export namespace Level {
  export const DEBUG: i32 = -4;
  export const INFO: i32 = 0;
  export const WARN: i32 = 4;
  export const ERROR: i32 = 8;
}

/** log writes msg at level. fields, if given, are key/value pairs that
 * the host logs as attributes of the line (at most 32; keys of letters,
 * digits, '_', '.' and '-'), as the Go SDK's Log does:
 * `info("tick", new Record().push("timer", name).push("count", n.toString()))`. */
export function log(level: i32, msg: string, fields: Record | null = null): void {
  const b = String.UTF8.encode(msg);
  if (fields == null || fields.fields.length == 0) {
    sys.log(level, changetype<usize>(b), b.byteLength);
    return;
  }
  const f = fields.encode();
  sys.log_fields(level, changetype<usize>(b), b.byteLength, changetype<usize>(f.buffer) + f.byteOffset, f.length);
}
export function debug(msg: string, fields: Record | null = null): void { log(Level.DEBUG, msg, fields); }
export function info(msg: string, fields: Record | null = null): void { log(Level.INFO, msg, fields); }
export function warn(msg: string, fields: Record | null = null): void { log(Level.WARN, msg, fields); }
export function error(msg: string, fields: Record | null = null): void { log(Level.ERROR, msg, fields); }

// ---- results ----------------------------------------------------------------

/** The size of the SDK's scratch buffer; larger results use result_read. */
export const SCRATCH_CAP: u32 = 4096;
const scratch = memory.data(<i32>SCRATCH_CAP);
const outLen = memory.data(8);

/** What a host call that returns data gave back: on success (err == 0) its
 * value, otherwise the host's message. */
export class Reply {
  constructor(public err: u32, public data: Uint8Array) {}
  get ok(): bool { return this.err == Errno.OK; }
  /** data as UTF-8 text. */
  get text(): string { return String.UTF8.decode(this.data.buffer); }
  /** "name: message", as the Go SDK's HostError prints. */
  toString(): string {
    const m = this.text;
    return m.length > 0 ? errnoName(this.err) + ": " + m : errnoName(this.err);
  }
}

/** scratchPtr, outLenPtr and finish implement the result convention for
 * capability wrappers: call the raw import with
 * (scratchPtr(), SCRATCH_CAP, outLenPtr()), then pass its errno to finish,
 * which copies the result or fetches a large one with result_read. */
export function scratchPtr(): usize { return scratch; }
export function outLenPtr(): usize { return outLen; }
export function finish(err: u32): Reply {
  const n: u32 = err == Errno.FAULT ? 0 : load<u32>(outLen);
  const data = new Uint8Array(<i32>n);
  if (n <= SCRATCH_CAP) {
    memory.copy(changetype<usize>(data.buffer), scratch, n);
  } else {
    const e = sys.result_read(changetype<usize>(data.buffer), n, outLen);
    if (e != 0) return new Reply(e, new Uint8Array(0));
  }
  return new Reply(err, data);
}

/** What a typed host call returned: its value when ok (err == 0), else the
 * ABI's code and the host's message (value is then a default). */
export class Result<T> {
  /** The D-Bus error name of an error from a D-Bus peer
   * ("org.freedesktop.systemd1.NoSuchUnit"), which the host sends as a
   * field of its own (ABI.md §3.3.3); "" otherwise. */
  errorName: string = "";
  constructor(public value: T, public err: u32, public message: string) {}
  get ok(): bool { return this.err == Errno.OK; }
  /** "ok", or "name: message" as Reply prints it. */
  toString(): string {
    if (this.err == Errno.OK) return "ok";
    return this.message.length > 0 ? errnoName(this.err) + ": " + this.message : errnoName(this.err);
  }
}

// ---- base functions -----------------------------------------------------------

/** config returns the value of key in the manifest's [config]: a Reply
 * with err NOT_FOUND and the host's message when it is absent. */
export function config(key: string): Reply {
  const k = String.UTF8.encode(key);
  return finish(sys.config_get(changetype<usize>(k), k.byteLength, scratch, SCRATCH_CAP, outLen));
}

/** configString returns the value of key, or def. */
export function configString(key: string, def: string): string {
  const r = config(key);
  return r.ok ? r.text : def;
}

/** nowNs returns the host's wall clock in Unix nanoseconds. */
export function nowNs(): u64 {
  sys.clock_now(outLen);
  return load<u64>(outLen);
}

/** sleepNs pauses the handler, but never past its deadline: it returns
 * Errno.TIMEOUT when the deadline cut it short, INVALID when ns < 0. */
export function sleepNs(ns: i64): u32 { return sys.sleep(ns); }
export function sleepMs(ms: i64): u32 { return sys.sleep(ms * 1000000); }

/** deadlineNs returns the nanoseconds left before the handler is stopped. */
export function deadlineNs(): u64 {
  sys.deadline(outLen);
  return load<u64>(outLen);
}

// ---- records (ABI.md §2) ------------------------------------------------------

export const MAX_RECORD_FIELDS: u32 = 4096;

export class Field {
  constructor(public key: string, public value: Uint8Array) {}
  get text(): string { return String.UTF8.decode(this.value.buffer); }
}

export class Record {
  fields: Field[] = [];
  /** get returns the first value named key as text, or null. */
  get(key: string): string | null {
    for (let i = 0; i < this.fields.length; i++) {
      if (this.fields[i].key == key) return this.fields[i].text;
    }
    return null;
  }
  /** str is get with "" for an absent field. */
  str(key: string): string {
    const v = this.get(key);
    return v == null ? "" : v;
  }
  getBytes(key: string): Uint8Array | null {
    for (let i = 0; i < this.fields.length; i++) {
      if (this.fields[i].key == key) return this.fields[i].value;
    }
    return null;
  }
  push(key: string, value: string): Record {
    this.fields.push(new Field(key, Uint8Array.wrap(String.UTF8.encode(value))));
    return this;
  }
  pushBytes(key: string, value: Uint8Array): Record {
    this.fields.push(new Field(key, value));
    return this;
  }
  encode(): Uint8Array {
    let size = 4;
    const keys = new Array<ArrayBuffer>(this.fields.length);
    for (let i = 0; i < this.fields.length; i++) {
      keys[i] = String.UTF8.encode(this.fields[i].key);
      size += 8 + keys[i].byteLength + this.fields[i].value.length;
    }
    const out = new Uint8Array(size);
    const p = changetype<usize>(out.buffer);
    store<u32>(p, this.fields.length);
    let off: usize = 4;
    for (let i = 0; i < this.fields.length; i++) {
      store<u32>(p + off, keys[i].byteLength);
      memory.copy(p + off + 4, changetype<usize>(keys[i]), keys[i].byteLength);
      off += 4 + keys[i].byteLength;
      const v = this.fields[i].value;
      store<u32>(p + off, v.length);
      memory.copy(p + off + 4, changetype<usize>(v.buffer) + v.byteOffset, v.length);
      off += 4 + v.length;
    }
    return out;
  }
}

/** decodeRecord decodes b, or returns null for a malformed record. */
export function decodeRecord(b: Uint8Array): Record | null {
  const r = new Record();
  const n = <u32>b.length;
  if (n == 0) return r;
  if (n < 4) return null;
  const p = changetype<usize>(b.buffer) + b.byteOffset;
  const count = load<u32>(p);
  if (count > MAX_RECORD_FIELDS || <u64>count * 8 > <u64>(n - 4)) return null;
  let off: u32 = 4;
  for (let i: u32 = 0; i < count; i++) {
    if (n - off < 4) return null;
    const kl = load<u32>(p + off);
    off += 4;
    if (kl > n - off) return null;
    const key = String.UTF8.decodeUnsafe(p + off, kl);
    off += kl;
    if (n - off < 4) return null;
    const vl = load<u32>(p + off);
    off += 4;
    if (vl > n - off) return null;
    r.fields.push(new Field(key, b.slice(<i32>off, <i32>(off + vl))));
    off += vl;
  }
  if (off != n) return null;
  return r;
}

// ---- events (ABI.md §5) -------------------------------------------------------

export namespace EventKind {
  export const START: u32 = 1;
  export const STOP: u32 = 2;
  export const TIMER: u32 = 3;
  export const UDEV: u32 = 4;
  export const DBUS_SIGNAL: u32 = 5;
  export const DROPPED: u32 = 6;
  export const MOUNT: u32 = 7;
}

const eventNames: string[] = ["", "start", "stop", "timer", "udev", "dbus_signal", "dropped", "mount"];

/** eventName returns "start", "timer", ..., or "event(N)". */
export function eventName(kind: u32): string {
  return kind >= 1 && kind < <u32>eventNames.length ? eventNames[kind] : "event(" + kind.toString() + ")";
}

/** Any event, as delivered. */
export class Event {
  constructor(public kind: u32, public fields: Record) {}
}

/** A [[trigger.timer]] firing. */
export class Timer {
  name: string = "";
  /** When it was due, RFC 3339 with nanoseconds. */
  time: string = "";
  /** The same in Unix nanoseconds (0 if it does not parse). */
  timeNs: i64 = 0;
}

/** Events that did not reach the plugin (abi/ABI.md §5). count were lost:
 * never delivered, to a full queue or over limits.events_per_second
 * (rateLimited of them). coalesced were replaced in the queue by a newer
 * event of the same source (a timer's tick, a device's udev change), which
 * is delivered; they are not in count. byKind and coalescedByKind split the
 * two by event kind name ("timer", "udev", "dbus_signal", "mount"). A host
 * older than these fields sends only count and reason. */
export class Dropped {
  count: u64 = 0;
  /** "queue full", "rate limit", both, or "coalesced". */
  reason: string = "";
  rateLimited: u64 = 0;
  coalesced: u64 = 0;
  byKind: Map<string, u64> = new Map<string, u64>();
  coalescedByKind: Map<string, u64> = new Map<string, u64>();
}

/** A device event from a [[trigger.udev]] rule, under udev's names. */
export class UEvent {
  action: string = "";
  subsystem: string = "";
  devtype: string = "";
  devpath: string = "";
  devname: string = "";
  /** Every property, the above included. */
  props: Record = new Record();
  prop(key: string): string | null { return this.props.get(key); }
  /** The label as written on the device: ID_FS_LABEL_ENC decoded. */
  get label(): string {
    const enc = this.props.getBytes("ID_FS_LABEL_ENC");
    if (enc == null) return this.props.str("ID_FS_LABEL");
    return String.UTF8.decode(udevUnescape(enc).buffer);
  }
  get uuid(): string { return this.props.str("ID_FS_UUID"); }
  get fstype(): string { return this.props.str("ID_FS_TYPE"); }
  /** The kernel's sequence number, or 0 for a synthetic event. */
  get seqnum(): u64 { return parseU64(this.props.str("SEQNUM")); }
  /** Whether the device was present before the plugin loaded. */
  get coldplug(): bool { return this.props.str("AIRLOCK_SYNTH") == "coldplug"; }
}

/** The host changed one of the plugin's mounts on its own: a device pulled
 * out while mounted was detached (action "unmounted"). */
export class MountEvent {
  action: string = "";
  target: string = "";
  source: string = "";
  device: string = "";
  /** "device removed", "loop device detached (losetup -d)". */
  reason: string = "";
}

function hexval(c: u8): i32 {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** udevUnescape undoes udev's \xNN escaping of *_ENC properties. */
export function udevUnescape(s: Uint8Array): Uint8Array {
  const out = new Uint8Array(s.length);
  let j = 0;
  for (let i = 0; i < s.length; i++) {
    if (s[i] == 92 && i + 3 < s.length && s[i + 1] == 120 && hexval(s[i + 2]) >= 0 && hexval(s[i + 3]) >= 0) {
      out[j++] = <u8>(hexval(s[i + 2]) << 4 | hexval(s[i + 3]));
      i += 3;
      continue;
    }
    out[j++] = s[i];
  }
  return out.slice(0, j);
}

function parseU64(s: string): u64 {
  let v: u64 = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return 0;
    v = v * 10 + <u64>(c - 48);
  }
  return v;
}

function digits(s: string, from: i32, n: i32): i64 {
  let v: i64 = 0;
  for (let i = from; i < from + n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + <i64>(c - 48);
  }
  return v;
}

function daysFromCivil(y: i64, m: i64, d: i64): i64 {
  if (m <= 2) y -= 1;
  const era = (y >= 0 ? y : y - 399) / 400;
  const yoe = y - era * 400;
  const doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/** parseRFC3339 parses "2006-01-02T15:04:05.999999999Z07:00" to Unix
 * nanoseconds, or returns 0. */
export function parseRFC3339(s: string): i64 {
  if (s.length < 20 || s.charAt(4) != "-" || s.charAt(7) != "-" || (s.charAt(10) != "T" && s.charAt(10) != "t") ||
      s.charAt(13) != ":" || s.charAt(16) != ":") return 0;
  const y = digits(s, 0, 4), mo = digits(s, 5, 2), d = digits(s, 8, 2);
  const h = digits(s, 11, 2), mi = digits(s, 14, 2), sec = digits(s, 17, 2);
  if (y < 0 || mo < 0 || d < 0 || h < 0 || mi < 0 || sec < 0) return 0;
  let p = 19;
  let frac: i64 = 0;
  if (s.charAt(p) == ".") {
    p++;
    let n = 0;
    while (p < s.length && s.charCodeAt(p) >= 48 && s.charCodeAt(p) <= 57) {
      if (n < 9) frac = frac * 10 + <i64>(s.charCodeAt(p) - 48);
      n++;
      p++;
    }
    for (; n < 9; n++) frac *= 10;
  }
  const rest = s.substring(p);
  let offset: i64 = 0;
  if (rest == "Z" || rest == "z") {
    offset = 0;
  } else if (rest.length == 6 && (rest.charAt(0) == "+" || rest.charAt(0) == "-") && rest.charAt(3) == ":") {
    const oh = digits(rest, 1, 2), om = digits(rest, 4, 2);
    if (oh < 0 || om < 0) return 0;
    offset = oh * 3600 + om * 60;
    if (rest.charAt(0) == "-") offset = -offset;
  } else {
    return 0;
  }
  const secs = daysFromCivil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
  return secs * 1000000000 + frac;
}

// Handlers by kind. AssemblyScript has no closures, so the typed handlers
// are kept in their own slots and called by kind.
const MAX_KIND: u32 = 32;
const generic = new Array<((e: Event) => string | null) | null>(<i32>MAX_KIND);
let startFn: (() => string | null) | null = null;
let stopFn: (() => string | null) | null = null;
let timerFn: ((t: Timer) => string | null) | null = null;
let droppedFn: ((d: Dropped) => string | null) | null = null;
let udevFn: ((u: UEvent) => string | null) | null = null;
let mountFn: ((m: MountEvent) => string | null) | null = null;

/** on registers h for every event of kind (below 32) that has no typed
 * handler; a later registration replaces an earlier one. */
export function on(kind: u32, h: (e: Event) => string | null): void {
  if (kind < MAX_KIND) generic[kind] = h;
}
/** onStart runs when the instance starts (and after each restart). */
export function onStart(h: () => string | null): void { startFn = h; }
/** onStop runs once before the instance closes, after the queue drained. */
export function onStop(h: () => string | null): void { stopFn = h; }
/** onTimer runs when a [[trigger.timer]] fires. */
export function onTimer(h: (t: Timer) => string | null): void { timerFn = h; }
/** onDropped runs when events were lost or coalesced, before the next event. */
export function onDropped(h: (d: Dropped) => string | null): void { droppedFn = h; }
/** onUdev runs for each device event the [[trigger.udev]] rules match. */
export function onUdev(h: (u: UEvent) => string | null): void { udevFn = h; }
/** onMount runs when the host changes one of the plugin's mounts. */
export function onMount(h: (m: MountEvent) => string | null): void { mountFn = h; }

function hasHandler(kind: u32): bool {
  if (kind == EventKind.START) return startFn != null;
  if (kind == EventKind.STOP) return stopFn != null;
  if (kind == EventKind.TIMER) return timerFn != null;
  if (kind == EventKind.DROPPED) return droppedFn != null;
  if (kind == EventKind.UDEV) return udevFn != null;
  if (kind == EventKind.MOUNT) return mountFn != null;
  return kind < MAX_KIND && generic[kind] != null;
}

function run(kind: u32, r: Record): string | null {
  if (kind == EventKind.START) return startFn!();
  if (kind == EventKind.STOP) return stopFn!();
  if (kind == EventKind.TIMER) {
    const t = new Timer();
    t.name = r.str("name");
    t.time = r.str("time");
    t.timeNs = parseRFC3339(t.time);
    return timerFn!(t);
  }
  if (kind == EventKind.DROPPED) {
    const d = new Dropped();
    d.count = parseU64(r.str("count"));
    d.reason = r.str("reason");
    d.rateLimited = parseU64(r.str("rate_limited"));
    d.coalesced = parseU64(r.str("coalesced"));
    for (let i = 0; i < r.fields.length; i++) {
      const k = r.fields[i].key;
      if (k.startsWith("dropped.")) d.byKind.set(k.slice(8), parseU64(r.fields[i].text));
      else if (k.startsWith("coalesced.")) d.coalescedByKind.set(k.slice(10), parseU64(r.fields[i].text));
    }
    return droppedFn!(d);
  }
  if (kind == EventKind.UDEV) {
    const u = new UEvent();
    u.action = r.str("ACTION");
    u.subsystem = r.str("SUBSYSTEM");
    u.devtype = r.str("DEVTYPE");
    u.devpath = r.str("DEVPATH");
    u.devname = r.str("DEVNAME");
    u.props = r;
    return udevFn!(u);
  }
  if (kind == EventKind.MOUNT) {
    const m = new MountEvent();
    m.action = r.str("action");
    m.target = r.str("target");
    m.source = r.str("source");
    m.device = r.str("device");
    m.reason = r.str("reason");
    return mountFn!(m);
  }
  return generic[kind]!(new Event(kind, r));
}

/** The version marker: the host refuses a module without it. Re-export it
 * from the plugin's entry file. */
export function airlock_abi_v1(): void {}

/** The event entry point. Re-export it from the plugin's entry file. */
export function airlock_on_event(kind: u32, len: u32): i32 {
  if (!hasHandler(kind)) {
    if (kind == EventKind.DROPPED) warn("events dropped and no OnDropped handler");
    return 0;
  }
  let r = new Record();
  if (len > 0) {
    const buf = new Uint8Array(<i32>len);
    const e = sys.result_read(changetype<usize>(buf.buffer), len, outLen);
    if (e != 0) {
      error("reading event payload: " + errnoName(e) + ": result_read");
      return 1;
    }
    const d = decodeRecord(buf);
    if (d == null) {
      error("decoding event payload: abi: malformed record");
      return 1;
    }
    r = d;
  }
  const failed = run(kind, r);
  if (failed != null) {
    error(eventName(kind) + " handler: " + failed);
    return 1;
  }
  return 0;
}

// ---- shims for AssemblyScript's own imports (asconfig.json "use") -------------

/** abort is what a failed assertion or a runtime error calls: it logs the
 * message and traps, which ends the instance (the host restarts it). */
// @ts-ignore: decorator
@global export function airlockAbort(msg: string | null, file: string | null, line: u32, col: u32): void {
  const m = msg == null ? "abort" : msg;
  const f = file == null ? "?" : file;
  error("abort: " + m + " at " + f + ":" + line.toString() + ":" + col.toString());
  unreachable();
}

/** trace logs at debug level. */
// @ts-ignore: decorator
@global export function airlockTrace(msg: string, n: i32 = 0, a0: f64 = 0, a1: f64 = 0, a2: f64 = 0, a3: f64 = 0, a4: f64 = 0): void {
  let s = "trace: " + msg;
  const a: f64[] = [a0, a1, a2, a3, a4];
  for (let i = 0; i < n && i < 5; i++) s += (i == 0 ? " " : ", ") + a[i].toString();
  debug(s);
}

/** seed seeds Math.random from the host's randomness. */
// @ts-ignore: decorator
@global export function airlockSeed(): f64 {
  return randomSeed();
}
