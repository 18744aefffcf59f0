// supervisor-reboot-as watches one service of the app through the device
// supervisor and asks for a reboot when it has been down for several checks
// in a row; an update lock refuses the reboot and the plugin asks again at
// the next check instead of forcing it. ../supervisor-reboot in AssemblyScript.
import * as airlock from "../../../sdk/assemblyscript/assembly/index";
export { airlock_abi_v1, airlock_on_event } from "../../../sdk/assemblyscript/assembly/index";
import * as supervisor from "../../../sdk/assemblyscript/assembly/supervisor";

// down counts consecutive checks that found the service not running.
let down = 0;

function check(t: airlock.Timer): string | null {
  const service = airlock.configString("service", "main");
  let strikes = 3;
  const s = airlock.config("strikes");
  if (s.ok && s.text.length > 0 && I32.parseInt(s.text) > 0) strikes = I32.parseInt(s.text);

  const st = supervisor.state();
  if (!st.ok) {
    // Unavailable or a timeout says nothing about the service.
    airlock.warn("cannot read the device state", new airlock.Record().push("error", st.toString()));
    return null;
  }
  const found = st.value.service(service);
  const status = found == null ? "" : found!;
  if (status == "Running") {
    if (down > 0) airlock.info("service is running again", new airlock.Record().push("service", service));
    else airlock.debug("service is running", new airlock.Record().push("service", service));
    down = 0;
    return null;
  }
  down++;
  airlock.warn("service is not running", new airlock.Record().push("service", service).push("status", status)
    .push("strikes", down.toString()).push("of", strikes.toString()));
  if (down < strikes) return null;

  const r = supervisor.reboot(false);
  if (r.ok) {
    airlock.warn("reboot requested", new airlock.Record().push("service", service).push("down_for_checks", down.toString()));
    down = 0;
  } else if (r.err == airlock.Errno.LOCKED) {
    // The app holds an update lock: it is in the middle of something.
    airlock.warn("the update lock refused the reboot; asking again at the next check", new airlock.Record().push("service", service));
  } else if (r.err == airlock.Errno.DENIED) {
    airlock.error("reboot is not granted; add \"reboot\" to [supervisor] allow", new airlock.Record().push("error", r.toString()));
  } else {
    airlock.error("reboot request failed", new airlock.Record().push("error", r.toString()));
  }
  return null;
}

airlock.onTimer(check);
