//! One module per command family; each turns parsed arguments into library calls.

mod collect;
mod grid;
mod keys;
mod ledger;
mod node;
pub mod report;
mod run;
mod serve;
mod vc;

pub use ledger::print_verify;
pub use run::{CODE_VERSION, describe as describe_run};

use anyhow::{Context, Result};

use crate::cli::{Cli, Command};

/// Runs the parsed command line; returns the exit code (0 or 1). Errors exit with 2.
pub async fn run(cli: Cli) -> Result<u8> {
    let g = cli.global;
    match cli.command {
        Command::Keys(cmd) => keys::run(cmd, &g),
        Command::Node(cmd) => node::run(cmd, &g).await,
        Command::Ledger(cmd) => ledger::run(cmd, &g).await,
        Command::Grid(cmd) => grid::run(cmd, &g).await,
        Command::Collect(args) => collect::run(*args, &g).await,
        Command::Run(args) => run::run(args, &g).await,
        Command::Backfill(args) => run::backfill(args, &g).await,
        Command::Issuer(cmd) => vc::issuer(cmd, &g),
        Command::Vc(cmd) => vc::vc(cmd, &g).await,
        Command::Certificate(cmd) => vc::certificate(cmd, &g).await,
        Command::Report(cmd) => report::report(cmd, &g).await,
        Command::Audit(cmd) => report::audit(cmd, &g).await,
        Command::Demo(args) => crate::demo::run(args, &g).await,
        Command::Serve(args) => serve::run(args, &g).await,
    }
}

/// Loads the configuration and opens the store.
pub fn open_store(g: &crate::cli::Global) -> Result<gco_ledger::Store> {
    Ok(crate::config::load_with_store(g)?.1)
}

/// Fails unless `signer`'s key is registered for `node` in the store's registry
/// (`key` says where the key came from): batches it sealed would never verify.
pub async fn ensure_registered(
    store: &gco_ledger::Store,
    node: &str,
    signer: &dyn gco_ledger::Signer,
    key: &str,
) -> Result<()> {
    let registry = gco_ledger::Registry::load(store).await?;
    if !registry
        .keys()
        .iter()
        .any(|k| k.node_id == node && k.public_key.key_id() == signer.key_id())
    {
        anyhow::bail!(
            "key {} ({key}) is not registered for node {node} in {}; run `gco node register --node {node} --public-key <its .pub> ...` first",
            signer.key_id(),
            store.url()
        );
    }
    Ok(())
}

/// The lease options of a writing command (`what` names it to other writers).
pub fn lease_options(g: &crate::cli::Global, what: &str) -> gco_ledger::LeaseOptions {
    gco_ledger::LeaseOptions::new(
        gco_ledger::LeaseOptions::owner_of_this_process(what),
        g.lock_wait,
    )
}

/// Parses a time argument, or reads the clock once when absent (the one place the
/// wall clock is read).
#[allow(clippy::disallowed_methods)]
pub fn time_or_now(arg: Option<&str>, what: &str) -> Result<i64> {
    match arg {
        Some(t) => gco_ledger::time::parse_utc(t)
            .map_err(anyhow::Error::msg)
            .with_context(|| format!("--{what}")),
        None => Ok(chrono::Utc::now().timestamp_micros()),
    }
}

/// Parses a `YYYY-MM-DD` partition date argument.
pub fn date_arg(arg: Option<&str>, what: &str) -> Result<Option<chrono::NaiveDate>> {
    arg.map(|d| {
        chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d")
            .with_context(|| format!("--{what} {d:?} is not a date YYYY-MM-DD"))
    })
    .transpose()
}
