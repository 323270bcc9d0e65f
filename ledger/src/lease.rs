//! Exclusive leases kept in the store itself, so that two copies of a writing command
//! (on one machine or on many) never interleave their writes.
//!
//! A lease on a *scope* (`ledger/node=n1`, `runs/period=2026-10`, ...) is a sequence of
//! create-only objects under `locks/<scope>/`:
//!
//! - `<gen>.json`: generation `gen` (20 digits) taken by its owner, with an expiry;
//! - `<gen>.renew-<k>.json`: the holder's `k`-th renewal, a later expiry;
//! - `<gen>.released`: the holder let go.
//!
//! The highest generation decides. It is free when released or when its latest expiry
//! has passed; taking it means creating `<gen + 1>.json`, and create-only writes
//! (`PutMode::Create`, on every backend) let exactly one of two racing takers win. The
//! generation is the fencing token: before its commit point a holder calls
//! [`Lease::check`], which fails when a later generation exists or its own expiry is
//! near, so a holder that stalled past its expiry (and was taken over) never commits.
//! The protocol and its assumptions (bounded clock skew below the safety margin) are in
//! docs/ledger-format.md, "Writers".

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{LedgerError, Result};
use crate::store::{PutOutcome, Store};
use crate::time::{Micros, format_utc};

/// Top-level folder of the lease objects.
use crate::layout::LOCKS as LOCKS_PREFIX;

/// How long a lease lasts without renewal, how long to wait for a busy one.
#[derive(Debug, Clone)]
pub struct LeaseOptions {
    /// Lifetime of each grant or renewal; the holder renews every third of it.
    pub ttl: Duration,
    /// How long [`Lease::acquire`] waits for a busy scope before giving up.
    pub wait: Duration,
    /// Who holds it, for the message another writer sees (command, pid, host).
    pub owner: String,
}

impl LeaseOptions {
    /// 60 s leases, waiting up to `wait` (a killed holder's lease is free after 60 s).
    pub fn new(owner: impl Into<String>, wait: Duration) -> Self {
        LeaseOptions {
            ttl: Duration::from_secs(60),
            wait,
            owner: owner.into(),
        }
    }

    /// An owner string naming this process: `what` (the command), pid and host.
    pub fn owner_of_this_process(what: &str) -> String {
        let host = std::env::var("HOSTNAME")
            .ok()
            .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".into());
        format!("{what} (pid {} on {host})", std::process::id())
    }
}

/// The body of a grant or renewal object.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Grant {
    format: String,
    scope: String,
    generation: u64,
    owner: String,
    /// RFC 3339, for people reading the store.
    written: String,
    expires: String,
    expires_us: Micros,
}

const GRANT_FORMAT: &str = "gco-lease/1";

/// What the highest generation of a scope says.
#[derive(Debug)]
enum State {
    Free { next: u64 },
    Held { owner: String, expires_us: Micros },
}

/// The wall clock. A lease is about time between processes, not accounting: no figure
/// depends on it.
#[allow(clippy::disallowed_methods)]
fn now_us() -> Micros {
    chrono::Utc::now().timestamp_micros()
}

fn ttl_us(ttl: Duration) -> Micros {
    i64::try_from(ttl.as_micros()).unwrap_or(i64::MAX)
}

/// A scope is one or more `/`-separated segments of `A-Z a-z 0-9 . _ - =`.
fn validate_scope(scope: &str) -> Result<()> {
    let ok = !scope.is_empty()
        && scope.split('/').all(|seg| {
            !seg.is_empty()
                && !seg.starts_with('.')
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-=".contains(&b))
        });
    if ok {
        Ok(())
    } else {
        Err(LedgerError::Input(format!("invalid lease scope {scope:?}")))
    }
}

/// A held lease. Renewed in the background while held; [`Lease::release`] lets go.
/// Dropped without release (a crash, an error path), it simply expires.
#[derive(Debug)]
pub struct Lease {
    store: Store,
    scope: String,
    generation: u64,
    ttl: Duration,
    expires_us: Arc<AtomicI64>,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
    }
}

fn dir(scope: &str) -> String {
    format!("{LOCKS_PREFIX}/{scope}")
}

async fn state(store: &Store, scope: &str) -> Result<State> {
    let prefix = dir(scope);
    let mut top: Option<u64> = None;
    let mut names = Vec::new();
    for m in store.list(&prefix).await? {
        let p = m.location.to_string();
        let Some(name) = p.strip_prefix(&prefix).and_then(|n| n.strip_prefix('/')) else {
            continue;
        };
        let Some(g) = name.get(..20).and_then(|g| g.parse::<u64>().ok()) else {
            continue;
        };
        top = Some(top.map_or(g, |t| t.max(g)));
        names.push((g, name.to_string()));
    }
    let Some(g) = top else {
        return Ok(State::Free { next: 1 });
    };
    let next = g
        .checked_add(1)
        .ok_or_else(|| LedgerError::Input(format!("lease {scope}: generation overflow")))?;
    let mine: Vec<&str> = names
        .iter()
        .filter(|(n, _)| *n == g)
        .map(|(_, s)| s.as_str())
        .collect();
    if mine.iter().any(|s| s.ends_with(".released")) {
        return Ok(State::Free { next });
    }
    // The latest renewal (names sort by k), else the grant itself.
    let latest = mine
        .iter()
        .filter(|s| s.contains(".renew-"))
        .max()
        .or_else(|| mine.iter().find(|s| s.len() == 25 && s.ends_with(".json")));
    let Some(latest) = latest else {
        // Only unknown objects of this generation: treat as expired.
        return Ok(State::Free { next });
    };
    let path = format!("{prefix}/{latest}");
    let grant: Grant =
        serde_json::from_slice(&store.get(&path).await?).map_err(|source| LedgerError::Json {
            what: path.clone(),
            source,
        })?;
    if now_us() >= grant.expires_us {
        Ok(State::Free { next })
    } else {
        Ok(State::Held {
            owner: grant.owner,
            expires_us: grant.expires_us,
        })
    }
}

fn grant_bytes(scope: &str, generation: u64, owner: &str, expires_us: Micros) -> Result<Bytes> {
    let g = Grant {
        format: GRANT_FORMAT.into(),
        scope: scope.into(),
        generation,
        owner: owner.into(),
        written: format_utc(now_us()),
        expires: format_utc(expires_us),
        expires_us,
    };
    serde_json::to_vec_pretty(&g)
        .map(Bytes::from)
        .map_err(|source| LedgerError::Json {
            what: format!("lease {scope}"),
            source,
        })
}

impl Lease {
    /// Takes the lease on `scope`, waiting up to `opts.wait` while another holds it.
    /// Must run inside a Tokio runtime (the renewals are a task on it).
    pub async fn acquire(store: &Store, scope: &str, opts: &LeaseOptions) -> Result<Lease> {
        validate_scope(scope)?;
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(50);
        loop {
            let (holder, until) = match state(store, scope).await? {
                State::Free { next } => {
                    let expires = now_us().saturating_add(ttl_us(opts.ttl));
                    let path = format!("{}/{next:020}.json", dir(scope));
                    match store
                        .put_create(&path, grant_bytes(scope, next, &opts.owner, expires)?)
                        .await
                    {
                        Ok(PutOutcome::Created) => {
                            tracing::debug!(scope, generation = next, "lease taken");
                            return Ok(Lease::start(store, scope, next, opts, expires));
                        }
                        // Another writer took this generation first.
                        Ok(PutOutcome::AlreadyPresent) | Err(LedgerError::Conflict { .. }) => {
                            continue;
                        }
                        Err(e) => return Err(e),
                    }
                }
                State::Held { owner, expires_us } => (owner, expires_us),
            };
            let waited = started.elapsed();
            if waited >= opts.wait {
                return Err(LedgerError::Busy {
                    scope: scope.to_string(),
                    owner: holder,
                    until: format_utc(until),
                    waited_s: waited.as_secs(),
                });
            }
            tokio::time::sleep(pause.min(opts.wait - waited)).await;
            pause = (pause * 2).min(Duration::from_secs(2));
        }
    }

    fn start(
        store: &Store,
        scope: &str,
        generation: u64,
        opts: &LeaseOptions,
        expires: Micros,
    ) -> Lease {
        let expires_us = Arc::new(AtomicI64::new(expires));
        let renewer = {
            let (store, scope, owner) = (store.clone(), scope.to_string(), opts.owner.clone());
            let (ttl, expires_us) = (opts.ttl, expires_us.clone());
            tokio::spawn(async move {
                let mut k: u64 = 0;
                loop {
                    tokio::time::sleep(ttl / 3).await;
                    k += 1;
                    let until = now_us().saturating_add(ttl_us(ttl));
                    let path = format!("{}/{generation:020}.renew-{k:06}.json", dir(&scope));
                    let ok = match grant_bytes(&scope, generation, &owner, until) {
                        Ok(b) => store.put_create(&path, b).await.is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        expires_us.store(until, Ordering::SeqCst);
                    } else {
                        // Tried again at the next tick; meanwhile the lease runs out at
                        // its last expiry, and `check` says so.
                        tracing::warn!(scope, generation, renewal = k, "lease renewal failed");
                    }
                }
            })
        };
        Lease {
            store: store.clone(),
            scope: scope.to_string(),
            generation,
            ttl: opts.ttl,
            expires_us,
            renewer: Some(renewer),
        }
    }

    /// The fencing token: this lease's generation.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// Fails unless this lease is still the scope's latest generation and at least a
    /// tenth of its lifetime is left (the margin for clock skew between writers). Call
    /// it right before a commit point.
    pub async fn check(&self) -> Result<()> {
        let margin = ttl_us(self.ttl) / 10;
        let expires = self.expires_us.load(Ordering::SeqCst);
        let lost = |why: String| LedgerError::LeaseLost {
            scope: self.scope.clone(),
            generation: self.generation,
            why,
        };
        if now_us().saturating_add(margin) >= expires {
            return Err(lost(format!("it expires at {}", format_utc(expires))));
        }
        let prefix = dir(&self.scope);
        for m in self.store.list(&prefix).await? {
            let p = m.location.to_string();
            let g = p
                .strip_prefix(&prefix)
                .and_then(|n| n.strip_prefix('/'))
                .and_then(|n| n.get(..20))
                .and_then(|g| g.parse::<u64>().ok());
            if g.is_some_and(|g| g > self.generation) {
                return Err(lost(format!("a later writer took it ({p})")));
            }
        }
        Ok(())
    }

    /// Lets go: the next writer need not wait for the expiry.
    pub async fn release(mut self) -> Result<()> {
        if let Some(r) = self.renewer.take() {
            r.abort();
        }
        let path = format!("{}/{:020}.released", dir(&self.scope), self.generation);
        self.store
            .put_create(&path, Bytes::from_static(b"released\n"))
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(ttl_ms: u64, wait_ms: u64, owner: &str) -> LeaseOptions {
        LeaseOptions {
            ttl: Duration::from_millis(ttl_ms),
            wait: Duration::from_millis(wait_ms),
            owner: owner.into(),
        }
    }

    #[tokio::test]
    async fn one_holder_at_a_time_and_release_frees_it() {
        let s = Store::memory();
        let a = Lease::acquire(&s, "runs/period=2026-10", &opts(60_000, 0, "a"))
            .await
            .unwrap();
        assert_eq!(a.generation(), 1);
        match Lease::acquire(&s, "runs/period=2026-10", &opts(60_000, 120, "b")).await {
            Err(LedgerError::Busy { scope, owner, .. }) => {
                assert_eq!(scope, "runs/period=2026-10");
                assert_eq!(owner, "a");
            }
            other => panic!("expected Busy, got {other:?}"),
        }
        // Another scope is independent.
        let other = Lease::acquire(&s, "runs/period=2026-11", &opts(60_000, 0, "c"))
            .await
            .unwrap();
        assert_eq!(other.generation(), 1);
        a.check().await.unwrap();
        a.release().await.unwrap();
        let b = Lease::acquire(&s, "runs/period=2026-10", &opts(60_000, 0, "b"))
            .await
            .unwrap();
        assert_eq!(b.generation(), 2);
        let names: Vec<String> = s
            .list("locks/runs/period=2026-10")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.location.to_string())
            .collect();
        assert_eq!(
            names,
            [
                "locks/runs/period=2026-10/00000000000000000001.json",
                "locks/runs/period=2026-10/00000000000000000001.released",
                "locks/runs/period=2026-10/00000000000000000002.json",
            ]
        );
    }

    #[tokio::test]
    async fn a_waiting_writer_gets_the_lease_when_the_holder_releases() {
        let s = Store::memory();
        let a = Lease::acquire(&s, "ledger/node=n1", &opts(60_000, 0, "a"))
            .await
            .unwrap();
        let s2 = s.clone();
        let waiter = tokio::spawn(async move {
            Lease::acquire(&s2, "ledger/node=n1", &opts(60_000, 10_000, "b")).await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiter.is_finished());
        a.release().await.unwrap();
        let b = waiter.await.unwrap().unwrap();
        assert_eq!(b.generation(), 2);
    }

    #[tokio::test]
    async fn renewals_keep_it_and_an_abandoned_lease_expires_and_is_fenced() {
        let s = Store::memory();
        let a = Lease::acquire(&s, "ledger/node=n1", &opts(300, 0, "a"))
            .await
            .unwrap();
        // Three lifetimes later it is still held: renewed every 100 ms.
        tokio::time::sleep(Duration::from_millis(900)).await;
        a.check().await.unwrap();
        assert!(matches!(
            Lease::acquire(&s, "ledger/node=n1", &opts(300, 0, "b")).await,
            Err(LedgerError::Busy { .. })
        ));
        // A holder that stalls: its renewals stop (as when the process is stopped).
        let mut stalled = a;
        stalled.renewer.take().unwrap().abort();
        tokio::time::sleep(Duration::from_millis(400)).await;
        let b = Lease::acquire(&s, "ledger/node=n1", &opts(300, 0, "b"))
            .await
            .unwrap();
        assert_eq!(b.generation(), 2);
        // The stalled holder must not commit: expired, and a later generation exists.
        match stalled.check().await {
            Err(LedgerError::LeaseLost { generation, .. }) => assert_eq!(generation, 1),
            other => panic!("expected LeaseLost, got {other:?}"),
        }
        stalled.expires_us.store(i64::MAX, Ordering::SeqCst);
        match stalled.check().await {
            Err(LedgerError::LeaseLost { why, .. }) => assert!(why.contains("later writer")),
            other => panic!("expected LeaseLost, got {other:?}"),
        }
        b.check().await.unwrap();
    }

    #[tokio::test]
    async fn racing_takers_get_distinct_generations() {
        let s = Store::memory();
        let mut tasks = Vec::new();
        for i in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let l = Lease::acquire(&s, "x", &opts(60_000, 20_000, &format!("w{i}")))
                    .await
                    .unwrap();
                let g = l.generation();
                l.check().await.unwrap();
                l.release().await.unwrap();
                g
            }));
        }
        let mut gens = Vec::new();
        for t in tasks {
            gens.push(t.await.unwrap());
        }
        gens.sort();
        assert_eq!(gens, (1..=8).collect::<Vec<u64>>());
    }

    #[test]
    fn scopes_are_path_safe() {
        assert!(validate_scope("runs/period=2026-10").is_ok());
        assert!(validate_scope("ledger/node=gpu-01.eu").is_ok());
        for bad in ["", "a//b", "../x", "a/.b", "a b", "a?b"] {
            assert!(validate_scope(bad).is_err(), "{bad}");
        }
    }
}
