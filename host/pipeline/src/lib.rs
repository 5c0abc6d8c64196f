//! The message path, end to end: intake → journal → adapter → store.
//!
//! [`Pipeline::start`] reads the operator [`Config`], opens the store, loads every adapter
//! into the sandbox once, and starts the processing workers. Then:
//!
//! 1. [`Pipeline::submit`] runs the intake check (`efile-bridge-intake`), finds the tenant from
//!    the header (the reader for incoming messages, the author for copies of what the
//!    tenant's own registry sent), makes sure one of the tenant's adapters handles the message
//!    kind, and stores the message durably with its journal entry. Only then does it answer
//!    with a receipt. Nothing is stored for a message that fails any of these checks.
//! 2. The message goes on a bounded queue (a full queue slows intake down instead of
//!    growing memory); a worker runs the adapter in a fresh sandbox instance and stores the
//!    records, or the failure, with a second journal entry.
//! 3. On start, every message that was journaled but not processed (a crash between 1 and 2)
//!    is queued again; the store ignores a second result for the same message.

pub mod adapters;
pub mod config;
mod delivery;
pub mod metrics;
pub mod replay;
pub mod shadow;
mod xdomea_sink;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use efile_bridge_intake::{Envelope, IntakeError};
use efile_bridge_model::{Confidentiality, MessageInfo, MessageKind};
use efile_bridge_runtime::{LoadedAdapter, Runtime, RuntimeConfig, SandboxLimits};
use efile_bridge_store::{Accepted, AdapterRef, Direction, NewMessage, PendingMessage, Receipt, Storage, StoreError};
use tokio::sync::{mpsc, watch};

pub use config::{Config, ConfigError};
pub use efile_bridge_store as store;
pub use metrics::Metrics;

/// Why the pipeline could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// Config problem.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Store problem.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A sink could not be set up.
    #[error("{0}")]
    Sink(String),
    /// An adapter could not be loaded.
    #[error("adapter `{name}` ({path}): {reason}")]
    Adapter {
        /// Name in config.
        name: String,
        /// Component path.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Why a message was refused. Nothing of a refused message is stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SubmitError {
    /// The intake check failed.
    #[error(transparent)]
    Intake(#[from] IntakeError),
    /// Neither reader nor author is a configured tenant.
    #[error("no tenant is configured for reader `{reader}` or author `{author}`")]
    UnknownTenant {
        /// Reader kennung.
        reader: String,
        /// Author kennung.
        author: String,
    },
    /// The tenant has no adapter for this message kind.
    #[error("tenant {tenant} has no adapter for {kind} ({name})")]
    NoAdapter {
        /// Tenant AGS.
        tenant: String,
        /// Message kind.
        kind: MessageKind,
        /// Root element name.
        name: String,
    },
    /// The caller's token belongs to a tenant that is neither reader nor author.
    #[error("{0}")]
    Forbidden(String),
    /// The tenant posted faster than its rate limit allows.
    #[error("tenant {tenant} is over its rate limit of {rate} messages per second")]
    RateLimited {
        /// Tenant AGS.
        tenant: String,
        /// Configured rate.
        rate: u32,
    },
    /// Storage failed; the message was not accepted.
    #[error(transparent)]
    Storage(#[from] StoreError),
    /// The pipeline is shutting down.
    #[error("the pipeline is shutting down")]
    ShuttingDown,
}

/// The outcome of a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Submitted {
    /// Accepted now.
    Accepted(Receipt),
    /// Accepted before; the first receipt.
    Duplicate(Receipt),
}

/// Who is calling, as established by [`Pipeline::authenticate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An admin token: every tenant.
    Admin,
    /// A tenant token: that tenant only.
    Tenant(String),
    /// `auth.mode = "open"` (loopback only): every tenant.
    Open,
    /// A clerk's token (`[[tenant.clerk]]`): reads that tenant, up to a clearance; posts nothing.
    Clerk {
        /// The tenant.
        ags: String,
        /// The clerk's name from the config.
        name: String,
        /// The most confidential documents the clerk sees.
        clearance: Confidentiality,
    },
}

impl Caller {
    /// Whether the caller may see this tenant's data.
    pub fn may_read(&self, ags: &str) -> bool {
        match self {
            Self::Admin | Self::Open => true,
            Self::Tenant(t) | Self::Clerk { ags: t, .. } => t == ags,
        }
    }

    /// The most confidential documents the caller sees (every one, except for clerks).
    pub fn clearance(&self) -> Confidentiality {
        match self {
            Self::Clerk { clearance, .. } => *clearance,
            Self::Admin | Self::Open | Self::Tenant(_) => Confidentiality::Secret,
        }
    }

    /// Whether the caller may use the admin API.
    pub fn is_admin(&self) -> bool {
        matches!(self, Self::Admin | Self::Open)
    }
}

/// Why a call is not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("send an API token as `Authorization: Bearer TOKEN`")]
    Missing,
    /// The token is not configured.
    #[error("the API token is not valid")]
    Unknown,
}

/// A token bucket.
struct Bucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl Bucket {
    fn take(&mut self) -> bool {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

struct Tenant {
    name: String,
    disabled: bool,
    routes: HashMap<MessageKind, Arc<LoadedAdapter>>,
    config: Arc<BTreeMap<String, String>>,
    rate: u32,
    bucket: Option<Mutex<Bucket>>,
    sinks: HashMap<String, Arc<delivery::Sink>>,
    /// A candidate adapter run beside the active one on live traffic (outputs only compared).
    shadow: Option<Arc<LoadedAdapter>>,
    /// `[sandbox]` with the tenant's own `[tenant.sandbox]` values applied.
    sandbox: SandboxLimits,
    /// One permit per adapter call the tenant may run at once (`max_concurrent_maps`). A
    /// reload makes a new one; calls running under the old one finish uncounted.
    maps: Arc<tokio::sync::Semaphore>,
}

/// What a config turns into; swapped as a whole on reload.
struct Settings {
    tenants: HashMap<String, Tenant>,
    /// `kennung` (`ags:…` and aliases) → tenant AGS.
    kennungen: HashMap<String, String>,
    /// Token hash → tenant AGS.
    tokens: HashMap<[u8; 32], String>,
    /// Clerk token hash → who.
    clerks: HashMap<[u8; 32], Caller>,
    admin: HashSet<[u8; 32]>,
    open: bool,
    limits: efile_bridge_intake::Limits,
    config: Config,
}

/// A tenant as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TenantOverview {
    /// AGS.
    pub ags: String,
    /// Name.
    pub name: String,
    /// Disabled tenants' messages are refused.
    pub disabled: bool,
    /// Adapters with the message types they handle for this tenant.
    pub adapters: Vec<serde_json::Value>,
    /// Number of API tokens configured.
    pub tokens: usize,
    /// Rate limit (0 = none).
    pub rate_limit_per_sec: u32,
}

struct Job {
    id: i64,
    info: MessageInfo,
    body: String,
}

struct Shared {
    store: Arc<dyn Storage>,
    runtime: Arc<Runtime>,
    settings: RwLock<Arc<Settings>>,
    processed: watch::Sender<u64>,
    metrics: Metrics,
    /// Tells the delivery dispatcher that new rows may be due.
    delivery_wake: Arc<tokio::sync::Notify>,
    /// Serialises settings rebuilds (config reloads and adapter switches).
    reloading: tokio::sync::Mutex<()>,
    /// This host's id (`host_id`) and how long it may stay silent before others take over.
    host: String,
    lease: Duration,
    /// A `verify` started from the API is running on this host.
    verifying: Arc<std::sync::atomic::AtomicBool>,
}

impl Shared {
    fn settings(&self) -> Arc<Settings> {
        self.settings.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

/// The running message path.
pub struct Pipeline {
    shared: Arc<Shared>,
    queue: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("tenants", &self.shared.settings().tenants.len()).finish_non_exhaustive()
    }
}

/// Loads the config's adapters and builds the settings; nothing is swapped yet.
fn build_settings(
    runtime: &Runtime,
    config: Config,
    registry: &adapters::Registry,
) -> Result<(Settings, HashMap<String, Arc<LoadedAdapter>>), StartError> {
    let mut loaded: HashMap<String, Arc<LoadedAdapter>> = HashMap::new();
    for a in &config.adapters {
        let err = |reason: String| StartError::Adapter {
            name: a.name.clone(),
            path: a.component.display().to_string(),
            reason,
        };
        let bytes = std::fs::read(&a.component).map_err(|e| err(format!("cannot read component: {e}")))?;
        let adapter = runtime.load(&bytes).map_err(|e| err(e.to_string()))?;
        if adapter.info().name != a.name {
            return Err(err(format!("the component calls itself `{}`", adapter.info().name)));
        }
        loaded.insert(a.name.clone(), adapter);
    }
    let mut tenants = HashMap::new();
    let mut kennungen = HashMap::new();
    let mut tokens = HashMap::new();
    let mut clerks = HashMap::new();
    let mut sinks = delivery::build(&config).map_err(StartError::Sink)?;
    // With one tenant there is nobody to keep a worker free for.
    let default_maps =
        if config.tenants.len() > 1 { workers(&config).saturating_sub(1).max(1) } else { workers(&config) };
    for t in &config.tenants {
        let mut routes = HashMap::new();
        for name in &t.adapters {
            let Some(adapter) = loaded.get(name) else { continue };
            for kind in &adapter.info().handles {
                routes.entry(kind.clone()).or_insert_with(|| adapter.clone());
            }
        }
        registry.apply(&t.ags, &mut routes);
        kennungen.insert(format!("ags:{}", t.ags), t.ags.clone());
        for alias in &t.aliases {
            kennungen.insert(alias.clone(), t.ags.clone());
        }
        for h in &t.tokens {
            if let Some(hash) = config::parse_token_hash(h) {
                tokens.insert(hash, t.ags.clone());
            }
        }
        for c in &t.clerks {
            if let Some(hash) = config::parse_token_hash(&c.token) {
                let clerk = Caller::Clerk { ags: t.ags.clone(), name: c.name.clone(), clearance: c.clearance };
                clerks.insert(hash, clerk);
            }
        }
        let bucket = (t.rate_limit_per_sec > 0).then(|| {
            let burst = f64::from(t.rate_burst.unwrap_or(t.rate_limit_per_sec).max(1));
            Mutex::new(Bucket { rate: f64::from(t.rate_limit_per_sec), burst, tokens: burst, last: Instant::now() })
        });
        tenants.insert(
            t.ags.clone(),
            Tenant {
                name: t.name.clone(),
                disabled: t.disabled,
                routes,
                config: Arc::new(t.config.clone()),
                rate: t.rate_limit_per_sec,
                bucket,
                sinks: sinks.remove(&t.ags).unwrap_or_default(),
                shadow: registry.shadow(&t.ags),
                sandbox: config.sandbox.for_tenant(&t.sandbox).to_limits(),
                maps: Arc::new(tokio::sync::Semaphore::new(
                    config.sandbox.for_tenant(&t.sandbox).max_concurrent_maps.unwrap_or(default_maps),
                )),
            },
        );
    }
    let admin = config.auth.admin_tokens.iter().filter_map(|h| config::parse_token_hash(h)).collect();
    let settings = Settings {
        tenants,
        kennungen,
        tokens,
        clerks,
        admin,
        open: config.auth.mode == config::AuthMode::Open,
        limits: config.limits.to_limits(),
        config,
    };
    Ok((settings, loaded))
}

impl Pipeline {
    /// Opens the store, loads adapters and starts the workers. Must run inside a tokio runtime.
    pub fn start(config: Config) -> Result<Self, StartError> {
        let store: Arc<dyn Storage> = Arc::new(efile_bridge_store::open(config.storage.as_deref(), &config.data_dir)?);
        let runtime = Arc::new(
            Runtime::new(RuntimeConfig { cache_dir: Some(config.data_dir.join("cache")), ..RuntimeConfig::default() })
                .map_err(|e| StartError::Adapter { name: "-".into(), path: "-".into(), reason: e.to_string() })?,
        );
        let interval = Duration::from_secs(config.checkpoint_interval_secs);
        let (host, lease) = (config.host_id(), Duration::from_secs(config.host_lease_secs));
        // Alive before claiming anything: another host must not take over what this one claims.
        store.heartbeat(&host, efile_bridge_store::now_ms())?;
        let released = store.release_deliveries(&host, efile_bridge_store::now_ms())?;
        if released > 0 {
            tracing::info!(count = released, "deliveries in flight at the last stop are due again");
        }
        let generation = store.registry_generation()?;
        let registry = adapters::Registry::load(store.as_ref(), &runtime, &config.data_dir)?;
        let (settings, loaded) = build_settings(&runtime, config, &registry)?;
        journal_config(&store, &settings, &loaded)?;
        let (processed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            store,
            runtime,
            settings: RwLock::new(Arc::new(settings)),
            processed,
            metrics: Metrics::default(),
            delivery_wake: Arc::new(tokio::sync::Notify::new()),
            reloading: tokio::sync::Mutex::new(()),
            verifying: Arc::default(),
            host,
            lease,
        });
        let workers = workers(&shared.settings().config);
        let (queue, rx) = mpsc::channel::<Job>(1024);
        tokio::spawn(dispatch(shared.clone(), rx, workers));
        tokio::spawn(checkpoint_ticker(Arc::downgrade(&shared), interval));
        tokio::spawn(delivery::run(Arc::downgrade(&shared), shared.delivery_wake.clone()));
        tokio::spawn(adapters::watch(Arc::downgrade(&shared), generation));
        let pipeline = Self { shared, queue };
        pipeline.requeue_pending()?;
        tokio::spawn(heartbeat(Arc::downgrade(&pipeline.shared), pipeline.queue.clone()));
        Ok(pipeline)
    }

    /// Applies a changed config without a restart: tenants, tokens, aliases, adapters, limits.
    /// `data_dir`, `storage`, `host_id`, `host_lease_secs`, `listen`, `http` and `workers` need
    /// a restart; a change to them is reported
    /// in the returned warnings. Messages in flight finish with the settings they started with.
    pub async fn reload(&self, config: Config) -> Result<Vec<String>, StartError> {
        let current = self.shared.settings();
        let mut warnings = Vec::new();
        let old = &current.config;
        if old.data_dir != config.data_dir || old.listen != config.listen || old.workers != config.workers {
            warnings.push("data_dir, listen and workers changes take effect after a restart".to_owned());
        }
        if old.storage != config.storage
            || old.host_id != config.host_id
            || old.host_lease_secs != config.host_lease_secs
        {
            warnings.push("storage, host_id and host_lease_secs changes take effect after a restart".to_owned());
        }
        if old.http.tls_cert != config.http.tls_cert || old.http.max_connections != config.http.max_connections {
            warnings.push("http settings take effect after a restart".to_owned());
        }
        rebuild(&self.shared, Some(config)).await?;
        Ok(warnings)
    }

    /// Applies the adapter registry now (after an install or switch through the API).
    pub async fn refresh_adapters(&self) -> Result<(), StartError> {
        rebuild(&self.shared, None).await
    }

    /// The sandbox runtime (the admin API installs packages with it).
    pub fn runtime(&self) -> Arc<Runtime> {
        self.shared.runtime.clone()
    }

    /// Who holds this `Authorization` header value.
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Caller, AuthError> {
        let settings = self.shared.settings();
        let token = authorization.and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        let Some(token) = token else {
            return if settings.open { Ok(Caller::Open) } else { Err(AuthError::Missing) };
        };
        let hash = config::token_hash(token);
        if settings.admin.contains(&hash) {
            return Ok(Caller::Admin);
        }
        if let Some(ags) = settings.tokens.get(&hash) {
            return Ok(Caller::Tenant(ags.clone()));
        }
        if let Some(clerk) = settings.clerks.get(&hash) {
            return Ok(clerk.clone());
        }
        if settings.open { Ok(Caller::Open) } else { Err(AuthError::Unknown) }
    }

    /// Starts `verify` of the whole journal in the background, its outcome kept for
    /// [`Storage::last_verify`]; `false` if one is running on this host already.
    pub fn start_verify(&self) -> bool {
        use std::sync::atomic::Ordering;
        if self.shared.verifying.swap(true, Ordering::AcqRel) {
            return false;
        }
        /// Clears the flag however the run ends (a panic included), so a later start is possible.
        struct Running(Arc<std::sync::atomic::AtomicBool>);
        impl Drop for Running {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let running = Running(self.shared.verifying.clone());
        let (store, host) = (self.shared.store.clone(), self.shared.host.clone());
        tokio::task::spawn_blocking(move || {
            let _running = running;
            match efile_bridge_store::verify_and_record(store.as_ref(), &host, &|_| {}) {
                Ok(r) => tracing::info!(entries = r.entries, seconds = r.seconds, "journal verified"),
                Err(e) => tracing::error!(error = %e, "journal verification failed"),
            }
        });
        true
    }

    /// Whether a `verify` started by [`Pipeline::start_verify`] is running.
    pub fn verifying(&self) -> bool {
        self.shared.verifying.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The largest body the intake accepts.
    pub fn max_body_bytes(&self) -> usize {
        self.shared.settings().limits.max_bytes
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The configured tenants' AGS (cheap, for watchers).
    pub fn tenant_ags(&self) -> Vec<String> {
        self.shared.settings().config.tenants.iter().map(|t| t.ags.clone()).collect()
    }

    /// Tenants with their adapters, for the admin API.
    pub fn tenants(&self) -> Vec<TenantOverview> {
        let settings = self.shared.settings();
        let mut out: Vec<TenantOverview> = settings
            .config
            .tenants
            .iter()
            .filter_map(|t| {
                let live = settings.tenants.get(&t.ags)?;
                let mut adapters: Vec<serde_json::Value> = Vec::new();
                for name in &t.adapters {
                    let handles: Vec<String> = live
                        .routes
                        .iter()
                        .filter(|(_, a)| &a.info().name == name)
                        .map(|(k, _)| k.to_string())
                        .collect();
                    let first = live.routes.values().find(|a| &a.info().name == name);
                    adapters.push(serde_json::json!({
                        "name": name,
                        "version": first.map(|a| a.info().version.clone()),
                        "hash": first.map(|a| a.content_hash().to_owned()),
                        "handles": handles,
                    }));
                }
                Some(TenantOverview {
                    ags: t.ags.clone(),
                    name: live.name.clone(),
                    disabled: live.disabled,
                    adapters,
                    tokens: t.tokens.len(),
                    rate_limit_per_sec: live.rate,
                })
            })
            .collect();
        out.sort_by(|a, b| a.ags.cmp(&b.ags));
        out
    }

    /// Queues what this host accepted before its last stop and what dead hosts left behind.
    fn requeue_pending(&self) -> Result<(), StoreError> {
        let (host, lease) = (&self.shared.host, self.shared.lease.as_millis() as i64);
        let pending = self.shared.store.claim_messages(host, true, efile_bridge_store::now_ms(), lease, u32::MAX)?;
        if !pending.is_empty() {
            tracing::info!(count = pending.len(), "re-queuing messages accepted before the last stop");
        }
        let queue = self.queue.clone();
        let shared = self.shared.clone();
        tokio::spawn(async move { enqueue(&shared, &queue, pending).await });
        Ok(())
    }

    /// The config the pipeline runs with now.
    pub fn config(&self) -> Config {
        self.shared.settings().config.clone()
    }

    /// Wakes the delivery dispatcher (after rows were queued again from outside it).
    pub fn clone_delivery_wake(&self) -> Arc<tokio::sync::Notify> {
        self.shared.delivery_wake.clone()
    }

    /// The store, for reads.
    pub fn store(&self) -> Arc<dyn Storage> {
        self.shared.store.clone()
    }

    /// A counter that increases whenever a message has been processed (or failed).
    pub fn processed(&self) -> watch::Receiver<u64> {
        self.shared.processed.subscribe()
    }

    /// Checks, journals and queues one message on behalf of `caller`. See the crate docs.
    pub async fn submit(&self, body: Vec<u8>, caller: &Caller) -> Result<Submitted, SubmitError> {
        let result = self.submit_inner(body, caller).await;
        match &result {
            Ok(Submitted::Accepted(_)) | Ok(Submitted::Duplicate(_)) => {}
            Err(e) => self.shared.metrics.refused(error_code(e)),
        }
        result
    }

    async fn submit_inner(&self, body: Vec<u8>, caller: &Caller) -> Result<Submitted, SubmitError> {
        let settings = self.shared.settings();
        let envelope = efile_bridge_intake::check(&body, &settings.limits)?;
        let (tenant, direction) = resolve_tenant(&settings, &envelope, caller)?;
        let kind = MessageKind {
            standard: envelope.standard.clone(),
            version: envelope.version.clone(),
            message_type: envelope.message_type.clone(),
        };
        let Some(t) = settings.tenants.get(&tenant) else {
            return Err(SubmitError::Forbidden(format!("tenant {tenant} is not configured")));
        };
        if t.disabled {
            return Err(SubmitError::Forbidden(format!("tenant {tenant} is disabled")));
        }
        if !t.routes.contains_key(&kind) {
            return Err(SubmitError::NoAdapter { tenant, kind, name: envelope.message_name });
        }
        if let Some(bucket) = &t.bucket
            && !bucket.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take()
        {
            return Err(SubmitError::RateLimited { tenant, rate: t.rate });
        }
        // The XML was checked to be UTF-8 above, so this never replaces anything.
        let text = String::from_utf8_lossy(&body).into_owned();
        let msg = NewMessage {
            tenant: tenant.clone(),
            standard: envelope.standard.clone(),
            version: envelope.version.clone(),
            message_type: envelope.message_type.clone(),
            message_name: envelope.message_name.clone(),
            message_uuid: envelope.message_uuid.clone(),
            created_at: envelope.created_at.clone(),
            direction,
            body,
            host: Some(self.shared.host.clone()),
        };
        let store = self.shared.store.clone();
        let started = Instant::now();
        let accepted =
            tokio::task::spawn_blocking(move || store.accept(msg)).await.map_err(|_| SubmitError::ShuttingDown)??;
        self.shared.metrics.commit.observe(started.elapsed());
        match accepted {
            Accepted::Duplicate(receipt) => {
                self.shared.metrics.message(&tenant, &envelope.message_type, "duplicate");
                Ok(Submitted::Duplicate(receipt))
            }
            Accepted::New { id, receipt } => {
                tracing::info!(
                    tenant = %tenant, message_type = %envelope.message_type, uuid = %envelope.message_uuid,
                    journal_index = receipt.journal_index, direction = direction.as_str(), "message accepted"
                );
                self.shared.metrics.message(&tenant, &envelope.message_type, "accepted");
                let info = MessageInfo {
                    tenant_ags: tenant,
                    standard: envelope.standard,
                    version: envelope.version,
                    message_type: envelope.message_type,
                    message_name: envelope.message_name,
                    message_uuid: envelope.message_uuid,
                    created_at: envelope.created_at,
                    received_at: receipt.received_at.clone(),
                    journal_index: receipt.journal_index,
                };
                // The message is durable already; if the queue is gone (shutdown) it is
                // picked up again at the next start.
                self.shared.metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
                if self.queue.send(Job { id, info, body: text }).await.is_err() {
                    self.shared.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
                }
                Ok(Submitted::Accepted(receipt))
            }
        }
    }
}

async fn enqueue(shared: &Shared, queue: &mpsc::Sender<Job>, pending: Vec<PendingMessage>) {
    for PendingMessage { id, info, body } in pending {
        shared.metrics.queue_depth.fetch_add(1, Ordering::Relaxed);
        if queue.send(Job { id, info, body }).await.is_err() {
            shared.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
            break;
        }
    }
}

/// Says every third of the lease that this host is alive, and takes over the messages of
/// hosts that stopped saying so (they died between acknowledging and processing).
async fn heartbeat(shared: std::sync::Weak<Shared>, queue: mpsc::Sender<Job>) {
    loop {
        let Some(s) = shared.upgrade() else { return };
        let period = s.lease / 3;
        let (store, host, lease) = (s.store.clone(), s.host.clone(), s.lease.as_millis() as i64);
        drop(s);
        tokio::time::sleep(period).await;
        let claimed = tokio::task::spawn_blocking(move || {
            let now = efile_bridge_store::now_ms();
            store.heartbeat(&host, now)?;
            store.claim_messages(&host, false, now, lease, 1024)
        })
        .await;
        let Some(s) = shared.upgrade() else { return };
        match claimed {
            Ok(Ok(orphans)) if !orphans.is_empty() => {
                tracing::warn!(count = orphans.len(), "taking over messages of a host that stopped");
                enqueue(&s, &queue, orphans).await;
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "heartbeat failed"),
            Err(_) => return,
        }
    }
}

/// The short code of a refusal (HTTP bodies, metrics).
pub fn error_code(e: &SubmitError) -> &'static str {
    match e {
        SubmitError::Intake(i) => i.code(),
        SubmitError::UnknownTenant { .. } => "unknown_tenant",
        SubmitError::NoAdapter { .. } => "no_adapter",
        SubmitError::Forbidden(_) => "forbidden",
        SubmitError::RateLimited { .. } => "rate_limited",
        SubmitError::Storage(_) => "storage_unavailable",
        SubmitError::ShuttingDown => "shutting_down",
    }
}

/// The tenant a message belongs to: its reader (incoming) or, for the copy of a message the
/// tenant's registry sent itself, its author. A tenant token may only post its own tenant's.
///
/// A party names a tenant by its kennung (`ags:AGS` or a configured alias) or, failing that,
/// by the AGS in it: a TR-XhD Behördenschlüssel such as `psb:09162000_00` is München's
/// passport authority (`Party::ags`), without an alias per office.
fn resolve_tenant(settings: &Settings, env: &Envelope, caller: &Caller) -> Result<(String, Direction), SubmitError> {
    let tenant_of = |p: &Option<efile_bridge_intake::Party>| {
        let p = p.as_ref()?;
        settings
            .kennungen
            .get(&p.kennung)
            .or_else(|| p.ags().and_then(|ags| settings.kennungen.get(&format!("ags:{ags}"))))
            .cloned()
    };
    let (reader, author) = (tenant_of(&env.reader), tenant_of(&env.author));
    let kennung =
        |p: &Option<efile_bridge_intake::Party>| p.as_ref().map_or_else(|| "-".to_owned(), |p| p.kennung.clone());
    match caller {
        Caller::Clerk { ags, name, .. } => Err(SubmitError::Forbidden(format!(
            "clerk `{name}` of tenant {ags} reads the e-file; clerks post no messages"
        ))),
        Caller::Tenant(own) => {
            if reader.as_deref() == Some(own) {
                Ok((own.clone(), Direction::Incoming))
            } else if author.as_deref() == Some(own) {
                Ok((own.clone(), Direction::OutgoingCopy))
            } else {
                Err(SubmitError::Forbidden(format!(
                    "the token of tenant {own} may only post messages it reads or wrote (reader `{}`, author `{}`)",
                    kennung(&env.reader),
                    kennung(&env.author)
                )))
            }
        }
        Caller::Admin | Caller::Open => match (reader, author) {
            (Some(r), _) => Ok((r, Direction::Incoming)),
            (None, Some(a)) => Ok((a, Direction::OutgoingCopy)),
            (None, None) => {
                Err(SubmitError::UnknownTenant { reader: kennung(&env.reader), author: kennung(&env.author) })
            }
        },
    }
}

/// Journals the configuration if it changed since the last one recorded.
fn journal_config(
    store: &Arc<dyn Storage>,
    settings: &Settings,
    loaded: &HashMap<String, Arc<LoadedAdapter>>,
) -> Result<(), StoreError> {
    let sinks = settings.config.tenants.iter().flat_map(|t| t.sinks.iter().map(|s| (t.ags.clone(), s.name.clone())));
    store.configure_sinks(sinks.collect())?;
    let applied = applied_config(&settings.config, &settings.tenants, loaded);
    let digest = hex_sha256(applied.to_string().as_bytes());
    if store.apply_config(digest.clone(), applied)? {
        tracing::info!(config_digest = %digest, "configuration change journaled");
    }
    Ok(())
}

/// What the journal records about the running configuration: tenants with their adapters'
/// content hashes and config keys, limits. Never secrets (none exist in this config yet).
fn applied_config(
    config: &Config,
    tenants: &HashMap<String, Tenant>,
    loaded: &HashMap<String, Arc<LoadedAdapter>>,
) -> serde_json::Value {
    let mut list: Vec<_> = config
        .tenants
        .iter()
        .map(|t| {
            let adapters: Vec<_> = t
                .adapters
                .iter()
                .filter_map(|name| loaded.get(name))
                .map(|a| serde_json::json!({"name": a.info().name, "version": a.info().version, "hash": a.content_hash()}))
                .collect();
            // Where records go, never the credentials.
            let sinks: Vec<_> = t
                .sinks
                .iter()
                .map(|s| serde_json::json!({"name": s.name, "kind": s.kind, "url": s.url, "folder": s.folder}))
                .collect();
            let mut tenant = serde_json::json!({
                "ags": t.ags,
                "adapters": adapters,
                "sinks": sinks,
                "config": tenants.get(&t.ags).map(|x| (*x.config).clone()).unwrap_or_default(),
            });
            // Only when set, so that configs without it keep their digest.
            if t.sandbox != config::TenantSandboxConfig::default() {
                tenant["sandbox"] = sandbox_json(&config.sandbox.for_tenant(&t.sandbox));
            }
            tenant
        })
        .collect();
    list.sort_by(|a, b| a["ags"].as_str().cmp(&b["ags"].as_str()));
    serde_json::json!({
        "tenants": list,
        "limits": {
            "max_body_bytes": config.limits.max_body_bytes,
            "max_depth": config.limits.max_depth,
            "max_elements": config.limits.max_elements,
        },
        "sandbox": sandbox_json(&config.sandbox),
    })
}

fn sandbox_json(s: &config::SandboxConfig) -> serde_json::Value {
    serde_json::json!({
        "cpu_budget_ms": s.cpu_budget_ms,
        "max_memory_mib": s.max_memory_mib,
        "max_output_mib": s.max_output_mib,
        "max_concurrent_maps": s.max_concurrent_maps,
    })
}

fn hex_sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(bytes))
}

/// Signs a checkpoint every `interval` while the pipeline lives (the store skips it when
/// nothing was appended).
async fn checkpoint_ticker(shared: std::sync::Weak<Shared>, interval: std::time::Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(shared) = shared.upgrade() else { break };
        let store = shared.store.clone();
        drop(shared);
        match tokio::task::spawn_blocking(move || store.checkpoint()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "could not sign a checkpoint"),
            Err(_) => break,
        }
    }
}

/// Builds settings from `config` (or the current one) and the adapter registry, and swaps
/// them in at once: a message is mapped entirely with the settings it started with.
pub(crate) async fn rebuild(shared: &Arc<Shared>, config: Option<Config>) -> Result<(), StartError> {
    let _one_at_a_time = shared.reloading.lock().await;
    let config = config.unwrap_or_else(|| shared.settings().config.clone());
    let runtime = shared.runtime.clone();
    let store = shared.store.clone();
    let built = tokio::task::spawn_blocking(move || {
        let registry = adapters::Registry::load(store.as_ref(), &runtime, &config.data_dir)?;
        let (settings, loaded) = build_settings(&runtime, config, &registry)?;
        journal_config(&store, &settings, &loaded)?;
        Ok::<_, StartError>((settings, registry.current().len()))
    })
    .await
    .map_err(|e| StartError::Adapter { name: "-".into(), path: "-".into(), reason: e.to_string() })??;
    let (settings, switches) = built;
    let tenants = settings.tenants.len();
    *shared.settings.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(settings);
    tracing::info!(tenants, switches, "settings applied");
    Ok(())
}

/// Results stored but not yet durable, at most. Bounds memory when storage is slower than
/// the adapters.
const MAX_PENDING_RESULTS: usize = 1024;

/// Message processing workers: `workers` in the config, else one per CPU.
fn workers(config: &Config) -> usize {
    config.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1)
}

/// What an adapter call holds while it runs: a worker, and one of its tenant's call permits.
struct Slot {
    _worker: tokio::sync::OwnedSemaphorePermit,
    _tenant: Option<tokio::sync::OwnedSemaphorePermit>,
}

async fn dispatch(shared: Arc<Shared>, mut rx: mpsc::Receiver<Job>, workers: usize) {
    // `workers` adapters run at once. A worker is free again as soon as its adapter returned:
    // waiting for the result's commit (an fsync) would cap throughput at workers / fsync time.
    // A result that is not yet durable when the host dies is simply redone at the next start.
    let permits = Arc::new(tokio::sync::Semaphore::new(workers));
    let pending = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_RESULTS));
    while let Some(job) = rx.recv().await {
        shared.metrics.queue_depth.fetch_sub(1, Ordering::Relaxed);
        let Ok(result) = pending.clone().acquire_owned().await else {
            break;
        };
        // Each job waits for its tenant's permit, then a worker, in a task of its own: a
        // tenant at its `max_concurrent_maps` (a flood of runaway adapters, say) waits without
        // holding a worker, and without holding up other tenants' messages queued behind.
        let tenant = shared.settings().tenants.get(&job.info.tenant_ags).map(|t| t.maps.clone());
        let (shared, permits) = (shared.clone(), permits.clone());
        tokio::spawn(async move {
            let tenant = match tenant {
                Some(maps) => maps.acquire_owned().await.ok(),
                None => None,
            };
            let Ok(worker) = permits.acquire_owned().await else { return };
            tokio::task::spawn_blocking(move || {
                process(&shared, job, Slot { _worker: worker, _tenant: tenant });
                drop(result);
                shared.processed.send_modify(|n| *n += 1);
            });
        });
    }
}

fn process(shared: &Shared, job: Job, worker: Slot) {
    let Job { id, info, body } = job;
    let kind = MessageKind {
        standard: info.standard.clone(),
        version: info.version.clone(),
        message_type: info.message_type.clone(),
    };
    let settings = shared.settings();
    let Some(tenant) = settings.tenants.get(&info.tenant_ags) else {
        let reason = format!("tenant {} is no longer configured", info.tenant_ags);
        report(shared.store.record_failed(&info.tenant_ags, id, None, reason), &info);
        return;
    };
    let Some(adapter) = tenant.routes.get(&kind) else {
        let reason = format!("tenant {} has no adapter for {kind} any more", info.tenant_ags);
        report(shared.store.record_failed(&info.tenant_ags, id, None, reason), &info);
        return;
    };
    let adapter_ref = AdapterRef {
        name: adapter.info().name.clone(),
        version: adapter.info().version.clone(),
        hash: adapter.content_hash().to_owned(),
    };
    let started = std::time::Instant::now();
    let result = shared.runtime.map(adapter, tenant.config.clone(), &tenant.sandbox, &info, &body);
    shared.metrics.adapter.observe(started.elapsed());
    // A live shadow run: the candidate maps the same message with the same settings, on the
    // tenant's worker time; only the comparison is kept.
    let shadowed = tenant.shadow.as_ref().map(|candidate| {
        let theirs = shared.runtime.map(candidate, tenant.config.clone(), &tenant.sandbox, &info, &body);
        let filed_by = Some(format!("{}@{}", adapter_ref.name, adapter_ref.version));
        let entry = shadow::compare_records(&info, result.as_deref().ok(), filed_by, &theirs);
        (format!("{}@{}", candidate.info().name, candidate.info().version), entry)
    });
    drop(worker);
    if let Some((candidate, entry)) = shadowed {
        let entry = serde_json::to_value(&entry).unwrap_or_default();
        if let Err(e) = shared.store.record_shadow(&info.tenant_ags, &candidate, entry) {
            tracing::warn!(tenant = %info.tenant_ags, error = %e, "could not keep a shadow comparison");
        }
    }
    let micros = started.elapsed().as_micros() as u64;
    match result {
        Ok(records) => {
            tracing::info!(tenant = %info.tenant_ags, uuid = %info.message_uuid, adapter = %adapter_ref.name,
                records = records.len(), adapter_us = micros, "message processed");
            report(shared.store.record_processed(&info.tenant_ags, id, adapter_ref, records), &info);
            shared.metrics.message(&info.tenant_ags, &info.message_type, "processed");
            if !tenant.sinks.is_empty() {
                shared.delivery_wake.notify_one();
            }
        }
        Err(e) => {
            tracing::warn!(tenant = %info.tenant_ags, uuid = %info.message_uuid, adapter = %adapter_ref.name,
                error = %e, "message could not be mapped");
            report(shared.store.record_failed(&info.tenant_ags, id, Some(adapter_ref), e.to_string()), &info);
            shared.metrics.message(&info.tenant_ags, &info.message_type, "failed");
        }
    }
}

fn report(result: Result<(), StoreError>, info: &MessageInfo) {
    if let Err(e) = result {
        // The message stays `accepted` and is processed again at the next start.
        tracing::error!(tenant = %info.tenant_ags, uuid = %info.message_uuid, error = %e, "could not store processing result");
    }
}
