//! webhook-rust posts a JSON webhook when a partition is plugged in, with a
//! token the host holds and adds. ../webhook in Rust.

use std::io::Read;

/// A JSON string (the values here are plain).
fn json_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn init() {
    airlock::on_udev(|e| {
        if e.action != "add" || e.coldplug() {
            return Ok(());
        }
        let url = airlock::config_value("url")?;
        // The keys sorted, as Go's encoding/json writes a map.
        let fields = [("device", e.devname.clone()), ("event", "stick plugged in".to_string()), ("fstype", e.fstype()), ("label", e.label()), ("uuid", e.uuid())];
        let body: Vec<String> = fields.iter().map(|(k, v)| format!("{}:{}", json_str(k), json_str(v))).collect();
        let body = format!("{{{}}}", body.join(","));
        let resp = airlock::http::post(&url, "application/json", body.as_bytes())?;
        let status = resp.status;
        let mut reply = Vec::new();
        resp.take(4096).read_to_end(&mut reply).map_err(|e| airlock::Error::host(airlock::Errno::Failed, e.to_string()))?;
        let reply = String::from_utf8_lossy(&reply);
        // The echo service reflects the request: its Authorization header
        // arrives here as "Bearer [redacted]".
        airlock::info_fields("webhook sent", &[("label", &e.label()), ("status", &status), ("reply", &reply.trim())]);
        Ok(())
    });
}

airlock::plugin!(init);
