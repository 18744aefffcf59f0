// webhook-as posts a JSON webhook when a partition is plugged in, with a
// token the host holds and adds. ../webhook in AssemblyScript.
import * as airlock from "../../../sdk/assemblyscript/assembly/index";
import * as http from "../../../sdk/assemblyscript/assembly/http";
export { airlock_abi_v1, airlock_on_event } from "../../../sdk/assemblyscript/assembly/index";

// jsonStr is a JSON string (the values here are plain).
function jsonStr(s: string): string {
  return "\"" + s.replaceAll("\\", "\\\\").replaceAll("\"", "\\\"") + "\"";
}

airlock.onUdev((e: airlock.UEvent): string | null => {
  if (e.action != "add" || e.coldplug) return null;
  const url = airlock.config("url");
  if (!url.ok) return url.toString();
  // The keys sorted, as Go's encoding/json writes a map.
  const body = "{" + jsonStr("device") + ":" + jsonStr(e.devname) + "," + jsonStr("event") + ":" + jsonStr("stick plugged in") + "," +
    jsonStr("fstype") + ":" + jsonStr(e.fstype) + "," + jsonStr("label") + ":" + jsonStr(e.label) + "," + jsonStr("uuid") + ":" + jsonStr(e.uuid) + "}";
  const r = http.post(url.text, "application/json", Uint8Array.wrap(String.UTF8.encode(body)));
  if (!r.ok) return r.toString();
  const resp = r.value;
  const reply = resp.readText();
  resp.close();
  if (!reply.ok) return reply.toString();
  let text = reply.value;
  if (text.length > 4096) text = text.substring(0, 4096);
  // The echo service reflects the request: its Authorization header
  // arrives here as "Bearer [redacted]".
  airlock.info("webhook sent", new airlock.Record().push("label", e.label).push("status", resp.status.toString()).push("reply", text.trim()));
  return null;
});
