//! Multibase: base58btc (`z`) for keys and Data Integrity signatures, base64url (`u`)
//! for the status list bitstring.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::error::{Result, malformed};

pub fn encode_base58btc(bytes: &[u8]) -> String {
    format!("z{}", bs58::encode(bytes).into_string())
}

pub fn decode_base58btc(s: &str) -> Result<Vec<u8>> {
    let body = s
        .strip_prefix('z')
        .ok_or_else(|| malformed(format!("multibase {s:.12}... is not base58btc ('z')")))?;
    bs58::decode(body)
        .into_vec()
        .map_err(|e| malformed(format!("base58btc: {e}")))
}

pub fn encode_base64url(bytes: &[u8]) -> String {
    format!("u{}", B64.encode(bytes))
}

pub fn decode_base64url(s: &str) -> Result<Vec<u8>> {
    let body = s
        .strip_prefix('u')
        .ok_or_else(|| malformed("multibase value is not base64url ('u')"))?;
    B64.decode(body)
        .map_err(|e| malformed(format!("base64url: {e}")))
}
