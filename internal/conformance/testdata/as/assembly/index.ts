// The conformance plugin in AssemblyScript; it must log exactly what
// ../../go/main.go logs.
import * as airlock from "../../../../../sdk/assemblyscript/assembly/index";
export { airlock_abi_v1, airlock_on_event } from "../../../../../sdk/assemblyscript/assembly/index";
import * as supervisor from "../../../../../sdk/assemblyscript/assembly/supervisor";
import * as mount from "../../../../../sdk/assemblyscript/assembly/mount";
import * as dbus from "../../../../../sdk/assemblyscript/assembly/dbus";
import * as cloud from "../../../../../sdk/assemblyscript/assembly/cloud";

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

/** vars prints a reply's fields as "k=v,k=v", in the host's order. */
function vars(r: airlock.Record): string {
  const kv: string[] = [];
  for (let i = 0; i < r.fields.length; i++) kv.push(r.fields[i].key + "=" + r.fields[i].text);
  return kv.join(",");
}

/** scopes reads a kind of variables for the device, then for its fleet. */
function scopes(read: (fleet: bool) => airlock.Result<airlock.Record>): string {
  const d = read(false);
  if (!d.ok) return d.toString();
  const f = read(true);
  if (!f.ok) return f.toString();
  return "ok device " + vars(d.value) + " fleet " + vars(f.value);
}

/** cloudStep runs one operation against the simulated cloud API. The
 * manifest grants every operation, tags.set only for location and
 * tags.delete only for owner. */
function cloudStep(step: string): void {
  const what = "cloud " + step + ": ";
  if (step == "device") {
    const r = cloud.device();
    if (!r.ok) {
      airlock.info(what + r.toString());
      return;
    }
    airlock.info(what + "ok uuid=" + r.value.str("uuid") + " name=" + r.value.str("name"));
  } else if (step == "tags") {
    const r = cloud.tags();
    airlock.info(what + (r.ok ? "ok " + vars(r.value) : r.toString()));
  } else if (step == "tag-set") {
    airlock.info(what + cloud.setTag("location", "roof").toString());
  } else if (step == "tag-delete") {
    const r = cloud.deleteTag("owner");
    airlock.info(what + (r.ok ? "ok deleted=" + (r.value ? "true" : "false") : r.toString()));
  } else if (step == "name") {
    airlock.info(what + cloud.setName("kitchen sensor").toString());
  } else if (step == "env") {
    airlock.info(what + scopes(cloud.env));
  } else if (step == "config") {
    airlock.info(what + scopes(cloud.config));
  } else if (step == "fleet") {
    const r = cloud.fleet();
    if (!r.ok) {
      airlock.info(what + r.toString());
      return;
    }
    const f = r.value;
    airlock.info(what + "ok id=" + f.str("id") + " name=" + f.str("name") + " slug=" + f.str("slug") +
      " device_type=" + f.str("device_type") + " public=" + (f.str("is_public") == "true" ? "true" : "false"));
  } else if (step == "tag-denied") {
    airlock.info(what + cloud.setTag("owner", "me").toString());
  } else if (step == "name-invalid") {
    airlock.info(what + cloud.setName("").toString());
  } else {
    airlock.warn("unknown cloud step " + step);
  }
}

/** supervisorStep runs one operation against the simulated supervisor. */
function supervisorStep(step: string): void {
  const what = "supervisor " + step + ": ";
  if (step == "version") {
    const r = supervisor.version();
    airlock.info(what + (r.ok ? "ok " + r.value : r.toString()));
  } else if (step == "device") {
    const r = supervisor.device();
    airlock.info(what + (r.ok ? "ok status=" + r.value.status + " supervisor=" + r.value.supervisorVersion : r.toString()));
  } else if (step == "state") {
    const r = supervisor.state();
    if (!r.ok) {
      airlock.info(what + r.toString());
      return;
    }
    const svc: string[] = [];
    for (let i = 0; i < r.value.services.length; i++) svc.push(r.value.services[i].name + "=" + r.value.services[i].status);
    svc.sort();
    airlock.info(what + "ok app=" + r.value.appState + " services=" + svc.join(","));
  } else if (step == "blink") {
    airlock.info(what + supervisor.blink().toString());
  } else if (step == "restart-main") {
    airlock.info(what + supervisor.restartService("main", false).toString());
  } else if (step == "restart-other") {
    airlock.info(what + supervisor.restartService("other", false).toString());
  } else if (step == "shutdown") {
    airlock.info(what + supervisor.shutdown(false).toString());
  } else if (step == "reboot") {
    const r = supervisor.reboot(false);
    airlock.info(what + r.toString());
    if (r.err == airlock.Errno.LOCKED) airlock.info(what + "locked, retry later");
  } else if (step == "raw") {
    airlock.info(what + supervisor.call("reboot", new airlock.Record().push("forse", "true")).toString());
  } else if (step == "device-info") {
    const t = supervisor.deviceType();
    if (!t.ok) {
      airlock.info(what + t.toString());
      return;
    }
    airlock.info(what + "ok type=" + t.value + " arch=" + supervisor.arch().value);
  } else if (step == "apps") {
    const r = supervisor.apps();
    if (!r.ok) {
      airlock.info(what + r.toString());
      return;
    }
    const out: string[] = [];
    for (let i = 0; i < r.value.fields.length; i++) {
      const f = r.value.fields[i];
      if (f.key == "app") out.push(f.text + "=" + r.value.str(f.text + ".update_status"));
    }
    out.sort();
    airlock.info(what + "ok " + out.join(","));
  } else if (step == "logs-other") {
    airlock.info(what + supervisor.readLogs("bluetooth-helper", new supervisor.Bounds()).toString());
  } else if (step == "tag-hostile") {
    airlock.info(what + supervisor.setTag("a b", "x").toString());
  } else {
    airlock.warn("unknown supervisor step " + step);
  }
}

/** mountInfo prints a mount record without the host's uid= and gid=. */
function mountInfo(m: mount.MountInfo): string {
  const opts: string[] = [];
  for (let i = 0; i < m.options.length; i++) {
    if (!m.options[i].startsWith("uid=") && !m.options[i].startsWith("gid=")) opts.push(m.options[i]);
  }
  return "target=" + m.target + " path=" + m.path + " source=" + m.source + " device=" + m.device +
    " fstype=" + m.fstype + " label=" + m.label + " uuid=" + m.uuid + " readonly=" + (m.readonly ? "true" : "false") +
    " options=" + opts.join(",") + " note=" + m.note;
}

function mounted(what: string, r: airlock.Result<mount.MountInfo>): void {
  airlock.info(what + (r.ok ? "ok " + mountInfo(r.value) : r.toString()));
}

function opts(fstype: string, target: string, o: string): mount.MountOptions {
  const m = new mount.MountOptions();
  m.fstype = fstype;
  m.target = target;
  m.options = [o];
  return m;
}

/** mountStep mounts on the simulated device's storage. */
function mountStep(step: string): void {
  const what = "mount " + step + ": ";
  if (step == "label") {
    mounted(what, mount.byLabel("MEDIA", opts("", "", "sync")));
  } else if (step == "uuid") {
    mounted(what, mount.byUUID("1234-ABCD", null));
  } else if (step == "device") {
    mounted(what, mount.device("/dev/sdb1", opts("vfat", "stick", "ro")));
  } else if (step == "denied-option") {
    mounted(what, mount.byLabel("MEDIA", opts("", "", "uid=5")));
  } else if (step == "denied-source") {
    mounted(what, mount.byLabel("resin-boot", null));
  } else if (step == "read") {
    const b = airlock.readFile("/media/MEDIA/README.txt");
    if (b == null) airlock.info(what + "error");
    else airlock.info(what + "ok len=" + b.length.toString() + " sum=" + sum(b).toString());
  } else if (step == "list") {
    const r = mount.list();
    if (!r.ok) {
      airlock.info(what + r.toString());
      return;
    }
    airlock.info(what + "ok " + r.value.length.toString());
    for (let i = 0; i < r.value.length; i++) airlock.info(what + mountInfo(r.value[i]));
  } else if (step == "unmount") {
    airlock.info(what + mount.unmount("MEDIA").toString());
  } else {
    airlock.warn("unknown mount step " + step);
  }
}

function reply(what: string, r: airlock.Result<dbus.Reply>): void {
  if (r.ok) airlock.info(what + "ok sig=" + r.value.signature + " body=" + dbus.text(r.value.body));
  else airlock.info(what + r.toString() + " (error name " + dbus.errorName(r) + ")");
}

const MANAGER = "org.freedesktop.systemd1.Manager";

/** dbusStep calls the simulated device's system bus. */
function dbusStep(step: string): void {
  const what = "dbus " + step + ": ";
  const systemd = new dbus.DBusObject("org.freedesktop.systemd1", "/org/freedesktop/systemd1");
  const unit = new dbus.DBusObject("org.freedesktop.systemd1", "/org/freedesktop/systemd1/unit/bluetooth_2eservice");
  const hostname = new dbus.DBusObject("org.freedesktop.hostname1", "/org/freedesktop/hostname1");
  const S = (s: string): dbus.Value => dbus.Value.str(s);
  if (step == "getunit") {
    reply(what, systemd.call(MANAGER + ".GetUnit", [S("bluetooth.service")]));
  } else if (step == "getunit-missing") {
    reply(what, systemd.call(MANAGER + ".GetUnit", [S("nosuch.service")]));
  } else if (step == "stop") {
    reply(what, systemd.call(MANAGER + ".StopUnit", [S("bluetooth.service"), S("replace")]));
  } else if (step == "stop-badmode") {
    reply(what, systemd.call(MANAGER + ".StopUnit", [S("bluetooth.service"), S("sideways")]));
  } else if (step == "stop-ssh") {
    reply(what, systemd.call(MANAGER + ".StopUnit", [S("ssh.service"), S("replace")]));
  } else if (step == "reboot") {
    reply(what, systemd.call(MANAGER + ".Reboot", []));
  } else if (step == "get") {
    const r = unit.getProperty("org.freedesktop.systemd1.Unit.ActiveState");
    airlock.info(what + (r.ok ? "ok " + r.value.toString() : r.toString()));
  } else if (step == "getall") {
    const r = unit.getAllProperties("org.freedesktop.systemd1.Unit");
    airlock.info(what + (r.ok ? "ok " + r.value.toString() : r.toString()));
  } else if (step == "get-denied") {
    airlock.info(what + hostname.getProperty("org.freedesktop.hostname1.Hostname").toString());
  } else if (step == "set") {
    airlock.info(what + hostname.setProperty("org.freedesktop.hostname1.PrettyHostname", S("Plant 7")).toString());
  } else if (step == "set-struct") {
    const v = dbus.Value.struct([
      dbus.Value.int32(-7),
      dbus.Value.array("s", [S("a"), S("b")]),
      dbus.Value.dict("s", "v", [dbus.Value.entry(S("k"), dbus.Value.variant(dbus.Value.uint64(9)))]),
    ]);
    airlock.info(what + hostname.setProperty("org.freedesktop.hostname1.PrettyHostname", v).toString());
  } else if (step == "set-denied") {
    airlock.info(what + hostname.setProperty("org.freedesktop.hostname1.Hostname", S("x")).toString());
  } else {
    airlock.warn("unknown dbus step " + step);
  }
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
  } else if (cmd == "fields") {
    const n: i32 = 3;
    airlock.info("fields", new airlock.Record().push("colour", "blue").push("count", n.toString()).push("bad key", "x").push("msg", "m"));
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
  } else if (cmd == "sup") {
    supervisorStep(arg);
  } else if (cmd == "cloud") {
    cloudStep(arg);
  } else if (cmd == "mount") {
    mountStep(arg);
  } else if (cmd == "dbus") {
    dbusStep(arg);
  } else {
    airlock.warn("unknown step " + cmd);
  }
  return null;
}

airlock.onStart((): string | null => { airlock.info("started"); return null; });
airlock.onStop((): string | null => { airlock.info("stopped cleanly"); return null; });
function dropKinds(m: Map<string, u64>): string {
  const names = ["timer", "udev", "dbus_signal", "mount"];
  let out = "";
  for (let i = 0; i < names.length; i++) {
    if (m.has(names[i])) out += " " + names[i] + ":" + m.get(names[i]).toString();
  }
  return out;
}

airlock.onDropped((d: airlock.Dropped): string | null => {
  airlock.info("dropped count=" + d.count.toString() + " reason=" + d.reason + " rate_limited=" + d.rateLimited.toString() +
    " coalesced=" + d.coalesced.toString() + " by_kind=" + dropKinds(d.byKind) + " coalesced_by_kind=" + dropKinds(d.coalescedByKind));
  return null;
});
airlock.onUdev((e: airlock.UEvent): string | null => {
  airlock.info("udev action=" + e.action + " subsystem=" + e.subsystem + " devtype=" + e.devtype +
    " devname=" + e.devname + " label=" + e.label + " uuid=" + e.uuid + " fstype=" + e.fstype +
    " seqnum=" + e.seqnum.toString() + " coldplug=" + (e.coldplug ? "true" : "false"));
  return null;
});
airlock.onTimer(onTimer);
dbus.onSignal((s: dbus.Signal): string | null => {
  airlock.info("dbus signal rule=" + s.rule + " sender_name=" + s.senderName + " path=" + s.path + " interface=" +
    s.interface + " member=" + s.member + " sig=" + s.signature + " body=" + dbus.text(s.body));
  if (s.isPropertiesChanged) {
    airlock.info("dbus properties changed " + s.body[0].text + ": " + s.body[1].items.length.toString() + " changed, " +
      s.body[2].items.length.toString() + " invalidated");
  }
  return null;
});
airlock.onMount((e: airlock.MountEvent): string | null => {
  airlock.info("mount event action=" + e.action + " target=" + e.target + " source=" + e.source +
    " device=" + e.device + " reason=" + e.reason);
  return null;
});
