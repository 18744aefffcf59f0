// usb-logger-as logs every partition that is plugged in or pulled out, with
// its label, UUID and filesystem type. ../usb-logger in AssemblyScript.
import * as airlock from "../../../sdk/assemblyscript/assembly/index";
export { airlock_abi_v1, airlock_on_event } from "../../../sdk/assemblyscript/assembly/index";

airlock.onUdev((e: airlock.UEvent): string | null => {
  let what = "partition plugged in";
  if (e.action == "remove") what = "partition removed";
  else if (e.coldplug) what = "partition present at start";
  // no filesystem, or two signatures (blkid's "ambivalent")
  const fstype = e.fstype.length > 0 ? e.fstype : "unknown";
  airlock.info(what, new airlock.Record().push("device", e.devname).push("label", e.label).push("uuid", e.uuid).push("fstype", fstype));
  return null;
});

// With a full queue the host drops events and says how many.
airlock.onDropped((d: airlock.Dropped): string | null => {
  airlock.warn("device events were lost", new airlock.Record().push("count", d.count.toString()).push("reason", d.reason));
  return null;
});
