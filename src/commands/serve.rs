//! `gco serve`: the HTTP service over the store (crate gco-serve).

use anyhow::{Context, Result};
use serde_json::json;

use crate::cli::{Global, ServeArgs};

pub async fn run(a: ServeArgs, g: &Global) -> Result<u8> {
    let store = super::open_store(g)?;
    let did_document = match &a.did_document {
        Some(p) => {
            Some(bytes::Bytes::from(std::fs::read(p).with_context(|| {
                format!("reading the DID document {}", p.display())
            })?))
        }
        None => None,
    };
    let listener = tokio::net::TcpListener::bind(&a.listen)
        .await
        .with_context(|| format!("--listen {}: cannot bind the address", a.listen))?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let url = format!("http://{addr}");
    if g.json {
        println!("{}", json!({"listening": url, "store": store.url()}));
    } else {
        eprintln!("gco serve: {} on {url}", store.url());
    }
    let router = gco_serve::router(store, gco_serve::Options { did_document });
    gco_serve::serve(listener, router, gco_serve::shutdown_signal())
        .await
        .context("serving HTTP")?;
    Ok(0)
}
