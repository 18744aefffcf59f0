//! ticker-rust shows timers, in Rust: it counts the ticks of its timers and
//! keeps the count in the plugin's private /data directory, so that it
//! survives restarts.

const COUNT_FILE: &str = "/data/count";

fn init() {
    airlock::on_timer(|t| {
        let n: u64 = std::fs::read_to_string(COUNT_FILE).ok().and_then(|s| s.trim().parse().ok()).unwrap_or(0) + 1;
        std::fs::write(COUNT_FILE, n.to_string())?;
        airlock::info_fields("tick", &[("timer", &t.name), ("count", &n)]);
        Ok(())
    });
    airlock::on_dropped(|d| {
        airlock::warn_fields("missed ticks", &[("count", &d.count)]);
        Ok(())
    });
}

airlock::plugin!(init);
