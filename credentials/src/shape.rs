//! The emissions credential's document, typed: what `gco run --credentials` signs.
//!
//! Serialising these structs writes the same bytes as the `serde_json::Value` of the
//! same credential (object members in byte order of their names, since gco's
//! `serde_json` keeps maps sorted), without building a tree of maps and strings per
//! credential: hashes are hex-encoded on the stack, integers written in place. A
//! per-inference credential is signed millions of times per run, so this is the
//! issuance hot path (`benches/vc_jose.rs`). Field order below is therefore the sorted
//! order of the JSON names; the tests check it against `Value`.

use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

use crate::vc::{CREDENTIAL_TYPE, GCO_CONTEXT, SCHEMA_ID, SUBJECT_TYPE, VC_CONTEXT};

/// A 32-byte hash written as 64 lower-case hex digits.
#[derive(Debug, Clone, Copy)]
pub struct Hex32<'a>(pub &'a [u8; 32]);

impl Serialize for Hex32<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 64];
        // Cannot fail: the buffer is exactly twice the input.
        hex::encode_to_slice(self.0, &mut buf).map_err(serde::ser::Error::custom)?;
        s.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }
}

/// A list of 32-byte hashes as a JSON array of hex strings (an inclusion proof).
#[derive(Debug, Clone, Copy)]
pub struct HexList<'a>(pub &'a [[u8; 32]]);

impl Serialize for HexList<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.len()))?;
        for h in self.0 {
            seq.serialize_element(&Hex32(h))?;
        }
        seq.end()
    }
}

/// An exact integer figure (millijoules, nanograms...) as a decimal string, or `null`
/// when the figure does not exist (no marginal signal, say). Strings keep 64-bit
/// integers exact for JavaScript and JSON Schema consumers.
#[derive(Debug, Clone, Copy)]
pub struct Figure(pub Option<i64>);

impl Serialize for Figure {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(v) => s.serialize_str(itoa::Buffer::new().format(v)),
            None => s.serialize_none(),
        }
    }
}

/// A member whose value the type fixes (a `type` or `granularity`): the struct cannot
/// carry a wrong one, and nothing is stored per credential.
macro_rules! fixed_value {
    ($(#[$doc:meta])* $name:ident = $value:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default)]
        pub struct $name;
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                $value.serialize(s)
            }
        }
    };
}

fixed_value!(
    /// `"granularity": "inference"`.
    InferenceGranularity = "inference"
);
fixed_value!(
    /// The per-inference subject's `type`.
    InferenceSubjectType = SUBJECT_TYPE
);
fixed_value!(
    /// The ledger evidence's `type`.
    LedgerEvidenceType = ["LedgerRecordEvidence"]
);
fixed_value!(
    /// The run evidence's `type`.
    RunEvidenceType = ["EmissionsRunEvidence"]
);

/// `credentialSchema`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Schema {
    pub id: &'static str,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// `credentialStatus`: a Bitstring Status List revocation entry.
#[derive(Debug, Clone, Copy)]
pub struct StatusEntry<'a> {
    /// The status list credential's URL.
    pub list: &'a str,
    pub index: u64,
}

impl Serialize for StatusEntry<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut idx = itoa::Buffer::new();
        let index = idx.format(self.index);
        let mut m = s.serialize_map(Some(5))?;
        m.serialize_entry("id", &format_args!("{}#{index}", self.list))?;
        m.serialize_entry("statusListCredential", self.list)?;
        m.serialize_entry("statusListIndex", index)?;
        m.serialize_entry("statusPurpose", "revocation")?;
        m.serialize_entry("type", "BitstringStatusListEntry")?;
        m.end()
    }
}

/// The emissions credential: the envelope every granularity shares.
#[derive(Debug, Clone, Serialize)]
pub struct Credential<'a, S, E> {
    #[serde(rename = "@context")]
    pub context: [&'static str; 2],
    #[serde(rename = "credentialSchema")]
    pub schema: Schema,
    #[serde(rename = "credentialStatus")]
    pub status: StatusEntry<'a>,
    #[serde(rename = "credentialSubject")]
    pub subject: S,
    pub evidence: E,
    pub id: &'a str,
    pub issuer: &'a str,
    #[serde(rename = "type")]
    pub kind: [&'static str; 2],
    #[serde(rename = "validFrom")]
    pub valid_from: &'a str,
}

impl<'a, S: Serialize, E: Serialize> Credential<'a, S, E> {
    pub fn new(
        id: &'a str,
        issuer: &'a str,
        valid_from: &'a str,
        status: StatusEntry<'a>,
        subject: S,
        evidence: E,
    ) -> Self {
        Credential {
            context: [VC_CONTEXT, GCO_CONTEXT],
            schema: Schema {
                id: SCHEMA_ID,
                kind: "JsonSchema",
            },
            status,
            subject,
            evidence,
            id,
            issuer,
            kind: ["VerifiableCredential", CREDENTIAL_TYPE],
            valid_from,
        }
    }
}

/// The subject of a per-inference credential. Figures as in the emissions Parquet.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceSubject<'a> {
    pub embodied_ng: Figure,
    pub end: &'a str,
    pub facility_energy_mj: Figure,
    pub granularity: InferenceGranularity,
    pub inference_id: &'a str,
    pub intensity_mg_per_kwh: Figure,
    pub it_energy_mj: Figure,
    pub location_based_ng: Figure,
    pub marginal_ng: Figure,
    pub market_based_ng: Figure,
    pub model: Option<&'a str>,
    pub model_version: Option<&'a str>,
    pub node_id: &'a str,
    pub organisation: &'a str,
    pub period: &'a str,
    pub sci_ng: Figure,
    pub scope: &'a str,
    pub seq: u64,
    pub start: &'a str,
    #[serde(rename = "type")]
    pub kind: InferenceSubjectType,
    pub zone: &'a str,
}

/// Where a record sits in the ledger: its signed batch and its inclusion proof.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerEvidence<'a> {
    pub batch: &'a str,
    pub batch_hash: &'a str,
    pub inclusion_proof: HexList<'a>,
    pub leaf_hash: Hex32<'a>,
    pub leaf_index: u64,
    pub merkle_root: &'a str,
    pub node_key_id: &'a str,
    pub node_signature: &'a str,
    pub signature_algorithm: &'a str,
    pub tree_size: u64,
    #[serde(rename = "type")]
    pub kind: LedgerEvidenceType,
}

/// The emissions run the figures come from: its manifest and that manifest's SHA-256.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunEvidence<'a> {
    pub run_manifest: &'a str,
    pub run_manifest_sha256: &'a str,
    pub run_version: u32,
    #[serde(rename = "type")]
    pub kind: RunEvidenceType,
}

impl<'a> RunEvidence<'a> {
    pub fn new(run_manifest: &'a str, run_manifest_sha256: &'a str, run_version: u32) -> Self {
        RunEvidence {
            run_manifest,
            run_manifest_sha256,
            run_version,
            kind: RunEvidenceType,
        }
    }
}

/// A per-inference credential: subject, then ledger and run evidence.
pub type InferenceCredential<'a> =
    Credential<'a, InferenceSubject<'a>, (LedgerEvidence<'a>, RunEvidence<'a>)>;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample<'a>(proof: &'a [[u8; 32]], leaf: &'a [u8; 32]) -> InferenceCredential<'a> {
        Credential::new(
            "urn:gco:credential:00000000000000000000000000000007",
            "did:web:carbon.example.com",
            "2026-11-03T02:00:00Z",
            StatusEntry {
                list: "https://carbon.example.com/status/2026-10/0001/inferences",
                index: 7,
            },
            InferenceSubject {
                embodied_ng: Figure(Some(1110)),
                end: "2026-10-03T12:00:01.523456Z",
                facility_energy_mj: Figure(Some(546_875)),
                granularity: InferenceGranularity,
                inference_id: "a\"b\\c\u{1}é",
                intensity_mg_per_kwh: Figure(Some(45_391)),
                it_energy_mj: Figure(Some(437_500)),
                location_based_ng: Figure(Some(6895)),
                marginal_ng: Figure(None),
                market_based_ng: Figure(Some(0)),
                model: Some("llama-3.1-8b-instruct"),
                model_version: None,
                node_id: "gpu-node-03",
                organisation: "Acme AI",
                period: "2026-10",
                sci_ng: Figure(Some(i64::MIN)),
                scope: "scope2",
                seq: u64::MAX,
                start: "2026-10-03T12:00:00.123456Z",
                kind: InferenceSubjectType,
                zone: "FR",
            },
            (
                LedgerEvidence {
                    batch: "records/date=2026-10-03/node=gpu-node-03/x.parquet",
                    batch_hash: "ab",
                    inclusion_proof: HexList(proof),
                    leaf_hash: Hex32(leaf),
                    leaf_index: 3,
                    merkle_root: "cd",
                    node_key_id: "0123",
                    node_signature: "sig",
                    signature_algorithm: "EdDSA",
                    tree_size: 40_000,
                    kind: LedgerEvidenceType,
                },
                RunEvidence::new("runs/period=2026-10/version=0001/manifest.json", "ef", 1),
            ),
        )
    }

    /// The typed credential writes exactly the bytes of its `Value` (sorted members),
    /// so the struct field order cannot drift from the documented serialisation.
    #[test]
    fn typed_bytes_equal_the_sorted_value() {
        let proof = [[0x11u8; 32], [0xfe; 32]];
        let leaf = [0xa5u8; 32];
        let c = sample(&proof, &leaf);
        let typed = serde_json::to_string(&c).unwrap();
        let value = serde_json::to_value(&c).unwrap();
        assert_eq!(typed, serde_json::to_string(&value).unwrap());
        assert_eq!(value["credentialSubject"]["sciNg"], "-9223372036854775808");
        assert_eq!(
            value["credentialSubject"]["seq"].to_string(),
            "18446744073709551615"
        );
        assert_eq!(
            value["credentialSubject"]["marginalNg"],
            serde_json::Value::Null
        );
        assert_eq!(value["credentialSubject"]["inferenceId"], "a\"b\\c\u{1}é");
        assert_eq!(value["evidence"][0]["inclusionProof"][1], "fe".repeat(32));
        assert_eq!(value["evidence"][0]["leafHash"], "a5".repeat(32));
        assert_eq!(
            value["credentialStatus"]["id"],
            "https://carbon.example.com/status/2026-10/0001/inferences#7"
        );
        assert_eq!(value["credentialStatus"]["statusListIndex"], "7");
        assert_eq!(value["evidence"][1]["type"][0], "EmissionsRunEvidence");
        assert_eq!(value["@context"][0], "https://www.w3.org/ns/credentials/v2");
        // The whole document, once, so a change of any member shows here.
        let expected = concat!(
            r#"{"@context":["https://www.w3.org/ns/credentials/v2","https://gco-carbon.github.io/ns/carbon/v1"],"#,
            r#""credentialSchema":{"id":"https://gco-carbon.github.io/schemas/emissions-credential/v1.json","type":"JsonSchema"},"#,
            r#""credentialStatus":{"id":"https://carbon.example.com/status/2026-10/0001/inferences#7","statusListCredential":"https://carbon.example.com/status/2026-10/0001/inferences","statusListIndex":"7","statusPurpose":"revocation","type":"BitstringStatusListEntry"},"#,
            r#""credentialSubject":{"embodiedNg":"1110","end":"2026-10-03T12:00:01.523456Z","facilityEnergyMj":"546875","granularity":"inference","inferenceId":"a\"b\\c\u0001é","intensityMgPerKwh":"45391","itEnergyMj":"437500","locationBasedNg":"6895","marginalNg":null,"marketBasedNg":"0","model":"llama-3.1-8b-instruct","modelVersion":null,"nodeId":"gpu-node-03","organisation":"Acme AI","period":"2026-10","sciNg":"-9223372036854775808","scope":"scope2","seq":18446744073709551615,"start":"2026-10-03T12:00:00.123456Z","type":"AIInferenceEmissions","zone":"FR"},"#,
        );
        assert!(typed.starts_with(expected), "{typed}");
    }
}
