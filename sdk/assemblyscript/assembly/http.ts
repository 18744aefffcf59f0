// Outbound HTTP(S) (ABI.md §3.6), as plugin.toml's [[http.request]] rules
// allow it. The host makes the request, checks every address after DNS
// and every redirect, and adds the headers a rule attaches (a host-held
// token the plugin never sees). The body is read in chunks:
//
//   import * as http from "../../sdk/assemblyscript/assembly/http";
//   const r = http.post("https://hooks.example.com/x", "application/json", body);
//   if (r.ok) { const text = r.value.readText(); r.value.close(); }
//
// Errors: Errno.DENIED (not granted; an address the rules refuse), INVALID
// (a bad URL or header: CR, LF, NUL, one the host sets), TIMEOUT,
// TOO_LARGE, UNAVAILABLE, FAILED (TLS, redirects), BUSY (8 bodies open).
// A 4xx or 5xx status is ok: it is the server's answer.

import { Errno, Record, Result, decodeRecord, finish, outLenPtr, scratchPtr, SCRATCH_CAP } from "./index";

// @ts-ignore: decorator
@external("airlock_http_v1", "request")
declare function rawRequest(req: usize, reqLen: u32, body: usize, bodyLen: u32, out: usize, cap: u32, outLen: usize): u32;
// @ts-ignore: decorator
@external("airlock_http_v1", "body_read")
declare function rawBodyRead(body: usize, bodyLen: u32, out: usize, cap: u32, outLen: usize): u32;
// @ts-ignore: decorator
@external("airlock_http_v1", "body_close")
declare function rawBodyClose(body: usize, bodyLen: u32, out: usize, cap: u32, outLen: usize): u32;

/** One header field. */
export class Header {
  constructor(public name: string, public value: string) {}
}

/** The server's answer. Read its body with read or readText; close frees
 * the host's handle (a body read to its end is closed already). */
export class Response {
  status: i32 = 0;
  /** After redirects. */
  url: string = "";
  headers: Header[] = [];
  /** -1 if the server did not say. */
  contentLength: i64 = -1;
  /** The host's handle (the reply's "body"); "" once closed. */
  body: string = "";

  /** header returns the first value of name (any case), or "". */
  header(name: string): string {
    const n = name.toLowerCase();
    for (let i = 0; i < this.headers.length; i++) {
      if (this.headers[i].name.toLowerCase() == n) return this.headers[i].value;
    }
    return "";
  }

  /** read reads the next part of the body into buf: a value of 0 is the
   * end. On an error the host has closed the body. */
  read(buf: Uint8Array): Result<i32> {
    if (this.body.length == 0 || buf.length == 0) return new Result<i32>(0, Errno.OK, "");
    const h = String.UTF8.encode(this.body);
    const e = rawBodyRead(changetype<usize>(h), <u32>h.byteLength, buf.dataStart, <u32>buf.length, outLenPtr());
    const n = load<u32>(outLenPtr());
    if (e != Errno.OK) {
      this.body = ""; // the host closed it
      const msg = n <= <u32>buf.length ? String.UTF8.decode(buf.buffer.slice(0, <i32>n)) : "";
      return new Result<i32>(0, e, msg);
    }
    if (n == 0) this.close();
    return new Result<i32>(<i32>n, Errno.OK, "");
  }

  /** readText reads the rest of the body as UTF-8 text. */
  readText(): Result<string> {
    const buf = new Uint8Array(4096);
    let parts: u8[] = [];
    for (;;) {
      const r = this.read(buf);
      if (!r.ok) return new Result<string>("", r.err, r.message);
      if (r.value == 0) break;
      for (let i = 0; i < r.value; i++) parts.push(buf[i]);
    }
    const all = new Uint8Array(parts.length);
    for (let i = 0; i < parts.length; i++) all[i] = parts[i];
    return new Result<string>(String.UTF8.decode(all.buffer), Errno.OK, "");
  }

  close(): void {
    if (this.body.length == 0) return;
    const h = String.UTF8.encode(this.body);
    finish(rawBodyClose(changetype<usize>(h), <u32>h.byteLength, scratchPtr(), SCRATCH_CAP, outLenPtr()));
    this.body = "";
  }
}

/** request sends method to url with headers and body (null: none). */
export function request(method: string, url: string, headers: Header[], body: Uint8Array | null): Result<Response> {
  const req = new Record().push("method", method.length > 0 ? method : "GET").push("url", url);
  for (let i = 0; i < headers.length; i++) req.push("header." + headers[i].name, headers[i].value);
  const b = req.encode();
  const bodyPtr: usize = body != null ? body.dataStart : 0;
  const bodyLen: u32 = body != null ? <u32>body.length : 0;
  const r = finish(rawRequest(b.dataStart, b.length, bodyPtr, bodyLen, scratchPtr(), SCRATCH_CAP, outLenPtr()));
  const resp = new Response();
  if (!r.ok) return new Result<Response>(resp, r.err, r.text);
  const rec = decodeRecord(r.data);
  if (rec == null) return new Result<Response>(resp, Errno.FAILED, "http: malformed reply");
  for (let i = 0; i < rec.fields.length; i++) {
    const k = rec.fields[i].key, v = rec.fields[i].text;
    if (k == "status") resp.status = I32.parseInt(v);
    else if (k == "url") resp.url = v;
    else if (k == "content_length") resp.contentLength = I64.parseInt(v);
    else if (k == "body") resp.body = v;
    else if (k.startsWith("header.")) resp.headers.push(new Header(k.substring(7), v));
  }
  return new Result<Response>(resp, Errno.OK, "");
}

/** get sends a GET. */
export function get(url: string): Result<Response> { return request("GET", url, [], null); }

/** post sends a POST with a body of contentType. */
export function post(url: string, contentType: string, body: Uint8Array): Result<Response> {
  return request("POST", url, [new Header("Content-Type", contentType)], body);
}
