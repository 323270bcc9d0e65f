//! The auditor package: reports (PDF + CSV), run manifests, aggregate credentials with
//! their index, time-stamp and status lists, the grid objects the runs read, the node
//! registry entries (public keys), the issuer's DID document, a README with independent
//! verification steps, and `manifest.jwt`: a VC-JOSE credential signed by the issuer
//! listing the SHA-256 of every other file (`manifest.json` is its payload, readable).
//! `gco audit verify` checks it offline and names each changed, missing or extra file.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use crate::error::{Context, Kind, OrFail, Result, fail, failure};
use chrono::{DateTime, Datelike, Timelike, Utc};
use gco_credentials::jose::Jws;
use gco_credentials::{Issuer, Purpose, Resolver};
use gco_ledger::Store;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::{Csv, Loaded, Report};

pub const MANIFEST_JWT: &str = "manifest.jwt";
pub const MANIFEST_JSON: &str = "manifest.json";
const README: &str = include_str!("../../templates/audit/README.md");

/// A package's files by relative path (`/`-separated).
pub type Files = BTreeMap<String, Vec<u8>>;

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// The latest credential version of a month, if credentials were issued.
async fn credential_prefix(store: &Store, period: gco_pipelines::Period) -> Result<Option<String>> {
    let versions = gco_pipelines::certify::latest_credential_versions(store, Some(period)).await?;
    Ok(versions
        .get(&period.to_string())
        .map(|v| gco_pipelines::certify::version_prefix(&period.to_string(), *v)))
}

/// The credentials list: one row per aggregate credential (id, key, format).
fn credentials_csv(rows: &[(String, String, String, String)]) -> Result<Csv> {
    let mut w = crate::csv_out::writer();
    w.write_record(["period", "credential_version_prefix", "key", "format", "id"])?;
    for (prefix, key, format, id) in rows {
        let period = prefix
            .split('/')
            .find_map(|s| s.strip_prefix("period="))
            .unwrap_or("");
        w.write_record([period, prefix, &crate::csv_out::text(key), format, id])?;
    }
    Ok(Csv {
        name: "credentials.csv".into(),
        bytes: w.into_inner()?,
    })
}

fn read_credential_rows(
    prefix: &str,
    bytes: bytes::Bytes,
) -> Result<Vec<(String, String, String, String)>> {
    let path = format!("{prefix}/aggregates.parquet");
    let reader =
        parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)?.build()?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch?;
        let col = |n: &str| gco_pipelines::schema::text_named(&batch, n, &path);
        let (key, format, id) = (col("aggregate")?, col("format")?, col("id")?);
        for i in 0..batch.num_rows() {
            out.push((
                prefix.to_string(),
                key.value(i).to_string(),
                format.value(i).to_string(),
                id.value(i).to_string(),
            ));
        }
    }
    Ok(out)
}

/// What [`write_package`] wrote, as `gco audit package --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    /// Files in the package, its signed manifest included.
    pub files: usize,
    /// SHA-256 of the signed manifest (`MANIFEST.jwt`).
    pub manifest_jwt_sha256: String,
    /// Months of the report period without a run (stated in the report).
    pub missing_months: Vec<String>,
    /// The package's path.
    pub package: String,
    /// The report period's label.
    pub period: String,
    /// The reports' names.
    pub reports: Vec<String>,
}

/// Renders the period's reports (the CSRD / ESRS E1 report, then one EU AI Act report
/// per model with inferences, `on_report` called after each) and writes the package
/// signed by `issuer` to `out` (a directory, or a `.zip`). Returns what it wrote and
/// the reports.
pub async fn write_package(
    store: &Store,
    data: &Loaded,
    config: &crate::ReportConfig,
    templates: &crate::Templates,
    issuer: &Issuer,
    out: &Path,
    on_report: impl Fn(),
) -> Result<(Written, Vec<Report>)> {
    let mut reports = vec![crate::csrd(data, config, templates)?];
    on_report();
    for m in crate::models(data) {
        reports.push(crate::ai_act(data, &m, config, templates)?);
        on_report();
    }
    let mut files = collect(store, data, &reports, issuer).await?;
    seal(&mut files, data, issuer)?;
    write(&files, out, data.as_of)?;
    let written = Written {
        files: files.len(),
        manifest_jwt_sha256: hex::encode(Sha256::digest(&files[MANIFEST_JWT])),
        missing_months: data.missing.iter().map(|p| p.to_string()).collect(),
        package: out.display().to_string(),
        period: data.label.clone(),
        reports: reports.iter().map(|r| r.name.clone()).collect(),
    };
    Ok((written, reports))
}

/// Collects the package's files (everything but the signed manifest).
pub async fn collect(
    store: &Store,
    data: &Loaded,
    reports: &[Report],
    issuer: &Issuer,
) -> Result<Files> {
    let mut files = Files::new();
    for r in reports {
        files.insert(format!("reports/{}/report.pdf", r.name), r.pdf.clone());
        for c in &r.csvs {
            files.insert(format!("reports/{}/{}", r.name, c.name), c.bytes.clone());
        }
    }
    let copy = async |path: &str, files: &mut Files| -> Result<()> {
        let bytes = store
            .get(path)
            .await
            .with_context(|| format!("reading {path} for the package"))?;
        files.insert(path.to_string(), bytes.to_vec());
        Ok(())
    };
    let mut credential_rows = Vec::new();
    for m in &data.months {
        copy(&m.manifest_path, &mut files).await?;
        let inputs = &m.manifest.inputs;
        for o in inputs.grid.iter().chain(&inputs.registry) {
            if !files.contains_key(&o.path) {
                copy(&o.path, &mut files).await?;
            }
        }
        if let Some(prefix) = credential_prefix(store, m.period).await? {
            for obj in store.list(&format!("{prefix}/")).await? {
                let p = obj.location.to_string();
                // Per-inference credentials stay in the store (millions of rows);
                // the aggregate roots in index.json commit to every one of them.
                if p.contains("/inferences/") {
                    continue;
                }
                copy(&p, &mut files).await?;
            }
            let agg = format!("{prefix}/aggregates.parquet");
            if let Some(bytes) = files.get(&agg) {
                credential_rows.extend(read_credential_rows(&prefix, bytes.clone().into())?);
            }
        }
    }
    let c = credentials_csv(&credential_rows)?;
    files.insert(format!("reports/{}", c.name), c.bytes);
    files.insert(
        "issuer/did.json".into(),
        serde_json::to_vec_pretty(&issuer.did_document()?)?,
    );
    files.insert("README.md".into(), README.as_bytes().to_vec());
    Ok(files)
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Entry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// Signs the file list as a VC-JOSE credential and adds `manifest.jwt` and
/// `manifest.json` (its payload) to the files.
pub fn seal(files: &mut Files, data: &Loaded, issuer: &Issuer) -> Result<()> {
    if files.contains_key(MANIFEST_JWT) || files.contains_key(MANIFEST_JSON) {
        fail!(Inconsistent, "the package already holds a manifest");
    }
    let entries: Vec<Entry> = files
        .iter()
        .map(|(p, b)| Entry {
            path: p.clone(),
            size: b.len() as u64,
            sha256: sha256_hex(b),
        })
        .collect();
    let signer = issuer.signer(Purpose::Vc)?;
    let credential = json!({
        "@context": ["https://www.w3.org/ns/credentials/v2"],
        "type": ["VerifiableCredential", "AuditPackageManifest"],
        "id": format!("urn:gco:audit-package:{}:{}", data.label, data.as_of.format("%Y%m%dT%H%M%SZ")),
        "issuer": signer.issuer,
        "validFrom": data.as_of.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "credentialSubject": {
            "organisation": data.organisation,
            "period": data.label,
            "runs": data.runs_json(),
            "files": entries,
        },
    });
    let token = gco_credentials::vc::sign_vc_jwt(&signer, &credential)?;
    let jws = Jws::parse(&token)?;
    files.insert(MANIFEST_JSON.into(), jws.payload.clone());
    files.insert(MANIFEST_JWT.into(), token.into_bytes());
    Ok(())
}

/// Writes the package as a directory or, for a path ending in `.zip`, as a zip whose
/// entries are sorted and dated from the as-of time (same package, same bytes).
///
/// Crash-safe: the package is written under a temporary name beside `out` and moved
/// into place whole (a zip by a hard link, which fails if `out` appeared meanwhile; a
/// directory by a rename), so a process killed at any point leaves either no package
/// or a complete one. An existing zip with exactly these bytes is a no-op (a rerun).
pub fn write(files: &Files, out: &Path, date: DateTime<Utc>) -> Result<()> {
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let name = out
        .file_name()
        .or_else_fail(Kind::Usage, || {
            format!("{} has no file name", out.display())
        })?
        .to_string_lossy()
        .into_owned();
    let tmp = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if out.extension().is_some_and(|e| e == "zip") {
        let bytes = zip_bytes(files, date)?;
        if out.exists() {
            if std::fs::read(out).is_ok_and(|existing| existing == bytes) {
                return Ok(());
            }
            fail!(
                Exists,
                "{} exists with other contents: packages are written once; give a new path",
                out.display()
            );
        }
        write_synced(&tmp, &bytes)?;
        let linked = std::fs::hard_link(&tmp, out);
        let _ = std::fs::remove_file(&tmp);
        return linked.with_context(|| {
            format!(
                "moving the package into place at {} (another writer may have created it)",
                out.display()
            )
        });
    }
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        fail!(
            Exists,
            "{} exists and is not empty: give a new directory (or a .zip path) for the package",
            out.display()
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
    for (path, bytes) in files {
        let p = tmp.join(path);
        if let Some(dir) = p.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_synced(&p, bytes)?;
    }
    std::fs::rename(&tmp, out).with_context(|| {
        let _ = std::fs::remove_dir_all(&tmp);
        format!("moving the package into place at {}", out.display())
    })
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

/// The package as zip bytes: entries sorted, dated `date`, mode 0644.
fn zip_bytes(files: &Files, date: DateTime<Utc>) -> Result<Vec<u8>> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let time = zip::DateTime::from_date_and_time(
        date.year().clamp(1980, 2107) as u16,
        date.month() as u8,
        date.day() as u8,
        date.hour() as u8,
        date.minute() as u8,
        date.second() as u8,
    )
    .map_err(|e| failure!(Usage, "zip date: {e}"))?;
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(time)
        .unix_permissions(0o644);
    for (path, bytes) in files {
        zip.start_file(path.as_str(), options)?;
        zip.write_all(bytes)?;
    }
    Ok(zip.finish()?.into_inner())
}

/// Reads a package directory or zip.
pub fn read(path: &Path) -> Result<Files> {
    let mut files = Files::new();
    if path.is_dir() {
        fn walk(root: &Path, dir: &Path, files: &mut Files) -> Result<()> {
            let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
            entries.sort_by_key(|e| e.path());
            for e in entries {
                let p = e.path();
                if p.is_dir() {
                    walk(root, &p, files)?;
                } else {
                    let rel = p
                        .strip_prefix(root)
                        .map_err(|_| {
                            failure!(Invalid, "{} is outside {}", p.display(), root.display())
                        })?
                        .components()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/");
                    files.insert(
                        rel,
                        std::fs::read(&p).with_context(|| format!("reading {}", p.display()))?,
                    );
                }
            }
            Ok(())
        }
        walk(path, path, &mut files)?;
        return Ok(files);
    }
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut zip = zip::ZipArchive::new(file).with_context(|| {
        format!(
            "{} is neither a package directory nor a zip",
            path.display()
        )
    })?;
    for i in 0..zip.len() {
        let mut f = zip.by_index(i)?;
        if f.is_dir() {
            continue;
        }
        let name = f.name()?.into_owned();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        if files.insert(name.clone(), bytes).is_some() {
            fail!(Invalid, "{}: the zip holds {name} twice", path.display());
        }
    }
    Ok(files)
}

/// What `gco audit verify` found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Verified {
    pub ok: bool,
    pub signed_by: Option<String>,
    pub period: Option<String>,
    pub files: usize,
    pub changed: Vec<String>,
    pub missing: Vec<String>,
    pub extra: Vec<String>,
    pub problems: Vec<String>,
}

/// Checks a package offline: the manifest's signature against the issuer's DID
/// document (`trusted`, e.g. the hosted did.json; else the package's own copy, which
/// only proves the package is consistent with itself), then every file's SHA-256.
pub fn verify(files: &Files, trusted: Option<&Value>) -> Verified {
    let mut v = Verified::default();
    let Some(token) = files.get(MANIFEST_JWT) else {
        v.problems.push(format!(
            "{MANIFEST_JWT} is missing: not a gco audit package, or its manifest was removed"
        ));
        v.missing.push(MANIFEST_JWT.into());
        return v;
    };
    let payload = match check_signature(files, token, trusted) {
        Ok((kid, payload)) => {
            v.signed_by = Some(kid);
            payload
        }
        Err(e) => {
            v.problems.push(format!("{MANIFEST_JWT}: {e:#}"));
            return v;
        }
    };
    match files.get(MANIFEST_JSON) {
        Some(b) if serde_json::from_slice::<Value>(b).ok().as_ref() == Some(&payload) => {}
        Some(_) => v.changed.push(MANIFEST_JSON.into()),
        None => v.missing.push(MANIFEST_JSON.into()),
    }
    let subject = &payload["credentialSubject"];
    v.period = subject["period"].as_str().map(String::from);
    let entries: Vec<Entry> = match serde_json::from_value(subject["files"].clone()) {
        Ok(e) => e,
        Err(e) => {
            v.problems.push(format!(
                "the signed manifest has no readable file list: {e}"
            ));
            return v;
        }
    };
    let mut listed = std::collections::BTreeSet::new();
    for e in &entries {
        listed.insert(e.path.as_str());
        match files.get(&e.path) {
            None => v.missing.push(e.path.clone()),
            Some(b) if b.len() as u64 != e.size || sha256_hex(b) != e.sha256 => {
                v.changed.push(e.path.clone())
            }
            Some(_) => {}
        }
    }
    for p in files.keys() {
        if p != MANIFEST_JWT && p != MANIFEST_JSON && !listed.contains(p.as_str()) {
            v.extra.push(p.clone());
        }
    }
    v.files = entries.len();
    v.ok =
        v.changed.is_empty() && v.missing.is_empty() && v.extra.is_empty() && v.problems.is_empty();
    v
}

fn check_signature(
    files: &Files,
    token: &[u8],
    trusted: Option<&Value>,
) -> Result<(String, Value)> {
    let token = std::str::from_utf8(token).context("not text")?.trim();
    let jws = Jws::parse(token)?;
    let kid = jws
        .header_str("kid")
        .ok_or_else(|| failure!(Invalid, "the JWS header has no kid"))?
        .to_string();
    let did_doc = match trusted {
        Some(d) => d.clone(),
        None => {
            let bytes = files.get("issuer/did.json").ok_or_else(|| {
                failure!(
                    Usage,
                    "issuer/did.json is missing and no --did-document was given"
                )
            })?;
            serde_json::from_slice(bytes).context("issuer/did.json is not JSON")?
        }
    };
    let key = Resolver::new(vec![did_doc]).resolve(&kid)?;
    jws.verify(&key)
        .map_err(|e| failure!(Invalid, "signature does not verify with {kid}: {e}"))?;
    Ok((kid, jws.payload_json()?))
}
