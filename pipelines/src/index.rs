//! The credentials index of a run version (`certificates/period=P/version=NNNN/
//! index.json`, written last: its commit point): what was issued, by whom, over which
//! run manifest, the member roots and the status lists. Written and read only here;
//! a reader gets every field or an error naming the missing one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::Output;

/// The `format` of the indexes this version of gco writes and reads.
pub const FORMAT: &str = "gco-certificates/1";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsIndex {
    /// [`FORMAT`].
    pub format: String,
    pub period: String,
    pub version: u32,
    /// The issuer's DID.
    pub issuer: String,
    /// `validFrom` of every credential.
    pub valid_from: String,
    /// The run manifest the credentials were issued over, and its SHA-256.
    pub run_manifest: String,
    pub run_manifest_sha256: String,
    pub granularities: Vec<String>,
    pub formats: Vec<String>,
    /// Credentials written, by `granularity/format`.
    pub credentials: BTreeMap<String, u64>,
    /// Inferences the organisation-month roots commit to.
    pub member_inferences: u64,
    pub member_roots: Vec<MemberRoot>,
    /// Status list ids by list (`aggregates`, `inferences`).
    pub status_lists: BTreeMap<String, String>,
    pub outputs: Vec<Output>,
}

/// The Merkle root over an aggregate's member inferences.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberRoot {
    pub granularity: String,
    /// The aggregate's key, `/`-joined (e.g. `2026-10-01/llama-8b/scope2`).
    pub key: String,
    pub root: String,
    pub count: u64,
}

pub use crate::document::DocumentError as IndexError;

impl CredentialsIndex {
    pub fn from_slice(path: &str, bytes: &[u8]) -> Result<Self, IndexError> {
        crate::document::parse("credentials index", path, bytes, FORMAT, |i: &Self| {
            &i.format
        })
    }

    /// The stored bytes (`document::to_bytes`).
    pub fn to_bytes(&self) -> serde_json::Result<Vec<u8>> {
        crate::document::to_bytes(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_to_the_same_bytes_and_names_a_missing_field() {
        let index = CredentialsIndex {
            format: FORMAT.into(),
            period: "2026-10".into(),
            version: 1,
            issuer: "did:web:carbon.example".into(),
            valid_from: "2026-11-01T00:00:00Z".into(),
            run_manifest: "runs/period=2026-10/version=0001/manifest.json".into(),
            run_manifest_sha256: "ab".repeat(32),
            granularities: vec!["model_day".into()],
            formats: vec!["vc-jwt".into()],
            credentials: [("model_day/vc-jwt".to_string(), 3)].into(),
            member_inferences: 12,
            member_roots: vec![MemberRoot {
                granularity: "model_day".into(),
                key: "2026-10-01/m/scope2".into(),
                root: "cd".repeat(32),
                count: 12,
            }],
            status_lists: [("aggregates".to_string(), "https://x/status".to_string())].into(),
            outputs: vec![],
        };
        let bytes = index.to_bytes().unwrap();
        let back = CredentialsIndex::from_slice("index.json", &bytes).unwrap();
        assert_eq!(back, index);
        assert_eq!(back.to_bytes().unwrap(), bytes);
        // Keys sorted, as every index gco wrote before the type.
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.find("\"credentials\"").unwrap() < text.find("\"format\"").unwrap());

        let mut v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        v.as_object_mut().unwrap().remove("member_inferences");
        let err = CredentialsIndex::from_slice("index.json", &serde_json::to_vec(&v).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `member_inferences`"), "{err}");
    }
}
