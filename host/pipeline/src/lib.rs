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

pub mod config;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use efile_bridge_intake::{Envelope, IntakeError};
use efile_bridge_model::{MessageInfo, MessageKind};
use efile_bridge_runtime::{LoadedAdapter, Runtime, RuntimeConfig, SandboxLimits};
use efile_bridge_store::{
    Accepted, AdapterRef, Direction, NewMessage, PendingMessage, Receipt, SqliteStore, Storage, StoreError,
};
use tokio::sync::{mpsc, watch};

pub use config::{Config, ConfigError};
pub use efile_bridge_store as store;

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

struct Tenant {
    direction_ok: bool,
    routes: HashMap<MessageKind, Arc<LoadedAdapter>>,
    config: Arc<BTreeMap<String, String>>,
}

struct Job {
    id: i64,
    info: MessageInfo,
    body: String,
}

struct Shared {
    store: Arc<dyn Storage>,
    runtime: Arc<Runtime>,
    tenants: HashMap<String, Tenant>,
    sandbox: SandboxLimits,
    processed: watch::Sender<u64>,
}

/// The running message path.
pub struct Pipeline {
    shared: Arc<Shared>,
    limits: efile_bridge_intake::Limits,
    queue: mpsc::Sender<Job>,
    config: Config,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("tenants", &self.shared.tenants.len()).finish_non_exhaustive()
    }
}

impl Pipeline {
    /// Opens the store, loads adapters and starts the workers. Must run inside a tokio runtime.
    pub fn start(config: Config) -> Result<Self, StartError> {
        let store: Arc<dyn Storage> = Arc::new(SqliteStore::open(&config.data_dir)?);
        let runtime = Arc::new(
            Runtime::new(RuntimeConfig { cache_dir: Some(config.data_dir.join("cache")), ..RuntimeConfig::default() })
                .map_err(|e| StartError::Adapter { name: "-".into(), path: "-".into(), reason: e.to_string() })?,
        );
        let mut loaded: HashMap<&str, Arc<LoadedAdapter>> = HashMap::new();
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
            loaded.insert(&a.name, adapter);
        }
        let mut tenants = HashMap::new();
        for t in &config.tenants {
            let mut routes = HashMap::new();
            for name in &t.adapters {
                let Some(adapter) = loaded.get(name.as_str()) else {
                    continue;
                };
                for kind in &adapter.info().handles {
                    routes.entry(kind.clone()).or_insert_with(|| adapter.clone());
                }
            }
            tenants.insert(t.ags.clone(), Tenant { direction_ok: true, routes, config: Arc::new(t.config.clone()) });
        }
        let (processed, _) = watch::channel(0);
        let shared = Arc::new(Shared { store, runtime, tenants, sandbox: config.sandbox.to_limits(), processed });
        let workers =
            config.workers.unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())).max(1);
        let (queue, rx) = mpsc::channel::<Job>(1024);
        tokio::spawn(dispatch(shared.clone(), rx, workers));
        let applied = applied_config(&config, &shared.tenants, &loaded);
        let digest = hex_sha256(applied.to_string().as_bytes());
        if shared.store.apply_config(digest.clone(), applied)? {
            tracing::info!(config_digest = %digest, "configuration change journaled");
        }
        tokio::spawn(checkpoint_ticker(
            Arc::downgrade(&shared),
            std::time::Duration::from_secs(config.checkpoint_interval_secs),
        ));
        let pipeline = Self { shared, limits: config.limits.to_limits(), queue, config };
        pipeline.requeue_pending()?;
        Ok(pipeline)
    }

    fn requeue_pending(&self) -> Result<(), StoreError> {
        let pending = self.shared.store.pending()?;
        if !pending.is_empty() {
            tracing::info!(count = pending.len(), "re-queuing messages accepted before the last stop");
        }
        let queue = self.queue.clone();
        tokio::spawn(async move {
            for PendingMessage { id, info, body } in pending {
                if queue.send(Job { id, info, body }).await.is_err() {
                    break;
                }
            }
        });
        Ok(())
    }

    /// The config the pipeline runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The store, for reads.
    pub fn store(&self) -> Arc<dyn Storage> {
        self.shared.store.clone()
    }

    /// A counter that increases whenever a message has been processed (or failed).
    pub fn processed(&self) -> watch::Receiver<u64> {
        self.shared.processed.subscribe()
    }

    /// Checks, journals and queues one message. See the crate docs.
    pub async fn submit(&self, body: Vec<u8>) -> Result<Submitted, SubmitError> {
        let envelope = efile_bridge_intake::check(&body, &self.limits)?;
        let (tenant, direction) = self.resolve_tenant(&envelope)?;
        let kind = MessageKind {
            standard: envelope.standard.clone(),
            version: envelope.version.clone(),
            message_type: envelope.message_type.clone(),
        };
        if !self.shared.tenants.get(&tenant).is_some_and(|t| t.direction_ok && t.routes.contains_key(&kind)) {
            return Err(SubmitError::NoAdapter { tenant, kind, name: envelope.message_name });
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
        };
        let store = self.shared.store.clone();
        let accepted =
            tokio::task::spawn_blocking(move || store.accept(msg)).await.map_err(|_| SubmitError::ShuttingDown)??;
        match accepted {
            Accepted::Duplicate(receipt) => Ok(Submitted::Duplicate(receipt)),
            Accepted::New { id, receipt } => {
                tracing::info!(
                    tenant = %tenant, message_type = %envelope.message_type, uuid = %envelope.message_uuid,
                    journal_index = receipt.journal_index, direction = direction.as_str(), "message accepted"
                );
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
                let _ = self.queue.send(Job { id, info, body: text }).await;
                Ok(Submitted::Accepted(receipt))
            }
        }
    }

    fn resolve_tenant(&self, env: &Envelope) -> Result<(String, Direction), SubmitError> {
        let known = |p: &Option<efile_bridge_intake::Party>| {
            p.as_ref().and_then(|p| p.ags()).filter(|ags| self.shared.tenants.contains_key(*ags)).map(str::to_owned)
        };
        if let Some(ags) = known(&env.reader) {
            return Ok((ags, Direction::Incoming));
        }
        if let Some(ags) = known(&env.author) {
            return Ok((ags, Direction::OutgoingCopy));
        }
        let kennung =
            |p: &Option<efile_bridge_intake::Party>| p.as_ref().map_or_else(|| "-".to_owned(), |p| p.kennung.clone());
        Err(SubmitError::UnknownTenant { reader: kennung(&env.reader), author: kennung(&env.author) })
    }
}

/// What the journal records about the running configuration: tenants with their adapters'
/// content hashes and config keys, limits. Never secrets (none exist in this config yet).
fn applied_config(
    config: &Config,
    tenants: &HashMap<String, Tenant>,
    loaded: &HashMap<&str, Arc<LoadedAdapter>>,
) -> serde_json::Value {
    let mut list: Vec<_> = config
        .tenants
        .iter()
        .map(|t| {
            let adapters: Vec<_> = t
                .adapters
                .iter()
                .filter_map(|name| loaded.get(name.as_str()))
                .map(|a| serde_json::json!({"name": a.info().name, "version": a.info().version, "hash": a.content_hash()}))
                .collect();
            serde_json::json!({
                "ags": t.ags,
                "adapters": adapters,
                "config": tenants.get(&t.ags).map(|x| (*x.config).clone()).unwrap_or_default(),
            })
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
        "sandbox": {"cpu_budget_ms": config.sandbox.cpu_budget_ms, "max_memory_mib": config.sandbox.max_memory_mib},
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

async fn dispatch(shared: Arc<Shared>, mut rx: mpsc::Receiver<Job>, workers: usize) {
    let permits = Arc::new(tokio::sync::Semaphore::new(workers));
    while let Some(job) = rx.recv().await {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            break;
        };
        let shared = shared.clone();
        tokio::task::spawn_blocking(move || {
            process(&shared, job);
            drop(permit);
            shared.processed.send_modify(|n| *n += 1);
        });
    }
}

fn process(shared: &Shared, job: Job) {
    let Job { id, info, body } = job;
    let kind = MessageKind {
        standard: info.standard.clone(),
        version: info.version.clone(),
        message_type: info.message_type.clone(),
    };
    let Some(tenant) = shared.tenants.get(&info.tenant_ags) else {
        let reason = format!("tenant {} is no longer configured", info.tenant_ags);
        report(shared.store.record_failed(id, None, reason), &info);
        return;
    };
    let Some(adapter) = tenant.routes.get(&kind) else {
        let reason = format!("tenant {} has no adapter for {kind} any more", info.tenant_ags);
        report(shared.store.record_failed(id, None, reason), &info);
        return;
    };
    let adapter_ref = AdapterRef {
        name: adapter.info().name.clone(),
        version: adapter.info().version.clone(),
        hash: adapter.content_hash().to_owned(),
    };
    let started = std::time::Instant::now();
    let result = shared.runtime.map(adapter, tenant.config.clone(), &shared.sandbox, &info, &body);
    let micros = started.elapsed().as_micros() as u64;
    match result {
        Ok(records) => {
            tracing::info!(tenant = %info.tenant_ags, uuid = %info.message_uuid, adapter = %adapter_ref.name,
                records = records.len(), adapter_us = micros, "message processed");
            report(shared.store.record_processed(id, adapter_ref, records), &info);
        }
        Err(e) => {
            tracing::warn!(tenant = %info.tenant_ags, uuid = %info.message_uuid, adapter = %adapter_ref.name,
                error = %e, "message could not be mapped");
            report(shared.store.record_failed(id, Some(adapter_ref), e.to_string()), &info);
        }
    }
}

fn report(result: Result<(), StoreError>, info: &MessageInfo) {
    if let Err(e) = result {
        // The message stays `accepted` and is processed again at the next start.
        tracing::error!(tenant = %info.tenant_ags, uuid = %info.message_uuid, error = %e, "could not store processing result");
    }
}
