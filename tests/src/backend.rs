//! Which storage backend the tests run on, and raw access to it for the tests that tamper.
//!
//! `EFILE_TEST_BACKEND=postgres` runs every host a test starts on PostgreSQL instead of the
//! embedded SQLite store: each call to [`storage`] creates a fresh database named
//! `efile_t_<pid>_<n>` on the server in `EFILE_TEST_POSTGRES` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`, trust authentication). Without a reachable
//! server that is a failure, not a skip: the suite says how to provide one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

/// The backend of this test run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

/// `EFILE_TEST_BACKEND` (`sqlite`, the default, or `postgres`).
pub fn backend() -> Backend {
    match std::env::var("EFILE_TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres,
        Ok("sqlite") | Err(_) => Backend::Sqlite,
        Ok(other) => panic!("EFILE_TEST_BACKEND=`{other}`: expected `sqlite` or `postgres`"),
    }
}

/// The server the PostgreSQL run uses (its maintenance database).
pub fn postgres_admin_url() -> String {
    std::env::var("EFILE_TEST_POSTGRES").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// Runs `f` on a thread outside any async runtime: the synchronous `postgres` client panics
/// inside one, and the tests call these helpers from async tests.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    std::thread::scope(|s| s.spawn(f).join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
}

fn admin_client() -> postgres::Client {
    let url = postgres_admin_url();
    postgres::Client::connect(&url, postgres::NoTls).unwrap_or_else(|e| {
        panic!(
            "EFILE_TEST_BACKEND=postgres needs a PostgreSQL server at {url} (set EFILE_TEST_POSTGRES to another \
             url; the user must be allowed to CREATE DATABASE): {e}"
        )
    })
}

/// A new, empty PostgreSQL database; its url.
pub fn fresh_postgres_database() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!("efile_t_{}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed));
    off_runtime(|| {
        let mut admin = admin_client();
        static SWEPT: std::sync::Once = std::sync::Once::new();
        SWEPT.call_once(|| drop_databases_of_finished_runs(&mut admin));
        admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name}")).expect("drop old test database");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create test database");
    });
    let base = postgres_admin_url();
    let cut = base.rfind('/').filter(|i| *i > "postgres://".len()).unwrap_or(base.len());
    format!("{}/{name}", &base[..cut])
}

/// Test databases of test processes that are no longer running (`efile_t_<pid>_<n>`).
fn drop_databases_of_finished_runs(admin: &mut postgres::Client) {
    let Ok(rows) = admin.query("SELECT datname FROM pg_database WHERE datname LIKE 'efile\\_t\\_%'", &[]) else {
        return;
    };
    for row in rows {
        let name: String = row.get(0);
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|pid| pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists()) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

/// The `storage` setting for a host with this data folder: `None` (embedded, under the data
/// folder) or the url of a PostgreSQL database, fresh for a new folder and the same again for
/// a folder seen before (a test that restarts a host finds its data).
pub fn storage_for(data_dir: &Path) -> Option<String> {
    static SEEN: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    match backend() {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let mut seen = SEEN.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
            Some(seen.entry(data_dir.to_owned()).or_insert_with(fresh_postgres_database).clone())
        }
    }
}

/// The store of a data folder, opened directly (no host).
pub fn open_store(data_dir: &Path) -> Result<efile_bridge_store::Store, efile_bridge_store::StoreError> {
    efile_bridge_store::open(storage_for(data_dir).as_deref(), data_dir)
}

/// Runs SQL statements directly on a data folder's database, behind the store's back (for
/// tests that tamper with stored data).
pub fn raw_execute(data_dir: &Path, sql: &str) -> Result<(), String> {
    match storage_for(data_dir).as_deref() {
        Some(url) => off_runtime(|| {
            let mut c = postgres::Client::connect(url, postgres::NoTls).map_err(|e| e.to_string())?;
            c.batch_execute(sql).map_err(|e| e.as_db_error().map_or_else(|| e.to_string(), |d| d.message().to_owned()))
        }),
        None => {
            let c = rusqlite::Connection::open(data_dir.join("efile.sqlite3")).map_err(|e| e.to_string())?;
            c.execute_batch(sql).map_err(|e| e.to_string())
        }
    }
}

/// One integer from a query run directly on a data folder's database.
pub fn raw_query_i64(data_dir: &Path, sql: &str) -> i64 {
    match storage_for(data_dir).as_deref() {
        Some(url) => query_i64_at(url, sql),
        None => {
            let c = rusqlite::Connection::open(data_dir.join("efile.sqlite3")).expect("sqlite");
            c.query_row(sql, [], |r| r.get(0)).expect("query")
        }
    }
}

/// One integer from a query run directly on the PostgreSQL database at `url`.
pub fn query_i64_at(url: &str, sql: &str) -> i64 {
    off_runtime(|| {
        let mut c = postgres::Client::connect(url, postgres::NoTls).expect("postgres");
        c.query_one(sql, &[]).expect("query").get::<_, i64>(0)
    })
}

/// A journal entry as stored.
#[derive(Debug, Clone)]
pub struct RawEntry {
    /// Index.
    pub idx: i64,
    /// Kind (`message-accepted`, ...).
    pub kind: String,
    /// Tenant.
    pub tenant: String,
    /// Time (RFC 3339).
    pub at: String,
    /// Payload digest.
    pub digest: Vec<u8>,
    /// Meta (JSON text).
    pub meta: String,
}

impl RawEntry {
    /// A field of the meta JSON as text (`""` if absent).
    pub fn meta_str(&self, field: &str) -> String {
        let meta: serde_json::Value = serde_json::from_str(&self.meta).unwrap_or_default();
        meta[field].as_str().unwrap_or_default().to_owned()
    }
}

/// Every journal entry of a data folder's database, read directly, in order.
pub fn raw_journal(data_dir: &Path) -> Vec<RawEntry> {
    match storage_for(data_dir) {
        Some(url) => raw_journal_at(&url),
        None => raw_journal_of(None, data_dir),
    }
}

/// Every journal entry of the PostgreSQL database at `url`, in order.
pub fn raw_journal_at(url: &str) -> Vec<RawEntry> {
    raw_journal_of(Some(url), Path::new(""))
}

fn raw_journal_of(url: Option<&str>, data_dir: &Path) -> Vec<RawEntry> {
    let sql = "SELECT idx, kind, tenant, at, payload_digest, meta FROM journal ORDER BY idx";
    match url {
        Some(url) => off_runtime(|| {
            let mut c = postgres::Client::connect(url, postgres::NoTls).expect("postgres");
            c.query(sql, &[])
                .expect("journal")
                .iter()
                .map(|r| RawEntry {
                    idx: r.get(0),
                    kind: r.get(1),
                    tenant: r.get(2),
                    at: r.get(3),
                    digest: r.get(4),
                    meta: r.get(5),
                })
                .collect()
        }),
        None => {
            let c = rusqlite::Connection::open(data_dir.join("efile.sqlite3")).expect("sqlite");
            let mut stmt = c.prepare(sql).expect("sql");
            stmt.query_map([], |r| {
                Ok(RawEntry {
                    idx: r.get(0)?,
                    kind: r.get(1)?,
                    tenant: r.get(2)?,
                    at: r.get(3)?,
                    digest: r.get(4)?,
                    meta: r.get(5)?,
                })
            })
            .expect("journal")
            .collect::<Result<_, _>>()
            .expect("rows")
        }
    }
}

/// SQLite's blob literals (`X'00ff'`) in PostgreSQL's spelling (`'\x00ff'::bytea`) when the
/// run is on PostgreSQL, so one tampering statement serves both.
pub fn portable_sql(sql: &str) -> String {
    if backend() == Backend::Sqlite {
        return sql.to_owned();
    }
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(i) = rest.find("X'") {
        let hex_start = i + 2;
        let Some(len) = rest[hex_start..].find('\'') else { break };
        out.push_str(&rest[..i]);
        out.push_str(&format!("'\\x{}'::bytea", &rest[hex_start..hex_start + len]));
        rest = &rest[hex_start + len + 1..];
    }
    out.push_str(rest);
    out
}
