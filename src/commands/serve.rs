//! `gco serve`: the HTTP service over the store (crate gco-serve), and its API keys.

use std::num::NonZeroU32;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::http::HeaderValue;
use serde_json::json;

use crate::cli::{Global, ServeArgs, ServeCommand, ServeKeyCommand};

pub async fn run(a: ServeArgs, g: &Global) -> Result<u8> {
    let (config, store) = crate::config::load_with_store(g)?;
    if let Some(ServeCommand::Key(cmd)) = a.command {
        return key(cmd, &store, g).await;
    }
    let did_document = match &a.did_document {
        Some(p) => {
            let bytes = std::fs::read(p)
                .with_context(|| format!("reading the DID document {}", p.display()))?;
            serde_json::from_slice::<serde_json::Value>(&bytes).with_context(|| {
                format!("--did-document {}: not a JSON DID document", p.display())
            })?;
            Some(bytes::Bytes::from(bytes))
        }
        None => None,
    };
    let issuer = match &a.issuer_dir {
        Some(dir) => Some(std::sync::Arc::new(
            gco_credentials::issuer::Issuer::load(dir)
                .and_then(|i| i.signer(gco_credentials::issuer::Purpose::Vc))
                .with_context(|| format!("--issuer-dir {}", dir.display()))?,
        )),
        None => None,
    };
    let s = &config.serve;
    let nonzero = |v: u32| NonZeroU32::new(v).context("validated non-zero");
    let options = gco_serve::Options {
        did_document,
        issuer,
        access: gco_serve::access::AccessOptions {
            public_read: s.public_read || a.public_read,
            read_only: s.read_only || a.read_only,
            rate_limit: nonzero(s.rate_limit)?,
            rate_burst: nonzero(s.rate_burst)?,
            key_refresh: Duration::from_secs(u64::from(s.key_refresh_seconds)),
        },
        cors_origins: s
            .cors_origins
            .iter()
            .map(|o| HeaderValue::from_str(o).context("[serve] cors_origins: validated origin"))
            .collect::<Result<_>>()?,
        max_body_bytes: usize::try_from(s.max_body_bytes)
            .context("[serve] max_body_bytes does not fit this machine's memory")?,
    };
    let tls = match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(gco_serve::tls::load(cert, key)?),
        _ => None,
    };
    let listener = std::net::TcpListener::bind(&a.listen)
        .with_context(|| format!("--listen {}: cannot bind the address", a.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
    let router = gco_serve::router(store.clone(), options).await?;
    if g.json {
        println!("{}", json!({"listening": url, "store": store.url()}));
    } else {
        eprintln!("gco serve: {} on {url}", store.url());
    }
    gco_serve::serve(listener, tls, router, gco_serve::shutdown_signal())
        .await
        .context("serving HTTP")?;
    Ok(0)
}

async fn key(cmd: ServeKeyCommand, store: &gco_ledger::Store, g: &Global) -> Result<u8> {
    use gco_serve::keys;
    let now = || -> Result<String> {
        Ok(gco_ledger::time::format_utc(super::time_or_now(
            None, "now",
        )?))
    };
    match cmd {
        ServeKeyCommand::Create { scope, name } => {
            let scope: keys::Scope = scope.parse().map_err(anyhow::Error::msg)?;
            let created = keys::create(store, scope, &name, &now()?).await?;
            if g.json {
                println!(
                    "{}",
                    json!({"key": created.token, "id": created.info.id, "scope": scope.as_str(), "name": name, "created": created.info.created})
                );
            } else {
                eprintln!(
                    "created API key {} (scope {}); it is shown once, only its hash is stored:",
                    created.info.id,
                    scope.as_str()
                );
                println!("{}", created.token);
            }
        }
        ServeKeyCommand::List => {
            let list = keys::list(store).await?;
            if g.json {
                println!("{}", serde_json::to_string(&json!({"keys": list}))?);
            } else {
                println!(
                    "{:<16}  {:<6}  {:<20}  {:<20}  name",
                    "id", "scope", "created", "revoked"
                );
                for k in list {
                    println!(
                        "{:<16}  {:<6}  {:<20}  {:<20}  {}",
                        k.id,
                        k.scope.as_str(),
                        k.created,
                        k.revoked.as_deref().unwrap_or("-"),
                        k.name
                    );
                }
            }
        }
        ServeKeyCommand::Revoke { id } => {
            let k = keys::revoke(store, &id, &now()?).await?;
            if g.json {
                println!("{}", serde_json::to_string(&k)?);
            } else {
                eprintln!(
                    "revoked API key {} (scope {}) at {}",
                    k.id,
                    k.scope.as_str(),
                    k.revoked.as_deref().unwrap_or("-")
                );
            }
        }
    }
    Ok(0)
}
