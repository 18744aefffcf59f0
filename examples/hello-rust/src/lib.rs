//! hello-rust is the smallest airlock plugin, in Rust: it greets on start,
//! using a value from its manifest's [config], and says goodbye on stop.

fn init() {
    airlock::on_start(|| {
        let greeting = airlock::config("greeting").unwrap_or_else(|| "hello".to_string());
        let device_type = std::env::var("BALENA_DEVICE_TYPE").unwrap_or_default();
        airlock::info_fields(&format!("{} from a sandboxed plugin", greeting), &[("device_type", &device_type)]);
        Ok(())
    });
    airlock::on_stop(|| {
        airlock::info("goodbye");
        Ok(())
    });
}

airlock::plugin!(init);
