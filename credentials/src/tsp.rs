//! RFC 3161 time-stamp protocol, the client side: a `TimeStampReq` for a SHA-256
//! digest (nonce, `certReq` true) and the checks of the TSA's `TimeStampResp` that
//! bind it to that request: status granted, the token's `TSTInfo` carrying our
//! message imprint and nonce. The token's CMS signature is checked by whoever trusts
//! the TSA (`openssl ts -verify -CAfile ...`, see docs/credentials.md); gco stores
//! the response DER as the TSA sent it.
//!
//! The DER here is a fixed request and a walk along the response's
//! tag-length-value structure; the tests run against responses of a real
//! `openssl ts` TSA (`tests/data/tsa/`).

use crate::error::{Error, Result};

/// `id-sha256` (2.16.840.1.101.3.4.2.1) with NULL parameters, DER.
const SHA256_ALG: [u8; 15] = [
    0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05, 0x00,
];
/// `id-signedData` (1.2.840.113549.1.7.2).
const OID_SIGNED_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/// `id-ct-TSTInfo` (1.2.840.113549.1.9.16.1.4).
const OID_TST_INFO: [u8; 11] = [
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x10, 0x01, 0x04,
];

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const OCTET_STRING: u8 = 0x04;
const OID: u8 = 0x06;
const GENERALIZED_TIME: u8 = 0x18;
const CONTEXT_0: u8 = 0xa0;

fn bad(why: impl Into<String>) -> Error {
    Error::Invalid(format!("time-stamp response: {}", why.into()))
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        let len = n.to_be_bytes();
        let skip = len.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (len.len() - skip) as u8);
        out.extend_from_slice(&len[skip..]);
    }
    out.extend_from_slice(content);
    out
}

/// A non-negative integer's DER content (minimal, a leading zero when the top bit
/// is set).
fn uint(v: u64) -> Vec<u8> {
    let b = v.to_be_bytes();
    let skip = b.iter().take_while(|x| **x == 0).count().min(7);
    let mut out = Vec::new();
    if b[skip] & 0x80 != 0 {
        out.push(0);
    }
    out.extend_from_slice(&b[skip..]);
    out
}

/// The DER `TimeStampReq` (v1) for a SHA-256 digest, with a nonce and `certReq` true
/// (the TSA includes its certificate, so the token verifies with the CA alone).
pub fn request(sha256: &[u8; 32], nonce: u64) -> Vec<u8> {
    let imprint = tlv(
        SEQUENCE,
        &[&SHA256_ALG[..], &tlv(OCTET_STRING, sha256)].concat(),
    );
    tlv(
        SEQUENCE,
        &[
            tlv(INTEGER, &[1]),
            imprint,
            tlv(INTEGER, &uint(nonce)),
            vec![0x01, 0x01, 0xff],
        ]
        .concat(),
    )
}

/// Reads DER tag-length-value elements one after another.
struct Der<'a>(&'a [u8]);

impl<'a> Der<'a> {
    fn next(&mut self) -> Result<Option<(u8, &'a [u8])>> {
        let d = self.0;
        if d.is_empty() {
            return Ok(None);
        }
        if d.len() < 2 {
            return Err(bad("truncated DER"));
        }
        let (tag, first) = (d[0], d[1] as usize);
        if tag & 0x1f == 0x1f {
            return Err(bad("multi-byte DER tags are not expected here"));
        }
        let (len, start) = if first < 0x80 {
            (first, 2)
        } else {
            let k = first & 0x7f;
            if k == 0 || k > 4 || d.len() < 2 + k {
                return Err(bad("unsupported DER length"));
            }
            let len = d[2..2 + k]
                .iter()
                .fold(0usize, |a, b| (a << 8) | *b as usize);
            (len, 2 + k)
        };
        let end = start.checked_add(len).filter(|e| *e <= d.len());
        let end = end.ok_or_else(|| bad("DER length beyond the data"))?;
        self.0 = &d[end..];
        Ok(Some((tag, &d[start..end])))
    }

    fn expect(&mut self, tag: u8, what: &str) -> Result<&'a [u8]> {
        match self.next()? {
            Some((t, v)) if t == tag => Ok(v),
            Some((t, _)) => Err(bad(format!("{what}: tag 0x{t:02x}, expected 0x{tag:02x}"))),
            None => Err(bad(format!("{what} missing"))),
        }
    }
}

/// What a checked response says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeStamp {
    /// `genTime` as the TSA wrote it (GeneralizedTime, e.g. `20261126221500Z`).
    pub gen_time: String,
    /// The token's serial number, hex.
    pub serial: String,
    /// The TSA policy, dotted.
    pub policy: String,
}

fn oid_text(b: &[u8]) -> String {
    let mut parts = Vec::new();
    let mut v: u64 = 0;
    for x in b {
        v = (v << 7) | u64::from(x & 0x7f);
        if x & 0x80 == 0 {
            if parts.is_empty() {
                let first = (v / 40).min(2);
                parts.push(first);
                parts.push(v - first * 40);
            } else {
                parts.push(v);
            }
            v = 0;
        }
    }
    parts
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// Checks a DER `TimeStampResp` against the request it answers: status granted (or
/// granted with modifications), a SignedData token whose `TSTInfo` carries the same
/// SHA-256 imprint and nonce.
pub fn check_response(resp: &[u8], sha256: &[u8; 32], nonce: u64) -> Result<TimeStamp> {
    let (ts, got) = parse_response(resp, sha256)?;
    match got {
        Some(n) if n == uint(nonce) => Ok(ts),
        Some(_) => Err(bad(
            "the token's nonce is not the request's (a replayed response?)",
        )),
        None => Err(bad("the token has no nonce; the request sent one")),
    }
}

/// Reads a stored response: status granted and the imprint the given digest (the
/// nonce was checked when it was received).
pub fn read_response(resp: &[u8], sha256: &[u8; 32]) -> Result<TimeStamp> {
    parse_response(resp, sha256).map(|(ts, _)| ts)
}

fn parse_response<'a>(resp: &'a [u8], sha256: &[u8; 32]) -> Result<(TimeStamp, Option<&'a [u8]>)> {
    let mut top = Der(resp);
    let body = top.expect(SEQUENCE, "TimeStampResp")?;
    let mut body = Der(body);
    let mut status = Der(body.expect(SEQUENCE, "PKIStatusInfo")?);
    let code = status.expect(INTEGER, "PKIStatus")?;
    if code != [0] && code != [1] {
        // statusString: a SEQUENCE of UTF8String.
        let mut text = Vec::new();
        if let Some((SEQUENCE, v)) = status.next()? {
            let mut strings = Der(v);
            while let Some((_, s)) = strings.next()? {
                text.push(String::from_utf8_lossy(s).into_owned());
            }
        }
        let text = text.join("; ");
        return Err(bad(format!(
            "the TSA refused the request (PKIStatus {code:?}) {text}"
        )));
    }
    let mut content_info = Der(body.expect(SEQUENCE, "timeStampToken")?);
    if content_info.expect(OID, "contentType")? != OID_SIGNED_DATA {
        return Err(bad("the token is not CMS SignedData"));
    }
    let mut explicit = Der(content_info.expect(CONTEXT_0, "SignedData")?);
    let mut signed = Der(explicit.expect(SEQUENCE, "SignedData")?);
    signed.expect(INTEGER, "SignedData version")?;
    signed.expect(0x31, "digestAlgorithms")?;
    let mut encap = Der(signed.expect(SEQUENCE, "encapContentInfo")?);
    if encap.expect(OID, "eContentType")? != OID_TST_INFO {
        return Err(bad("the signed content is not a TSTInfo"));
    }
    let mut econtent = Der(encap.expect(CONTEXT_0, "eContent")?);
    let tst = econtent.expect(OCTET_STRING, "eContent")?;
    let mut tst = Der(Der(tst).expect(SEQUENCE, "TSTInfo")?);
    tst.expect(INTEGER, "TSTInfo version")?;
    let policy = oid_text(tst.expect(OID, "policy")?);
    let mut imprint = Der(tst.expect(SEQUENCE, "messageImprint")?);
    let alg = imprint.expect(SEQUENCE, "hashAlgorithm")?;
    // Parameters may be absent or NULL: the OID decides.
    let oid = Der(alg).expect(OID, "hashAlgorithm")?;
    if oid != &SHA256_ALG[4..13] {
        return Err(bad(format!(
            "imprint hash algorithm {} is not SHA-256",
            oid_text(oid)
        )));
    }
    if imprint.expect(OCTET_STRING, "hashedMessage")? != sha256 {
        return Err(bad(
            "the token's message imprint is not the digest that was sent",
        ));
    }
    let serial = hex::encode(tst.expect(INTEGER, "serialNumber")?);
    let gen_time = String::from_utf8_lossy(tst.expect(GENERALIZED_TIME, "genTime")?).into_owned();
    let mut nonce = None;
    while let Some((tag, v)) = tst.next()? {
        // accuracy (SEQUENCE) and ordering (BOOLEAN) may come first; nonce is the INTEGER.
        if tag == INTEGER {
            nonce = Some(v);
            break;
        }
    }
    Ok((
        TimeStamp {
            gen_time,
            serial,
            policy,
        },
        nonce,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_der_is_exact() {
        let digest = [0xabu8; 32];
        let r = request(&digest, 0x0102_0304_0506_0708);
        let mut want = hex::decode("3043020101").unwrap();
        want.extend(hex::decode("3031300d06096086480165030402010500").unwrap());
        want.extend(hex::decode("0420").unwrap());
        want.extend([0xab; 32]);
        want.extend(hex::decode("020801020304050607080101ff").unwrap());
        assert_eq!(hex::encode(&r), hex::encode(&want));
        // High bit set: a leading zero keeps the integer positive.
        assert_eq!(uint(0x80), vec![0, 0x80]);
        assert_eq!(uint(0), vec![0]);
        assert_eq!(uint(u64::MAX)[0], 0);
    }

    #[test]
    fn length_forms_and_truncation() {
        let long = tlv(OCTET_STRING, &[7u8; 300]);
        assert_eq!(&long[..4], &[0x04, 0x82, 0x01, 0x2c]);
        let mut d = Der(&long);
        assert_eq!(d.next().unwrap().unwrap().1.len(), 300);
        assert!(Der(&long[..100]).next().is_err());
        assert!(check_response(&[0x30, 0x03, 0x30], &[0; 32], 1).is_err());
    }

    const GRANTED: &[u8] = include_bytes!("../tests/data/tsa/granted-abab-0102030405060708.tsr");
    const REJECTED: &[u8] = include_bytes!("../tests/data/tsa/rejected-sha512.tsr");

    #[test]
    fn an_openssl_tsa_response_checks_against_its_request() {
        let t = check_response(GRANTED, &[0xab; 32], 0x0102_0304_0506_0708).unwrap();
        assert_eq!(
            t,
            TimeStamp {
                gen_time: "20261126223212Z".into(),
                serial: "02".into(),
                policy: "1.3.6.1.4.1.99999.1".into(),
            }
        );
        let e = check_response(GRANTED, &[0xac; 32], 0x0102_0304_0506_0708).unwrap_err();
        assert!(e.to_string().contains("imprint"), "{e}");
        let e = check_response(GRANTED, &[0xab; 32], 0x0102_0304_0506_0709).unwrap_err();
        assert!(e.to_string().contains("nonce"), "{e}");
        let e = check_response(REJECTED, &[0xab; 32], 1).unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
        assert!(e.to_string().contains("PKIStatus [2]"), "{e}");
        assert!(
            e.to_string()
                .contains("Message digest algorithm is not supported"),
            "{e}"
        );
        // Every truncation is an error, never a panic.
        for n in 0..GRANTED.len() {
            assert!(check_response(&GRANTED[..n], &[0xab; 32], 0x0102_0304_0506_0708).is_err());
        }
    }

    #[test]
    fn oid_text_decodes() {
        assert_eq!(oid_text(&OID_TST_INFO), "1.2.840.113549.1.9.16.1.4");
    }
}
