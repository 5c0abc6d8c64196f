//! A test-only adapter whose behaviour is chosen by the tenant config key `mode`:
//!
//! - `ok` (default): one record that echoes what the host passed in,
//! - `loop`: spins forever (the CPU budget must stop it),
//! - `alloc`: grows memory without bound (the memory limit must stop it),
//! - `panic`: panics (a trap, reported, the host carries on),
//! - `escape`: tries to read the clock, randomness, environment and file system, and reports
//!   what it saw as metadata (the sandbox must show it nothing that varies),
//! - `remember`: reports whether a previous call left state behind in the instance.

use std::sync::atomic::{AtomicU32, Ordering};

use efile_bridge_sdk::prelude::*;

/// The adapter.
pub struct Probe;

static CALLS: AtomicU32 = AtomicU32::new(0);

impl Adapter for Probe {
    fn describe() -> AdapterInfo {
        AdapterInfo {
            name: "probe".into(),
            version: "0.0.1".into(),
            handles: vec![MessageKind {
                standard: "XMeld".into(),
                version: "25.11a".into(),
                message_type: "0201".into(),
            }],
            config_keys: vec![ConfigKey { name: "mode".into(), description: "what to do".into(), required: false }],
        }
    }

    fn map(info: &MessageInfo, _xml: &str, config: &dyn Config) -> Result<Vec<EfileRecord>, MappingError> {
        let calls_before = CALLS.fetch_add(1, Ordering::SeqCst);
        let mut metadata = vec![
            ("tenant".to_owned(), info.tenant_ags.clone()),
            ("uuid".to_owned(), info.message_uuid.clone()),
            ("received_at".to_owned(), info.received_at.clone()),
            ("journal_index".to_owned(), info.journal_index.to_string()),
        ];
        match config.get("mode").as_deref().unwrap_or("ok") {
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "panic" => panic!("probe asked to panic"),
            "escape" => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                metadata.push(("clock".into(), now.to_string()));
                metadata.push(("env".into(), std::env::vars().count().to_string()));
                metadata.push((
                    "root".into(),
                    std::fs::read_dir("/").map(|_| "readable".to_owned()).unwrap_or_else(|e| e.kind().to_string()),
                ));
                let mut h = std::collections::hash_map::RandomState::new();
                use std::hash::BuildHasher as _;
                metadata.push(("hash_seed".into(), h.hash_one(1u8).to_string()));
                h = std::collections::hash_map::RandomState::new();
                metadata.push(("hash_seed2".into(), h.hash_one(1u8).to_string()));
            }
            "remember" => metadata.push(("calls_before".into(), calls_before.to_string())),
            _ => {}
        }
        Ok(vec![EfileRecord {
            citizen: CitizenRef {
                identifiers: vec![Identifier {
                    kind: IdentifierKind::RegisterKey,
                    value: format!("probe-{}", info.message_uuid),
                }],
                display_name: "Probe".into(),
                family_name: "Probe".into(),
                given_names: String::new(),
                birth_date: None,
            },
            file_plan_code: "00.00".into(),
            file_subject: "Probe".into(),
            case_type: "probe".into(),
            case_ref: None,
            document_type: DocumentType::Other("probe".into()),
            title: "probe".into(),
            event_date: None,
            retention: Retention { deadline: None, rule: "test".into() },
            confidentiality: Confidentiality::Normal,
            metadata,
            attachments: Vec::new(),
        }])
    }
}

efile_bridge_sdk::export_adapter!(Probe);
