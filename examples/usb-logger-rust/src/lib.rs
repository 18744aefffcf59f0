//! usb-logger-rust logs every partition that is plugged in or pulled out,
//! with its label, UUID and filesystem type. ../usb-logger in Rust.

fn init() {
    airlock::on_udev(|e| {
        let what = if e.action == "remove" {
            "partition removed"
        } else if e.coldplug() {
            "partition present at start"
        } else {
            "partition plugged in"
        };
        let mut fstype = e.fstype();
        if fstype.is_empty() {
            fstype = "unknown".into(); // no filesystem, or two signatures
        }
        airlock::info_fields(
            what,
            &[("device", &e.devname), ("label", &e.label()), ("uuid", &e.uuid()), ("fstype", &fstype)],
        );
        Ok(())
    });
    // With a full queue the host drops events and says how many.
    airlock::on_dropped(|d| {
        airlock::warn_fields("device events were lost", &[("count", &d.count), ("reason", &d.reason)]);
        Ok(())
    });
}

airlock::plugin!(init);
