// The AssemblyScript SDK's codecs against the ABI's wire table
// (abi/testdata/wire.txt, which the host's and every SDK's tests read):
// every record and dbus row decodes to its text and encodes back to its
// bytes and signature; every bad-record and bad-dbus row is refused.
// tests/wire.mjs (npm test) compiles this, hands it the table and runs it.
import { decode, encode, text } from "../assembly/dbus";
import { decodeRecord } from "../assembly/index";

@external("wire", "report")
declare function report(ptr: usize, len: i32): void;

let input = new ArrayBuffer(0);

/** alloc makes room for the table, which the runner copies in. */
export function alloc(n: i32): usize {
  input = new ArrayBuffer(n);
  return changetype<usize>(input);
}

let failures = 0;

function fail(s: string): void {
  const b = String.UTF8.encode(s);
  report(changetype<usize>(b), b.byteLength);
  failures++;
}

function unhex(s: string): Uint8Array {
  const out = new Uint8Array(s.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = <u8>I32.parseInt(s.substring(2 * i, 2 * i + 2), 16);
  return out;
}

function same(a: Uint8Array, b: Uint8Array): bool {
  if (a.length != b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] != b[i]) return false;
  return true;
}

/** run checks every row and returns how many fail. */
export function run(): i32 {
  const lines = String.UTF8.decode(input).split("\n");
  let rows = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.length == 0 || line.charAt(0) == "#") continue;
    const f = line.split("\t");
    const row = "wire.txt:" + (i + 1).toString() + " " + line.substring(0, 80);
    if (f.length != 4) { fail(row + ": want 4 fields separated by tabs"); continue; }
    for (let j = 0; j < 4; j++) if (f[j] == "-") f[j] = "";
    const kind = f[0], sig = f[1], wire = unhex(f[2]), want = f[3];
    rows++;
    if (kind == "record" || kind == "bad-record") {
      const r = decodeRecord(wire);
      if (kind == "bad-record") {
        if (r != null) fail(row + ": decoded");
        continue;
      }
      if (r == null) { fail(row + ": refused"); continue; }
      const parts: string[] = [];
      for (let j = 0; j < r.fields.length; j++) parts.push(r.fields[j].key + "=" + r.fields[j].text);
      if (parts.join(", ") != want) fail(row + ": decoded " + parts.join(", "));
      if (!same(r.encode(), wire)) fail(row + ": re-encoded other bytes");
    } else if (kind == "dbus" || kind == "bad-dbus") {
      const r = decode(sig, wire);
      if (kind == "bad-dbus") {
        if (r.ok) fail(row + ": decoded to " + text(r.value));
        continue;
      }
      if (!r.ok) { fail(row + ": " + r.message); continue; }
      if (text(r.value) != want) fail(row + ": decoded " + text(r.value));
      const e = encode(r.value);
      if (e.err.length > 0 || e.signature != sig || !same(e.body, wire)) fail(row + ": re-encoded " + e.signature + " " + e.err);
    } else if (kind != "bad-dbus-host") { // bad-dbus-host: the host's alone
      fail(row + ": unknown kind");
    }
  }
  if (rows == 0) fail("wire.txt has no rows");
  return failures;
}
