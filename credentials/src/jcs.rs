//! RFC 8785 JSON Canonicalization Scheme.
//!
//! `serde_json_canonicalizer` re-formats every number the ECMAScript way (it parses the
//! text kept by serde_json's `arbitrary_precision` instead of copying it), sorts keys by
//! UTF-16 code units and escapes strings minimally, as RFC 8785 requires.

use serde::Serialize;

use crate::error::{Result, malformed};

pub fn to_vec<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| malformed(format!("JCS: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn numbers_are_reformatted_and_keys_sorted() {
        // RFC 8785 section 3.2.2.3 examples, and input text that differs from the
        // canonical form (exponent, trailing zeros) whatever serde_json keeps.
        let v: Value = serde_json::from_str(
            r#"{"b": 1.0E2, "a": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000001, 1e-7, -0.0], "\u20ac": "\u00e9", "\r": "\n"}"#,
        )
        .unwrap();
        let out = String::from_utf8(to_vec(&v).unwrap()).unwrap();
        assert_eq!(
            out,
            "{\"\\r\":\"\\n\",\"a\":[333333333.3333333,1e+30,4.5,0.002,0.000001,1e-7,0],\"b\":100,\"€\":\"é\"}"
        );
    }
}
