//! dbus-stop-bluetooth-rust stops the host's bluetooth.service through
//! systemd's StopUnit, reads its ActiveState, and shows that StopUnit on
//! ssh.service is out of reach. ../dbus-stop-bluetooth in Rust.

use airlock::dbus;

fn start() -> airlock::Result {
    let systemd = dbus::object("org.freedesktop.systemd1", "/org/freedesktop/systemd1");
    let stop = "org.freedesktop.systemd1.Manager.StopUnit";
    let reply = systemd.call(stop, &["bluetooth.service".into(), "replace".into()]).map_err(|e| {
        airlock::error_fields(
            "stopping bluetooth.service failed",
            &[("error", &e), ("dbus_error", &dbus::error_name(&e).unwrap_or_default())],
        );
        e
    })?;
    let job = reply.body.first().and_then(|v| v.as_str()).unwrap_or("");
    airlock::info_fields("bluetooth.service stop queued", &[("job", &job)]);

    let unit = dbus::object("org.freedesktop.systemd1", "/org/freedesktop/systemd1/unit/bluetooth_2eservice");
    if let Ok(v) = unit.get_property("org.freedesktop.systemd1.Unit.ActiveState") {
        airlock::info_fields("bluetooth.service", &[("active_state", &v.as_str().unwrap_or(""))]);
    }

    // The grant names bluetooth.service only: this is denied, and says so.
    if let Err(e) = systemd.call(stop, &["ssh.service".into(), "replace".into()]) {
        airlock::info_fields("as intended, ssh.service is out of reach", &[("error", &e)]);
    }
    Ok(())
}

fn init() {
    airlock::on_start(start);
}

airlock::plugin!(init);
