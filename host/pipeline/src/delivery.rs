//! Delivery to the tenants' sinks: asynchronous from intake, durable, at least once, in order
//! per citizen, with retries and dead letters.
//!
//! The queue is the store's `deliveries` table: a row per record version and sink, written in
//! the transaction that files the record, so a crash can delay a delivery but never lose it.
//! One dispatcher task asks the store for due rows (at most one per citizen and sink, so a
//! citizen's records arrive in order), starts an attempt for each while the sink has a free
//! slot (`concurrency`), and sleeps until the next row is due or new work is announced. A slow
//! sink fills only its own slots; intake never waits for delivery.
//!
//! Every attempt carries the record version's idempotency key (`Idempotency-Key` header),
//! the same across retries and restarts, so a downstream that honours it applies each version
//! exactly once even though an attempt whose answer was lost is repeated.
//!
//! Retries: connection errors, timeouts, 5xx, 408 and 429 (honouring `Retry-After`), after an
//! exponential backoff with jitter; any other 4xx, or `max_attempts` failures, make the row a
//! dead letter (`delivery-dead` journal entry with every attempt's error).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use efile_bridge_store::{AttemptOutcome, DeliveryItem, DueDelivery, Storage, StoreError};
use tokio::sync::{Notify, Semaphore};

use crate::Shared;
use crate::config::{SinkConfig, SinkKind};

/// How long the dispatcher sleeps at most when nothing is due: rows queued again by another
/// process (the CLI's `deadletter redeliver`) are noticed within this time.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// Rows asked for per round.
const BATCH: u32 = 256;

/// Rows read earlier are started without a new query for at most this long (a row queued
/// meanwhile, e.g. a redelivery, waits at most this long behind them).
const REQUERY: Duration = Duration::from_millis(500);

/// A configured sink, ready to deliver.
pub(crate) struct Sink {
    pub(crate) config: SinkConfig,
    /// The tenant's name (the xdomea sender).
    pub(crate) tenant_name: String,
    pub(crate) client: reqwest::Client,
    pub(crate) authorization: Option<String>,
    slots: Arc<Semaphore>,
}

impl Sink {
    pub(crate) fn new(config: SinkConfig, tenant_name: &str) -> Result<Self, String> {
        let authorization = match (&config.authorization, &config.authorization_env) {
            (Some(a), _) => Some(a.clone()),
            (None, Some(var)) => Some(
                std::env::var(var)
                    .map_err(|_| format!("sink `{}`: environment variable `{var}` is not set", config.name))?,
            ),
            (None, None) => None,
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            .connect_timeout(Duration::from_millis(config.timeout_ms.min(10_000)))
            .user_agent(concat!("efile-bridge/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("sink `{}`: {e}", config.name))?;
        let slots = Arc::new(Semaphore::new(config.concurrency));
        Ok(Self { config, tenant_name: tenant_name.to_owned(), client, authorization, slots })
    }
}

/// Why an attempt failed.
#[derive(Debug)]
pub(crate) struct Failure {
    error: String,
    retryable: bool,
    retry_after: Option<Duration>,
}

impl Failure {
    pub(crate) fn retry(error: String) -> Self {
        Self { error, retryable: true, retry_after: None }
    }

    pub(crate) fn permanent(error: String) -> Self {
        Self { error, retryable: false, retry_after: None }
    }
}

/// The wait before attempt `attempt + 1` (attempt counts from 1): initial · 2^(attempt-1),
/// capped, times a random factor in [0.5, 1) so that many failed rows do not retry in step.
fn backoff(config: &SinkConfig, attempt: u32, rng: &mut fastrand::Rng) -> Duration {
    let max = Duration::from_secs(config.backoff_max_secs);
    let base = Duration::from_millis(config.backoff_initial_ms).saturating_mul(1 << attempt.saturating_sub(1).min(20));
    base.min(max).mul_f64(0.5 + rng.f64() / 2.0)
}

/// `Retry-After` in seconds (the HTTP-date form is treated as absent).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<u64>().ok().map(Duration::from_secs)
}

pub(crate) fn classify(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        format!("cannot connect: {}", source_chain(e))
    } else {
        format!("transport error: {}", source_chain(e))
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

pub(crate) async fn answer(resp: reqwest::Response) -> Result<(reqwest::StatusCode, Vec<u8>), Failure> {
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.map_err(|e| Failure::retry(classify(&e)))?;
    if status.is_success() {
        return Ok((status, body.to_vec()));
    }
    let snippet: String =
        String::from_utf8_lossy(&body[..body.len().min(200)]).chars().filter(|c| !c.is_control()).collect();
    let error = format!("HTTP {}: {snippet}", status.as_u16());
    if status.is_server_error()
        || status == reqwest::StatusCode::REQUEST_TIMEOUT
        || status == reqwest::StatusCode::TOO_MANY_REQUESTS
    {
        Err(Failure { error, retryable: true, retry_after: retry_after(&headers) })
    } else {
        Err(Failure::permanent(error))
    }
}

/// The JSON part of an `http` delivery: everything but the bytes.
fn metadata(item: &DeliveryItem) -> serde_json::Value {
    let mut record = serde_json::to_value(&item.record).unwrap_or_default();
    if let Some(list) = record.get_mut("attachments").and_then(|a| a.as_array_mut()) {
        for a in list {
            if let Some(o) = a.as_object_mut() {
                o.remove("data");
            }
        }
    }
    serde_json::json!({
        "idempotency_key": item.idempotency_key,
        "tenant": item.tenant,
        "citizen_id": item.citizen_id,
        "document_id": item.document_id,
        "version": item.version,
        "message_uuid": item.message_uuid,
        "message_type": item.message_type,
        "received_at": item.received_at,
        "record": record,
    })
}

async fn deliver_http(sink: &Sink, url: &str, item: &DeliveryItem) -> Result<String, Failure> {
    let mut form = reqwest::multipart::Form::new().part(
        "metadata",
        reqwest::multipart::Part::text(metadata(item).to_string())
            .mime_str("application/json")
            .map_err(|e| Failure::permanent(e.to_string()))?,
    );
    if !item.original_xml.is_empty() {
        form = form.part(
            "original",
            reqwest::multipart::Part::bytes(item.original_xml.clone())
                .file_name(format!("{}.xml", item.message_uuid))
                .mime_str("application/xml")
                .map_err(|e| Failure::permanent(e.to_string()))?,
        );
    }
    for a in &item.record.attachments {
        let part = reqwest::multipart::Part::bytes(a.data.clone()).file_name(a.name.clone());
        let part =
            part.mime_str(&a.media_type).map_err(|e| Failure::permanent(format!("attachment {}: {e}", a.name)))?;
        form = form.part("attachment", part);
    }
    let mut req = sink.client.post(url).header("Idempotency-Key", &item.idempotency_key).multipart(form);
    if let Some(auth) = &sink.authorization {
        req = req.header(reqwest::header::AUTHORIZATION, auth);
    }
    let resp = req.send().await.map_err(|e| Failure::retry(classify(&e)))?;
    let (status, _) = answer(resp).await?;
    Ok(format!("HTTP {}", status.as_u16()))
}

async fn attempt(sink: &Sink, item: &DeliveryItem) -> Result<String, Failure> {
    match sink.config.kind {
        SinkKind::Http => deliver_http(sink, sink.config.url.as_deref().unwrap_or_default(), item).await,
        SinkKind::XdomeaFolder | SinkKind::XdomeaHttp => crate::xdomea_sink::deliver(sink, item).await,
    }
}

/// Runs until the pipeline is dropped.
pub(crate) async fn run(shared: Weak<Shared>, wake: Arc<Notify>) {
    let busy: Arc<Mutex<HashSet<i64>>> = Arc::default();
    let mut rng = fastrand::Rng::new();
    // Due rows read but not started yet (their sink was full): started from here as slots free
    // up, so a finished attempt does not cost a queue query. Every row in it is the head of
    // its citizen's queue; a citizen's next row only appears in a later query.
    let mut ready: VecDeque<DueDelivery> = VecDeque::new();
    let mut last_query = Instant::now();
    loop {
        let Some(s) = shared.upgrade() else { return };
        let store = s.store.clone();
        let settings = s.settings();
        let (host, lease) = (s.host.clone(), s.lease);
        drop(s);
        let now = efile_bridge_store::now_ms();
        if ready.is_empty() || last_query.elapsed() >= REQUERY {
            let taken: Vec<i64> =
                busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter().copied().collect();
            let store = store.clone();
            // Claimed for longer than the slowest attempt can take, at least the host lease.
            let longest = settings.tenants.values().flat_map(|t| t.sinks.values()).map(|s| s.config.timeout_ms).max();
            let lease = (longest.unwrap_or_default().saturating_mul(2) as i64).max(lease.as_millis() as i64);
            let host = host.clone();
            match tokio::task::spawn_blocking(move || store.due_deliveries(&host, now, lease, BATCH, &taken)).await {
                Ok(Ok(d)) => ready = d.into(),
                Ok(Err(e)) => tracing::error!(error = %e, "cannot read the delivery queue"),
                Err(_) => return,
            }
            last_query = Instant::now();
        }
        let mut started = 0usize;
        let mut waiting = VecDeque::with_capacity(ready.len());
        while let Some(d) = ready.pop_front() {
            let Some(sink) = settings.tenants.get(&d.tenant).and_then(|t| t.sinks.get(&d.sink)).cloned() else {
                continue;
            };
            let Ok(permit) = sink.slots.clone().try_acquire_owned() else {
                waiting.push_back(d);
                continue;
            };
            busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(d.id);
            started += 1;
            let (store, busy, wake, seed) = (store.clone(), busy.clone(), wake.clone(), rng.u64(..));
            let metrics = shared.clone();
            tokio::spawn(async move {
                let outcome = one(&store, &sink, &d, seed).await;
                if let (Some(s), Some(o)) = (metrics.upgrade(), &outcome) {
                    s.metrics.delivery(&d.tenant, &d.sink, o);
                }
                drop(permit);
                busy.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&d.id);
                wake.notify_one();
            });
        }
        ready = waiting;
        let wait = if started > 0 && ready.is_empty() {
            // The batch may have been full: look again right away.
            Duration::ZERO
        } else if !ready.is_empty() {
            // Rows wait for a slot: the wake-up of a finished attempt starts the next one.
            IDLE_POLL
        } else {
            // Nothing startable: the next row is due later, or its citizen's earlier row is
            // in flight (the wake-up a finished attempt sends covers that).
            let next = {
                let store = store.clone();
                tokio::task::spawn_blocking(move || store.next_delivery_at()).await.ok().and_then(Result::ok).flatten()
            };
            match next {
                Some(at) if at > now => Duration::from_millis((at - now) as u64).min(IDLE_POLL),
                _ => IDLE_POLL,
            }
        };
        if wait.is_zero() {
            continue;
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One attempt for delivery `due`; returns what was recorded (none if recording failed).
async fn one(store: &Arc<dyn Storage>, sink: &Sink, due: &DueDelivery, seed: u64) -> Option<AttemptOutcome> {
    let id = due.id;
    let item = {
        let store = store.clone();
        tokio::task::spawn_blocking(move || store.delivery_item(id)).await.ok()?
    };
    let outcome = match item {
        Err(StoreError::NotFound(why)) => AttemptOutcome::Dead(why),
        Err(e) => {
            tracing::error!(error = %e, delivery = id, "cannot read a delivery");
            return None;
        }
        Ok(item) => {
            let attempts = item.attempts + 1;
            match attempt(sink, &item).await {
                Ok(answer) => {
                    tracing::debug!(tenant = %item.tenant, sink = %item.sink, delivery = %item.delivery_id, attempts, "delivered");
                    AttemptOutcome::Delivered(answer)
                }
                Err(f) if f.retryable && attempts < sink.config.max_attempts => {
                    let mut rng = fastrand::Rng::with_seed(seed);
                    let cap = Duration::from_secs(sink.config.backoff_max_secs);
                    let wait = f.retry_after.map_or_else(|| backoff(&sink.config, attempts, &mut rng), |r| r.min(cap));
                    tracing::info!(tenant = %item.tenant, sink = %item.sink, delivery = %item.delivery_id, attempts,
                        error = %f.error, retry_in_ms = wait.as_millis() as u64, "delivery attempt failed; will retry");
                    AttemptOutcome::Retry {
                        error: f.error,
                        // The queue's clock counts whole milliseconds: round up, so that a
                        // `Retry-After` is never cut short by the truncation.
                        at_ms: efile_bridge_store::now_ms() + wait.as_millis() as i64 + 1,
                    }
                }
                Err(f) => AttemptOutcome::Dead(if f.retryable {
                    format!("{} (attempt {attempts} of {})", f.error, sink.config.max_attempts)
                } else {
                    f.error
                }),
            }
        }
    };
    let store = store.clone();
    let recorded = outcome.clone();
    let tenant = due.tenant.clone();
    match tokio::task::spawn_blocking(move || store.delivery_attempted(&tenant, id, recorded)).await {
        Ok(Ok(())) => Some(outcome),
        Ok(Err(e)) => {
            // Not recorded: the row is still pending and is attempted again (same key).
            tracing::error!(error = %e, delivery = id, "cannot record a delivery attempt");
            None
        }
        Err(_) => None,
    }
}

/// Builds the sinks of every tenant.
pub(crate) fn build(config: &crate::Config) -> Result<HashMap<String, HashMap<String, Arc<Sink>>>, String> {
    let mut out = HashMap::new();
    for t in &config.tenants {
        let mut sinks = HashMap::new();
        for s in &t.sinks {
            sinks.insert(
                s.name.clone(),
                Arc::new(Sink::new(s.clone(), &t.name).map_err(|e| format!("tenant {}: {e}", t.ags))?),
            );
        }
        out.insert(t.ags.clone(), sinks);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink() -> SinkConfig {
        toml::from_str(
            "name = 'x'\nkind = 'http'\nurl = 'http://127.0.0.1:1/'\nbackoff_initial_ms = 1000\nbackoff_max_secs = 60",
        )
        .expect("sink config")
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let config = sink();
        let mut rng = fastrand::Rng::with_seed(7);
        for attempt in 1..=12 {
            let full = Duration::from_millis(1000 * (1u64 << (attempt - 1))).min(Duration::from_secs(60));
            let d = backoff(&config, attempt, &mut rng);
            assert!(d >= full / 2 && d < full, "attempt {attempt}: {d:?} not in [{:?}, {full:?})", full / 2);
        }
    }
}
