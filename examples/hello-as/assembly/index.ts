// hello-as is the smallest airlock plugin, in AssemblyScript: it greets on
// start, using a value from its manifest's [config], and says goodbye on stop.
import * as airlock from "../../../sdk/assemblyscript/assembly/index";
export { airlock_abi_v1, airlock_on_event } from "../../../sdk/assemblyscript/assembly/index";

airlock.onStart((): string | null => {
  const greeting = airlock.configString("greeting", "hello");
  const deviceType = airlock.getenv("BALENA_DEVICE_TYPE");
  airlock.info(greeting + " from a sandboxed plugin", new airlock.Record().push("device_type", deviceType == null ? "" : deviceType!));
  return null;
});

airlock.onStop((): string | null => {
  airlock.info("goodbye");
  return null;
});
