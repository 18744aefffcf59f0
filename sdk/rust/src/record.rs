//! The record, ABI v1's one payload encoding: `u32 count`, then `count`
//! times `u32 key_len, key, u32 value_len, value`, little-endian.

use std::fmt;

/// A decoder rejects a record with more fields than this.
pub const MAX_RECORD_FIELDS: usize = 4096;

/// An ordered list of key/value fields; keys may repeat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Record {
    pub fields: Vec<(String, Vec<u8>)>,
}

/// A record whose lengths do not fit its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordError;

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("abi: malformed record")
    }
}

impl std::error::Error for RecordError {}

fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    let s = b.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

impl Record {
    pub fn new() -> Record {
        Record::default()
    }

    /// Appends a field.
    pub fn push(&mut self, key: &str, value: impl AsRef<[u8]>) -> &mut Record {
        self.fields.push((key.to_string(), value.as_ref().to_vec()));
        self
    }

    /// The value of the first field named key.
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_slice())
    }

    /// get as a string (invalid UTF-8 replaced).
    pub fn get_str(&self, key: &str) -> Option<String> {
        self.get(key).map(|v| String::from_utf8_lossy(v).into_owned())
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Decodes b; an empty b is an empty record.
    pub fn decode(b: &[u8]) -> Result<Record, RecordError> {
        if b.is_empty() {
            return Ok(Record::default());
        }
        let n = u32_at(b, 0).ok_or(RecordError)? as usize;
        if n > MAX_RECORD_FIELDS || n * 8 > b.len() - 4 {
            return Err(RecordError);
        }
        let mut off = 4;
        let chunk = |off: &mut usize| -> Result<Vec<u8>, RecordError> {
            let l = u32_at(b, *off).ok_or(RecordError)? as usize;
            *off += 4;
            let v = b.get(*off..off.checked_add(l).ok_or(RecordError)?).ok_or(RecordError)?;
            *off += l;
            Ok(v.to_vec())
        };
        let mut fields = Vec::with_capacity(n);
        for _ in 0..n {
            let k = chunk(&mut off)?;
            let v = chunk(&mut off)?;
            fields.push((String::from_utf8_lossy(&k).into_owned(), v));
        }
        if off != b.len() {
            return Err(RecordError);
        }
        Ok(Record { fields })
    }

    /// Encodes the record.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.fields.len() as u32).to_le_bytes());
        for (k, v) in &self.fields {
            out.extend_from_slice(&(k.len() as u32).to_le_bytes());
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(&(v.len() as u32).to_le_bytes());
            out.extend_from_slice(v);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let mut r = Record::new();
        r.push("name", "fast").push("time", "2024");
        assert_eq!(Record::decode(&r.encode()), Ok(r.clone()));
        assert_eq!(r.get_str("name").as_deref(), Some("fast"));
    }
}
