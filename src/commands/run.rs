//! `gco run` and `gco backfill`: the monthly emissions job.

use std::sync::Arc;

use anyhow::{Context, Result};
use gco_pipelines::aggregate::RunSummary;
use gco_pipelines::{Job, Outcome, Period};

use crate::cli::{BackfillArgs, Global, RunArgs};
use crate::output::{print_json, progress, term};

/// Code version recorded in run manifests.
pub const CODE_VERSION: &str = concat!("gco ", env!("CARGO_PKG_VERSION"));

fn progress_fn(g: &Global) -> gco_pipelines::job::Progress {
    let pb = progress(0, "verify", g.json);
    Arc::new(move |stage: &str, done: u64, total: u64| {
        pb.set_message(stage.to_string());
        pb.set_length(total);
        pb.set_position(done);
        if done == total {
            pb.finish_and_clear();
        }
    })
}

/// `ng` as tonnes/kilograms/grams for people.
pub fn mass(ng: i128) -> String {
    let v = ng as f64;
    match v.abs() {
        x if x >= 1e15 => format!("{:.3} t", v / 1e15),
        x if x >= 1e12 => format!("{:.3} kg", v / 1e12),
        _ => format!("{:.3} g", v / 1e9),
    }
}

/// Prints the human summary of a written version on stderr.
pub fn describe(period: Period, outcome: &Outcome) {
    match outcome {
        Outcome::UpToDate {
            version,
            manifest,
            batches_excluded,
            chain_issues,
        } => {
            eprintln!(
                "{period}: up to date: version {version} already has exactly these inputs ({manifest}); nothing written (--force writes a new version)"
            );
            if *batches_excluded > 0 || *chain_issues > 0 {
                eprintln!(
                    "  that version left out {batches_excluded} batches that failed verification and has {chain_issues} chain gaps (see its manifest)"
                );
            }
        }
        Outcome::Empty { period, as_of } => eprintln!(
            "{period}: no ledger batch in the store for this period as of {as_of}: nothing written. Check --store, --period and --as-of; --allow-empty writes a version with zero records"
        ),
        Outcome::Staged {
            shard,
            shards,
            plan,
            batches,
            rows,
        } => eprintln!(
            "{period}: shard {shard}/{shards} staged for plan {plan}: {batches} batches, {rows} rows; run --merge once every shard is staged"
        ),
        Outcome::Created {
            version,
            manifest,
            summary,
            changes,
            ..
        } => {
            let RunSummary {
                coverage: c,
                totals,
                residual_mix_unknown,
                ..
            } = summary.as_ref();
            eprintln!("{period}: version {version} written ({manifest})");
            eprintln!(
                "  coverage: {}/{} batches verified, {}/{} sealed records, {} accounted + {} quarantined",
                c.batches_verified,
                c.batches,
                c.records_verified,
                c.records_sealed,
                c.records_accounted,
                c.records_quarantined
            );
            for e in &c.excluded {
                eprintln!(
                    "  excluded: {} [{}] {}",
                    term(&e.object),
                    e.code,
                    term(&e.message)
                );
            }
            if c.chain_issues > 0 {
                eprintln!(
                    "  chain: {} gaps (see the manifest's chain_issues)",
                    c.chain_issues
                );
            }
            for (reason, n) in &c.quarantine_reasons {
                eprintln!("  quarantined: {n} rows, {reason}");
            }
            if !residual_mix_unknown.is_empty() {
                eprintln!(
                    "  market-based: no residual mix configured for {}; their uncovered energy uses the grid average (flagged in rows)",
                    residual_mix_unknown.join(", ")
                );
            }
            eprintln!(
                "  {:<8} {:>12} {:>14} {:>14} {:>14} {:>14}",
                "scope", "energy_kWh", "location", "market", "embodied", "SCI(infer.)"
            );
            for (scope, t) in totals {
                let kwh = t.facility_energy_mj as f64 / gco_ledger::units::MJ_PER_KWH as f64;
                eprintln!(
                    "  {:<8} {:>12.3} {:>14} {:>14} {:>14} {:>14}",
                    scope,
                    kwh,
                    mass(t.location_ng),
                    mass(t.market_ng),
                    mass(t.embodied_ng),
                    mass(t.sci_ng)
                );
            }
            if let Some(ch) = changes {
                eprintln!(
                    "  changes since version {}: {} input batches added, {} removed; records {} -> {}; location {} -> {}; market {} -> {}",
                    ch.previous_version,
                    ch.inputs_added.len(),
                    ch.inputs_removed.len(),
                    ch.records_accounted_before,
                    ch.records_accounted_after,
                    mass(ch.location_ng_before),
                    mass(ch.location_ng_after),
                    mass(ch.market_ng_before),
                    mass(ch.market_ng_after)
                );
            }
        }
    }
}

/// 1 when the version left batches out or has chain gaps (also when a rerun finds it
/// up to date), or when nothing was written for want of input.
fn exit_code(o: &Outcome) -> u8 {
    match o {
        Outcome::Created { summary, .. }
            if summary.coverage.batches_excluded > 0 || summary.coverage.chain_issues > 0 =>
        {
            1
        }
        Outcome::UpToDate {
            batches_excluded,
            chain_issues,
            ..
        } if *batches_excluded > 0 || *chain_issues > 0 => 1,
        Outcome::Empty { .. } => 1,
        _ => 0,
    }
}

pub async fn run(args: RunArgs, g: &Global) -> Result<u8> {
    let (config, store) = crate::config::load_with_store(g)?;
    let period = Period::parse(&args.period)?;
    let as_of = super::time_or_now(args.as_of.as_deref(), "as-of")?;
    let job = Job {
        store: &store,
        cfg: &config.pipeline,
        period,
        as_of,
        code_version: CODE_VERSION.into(),
        progress: Some(progress_fn(g)),
        member_roots: args.credentials,
        allow_empty: args.allow_empty,
        lease: super::lease_options(g, &format!("gco run --period {period}")),
    };
    let outcome = match (args.shard, args.merge) {
        (Some((i, n)), _) => job.run_shard(i, n).await?,
        (None, true) => job.merge().await?,
        (None, false) => job.run(args.force).await?,
    };
    let credentials = match (&outcome, args.credentials) {
        (Outcome::Created { version, .. } | Outcome::UpToDate { version, .. }, true) => {
            let mut opts = gco_pipelines::certify::IssueOptions::aggregates(period);
            opts.version = Some(*version);
            if let Outcome::Created { member_roots, .. } = &outcome {
                opts.member_roots = member_roots.clone();
            }
            Some(
                super::vc::issue(&store, &args.issuer_dir, &opts, args.tsa.as_deref(), g)
                    .await
                    .context("issuing the version's credentials")?,
            )
        }
        _ => None,
    };
    if g.json {
        match credentials {
            Some(c) => print_json(&serde_json::json!({"run": outcome, "credentials": c}))?,
            None => print_json(&outcome)?,
        }
    } else {
        describe(period, &outcome);
    }
    Ok(exit_code(&outcome))
}

pub async fn backfill(args: BackfillArgs, g: &Global) -> Result<u8> {
    let (config, store) = crate::config::load_with_store(g)?;
    let (from, to) = (Period::parse(&args.from)?, Period::parse(&args.to)?);
    if to < from {
        anyhow::bail!("--to {to} is before --from {from}");
    }
    let as_of = super::time_or_now(args.as_of.as_deref(), "as-of")?;
    let months = Period::range(from, to);
    let mut results = Vec::new();
    let mut code = 0;
    for (k, period) in months.iter().enumerate() {
        if !g.json {
            eprintln!("[{}/{}] {period}", k + 1, months.len());
        }
        let job = Job {
            store: &store,
            cfg: &config.pipeline,
            period: *period,
            as_of,
            code_version: CODE_VERSION.into(),
            progress: Some(progress_fn(g)),
            member_roots: false,
            allow_empty: args.allow_empty,
            lease: super::lease_options(g, &format!("gco backfill ({period})")),
        };
        // Each month is written whole or not at all (create-only outputs, manifest
        // last); a crashed backfill resumes at the first month without a version.
        let outcome = job.run(args.force).await.with_context(|| {
            format!("period {period} (months before it are done; rerun to resume)")
        })?;
        code = code.max(exit_code(&outcome));
        if !g.json {
            describe(*period, &outcome);
        }
        results.push(serde_json::json!({"period": period.to_string(), "result": outcome}));
    }
    if g.json {
        print_json(&results)?;
    }
    Ok(code)
}
