//! The gco emissions credential (W3C VC Data Model 2.0) and the checks every verifier
//! runs on it, whatever secures it: VC-JOSE (`vc+jwt`), Data Integrity
//! (`eddsa-jcs-2022`), or the legacy RS256 certificate JWS.
//!
//! Verification order: parse, resolve the key, check the signature, and only then read
//! the claims (validity window, issuer, context, schema); revocation last
//! ([`check_status`]).

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::di;
use crate::error::{Error, Result, malformed};
use crate::issuer::{Resolver, Signer};
use crate::jose::{self, Jws};
use crate::key::Alg;
use crate::status::Bitstring;

pub const VC_CONTEXT: &str = "https://www.w3.org/ns/credentials/v2";
/// gco's own context for its carbon terms (`docs/credentials/context-v1.jsonld`).
pub const GCO_CONTEXT: &str = "https://gco-carbon.github.io/ns/carbon/v1";
/// The JSON Schema of the credential (`docs/credentials/schema-v1.json`).
pub const SCHEMA_ID: &str = "https://gco-carbon.github.io/schemas/emissions-credential/v1.json";
pub const CREDENTIAL_TYPE: &str = "AIInferenceEmissionsCredential";
pub const SUBJECT_TYPE: &str = "AIInferenceEmissions";
pub const VC_JWT_TYP: &str = "vc+jwt";
pub const LEGACY_TYP: &str = "JWT";

/// The claims of the legacy certificate JWS, all required.
pub const LEGACY_CLAIMS: [&str; 9] = [
    "certificate_id",
    "inference_id",
    "hardware_id",
    "timestamp",
    "energy_used_kwh",
    "carbon_intensity_gco2_kwh",
    "total_emissions_gco2",
    "grid_region",
    "issuer",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Format {
    VcJwt,
    VcDi,
    Legacy,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::VcJwt => "vc-jwt",
            Format::VcDi => "vc-di",
            Format::Legacy => "legacy",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "vc-jwt" | "jwt" => Ok(Format::VcJwt),
            "vc-di" | "di" => Ok(Format::VcDi),
            "legacy" => Ok(Format::Legacy),
            o => Err(Error::Invalid(format!(
                "unknown format {o:?}: vc-jwt, vc-di or legacy"
            ))),
        }
    }
}

/// A credential's revocation entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusRef {
    pub list: String,
    pub index: usize,
    pub purpose: String,
}

/// A credential whose signature and claims checked out.
#[derive(Debug, Clone)]
pub struct Checked {
    pub format: Format,
    /// The credential without its proof (VC) or the legacy claims.
    pub claims: Value,
    pub id: String,
    pub issuer: String,
    pub verification_method: String,
    pub alg: Alg,
    pub status: Option<StatusRef>,
}

fn did_of(did_url: &str) -> &str {
    did_url.split('#').next().unwrap_or(did_url)
}

/// Signs a credential as VC-JOSE: compact JWS, `typ: vc+jwt`, the credential as payload.
pub fn sign_vc_jwt(signer: &Signer, credential: &impl serde::Serialize) -> Result<String> {
    let payload = serde_json::to_vec(credential).map_err(malformed)?;
    jose::sign(&signer.key, signer.alg, &signer.kid, VC_JWT_TYP, &payload)
}

/// Verifies a credential in any of the three forms (detected from the input).
pub fn check(input: &str, resolver: &Resolver, at: DateTime<Utc>) -> Result<Checked> {
    let input = input.trim();
    if input.starts_with('{') {
        let doc: Value = serde_json::from_str(input)
            .map_err(|e| malformed(format!("not a JSON credential: {e}")))?;
        return check_di(&doc, resolver, at);
    }
    let jws = Jws::parse(input)?;
    match jws.header_str("typ") {
        Some(VC_JWT_TYP) => check_vc_jwt(&jws, resolver, at),
        Some(LEGACY_TYP) => check_legacy(&jws, resolver),
        other => Err(Error::Invalid(format!(
            "JWS typ {other:?} is neither \"vc+jwt\" (VC-JOSE) nor \"JWT\" (legacy certificate)"
        ))),
    }
}

fn resolve_and_verify(jws: &Jws, resolver: &Resolver) -> Result<String> {
    let kid = jws
        .header_str("kid")
        .ok_or_else(|| Error::Invalid("JWS header has no kid (a DID URL is required)".into()))?
        .to_string();
    let key = resolver.resolve(&kid)?;
    jws.verify(&key)?;
    Ok(kid)
}

pub fn check_vc_jwt(jws: &Jws, resolver: &Resolver, at: DateTime<Utc>) -> Result<Checked> {
    if jws.header.get("cty").is_some_and(|c| c != "vc") {
        return Err(Error::Invalid(
            "JWS cty, when present, must be \"vc\"".into(),
        ));
    }
    let kid = resolve_and_verify(jws, resolver)?;
    let vc = jws.payload_json()?;
    let (id, issuer, status) = check_claims(&vc, did_of(&kid), at)?;
    if let Some(iss) = vc.get("iss")
        && iss.as_str() != Some(issuer.as_str())
    {
        return Err(Error::Invalid(
            "JWT iss differs from the credential issuer".into(),
        ));
    }
    Ok(Checked {
        format: Format::VcJwt,
        claims: vc,
        id,
        issuer,
        verification_method: kid,
        alg: jws.alg,
        status,
    })
}

pub fn check_di(doc: &Value, resolver: &Resolver, at: DateTime<Utc>) -> Result<Checked> {
    let verified = di::verify(doc, |vm| resolver.resolve(vm))?;
    let mut unsecured = doc.clone();
    if let Some(o) = unsecured.as_object_mut() {
        o.remove("proof");
    }
    let (id, issuer, status) = check_claims(&unsecured, did_of(&verified.verification_method), at)?;
    Ok(Checked {
        format: Format::VcDi,
        claims: unsecured,
        id,
        issuer,
        verification_method: verified.verification_method,
        alg: Alg::EdDSA,
        status,
    })
}

pub fn check_legacy(jws: &Jws, resolver: &Resolver) -> Result<Checked> {
    if jws.alg != Alg::RS256 {
        return Err(Error::Invalid(format!(
            "a legacy certificate is RS256, not {}",
            jws.alg
        )));
    }
    let kid = resolve_and_verify(jws, resolver)?;
    let claims = jws.payload_json()?;
    for c in LEGACY_CLAIMS {
        if claims.get(c).is_none_or(Value::is_null) {
            return Err(Error::Invalid(format!(
                "legacy certificate has no {c:?} claim"
            )));
        }
    }
    for c in [
        "energy_used_kwh",
        "carbon_intensity_gco2_kwh",
        "total_emissions_gco2",
    ] {
        if !claims[c].is_number() {
            return Err(Error::Invalid(format!(
                "legacy claim {c:?} is not a number"
            )));
        }
    }
    let issuer = claims["issuer"].as_str().unwrap_or("").to_string();
    if issuer != did_of(&kid) {
        return Err(Error::Invalid(format!(
            "legacy issuer {issuer:?} is not the signing key's DID {}",
            did_of(&kid)
        )));
    }
    Ok(Checked {
        format: Format::Legacy,
        id: claims["certificate_id"].as_str().unwrap_or("").to_string(),
        claims,
        issuer,
        verification_method: kid,
        alg: jws.alg,
        status: None,
    })
}

fn str_field<'a>(o: &'a Map<String, Value>, name: &str, what: &str) -> Result<&'a str> {
    o.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Invalid(format!("{what} has no string {name:?}")))
}

fn time_field(o: &Map<String, Value>, name: &str) -> Result<Option<DateTime<Utc>>> {
    match o.get(name) {
        None => Ok(None),
        Some(v) => {
            let s = v
                .as_str()
                .ok_or_else(|| Error::Invalid(format!("{name} is not a string")))?;
            DateTime::parse_from_rfc3339(s)
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| {
                    Error::Invalid(format!(
                        "{name} {s:?} is not a date-time with a time zone: {e}"
                    ))
                })
        }
    }
}

/// The VC Data Model 2.0 rules, the issuer binding and the schema, on an already
/// signature-checked credential. Returns (id, issuer, status entry).
fn check_claims(
    vc: &Value,
    signer_did: &str,
    at: DateTime<Utc>,
) -> Result<(String, String, Option<StatusRef>)> {
    let o = vc
        .as_object()
        .ok_or_else(|| Error::Invalid("the credential is not a JSON object".into()))?;
    let ctx = o.get("@context").and_then(Value::as_array);
    if ctx.and_then(|c| c.first()).and_then(Value::as_str) != Some(VC_CONTEXT) {
        return Err(Error::Invalid(format!(
            "@context must start with {VC_CONTEXT} (VC Data Model 2.0)"
        )));
    }
    let types = o
        .get("type")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !types.iter().any(|t| t == "VerifiableCredential") {
        return Err(Error::Invalid(
            "type does not include VerifiableCredential".into(),
        ));
    }
    let issuer = match o.get("issuer") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Object(i)) => str_field(i, "id", "issuer")?.to_string(),
        _ => return Err(Error::Invalid("the credential has no issuer".into())),
    };
    if issuer != signer_did {
        return Err(Error::Invalid(format!(
            "issuer {issuer} did not sign this credential (signed by {signer_did})"
        )));
    }
    let from = time_field(o, "validFrom")?;
    if let Some(f) = from
        && at < f
    {
        return Err(Error::Invalid(format!(
            "not valid before {}",
            f.to_rfc3339()
        )));
    }
    if let Some(u) = time_field(o, "validUntil")?
        && at > u
    {
        return Err(Error::Invalid(format!("expired at {}", u.to_rfc3339())));
    }
    if !o
        .get("credentialSubject")
        .is_some_and(|s| s.is_object() || s.is_array())
    {
        return Err(Error::Invalid(
            "the credential has no credentialSubject".into(),
        ));
    }
    let id = o
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if types.iter().any(|t| t == CREDENTIAL_TYPE) {
        check_schema(o)?;
    }
    let status = match o.get("credentialStatus") {
        None => None,
        Some(Value::Object(s)) => {
            if str_field(s, "type", "credentialStatus")? != "BitstringStatusListEntry" {
                return Err(Error::Invalid(
                    "credentialStatus is not a BitstringStatusListEntry".into(),
                ));
            }
            let index = str_field(s, "statusListIndex", "credentialStatus")?
                .parse::<usize>()
                .map_err(|_| {
                    Error::Invalid("statusListIndex is not a non-negative integer string".into())
                })?;
            Some(StatusRef {
                list: str_field(s, "statusListCredential", "credentialStatus")?.to_string(),
                index,
                purpose: str_field(s, "statusPurpose", "credentialStatus")?.to_string(),
            })
        }
        Some(_) => return Err(Error::Invalid("credentialStatus must be one object".into())),
    };
    Ok((id, issuer, status))
}

const AGG_FIGURES: [&str; 7] = [
    "itEnergyMj",
    "facilityEnergyMj",
    "locationBasedNg",
    "marketBasedNg",
    "marginalNg",
    "embodiedNg",
    "sciNg",
];

fn is_int_string(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        let d = s.strip_prefix('-').unwrap_or(s);
        !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())
    })
}

/// `docs/credentials/schema-v1.json`, checked in code (the Python verification script
/// checks the same file with the `jsonschema` package).
pub fn check_schema(o: &Map<String, Value>) -> Result<()> {
    let bad = |m: String| Err(Error::Invalid(format!("schema: {m}")));
    let schema = o.get("credentialSchema");
    let ok = match schema {
        Some(Value::Object(s)) => {
            s.get("id").and_then(Value::as_str) == Some(SCHEMA_ID)
                && s.get("type").and_then(Value::as_str) == Some("JsonSchema")
        }
        _ => false,
    };
    if !ok {
        return bad(format!(
            "credentialSchema must be {{id: {SCHEMA_ID}, type: JsonSchema}}"
        ));
    }
    if !o
        .get("@context")
        .and_then(Value::as_array)
        .is_some_and(|c| c.iter().any(|x| x == GCO_CONTEXT))
    {
        return bad(format!("@context must include {GCO_CONTEXT}"));
    }
    let Some(Value::Object(s)) = o.get("credentialSubject") else {
        return bad("credentialSubject must be an object".into());
    };
    if s.get("type").and_then(Value::as_str) != Some(SUBJECT_TYPE) {
        return bad(format!("credentialSubject.type must be {SUBJECT_TYPE}"));
    }
    let gran = s.get("granularity").and_then(Value::as_str).unwrap_or("");
    let mut required: Vec<&str> = vec![
        "period",
        "scope",
        "itEnergyMj",
        "facilityEnergyMj",
        "locationBasedNg",
        "marketBasedNg",
        "embodiedNg",
    ];
    match gran {
        "inference" => required.extend([
            "inferenceId",
            "nodeId",
            "seq",
            "start",
            "end",
            "zone",
            "intensityMgPerKwh",
            "sciNg",
        ]),
        "model_day" => required.extend(["date", "model", "inferences", "members", "sciNg"]),
        "model_month" => required.extend(["model", "inferences", "members", "sciNg"]),
        "organisation_month" => required.extend(["organisation", "inferences", "members", "sciNg"]),
        other => return bad(format!("unknown granularity {other:?}")),
    }
    for r in required {
        if s.get(r).is_none_or(Value::is_null) {
            return bad(format!("credentialSubject.{r} is required for {gran}"));
        }
    }
    for f in AGG_FIGURES.iter().chain(["intensityMgPerKwh"].iter()) {
        if let Some(v) = s.get(*f)
            && !v.is_null()
            && !is_int_string(v)
        {
            return bad(format!("credentialSubject.{f} must be an integer string"));
        }
    }
    if let Some(m) = s.get("members") {
        let root_ok = m
            .get("root")
            .and_then(Value::as_str)
            .is_some_and(|r| r.len() == 64 && r.bytes().all(|b| b.is_ascii_hexdigit()));
        if !root_ok || !m.get("count").is_some_and(Value::is_u64) {
            return bad("credentialSubject.members needs a 64-hex root and a count".into());
        }
    }
    Ok(())
}

/// The Bitstring Status List credential for `bits`, as VC-JOSE.
pub fn status_list_credential(
    signer: &Signer,
    list_id: &str,
    purpose: &str,
    bits: &Bitstring,
    valid_from: &str,
) -> Result<String> {
    let vc = json!({
        "@context": [VC_CONTEXT],
        "id": list_id,
        "type": ["VerifiableCredential", "BitstringStatusListCredential"],
        "issuer": signer.issuer,
        "validFrom": valid_from,
        "credentialSubject": {
            "id": format!("{list_id}#list"),
            "type": "BitstringStatusList",
            "statusPurpose": purpose,
            "encodedList": bits.encode()?,
        }
    });
    sign_vc_jwt(signer, &vc)
}

/// Checks `status` against its list credential (VC-JOSE, signed by the same issuer).
/// A set bit is [`Error::Revoked`].
pub fn check_status(
    status: &StatusRef,
    issuer: &str,
    list_token: &str,
    resolver: &Resolver,
    at: DateTime<Utc>,
) -> Result<()> {
    let jws = Jws::parse(list_token)?;
    let list = check_vc_jwt(&jws, resolver, at)
        .map_err(|e| Error::Invalid(format!("status list {}: {e}", status.list)))?;
    if list.issuer != issuer {
        return Err(Error::Invalid(format!(
            "status list {} is issued by {}, not by the credential's issuer {issuer}",
            status.list, list.issuer
        )));
    }
    if list.id != status.list {
        return Err(Error::Invalid(format!(
            "the status list given is {}, the credential names {}",
            list.id, status.list
        )));
    }
    let subject = &list.claims["credentialSubject"];
    if subject["statusPurpose"].as_str() != Some(status.purpose.as_str()) {
        return Err(Error::Invalid(
            "status list purpose differs from the entry's".into(),
        ));
    }
    let bits = Bitstring::decode(subject["encodedList"].as_str().unwrap_or(""))?;
    if bits.get(status.index)? {
        return Err(Error::Revoked(format!(
            "{} index {} is set in {}",
            status.purpose, status.index, status.list
        )));
    }
    Ok(())
}
