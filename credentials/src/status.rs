//! Bitstring Status List v1.0 (revocation): a bitstring of at least 131,072 entries,
//! GZIP-compressed and multibase base64url encoded (`u...`). Bit 0 is the left-most
//! (most significant) bit of the first byte; a set bit means revoked.

use std::io::{Read, Write};

use crate::error::{Error, Result, malformed};
use crate::multibase;

/// The specification's minimum size (16 KiB of bits), for herd privacy.
pub const MIN_ENTRIES: usize = 131_072;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bitstring {
    bytes: Vec<u8>,
}

impl Bitstring {
    /// A list with room for `entries` (rounded up to the minimum and to whole bytes).
    pub fn new(entries: usize) -> Self {
        let n = entries.max(MIN_ENTRIES).div_ceil(8);
        Bitstring { bytes: vec![0; n] }
    }

    pub fn len(&self) -> usize {
        self.bytes.len() * 8
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub fn get(&self, index: usize) -> Result<bool> {
        let byte = self.bytes.get(index / 8).ok_or_else(|| {
            Error::Invalid(format!(
                "status index {index} is outside the list ({} entries)",
                self.len()
            ))
        })?;
        Ok(byte & (0x80 >> (index % 8)) != 0)
    }

    pub fn set(&mut self, index: usize, value: bool) -> Result<()> {
        let len = self.len();
        let byte = self.bytes.get_mut(index / 8).ok_or_else(|| {
            Error::Invalid(format!(
                "status index {index} is outside the list ({len} entries)"
            ))
        })?;
        let mask = 0x80 >> (index % 8);
        if value {
            *byte |= mask;
        } else {
            *byte &= !mask;
        }
        Ok(())
    }

    /// The indices that are set, ascending.
    pub fn set_indices(&self) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| self.bytes[i / 8] & (0x80 >> (i % 8)) != 0)
            .collect()
    }

    /// `encodedList`: GZIP (fixed header: no name, mtime 0, so reproducible), then
    /// multibase base64url.
    pub fn encode(&self) -> Result<String> {
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::best());
        gz.write_all(&self.bytes)
            .map_err(|e| malformed(format!("gzip: {e}")))?;
        let compressed = gz.finish().map_err(|e| malformed(format!("gzip: {e}")))?;
        Ok(multibase::encode_base64url(&compressed))
    }

    pub fn decode(encoded: &str) -> Result<Self> {
        let compressed = multibase::decode_base64url(encoded)?;
        let mut bytes = Vec::new();
        // Bounded: a status list is at most a few MiB; refuse decompression bombs.
        flate2::read::GzDecoder::new(&compressed[..])
            .take(64 << 20)
            .read_to_end(&mut bytes)
            .map_err(|e| malformed(format!("encodedList is not GZIP: {e}")))?;
        if bytes.len() * 8 < MIN_ENTRIES {
            return Err(Error::Invalid(format!(
                "status list has {} entries, fewer than the minimum {MIN_ENTRIES}",
                bytes.len() * 8
            )));
        }
        Ok(Bitstring { bytes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_get_encode_decode() {
        let mut b = Bitstring::new(10);
        assert_eq!(b.len(), MIN_ENTRIES);
        b.set(0, true).unwrap();
        b.set(94_567, true).unwrap();
        assert_eq!(b.bytes[0], 0x80);
        let enc = b.encode().unwrap();
        assert!(enc.starts_with('u'));
        assert_eq!(enc, b.encode().unwrap(), "reproducible");
        let d = Bitstring::decode(&enc).unwrap();
        assert_eq!(d.set_indices(), vec![0, 94_567]);
        assert!(d.get(94_567).unwrap() && !d.get(94_566).unwrap());
        assert!(d.get(MIN_ENTRIES).is_err());
        // An empty list of the minimum size compresses to a few dozen bytes.
        assert!(Bitstring::new(0).encode().unwrap().len() < 200);
    }
}
