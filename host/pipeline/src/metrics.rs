//! Prometheus metrics, rendered by hand in the text exposition format (a few counters and
//! histograms do not need a registry crate).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// A latency histogram with fixed buckets (seconds).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            if secs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_ns.fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", count.load(Ordering::Relaxed));
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9);
        let _ = writeln!(out, "{name}_count {count}");
    }
}

const LATENCY: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Everything `/metrics` shows.
#[derive(Debug)]
pub struct Metrics {
    messages: Mutex<BTreeMap<(String, String, &'static str), u64>>,
    refused: Mutex<BTreeMap<&'static str, u64>>,
    /// Adapter call time (fresh instance + mapping).
    pub adapter: Histogram,
    /// Time from handing a message to the store until its journal commit is durable.
    pub commit: Histogram,
    /// Messages accepted and waiting for a worker.
    pub queue_depth: AtomicI64,
    deliveries: Mutex<BTreeMap<(String, String, &'static str), u64>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            messages: Mutex::default(),
            refused: Mutex::default(),
            adapter: Histogram::new(LATENCY),
            commit: Histogram::new(LATENCY),
            queue_depth: AtomicI64::new(0),
            deliveries: Mutex::default(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Metrics {
    /// Counts a message outcome (`accepted`, `duplicate`, `processed`, `failed`).
    pub fn message(&self, tenant: &str, message_type: &str, outcome: &'static str) {
        *lock(&self.messages).entry((tenant.to_owned(), message_type.to_owned(), outcome)).or_default() += 1;
    }

    /// Counts a delivery attempt by its outcome (`delivered`, `retry`, `dead`).
    pub fn delivery(&self, tenant: &str, sink: &str, outcome: &efile_bridge_store::AttemptOutcome) {
        let o = match outcome {
            efile_bridge_store::AttemptOutcome::Delivered(_) => "delivered",
            efile_bridge_store::AttemptOutcome::Retry { .. } => "retry",
            efile_bridge_store::AttemptOutcome::Dead(_) => "dead",
        };
        *lock(&self.deliveries).entry((tenant.to_owned(), sink.to_owned(), o)).or_default() += 1;
    }

    /// Counts a refusal by its error code.
    pub fn refused(&self, code: &'static str) {
        *lock(&self.refused).entry(code).or_default() += 1;
    }

    /// The Prometheus text format, with the store's journal write lock counters.
    pub fn render(&self, journal: &efile_bridge_store::WriteLockTimes) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP efile_journal_lock_wait_seconds_total Time this host waited for the journal's write lock.\n\
             # TYPE efile_journal_lock_wait_seconds_total counter\nefile_journal_lock_wait_seconds_total {}\n\
             # HELP efile_journal_lock_held_seconds_total Time this host held it (to append and commit its batches).\n\
             # TYPE efile_journal_lock_held_seconds_total counter\nefile_journal_lock_held_seconds_total {}\n\
             # HELP efile_journal_tenant_wait_seconds_total Time this host's batches waited for tenants' locks.\n\
             # TYPE efile_journal_tenant_wait_seconds_total counter\nefile_journal_tenant_wait_seconds_total {}\n\
             # HELP efile_journal_batches_total Write batches (transactions) of this host.\n\
             # TYPE efile_journal_batches_total counter\nefile_journal_batches_total {}\n\
             # HELP efile_journal_writes_total Writes in those batches.\n\
             # TYPE efile_journal_writes_total counter\nefile_journal_writes_total {}",
            journal.wait_seconds, journal.held_seconds, journal.tenant_wait_seconds, journal.batches, journal.writes
        );
        out.push_str(
            "# HELP efile_messages_total Messages by tenant, type and outcome.\n# TYPE efile_messages_total counter\n",
        );
        for ((tenant, ty, outcome), n) in lock(&self.messages).iter() {
            let _ =
                writeln!(out, "efile_messages_total{{tenant=\"{tenant}\",type=\"{ty}\",outcome=\"{outcome}\"}} {n}");
        }
        out.push_str(
            "# HELP efile_refused_total Messages refused at intake, by reason.\n# TYPE efile_refused_total counter\n",
        );
        for (code, n) in lock(&self.refused).iter() {
            let _ = writeln!(out, "efile_refused_total{{reason=\"{code}\"}} {n}");
        }
        out.push_str(
            "# HELP efile_delivery_attempts_total Delivery attempts by tenant, sink and outcome.\n# TYPE efile_delivery_attempts_total counter\n",
        );
        for ((tenant, sink, outcome), n) in lock(&self.deliveries).iter() {
            let _ = writeln!(
                out,
                "efile_delivery_attempts_total{{tenant=\"{tenant}\",sink=\"{sink}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        self.adapter.render(
            &mut out,
            "efile_adapter_seconds",
            "Adapter call time: fresh sandbox instance and mapping.",
        );
        self.commit.render(
            &mut out,
            "efile_journal_commit_seconds",
            "Time until a message's journal commit is durable.",
        );
        let _ = writeln!(
            out,
            "# HELP efile_queue_depth Accepted messages waiting for a worker.\n# TYPE efile_queue_depth gauge\nefile_queue_depth {}",
            self.queue_depth.load(Ordering::Relaxed)
        );
        out
    }
}
