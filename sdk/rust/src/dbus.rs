//! The system bus (ABI.md §3.3), as the plugin's `[[dbus.call]]` and
//! `[[dbus.property]]` rules allow it. It reads like the Go SDK (and
//! godbus):
//!
//! ```ignore
//! use airlock::dbus::{self, Value};
//! let systemd = dbus::object("org.freedesktop.systemd1", "/org/freedesktop/systemd1");
//! let reply = systemd.call("org.freedesktop.systemd1.Manager.StopUnit", &["bluetooth.service".into(), "replace".into()])?;
//! airlock::info(&format!("job {}", reply.body[0]));
//! ```
//!
//! A call the manifest does not allow is `Denied` with a message naming
//! what is missing; the bus being down is `Unavailable`; past the handler
//! deadline, `Timeout`. An error from the peer is `NotFound`, `Invalid` or
//! `Failed`, with a message that starts with the D-Bus error name (see
//! [`error_name`]). Values cross the ABI in the encoding of §3.3.2, which
//! [`encode`] and [`decode`] implement; [`Value`]'s `Display` writes the
//! text form that the conformance suite compares across SDKs.

use std::collections::BTreeMap;
use std::fmt;

use crate::{Errno, Error, Event, Record, Result};

/// The raw imports of ABI.md §3.3.3. `call` shares its name with the
/// supervisor's; the import modules tell them apart.
#[allow(clashing_extern_declarations)]
pub mod sys {
    #[link(wasm_import_module = "airlock_dbus_v1")]
    extern "C" {
        pub fn call(req_ptr: *const u8, req_len: u32, out_ptr: *mut u8, out_cap: u32, out_len_ptr: *mut u32) -> u32;
        pub fn get_property(req_ptr: *const u8, req_len: u32, out_ptr: *mut u8, out_cap: u32, out_len_ptr: *mut u32) -> u32;
        pub fn get_all_properties(req_ptr: *const u8, req_len: u32, out_ptr: *mut u8, out_cap: u32, out_len_ptr: *mut u32)
            -> u32;
        pub fn set_property(req_ptr: *const u8, req_len: u32, out_ptr: *mut u8, out_cap: u32, out_len_ptr: *mut u32) -> u32;
    }
}

/// A D-Bus value. Arrays and dicts carry their element signature, so that
/// an empty one still has a type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Byte(u8),
    Bool(bool),
    Int16(i16),
    UInt16(u16),
    Int32(i32),
    UInt32(u32),
    Int64(i64),
    UInt64(u64),
    Double(f64),
    Str(String),
    ObjectPath(String),
    Signature(String),
    /// `aT`: the element signature T and the elements.
    Array(String, Vec<Value>),
    /// `a{KV}`: the key and value signatures and the entries, in order.
    Dict(String, String, Vec<(Value, Value)>),
    /// `(T1...Tn)`.
    Struct(Vec<Value>),
    /// `v`: a value with its own signature.
    Variant(Box<Value>),
}

impl Value {
    /// Wraps v in a variant.
    pub fn variant(v: impl Into<Value>) -> Value {
        Value::Variant(Box::new(v.into()))
    }
    /// An object path (`o`).
    pub fn path(p: &str) -> Value {
        Value::ObjectPath(p.to_string())
    }
    /// An array of elem_sig elements.
    pub fn array(elem_sig: &str, items: Vec<Value>) -> Value {
        Value::Array(elem_sig.to_string(), items)
    }
    /// The value's complete signature.
    pub fn signature(&self) -> String {
        use Value::*;
        match self {
            Byte(_) => "y".into(),
            Bool(_) => "b".into(),
            Int16(_) => "n".into(),
            UInt16(_) => "q".into(),
            Int32(_) => "i".into(),
            UInt32(_) => "u".into(),
            Int64(_) => "x".into(),
            UInt64(_) => "t".into(),
            Double(_) => "d".into(),
            Str(_) => "s".into(),
            ObjectPath(_) => "o".into(),
            Signature(_) => "g".into(),
            Array(t, _) => format!("a{}", t),
            Dict(k, v, _) => format!("a{{{}{}}}", k, v),
            Struct(fs) => format!("({})", fs.iter().map(|f| f.signature()).collect::<String>()),
            Variant(_) => "v".into(),
        }
    }
    /// The text of a string, object path or signature (through variants).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) | Value::ObjectPath(s) | Value::Signature(s) => Some(s),
            Value::Variant(v) => v.as_str(),
            _ => None,
        }
    }
    /// A boolean (through variants).
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Variant(v) => v.as_bool(),
            _ => None,
        }
    }
    /// Any integer as i64 (a u64 above i64::MAX gives None), through variants.
    pub fn as_i64(&self) -> Option<i64> {
        use Value::*;
        match *self {
            Byte(v) => Some(v as i64),
            Int16(v) => Some(v as i64),
            UInt16(v) => Some(v as i64),
            Int32(v) => Some(v as i64),
            UInt32(v) => Some(v as i64),
            Int64(v) => Some(v),
            UInt64(v) => i64::try_from(v).ok(),
            Variant(ref v) => v.as_i64(),
            _ => None,
        }
    }
    /// The value inside a variant, or the value itself.
    pub fn inner(&self) -> &Value {
        match self {
            Value::Variant(v) => v.inner(),
            v => v,
        }
    }
}

macro_rules! from {
    ($t:ty, $v:ident) => {
        impl From<$t> for Value {
            fn from(x: $t) -> Value {
                Value::$v(x)
            }
        }
    };
}
from!(u8, Byte);
from!(bool, Bool);
from!(i16, Int16);
from!(u16, UInt16);
from!(i32, Int32);
from!(u32, UInt32);
from!(i64, Int64);
from!(u64, UInt64);
from!(f64, Double);
from!(String, Str);
impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

/// The text form: numbers in decimal, `true`/`false`, `"string"`,
/// `o"/path"`, `g"sig"`, `[a, b]`, `{k: v}`, `(a, b)`, `<sig value>`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Value::*;
        match self {
            Byte(v) => write!(f, "{}", v),
            Bool(v) => write!(f, "{}", v),
            Int16(v) => write!(f, "{}", v),
            UInt16(v) => write!(f, "{}", v),
            Int32(v) => write!(f, "{}", v),
            UInt32(v) => write!(f, "{}", v),
            Int64(v) => write!(f, "{}", v),
            UInt64(v) => write!(f, "{}", v),
            Double(v) => write!(f, "{}", v),
            Str(s) => write!(f, "\"{}\"", s),
            ObjectPath(s) => write!(f, "o\"{}\"", s),
            Signature(s) => write!(f, "g\"{}\"", s),
            Array(_, items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", v)?;
                }
                f.write_str("]")
            }
            Dict(_, _, entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}: {}", k, v)?;
                }
                f.write_str("}")
            }
            Struct(fields) => {
                f.write_str("(")?;
                for (i, v) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", v)?;
                }
                f.write_str(")")
            }
            Variant(v) => write!(f, "<{} {}>", v.signature(), v),
        }
    }
}

/// Writes values in the text form, separated by ", ".
pub fn text(values: &[Value]) -> String {
    values.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", ")
}

fn invalid(msg: String) -> Error {
    Error::host(Errno::Invalid, msg)
}

/// Encodes values (ABI.md §3.3.2) and returns their signature and body.
pub fn encode(values: &[Value]) -> Result<(String, Vec<u8>)> {
    let mut sig = String::new();
    let mut out = Vec::new();
    for v in values {
        sig.push_str(&v.signature());
        encode_value(&mut out, v, 0)?;
    }
    if sig.len() > 255 {
        return Err(invalid(format!("dbus: signature {:?} is longer than 255 bytes", sig)));
    }
    Ok((sig, out))
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn encode_value(out: &mut Vec<u8>, v: &Value, depth: usize) -> Result {
    use Value::*;
    if depth > 64 {
        return Err(invalid("dbus: value nested too deep".into()));
    }
    match v {
        Byte(x) => out.push(*x),
        Bool(x) => out.push(*x as u8),
        Int16(x) => out.extend_from_slice(&x.to_le_bytes()),
        UInt16(x) => out.extend_from_slice(&x.to_le_bytes()),
        Int32(x) => out.extend_from_slice(&x.to_le_bytes()),
        UInt32(x) => out.extend_from_slice(&x.to_le_bytes()),
        Int64(x) => out.extend_from_slice(&x.to_le_bytes()),
        UInt64(x) => out.extend_from_slice(&x.to_le_bytes()),
        Double(x) => out.extend_from_slice(&x.to_bits().to_le_bytes()),
        Str(s) | ObjectPath(s) | Signature(s) => put_str(out, s),
        Array(t, items) => {
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for it in items {
                if &it.signature() != t {
                    return Err(invalid(format!("dbus: array of {} holds a {}", t, it.signature())));
                }
                encode_value(out, it, depth + 1)?;
            }
        }
        Dict(kt, vt, entries) => {
            out.extend_from_slice(&(entries.len() as u32).to_le_bytes());
            for (k, val) in entries {
                if &k.signature() != kt || &val.signature() != vt {
                    return Err(invalid(format!("dbus: dict of {}{} holds {}{}", kt, vt, k.signature(), val.signature())));
                }
                encode_value(out, k, depth + 1)?;
                encode_value(out, val, depth + 1)?;
            }
        }
        Struct(fields) => {
            if fields.is_empty() {
                return Err(invalid("dbus: an empty struct has no D-Bus type".into()));
            }
            for f in fields {
                encode_value(out, f, depth + 1)?;
            }
        }
        Variant(inner) => {
            put_str(out, &inner.signature());
            encode_value(out, inner, depth + 1)?;
        }
    }
    Ok(())
}

/// The length of the complete type that starts sig.
fn type_len(sig: &[u8], depth: usize) -> Option<usize> {
    if depth > 64 {
        return None;
    }
    match *sig.first()? {
        b'a' => {
            if sig.get(1) == Some(&b'{') {
                if !b"ybnqiuxtdsog".contains(sig.get(2)?) {
                    return None;
                }
                let k = 1;
                let v = type_len(&sig[2 + k..], depth + 1)?;
                if sig.get(2 + k + v) != Some(&b'}') {
                    return None;
                }
                Some(3 + k + v)
            } else {
                Some(1 + type_len(&sig[1..], depth + 1)?)
            }
        }
        b'(' => {
            let mut i = 1;
            while *sig.get(i)? != b')' {
                i += type_len(&sig[i..], depth + 1)?;
            }
            if i == 1 {
                return None;
            }
            Some(i + 1)
        }
        c if b"ybnqiuxtdsogv".contains(&c) => Some(1),
        _ => None,
    }
}

/// Splits a signature into its complete types.
pub fn split_signature(sig: &str) -> Result<Vec<&str>> {
    if sig.len() > 255 {
        return Err(invalid(format!("dbus: signature of {} bytes, over 255", sig.len())));
    }
    let mut out = Vec::new();
    let mut rest = sig;
    while !rest.is_empty() {
        let n = type_len(rest.as_bytes(), 0).ok_or_else(|| invalid(format!("dbus: bad signature {:?}", sig)))?;
        out.push(&rest[..n]);
        rest = &rest[n..];
    }
    Ok(out)
}

/// Decodes a body (ABI.md §3.3.2) of the given signature.
pub fn decode(sig: &str, body: &[u8]) -> Result<Vec<Value>> {
    let mut d = Decoder { b: body };
    let mut out = Vec::new();
    for t in split_signature(sig)? {
        out.push(d.value(t, 0)?);
    }
    if !d.b.is_empty() {
        return Err(invalid(format!("dbus: {} bytes left after signature {:?}", d.b.len(), sig)));
    }
    Ok(out)
}

struct Decoder<'a> {
    b: &'a [u8],
}

impl<'a> Decoder<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.b.len() {
            return Err(invalid("dbus: body too short".into()));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn string(&mut self) -> Result<String> {
        let n = self.u32()? as usize;
        Ok(String::from_utf8_lossy(self.take(n)?).into_owned())
    }
    fn value(&mut self, t: &str, depth: usize) -> Result<Value> {
        if depth > 64 {
            return Err(invalid("dbus: nested too deep".into()));
        }
        let b = t.as_bytes();
        macro_rules! le {
            ($ty:ty, $n:expr) => {{
                let s = self.take($n)?;
                let mut a = [0u8; $n];
                a.copy_from_slice(s);
                <$ty>::from_le_bytes(a)
            }};
        }
        Ok(match b[0] {
            b'y' => Value::Byte(self.take(1)?[0]),
            b'b' => match self.take(1)?[0] {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                x => return Err(invalid(format!("dbus: boolean byte {} is neither 0 nor 1", x))),
            },
            b'n' => Value::Int16(le!(i16, 2)),
            b'q' => Value::UInt16(le!(u16, 2)),
            b'i' => Value::Int32(le!(i32, 4)),
            b'u' => Value::UInt32(le!(u32, 4)),
            b'x' => Value::Int64(le!(i64, 8)),
            b't' => Value::UInt64(le!(u64, 8)),
            b'd' => Value::Double(f64::from_bits(le!(u64, 8))),
            b's' => Value::Str(self.string()?),
            b'o' => Value::ObjectPath(self.string()?),
            b'g' => Value::Signature(self.string()?),
            b'v' => {
                let s = self.string()?;
                if type_len(s.as_bytes(), depth + 1) != Some(s.len()) {
                    return Err(invalid(format!("dbus: bad variant signature {:?}", s)));
                }
                Value::variant(self.value(&s, depth + 1)?)
            }
            b'a' => {
                let n = self.u32()? as usize;
                if n > self.b.len() {
                    return Err(invalid("dbus: body too short".into()));
                }
                if b[1] == b'{' {
                    let inner = &t[2..t.len() - 1];
                    let kl = type_len(inner.as_bytes(), depth + 1).ok_or_else(|| invalid("dbus: bad dict".into()))?;
                    let (kt, vt) = inner.split_at(kl);
                    let mut entries = Vec::with_capacity(n);
                    for _ in 0..n {
                        let k = self.value(kt, depth + 1)?;
                        let v = self.value(vt, depth + 1)?;
                        entries.push((k, v));
                    }
                    Value::Dict(kt.to_string(), vt.to_string(), entries)
                } else {
                    let et = &t[1..];
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.value(et, depth + 1)?);
                    }
                    Value::Array(et.to_string(), items)
                }
            }
            b'(' => {
                let mut fields = Vec::new();
                for ft in split_signature(&t[1..t.len() - 1])? {
                    fields.push(self.value(ft, depth + 1)?);
                }
                Value::Struct(fields)
            }
            c => return Err(invalid(format!("dbus: unknown type {:?}", c as char))),
        })
    }
}

/// A remote object on the system bus: a destination and an object path.
#[derive(Clone, Debug)]
pub struct Object {
    pub destination: String,
    pub path: String,
    /// If nonzero, bounds each call below the host's own bound and the
    /// handler's deadline.
    pub timeout_ms: u32,
}

/// Names a remote object.
pub fn object(destination: &str, path: &str) -> Object {
    Object { destination: destination.to_string(), path: path.to_string(), timeout_ms: 0 }
}

/// A method call's result.
#[derive(Clone, Debug)]
pub struct Reply {
    pub signature: String,
    pub body: Vec<Value>,
}

fn split_method(m: &str) -> Result<(&str, &str)> {
    match m.rfind('.') {
        Some(i) if i > 0 && i < m.len() - 1 => Ok((&m[..i], &m[i + 1..])),
        _ => Err(invalid(format!("{:?} is not interface.member", m))),
    }
}

type RawFn = unsafe extern "C" fn(*const u8, u32, *mut u8, u32, *mut u32) -> u32;

fn request(f: RawFn, req: &Record) -> Result<Reply> {
    let mut req = req.clone();
    let b = req.push("errors", "record").encode();
    let out = match crate::call_bytes(|p, cap, n| unsafe { f(b.as_ptr(), b.len() as u32, p, cap, n) })? {
        (None, out) => out,
        (Some(code), out) => return Err(error_record(code, &out)),
    };
    let rec = Record::decode(&out).map_err(|e| Error::host(Errno::Failed, format!("dbus: bad reply record: {}", e)))?;
    let sig = rec.get_str("signature").unwrap_or_default();
    let body = decode(&sig, rec.get("body").unwrap_or(&[])).map_err(|e| Error::host(Errno::Failed, e.msg))?;
    Ok(Reply { signature: sig, body })
}

impl Object {
    fn base(&self, iface: &str) -> Record {
        let mut r = Record::new();
        r.push("destination", &self.destination).push("path", &self.path).push("interface", iface);
        if self.timeout_ms > 0 {
            r.push("timeout_ms", self.timeout_ms.to_string());
        }
        r
    }

    /// Calls method ("interface.Member") with args.
    pub fn call(&self, method: &str, args: &[Value]) -> Result<Reply> {
        let (iface, member) = split_method(method)?;
        let (sig, body) = encode(args)?;
        let mut req = self.base(iface);
        req.push("member", member).push("signature", sig).push("body", body);
        request(sys::call, &req)
    }

    /// Reads property ("interface.Name"): a variant.
    pub fn get_property(&self, property: &str) -> Result<Value> {
        let (iface, name) = split_method(property)?;
        let mut req = self.base(iface);
        req.push("name", name);
        let mut r = request(sys::get_property, &req)?;
        match r.body.pop() {
            Some(v @ Value::Variant(_)) if r.body.is_empty() => Ok(v),
            _ => Err(Error::host(Errno::Failed, format!("dbus: get_property replied {:?}", r.signature))),
        }
    }

    /// Reads the properties of iface that the manifest lets the plugin read
    /// (the host leaves out the others), by name.
    pub fn get_all_properties(&self, iface: &str) -> Result<BTreeMap<String, Value>> {
        let mut r = request(sys::get_all_properties, &self.base(iface))?;
        match r.body.pop() {
            Some(Value::Dict(_, _, entries)) if r.body.is_empty() => {
                Ok(entries.into_iter().filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v))).collect())
            }
            _ => Err(Error::host(Errno::Failed, format!("dbus: get_all_properties replied {:?}", r.signature))),
        }
    }

    /// Writes property ("interface.Name"); a Variant value is unwrapped,
    /// since the host wraps the value in one.
    pub fn set_property(&self, property: &str, value: Value) -> Result {
        let (iface, name) = split_method(property)?;
        let value = match value {
            Value::Variant(v) => *v,
            v => v,
        };
        let (sig, body) = encode(&[value])?;
        let mut req = self.base(iface);
        req.push("name", name).push("signature", sig).push("body", body);
        request(sys::set_property, &req).map(|_| ())
    }
}

/// Returns the D-Bus error name that a failed call carries
/// ("org.freedesktop.systemd1.NoSuchUnit"), or None if the error did not
/// come from the peer: the error's `name`.
pub fn error_name(e: &Error) -> Option<String> {
    e.name.clone()
}

/// The error for an error's result: a record (`message`, `error_name`),
/// or, from a host before error records, the message itself.
fn error_record(code: Errno, out: &[u8]) -> Error {
    match Record::decode(out) {
        Ok(r) if r.fields.first().map(|f| f.0.as_str()) == Some("message") => Error {
            code: Some(code),
            msg: r.get_str("message").unwrap_or_default(),
            name: r.get_str("error_name"),
        },
        _ => Error::host(code, String::from_utf8_lossy(out).into_owned()),
    }
}

/// A D-Bus signal that a `[[trigger.dbus]]` rule matched.
#[derive(Clone, Debug)]
pub struct Signal {
    /// The sender's unique name, ":1.42".
    pub sender: String,
    /// The rule's sender, "org.freedesktop.timedate1".
    pub sender_name: String,
    pub path: String,
    pub interface: String,
    pub member: String,
    /// The rule's name, if it has one.
    pub rule: String,
    pub signature: String,
    pub body: Vec<Value>,
}

/// An org.freedesktop.DBus.Properties PropertiesChanged signal, decoded.
#[derive(Clone, Debug)]
pub struct PropertiesChanged {
    pub interface: String,
    pub changed: BTreeMap<String, Value>,
    pub invalidated: Vec<String>,
}

impl Signal {
    /// Decodes a PropertiesChanged signal, or None for another signal.
    pub fn properties_changed(&self) -> Option<PropertiesChanged> {
        if self.interface != "org.freedesktop.DBus.Properties" || self.member != "PropertiesChanged" || self.signature != "sa{sv}as" {
            return None;
        }
        match &self.body[..] {
            [Value::Str(iface), Value::Dict(_, _, changed), Value::Array(_, inv)] => Some(PropertiesChanged {
                interface: iface.clone(),
                changed: changed.iter().filter_map(|(k, v)| k.as_str().map(|k| (k.to_string(), v.clone()))).collect(),
                invalidated: inv.iter().filter_map(|v| v.as_str().map(String::from)).collect(),
            }),
            _ => None,
        }
    }
}

/// Runs h for each signal that the plugin's `[[trigger.dbus]]` rules match.
pub fn on_signal<F: Fn(&Signal) -> Result + 'static>(h: F) {
    crate::handle(crate::EVENT_DBUS_SIGNAL, move |e: &Event| {
        let signature = e.get("signature");
        let body = decode(&signature, e.fields.get("body").unwrap_or(&[]))?;
        h(&Signal {
            sender: e.get("sender"),
            sender_name: e.get("sender_name"),
            path: e.get("path"),
            interface: e.get("interface"),
            member: e.get("member"),
            rule: e.get("rule"),
            signature,
            body,
        })
    })
}
