//! A test-only adapter whose behaviour is chosen by the tenant config key `mode` or, without
//! it, by a comment `<!-- probe: MODE -->` in the message (so one tenant can send several):
//!
//! - `ok` (default): one record that echoes what the host passed in,
//! - `loop`: spins forever (the CPU budget must stop it),
//! - `alloc`: grows memory without bound (the memory limit must stop it),
//! - `recurse`: recurses without bound (the wasm stack limit must stop it),
//! - `panic`: panics (a trap whose message the host reports; the host carries on),
//! - `records`: returns `count` records (default 50 000), each nearly empty,
//! - `string`: returns one record whose title is `bytes` long (default 20 MiB),
//! - `attachment`: returns one record with an attachment of `bytes` (default 20 MiB),
//! - `files`: reads `/etc/passwd`,
//! - `sockets`: opens a TCP connection to 127.0.0.1:9,
//! - `clock`: reads the wall clock,
//! - `sleep`: sleeps for ten seconds (a sleeping adapter would hold a worker outside the
//!   CPU budget),
//! - `escape`: tries the clock, randomness, environment and file system in turn and reports
//!   what it saw as metadata (the sandbox stops it at the first thing it does not grant),
//! - `env`: reports what it sees of environment, arguments and randomness, which the sandbox
//!   grants but leaves empty or fixed,
//! - `slow`: legal but slow work, `rounds` steps of arithmetic (default about 150 ms here),
//!   reported as metadata, so a budget can be shown to let it finish or to stop it,
//! - `remember`: reports whether a previous call left state behind in the instance.
//!
//! The sizes are config keys so that a test can trip a limit it chose, not one that happens
//! to be the default.

use std::sync::atomic::{AtomicU32, Ordering};

use efile_bridge_sdk::prelude::*;

/// The adapter.
pub struct Probe;

static CALLS: AtomicU32 = AtomicU32::new(0);

/// About 150 ms of `slow` work on the machine the tests were written on (2 cores, x86-64).
const DEFAULT_ROUNDS: u64 = 100_000_000;

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
            config_keys: vec![
                ConfigKey { name: "mode".into(), description: "what to do".into(), required: false },
                ConfigKey { name: "count".into(), description: "records for `records`".into(), required: false },
                ConfigKey {
                    name: "bytes".into(),
                    description: "size for `string` and `attachment`".into(),
                    required: false,
                },
                ConfigKey { name: "rounds".into(), description: "work for `slow`".into(), required: false },
            ],
        }
    }

    fn map(info: &MessageInfo, xml: &str, config: &dyn Config) -> Result<Vec<EfileRecord>, MappingError> {
        let calls_before = CALLS.fetch_add(1, Ordering::SeqCst);
        let number = |key: &str, default: u64| config.get(key).and_then(|v| v.parse().ok()).unwrap_or(default);
        let mut metadata = vec![
            ("tenant".to_owned(), info.tenant_ags.clone()),
            ("uuid".to_owned(), info.message_uuid.clone()),
            ("received_at".to_owned(), info.received_at.clone()),
            ("journal_index".to_owned(), info.journal_index.to_string()),
        ];
        let mut record = echo(info);
        let mode = config.get("mode").or_else(|| mode_in(xml));
        match mode.as_deref().unwrap_or("ok") {
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
            "recurse" => {
                // The depth comes from the input, so the compiler cannot bound or fold it.
                let depth = std::hint::black_box(u64::MAX - xml.len() as u64);
                metadata.push(("depth".into(), descend(depth).to_string()));
            }
            "panic" => panic!("probe asked to panic"),
            "records" => {
                // Empty strings and lists allocate nothing, so the guest can build many more
                // records than its memory limit would allow with content.
                let empty = |_| EfileRecord {
                    citizen: CitizenRef {
                        identifiers: Vec::new(),
                        display_name: String::new(),
                        family_name: String::new(),
                        given_names: String::new(),
                        birth_date: None,
                    },
                    file_plan_code: String::new(),
                    file_subject: String::new(),
                    case_type: String::new(),
                    case_ref: None,
                    document_type: DocumentType::Anmeldung,
                    title: String::new(),
                    event_date: None,
                    retention: Retention { deadline: None, rule: String::new() },
                    confidentiality: Confidentiality::Normal,
                    metadata: Vec::new(),
                    attachments: Vec::new(),
                };
                return Ok((0..number("count", 50_000)).map(empty).collect());
            }
            "string" => record.title = "x".repeat(number("bytes", 20 << 20) as usize),
            "attachment" => record.attachments.push(Attachment {
                name: "big.bin".into(),
                media_type: "application/octet-stream".into(),
                data: vec![7u8; number("bytes", 20 << 20) as usize],
            }),
            "files" => {
                let seen = std::fs::read("/etc/passwd").map(|b| b.len().to_string()).unwrap_or_else(|e| e.to_string());
                metadata.push(("passwd".into(), seen));
            }
            "sockets" => {
                let seen = std::net::TcpStream::connect(("127.0.0.1", 9))
                    .map(|_| "connected".to_owned())
                    .unwrap_or_else(|e| e.to_string());
                metadata.push(("socket".into(), seen));
            }
            "clock" => metadata.push(("clock".into(), unix_seconds().to_string())),
            "sleep" => {
                std::thread::sleep(std::time::Duration::from_secs(10));
                metadata.push(("slept".into(), "10 s".into()));
            }
            "escape" => {
                metadata.push(("clock".into(), unix_seconds().to_string()));
                metadata.extend(granted());
                metadata.push((
                    "root".into(),
                    std::fs::read_dir("/").map(|_| "readable".to_owned()).unwrap_or_else(|e| e.kind().to_string()),
                ));
            }
            "env" => metadata.extend(granted()),
            "slow" => {
                let rounds = std::hint::black_box(number("rounds", DEFAULT_ROUNDS));
                let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
                for i in 0..rounds {
                    x = (x ^ i).wrapping_mul(0xbf58_476d_1ce4_e5b9).rotate_left(31);
                }
                metadata.push(("work".into(), x.to_string()));
            }
            "remember" => metadata.push(("calls_before".into(), calls_before.to_string())),
            _ => {}
        }
        record.metadata = metadata;
        Ok(vec![record])
    }
}

/// The mode a `<!-- probe: MODE -->` comment in the message asks for.
fn mode_in(xml: &str) -> Option<String> {
    let start = xml.find("<!-- probe: ")? + "<!-- probe: ".len();
    let end = start + xml[start..].find(" -->")?;
    Some(xml[start..end].to_owned())
}

/// One record that names the message; `metadata` is filled in by the caller.
fn echo(info: &MessageInfo) -> EfileRecord {
    EfileRecord {
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
        metadata: Vec::new(),
        attachments: Vec::new(),
    }
}

/// Recursion whose result depends on every level, so it is neither a loop nor a tail call.
#[inline(never)]
fn descend(depth: u64) -> u64 {
    if depth == 0 {
        return 1;
    }
    let below = descend(depth - 1);
    below ^ (below << 1) ^ depth
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What the sandbox grants but keeps empty or fixed: environment, arguments, randomness.
fn granted() -> Vec<(String, String)> {
    use std::hash::BuildHasher as _;
    vec![
        ("env".into(), std::env::vars_os().count().to_string()),
        ("args".into(), std::env::args_os().count().to_string()),
        ("hash_seed".into(), std::collections::hash_map::RandomState::new().hash_one(1u8).to_string()),
        ("hash_seed2".into(), std::collections::hash_map::RandomState::new().hash_one(1u8).to_string()),
    ]
}

efile_bridge_sdk::export_adapter!(Probe);
