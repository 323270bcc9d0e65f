//! `gco issuer`, `gco vc`, `gco certificate`: issuer identity, credential issuance,
//! verification, revocation and lookup.

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
use gco_credentials::issuer::Resolver;
use gco_credentials::vc::Format;
use gco_credentials::{Issuer, KeyKind, Purpose};
use gco_pipelines::Period;
use gco_pipelines::certify::{self, Granularity, IssueOptions, IssueReport};
use serde_json::json;

use crate::cli::{
    CertificateCommand, DidMethod, Global, IssuerAlgorithm, IssuerCommand, KeyPurposeArg, VcCommand,
};
use crate::output::print_json;

fn kind(a: IssuerAlgorithm) -> KeyKind {
    match a {
        IssuerAlgorithm::Ed25519 => KeyKind::Ed25519,
        IssuerAlgorithm::P256 => KeyKind::P256,
        IssuerAlgorithm::Rsa => KeyKind::Rsa,
    }
}

fn seconds(micros: i64) -> String {
    certify::utc_seconds(micros)
}

pub fn issuer(cmd: IssuerCommand, g: &Global) -> Result<u8> {
    match cmd {
        IssuerCommand::Init {
            dir,
            domain,
            algorithm,
            legacy,
            now,
        } => {
            let now = seconds(super::time_or_now(now.as_deref(), "now")?);
            let issuer = Issuer::init(
                &dir.dir,
                domain.as_deref(),
                kind(algorithm),
                legacy,
                &now,
                &mut rand::rng(),
            )?;
            let did = issuer.did()?;
            if g.json {
                print_json(&json!({"did": did, "dir": dir.dir, "keys": issuer.file.keys}))?;
            } else {
                eprintln!("issuer {did} created in {}", dir.dir.display());
                for k in &issuer.file.keys {
                    eprintln!("  key {} ({:?}, {:?})", k.key_id, k.kind, k.purpose);
                }
                if let Some(url) = gco_credentials::issuer::did_web_url(&did) {
                    eprintln!("  host the output of `gco issuer did` at {url}");
                }
            }
            Ok(0)
        }
        IssuerCommand::Rotate {
            dir,
            purpose,
            algorithm,
            now,
        } => {
            let now = seconds(super::time_or_now(now.as_deref(), "now")?);
            let mut issuer = Issuer::load(&dir.dir)?;
            let (purpose, default) = match purpose {
                KeyPurposeArg::Vc => (Purpose::Vc, KeyKind::Ed25519),
                KeyPurposeArg::Legacy => (Purpose::Legacy, KeyKind::Rsa),
            };
            let id = issuer.rotate(
                purpose,
                algorithm.map_or(default, kind),
                &now,
                &mut rand::rng(),
            )?;
            if g.json {
                print_json(&json!({"key_id": id, "did": issuer.did()?}))?;
            } else {
                eprintln!(
                    "new {purpose:?} key {id}; earlier keys stay in the DID document for credentials they signed. Publish the new `gco issuer did`."
                );
            }
            Ok(0)
        }
        IssuerCommand::Did { dir, method, out } => {
            let issuer = Issuer::load(&dir.dir)?;
            let doc = match method {
                DidMethod::Web => {
                    if issuer.file.did_web.is_none() {
                        bail!("this issuer has no did:web (init with --domain); use --method key");
                    }
                    issuer.did_document()?
                }
                DidMethod::Key => gco_credentials::issuer::did_key_document(
                    issuer.signer(Purpose::Vc)?.key.public(),
                ),
            };
            let text = serde_json::to_string_pretty(&doc)? + "\n";
            match out {
                Some(p) => {
                    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?
                }
                None => print!("{text}"),
            }
            Ok(0)
        }
        IssuerCommand::Jwks { dir } => {
            print_json(&Issuer::load(&dir.dir)?.jwks()?)?;
            Ok(0)
        }
    }
}

fn describe_issue(r: &IssueReport) {
    match r.outcome {
        "up_to_date" => eprintln!(
            "{} version {}: credentials already issued ({})",
            r.period, r.version, r.index
        ),
        _ => {
            eprintln!(
                "{} version {}: credentials issued by {} ({})",
                r.period, r.version, r.issuer, r.index
            );
            for (k, n) in &r.credentials {
                eprintln!("  {n:>10}  {k}");
            }
            eprintln!("  member inferences committed to: {}", r.member_inferences);
        }
    }
}

pub async fn issue(
    store: &gco_ledger::Store,
    issuer_dir: &Path,
    opts: &IssueOptions,
    tsa: Option<&str>,
    g: &Global,
) -> Result<IssueReport> {
    let issuer = Issuer::load(issuer_dir)?;
    // Issuance writes a version's credentials and its status lists, which a revoke
    // rewrites: both hold the period's certificates lease.
    let lease = gco_ledger::Lease::acquire(
        store,
        &gco_ledger::layout::certificates(opts.period),
        &super::lease_options(g, &format!("gco vc issue --period {}", opts.period)),
    )
    .await?;
    let issued = certify::issue(store, &issuer, opts).await;
    let released = lease.release().await;
    let mut report = issued?;
    released?;
    if !g.json {
        describe_issue(&report);
    }
    if let Some(url) = tsa {
        let ts = gco_pipelines::tsa::timestamp_index(store, &report.index, url)
            .await
            .with_context(|| {
            format!(
                "time-stamping {} (the credentials are written; rerun `gco vc issue --period {} --tsa ...` to retry)",
                report.index, report.period
            )
        })?;
        if !g.json {
            eprintln!(
                "  time-stamped by the TSA at {} (serial {}): {}",
                ts.gen_time, ts.serial, ts.path
            );
        }
        report.timestamp = Some(ts);
    }
    Ok(report)
}

/// Reads a credential argument: a file, `-` for stdin, or the token/document itself.
fn read_input(input: &str) -> Result<String> {
    if input == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        return Ok(s);
    }
    let p = Path::new(input);
    if input.len() < 4096 && p.is_file() {
        return std::fs::read_to_string(p).with_context(|| format!("reading {input}"));
    }
    Ok(input.to_string())
}

fn resolver(did_documents: &[std::path::PathBuf], issuer_dir: Option<&Path>) -> Result<Resolver> {
    let mut docs = Vec::new();
    for p in did_documents {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        docs.push(
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a DID document", p.display()))?,
        );
    }
    if let Some(dir) = issuer_dir
        && dir.join(gco_credentials::issuer::ISSUER_FILE).exists()
    {
        docs.push(Issuer::load(dir)?.did_document()?);
    }
    Ok(Resolver::new(docs))
}

pub async fn vc(cmd: VcCommand, g: &Global) -> Result<u8> {
    match cmd {
        VcCommand::Issue {
            dir,
            period,
            version,
            granularity,
            format,
            issued_at,
            tsa,
        } => {
            let store = super::open_store(g)?;
            let mut opts = IssueOptions::aggregates(Period::parse(&period)?);
            opts.version = version;
            opts.granularities = granularity
                .iter()
                .map(|s| Granularity::parse(s.trim()))
                .collect::<Result<BTreeSet<_>, _>>()?;
            opts.formats = format
                .iter()
                .map(|s| Format::parse(s.trim()))
                .collect::<Result<BTreeSet<_>, _>>()?;
            if opts.formats.contains(&Format::Legacy)
                && !opts.granularities.contains(&Granularity::Inference)
            {
                bail!("--format legacy is per inference: add --granularity inference");
            }
            opts.issued_at = issued_at
                .map(|t| super::time_or_now(Some(&t), "issued-at"))
                .transpose()?;
            let report = issue(&store, &dir.dir, &opts, tsa.as_deref(), g).await?;
            if g.json {
                print_json(&report)?;
            }
            Ok(0)
        }
        VcCommand::Verify {
            input,
            did_document,
            issuer_dir,
            status_list,
            ledger,
            skip_status,
            at,
        } => {
            let text = read_input(&input)?;
            let at =
                DateTime::<Utc>::from_timestamp_micros(super::time_or_now(at.as_deref(), "at")?)
                    .ok_or_else(|| anyhow!("--at out of range"))?;
            let resolver = resolver(&did_document, issuer_dir.as_deref())?;
            let store = ledger
                .as_deref()
                .map(|url| gco_ledger::Store::open(url, &Default::default()))
                .transpose()
                .context("--ledger")?;
            let status_token = status_list
                .as_deref()
                .map(|p| {
                    std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
                })
                .transpose()?;
            let outcome = gco_pipelines::verify::verify_credential(
                &text,
                &resolver,
                at,
                status_token.as_deref(),
                store.as_ref(),
                skip_status,
            )
            .await;
            let ok = outcome.is_ok();
            match outcome {
                Ok(r) if g.json => print_json(&r)?,
                Ok(r) => {
                    eprintln!("valid: {} {} issued by {}", r.format, r.id, r.issuer);
                    for c in &r.checked {
                        eprintln!("  ok  {c}");
                    }
                    for c in &r.not_checked {
                        eprintln!("  --  {c}");
                    }
                }
                Err(e) => {
                    let code = e.code();
                    if g.json {
                        print_json(
                            &json!({"valid": false, "code": code, "error": format!("{e:#}")}),
                        )?;
                    } else {
                        eprintln!("INVALID [{code}]: {e:#}");
                    }
                }
            }
            Ok(if ok { 0 } else { 1 })
        }
        VcCommand::Revoke {
            dir,
            credential,
            period,
            version,
            reason,
            now,
        } => {
            let store = super::open_store(g)?;
            let now = seconds(super::time_or_now(now.as_deref(), "now")?);
            let issuer = Issuer::load(&dir.dir)?;
            let period = Period::parse(&period)?;
            // The status list is read, changed and rewritten: one writer at a time.
            let lease = gco_ledger::Lease::acquire(
                &store,
                &gco_ledger::layout::certificates(period),
                &super::lease_options(g, &format!("gco vc revoke --period {period}")),
            )
            .await?;
            let text = read_input(&credential)?;
            let res = resolver(&[], Some(issuer.dir()))?;
            let r = gco_pipelines::revoke::revoke(
                &store,
                &gco_pipelines::revoke::Request {
                    issuer: &issuer,
                    resolver: &res,
                    credential: &text,
                    period,
                    version,
                    reason: &reason,
                    now: &now,
                },
                &lease,
            )
            .await;
            let released = lease.release().await;
            let r = r?;
            released?;
            if g.json {
                print_json(&r)?;
            } else {
                eprintln!(
                    "revoked {} (status list {} index {})",
                    r.id, r.status_list, r.index
                );
            }
            Ok(0)
        }
    }
}

pub async fn certificate(cmd: CertificateCommand, g: &Global) -> Result<u8> {
    let CertificateCommand::Show {
        inference_id,
        period,
        format,
    } = cmd;
    let store = super::open_store(g)?;
    let format = format.as_deref().map(Format::parse).transpose()?;
    let period = period.as_deref().map(Period::parse).transpose()?;
    if let Some(found) =
        gco_pipelines::lookup::find_inference(&store, period, &inference_id).await?
    {
        let (per, v) = (&found.period, found.version);
        let hits: Vec<_> = found
            .credentials
            .iter()
            .filter(|(f, _, _)| format.is_none_or(|want| want.as_str() == f))
            .collect();
        if !hits.is_empty() {
            if g.json {
                print_json(&hits.iter().map(|(f, id, d)| json!({"period": per, "version": v, "format": f, "id": id, "document": d})).collect::<Vec<_>>())?;
            } else {
                for (f, id, d) in &hits {
                    eprintln!("{per} version {v}: {f} {id}");
                    println!("{d}");
                }
            }
            return Ok(0);
        }
    }
    eprintln!(
        "no stored credential for inference {inference_id:?} (per-inference credentials are issued with `gco vc issue --granularity inference`)"
    );
    Ok(1)
}
