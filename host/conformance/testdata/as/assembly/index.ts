// The conformance plugin in AssemblyScript; it must log exactly what
// ../../go/main.go logs.
import * as airlock from "../../../../../sdk/assemblyscript/assembly/index";
export { airlock_abi_v1, airlock_on_event } from "../../../../../sdk/assemblyscript/assembly/index";

// count shows that the instance's memory lives from one event to the next.
let count = 0;

function sum(b: Uint8Array): u32 {
  let s: u32 = 0;
  for (let i = 0; i < b.length; i++) s = s * 31 + <u32>b[i];
  return s;
}

function utf8(s: string): Uint8Array {
  return Uint8Array.wrap(String.UTF8.encode(s));
}

function onTimer(t: airlock.Timer): string | null {
  const i = t.name.indexOf(":");
  const cmd = i >= 0 ? t.name.substring(0, i) : t.name;
  const arg = i >= 0 ? t.name.substring(i + 1) : "";
  if (cmd == "seq") {
    airlock.info("seq " + arg);
  } else if (cmd == "count") {
    count++;
    airlock.info("count " + count.toString());
  } else if (cmd == "time") {
    airlock.info("time " + t.timeNs.toString());
  } else if (cmd == "config") {
    const r = airlock.config(arg);
    if (r.ok) airlock.info("config " + arg + "=" + r.text);
    else airlock.info("config " + arg + " missing: " + r.toString());
  } else if (cmd == "bigconfig") {
    const r = airlock.config(arg);
    if (!r.ok) return r.toString();
    airlock.info("config " + arg + " len=" + r.data.length.toString() + " sum=" + sum(r.data).toString());
  } else if (cmd == "big") {
    const b = utf8(t.name);
    airlock.info("big name len=" + b.length.toString() + " sum=" + sum(b).toString());
  } else if (cmd == "env") {
    const env = airlock.env();
    env.sort();
    airlock.info("env " + env.join(","));
  } else if (cmd == "levels") {
    airlock.debug("level debug");
    airlock.info("level info");
    airlock.warn("level warn");
    airlock.error("level error");
  } else if (cmd == "write") {
    const ok = airlock.writeText("/data/" + arg, "data of " + arg);
    airlock.info("write " + arg + ": " + (ok ? "ok" : "error"));
  } else if (cmd == "read") {
    const s = airlock.readText("/data/" + arg);
    airlock.info("read " + arg + ": " + (s == null ? "error" : s));
  } else if (cmd == "sleep") {
    const ms = I64.parseInt(arg);
    airlock.info("sleep " + arg + " begin");
    const e = airlock.sleepMs(ms);
    airlock.info("sleep " + arg + ": " + (e == 0 ? "ok" : airlock.errnoName(e)));
  } else if (cmd == "deadline") {
    const d = airlock.deadlineNs();
    airlock.info("deadline ok=" + (d > 0 && d <= 10000000000 ? "true" : "false"));
  } else if (cmd == "clock") {
    airlock.info("clock ok=" + (airlock.nowNs() > 1600000000000000000 ? "true" : "false"));
  } else if (cmd == "fail") {
    return "handler failed on purpose";
  } else {
    airlock.warn("unknown step " + cmd);
  }
  return null;
}

airlock.onStart((): string | null => { airlock.info("started"); return null; });
airlock.onStop((): string | null => { airlock.info("stopped cleanly"); return null; });
airlock.onDropped((d: airlock.Dropped): string | null => {
  airlock.info("dropped count=" + d.count.toString() + " reason=" + d.reason);
  return null;
});
airlock.onUdev((e: airlock.UEvent): string | null => {
  airlock.info("udev action=" + e.action + " subsystem=" + e.subsystem + " devtype=" + e.devtype +
    " devname=" + e.devname + " label=" + e.label + " uuid=" + e.uuid + " fstype=" + e.fstype +
    " seqnum=" + e.seqnum.toString() + " coldplug=" + (e.coldplug ? "true" : "false"));
  return null;
});
airlock.onTimer(onTimer);
