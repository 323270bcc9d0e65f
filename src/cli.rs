//! The command line, as clap derive types. Names here are a stable contract
//! (docs, scripts and schedulers rely on them).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser, Debug)]
#[command(
    name = "gco",
    version,
    about = "Verifiable carbon accounting for AI inference",
    long_about = "gco measures the GPU energy of each inference, seals it into signed, hash-chained \
Parquet batches on object storage (the ledger), and turns it into auditable emissions figures.\n\n\
Start with `gco demo`, which runs the whole chain on a simulated fleet."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug, Clone)]
pub struct Global {
    /// Ledger store URL: file://DIR (or a path), memory://, s3://BUCKET[/PREFIX], gs://..., az://...
    /// [default: `store` in gco.toml, else file://./gco-data]
    #[arg(long, global = true, env = "GCO_STORE")]
    pub store: Option<String>,
    /// Configuration file [default: ./gco.toml when present]
    #[arg(long, global = true, env = "GCO_CONFIG")]
    pub config: Option<PathBuf>,
    /// Machine-readable JSON on stdout (diagnostics stay on stderr)
    #[arg(long, global = true)]
    pub json: bool,
    /// More log output on stderr (-v info, -vv debug)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How long a writing command waits while another gco holds the store's lease on
    /// what it writes (a node's chain, a period's versions) before giving up
    #[arg(long = "lock-wait", global = true, value_parser = parse_duration, default_value = "2m", env = "GCO_LOCK_WAIT")]
    pub lock_wait: std::time::Duration,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Generate and inspect node signing keys
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Register and revoke nodes and their keys in the ledger's registry
    #[command(subcommand)]
    Node(NodeCommand),
    /// Verify, import and summarise the signed record ledger
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Grid carbon intensity: zones, cached series and the fallback cascade
    #[command(subcommand)]
    Grid(GridCommand),
    /// Run the node agent: measure GPU energy, attribute it to inferences, seal and upload
    Collect(Box<CollectArgs>),
    /// Compute a month's emissions from the ledger (verify, join with grid intensity,
    /// location/market/marginal/embodied/SCI, aggregates, run manifest)
    Run(RunArgs),
    /// Run every month of a range, oldest first; resumable, skips months already done
    Backfill(BackfillArgs),
    /// Issuer identity for verifiable credentials: keys, did:web / did:key, rotation
    #[command(subcommand)]
    Issuer(IssuerCommand),
    /// Issue, verify and revoke W3C Verifiable Credentials for a run's emissions
    #[command(subcommand)]
    Vc(VcCommand),
    /// Look up stored credentials
    #[command(subcommand)]
    Certificate(CertificateCommand),
    /// Render compliance reports (CSRD / ESRS E1, EU AI Act) to PDF/A-3b and CSV
    #[command(subcommand)]
    Report(ReportCommand),
    /// Write and verify auditor packages (reports, manifests, credentials, keys, signed)
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Run the whole chain on a simulated GPU fleet in a local directory
    Demo(DemoArgs),
    /// Serve the store over HTTP: certificates by inference id, run manifests, the
    /// issuer's DID document (docs/serve.md)
    Serve(ServeArgs),
}

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServeArgs {
    #[command(subcommand)]
    pub command: Option<ServeCommand>,
    /// Address to listen on (port 0: any free port; the address bound is printed)
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The issuer's DID document (did.json) to host at /.well-known/did.json
    #[arg(long)]
    pub did_document: Option<PathBuf>,
    /// Issuer directory (`gco issuer init`): its active key signs what
    /// POST /credentials/issue submits (scope admin); without it that route answers 404
    #[arg(long, env = "GCO_ISSUER_DIR")]
    pub issuer_dir: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key the server speaks HTTPS only
    /// (TLS 1.3 preferred, 1.2 the minimum)
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1)
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The read API answers without an API key (as `[serve] public_read = true`)
    #[arg(long)]
    pub public_read: bool,
    /// Refuse every write (the ingestion gateway answers 403), as `[serve] read_only`
    #[arg(long)]
    pub read_only: bool,
}

#[derive(Subcommand, Debug)]
pub enum ServeCommand {
    /// API keys of the server, kept in the store as hashes (docs/serve.md, "Access")
    #[command(subcommand)]
    Key(ServeKeyCommand),
}

#[derive(Subcommand, Debug)]
pub enum ServeKeyCommand {
    /// Create a key and print it once: only its hash is stored
    Create {
        /// What the key may do: read (the read API), ingest (post batches), admin (all)
        #[arg(long)]
        scope: String,
        /// Who holds it, for the listing (e.g. the node or the client)
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List the keys: id, scope, name, creation and revocation (never secrets)
    List,
    /// Revoke a key by id; servers stop accepting it within [serve] key_refresh_seconds
    Revoke {
        /// The key's id (the 16 hex digits after `gco_`)
        id: String,
    },
}

#[derive(Args, Debug, Clone)]
pub struct ReportPeriod {
    /// Reporting period: a year (2026: its twelve months) or a month (2026-10)
    #[arg(long)]
    pub period: String,
    /// Only these months (comma separated, YYYY-MM), e.g. a fiscal year across two years
    #[arg(long, value_delimiter = ',')]
    pub months: Vec<String>,
    /// Template directory (common.typ, csrd/report.typ, eu-ai-act/report.typ) instead
    /// of the built-in templates
    #[arg(long)]
    pub templates: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// The AI-inference contribution to ESRS E1: E1-5 energy, E1-6 Scope 2 (location
    /// and market) and Scope 3 Cat. 1, methodology, factors, data quality, breakdowns
    Csrd {
        #[command(flatten)]
        period: ReportPeriod,
        /// Output directory: writes DIR/csrd-PERIOD/report.pdf and its CSVs
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    },
    /// EU AI Act energy documentation of one model (Annex XI 1.2(e), Annex IV, GPAI
    /// Code of Practice energy fields), per-request and per-token figures
    AiAct {
        /// Model id as recorded by the collector
        #[arg(long)]
        model: String,
        #[command(flatten)]
        period: ReportPeriod,
        /// Output directory: writes DIR/ai-act-MODEL-PERIOD/report.pdf and its CSV
        #[arg(long, default_value = "reports")]
        out: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum AuditCommand {
    /// Write the auditor package of a period: reports, CSVs, run manifests, credentials,
    /// grid objects, node keys, the issuer's DID document, a README and a signed manifest
    Package {
        #[command(flatten)]
        period: ReportPeriod,
        /// Package directory (must be new or empty) or FILE.zip
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        issuer: IssuerDir,
    },
    /// Check a package offline: the manifest's signature, then every file's SHA-256;
    /// names each changed, missing or extra file (exit 1 when any)
    Verify {
        /// Package directory or .zip
        package: PathBuf,
        /// The issuer's published DID document (did.json) to check the signature with;
        /// without it, the package's own issuer/did.json is used
        #[arg(long = "did-document")]
        did_document: Option<PathBuf>,
    },
}

#[derive(Args, Debug, Clone)]
pub struct IssuerDir {
    /// Issuer directory: issuer.json and keys/ (private keys, mode 0600)
    #[arg(
        long = "issuer-dir",
        env = "GCO_ISSUER_DIR",
        default_value = "gco-issuer"
    )]
    pub dir: PathBuf,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum IssuerAlgorithm {
    /// Ed25519: EdDSA VC-JOSE and eddsa-jcs-2022 Data Integrity proofs
    Ed25519,
    /// ECDSA P-256: ES256 VC-JOSE
    P256,
    /// RSA 3072: PS256 VC-JOSE
    Rsa,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum KeyPurposeArg {
    /// The key that signs credentials and status lists
    Vc,
    /// The RSA key of the legacy RS256 certificate JWS
    Legacy,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum DidMethod {
    /// did:web document to host at https://HOST/.well-known/did.json (or /PATH/did.json)
    Web,
    /// did:key of the current credential key (offline; cannot rotate)
    Key,
}

#[derive(Subcommand, Debug)]
pub enum IssuerCommand {
    /// Create the issuer's credential key (and with --legacy an RSA key for legacy JWS)
    Init {
        #[command(flatten)]
        dir: IssuerDir,
        /// Host (and path) for did:web, e.g. carbon.example.com or example.com/issuers/carbon;
        /// without it the issuer is the did:key of its key (offline, not rotatable)
        #[arg(long)]
        domain: Option<String>,
        #[arg(long, value_enum, default_value = "ed25519")]
        algorithm: IssuerAlgorithm,
        /// Also create the RSA key that signs legacy RS256 certificates
        #[arg(long)]
        legacy: bool,
        /// Creation time recorded for the key [default: the current time, read once]
        #[arg(long)]
        now: Option<String>,
    },
    /// Add a new key for new credentials; the old key stays in the DID document
    Rotate {
        #[command(flatten)]
        dir: IssuerDir,
        #[arg(long, value_enum, default_value = "vc")]
        purpose: KeyPurposeArg,
        /// Key type [default: ed25519 for vc, rsa for legacy]
        #[arg(long, value_enum)]
        algorithm: Option<IssuerAlgorithm>,
        #[arg(long)]
        now: Option<String>,
    },
    /// Print the DID document (JSON) to host or hand to verifiers
    Did {
        #[command(flatten)]
        dir: IssuerDir,
        #[arg(long, value_enum, default_value = "web")]
        method: DidMethod,
        /// Write it to this file instead of stdout
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the issuer's public keys as a JWK Set (for plain JOSE verifiers)
    Jwks {
        #[command(flatten)]
        dir: IssuerDir,
    },
}

#[derive(Subcommand, Debug)]
pub enum VcCommand {
    /// Issue the credentials of a run version (aggregates by default; per inference opt-in)
    Issue {
        #[command(flatten)]
        dir: IssuerDir,
        /// Reporting month, YYYY-MM
        #[arg(long)]
        period: String,
        /// Run version [default: the latest]
        #[arg(long)]
        version: Option<u32>,
        /// Granularities, comma-separated: inference, model_day, model_month, organisation_month
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "model_day,model_month,organisation_month"
        )]
        granularity: Vec<String>,
        /// Formats, comma-separated: vc-jwt, vc-di (Ed25519 issuers), legacy (per inference)
        #[arg(long, value_delimiter = ',', default_value = "vc-jwt")]
        format: Vec<String>,
        /// validFrom of the credentials [default: the run's as-of time]
        #[arg(long)]
        issued_at: Option<String>,
        /// RFC 3161 TSA URL: time-stamp the version's index.json (every credential
        /// file's SHA-256) and store the response as index.json.tsr
        #[arg(long, env = "GCO_TSA_URL")]
        tsa: Option<String>,
    },
    /// Verify a credential: signature, validity, issuer, schema, revocation and, with
    /// --ledger, its evidence down to the node's signed batch
    Verify {
        /// A file holding a vc+jwt / legacy token or a vc-di JSON document, a token, or - for stdin
        input: String,
        /// DID documents to resolve did:web issuers (e.g. from `gco issuer did`)
        #[arg(long)]
        did_document: Vec<PathBuf>,
        /// Resolve the issuer from this local issuer directory
        #[arg(long = "issuer-dir", env = "GCO_ISSUER_DIR")]
        issuer_dir: Option<PathBuf>,
        /// The status list credential (vc+jwt file), when not read from --ledger
        #[arg(long)]
        status_list: Option<PathBuf>,
        /// Store URL of the ledger and run outputs: checks the evidence chain and reads
        /// the status list
        #[arg(long)]
        ledger: Option<String>,
        /// Do not check revocation (reported as not checked)
        #[arg(long)]
        skip_status: bool,
        /// Verification time (RFC 3339) [default: now]
        #[arg(long)]
        at: Option<String>,
    },
    /// Revoke a credential: set its bit in the status list and re-sign the list
    Revoke {
        #[command(flatten)]
        dir: IssuerDir,
        /// Credential id (urn:gco:credential:...), or a file/token holding the credential
        credential: String,
        /// Reporting month of the credential, YYYY-MM
        #[arg(long)]
        period: String,
        /// Run version [default: the latest with credentials]
        #[arg(long)]
        version: Option<u32>,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        now: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CertificateCommand {
    /// Print the stored credential(s) of one inference
    Show {
        inference_id: String,
        /// Only this month [default: every month, newest first]
        #[arg(long)]
        period: Option<String>,
        /// Only this format: vc-jwt, vc-di or legacy
        #[arg(long)]
        format: Option<String>,
    },
}

fn parse_shard(s: &str) -> Result<(u32, u32), String> {
    let (i, n) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not i/N (e.g. 0/4)"))?;
    let (i, n): (u32, u32) = (
        i.parse()
            .map_err(|_| format!("{s:?}: {i:?} is not a number"))?,
        n.parse()
            .map_err(|_| format!("{s:?}: {n:?} is not a number"))?,
    );
    if n == 0 || i >= n {
        return Err(format!(
            "{s:?}: need 0 <= i < N (shards are numbered from 0)"
        ));
    }
    Ok((i, n))
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Reporting month, YYYY-MM (UTC)
    #[arg(long)]
    pub period: String,
    /// Read only inputs written by this time (RFC 3339); default: now. The same ledger,
    /// configuration and --as-of give byte-identical outputs
    #[arg(long)]
    pub as_of: Option<String>,
    /// Stage one disjoint part of the month (days with index % N == i); combine with --merge
    #[arg(long, value_parser = parse_shard, conflicts_with = "merge")]
    pub shard: Option<(u32, u32)>,
    /// Combine the staged shards into a new version
    #[arg(long)]
    pub merge: bool,
    /// Write a new version even when the latest one has exactly these inputs
    #[arg(long)]
    pub force: bool,
    /// Write a version even when the period has no ledger batch as of --as-of (else
    /// nothing is written and the exit code is 1: an empty or mistyped store, period
    /// or --as-of must not pass as a month of zero emissions)
    #[arg(long)]
    pub allow_empty: bool,
    /// Then issue the version's aggregate credentials (VC-JOSE) with the issuer of
    /// --issuer-dir (as `gco vc issue`)
    #[arg(long)]
    pub credentials: bool,
    #[arg(
        long = "issuer-dir",
        env = "GCO_ISSUER_DIR",
        default_value = "gco-issuer"
    )]
    pub issuer_dir: PathBuf,
    /// With --credentials: RFC 3161 TSA URL that time-stamps the credentials' index.json
    #[arg(long, env = "GCO_TSA_URL", requires = "credentials")]
    pub tsa: Option<String>,
}

#[derive(Args, Debug)]
pub struct BackfillArgs {
    /// First month, YYYY-MM
    #[arg(long)]
    pub from: String,
    /// Last month (inclusive), YYYY-MM
    #[arg(long)]
    pub to: String,
    /// Read only inputs written by this time (RFC 3339); default: now
    #[arg(long)]
    pub as_of: Option<String>,
    /// Rerun months whose latest version already has exactly these inputs
    #[arg(long)]
    pub force: bool,
    /// Write versions for months without any ledger batch (else they are skipped
    /// with a warning and the exit code is 1)
    #[arg(long)]
    pub allow_empty: bool,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{s:?}: {e} (e.g. 100ms, 5s, 2m, 1h)"))
}

/// A duration of at least one microsecond (a window or limit of 0 is refused, never
/// rounded up silently).
fn parse_positive_duration(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if d < std::time::Duration::from_micros(1) {
        return Err(format!("{s:?} must be at least 1us"));
    }
    Ok(d)
}

/// A count of at least 1.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("{s:?}: {e}")),
    }
}

fn parse_sample_interval(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if d < std::time::Duration::from_millis(1) || d > std::time::Duration::from_secs(60) {
        return Err(format!("{s:?} is outside 1ms..60s"));
    }
    Ok(d)
}

#[derive(Args, Debug)]
pub struct CollectArgs {
    /// Node id the records belong to (registered with `gco node register`)
    #[arg(long, env = "GCO_NODE")]
    pub node: String,
    /// The node's private key file (from `gco keys generate`)
    #[arg(
        long,
        env = "GCO_NODE_KEY",
        conflicts_with = "tpm",
        required_unless_present = "tpm"
    )]
    pub key: Option<PathBuf>,
    /// Sign with the node key held in the TPM (`gco node init --tpm`); needs a gco built
    /// with the `tpm` feature
    #[arg(long)]
    pub tpm: bool,
    /// TPM connection (TCTI), e.g. device:/dev/tpmrm0 or swtpm:host=127.0.0.1,port=2321
    #[arg(long, env = "GCO_TPM_TCTI", default_value = "device:/dev/tpmrm0")]
    pub tpm_tcti: String,
    /// Label of the TPM node key (one TPM can hold several)
    #[arg(long, default_value = "gco")]
    pub tpm_label: String,
    /// Local spool directory: the write-ahead log and batches waiting for upload
    #[arg(long, env = "GCO_SPOOL", default_value = "gco-spool")]
    pub spool: PathBuf,
    /// Measure N simulated H100s instead of real GPUs (deterministic from --seed)
    #[arg(long, value_name = "N")]
    pub simulate: Option<usize>,
    /// Seed of the simulated GPUs
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// GPUs to measure: indices or UUIDs, comma-separated [default: CUDA_VISIBLE_DEVICES, else all]
    #[arg(long)]
    pub gpus: Option<String>,
    /// How often the GPUs are read (1ms..60s; NVML's counter moves about every 100ms)
    #[arg(long, default_value = "100ms", value_parser = parse_sample_interval)]
    pub sample_interval: std::time::Duration,
    /// Seal a batch once this many records are pending (at least 1)
    #[arg(long, default_value_t = 50_000, value_parser = at_least_one)]
    pub seal_max_records: usize,
    /// ...or once the oldest pending record is this old
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub seal_max_age: std::time::Duration,
    /// One idle/overhead record per GPU per window of this length
    #[arg(long, default_value = "60s", value_parser = parse_positive_duration)]
    pub idle_window: std::time::Duration,
    /// Spans open longer than this are ended without token counts
    #[arg(long, default_value = "30m", value_parser = parse_positive_duration)]
    pub max_span: std::time::Duration,
    /// Spool size bound in bytes; above it inferences are folded into per-model overflow rows
    #[arg(long, default_value_t = 1 << 30)]
    pub spool_max_bytes: u64,
    /// Span API and /metrics address (keep it on loopback)
    #[arg(long, default_value = "127.0.0.1:7464")]
    pub span_listen: std::net::SocketAddr,
    /// Proxy listen address (with --upstream): OpenAI-compatible requests become spans
    #[arg(long, requires = "upstream")]
    pub listen: Option<std::net::SocketAddr>,
    /// Upstream inference server for the proxy, e.g. http://127.0.0.1:8000
    #[arg(long, requires = "listen")]
    pub upstream: Option<String>,
    /// fsync the spool log at least this often (a kill -9 loses nothing either way)
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub fsync_interval: std::time::Duration,
    /// Longest wait between upload retries while the store is unreachable
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub upload_backoff_max: std::time::Duration,
    /// On stop, how long to keep uploading the spool before leaving the rest for next start
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: std::time::Duration,
    /// Stop by itself after this long (tests, benchmarks) [default: until SIGINT/SIGTERM]
    #[arg(long, value_parser = parse_duration)]
    pub run_for: Option<std::time::Duration>,
    /// Deliver sealed batches through a `gco serve` ingestion gateway (its base URL)
    /// instead of writing to the store: the node then needs no store credentials, only
    /// an `ingest` API key in GCO_UPLOAD_KEY or --upload-key-file
    #[arg(long, env = "GCO_UPLOAD_URL")]
    pub upload_url: Option<String>,
    /// File holding the gateway's API key (instead of GCO_UPLOAD_KEY)
    #[arg(long, requires = "upload_url")]
    pub upload_key_file: Option<PathBuf>,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalArg {
    /// Average intensity of the generation mix (location-based accounting)
    Average,
    /// Marginal operating emissions rate (MOER)
    Marginal,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceArg {
    /// WattTime v3 (WATTTIME_USERNAME, WATTTIME_PASSWORD)
    Watttime,
    /// Electricity Maps v3 (ELECTRICITYMAPS_API_KEY)
    Electricitymaps,
    /// UK Carbon Intensity (no key)
    Uk,
}

#[derive(Subcommand, Debug)]
pub enum GridCommand {
    /// The intensity for a zone at a time, with the fallback level and provenance
    Show {
        /// Zone id (see `gco grid zones`), e.g. FR, US-CA, CA-BC, gcp:europe-west1
        #[arg(long)]
        zone: String,
        /// RFC 3339 time or date [default: the current time, read once]
        #[arg(long)]
        at: Option<String>,
        #[arg(long, value_enum, default_value_t = SignalArg::Average)]
        signal: SignalArg,
    },
    /// Fill the grid cache from a provider for a past range, month by month (resumable)
    Backfill {
        #[arg(long)]
        zone: String,
        /// First day, YYYY-MM-DD or RFC 3339 (inclusive)
        #[arg(long)]
        from: String,
        /// End, YYYY-MM-DD or RFC 3339 (exclusive)
        #[arg(long)]
        to: String,
        /// Provider [default: the first configured one that serves the zone]
        #[arg(long, value_enum)]
        source: Option<SourceArg>,
        #[arg(long, value_enum, default_value_t = SignalArg::Average)]
        signal: SignalArg,
        /// Fetch months again even when the cache covers them (a restatement, stored beside the old data)
        #[arg(long)]
        force: bool,
    },
    /// Fetch the latest values (and forecasts) for a zone into the grid cache
    Fetch {
        #[arg(long)]
        zone: String,
        #[arg(long, value_enum)]
        source: Option<SourceArg>,
        #[arg(long, value_enum, default_value_t = SignalArg::Average)]
        signal: SignalArg,
    },
    /// List the zone catalog and each provider's code for the zone
    Zones {
        /// Only zones of this kind
        #[arg(long, value_parser = ["country", "state", "province", "bidding_zone", "egrid_subregion", "cloud_region", "uk_region", "national_grid"])]
        kind: Option<String>,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyAlgorithm {
    /// Ed25519 (EdDSA), the default
    Ed25519,
    /// ECDSA on NIST P-256 with SHA-256 (ES256)
    P256,
    /// RSA 3072-bit, RSASSA-PKCS1-v1_5 with SHA-256 (RS256)
    Rsa3072,
    /// RSA 4096-bit, RSASSA-PKCS1-v1_5 with SHA-256 (RS256)
    Rsa4096,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Generate a private key (PKCS#8 PEM, mode 0600) and its public key (SPKI PEM)
    Generate {
        #[arg(long, value_enum, default_value_t = KeyAlgorithm::Ed25519)]
        algorithm: KeyAlgorithm,
        /// Private key file to create (refuses to overwrite)
        #[arg(long)]
        out: PathBuf,
        /// Public key file to create [default: OUT with .pub appended]
        #[arg(long)]
        public_out: Option<PathBuf>,
    },
    /// Print the key id, algorithm and public key of a private or public key file
    Show {
        /// A private key (PKCS#8 PEM) or public key (SPKI PEM) file
        key: PathBuf,
    },
}

#[derive(Subcommand, Debug)]
pub enum NodeCommand {
    /// Register a node's public key, grid zone and site for a validity window
    Register {
        #[arg(long)]
        node: String,
        /// The node's public key (SPKI PEM), e.g. from `gco keys generate`
        #[arg(long)]
        public_key: PathBuf,
        /// Grid zone id of the node's location (e.g. FR, DE, US-CA)
        #[arg(long)]
        zone: String,
        /// Site or cloud region label
        #[arg(long)]
        site: String,
        /// Start of validity, RFC 3339 or YYYY-MM-DD [default: --now]
        #[arg(long)]
        valid_from: Option<String>,
        /// End of validity [default: open]
        #[arg(long)]
        valid_to: Option<String>,
        /// Recording time of the event [default: the current time, read once]
        #[arg(long)]
        now: Option<String>,
    },
    /// Revoke a node key from a date on; batches with records after it fail verification
    Revoke {
        #[arg(long)]
        node: String,
        #[arg(long)]
        key_id: String,
        /// Revocation takes effect at this time [default: --now]
        #[arg(long)]
        effective_at: Option<String>,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        now: Option<String>,
    },
    /// List registered node keys
    List,
    /// Create or load the node key in the TPM and export its public key for `node register`
    Init {
        /// Use the TPM (the only kind of key `init` handles; key files: `gco keys generate`)
        #[arg(long, required = true)]
        tpm: bool,
        /// TPM connection (TCTI)
        #[arg(long, env = "GCO_TPM_TCTI", default_value = "device:/dev/tpmrm0")]
        tpm_tcti: String,
        /// Label of the TPM node key
        #[arg(long, default_value = "gco")]
        tpm_label: String,
        /// Where to write the public key (SPKI PEM)
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Args, Debug, Clone)]
pub struct DateRange {
    /// First partition date, YYYY-MM-DD (inclusive)
    #[arg(long)]
    pub from: Option<String>,
    /// Last partition date, YYYY-MM-DD (inclusive)
    #[arg(long)]
    pub to: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum LedgerCommand {
    /// Check hashes, Merkle roots, signatures, keys and chains; exit 1 on any problem
    Verify {
        #[command(flatten)]
        range: DateRange,
        /// Objects checked at once [default: number of CPUs]
        #[arg(long, default_value_t = 0)]
        concurrency: usize,
    },
    /// Import existing telemetry (CSV, JSON Lines, Parquet) as signed batches
    Import {
        /// Input file: .csv, .jsonl or .parquet with the record fields
        #[arg(long)]
        input: PathBuf,
        /// Node the records belong to (must be registered with --key's public key)
        #[arg(long)]
        node: String,
        /// The node's private key file
        #[arg(long)]
        key: PathBuf,
        /// Where refused rows go, one JSON object per line [default: INPUT.quarantine.jsonl]
        #[arg(long)]
        quarantine: Option<PathBuf>,
        /// As-of time for the "in the future" check [default: the current time, read once]
        #[arg(long)]
        as_of: Option<String>,
        /// Highest plausible average power per GPU, in watts (at least 1)
        #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(i64).range(1..))]
        max_gpu_watts: i64,
        /// Records per sealed batch at most (at least 1)
        #[arg(long, default_value_t = 100_000, value_parser = at_least_one)]
        max_batch_records: usize,
        /// Exit 1 when any row was quarantined (accepted rows are still written)
        #[arg(long)]
        strict: bool,
    },
    /// Record counts and energy per day, node and model
    Stats {
        #[command(flatten)]
        range: DateRange,
    },
}

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Directory that holds the demo's whole store (file://DIR) and node keys
    #[arg(long, default_value = "gco-demo")]
    pub dir: PathBuf,
    /// Days of simulated inference
    #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// Simulated GPU nodes (8 GPUs each)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub nodes: u32,
    /// Seed of the simulation: the same seed gives byte-identical ledgers
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// First simulated day (UTC)
    #[arg(long, default_value = "2026-10-01")]
    pub start: String,
    /// Simulated inferences per node-hour at the daily peak
    #[arg(long, default_value_t = 300)]
    pub peak_rate: u32,
    /// Also issue a legacy RS256 certificate per inference (RSA signing: ~9 ms each on
    /// one core, so off by default)
    #[arg(long)]
    pub legacy: bool,
    /// As-of time of the emissions runs (RFC 3339) [default: now]. With a fixed as-of
    /// the same seed gives byte-identical outputs: runs, credentials, reports, package
    #[arg(long)]
    pub as_of: Option<String>,
}
