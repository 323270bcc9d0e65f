//! `gco ledger`: verify, import, stats.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use gco_ledger::import::{ImportPolicy, existing_keys, import_file};
use gco_ledger::{ChainWriter, KeyFileSigner, VerifyOptions, VerifyReport};
use serde_json::json;

use super::{date_arg, open_store, time_or_now};
use crate::cli::{Global, LedgerCommand};
use crate::output::{kwh, print_json, progress, term};

/// What an import wrote, gathered while it held the node's lease.
struct Imported {
    rows: u64,
    q: usize,
    quarantine_path: PathBuf,
    accepted_count: usize,
    energy: i64,
    first_seq: u64,
    seq_next: u64,
    created: u64,
    present: u64,
}

/// Creates the quarantine file, never over an existing one: `explicit` must not exist;
/// by default `INPUT.quarantine.jsonl`, else the first free `INPUT.quarantine-N.jsonl`.
fn create_quarantine(
    input: &std::path::Path,
    explicit: Option<&std::path::Path>,
) -> Result<(std::fs::File, PathBuf)> {
    let create = |p: &PathBuf| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(p)
    };
    if let Some(p) = explicit {
        let p = p.to_path_buf();
        return match create(&p) {
            Ok(f) => Ok((f, p)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => anyhow::bail!(
                "quarantine file {} exists; name another with --quarantine (an earlier import's reasons are never overwritten); nothing was imported",
                p.display()
            ),
            Err(e) => Err(e).with_context(|| format!("creating quarantine file {}", p.display())),
        };
    }
    for n in 1u32.. {
        let mut p = input.as_os_str().to_owned();
        p.push(if n == 1 {
            ".quarantine.jsonl".to_string()
        } else {
            format!(".quarantine-{n}.jsonl")
        });
        let p = PathBuf::from(p);
        match create(&p) {
            Ok(f) => return Ok((f, p)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(e).with_context(|| format!("creating quarantine file {}", p.display()));
            }
        }
    }
    anyhow::bail!("no free quarantine file name beside {}", input.display())
}

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
            super::ensure_registered(&store, &node, &signer, &key.display().to_string()).await?;
            let mut policy = ImportPolicy::new(now);
            policy.max_gpu_watts = max_gpu_watts;
            // The node's chain has one writer at a time: the rows already there and the
            // chain head are read, and the new batches sealed and uploaded, under the
            // node's lease. A second import of the same file waits, then finds every
            // row already in the ledger.
            let lease = gco_ledger::Lease::acquire(
                &store,
                &gco_ledger::layout::node_lease(&node),
                &super::lease_options(g, &format!("gco ledger import --node {node}")),
            )
            .await?;
            // Released whatever happens (an unreadable file, a failed upload), so that
            // the next import need not wait for the lease to expire.
            let leased = async {
                let existing = existing_keys(&store, &node).await?;
                let outcome = import_file(&input, &node, &policy, &existing)?;
                let mut quarantine_path = PathBuf::new();
                if !outcome.quarantined.is_empty() {
                    let (mut f, path) = create_quarantine(&input, quarantine.as_deref())?;
                    quarantine_path = path;
                    for q in &outcome.quarantined {
                        serde_json::to_writer(&mut f, q)?;
                        f.write_all(b"\n")?;
                    }
                    f.sync_all()?;
                }
                let mut accepted = outcome.accepted;
                accepted.sort_by_key(|r| r.start);
                let accepted_count = accepted.len();
                let energy = accepted
                    .iter()
                    .try_fold(0i64, |sum, r| sum.checked_add(r.energy.0))
                    .context(
                        "the accepted rows' energy passes 2^63 mJ; import the file in parts",
                    )?;
                let head = gco_ledger::batch::chain_head(&store, &node).await?;
                let first_seq = head.next_seq;
                let mut writer =
                    ChainWriter::new(&signer, head).with_max_batch_records(max_batch_records);
                let batches = writer.seal(accepted)?;
                let pb = progress(batches.len() as u64, "upload", g.json);
                // Fenced: a writer that lost the lease (stalled past its expiry) adds nothing.
                lease.check().await?;
                let (created, present) =
                    gco_ledger::batch::upload(&store, &batches, 8, &|_| pb.inc(1)).await?;
                pb.finish_and_clear();
                anyhow::Ok(Imported {
                    rows: outcome.rows,
                    q: outcome.quarantined.len(),
                    quarantine_path,
                    accepted_count,
                    energy,
                    first_seq,
                    seq_next: writer.head().next_seq,
                    created,
                    present,
                })
            }
            .await;
            let released = lease.release().await;
            let Imported {
                rows,
                q,
                quarantine_path,
                accepted_count,
                energy,
                first_seq,
                seq_next,
                created,
                present,
            } = leased?;
            released?;
            debug_assert_eq!(rows as usize, accepted_count + q);
            if g.json {
                print_json(&json!({
                    "input": input,
                    "node_id": node,
                    "rows": rows,
                    "accepted": accepted_count,
                    "quarantined": q,
                    "quarantine_file": (q > 0).then_some(&quarantine_path),
                    "energy_mj": energy,
                    "batches_created": created,
                    "batches_already_present": present,
                    "seq_first": first_seq,
                    "seq_next": seq_next,
                }))?;
            } else {
                eprintln!(
                    "{}: {} rows read, {accepted_count} accepted ({} kWh) in {} batches, {q} quarantined",
                    input.display(),
                    rows,
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
                        term(r.model_id.as_deref().unwrap_or("(idle/overhead)")),
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
            Some(row) => eprintln!(
                "FAIL {} [row {row}] {}: {}",
                term(&p.object),
                p.code,
                term(&p.message)
            ),
            None => eprintln!("FAIL {} {}: {}", term(&p.object), p.code, term(&p.message)),
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
