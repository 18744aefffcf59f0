// ticker-as shows timers, in AssemblyScript: it counts the ticks of its
// timers and keeps the count in the plugin's private /data directory, so
// that it survives restarts. AssemblyScript has no file API of its own;
// the SDK's readText/writeText use WASI directly.
import * as airlock from "../../../sdk/assemblyscript/assembly/index";
export { airlock_abi_v1, airlock_on_event } from "../../../sdk/assemblyscript/assembly/index";

const COUNT_FILE = "/data/count";

airlock.onTimer((t: airlock.Timer): string | null => {
  const old = airlock.readText(COUNT_FILE);
  const n = (old == null ? 0 : I32.parseInt(old!.trim())) + 1;
  if (!airlock.writeText(COUNT_FILE, n.toString())) return "cannot write " + COUNT_FILE;
  airlock.info("tick", new airlock.Record().push("timer", t.name).push("count", n.toString()));
  return null;
});

airlock.onDropped((d: airlock.Dropped): string | null => {
  airlock.warn("missed ticks", new airlock.Record().push("count", d.count.toString()));
  return null;
});
