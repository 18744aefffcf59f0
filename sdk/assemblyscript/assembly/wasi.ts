// The few WASI preview 1 calls the SDK needs. AssemblyScript's own std
// targets JavaScript hosts, so environment, files, randomness and the
// abort/trace shims are written here directly against wasi_snapshot_preview1.

// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "environ_sizes_get")
declare function environ_sizes_get(countPtr: usize, sizePtr: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "environ_get")
declare function environ_get(environ: usize, buf: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_prestat_get")
declare function fd_prestat_get(fd: u32, out: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_prestat_dir_name")
declare function fd_prestat_dir_name(fd: u32, path: usize, len: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "path_open")
declare function path_open(dirfd: u32, dirflags: u32, path: usize, pathLen: usize, oflags: u16, base: u64, inheriting: u64, fdflags: u16, fdOut: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_read")
declare function fd_read(fd: u32, iovs: usize, iovsLen: usize, nread: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_write")
declare function fd_write(fd: u32, iovs: usize, iovsLen: usize, nwritten: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_close")
declare function fd_close(fd: u32): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "fd_readdir")
declare function fd_readdir(fd: u32, buf: usize, bufLen: usize, cookie: u64, bufUsed: usize): u16;
// @ts-ignore: decorator
@external("wasi_snapshot_preview1", "random_get")
declare function random_get(buf: usize, len: usize): u16;

/** env returns the environment the host passed ("KEY=value" strings):
 * only what the manifest's [env] allow lets through. */
export function env(): string[] {
  const sizes = memory.data(8);
  if (environ_sizes_get(sizes, sizes + 4) != 0) return [];
  const count = load<u32>(sizes), size = load<u32>(sizes + 4);
  const ptrs = new ArrayBuffer(<i32>count * 4);
  const buf = new ArrayBuffer(<i32>size);
  if (environ_get(changetype<usize>(ptrs), changetype<usize>(buf)) != 0) return [];
  const out = new Array<string>(0);
  const base = changetype<usize>(buf);
  for (let i: u32 = 0; i < count; i++) {
    const p = load<u32>(changetype<usize>(ptrs) + i * 4);
    const next = i + 1 < count ? load<u32>(changetype<usize>(ptrs) + (i + 1) * 4) : <u32>base + size;
    // Each entry ends with a NUL.
    out.push(String.UTF8.decodeUnsafe(p, next - p - 1));
  }
  return out;
}

/** getenv returns the value of name, or null. */
export function getenv(name: string): string | null {
  const all = env();
  const prefix = name + "=";
  for (let i = 0; i < all.length; i++) {
    if (all[i].startsWith(prefix)) return all[i].substring(prefix.length);
  }
  return null;
}

// A preopened directory and the path to open beneath it.
class Under {
  constructor(public fd: u32, public rel: string) {}
}

// under finds the preopen (such as /data) that holds an absolute path.
function under(path: string): Under | null {
  const st = memory.data(8);
  for (let fd: u32 = 3; fd < 64; fd++) {
    if (fd_prestat_get(fd, st) != 0) break;
    if (load<u8>(st) != 0) continue; // not a directory
    const n = load<u32>(st + 4);
    const name = new ArrayBuffer(<i32>n);
    if (fd_prestat_dir_name(fd, changetype<usize>(name), n) != 0) continue;
    let dir = String.UTF8.decode(name);
    while (dir.length > 1 && dir.endsWith("/")) dir = dir.substring(0, dir.length - 1);
    if (path.startsWith(dir + "/")) return new Under(fd, path.substring(dir.length + 1));
  }
  return null;
}

const RIGHTS_ALL: u64 = 0x1fffffff;
const O_CREAT: u16 = 1, O_TRUNC: u16 = 8;

// A directory is opened with the right to list it only: hosts open a file
// read-write when any write right is asked for, which a directory refuses.
const RIGHTS_READDIR: u64 = 0x4000;

function open(path: string, oflags: u16): i64 {
  const u = under(path);
  if (u == null) return -44; // ENOENT
  const rel = String.UTF8.encode(u.rel);
  const fdOut = memory.data(4);
  const rights = oflags & 2 ? RIGHTS_READDIR : RIGHTS_ALL;
  const e = path_open(u.fd, 0, changetype<usize>(rel), rel.byteLength, oflags, rights, rights, 0, fdOut);
  if (e != 0) return -<i64>e;
  return <i64>load<u32>(fdOut);
}

/** readFile reads a whole file under a preopened directory (/data), or
 * returns null. */
export function readFile(path: string): Uint8Array | null {
  const fd = open(path, 0);
  if (fd < 0) return null;
  let out = new Uint8Array(0);
  const chunk = new Uint8Array(4096);
  const iov = memory.data(8), n = memory.data(4);
  while (true) {
    store<u32>(iov, changetype<usize>(chunk.buffer));
    store<u32>(iov + 4, chunk.length);
    if (fd_read(<u32>fd, iov, 1, n) != 0) {
      fd_close(<u32>fd);
      return null;
    }
    const got = load<u32>(n);
    if (got == 0) break;
    const next = new Uint8Array(out.length + <i32>got);
    next.set(out);
    next.set(chunk.subarray(0, <i32>got), out.length);
    out = next;
  }
  fd_close(<u32>fd);
  return out;
}

/** readDir lists the names in a directory under a preopened one (/data,
 * /media/...), without "." and "..", or returns null. */
export function readDir(path: string): string[] | null {
  const fd = open(path, 2); // O_DIRECTORY
  if (fd < 0) return null;
  const out: string[] = [];
  let buf = new Uint8Array(4096);
  const used = memory.data(4);
  let cookie: u64 = 0;
  while (true) {
    if (fd_readdir(<u32>fd, buf.dataStart, buf.length, cookie, used) != 0) {
      fd_close(<u32>fd);
      return null;
    }
    const n = <i32>load<u32>(used);
    let off = 0, whole = 0;
    // Each entry: d_next u64, d_ino u64, d_namlen u32, d_type u8, padding, then the name.
    while (off + 24 <= n) {
      const namlen = <i32>load<u32>(buf.dataStart + off + 16);
      if (off + 24 + namlen > n) break; // cut off: read again from its cookie
      const name = String.UTF8.decodeUnsafe(buf.dataStart + off + 24, namlen);
      if (name != "." && name != "..") out.push(name);
      cookie = load<u64>(buf.dataStart + off);
      off += 24 + namlen;
      whole++;
    }
    if (n < buf.length) break; // the end of the directory
    if (whole == 0) buf = new Uint8Array(buf.length * 2); // one entry larger than the buffer
  }
  fd_close(<u32>fd);
  return out;
}

/** writeFile creates or replaces a file under a preopened directory. */
export function writeFile(path: string, data: Uint8Array): bool {
  const fd = open(path, O_CREAT | O_TRUNC);
  if (fd < 0) return false;
  const iov = memory.data(8), n = memory.data(4);
  let off = 0;
  let ok = true;
  while (off < data.length) {
    store<u32>(iov, changetype<usize>(data.buffer) + data.byteOffset + off);
    store<u32>(iov + 4, data.length - off);
    if (fd_write(<u32>fd, iov, 1, n) != 0 || load<u32>(n) == 0) {
      ok = false;
      break;
    }
    off += <i32>load<u32>(n);
  }
  return fd_close(<u32>fd) == 0 && ok;
}

/** readText and writeText are readFile and writeFile for UTF-8 text. */
export function readText(path: string): string | null {
  const b = readFile(path);
  return b == null ? null : String.UTF8.decode(b.buffer);
}

export function writeText(path: string, s: string): bool {
  return writeFile(path, Uint8Array.wrap(String.UTF8.encode(s)));
}

/** randomSeed is the shim for AssemblyScript's `seed` import (Math.random). */
export function randomSeed(): f64 {
  const b = memory.data(8);
  random_get(b, 8);
  return <f64>load<u64>(b);
}
