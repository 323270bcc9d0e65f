//! Canonical record bytes, domain-separated leaf hashes and the RFC 6962 Merkle tree.
//!
//! The encoding is specified byte for byte in `docs/ledger-format.md`; the golden
//! vectors in this module's tests are the ones printed there.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash32 = [u8; 32];

/// Domain tag that opens every encoded record (schema version 1).
pub const RECORD_TAG: &str = "gco.record.v1";
/// RFC 6962 leaf prefix.
pub const LEAF_PREFIX: u8 = 0x00;
/// RFC 6962 interior node prefix.
pub const NODE_PREFIX: u8 = 0x01;

/// Append-only writer of the canonical encoding's primitives.
#[derive(Default)]
pub struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn str(&mut self, s: &str) {
        self.buf.extend_from_slice(&(s.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(s.as_bytes());
    }
    pub fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.buf.push(0),
            Some(s) => {
                self.buf.push(1);
                self.str(s);
            }
        }
    }
    pub fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn opt_i64(&mut self, v: Option<i64>) {
        match v {
            None => self.buf.push(0),
            Some(v) => {
                self.buf.push(1);
                self.i64(v);
            }
        }
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bytes32(&mut self, h: &Hash32) {
        self.buf.extend_from_slice(h);
    }
}

/// A borrowed view of one record's fields, the input of the canonical encoding. Built
/// from a [`crate::record::Record`] when sealing and straight from Arrow arrays when verifying.
pub struct RecordFields<'a, G> {
    pub seq: i64,
    pub kind: &'a str,
    pub inference_id: Option<&'a str>,
    pub node_id: &'a str,
    pub model_id: Option<&'a str>,
    pub model_version: Option<&'a str>,
    pub start: i64,
    pub end: i64,
    pub energy_mj: i64,
    pub measurement: &'a str,
    pub gpus: G,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
}

impl<'a, G: ExactSizeIterator<Item = &'a str>> RecordFields<'a, G> {
    /// Writes the canonical bytes of the record (without the leaf prefix) into `enc`.
    pub fn encode(self, enc: &mut Encoder) {
        enc.str(RECORD_TAG);
        enc.i64(self.seq);
        enc.str(self.kind);
        enc.opt_str(self.inference_id);
        enc.str(self.node_id);
        enc.opt_str(self.model_id);
        enc.opt_str(self.model_version);
        enc.i64(self.start);
        enc.i64(self.end);
        enc.i64(self.energy_mj);
        enc.str(self.measurement);
        enc.u32(self.gpus.len() as u32);
        for g in self.gpus {
            enc.str(g);
        }
        enc.opt_i64(self.prompt_tokens);
        enc.opt_i64(self.completion_tokens);
    }

    /// The leaf hash: SHA-256(0x00 || canonical bytes). `scratch` is reused between calls.
    pub fn leaf_hash(self, scratch: &mut Encoder) -> Hash32 {
        scratch.buf.clear();
        scratch.buf.push(LEAF_PREFIX);
        self.encode(scratch);
        Sha256::digest(&scratch.buf).into()
    }
}

/// Hash of an interior node: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([NODE_PREFIX]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The RFC 6962 Merkle Tree Hash over leaf hashes, in order. The root of an empty list
/// is SHA-256 of the empty string (batches are never empty; this only completes the
/// definition).
pub fn merkle_root(leaves: &[Hash32]) -> Hash32 {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split_point(n);
            node_hash(&merkle_root(&leaves[..k]), &merkle_root(&leaves[k..]))
        }
    }
}

/// The largest power of two strictly smaller than `n` (n >= 2).
fn split_point(n: usize) -> usize {
    1 << (usize::BITS - (n - 1).leading_zeros() - 1)
}

/// An audit path (RFC 6962 section 2.1.1) proving leaf `index` is in the tree over `leaves`.
pub fn inclusion_proof(leaves: &[Hash32], index: usize) -> Vec<Hash32> {
    let mut path = Vec::new();
    fn walk(leaves: &[Hash32], index: usize, path: &mut Vec<Hash32>) {
        if leaves.len() <= 1 {
            return;
        }
        let k = split_point(leaves.len());
        if index < k {
            walk(&leaves[..k], index, path);
            path.push(merkle_root(&leaves[k..]));
        } else {
            walk(&leaves[k..], index - k, path);
            path.push(merkle_root(&leaves[..k]));
        }
    }
    if index < leaves.len() {
        walk(leaves, index, &mut path);
    }
    path
}

/// Checks an audit path (RFC 9162 section 2.1.3.2) for `leaf` at `index` in a tree of `size`.
pub fn verify_inclusion(
    leaf: &Hash32,
    index: u64,
    size: u64,
    path: &[Hash32],
    root: &Hash32,
) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return false;
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    snode == 0 && &r == root
}

/// Hex of a digest.
pub fn to_hex(h: &Hash32) -> String {
    hex::encode(h)
}

/// Parses a 64-character hex digest.
pub fn from_hex(s: &str) -> Option<Hash32> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{Measurement, Millijoules, Record, RecordKind};

    fn leaf(data: &[u8]) -> Hash32 {
        let mut h = Sha256::new();
        h.update([LEAF_PREFIX]);
        h.update(data);
        h.finalize().into()
    }

    /// The Merkle tree test vectors of Certificate Transparency (RFC 6962 reference code).
    #[test]
    fn rfc6962_vectors() {
        let inputs: [&[u8]; 8] = [
            b"",
            b"\x00",
            b"\x10",
            b"\x20\x21",
            b"\x30\x31",
            b"\x40\x41\x42\x43",
            b"\x50\x51\x52\x53\x54\x55\x56\x57",
            b"\x60\x61\x62\x63\x64\x65\x66\x67\x68\x69\x6a\x6b\x6c\x6d\x6e\x6f",
        ];
        let leaves: Vec<Hash32> = inputs.iter().map(|d| leaf(d)).collect();
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        for (n, want) in roots.iter().enumerate() {
            let root = merkle_root(&leaves[..=n]);
            assert_eq!(to_hex(&root), *want, "tree of {} leaves", n + 1);
            for i in 0..=n {
                let proof = inclusion_proof(&leaves[..=n], i);
                assert!(verify_inclusion(
                    &leaves[i],
                    i as u64,
                    n as u64 + 1,
                    &proof,
                    &root
                ));
                if n > 0 {
                    let other = &leaves[(i + 1) % (n + 1)];
                    assert!(!verify_inclusion(
                        other,
                        i as u64,
                        n as u64 + 1,
                        &proof,
                        &root
                    ));
                }
            }
        }
        assert_eq!(
            to_hex(&merkle_root(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    pub(crate) fn golden_record() -> Record {
        Record {
            seq: 7,
            kind: RecordKind::Inference,
            inference_id: Some("inf-0001".into()),
            node_id: "node-a".into(),
            model_id: Some("llama-3.1-8b".into()),
            model_version: None,
            start: 1_790_857_800_000_000,
            end: 1_790_857_801_250_000,
            energy: Millijoules(437_500),
            measurement: Measurement::EnergyCounter,
            gpus: vec!["GPU-0".into(), "GPU-1".into()],
            prompt_tokens: Some(512),
            completion_tokens: None,
        }
    }

    #[test]
    fn golden_record_encoding() {
        // The same vector is printed in docs/ledger-format.md and reproduced by the
        // independent Python implementation (scripts/ledger_hash.py --golden).
        let r = golden_record();
        assert_eq!(
            hex::encode(r.canonical_bytes()),
            concat!(
                "0000000d67636f2e7265636f72642e7631",   // str "gco.record.v1"
                "0000000000000007",                     // seq 7
                "00000009696e666572656e6365",           // str "inference"
                "0100000008696e662d30303031",           // some str "inf-0001"
                "000000066e6f64652d61",                 // str "node-a"
                "010000000c6c6c616d612d332e312d3862",   // some str "llama-3.1-8b"
                "00",                                   // none (model_version)
                "00065cc693032200",                     // start
                "00065cc6931634d0",                     // end
                "000000000006acfc",                     // energy 437500 mJ
                "0000000e656e657267795f636f756e746572", // str "energy_counter"
                "00000002",                             // 2 GPUs
                "000000054750552d30000000054750552d31", // "GPU-0", "GPU-1"
                "010000000000000200",                   // some i64 512 (prompt_tokens)
                "00",                                   // none (completion_tokens)
            )
        );
        assert_eq!(
            to_hex(&r.leaf_hash()),
            "7a6bc796a8046d5dce7c5ee757028016dab711cecf51ed1aaff917cfc238e926"
        );
    }
}
