//! Shadow runs: what a candidate adapter would make of a tenant's messages, compared with what
//! was filed, without storing anything.
//!
//! The baseline is the record content the journal holds for each message (what the adapter in
//! force produced then), so the report answers the operator's question directly: "if I switch,
//! what changes in the citizens' files?". Each message is `identical`, `differs` (with every
//! changed field as a JSON path, old and new value), `candidate-failed` (the candidate's
//! error), `fixed` (the message had failed, the candidate maps it) or `both-failed`.

use std::sync::Arc;

use efile_bridge_runtime::Runtime;
use efile_bridge_store::{MessageState, Storage};
use serde::Serialize;

use crate::Config;

/// One changed field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// JSON path, e.g. `[0].retention.deadline`.
    pub path: String,
    /// Value filed (JSON), absent if the candidate added it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub filed: Option<String>,
    /// Value the candidate produces (JSON), absent if it dropped it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidate: Option<String>,
}

/// One message of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowEntry {
    /// Message UUID.
    pub message_uuid: String,
    /// Message type code.
    pub message_type: String,
    /// The adapter that filed it (`name@version`).
    pub filed_by: Option<String>,
    /// `identical`, `differs`, `candidate-failed`, `fixed`, `both-failed`.
    pub outcome: &'static str,
    /// The differences.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// The candidate's error.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A shadow run's report.
#[derive(Debug, Clone, Serialize)]
pub struct ShadowReport {
    /// Tenant.
    pub tenant: String,
    /// `name@version` of the candidate.
    pub candidate: String,
    /// Its content hash.
    pub candidate_hash: String,
    /// Per message.
    pub entries: Vec<ShadowEntry>,
}

impl ShadowReport {
    /// How many messages had `outcome`.
    pub fn count(&self, outcome: &str) -> usize {
        self.entries.iter().filter(|e| e.outcome == outcome).count()
    }
}

/// Every difference between two JSON values, as paths.
pub fn diff(filed: &serde_json::Value, candidate: &serde_json::Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk("", Some(filed), Some(candidate), &mut out);
    out
}

fn walk(path: &str, a: Option<&serde_json::Value>, b: Option<&serde_json::Value>, out: &mut Vec<Change>) {
    use serde_json::Value;
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                walk(&p, x.get(k), y.get(k), out);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) => {
            for i in 0..x.len().max(y.len()) {
                walk(&format!("{path}[{i}]"), x.get(i), y.get(i), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(Change {
            path: if path.is_empty() { "$".into() } else { path.to_owned() },
            filed: a.map(Value::to_string),
            candidate: b.map(Value::to_string),
        }),
    }
}

type Mapped = Result<Vec<efile_bridge_model::EfileRecord>, efile_bridge_runtime::SandboxError>;

/// Compares a candidate's output for one message with what was filed.
pub(crate) fn compare(m: &efile_bridge_store::JournaledMessage, result: &Mapped) -> ShadowEntry {
    let filed = match m.state {
        MessageState::Failed => None,
        _ => Some(m.records.as_slice()),
    };
    let by = m.adapter.as_ref().map(|a| format!("{}@{}", a.name, a.version));
    compare_records(&m.info, filed, by, result)
}

/// Compares `candidate` with `filed` (`None`: the filing adapter failed).
pub(crate) fn compare_records(
    info: &efile_bridge_model::MessageInfo,
    filed: Option<&[efile_bridge_model::EfileRecord]>,
    filed_by: Option<String>,
    candidate: &Mapped,
) -> ShadowEntry {
    let (outcome, changes, error) = match (filed, candidate) {
        (None, Ok(_)) => ("fixed", Vec::new(), None),
        (None, Err(e)) => ("both-failed", Vec::new(), Some(e.to_string())),
        (_, Err(e)) => ("candidate-failed", Vec::new(), Some(e.to_string())),
        (Some(filed), Ok(records)) => {
            let filed = serde_json::to_value(filed).unwrap_or_default();
            let new = serde_json::to_value(records).unwrap_or_default();
            let changes = diff(&filed, &new);
            (if changes.is_empty() { "identical" } else { "differs" }, changes, None)
        }
    };
    ShadowEntry {
        message_uuid: info.message_uuid.clone(),
        message_type: info.message_type.clone(),
        filed_by,
        outcome,
        changes,
        error,
    }
}

/// Runs installed `name@version` on the tenant's last `last` messages (of `message_type`).
#[allow(clippy::too_many_arguments, reason = "the operator's question, spelled out")]
pub fn run(
    config: &Config,
    runtime: &Runtime,
    store: &dyn Storage,
    tenant: &str,
    name: &str,
    version: &str,
    last: u32,
    message_type: Option<&str>,
) -> Result<ShadowReport, String> {
    let t =
        config.tenants.iter().find(|t| t.ags == tenant).ok_or_else(|| format!("tenant {tenant} is not configured"))?;
    let path = crate::adapters::component_path(&config.data_dir, name, version);
    let bytes =
        std::fs::read(&path).map_err(|e| format!("{name}@{version} is not installed ({}: {e})", path.display()))?;
    let candidate = runtime.load(&bytes).map_err(|e| format!("{name}@{version}: {e}"))?;
    let limits = config.sandbox.for_tenant(&t.sandbox).to_limits();
    let tenant_config = Arc::new(t.config.clone());
    let query = efile_bridge_store::MessageQuery {
        message_type: message_type.map(str::to_owned),
        limit: last,
        newest: true,
        ..efile_bridge_store::MessageQuery::all(tenant)
    };
    let messages = store.journaled_messages(&query).map_err(|e| e.to_string())?;
    let handles =
        |kind: &efile_bridge_model::MessageInfo| {
            candidate.info().handles.iter().any(|h| {
                h.standard == kind.standard && h.version == kind.version && h.message_type == kind.message_type
            })
        };
    let mut entries = Vec::new();
    for m in messages.into_iter().filter(|m| handles(&m.info)) {
        let result = runtime.map(&candidate, tenant_config.clone(), &limits, &m.info, &m.body);
        entries.push(compare(&m, &result));
    }
    Ok(ShadowReport {
        tenant: tenant.into(),
        candidate: format!("{name}@{version}"),
        candidate_hash: candidate.content_hash().to_owned(),
        entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_every_changed_added_and_dropped_field() {
        let a = serde_json::json!([{"retention": {"deadline": "2031-12-31", "rule": "x"}, "title": "A"}]);
        let b = serde_json::json!([{"retention": {"deadline": "2032-12-31", "rule": "x"}, "extra": 1}, {"n": 2}]);
        let paths: Vec<String> = diff(&a, &b).into_iter().map(|c| c.path).collect();
        assert_eq!(paths, ["[0].extra", "[0].retention.deadline", "[0].title", "[1]"]);
        assert!(diff(&a, &a).is_empty());
    }
}
