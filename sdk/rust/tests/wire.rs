//! The Rust SDK's codecs against the ABI's wire table
//! (abi/testdata/wire.txt, which the host's and every SDK's tests read):
//! every record and dbus row decodes to its text and encodes back to its
//! bytes and signature; every bad-record and bad-dbus row is refused.

use airlock::{dbus, Record};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

#[test]
fn wire_table() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../abi/testdata/wire.txt");
    let table = std::fs::read_to_string(path).expect("read abi/testdata/wire.txt");
    let mut failures = Vec::new();
    let mut rows = 0;
    for (i, line) in table.lines().enumerate() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split('\t').map(|f| if f == "-" { "" } else { f }).collect();
        assert_eq!(f.len(), 4, "wire.txt:{}: want 4 fields", i + 1);
        let (kind, sig, wire, text) = (f[0], f[1], unhex(f[2]), f[3]);
        let row = format!("wire.txt:{} {} {:?} {}", i + 1, kind, sig, f[2]);
        rows += 1;
        match kind {
            "record" => match Record::decode(&wire) {
                Err(e) => failures.push(format!("{}: {}", row, e)),
                Ok(r) => {
                    let got: Vec<String> =
                        r.fields.iter().map(|(k, v)| format!("{}={}", k, String::from_utf8_lossy(v))).collect();
                    if got.join(", ") != text {
                        failures.push(format!("{}: decoded {:?}, want {:?}", row, got.join(", "), text));
                    }
                    if r.encode() != wire {
                        failures.push(format!("{}: encoded {:?}", row, r.encode()));
                    }
                }
            },
            "bad-record" => {
                if Record::decode(&wire).is_ok() {
                    failures.push(format!("{} ({}): decoded", row, text));
                }
            }
            "dbus" => match dbus::decode(sig, &wire) {
                Err(e) => failures.push(format!("{}: {}", row, e)),
                Ok(vals) => {
                    if dbus::text(&vals) != text {
                        failures.push(format!("{}: decoded {}, want {}", row, dbus::text(&vals), text));
                    }
                    match dbus::encode(&vals) {
                        Ok((s, b)) if s == sig && b == wire => {}
                        other => failures.push(format!("{}: re-encoded {:?}", row, other)),
                    }
                }
            },
            "bad-dbus" => {
                if let Ok(vals) = dbus::decode(sig, &wire) {
                    failures.push(format!("{} ({}): decoded to {}", row, text, dbus::text(&vals)));
                }
            }
            // The host's alone: the SDK decodes only what the host wrote.
            "bad-dbus-host" => {}
            _ => failures.push(format!("{}: unknown kind", row)),
        }
    }
    assert!(rows > 0, "wire.txt has no rows");
    assert!(failures.is_empty(), "{} rows fail:\n{}", failures.len(), failures.join("\n"));
}
