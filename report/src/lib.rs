//! Compliance reports from the emissions runs: the AI-inference contribution to
//! CSRD / ESRS E1 and EU AI Act energy documentation, rendered from Tera templates
//! (`templates/`) to Typst markup and by the embedded Typst compiler to PDF/A-3b with
//! their CSVs attached; CSV exports; auditor packages with a signed file manifest.
//! Methods and formats: docs/reports.md.

pub mod aiact;
pub mod csrd;
pub mod csv_out;
pub mod data;
pub mod error;
pub mod fixed;
pub mod package;
pub mod render;
pub mod synthetic;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Context, Result, fail, failure};
use chrono::{DateTime, Utc};
use gco_ledger::Store;
use gco_pipelines::Period;
use serde_json::{Value, json};

pub use config::ReportConfig;
pub use data::Month;
pub use error::{Kind, ReportError};
/// `[report]` in gco.toml (crate gco-config).
pub use gco_config::report as config;
use gco_pdf::escape;
pub use render::Templates;

/// A CSV export: file name and bytes.
#[derive(Debug, Clone)]
pub struct Csv {
    pub name: String,
    pub bytes: Vec<u8>,
}

/// The runs a report covers.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// `2026`, `2026-10`, or `2026-01..2026-03`.
    pub label: String,
    /// The months asked for.
    pub periods: Vec<Period>,
    /// The latest run of each month that has one.
    pub months: Vec<Month>,
    /// Months asked for without a run (stated in the report, never skipped silently).
    pub missing: Vec<Period>,
    pub organisation: String,
    /// The latest as-of time of the runs: the document date.
    pub as_of: DateTime<Utc>,
    pub as_of_text: String,
    pub code_version: String,
}

impl Loaded {
    /// A report's template context: `specific` (a JSON object) plus the fields every
    /// report has (title, organisation, period, as-of, code version, runs, missing months).
    pub fn context(&self, title: String, specific: Value) -> Value {
        let mut ctx = json!({
            "title": title,
            "organisation": self.organisation,
            "period": self.label,
            "as_of": self.as_of_text,
            "code_version": self.code_version,
            "runs": self.runs_json(),
            "missing": self.missing.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            "warnings": self.warnings(),
        });
        if let (Some(c), Value::Object(extra)) = (ctx.as_object_mut(), specific) {
            c.extend(extra);
        }
        ctx
    }

    /// What the first page must say about the data behind the figures: a month whose
    /// run verified no record, or left batches out or has chain gaps.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for m in &self.months {
            let c = &m.manifest.coverage;
            let p = m.period;
            if c.records_verified == 0 {
                out.push(format!(
                    "{p}: no verified ledger record (run version {}): the figures of {p} are zero because no data was verified, not because no inference ran.",
                    m.version
                ));
            }
            if c.batches_excluded > 0 {
                out.push(format!(
                    "{p}: {} of {} ledger batches failed verification and are not counted (run version {}, see its manifest).",
                    c.batches_excluded, c.batches, m.version
                ));
            }
            if c.chain_issues > 0 {
                out.push(format!(
                    "{p}: {} gaps in the nodes' hash chains: records may be missing.",
                    c.chain_issues
                ));
            }
        }
        out
    }

    pub fn runs_json(&self) -> Vec<Value> {
        self.months
            .iter()
            .map(|m| {
                json!({
                    "period": m.period.to_string(),
                    "version": m.version,
                    "as_of": m.as_of(),
                    "manifest": m.manifest_path,
                    "manifest_sha256": m.manifest_sha256,
                })
            })
            .collect()
    }
}

/// Loads the latest run of each month in `periods`. At least one must have a run.
pub async fn load(store: &Store, label: &str, periods: Vec<Period>) -> Result<Loaded> {
    let mut months = Vec::new();
    let mut missing = Vec::new();
    for p in &periods {
        match data::load_month(store, *p, None).await? {
            Some(m) => months.push(m),
            None => missing.push(*p),
        }
    }
    if months.is_empty() {
        fail!(
            NotFound,
            "no emissions run for {label} in {}: run `gco run --period YYYY-MM` (or `gco backfill`) first",
            store.url()
        );
    }
    let mut as_of = i64::MIN;
    let mut versions = Vec::new();
    for m in &months {
        let t = gco_ledger::time::parse_utc(m.as_of()).map_err(|e| {
            failure!(
                Inconsistent,
                "{}: as_of {:?}: {e}",
                m.manifest_path,
                m.as_of()
            )
        })?;
        as_of = as_of.max(t);
        let v = m.manifest.code_version.clone();
        if !versions.contains(&v) {
            versions.push(v);
        }
    }
    let as_of_dt = DateTime::<Utc>::from_timestamp_micros(as_of)
        .ok_or_else(|| failure!(Inconsistent, "as-of time {as_of} is out of range"))?;
    let organisation = months
        .last()
        .map(|m| m.manifest.config.organisation.clone())
        .unwrap_or_default();
    Ok(Loaded {
        label: label.to_string(),
        periods,
        months,
        missing,
        organisation,
        as_of: as_of_dt,
        as_of_text: as_of_dt.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        code_version: versions.join(", "),
    })
}

/// A rendered report: the PDF (with its CSVs attached) and the CSVs.
#[derive(Debug, Clone)]
pub struct Report {
    /// Directory name under the output directory, e.g. `csrd-2026`.
    pub name: String,
    pub pdf: Vec<u8>,
    pub csvs: Vec<Csv>,
}

impl Report {
    /// Writes `DIR/<name>/report.pdf` and the CSVs beside it; returns the paths.
    pub fn write(&self, dir: &Path) -> Result<Vec<PathBuf>> {
        let out = dir.join(&self.name);
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let mut paths = Vec::new();
        let mut put = |name: &str, bytes: &[u8]| -> Result<()> {
            let p = out.join(name);
            std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))?;
            paths.push(p);
            Ok(())
        };
        put("report.pdf", &self.pdf)?;
        for c in &self.csvs {
            put(&c.name, &c.bytes)?;
        }
        Ok(paths)
    }
}

/// Compiles a rendered template with its data files (charts, attached CSVs).
fn compile(
    name: &str,
    markup: String,
    charts: &Value,
    csvs: &[Csv],
    as_of: DateTime<Utc>,
) -> Result<Vec<u8>> {
    let mut files = BTreeMap::new();
    // Chart labels are data (model and site names): shown as `display` shows them.
    let charts = escape::display_json(charts);
    files.insert("charts.json".to_string(), serde_json::to_vec(&charts)?);
    for c in csvs {
        files.insert(c.name.clone(), c.bytes.clone());
    }
    gco_pdf::pdf(gco_pdf::Document {
        main: markup,
        files,
        date: as_of,
        ident: format!("gco/{name}"),
    })
    .map_err(Into::into)
}

/// The models with inferences in `data`, in order: one EU AI Act report each.
pub fn models(data: &Loaded) -> Vec<String> {
    let mut out: Vec<String> = csrd::group(&data.months, "model_month", |k| vec![k[0].clone()])
        .into_iter()
        .filter(|(_, s)| s.inferences > 0)
        .map(|(k, _)| k[0].clone())
        .collect();
    out.dedup();
    out
}

/// `gco report csrd`.
pub fn csrd(data: &Loaded, config: &ReportConfig, templates: &Templates) -> Result<Report> {
    let built = csrd::build(data, config)?;
    let markup = templates.render("csrd/report.typ", &built.context)?;
    let name = format!("csrd-{}", data.label);
    let pdf = compile(&name, markup, &built.charts, &built.csvs, data.as_of)?;
    Ok(Report {
        name,
        pdf,
        csvs: built.csvs,
    })
}

/// `gco report ai-act`.
pub fn ai_act(
    data: &Loaded,
    model: &str,
    config: &ReportConfig,
    templates: &Templates,
) -> Result<Report> {
    let built = aiact::build(data, model, config)?;
    let markup = templates.render("eu-ai-act/report.typ", &built.context)?;
    let name = format!("ai-act-{}-{}", file_safe(model), data.label);
    let pdf = compile(&name, markup, &built.charts, &built.csvs, data.as_of)?;
    Ok(Report {
        name,
        pdf,
        csvs: built.csvs,
    })
}

/// A model id as a file name, unique per id: letters, digits, `.`, `-`, `_` are kept
/// and anything else becomes `_`. When that changed the id (or it is over 64
/// characters, or starts with `.`), the first 64 characters are followed by `-` and 12
/// hex digits of the id's SHA-256, so `a/b`, `a?b`, `a b` and `a_b` never share a file.
pub fn file_safe(s: &str) -> String {
    let kept: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if kept == s && !s.is_empty() && s.len() <= 64 && !s.starts_with('.') {
        return kept;
    }
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(s.as_bytes()));
    let head: String = kept.chars().take(64).collect();
    format!("{head}-{}", &digest[..12])
}
