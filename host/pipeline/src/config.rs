//! The operator configuration (`efile-bridge.toml`).
//!
//! Separate from what an adapter declares about itself: the operator decides which tenant
//! runs which adapter, with which configuration and limits. Unknown keys are errors, so a typo
//! never silently falls back to a default. Relative paths are resolved against the directory
//! of the config file.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use efile_bridge_model::Confidentiality;
use serde::Deserialize;

/// The whole operator configuration.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the journal, store and caches live. Default `efile-data`.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Where the journal and the e-file store live: `sqlite` (the default: one embedded
    /// database under `data_dir`) or a PostgreSQL url `postgres://user@host:port/db`, which
    /// several hosts of one installation share. Add `?sslmode=require` for TLS (the server's
    /// certificate is verified, against `&sslrootcert=/path/ca.pem` or the system's roots).
    /// The signing key stays in `data_dir/keys`.
    #[serde(default)]
    pub storage: Option<String>,
    /// This host's name among the hosts sharing one PostgreSQL database: messages it accepted
    /// and deliveries it attempts are claimed under it. Must differ between hosts. Default:
    /// the machine's hostname.
    #[serde(default)]
    pub host_id: Option<String>,
    /// Seconds without a heartbeat after which a host counts as dead and the others take over
    /// the messages it accepted but did not process (heartbeats every third of it). Default 30.
    #[serde(default = "default_host_lease")]
    pub host_lease_secs: u64,
    /// HTTP listen address. Default `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The drop folder; files in its `inbox/` are ingested. Default `DATA_DIR/drop`.
    #[serde(default)]
    pub drop_folder: Option<PathBuf>,
    /// Message processing workers. Default: number of CPUs.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Seconds between signed journal checkpoints (only when the journal grew). Default 30.
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval_secs: u64,
    /// Who may call the API.
    #[serde(default)]
    pub auth: AuthConfig,
    /// HTTP listener settings: TLS, connection limits, timeouts.
    #[serde(default)]
    pub http: HttpConfig,
    /// Intake limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Sandbox limits applied to every adapter call.
    #[serde(default)]
    pub sandbox: SandboxConfig,
    /// Adapter components available to tenants.
    #[serde(default, rename = "adapter")]
    pub adapters: Vec<AdapterConfig>,
    /// Tenants (municipalities).
    #[serde(default, rename = "tenant")]
    pub tenants: Vec<TenantConfig>,
    /// Publishers whose signed adapter packages may be installed.
    #[serde(default, rename = "trusted_publisher")]
    pub trusted_publishers: Vec<TrustedPublisher>,
}

/// A publisher of adapter packages (`[[trusted_publisher]]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TrustedPublisher {
    /// Who it is (recorded with each install).
    pub name: String,
    /// `ed25519:BASE64`, from `efile-bridge plugin keygen`.
    pub public_key: String,
}

fn default_checkpoint_interval() -> u64 {
    30
}

fn default_host_lease() -> u64 {
    30
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("efile-data")
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

/// How callers authenticate.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every call needs `Authorization: Bearer TOKEN`: a tenant token (its own tenant's
    /// messages and files only) or an admin token. The default.
    #[default]
    Tokens,
    /// No tokens: for trying efile-bridge out on one machine. Refused unless `listen` is a
    /// loopback address.
    Open,
}

/// Authentication.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// `tokens` (default) or `open` (loopback only).
    pub mode: AuthMode,
    /// Hashes (`sha256:HEX`, from `efile-bridge token new`) of admin tokens: every tenant,
    /// the admin API, metrics.
    pub admin_tokens: Vec<String>,
}

/// The HTTP listener.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// PEM certificate chain; with `tls_key`, the listener speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
    /// Most connections open at once; more wait in the kernel's backlog. Default 1024.
    pub max_connections: usize,
    /// Seconds a client may take to send its request headers. Default 10.
    pub header_timeout_secs: u64,
    /// Seconds a client may take to send its body (slow senders get 408). Default 30.
    pub body_timeout_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self { tls_cert: None, tls_key: None, max_connections: 1024, header_timeout_secs: 10, body_timeout_secs: 30 }
    }
}

/// Intake limits (see `efile-bridge-intake`).
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest body in bytes. Default 16 MiB.
    pub max_body_bytes: usize,
    /// Deepest nesting. Default 64.
    pub max_depth: usize,
    /// Most elements. Default 200 000.
    pub max_elements: usize,
    /// Most attributes per element. Default 32.
    pub max_attributes: usize,
    /// Longest attribute value. Default 4096.
    pub max_attribute_len: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        let d = efile_bridge_intake::Limits::default();
        Self {
            max_body_bytes: d.max_bytes,
            max_depth: d.max_depth,
            max_elements: d.max_elements,
            max_attributes: d.max_attributes,
            max_attribute_len: d.max_attribute_len,
        }
    }
}

impl LimitsConfig {
    /// As intake limits.
    pub fn to_limits(&self) -> efile_bridge_intake::Limits {
        efile_bridge_intake::Limits {
            max_bytes: self.max_body_bytes,
            max_depth: self.max_depth,
            max_elements: self.max_elements,
            max_attributes: self.max_attributes,
            max_attribute_len: self.max_attribute_len,
        }
    }
}

/// Sandbox limits (`[sandbox]`): what every tenant gets unless its `[tenant.sandbox]` says
/// otherwise.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct SandboxConfig {
    /// Time budget for one adapter call in milliseconds. Default 1000.
    pub cpu_budget_ms: u64,
    /// Memory limit for one adapter instance in MiB. Default 64, at most 256.
    pub max_memory_mib: usize,
    /// Most output of one adapter call (records, strings, attachments) in MiB. Default 16.
    pub max_output_mib: usize,
    /// Adapter calls one tenant may run at once. Default: every worker if only one tenant is
    /// configured, otherwise one fewer than the workers (at least one), so that no tenant
    /// can occupy every worker.
    pub max_concurrent_maps: Option<usize>,
}

/// A tenant's own sandbox limits (`[tenant.sandbox]`); a key left out is the `[sandbox]` one.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields, default)]
pub struct TenantSandboxConfig {
    /// This tenant's own `sandbox.cpu_budget_ms` (default: the `[sandbox]` value).
    pub cpu_budget_ms: Option<u64>,
    /// This tenant's own `sandbox.max_memory_mib` (default: the `[sandbox]` value).
    pub max_memory_mib: Option<usize>,
    /// This tenant's own `sandbox.max_output_mib` (default: the `[sandbox]` value).
    pub max_output_mib: Option<usize>,
    /// This tenant's own `sandbox.max_concurrent_maps` (default: the `[sandbox]` value).
    pub max_concurrent_maps: Option<usize>,
}

const MIB: usize = 1024 * 1024;

/// The largest `max_output_mib`: a call's output is held in memory until it is stored.
const MAX_OUTPUT_MIB: usize = 1024;

/// The largest `max_concurrent_maps`; far more than any host has workers.
const MAX_CONCURRENT_MAPS: usize = 4096;

impl Default for SandboxConfig {
    fn default() -> Self {
        let d = efile_bridge_runtime::SandboxLimits::default();
        Self {
            cpu_budget_ms: d.cpu_budget.as_millis() as u64,
            max_memory_mib: d.max_memory_bytes / MIB,
            max_output_mib: d.max_output_bytes / MIB,
            max_concurrent_maps: None,
        }
    }
}

impl SandboxConfig {
    /// As runtime limits.
    pub fn to_limits(&self) -> efile_bridge_runtime::SandboxLimits {
        efile_bridge_runtime::SandboxLimits {
            cpu_budget: std::time::Duration::from_millis(self.cpu_budget_ms),
            max_memory_bytes: self.max_memory_mib * MIB,
            max_output_bytes: self.max_output_mib * MIB,
        }
    }

    /// The limits of a tenant: its own where it set them, these otherwise.
    pub fn for_tenant(&self, own: &TenantSandboxConfig) -> Self {
        Self {
            cpu_budget_ms: own.cpu_budget_ms.unwrap_or(self.cpu_budget_ms),
            max_memory_mib: own.max_memory_mib.unwrap_or(self.max_memory_mib),
            max_output_mib: own.max_output_mib.unwrap_or(self.max_output_mib),
            max_concurrent_maps: own.max_concurrent_maps.or(self.max_concurrent_maps),
        }
    }

    /// `table` is where the values come from, for the message (`sandbox`, `tenant X: sandbox`).
    fn validate(&self, table: &str) -> Result<(), String> {
        let ceiling = efile_bridge_runtime::RuntimeConfig::default().max_memory_bytes / MIB;
        if self.cpu_budget_ms == 0 {
            return Err(format!("{table}.cpu_budget_ms must be greater than 0"));
        }
        if self.max_memory_mib == 0 || self.max_memory_mib > ceiling {
            let v = self.max_memory_mib;
            return Err(format!(
                "{table}.max_memory_mib = {v} must be between 1 and {ceiling} (the sandbox's ceiling)"
            ));
        }
        if self.max_output_mib == 0 || self.max_output_mib > MAX_OUTPUT_MIB {
            let v = self.max_output_mib;
            return Err(format!("{table}.max_output_mib = {v} must be between 1 and {MAX_OUTPUT_MIB}"));
        }
        if let Some(n) = self.max_concurrent_maps.filter(|n| !(1..=MAX_CONCURRENT_MAPS).contains(n)) {
            return Err(format!("{table}.max_concurrent_maps = {n} must be between 1 and {MAX_CONCURRENT_MAPS}"));
        }
        Ok(())
    }
}

/// An adapter component.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct AdapterConfig {
    /// The name tenants refer to; must equal the name the component reports.
    pub name: String,
    /// Path to the component (`.wasm`).
    pub component: PathBuf,
}

/// A tenant.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    /// Amtlicher Gemeindeschlüssel, eight digits.
    pub ags: String,
    /// Name of the municipality.
    pub name: String,
    /// Names of the adapters this tenant runs; the first that handles a message kind wins.
    pub adapters: Vec<String>,
    /// Configuration the tenant's adapters can read (`config-get`).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    /// Hashes (`sha256:HEX`) of the tenant's API tokens; several allow rotation. These are
    /// for the systems that post messages and read results: they see every document.
    #[serde(default)]
    pub tokens: Vec<String>,
    /// Clerks who read the tenant's e-file (API and console) with their own token. They post
    /// no messages and see documents up to their `clearance` only.
    #[serde(default, rename = "clerk")]
    pub clerks: Vec<ClerkConfig>,
    /// Further `kennung` values (besides `ags:AGS`) that name this tenant in message headers.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A disabled tenant's messages are refused (403); its data stays readable to admins.
    #[serde(default)]
    pub disabled: bool,
    /// Messages per second this tenant may post (token bucket); 0 = unlimited. Default 0.
    #[serde(default)]
    pub rate_limit_per_sec: u32,
    /// Burst above the rate. Default: one second's worth.
    #[serde(default)]
    pub rate_burst: Option<u32>,
    /// Where the tenant's records are delivered besides the built-in store (which always
    /// keeps them). Each record version goes to every sink.
    #[serde(default, rename = "sink")]
    pub sinks: Vec<SinkConfig>,
    /// The tenant's own sandbox limits (`[tenant.sandbox]`), each defaulting to `[sandbox]`.
    #[serde(default)]
    pub sandbox: TenantSandboxConfig,
}

/// A clerk of a tenant.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct ClerkConfig {
    /// Name recorded in the journal for the clerk's decisions (review items).
    pub name: String,
    /// Hash (`sha256:HEX`, from `efile-bridge token new`) of the clerk's token.
    pub token: String,
    /// The most confidential documents the clerk sees: `normal` (default), `high` (adapters
    /// mark Auskunftssperre and Passversagung so) or `secret`. Documents above it are left out
    /// of the citizen's file (with a count) and answer 404.
    #[serde(default = "default_clearance")]
    pub clearance: Confidentiality,
}

fn default_clearance() -> Confidentiality {
    Confidentiality::Normal
}

/// What kind of system a sink delivers to.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "kebab-case")]
pub enum SinkKind {
    /// `POST url`, multipart: `metadata` (JSON), `original` (the XML), one part per attachment.
    Http,
    /// An xdomea 3.1.0 `FVDaten.SGOAblegen.0605` package (zip) written to `folder`.
    XdomeaFolder,
    /// The same package, `POST url` as `application/zip`; an xdomea reply in the answer is read.
    XdomeaHttp,
}

/// One delivery target of a tenant (`[[tenant.sink]]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "json-schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SinkConfig {
    /// Name, unique per tenant (delivery state and dead letters show it).
    pub name: String,
    /// `http`, `xdomea-folder` or `xdomea-http`.
    pub kind: SinkKind,
    /// Target URL (`http`, `xdomea-http`).
    #[serde(default)]
    pub url: Option<String>,
    /// Target folder (`xdomea-folder`).
    #[serde(default)]
    pub folder: Option<PathBuf>,
    /// Value of the `Authorization` header sent with every request, e.g. `Bearer …`.
    #[serde(default)]
    pub authorization: Option<String>,
    /// Name of an environment variable holding the `Authorization` value (keeps the secret
    /// out of the config file).
    #[serde(default)]
    pub authorization_env: Option<String>,
    /// Time for one attempt, connection to last byte, in milliseconds. Default 30 000.
    #[serde(default = "default_sink_timeout")]
    pub timeout_ms: u64,
    /// Attempts before a record version becomes a dead letter. Default 10.
    #[serde(default = "default_sink_attempts")]
    pub max_attempts: u32,
    /// Wait before the second attempt in milliseconds; doubles per attempt, with jitter.
    /// Default 1 000.
    #[serde(default = "default_sink_backoff")]
    pub backoff_initial_ms: u64,
    /// Longest wait between attempts (also caps `Retry-After`) in seconds. Default 600.
    #[serde(default = "default_sink_backoff_max")]
    pub backoff_max_secs: u64,
    /// Attempts in flight at once. Default 4.
    #[serde(default = "default_sink_concurrency")]
    pub concurrency: usize,
}

fn default_sink_timeout() -> u64 {
    30_000
}
fn default_sink_attempts() -> u32 {
    10
}
fn default_sink_backoff() -> u64 {
    1_000
}
fn default_sink_backoff_max() -> u64 {
    600
}
fn default_sink_concurrency() -> usize {
    4
}

impl SinkConfig {
    fn validate(&self, ags: &str) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Err(format!("tenant {ags}: sink name `{name}` must be letters, digits, `-` or `_`"));
        }
        match self.kind {
            SinkKind::Http | SinkKind::XdomeaHttp => {
                let url = self.url.as_deref().unwrap_or("");
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(format!("tenant {ags}: sink `{name}` needs an http(s) url, not `{url}`"));
                }
            }
            SinkKind::XdomeaFolder => {
                if self.folder.is_none() {
                    return Err(format!("tenant {ags}: sink `{name}` (xdomea-folder) needs a folder"));
                }
            }
        }
        if self.authorization.is_some() && self.authorization_env.is_some() {
            return Err(format!("tenant {ags}: sink `{name}`: give authorization or authorization_env, not both"));
        }
        if self.timeout_ms == 0 || self.max_attempts == 0 || self.concurrency == 0 {
            return Err(format!("tenant {ags}: sink `{name}`: timeout_ms, max_attempts and concurrency must be > 0"));
        }
        Ok(())
    }
}

/// Parses a token hash as written in the config (`sha256:` and 64 hex digits).
pub fn parse_token_hash(s: &str) -> Option<[u8; 32]> {
    let hex = s.strip_prefix("sha256:")?;
    hex::decode(hex).ok()?.try_into().ok()
}

/// The hash under which a token is configured.
pub fn token_hash(token: &str) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(token.as_bytes()).into()
}

/// A config problem, naming the file and the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read {
        /// Path.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// TOML error or unknown key.
    #[error("config {path}: {message}")]
    Parse {
        /// Path.
        path: PathBuf,
        /// What toml said.
        message: String,
    },
    /// A semantic error.
    #[error("config {path}: {message}")]
    Invalid {
        /// Path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads and validates a config file; relative paths become relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let mut cfg: Config =
            toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
        let base = path.parent().unwrap_or(Path::new("."));
        cfg.rebase(base);
        cfg.validate().map_err(|message| ConfigError::Invalid { path: path.to_owned(), message })?;
        Ok(cfg)
    }

    /// Parses and validates config text; paths stay as written.
    pub fn parse(text: &str) -> Result<Self, String> {
        let cfg: Config = toml::from_str(text).map_err(|e| e.to_string())?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn rebase(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        if let Some(p) = &mut self.http.tls_cert {
            fix(p);
        }
        if let Some(p) = &mut self.http.tls_key {
            fix(p);
        }
        if let Some(d) = &mut self.drop_folder {
            fix(d);
        }
        for a in &mut self.adapters {
            fix(&mut a.component);
        }
        for t in &mut self.tenants {
            for sink in &mut t.sinks {
                if let Some(f) = &mut sink.folder {
                    fix(f);
                }
            }
        }
    }

    /// Checks what serde cannot: AGS format, unique names, references.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for a in &self.adapters {
            if !seen.insert(a.name.as_str()) {
                return Err(format!("adapter `{}` is defined twice", a.name));
            }
        }
        if let Some(storage) = &self.storage
            && storage != "sqlite"
            && !storage.starts_with("postgres://")
            && !storage.starts_with("postgresql://")
        {
            return Err(format!("storage = `{storage}`: expected \"sqlite\" or a postgres:// url"));
        }
        if self.auth.mode == AuthMode::Open && !self.listen.ip().is_loopback() {
            return Err(format!("auth.mode = \"open\" is only allowed on a loopback address, not on {}", self.listen));
        }
        if self.http.tls_cert.is_some() != self.http.tls_key.is_some() {
            return Err("http.tls_cert and http.tls_key must be given together".into());
        }
        if self.http.max_connections == 0 || self.http.body_timeout_secs == 0 || self.http.header_timeout_secs == 0 {
            return Err("http.max_connections and the http timeouts must be greater than 0".into());
        }
        let mut tokens = std::collections::HashSet::new();
        for h in &self.auth.admin_tokens {
            let hash = parse_token_hash(h)
                .ok_or_else(|| format!("auth.admin_tokens: `{h}` is not `sha256:` and 64 hex digits"))?;
            tokens.insert(hash);
        }
        // Before the tenants, so that a bad default is not blamed on the first tenant.
        self.sandbox.validate("sandbox")?;
        let mut kennungen = std::collections::HashSet::new();
        let mut tenants = std::collections::HashSet::new();
        for t in &self.tenants {
            for h in &t.tokens {
                let hash = parse_token_hash(h)
                    .ok_or_else(|| format!("tenant {}: token `{h}` is not `sha256:` and 64 hex digits", t.ags))?;
                if !tokens.insert(hash) {
                    return Err(format!("tenant {}: token `{h}` is also configured elsewhere", t.ags));
                }
            }
            for c in &t.clerks {
                let hash = parse_token_hash(&c.token).ok_or_else(|| {
                    format!(
                        "tenant {}: clerk `{}`: token `{}` is not `sha256:` and 64 hex digits",
                        t.ags, c.name, c.token
                    )
                })?;
                if c.name.trim().is_empty() || c.name.len() > 200 {
                    return Err(format!("tenant {}: a clerk's name must be 1 to 200 characters", t.ags));
                }
                if !tokens.insert(hash) {
                    return Err(format!(
                        "tenant {}: clerk `{}`: the token is also configured elsewhere",
                        t.ags, c.name
                    ));
                }
            }
            for k in std::iter::once(format!("ags:{}", t.ags)).chain(t.aliases.iter().cloned()) {
                if !kennungen.insert(k.clone()) {
                    return Err(format!("tenant {}: kennung `{k}` names another tenant too", t.ags));
                }
            }
            if t.ags.len() != 8 || !t.ags.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("tenant `{}`: ags `{}` is not eight digits", t.name, t.ags));
            }
            if !tenants.insert(t.ags.as_str()) {
                return Err(format!("tenant ags `{}` is defined twice", t.ags));
            }
            for a in &t.adapters {
                if !seen.contains(a.as_str()) {
                    return Err(format!("tenant `{}` uses adapter `{a}`, which is not defined", t.ags));
                }
            }
            self.sandbox.for_tenant(&t.sandbox).validate(&format!("tenant {}: sandbox", t.ags))?;
            let mut sinks = std::collections::HashSet::new();
            for sink in &t.sinks {
                sink.validate(&t.ags)?;
                if !sinks.insert(sink.name.as_str()) {
                    return Err(format!("tenant {}: sink `{}` is defined twice", t.ags, sink.name));
                }
            }
        }
        for p in &self.trusted_publishers {
            efile_bridge_package::check_public_key(&p.public_key)
                .map_err(|e| format!("trusted publisher `{}`: {e}", p.name))?;
        }
        if self.host_lease_secs < 3 {
            return Err(format!("host_lease_secs = {}: must be at least 3", self.host_lease_secs));
        }
        if self.host_id.as_deref().is_some_and(|h| h.trim().is_empty() || h.len() > 128) {
            return Err("host_id must be 1 to 128 characters".into());
        }
        if self.checkpoint_interval_secs == 0 {
            return Err("checkpoint_interval_secs must be greater than 0".into());
        }
        Ok(())
    }

    /// The drop folder, defaulting to `DATA_DIR/drop`.
    pub fn drop_folder(&self) -> PathBuf {
        self.drop_folder.clone().unwrap_or_else(|| self.data_dir.join("drop"))
    }

    /// `host_id`, or the machine's hostname (`localhost` if it has none).
    pub fn host_id(&self) -> String {
        self.host_id.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .or_else(|| std::env::var("HOSTNAME").ok())
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant_with(sandbox: &str) -> String {
        format!(
            "[sandbox]\ncpu_budget_ms = 500\n[[tenant]]\nags='09162000'\nname='M'\nadapters=[]\n[tenant.sandbox]\n{sandbox}"
        )
    }

    #[test]
    fn a_tenant_sandbox_overrides_only_what_it_sets() {
        let cfg: Config = toml::from_str(&tenant_with("max_output_mib = 2\nmax_concurrent_maps = 1")).expect("parses");
        cfg.validate().expect("valid");
        let own = cfg.sandbox.for_tenant(&cfg.tenants[0].sandbox);
        assert_eq!((own.cpu_budget_ms, own.max_output_mib, own.max_concurrent_maps), (500, 2, Some(1)));
        assert_eq!(own.max_memory_mib, SandboxConfig::default().max_memory_mib);
        let limits = own.to_limits();
        assert_eq!((limits.cpu_budget.as_millis(), limits.max_output_bytes), (500, 2 * MIB));
    }

    #[test]
    fn bad_sandbox_values_are_named_with_their_tenant() {
        let e = toml::from_str::<Config>(&tenant_with("cpu_budget = 5")).expect_err("unknown key");
        assert!(e.to_string().contains("cpu_budget"), "{e}");
        let cfg: Config = toml::from_str(&tenant_with("max_memory_mib = 4096")).expect("parses");
        let e = cfg.validate().expect_err("over the ceiling");
        assert!(e.contains("tenant 09162000: sandbox.max_memory_mib = 4096"), "{e}");
        let cfg: Config = toml::from_str(&tenant_with("max_output_mib = 0")).expect("parses");
        assert!(cfg.validate().expect_err("zero").contains("sandbox.max_output_mib = 0"));
        let cfg: Config = toml::from_str(&tenant_with("max_concurrent_maps = 0")).expect("parses");
        assert!(cfg.validate().expect_err("zero").contains("sandbox.max_concurrent_maps = 0"));
        let cfg: Config = toml::from_str("[sandbox]\ncpu_budget_ms = 0").expect("parses");
        assert!(cfg.validate().expect_err("zero").starts_with("sandbox.cpu_budget_ms"));
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let e = toml::from_str::<Config>("data_dirr = 'x'").expect_err("typo");
        assert!(e.to_string().contains("data_dirr"), "{e}");
    }

    #[test]
    fn bad_ags_and_dangling_adapter_are_named() {
        let cfg: Config = toml::from_str(
            "[[adapter]]\nname='xmeld'\ncomponent='a.wasm'\n[[tenant]]\nags='0916200'\nname='M'\nadapters=['xmeld']",
        )
        .expect("parses");
        assert!(cfg.validate().expect_err("bad ags").contains("`0916200`"));
        let cfg: Config = toml::from_str("[[tenant]]\nags='09162000'\nname='M'\nadapters=['nope']").expect("parses");
        assert!(cfg.validate().expect_err("dangling").contains("`nope`"));
    }
}
