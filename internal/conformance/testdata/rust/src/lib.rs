//! The conformance plugin in Rust; it must log exactly what ../go/main.go logs.

use std::cell::Cell;
use std::time::Duration;

thread_local! {
    // COUNT shows that the instance's memory lives from one event to the next.
    static COUNT: Cell<u32> = Cell::new(0);
}

fn sum(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |s, &c| s.wrapping_mul(31).wrapping_add(c as u32))
}

fn config(key: &str) -> airlock::Result<String> {
    airlock::config_value(key)
}

/// How every language prints a host call's outcome.
fn result<T>(r: &airlock::Result<T>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => e.to_string(),
    }
}

/// A reply's fields as "k=v,k=v", in the host's order.
fn vars(r: &airlock::Record) -> String {
    let kv: Vec<String> = r.fields.iter().map(|(k, v)| format!("{}={}", k, String::from_utf8_lossy(v))).collect();
    kv.join(",")
}

/// A kind of variables for the device, then for its fleet.
fn scopes(read: fn(bool) -> airlock::Result<airlock::Record>) -> String {
    match (read(false), read(true)) {
        (Ok(d), Ok(f)) => format!("ok device {} fleet {}", vars(&d), vars(&f)),
        (Err(e), _) | (_, Err(e)) => e.to_string(),
    }
}

/// Runs one operation against the simulated cloud API. The manifest grants
/// every operation, tags.set only for location and tags.delete only for owner.
fn cloud_step(step: &str) {
    use airlock::cloud;
    let log = |s: &str| airlock::info(&format!("cloud {}: {}", step, s));
    match step {
        "device" => match cloud::read_device() {
            Ok(d) => log(&format!("ok uuid={} name={}", d.uuid, d.name)),
            Err(e) => log(&e.to_string()),
        },
        "tags" => match cloud::tags() {
            Ok(t) => log(&format!("ok {}", vars(&t))),
            Err(e) => log(&e.to_string()),
        },
        "tag-set" => log(&result(&cloud::set_tag("location", "roof"))),
        "tag-delete" => match cloud::delete_tag("owner") {
            Ok(d) => log(&format!("ok deleted={}", d)),
            Err(e) => log(&e.to_string()),
        },
        "name" => log(&result(&cloud::set_name("kitchen sensor"))),
        "env" => log(&scopes(cloud::env)),
        "config" => log(&scopes(cloud::config)),
        "fleet" => match cloud::read_fleet() {
            Ok(f) => log(&format!(
                "ok id={} name={} slug={} device_type={} public={}",
                f.id, f.name, f.slug, f.device_type, f.public
            )),
            Err(e) => log(&e.to_string()),
        },
        "tag-denied" => log(&result(&cloud::set_tag("owner", "me"))),
        "name-invalid" => log(&result(&cloud::set_name(""))),
        _ => airlock::warn(&format!("unknown cloud step {}", step)),
    }
}

/// Runs one operation against the simulated supervisor.
fn supervisor_step(step: &str) {
    use airlock::supervisor;
    let log = |s: &str| airlock::info(&format!("supervisor {}: {}", step, s));
    match step {
        "version" => match supervisor::version() {
            Ok(v) => log(&format!("ok {}", v)),
            Err(e) => log(&e.to_string()),
        },
        "device" => match supervisor::device() {
            Ok(d) => log(&format!("ok status={} supervisor={}", d.status, d.supervisor_version)),
            Err(e) => log(&e.to_string()),
        },
        "state" => match supervisor::state() {
            Ok(st) => {
                let svc: Vec<String> = st.services.iter().map(|(k, v)| format!("{}={}", k, v)).collect();
                log(&format!("ok app={} services={}", st.app_state, svc.join(",")))
            }
            Err(e) => log(&e.to_string()),
        },
        "blink" => log(&result(&supervisor::blink())),
        "restart-main" => log(&result(&supervisor::restart_service("main", false))),
        "restart-other" => log(&result(&supervisor::restart_service("other", false))),
        "shutdown" => log(&result(&supervisor::shutdown(false))),
        "reboot" => {
            let r = supervisor::reboot(false);
            log(&result(&r));
            if matches!(&r, Err(e) if e.is(airlock::Errno::Locked)) {
                log("locked, retry later");
            }
        }
        "raw" => {
            let mut req = airlock::Record::new();
            req.push("forse", "true");
            log(&result(&supervisor::call("reboot", &req)));
        }
        "device-info" => match supervisor::device_type() {
            Ok((t, a)) => log(&format!("ok type={} arch={}", t, a)),
            Err(e) => log(&e.to_string()),
        },
        "apps" => match supervisor::apps() {
            Ok(apps) => {
                let v: Vec<String> = apps.iter().map(|(k, a)| format!("{}={}", k, a.update_status)).collect();
                log(&format!("ok {}", v.join(",")))
            }
            Err(e) => log(&e.to_string()),
        },
        "logs-other" => log(&result(&supervisor::read_logs("bluetooth-helper", supervisor::Bounds::default()))),
        "tag-hostile" => log(&result(&supervisor::set_tag("a b", "x"))),
        _ => airlock::warn(&format!("unknown supervisor step {}", step)),
    }
}

/// Prints a mount record without the host's uid= and gid=.
fn mount_info(m: &airlock::mount::MountInfo) -> String {
    let opts: Vec<&str> =
        m.options.iter().map(|s| s.as_str()).filter(|o| !o.starts_with("uid=") && !o.starts_with("gid=")).collect();
    format!(
        "target={} path={} source={} device={} fstype={} label={} uuid={} readonly={} options={} note={}",
        m.target,
        m.path,
        m.source,
        m.device,
        m.fstype,
        m.label,
        m.uuid,
        m.readonly,
        opts.join(","),
        m.note
    )
}

/// Mounts on the simulated device's storage.
fn mount_step(step: &str) {
    use airlock::mount::{self, MountOptions};
    let log = |s: &str| airlock::info(&format!("mount {}: {}", step, s));
    let mounted = |r: airlock::Result<mount::MountInfo>| match r {
        Ok(m) => log(&format!("ok {}", mount_info(&m))),
        Err(e) => log(&e.to_string()),
    };
    let opts = |fstype: &str, target: &str, o: &str| MountOptions {
        fstype: fstype.into(),
        target: target.into(),
        options: vec![o.to_string()],
    };
    match step {
        "label" => mounted(mount::by_label("MEDIA", Some(&opts("", "", "sync")))),
        "uuid" => mounted(mount::by_uuid("1234-ABCD", None)),
        "device" => mounted(mount::device("/dev/sdb1", Some(&opts("vfat", "stick", "ro")))),
        "denied-option" => mounted(mount::by_label("MEDIA", Some(&opts("", "", "uid=5")))),
        "denied-source" => mounted(mount::by_label("resin-boot", None)),
        "read" => match std::fs::read("/media/MEDIA/README.txt") {
            Ok(b) => log(&format!("ok len={} sum={}", b.len(), sum(&b))),
            Err(_) => log("error"),
        },
        "list" => match mount::list() {
            Ok(ms) => {
                log(&format!("ok {}", ms.len()));
                for m in &ms {
                    log(&mount_info(m));
                }
            }
            Err(e) => log(&e.to_string()),
        },
        "unmount" => log(&result(&mount::unmount("MEDIA"))),
        _ => airlock::warn(&format!("unknown mount step {}", step)),
    }
}

/// Calls the simulated device's system bus.
fn dbus_step(step: &str) {
    use airlock::dbus::{self, Value};
    let log = |s: &str| airlock::info(&format!("dbus {}: {}", step, s));
    let reply = |r: airlock::Result<dbus::Reply>| match r {
        Ok(r) => log(&format!("ok sig={} body={}", r.signature, dbus::text(&r.body))),
        Err(e) => log(&format!("{} (error name {})", e, dbus::error_name(&e).unwrap_or_default())),
    };
    let systemd = dbus::object("org.freedesktop.systemd1", "/org/freedesktop/systemd1");
    let unit = dbus::object("org.freedesktop.systemd1", "/org/freedesktop/systemd1/unit/bluetooth_2eservice");
    let hostname = dbus::object("org.freedesktop.hostname1", "/org/freedesktop/hostname1");
    const MANAGER: &str = "org.freedesktop.systemd1.Manager";
    match step {
        "getunit" => reply(systemd.call(&format!("{}.GetUnit", MANAGER), &["bluetooth.service".into()])),
        "getunit-missing" => reply(systemd.call(&format!("{}.GetUnit", MANAGER), &["nosuch.service".into()])),
        "stop" => reply(systemd.call(&format!("{}.StopUnit", MANAGER), &["bluetooth.service".into(), "replace".into()])),
        "stop-badmode" => {
            reply(systemd.call(&format!("{}.StopUnit", MANAGER), &["bluetooth.service".into(), "sideways".into()]))
        }
        "stop-ssh" => reply(systemd.call(&format!("{}.StopUnit", MANAGER), &["ssh.service".into(), "replace".into()])),
        "reboot" => reply(systemd.call(&format!("{}.Reboot", MANAGER), &[])),
        "get" => match unit.get_property("org.freedesktop.systemd1.Unit.ActiveState") {
            Ok(v) => log(&format!("ok {}", v)),
            Err(e) => log(&e.to_string()),
        },
        "getall" => match unit.get_all_properties("org.freedesktop.systemd1.Unit") {
            Ok(m) => {
                let items: Vec<String> = m.iter().map(|(k, v)| format!("\"{}\": {}", k, v)).collect();
                log(&format!("ok {{{}}}", items.join(", ")))
            }
            Err(e) => log(&e.to_string()),
        },
        "get-denied" => log(&result(&hostname.get_property("org.freedesktop.hostname1.Hostname"))),
        "set" => log(&result(&hostname.set_property("org.freedesktop.hostname1.PrettyHostname", "Plant 7".into()))),
        "set-struct" => {
            let v = Value::Struct(vec![
                Value::Int32(-7),
                Value::array("s", vec!["a".into(), "b".into()]),
                Value::Dict("s".into(), "v".into(), vec![("k".into(), Value::variant(9u64))]),
            ]);
            log(&result(&hostname.set_property("org.freedesktop.hostname1.PrettyHostname", v)))
        }
        "set-denied" => log(&result(&hostname.set_property("org.freedesktop.hostname1.Hostname", "x".into()))),
        _ => airlock::warn(&format!("unknown dbus step {}", step)),
    }
}

fn on_timer(t: &airlock::Timer) -> airlock::Result {
    let (cmd, arg) = match t.name.find(':') {
        Some(i) => (&t.name[..i], &t.name[i + 1..]),
        None => (t.name.as_str(), ""),
    };
    match cmd {
        "seq" => airlock::info(&format!("seq {}", arg)),
        "count" => {
            let n = COUNT.with(|c| {
                c.set(c.get() + 1);
                c.get()
            });
            airlock::info(&format!("count {}", n));
        }
        "time" => airlock::info(&format!("time {}", t.time_ns)),
        "config" => match config(arg) {
            Ok(v) => airlock::info(&format!("config {}={}", arg, v)),
            Err(e) => airlock::info(&format!("config {} missing: {}", arg, e)),
        },
        "bigconfig" => {
            let v = config(arg)?;
            airlock::info(&format!("config {} len={} sum={}", arg, v.len(), sum(v.as_bytes())));
        }
        "big" => airlock::info(&format!("big name len={} sum={}", t.name.len(), sum(t.name.as_bytes()))),
        "env" => {
            let mut env: Vec<String> = std::env::vars().map(|(k, v)| format!("{}={}", k, v)).collect();
            env.sort();
            airlock::info(&format!("env {}", env.join(",")));
        }
        "levels" => {
            airlock::debug("level debug");
            airlock::info("level info");
            airlock::warn("level warn");
            airlock::error("level error");
        }
        "fields" => {
            let n = 3;
            airlock::info_fields("fields", &[("colour", &"blue"), ("count", &n), ("bad key", &"x"), ("msg", &"m")]);
        }
        "write" => {
            let ok = std::fs::write(format!("/data/{}", arg), format!("data of {}", arg)).is_ok();
            airlock::info(&format!("write {}: {}", arg, if ok { "ok" } else { "error" }));
        }
        "read" => match std::fs::read_to_string(format!("/data/{}", arg)) {
            Ok(s) => airlock::info(&format!("read {}: {}", arg, s)),
            Err(_) => airlock::info(&format!("read {}: error", arg)),
        },
        "sleep" => {
            let ms: i64 = arg.parse().unwrap_or(0);
            airlock::info(&format!("sleep {} begin", arg));
            match airlock::sleep_ns(ms.saturating_mul(1_000_000)) {
                Ok(()) => airlock::info(&format!("sleep {}: ok", arg)),
                Err(e) => airlock::info(&format!("sleep {}: {}", arg, e.code.map(|c| c.name()).unwrap_or("failed"))),
            }
        }
        "deadline" => {
            let d = airlock::deadline();
            airlock::info(&format!("deadline ok={}", d > Duration::ZERO && d <= Duration::from_secs(10)));
        }
        "clock" => airlock::info(&format!("clock ok={}", airlock::now_ns() > 1_600_000_000_000_000_000)),
        "fail" => return Err("handler failed on purpose".into()),
        "sup" => supervisor_step(arg),
        "cloud" => cloud_step(arg),
        "mount" => mount_step(arg),
        "dbus" => dbus_step(arg),
        _ => airlock::warn(&format!("unknown step {}", cmd)),
    }
    Ok(())
}

fn init() {
    airlock::on_start(|| {
        airlock::info("started");
        Ok(())
    });
    airlock::on_stop(|| {
        airlock::info("stopped cleanly");
        Ok(())
    });
    airlock::on_dropped(|d| {
        let kinds = |m: &Vec<(String, u64)>| {
            let mut out = String::new();
            for k in ["timer", "udev", "dbus_signal", "mount"] {
                if let Some((_, n)) = m.iter().find(|(name, _)| name == k) {
                    out += &format!(" {}:{}", k, n);
                }
            }
            out
        };
        airlock::info(&format!(
            "dropped count={} reason={} rate_limited={} coalesced={} by_kind={} coalesced_by_kind={}",
            d.count,
            d.reason,
            d.rate_limited,
            d.coalesced,
            kinds(&d.by_kind),
            kinds(&d.coalesced_by_kind)
        ));
        Ok(())
    });
    airlock::on_udev(|e| {
        airlock::info(&format!(
            "udev action={} subsystem={} devtype={} devname={} label={} uuid={} fstype={} seqnum={} coldplug={}",
            e.action,
            e.subsystem,
            e.devtype,
            e.devname,
            e.label(),
            e.uuid(),
            e.fstype(),
            e.seqnum(),
            e.coldplug()
        ));
        Ok(())
    });
    airlock::on_timer(on_timer);
    airlock::dbus::on_signal(|s| {
        airlock::info(&format!(
            "dbus signal rule={} sender_name={} path={} interface={} member={} sig={} body={}",
            s.rule,
            s.sender_name,
            s.path,
            s.interface,
            s.member,
            s.signature,
            airlock::dbus::text(&s.body)
        ));
        if let Some(pc) = s.properties_changed() {
            airlock::info(&format!(
                "dbus properties changed {}: {} changed, {} invalidated",
                pc.interface,
                pc.changed.len(),
                pc.invalidated.len()
            ));
        }
        Ok(())
    });
    airlock::mount::on_mount(|e| {
        airlock::info(&format!(
            "mount event action={} target={} source={} device={} reason={}",
            e.action, e.target, e.source, e.device, e.reason
        ));
        Ok(())
    });
}

airlock::plugin!(init);
