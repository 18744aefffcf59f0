//! Outbound HTTP(S) (ABI.md §3.6), as plugin.toml's `[[http.request]]`
//! rules allow it. The host makes the request, checks every address after
//! DNS and every redirect, and adds the headers a rule attaches (a
//! host-held token the plugin never sees). The body is read in chunks,
//! through [`std::io::Read`]:
//!
//! ```ignore
//! let mut resp = airlock::http::post("https://hooks.example.com/x", "application/json", body)?;
//! let mut text = String::new();
//! std::io::Read::read_to_string(&mut resp, &mut text)?;
//! ```
//!
//! Errors: `Denied` (not granted; an address the rules refuse), `Invalid`
//! (a bad URL or header: CR, LF, NUL, one the host sets), `Timeout`,
//! `TooLarge`, `Unavailable`, `Failed` (TLS, redirects), `Busy` (8 bodies
//! open). A 4xx or 5xx status is `Ok`: it is the server's answer.

use crate::{call, Errno, Error, Record, Result};

/// The raw imports of ABI.md §3.6.
pub mod sys {
    #[link(wasm_import_module = "airlock_http_v1")]
    extern "C" {
        pub fn request(
            req_ptr: *const u8,
            req_len: u32,
            body_ptr: *const u8,
            body_len: u32,
            out_ptr: *mut u8,
            out_cap: u32,
            out_len_ptr: *mut u32,
        ) -> u32;
        pub fn body_read(body_ptr: *const u8, body_len: u32, out_ptr: *mut u8, out_cap: u32, out_len_ptr: *mut u32) -> u32;
        pub fn body_close(body_ptr: *const u8, body_len: u32, out_ptr: *mut u8, out_cap: u32, out_len_ptr: *mut u32) -> u32;
    }
}

/// One request.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    /// "" is GET.
    pub method: &'a str,
    pub url: &'a str,
    pub headers: Vec<(&'a str, &'a str)>,
    pub body: &'a [u8],
}

/// The server's answer. Reading it (`std::io::Read`) reads the body from
/// the host; dropping it closes the body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// After redirects.
    pub url: String,
    /// By canonical name ("Content-Type"), in the host's order.
    pub headers: Vec<(String, String)>,
    /// `None` if the server did not say.
    pub content_length: Option<u64>,
    body: String, // the host's handle, as the reply's "body" gave it; "" once closed
}

impl Response {
    /// The first value of header `name`, in any case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Reads the next part of the body into buf: `Ok(0)` at the end. On an
    /// error the host has closed the body.
    pub fn read_chunk(&mut self, buf: &mut [u8]) -> Result<usize> {
        if self.body.is_empty() || buf.is_empty() {
            return Ok(0);
        }
        let mut n: u32 = 0;
        let code = unsafe { sys::body_read(self.body.as_ptr(), self.body.len() as u32, buf.as_mut_ptr(), buf.len() as u32, &mut n) };
        match Errno::from_code(code) {
            None => {
                if n == 0 {
                    self.close();
                }
                Ok(n as usize)
            }
            Some(e) => {
                self.body.clear(); // the host closed it
                let msg = if (n as usize) <= buf.len() { String::from_utf8_lossy(&buf[..n as usize]).into_owned() } else { String::new() };
                Err(Error::host(e, msg))
            }
        }
    }

    /// Closes the body; dropping the response does it too.
    pub fn close(&mut self) {
        if !self.body.is_empty() {
            let h = std::mem::take(&mut self.body);
            let _ = call(|p, c, n| unsafe { sys::body_close(h.as_ptr(), h.len() as u32, p, c, n) });
        }
    }
}

impl std::io::Read for Response {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.read_chunk(buf).map_err(|e| std::io::Error::new(std::io::ErrorKind::Other, e))
    }
}

impl Drop for Response {
    fn drop(&mut self) {
        self.close();
    }
}

/// Sends a request.
pub fn send(r: &Request) -> Result<Response> {
    let mut req = Record::new();
    req.push("method", if r.method.is_empty() { "GET" } else { r.method });
    req.push("url", r.url);
    for (k, v) in &r.headers {
        req.push(&format!("header.{}", k), v);
    }
    let b = req.encode();
    let out = call(|p, c, n| unsafe { sys::request(b.as_ptr(), b.len() as u32, r.body.as_ptr(), r.body.len() as u32, p, c, n) })?;
    let rec = Record::decode(&out).map_err(|_| Error::host(Errno::Failed, "http: malformed reply"))?;
    let mut resp = Response { status: 0, url: String::new(), headers: Vec::new(), content_length: None, body: String::new() };
    for (k, v) in &rec.fields {
        let v = String::from_utf8_lossy(v).into_owned();
        match k.as_str() {
            "status" => resp.status = v.parse().unwrap_or(0),
            "url" => resp.url = v,
            "content_length" => resp.content_length = v.parse().ok(),
            "body" => resp.body = v,
            _ => {
                if let Some(name) = k.strip_prefix("header.") {
                    resp.headers.push((name.to_string(), v));
                }
            }
        }
    }
    Ok(resp)
}

/// Sends a GET.
pub fn get(url: &str) -> Result<Response> {
    send(&Request { method: "GET", url, ..Default::default() })
}

/// Sends a POST with a body of content_type.
pub fn post(url: &str, content_type: &str, body: &[u8]) -> Result<Response> {
    send(&Request { method: "POST", url, headers: vec![("Content-Type", content_type)], body })
}
