//! `gco ledger`: verify, import, stats.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use gco_ledger::import::{ImportPolicy, existing_inference_ids, import_file};
use gco_ledger::registry::Registry;
use gco_ledger::{ChainWriter, KeyFileSigner, Signer, VerifyOptions, VerifyReport};
use serde_json::json;

use super::{date_arg, open_store, time_or_now};
use crate::cli::{Global, LedgerCommand};
use crate::output::{kwh, print_json, progress};

pub async fn run(cmd: LedgerCommand, g: &Global) -> Result<u8> {
    let store = open_store(g)?;
    match cmd {
        LedgerCommand::Verify { range, concurrency } => {
            let pb = progress(0, "verify", g.json);
            let pb2 = pb.clone();
            let opts = VerifyOptions {
                from: date_arg(range.from.as_deref(), "from")?,
                to: date_arg(range.to.as_deref(), "to")?,
                concurrency,
                progress: Some(Arc::new(move |done, total| {
                    pb2.set_length(total);
                    pb2.set_position(done);
                })),
            };
            let report = gco_ledger::verify::verify(&store, &opts).await?;
            pb.finish_and_clear();
            print_verify(&report, g.json)?;
            Ok(if report.ok { 0 } else { 1 })
        }
        LedgerCommand::Import {
            input,
            node,
            key,
            quarantine,
            as_of,
            max_gpu_watts,
            max_batch_records,
            strict,
        } => {
            let now = time_or_now(as_of.as_deref(), "as-of")?;
            gco_ledger::store::validate_node_id(&node).map_err(anyhow::Error::msg)?;
            let signer = KeyFileSigner::load(&key)?;
            // Refuse before writing anything if the key could not vouch for the node.
            let registry = Registry::load(&store).await?;
            if !registry
                .keys()
                .iter()
                .any(|k| k.node_id == node && k.public_key.key_id() == signer.key_id())
            {
                anyhow::bail!(
                    "key {} ({}) is not registered for node {node} in {}; run `gco node register --node {node} --public-key <its .pub> ...` first",
                    signer.key_id(),
                    key.display(),
                    store.url()
                );
            }
            let mut policy = ImportPolicy::new(now);
            policy.max_gpu_watts = max_gpu_watts;
            let existing = existing_inference_ids(&store, &node).await?;
            let outcome = import_file(&input, &node, &policy, &existing)?;
            let quarantine_path = quarantine.unwrap_or_else(|| {
                let mut p = input.clone().into_os_string();
                p.push(".quarantine.jsonl");
                PathBuf::from(p)
            });
            if !outcome.quarantined.is_empty() {
                let mut f = std::fs::File::create(&quarantine_path).with_context(|| {
                    format!("creating quarantine file {}", quarantine_path.display())
                })?;
                for q in &outcome.quarantined {
                    serde_json::to_writer(&mut f, q)?;
                    f.write_all(b"\n")?;
                }
                f.sync_all()?;
            }
            let mut accepted = outcome.accepted;
            accepted.sort_by_key(|r| r.start);
            let accepted_count = accepted.len();
            let energy: i64 = accepted.iter().map(|r| r.energy.0).sum();
            let head = gco_ledger::batch::chain_head(&store, &node).await?;
            let first_seq = head.next_seq;
            let mut writer =
                ChainWriter::new(&signer, head).with_max_batch_records(max_batch_records);
            let batches = writer.seal(accepted)?;
            let pb = progress(batches.len() as u64, "upload", g.json);
            let (created, present) =
                gco_ledger::batch::upload(&store, &batches, 8, &|_| pb.inc(1)).await?;
            pb.finish_and_clear();
            let q = outcome.quarantined.len();
            debug_assert_eq!(outcome.rows as usize, accepted_count + q);
            if g.json {
                print_json(&json!({
                    "input": input,
                    "node_id": node,
                    "rows": outcome.rows,
                    "accepted": accepted_count,
                    "quarantined": q,
                    "quarantine_file": (q > 0).then_some(&quarantine_path),
                    "energy_mj": energy,
                    "batches_created": created,
                    "batches_already_present": present,
                    "seq_first": first_seq,
                    "seq_next": writer.head().next_seq,
                }))?;
            } else {
                eprintln!(
                    "{}: {} rows read, {accepted_count} accepted ({} kWh) in {} batches, {q} quarantined",
                    input.display(),
                    outcome.rows,
                    kwh(energy),
                    created + present
                );
                if q > 0 {
                    eprintln!(
                        "quarantined rows and their reasons: {}",
                        quarantine_path.display()
                    );
                }
            }
            Ok(if strict && q > 0 { 1 } else { 0 })
        }
        LedgerCommand::Stats { range } => {
            let from = date_arg(range.from.as_deref(), "from")?;
            let to = date_arg(range.to.as_deref(), "to")?;
            let stats = gco_ledger::stats::stats(&store, from, to).await?;
            if g.json {
                print_json(&stats)?;
            } else {
                println!(
                    "{:<10}  {:<20} {:<28} {:>9} {:>14}",
                    "date", "node", "model", "records", "energy_kWh"
                );
                for r in &stats.rows {
                    println!(
                        "{:<10}  {:<20} {:<28} {:>9} {:>14}",
                        r.date,
                        r.node_id,
                        r.model_id.as_deref().unwrap_or("(idle/overhead)"),
                        r.records,
                        kwh(r.energy_mj)
                    );
                }
                println!(
                    "total: {} records, {} kWh in {} batches ({} bytes, {:.1} bytes/record); not verified, see `gco ledger verify`",
                    stats.records,
                    kwh(stats.energy_mj),
                    stats.batches,
                    stats.bytes,
                    stats.bytes as f64 / stats.records.max(1) as f64
                );
            }
            Ok(0)
        }
    }
}

/// Prints a verification report: JSON on stdout, or a summary and problems on stderr.
pub fn print_verify(report: &VerifyReport, json: bool) -> Result<()> {
    if json {
        return print_json(report);
    }
    for p in &report.problems {
        match p.row {
            Some(row) => eprintln!("FAIL {} [row {row}] {}: {}", p.object, p.code, p.message),
            None => eprintln!("FAIL {} {}: {}", p.object, p.code, p.message),
        }
    }
    eprintln!(
        "{}: {} objects, {} nodes, {} records ({} kWh); valid: {} batches, {} records ({} kWh); {} problems",
        if report.ok {
            "ledger verified"
        } else {
            "LEDGER VERIFICATION FAILED"
        },
        report.objects,
        report.nodes,
        report.records,
        kwh(report.energy_mj),
        report.batches_valid,
        report.records_valid,
        kwh(report.energy_mj_valid),
        report.problems.len()
    );
    Ok(())
}
