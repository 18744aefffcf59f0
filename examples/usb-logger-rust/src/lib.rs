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
        airlock::info(&format!("{} device={} label={} uuid={} fstype={}", what, e.devname, e.label(), e.uuid(), fstype));
        Ok(())
    });
    // With a full queue the host drops events and says how many.
    airlock::on_dropped(|d| {
        airlock::warn(&format!("device events were lost count={} reason={}", d.count, d.reason));
        Ok(())
    });
}

airlock::plugin!(init);
