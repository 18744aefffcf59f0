//! supervisor-reboot-rust watches one service of the app through the device
//! supervisor and asks for a reboot when it has been down for several
//! checks in a row; an update lock refuses the reboot and the plugin asks
//! again at the next check instead of forcing it. ../supervisor-reboot in Rust.

use std::cell::Cell;

use airlock::{supervisor, Errno};

thread_local! {
    // DOWN counts consecutive checks that found the service not running.
    static DOWN: Cell<u32> = Cell::new(0);
}

fn check() -> airlock::Result {
    let service = airlock::config("service").unwrap_or_else(|| "main".into());
    let strikes = airlock::config("strikes").and_then(|s| s.parse::<u32>().ok()).filter(|&n| n > 0).unwrap_or(3);
    let st = match supervisor::state() {
        Ok(st) => st,
        Err(e) => {
            // Unavailable or a timeout says nothing about the service.
            airlock::warn_fields("cannot read the device state", &[("error", &e)]);
            return Ok(());
        }
    };
    let status = st.services.get(&service).cloned().unwrap_or_default();
    if status == "Running" {
        if DOWN.with(|d| d.get()) > 0 {
            airlock::info_fields("service is running again", &[("service", &service)]);
        } else {
            airlock::debug_fields("service is running", &[("service", &service)]);
        }
        DOWN.with(|d| d.set(0));
        return Ok(());
    }
    let down = DOWN.with(|d| {
        d.set(d.get() + 1);
        d.get()
    });
    airlock::warn_fields(
        "service is not running",
        &[("service", &service), ("status", &status), ("strikes", &down), ("of", &strikes)],
    );
    if down < strikes {
        return Ok(());
    }
    match supervisor::reboot(false) {
        Ok(()) => {
            airlock::warn_fields("reboot requested", &[("service", &service), ("down_for_checks", &down)]);
            DOWN.with(|d| d.set(0));
        }
        // The app holds an update lock: it is in the middle of something.
        Err(e) if e.is(Errno::Locked) => {
            airlock::warn_fields("the update lock refused the reboot; asking again at the next check", &[("service", &service)])
        }
        Err(e) if e.is(Errno::Denied) => {
            airlock::error_fields("reboot is not granted; add \"reboot\" to [supervisor] allow", &[("error", &e)])
        }
        Err(e) => airlock::error_fields("reboot request failed", &[("error", &e)]),
    }
    Ok(())
}

fn init() {
    airlock::on_timer(|_| check());
}

airlock::plugin!(init);
