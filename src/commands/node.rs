//! `gco node`: the node registry.

use anyhow::{Context, Result};
use gco_ledger::PublicKey;
use gco_ledger::registry::{self, Registration, Registry};
use gco_ledger::time::format_utc;
use serde_json::json;

use super::{open_store, time_or_now};
use crate::cli::{Global, NodeCommand};
use crate::output::print_json;

pub async fn run(cmd: NodeCommand, g: &Global) -> Result<u8> {
    let store = open_store(g)?;
    match cmd {
        NodeCommand::Register {
            node,
            public_key,
            zone,
            site,
            valid_from,
            valid_to,
            now,
        } => {
            let now = time_or_now(now.as_deref(), "now")?;
            // The zone must be one the grid data knows, so the pipeline can resolve it.
            let zone = gco_grid_data::ZoneCatalog::bundled()?
                .resolve(&zone)
                .map_err(|e| anyhow::anyhow!("--zone: {e} (see `gco grid zones`)"))?
                .id
                .clone();
            let pem = std::fs::read_to_string(&public_key)
                .with_context(|| format!("reading {}", public_key.display()))?;
            let pk =
                PublicKey::from_pem(&pem).with_context(|| format!("{}", public_key.display()))?;
            let reg = Registration {
                node_id: node,
                public_key: pk,
                zone,
                site,
                valid_from: match valid_from {
                    Some(v) => time_or_now(Some(&v), "valid-from")?,
                    None => now,
                },
                valid_to: valid_to
                    .map(|v| time_or_now(Some(&v), "valid-to"))
                    .transpose()?,
            };
            let (path, outcome) = registry::register(&store, &reg, now).await?;
            if g.json {
                print_json(
                    &json!({"event": path, "outcome": format!("{outcome:?}"), "key_id": reg.public_key.key_id()}),
                )?;
            } else {
                eprintln!(
                    "registered key {} for node {} ({outcome:?}) at {}/{path}",
                    reg.public_key.key_id(),
                    reg.node_id,
                    store.url()
                );
            }
            Ok(0)
        }
        NodeCommand::Revoke {
            node,
            key_id,
            effective_at,
            reason,
            now,
        } => {
            let now = time_or_now(now.as_deref(), "now")?;
            let effective = match effective_at {
                Some(v) => time_or_now(Some(&v), "effective-at")?,
                None => now,
            };
            let (path, outcome) =
                registry::revoke(&store, &node, &key_id, effective, &reason, now).await?;
            if g.json {
                print_json(&json!({"event": path, "outcome": format!("{outcome:?}")}))?;
            } else {
                eprintln!(
                    "revoked key {key_id} of node {node} from {} ({outcome:?})",
                    format_utc(effective)
                );
            }
            Ok(0)
        }
        NodeCommand::Init {
            tpm: _,
            tpm_tcti,
            tpm_label,
            out,
        } => {
            let signer = super::collect::tpm_signer(&tpm_tcti, &tpm_label)?;
            let pk = signer.public_key();
            std::fs::write(&out, pk.to_pem())
                .with_context(|| format!("writing {}", out.display()))?;
            if g.json {
                print_json(
                    &json!({"key_id": pk.key_id(), "algorithm": pk.algorithm().as_str(), "public_key": out}),
                )?;
            } else {
                eprintln!(
                    "TPM node key {:?}: {} {}, public key written to {}
next: gco node register --node NODE --public-key {} --zone ZONE --site SITE",
                    tpm_label,
                    pk.algorithm().as_str(),
                    pk.key_id(),
                    out.display(),
                    out.display()
                );
            }
            Ok(0)
        }
        NodeCommand::List => {
            let reg = Registry::load(&store).await?;
            let rows: Vec<_> = reg
                .keys()
                .iter()
                .map(|k| {
                    json!({
                        "node_id": k.node_id,
                        "key_id": k.public_key.key_id(),
                        "algorithm": k.public_key.algorithm(),
                        "zone": k.zone,
                        "site": k.site,
                        "valid_from": format_utc(k.valid_from),
                        "valid_to": k.valid_to.map(format_utc),
                        "revoked_at": k.revoked_at.map(format_utc),
                    })
                })
                .collect();
            if g.json {
                print_json(&json!({"keys": rows, "invalid_events": reg.invalid}))?;
            } else {
                println!(
                    "{:<20} {:<32} {:<6} {:<10} {:<16} {:<28} revoked",
                    "node", "key_id", "alg", "zone", "site", "valid"
                );
                for k in reg.keys() {
                    println!(
                        "{:<20} {:<32} {:<6} {:<10} {:<16} {:<28} {}",
                        k.node_id,
                        k.public_key.key_id(),
                        k.public_key.algorithm().as_str(),
                        k.zone,
                        k.site,
                        format!(
                            "{} ..{}",
                            &format_utc(k.valid_from)[..10],
                            k.valid_to
                                .map(|t| format_utc(t)[..10].to_string())
                                .unwrap_or_default()
                        ),
                        k.revoked_at.map(format_utc).unwrap_or_else(|| "-".into())
                    );
                }
                for (path, why) in &reg.invalid {
                    eprintln!("warning: unusable registry event {path}: {why}");
                }
            }
            Ok(0)
        }
    }
}
