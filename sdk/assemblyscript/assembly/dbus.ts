// The system bus (ABI.md §3.3), as the plugin's [[dbus.call]] and
// [[dbus.property]] rules allow it. It reads like the Go SDK:
//
//   import * as dbus from "../../sdk/assemblyscript/assembly/dbus";
//   const systemd = new dbus.DBusObject("org.freedesktop.systemd1", "/org/freedesktop/systemd1");
//   const r = systemd.call("org.freedesktop.systemd1.Manager.StopUnit",
//     [dbus.Value.str("bluetooth.service"), dbus.Value.str("replace")]);
//   if (r.ok) airlock.info("job " + r.value.body[0].toString());
//
// A call the manifest does not allow is Errno.DENIED with a message naming
// what is missing; the bus being down UNAVAILABLE; past the deadline
// TIMEOUT. An error from the peer is NOT_FOUND, INVALID or FAILED with a
// message that starts with the D-Bus error name, which errorName returns. Values
// cross the ABI in the encoding of §3.3.2 (encode, decode); Value's
// toString writes the text form that the conformance suite compares.

import { Errno, Event, EventKind, Record, Result, decodeRecord, finish, on, outLenPtr, scratchPtr, SCRATCH_CAP } from "./index";

// @ts-ignore: decorator
@external("airlock_dbus_v1", "call")
declare function rawCall(req: usize, reqLen: u32, out: usize, cap: u32, outLen: usize): u32;
// @ts-ignore: decorator
@external("airlock_dbus_v1", "get_property")
declare function rawGetProperty(req: usize, reqLen: u32, out: usize, cap: u32, outLen: usize): u32;
// @ts-ignore: decorator
@external("airlock_dbus_v1", "get_all_properties")
declare function rawGetAllProperties(req: usize, reqLen: u32, out: usize, cap: u32, outLen: usize): u32;
// @ts-ignore: decorator
@external("airlock_dbus_v1", "set_property")
declare function rawSetProperty(req: usize, reqLen: u32, out: usize, cap: u32, outLen: usize): u32;

const BASIC = "ybnqiuxtdsog";

/** A D-Bus value: its complete signature and, by its first character, a
 * number (y b n q i u x t as num, d as dbl), a text (s o g) or items (an
 * array's elements; a dict's entries, each a "{" value holding key and
 * value; a struct's fields; a variant's one value). */
export class Value {
  num: i64 = 0;
  dbl: f64 = 0;
  text: string = "";
  items: Value[] = [];
  constructor(public signature: string) {}

  get type(): string { return this.signature.charAt(0); }
  get isDict(): bool { return this.signature.length > 1 && this.signature.charAt(1) == "{"; }

  static byte(v: u8): Value { const x = new Value("y"); x.num = <i64>v; return x; }
  static boolean(v: bool): Value { const x = new Value("b"); x.num = v ? 1 : 0; return x; }
  static int16(v: i16): Value { const x = new Value("n"); x.num = <i64>v; return x; }
  static uint16(v: u16): Value { const x = new Value("q"); x.num = <i64>v; return x; }
  static int32(v: i32): Value { const x = new Value("i"); x.num = <i64>v; return x; }
  static uint32(v: u32): Value { const x = new Value("u"); x.num = <i64>v; return x; }
  static int64(v: i64): Value { const x = new Value("x"); x.num = v; return x; }
  static uint64(v: u64): Value { const x = new Value("t"); x.num = <i64>v; return x; }
  static double(v: f64): Value { const x = new Value("d"); x.dbl = v; return x; }
  static str(s: string): Value { const x = new Value("s"); x.text = s; return x; }
  static objectPath(s: string): Value { const x = new Value("o"); x.text = s; return x; }
  static sig(s: string): Value { const x = new Value("g"); x.text = s; return x; }
  /** array of elemSig elements. */
  static array(elemSig: string, items: Value[]): Value { const x = new Value("a" + elemSig); x.items = items; return x; }
  /** dict a{keySig valueSig} of entries made with entry. */
  static dict(keySig: string, valueSig: string, entries: Value[]): Value {
    const x = new Value("a{" + keySig + valueSig + "}");
    x.items = entries;
    return x;
  }
  static entry(k: Value, v: Value): Value {
    const x = new Value("{" + k.signature + v.signature + "}");
    x.items = [k, v];
    return x;
  }
  static struct(fields: Value[]): Value {
    let s = "(";
    for (let i = 0; i < fields.length; i++) s += fields[i].signature;
    const x = new Value(s + ")");
    x.items = fields;
    return x;
  }
  static variant(v: Value): Value { const x = new Value("v"); x.items = [v]; return x; }

  /** inner is the value inside a variant (through nested ones), or this. */
  get inner(): Value { return this.type == "v" ? this.items[0].inner : this; }
  /** get looks up a string key in a dict, or returns null. */
  get(key: string): Value | null {
    for (let i = 0; i < this.items.length; i++) {
      const e = this.items[i];
      if (e.items.length == 2 && e.items[0].text == key) return e.items[1];
    }
    return null;
  }

  /** The text form: numbers in decimal, true/false, "string", o"/path",
   * g"sig", [a, b], {k: v}, (a, b), <sig value>. */
  toString(): string {
    const t = this.type;
    if (t == "b") return this.num != 0 ? "true" : "false";
    if (t == "t") return (<u64>this.num).toString();
    if (t == "y" || t == "n" || t == "q" || t == "i" || t == "u" || t == "x") return this.num.toString();
    if (t == "d") return this.dbl.toString();
    if (t == "s") return "\"" + this.text + "\"";
    if (t == "o") return "o\"" + this.text + "\"";
    if (t == "g") return "g\"" + this.text + "\"";
    if (t == "v") return "<" + this.items[0].signature + " " + this.items[0].toString() + ">";
    if (t == "{") return this.items[0].toString() + ": " + this.items[1].toString();
    const parts: string[] = [];
    for (let i = 0; i < this.items.length; i++) parts.push(this.items[i].toString());
    if (t == "(") return "(" + parts.join(", ") + ")";
    if (this.isDict) return "{" + parts.join(", ") + "}";
    return "[" + parts.join(", ") + "]";
  }
}

/** text writes values in the text form, separated by ", ". */
export function text(values: Value[]): string {
  const parts: string[] = [];
  for (let i = 0; i < values.length; i++) parts.push(values[i].toString());
  return parts.join(", ");
}

// ---- encoding (ABI.md §3.3.2) ----------------------------------------------

class Writer {
  b: u8[] = [];
  err: string = "";
  u32(v: u32): void { for (let i = 0; i < 4; i++) this.b.push(<u8>(v >> (8 * i))); }
  u64(v: u64): void { for (let i = 0; i < 8; i++) this.b.push(<u8>(v >> (8 * <u64>i))); }
  str(s: string): void {
    const e = Uint8Array.wrap(String.UTF8.encode(s));
    this.u32(e.length);
    for (let i = 0; i < e.length; i++) this.b.push(e[i]);
  }
  value(v: Value, depth: i32): void {
    if (depth > 64) { this.err = "dbus: value nested too deep"; return; }
    const t = v.type;
    if (t == "y" || t == "b") this.b.push(<u8>v.num);
    else if (t == "n" || t == "q") { this.b.push(<u8>v.num); this.b.push(<u8>(v.num >> 8)); }
    else if (t == "i" || t == "u") this.u32(<u32>v.num);
    else if (t == "x" || t == "t") this.u64(<u64>v.num);
    else if (t == "d") this.u64(reinterpret<u64>(v.dbl));
    else if (t == "s" || t == "o" || t == "g") this.str(v.text);
    else if (t == "v") { this.str(v.items[0].signature); this.value(v.items[0], depth + 1); }
    else if (t == "(" || t == "{") { for (let i = 0; i < v.items.length; i++) this.value(v.items[i], depth + 1); }
    else if (t == "a") {
      const elem = v.isDict ? "{" + v.signature.substring(2) : v.signature.substring(1);
      this.u32(v.items.length);
      for (let i = 0; i < v.items.length; i++) {
        if (v.items[i].signature != elem) { this.err = "dbus: array of " + elem + " holds a " + v.items[i].signature; return; }
        this.value(v.items[i], depth + 1);
      }
    } else this.err = "dbus: unknown type " + t;
  }
}

/** What encode returns: the signature and body, or an error message. */
export class Encoded {
  constructor(public signature: string, public body: Uint8Array, public err: string) {}
}

/** encode encodes values and returns their signature and body. */
export function encode(values: Value[]): Encoded {
  const w = new Writer();
  let sig = "";
  for (let i = 0; i < values.length && w.err.length == 0; i++) {
    sig += values[i].signature;
    w.value(values[i], 0);
  }
  const out = new Uint8Array(w.b.length);
  for (let i = 0; i < w.b.length; i++) out[i] = w.b[i];
  return new Encoded(sig, out, w.err);
}

/** typeLen returns the length of the complete type that starts sig at i,
 * or -1. */
function typeLen(sig: string, i: i32, depth: i32): i32 {
  if (depth > 64 || i >= sig.length) return -1;
  const c = sig.charAt(i);
  if (c == "a") {
    if (sig.charAt(i + 1) == "{") {
      if (i + 2 >= sig.length || BASIC.indexOf(sig.charAt(i + 2)) < 0) return -1;
      const k = 1;
      const v = typeLen(sig, i + 2 + k, depth + 1);
      if (v < 0 || sig.charAt(i + 2 + k + v) != "}") return -1;
      return 3 + k + v;
    }
    const e = typeLen(sig, i + 1, depth + 1);
    return e < 0 ? -1 : 1 + e;
  }
  if (c == "(") {
    let j = i + 1;
    while (j < sig.length && sig.charAt(j) != ")") {
      const n = typeLen(sig, j, depth + 1);
      if (n < 0) return -1;
      j += n;
    }
    if (j >= sig.length || j == i + 1) return -1;
    return j - i + 1;
  }
  return (BASIC + "v").indexOf(c) >= 0 ? 1 : -1;
}

class Reader {
  off: i32 = 0;
  err: string = "";
  constructor(public b: Uint8Array) {}
  take(n: u32): i32 {
    if (<u64>n > <u64>(this.b.length - this.off)) { this.err = "dbus: body too short"; return -1; }
    const at = this.off;
    this.off += <i32>n;
    return at;
  }
  u32(): u32 {
    const at = this.take(4);
    return at < 0 ? 0 : load<u32>(this.b.dataStart + at);
  }
  str(): string {
    const n = this.u32();
    const at = this.take(n);
    return at < 0 ? "" : String.UTF8.decodeUnsafe(this.b.dataStart + at, n);
  }
  value(t: string, depth: i32): Value {
    const v = new Value(t);
    if (depth > 64) { this.err = "dbus: nested too deep"; return v; }
    if (this.err.length > 0) return v;
    const c = t.charAt(0);
    if (c == "y" || c == "b") {
      const at = this.take(1);
      if (at >= 0) v.num = <i64>this.b[at];
      if (c == "b" && v.num > 1) this.err = "dbus: boolean byte " + v.num.toString() + " is neither 0 nor 1";
    }
    else if (c == "n") { const at = this.take(2); if (at >= 0) v.num = <i64>load<i16>(this.b.dataStart + at); }
    else if (c == "q") { const at = this.take(2); if (at >= 0) v.num = <i64>load<u16>(this.b.dataStart + at); }
    else if (c == "i") { const at = this.take(4); if (at >= 0) v.num = <i64>load<i32>(this.b.dataStart + at); }
    else if (c == "u") { const at = this.take(4); if (at >= 0) v.num = <i64>load<u32>(this.b.dataStart + at); }
    else if (c == "x" || c == "t") { const at = this.take(8); if (at >= 0) v.num = load<i64>(this.b.dataStart + at); }
    else if (c == "d") { const at = this.take(8); if (at >= 0) v.dbl = load<f64>(this.b.dataStart + at); }
    else if (c == "s" || c == "o" || c == "g") v.text = this.str();
    else if (c == "v") {
      const s = this.str();
      if (this.err.length == 0 && typeLen(s, 0, depth + 1) != s.length) { this.err = "dbus: bad variant signature \"" + s + "\""; return v; }
      if (this.err.length == 0) v.items = [this.value(s, depth + 1)];
    } else if (c == "a") {
      const n = this.u32();
      if (<u64>n > <u64>(this.b.length - this.off)) { this.err = "dbus: body too short"; return v; }
      const elem = v.isDict ? "{" + t.substring(2) : t.substring(1);
      for (let i: u32 = 0; i < n && this.err.length == 0; i++) v.items.push(this.value(elem, depth + 1));
    } else if (c == "(" || c == "{") {
      let j = 1;
      while (j < t.length - 1 && this.err.length == 0) {
        const n = typeLen(t, j, depth + 1);
        v.items.push(this.value(t.substring(j, j + n), depth + 1));
        j += n;
      }
    } else this.err = "dbus: unknown type " + c;
    return v;
  }
}

/** decode decodes a body of the given signature. */
export function decode(sig: string, body: Uint8Array): Result<Value[]> {
  if (sig.length > 255) return new Result<Value[]>([], Errno.INVALID, "dbus: signature of " + sig.length.toString() + " bytes, over 255");
  const r = new Reader(body);
  const out: Value[] = [];
  let i = 0;
  while (i < sig.length) {
    const n = typeLen(sig, i, 0);
    if (n < 0) return new Result<Value[]>([], Errno.INVALID, "dbus: bad signature \"" + sig + "\"");
    out.push(r.value(sig.substring(i, i + n), 0));
    if (r.err.length > 0) return new Result<Value[]>([], Errno.INVALID, r.err);
    i += n;
  }
  if (r.off != body.length) {
    return new Result<Value[]>([], Errno.INVALID, "dbus: " + (body.length - r.off).toString() + " bytes left after signature \"" + sig + "\"");
  }
  return new Result<Value[]>(out, Errno.OK, "");
}

// ---- calls (ABI.md §3.3.3) ---------------------------------------------------

/** A method call's result. */
export class Reply {
  constructor(public signature: string, public body: Value[]) {}
}

function request(fn: u32, req: Record): Result<Reply> {
  const b = req.push("errors", "record").encode(); // the error name as a field
  let e: u32;
  if (fn == 0) e = rawCall(b.dataStart, b.length, scratchPtr(), SCRATCH_CAP, outLenPtr());
  else if (fn == 1) e = rawGetProperty(b.dataStart, b.length, scratchPtr(), SCRATCH_CAP, outLenPtr());
  else if (fn == 2) e = rawGetAllProperties(b.dataStart, b.length, scratchPtr(), SCRATCH_CAP, outLenPtr());
  else e = rawSetProperty(b.dataStart, b.length, scratchPtr(), SCRATCH_CAP, outLenPtr());
  const r = finish(e);
  const empty = new Reply("", []);
  if (!r.ok) {
    // An error record: message, then error_name from the peer. A host
    // before error records sends the message alone.
    const er = decodeRecord(r.data);
    if (er == null || er.fields.length == 0 || er.fields[0].key != "message") return new Result<Reply>(empty, r.err, r.text);
    const res = new Result<Reply>(empty, r.err, er.str("message"));
    res.errorName = er.str("error_name");
    return res;
  }
  const rec = decodeRecord(r.data);
  if (rec == null) return new Result<Reply>(empty, Errno.FAILED, "dbus: bad reply record: abi: malformed record");
  const sig = rec.str("signature");
  const body = rec.getBytes("body");
  const vals = decode(sig, body == null ? new Uint8Array(0) : body);
  if (!vals.ok) return new Result<Reply>(empty, Errno.FAILED, vals.message);
  return new Result<Reply>(new Reply(sig, vals.value), Errno.OK, "");
}

/** A remote object on the system bus: a destination and an object path. */
export class DBusObject {
  /** If nonzero, bounds each call below the host's bound and the deadline. */
  timeoutMs: u32 = 0;
  constructor(public destination: string, public path: string) {}

  private base(iface: string): Record {
    const r = new Record().push("destination", this.destination).push("path", this.path).push("interface", iface);
    if (this.timeoutMs > 0) r.push("timeout_ms", this.timeoutMs.toString());
    return r;
  }

  /** call calls method ("interface.Member") with args. */
  call(method: string, args: Value[]): Result<Reply> {
    const i = method.lastIndexOf(".");
    if (i <= 0 || i == method.length - 1) return new Result<Reply>(new Reply("", []), Errno.INVALID, "\"" + method + "\" is not interface.member");
    const enc = encode(args);
    if (enc.err.length > 0) return new Result<Reply>(new Reply("", []), Errno.INVALID, enc.err);
    const req = this.base(method.substring(0, i)).push("member", method.substring(i + 1)).push("signature", enc.signature);
    req.pushBytes("body", enc.body);
    return request(0, req);
  }

  /** getProperty reads property ("interface.Name"): a variant. */
  getProperty(property: string): Result<Value> {
    const i = property.lastIndexOf(".");
    if (i <= 0 || i == property.length - 1) return new Result<Value>(new Value("v"), Errno.INVALID, "\"" + property + "\" is not interface.member");
    const r = request(1, this.base(property.substring(0, i)).push("name", property.substring(i + 1)));
    if (!r.ok) return failed<Value, Reply>(new Value("v"), r);
    if (r.value.signature != "v") return new Result<Value>(new Value("v"), Errno.FAILED, "dbus: get_property replied \"" + r.value.signature + "\"");
    return new Result<Value>(r.value.body[0], Errno.OK, "");
  }

  /** getAllProperties reads the properties of iface that the manifest lets
   * the plugin read (the host leaves out the others): an a{sv} dict. */
  getAllProperties(iface: string): Result<Value> {
    const r = request(2, this.base(iface));
    if (!r.ok) return failed<Value, Reply>(Value.dict("s", "v", []), r);
    if (r.value.signature != "a{sv}") return new Result<Value>(Value.dict("s", "v", []), Errno.FAILED, "dbus: get_all_properties replied \"" + r.value.signature + "\"");
    return new Result<Value>(r.value.body[0], Errno.OK, "");
  }

  /** setProperty writes property ("interface.Name"); a variant is
   * unwrapped, since the host wraps the value in one. */
  setProperty(property: string, value: Value): Result<bool> {
    const i = property.lastIndexOf(".");
    if (i <= 0 || i == property.length - 1) return new Result<bool>(false, Errno.INVALID, "\"" + property + "\" is not interface.member");
    const enc = encode([value.type == "v" ? value.items[0] : value]);
    if (enc.err.length > 0) return new Result<bool>(false, Errno.INVALID, enc.err);
    const req = this.base(property.substring(0, i)).push("name", property.substring(i + 1)).push("signature", enc.signature);
    req.pushBytes("body", enc.body);
    const r = request(3, req);
    return r.ok ? new Result<bool>(true, Errno.OK, "") : failed<bool, Reply>(false, r);
  }
}

/** failed is r's error, with its error name, as a Result<T>. */
function failed<T, U>(value: T, r: Result<U>): Result<T> {
  const res = new Result<T>(value, r.err, r.message);
  res.errorName = r.errorName;
  return res;
}

/** errorName returns the D-Bus error name of a failed call
 * ("org.freedesktop.systemd1.NoSuchUnit"), or "" if the error did not come
 * from the peer: r.errorName. */
export function errorName<T>(r: Result<T>): string {
  return r.errorName;
}

// ---- signals (event kind 5) --------------------------------------------------

/** A D-Bus signal that a [[trigger.dbus]] rule matched. */
export class Signal {
  /** The sender's unique name, ":1.42". */
  sender: string = "";
  /** The rule's sender, "org.freedesktop.timedate1". */
  senderName: string = "";
  path: string = "";
  interface: string = "";
  member: string = "";
  /** The rule's name, if it has one. */
  rule: string = "";
  signature: string = "";
  body: Value[] = [];

  /** isPropertiesChanged reports an org.freedesktop.DBus.Properties
   * PropertiesChanged signal: body[0] is the interface, body[1] the changed
   * values (a{sv}), body[2] the invalidated names (as). */
  get isPropertiesChanged(): bool {
    return this.interface == "org.freedesktop.DBus.Properties" && this.member == "PropertiesChanged" && this.signature == "sa{sv}as";
  }
}

let signalFn: ((s: Signal) => string | null) | null = null;

function signalEvent(e: Event): string | null {
  const s = new Signal();
  const r = e.fields;
  s.sender = r.str("sender");
  s.senderName = r.str("sender_name");
  s.path = r.str("path");
  s.interface = r.str("interface");
  s.member = r.str("member");
  s.rule = r.str("rule");
  s.signature = r.str("signature");
  const b = r.getBytes("body");
  const vals = decode(s.signature, b == null ? new Uint8Array(0) : b);
  if (!vals.ok) return vals.message;
  s.body = vals.value;
  return signalFn!(s);
}

/** onSignal runs h for each signal the plugin's [[trigger.dbus]] rules match. */
export function onSignal(h: (s: Signal) => string | null): void {
  signalFn = h;
  on(EventKind.DBUS_SIGNAL, signalEvent);
}
