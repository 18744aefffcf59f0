// dbus-stop-bluetooth-as stops the host's bluetooth.service through
// systemd's StopUnit, reads its ActiveState, and shows that StopUnit on
// ssh.service is out of reach. ../dbus-stop-bluetooth in AssemblyScript.
import * as airlock from "../../../sdk/assemblyscript/assembly/index";
export { airlock_abi_v1, airlock_on_event } from "../../../sdk/assemblyscript/assembly/index";
import * as dbus from "../../../sdk/assemblyscript/assembly/dbus";

const STOP = "org.freedesktop.systemd1.Manager.StopUnit";

airlock.onStart((): string | null => {
  const systemd = new dbus.DBusObject("org.freedesktop.systemd1", "/org/freedesktop/systemd1");
  const r = systemd.call(STOP, [dbus.Value.str("bluetooth.service"), dbus.Value.str("replace")]);
  if (!r.ok) {
    airlock.error("stopping bluetooth.service failed", new airlock.Record().push("error", r.toString()).push("dbus_error", dbus.errorName(r)));
    return r.toString();
  }
  airlock.info("bluetooth.service stop queued", new airlock.Record().push("job", r.value.body.length == 1 ? r.value.body[0].text : ""));

  const unit = new dbus.DBusObject("org.freedesktop.systemd1", "/org/freedesktop/systemd1/unit/bluetooth_2eservice");
  const v = unit.getProperty("org.freedesktop.systemd1.Unit.ActiveState");
  if (v.ok) airlock.info("bluetooth.service", new airlock.Record().push("active_state", v.value.inner.text));

  // The grant names bluetooth.service only: this is denied, and says so.
  const ssh = systemd.call(STOP, [dbus.Value.str("ssh.service"), dbus.Value.str("replace")]);
  if (!ssh.ok) airlock.info("as intended, ssh.service is out of reach", new airlock.Record().push("error", ssh.toString()));
  return null;
});
