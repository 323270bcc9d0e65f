//! `gco report` and `gco audit`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use gco_credentials::Issuer;
use gco_ledger::Store;
use gco_report::{Loaded, Report, ReportConfig, Templates, package};
use serde_json::json;

use crate::cli::{AuditCommand, Global, ReportCommand, ReportPeriod};
use crate::output::print_json;

fn templates(p: &ReportPeriod) -> Result<Templates> {
    match &p.templates {
        Some(dir) => Ok(Templates::from_dir(dir)?),
        None => Ok(Templates::builtin()?),
    }
}

async fn load(store: &Store, p: &ReportPeriod) -> Result<Loaded> {
    let periods = gco_report::data::months(&p.period, &p.months)?;
    let label = if p.months.is_empty() {
        p.period.clone()
    } else {
        match (periods.first(), periods.last()) {
            (Some(a), Some(b)) if a != b => format!("{a}..{b}"),
            (Some(a), _) => a.to_string(),
            _ => p.period.clone(),
        }
    };
    Ok(gco_report::load(store, &label, periods).await?)
}

fn describe(data: &Loaded) {
    for m in &data.months {
        eprintln!(
            "  {}: run version {} (as of {})",
            m.period,
            m.version,
            m.as_of()
        );
    }
    if !data.missing.is_empty() {
        let missing: Vec<String> = data.missing.iter().map(|p| p.to_string()).collect();
        eprintln!("  no run (stated in the report): {}", missing.join(", "));
    }
}

fn written(report: &Report, paths: &[PathBuf], started: Instant, g: &Global) -> Result<()> {
    if g.json {
        return print_json(&json!({
            "report": report.name,
            "files": paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "pdf_sha256": hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&report.pdf)),
        }));
    }
    eprintln!(
        "{}: {} files in {:.1} s",
        report.name,
        paths.len(),
        started.elapsed().as_secs_f64()
    );
    for p in paths {
        println!("{}", p.display());
    }
    Ok(())
}

pub async fn report(cmd: ReportCommand, g: &Global) -> Result<u8> {
    let (config, store) = crate::config::load_with_store(g)?;
    let started = Instant::now();
    match cmd {
        ReportCommand::Csrd { period, out } => {
            let t = templates(&period)?;
            let data = load(&store, &period).await?;
            if !g.json {
                describe(&data);
            }
            let report = gco_report::csrd(&data, &config.report, &t)?;
            let paths = report.write(&out)?;
            written(&report, &paths, started, g)?;
        }
        ReportCommand::AiAct { model, period, out } => {
            let t = templates(&period)?;
            let data = load(&store, &period).await?;
            if !g.json {
                describe(&data);
            }
            let report = gco_report::ai_act(&data, &model, &config.report, &t)?;
            let paths = report.write(&out)?;
            written(&report, &paths, started, g)?;
        }
    }
    Ok(0)
}

/// Loads the period, renders its reports and writes the signed package (progress on
/// stderr unless `quiet`); returns what was written and the reports.
pub async fn write_package(
    store: &Store,
    config: &ReportConfig,
    period: &ReportPeriod,
    out: &Path,
    issuer_dir: &Path,
    quiet: bool,
) -> Result<(package::Written, Vec<Report>)> {
    let issuer = Issuer::load(issuer_dir).with_context(|| {
        format!(
            "the package's manifest is signed by the credential issuer in {}",
            issuer_dir.display()
        )
    })?;
    let t = templates(period)?;
    let data = load(store, period).await?;
    if !quiet {
        describe(&data);
    }
    let bar = crate::output::progress(gco_report::models(&data).len() as u64 + 1, "reports", quiet);
    let written =
        package::write_package(store, &data, config, &t, &issuer, out, || bar.inc(1)).await?;
    bar.finish_and_clear();
    Ok(written)
}

pub async fn audit(cmd: AuditCommand, g: &Global) -> Result<u8> {
    match cmd {
        AuditCommand::Package {
            period,
            out,
            issuer,
        } => {
            let (config, store) = crate::config::load_with_store(g)?;
            let started = Instant::now();
            let (summary, _) =
                write_package(&store, &config.report, &period, &out, &issuer.dir, g.json).await?;
            if g.json {
                print_json(&summary)?;
            } else {
                eprintln!(
                    "audit package {}: {} files ({} reports), signed manifest in {:.1} s",
                    summary.period,
                    summary.files,
                    summary.reports.len(),
                    started.elapsed().as_secs_f64()
                );
                println!("{}", out.display());
            }
            Ok(0)
        }
        AuditCommand::Verify {
            package: path,
            did_document,
        } => {
            let trusted = match &did_document {
                Some(p) => Some(
                    serde_json::from_slice::<serde_json::Value>(
                        &std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
                    )
                    .with_context(|| format!("{} is not a DID document", p.display()))?,
                ),
                None => None,
            };
            let files = package::read(&path)?;
            let v = package::verify(&files, trusted.as_ref());
            if g.json {
                print_json(&v)?;
            } else {
                let who = v.signed_by.as_deref().unwrap_or("(no valid signature)");
                if v.ok {
                    println!(
                        "OK: {} files match the manifest signed by {who}{}",
                        v.files,
                        if trusted.is_none() {
                            " (checked with the package's own issuer/did.json: pass --did-document to check the issuer)"
                        } else {
                            ""
                        }
                    );
                } else {
                    println!("FAILED: {}", path.display());
                    for p in &v.problems {
                        println!("  problem: {p}");
                    }
                    for f in &v.changed {
                        println!("  changed: {f}");
                    }
                    for f in &v.missing {
                        println!("  missing: {f}");
                    }
                    for f in &v.extra {
                        println!("  extra:   {f}");
                    }
                }
            }
            Ok(if v.ok { 0 } else { 1 })
        }
    }
}
