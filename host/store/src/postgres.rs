//! The PostgreSQL backend, for several hosts on one database.
//!
//! Every host runs the same engine as on SQLite. What makes several of them safe together:
//! - **Filing side by side, appending in turn.** A host has two writer threads (connections),
//!   each filing for a share of the tenants (by the tenant's lock key), and each commits every
//!   write pending at that moment in one transaction (a batch of up to 512). A batch first
//!   takes the advisory locks of the tenants it files for: those another host holds right now
//!   are skipped, and their writes wait for the writer's next batch, which waits for those
//!   locks (so no write is put off twice, and hosts file for different tenants instead of
//!   queueing behind each other's whole batches). Then it files (payloads, citizens,
//!   documents, deliveries); journal entries appended meanwhile get provisional positions
//!   (negative, in a range of the batch's own). Only then does it take the journal's advisory
//!   lock, append all its entries and the Merkle nodes they complete, and rewrite the
//!   provisional positions its rows hold, in one statement; then it commits. The Merkle tree
//!   has one right edge, so appends are serialised, but the serialised part is that statement
//!   and the commit, not the batch's filing. The writers of one process share the tree's
//!   edge in memory; a writer re-reads it (O(log n) rows) only after another process appended.
//!   Operator actions, retention and replays run in an exclusive batch (every lock from the
//!   start), as they are rare.
//! - **Reads in one snapshot.** Each read runs in a `REPEATABLE READ READ ONLY` transaction,
//!   so a citizen file or a `verify` sees one consistent state while other hosts write.
//! - **Schema migrations** are numbered SQL files (`host/store/migrations/postgres/`), applied
//!   at start under their own advisory lock and recorded in `schema_migrations`; a database
//!   migrated by a newer efile-bridge is refused.
//!
//! Each connection's synchronous `postgres` client lives on a thread of its own (it drives its
//! socket with a small runtime that must not run inside the host's async tasks).
//!
//! **TLS**: with `sslmode=require` in the url the connection is encrypted (rustls) and the
//! server's certificate is verified, against the PEM file named by `sslrootcert=FILE` or else
//! against the system's roots; the host name in the url must match the certificate. Without
//! `sslmode=require` the connection is not encrypted (`prefer` does not fall back to TLS here).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use bytes::BytesMut;
use efile_bridge_journal::checkpoint::Signer;
use postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use postgres::{Client, NoTls, Statement};

use crate::StoreError;
use crate::engine::{Positioned, ReadPool, SLOT_BITS, Store, WriteConn, provisional_range, tenant_key};
use crate::sql::{Connection, Db, Dialect, Error, Row, Value, to_postgres};
use efile_bridge_journal::{Entry, Hash};

/// Advisory lock held by a writer's batch transaction: the journal's append lock.
const JOURNAL_LOCK: i64 = 0x6566_696c_655f_6a31; // "efile_j1"
/// Advisory lock over all filing: every batch holds it shared while it files for its tenants,
/// an exclusive batch (operator actions, retention) holds it exclusively.
const FILING_LOCK: i64 = 0x6566_696c_655f_6631; // "efile_f1"
/// The key space of the tenants' advisory locks (`pg_advisory_xact_lock(int, int)`, apart from
/// the single-key locks above).
const TENANT_CLASS: i32 = 0x6566_7431; // "eft1"
/// Advisory lock held while migrating the schema.
const MIGRATION_LOCK: i64 = 0x6566_696c_655f_6d31; // "efile_m1"
const READERS: usize = 4;
/// Writer threads (and connections) per host, each filing for a share of the tenants. Each
/// spends most of its time waiting for round trips, so several keep a host's share of the
/// database busy; more than the tenants in one batch's reach adds nothing.
const WRITERS: usize = 2;
/// Rows fetched per round trip when streaming a large result.
const FETCH: usize = 512;

/// The migrations, in order. A migration is never edited once released; a change is a new file.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "initial", include_str!("../migrations/postgres/0001_initial.sql")),
    (2, "deferred journal positions", include_str!("../migrations/postgres/0002_deferred_positions.sql")),
];

impl Store {
    /// Connects to the PostgreSQL database at `url` (`postgres://user@host:port/db`), migrates
    /// its schema and starts this host's writer. The installation's signing key is read from
    /// `data_dir/keys` as for the embedded store: every host of one installation needs the
    /// same key (the journal refuses a host whose key belongs to another origin).
    pub fn connect(url: &str, data_dir: &Path) -> Result<Self, StoreError> {
        let (url, rootcert) = split_rootcert(url);
        let config: postgres::Config = url
            .parse()
            .map_err(|e| StoreError::Open { path: redact(&url), reason: format!("not a PostgreSQL url: {e}") })?;
        let location = describe(&config);
        let open_err = |reason: String| StoreError::Open { path: location.clone(), reason };
        let target = Target::new(config, rootcert.as_deref()).map_err(open_err)?;
        let signer = Arc::new(Signer::load_or_create(&data_dir.join("keys"))?);
        let writer = PgConn::connect(&target).map_err(|e| open_err(e.to_string()))?;
        writer.client.call(migrate).map_err(|e| open_err(e.to_string()))?;
        let mut writers = vec![Writer(writer)];
        for _ in 1..WRITERS {
            writers.push(Writer(PgConn::connect(&target).map_err(|e| open_err(e.to_string()))?));
        }
        let readers = (0..READERS)
            .map(|_| PgConn::connect(&target).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| open_err(e.to_string()))?;
        let pool = Readers { conns: readers, next: AtomicUsize::new(0) };
        Store::start(writers, Box::new(pool), signer, "postgres", &location)
    }
}

/// Takes `sslrootcert=FILE` (libpq's name; the `postgres` crate does not know it) out of the
/// url's query.
fn split_rootcert(url: &str) -> (String, Option<PathBuf>) {
    let Some((base, query)) = url.split_once('?') else { return (url.to_owned(), None) };
    let mut rootcert = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("sslrootcert=") {
            Some(path) => {
                rootcert = Some(PathBuf::from(path));
                false
            }
            None => true,
        })
        .collect();
    let url = if rest.is_empty() { base.to_owned() } else { format!("{base}?{}", rest.join("&")) };
    (url, rootcert)
}

/// Where to connect and how: the parsed url, and a TLS connector when it asks for TLS.
#[derive(Clone)]
pub(crate) struct Target {
    config: postgres::Config,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
}

impl Target {
    fn new(config: postgres::Config, rootcert: Option<&Path>) -> Result<Self, String> {
        if config.get_ssl_mode() != postgres::config::SslMode::Require {
            if let Some(path) = rootcert {
                return Err(format!("sslrootcert={} is given without sslmode=require", path.display()));
            }
            return Ok(Self { config, tls: None });
        }
        let mut roots = rustls::RootCertStore::empty();
        match rootcert {
            Some(path) => {
                use rustls_pki_types::pem::PemObject as _;
                let certs = rustls_pki_types::CertificateDer::pem_file_iter(path)
                    .and_then(|i| i.collect::<Result<Vec<_>, _>>())
                    .map_err(|e| format!("sslrootcert {}: {e}", path.display()))?;
                let (added, _) = roots.add_parsable_certificates(certs);
                if added == 0 {
                    return Err(format!("sslrootcert {}: no certificate in the file", path.display()));
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    return Err(
                        "sslmode=require: no system root certificates; name the server's CA with sslrootcert=FILE"
                            .into(),
                    );
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("tls: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { config, tls: Some(tokio_postgres_rustls::MakeRustlsConnect::new(tls)) })
    }

    fn connect(&self) -> Result<Client, postgres::Error> {
        match &self.tls {
            None => self.config.connect(NoTls),
            Some(tls) => self.config.connect(tls.clone()),
        }
    }
}

/// `postgres://user@host:port/db` without the password.
fn describe(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "postgres://{}@{host}:{port}/{}",
        config.get_user().unwrap_or(""),
        config.get_dbname().unwrap_or(config.get_user().unwrap_or(""))
    )
}

/// A url as given, with any password replaced.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}{}", &url[..s + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn migrate(client: &mut Client) -> Result<(), Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version    BIGINT PRIMARY KEY,
             name       TEXT NOT NULL,
             applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
         )",
    )?;
    let current: i64 = tx.query_one("SELECT COALESCE(MAX(version), 0) FROM schema_migrations", &[])?.get(0);
    let known = MIGRATIONS.last().map_or(0, |m| m.0);
    if current > known {
        return Err(Error::Value(format!(
            "the database schema is at version {current}, newer than this efile-bridge understands ({known})"
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > current) {
        tx.batch_execute(sql).map_err(|e| Error::Value(format!("migration {version} ({name}): {}", Error::from(e))))?;
        tx.execute("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", &[version, name])?;
        tracing::info!(version, name, "database schema migrated");
    }
    tx.commit()?;
    Ok(())
}

/// A client on a thread of its own. The synchronous `postgres` client drives its connection
/// with a runtime of its own and would panic if called from an async task (as the HTTP
/// handlers and the pipeline sometimes do); on its own thread it never is.
struct ClientThread {
    jobs: mpsc::Sender<Job>,
}

type Job = Box<dyn FnOnce(&mut Client) + Send>;

impl ClientThread {
    fn spawn(target: &Target) -> Result<Self, Error> {
        let (jobs, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready) = mpsc::channel();
        let target = target.clone();
        std::thread::Builder::new()
            .name("efile-postgres".into())
            .spawn(move || {
                let mut client = match target.connect() {
                    Ok(c) => {
                        let _ = ready_tx.send(Ok(()));
                        c
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(Error::from(e)));
                        return;
                    }
                };
                while let Ok(job) = rx.recv() {
                    if client.is_closed() {
                        // The server restarted or failed over: a new session for what follows.
                        match target.connect() {
                            Ok(c) => {
                                client = c;
                                tracing::warn!("reconnected to postgres");
                            }
                            Err(e) => tracing::error!(error = %Error::from(e), "cannot reconnect to postgres"),
                        }
                    }
                    job(&mut client);
                }
            })
            .map_err(|e| Error::Value(format!("cannot start a postgres client thread: {e}")))?;
        ready.recv().map_err(|_| Error::Value("the postgres client thread died".into()))??;
        Ok(Self { jobs })
    }

    /// Runs `f` with the client and waits for its result.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, Error> + Send + 'static,
    ) -> Result<R, Error> {
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |client| {
            let _ = tx.send(f(client));
        });
        self.jobs.send(job).map_err(|_| Error::Value("the postgres client thread is gone".into()))?;
        rx.recv().map_err(|_| Error::Value("the postgres client thread is gone".into()))?
    }
}

/// One connection with its prepared statements.
pub(crate) struct PgConn {
    client: ClientThread,
    /// Prepared statements by their SQLite-style text, with the session they belong to.
    statements: RefCell<HashMap<String, Statement>>,
    cursors: Cell<u64>,
}

impl PgConn {
    fn connect(target: &Target) -> Result<Self, Error> {
        Ok(Self {
            client: ClientThread::spawn(target)?,
            statements: RefCell::new(HashMap::new()),
            cursors: Cell::new(0),
        })
    }

    fn batch(&self, sql: &str) -> Result<(), Error> {
        let sql = sql.to_owned();
        self.client.call(move |c| Ok(c.batch_execute(&sql)?))
    }

    fn statement(&self, sql: &str) -> Result<Statement, Error> {
        if let Some(s) = self.statements.borrow().get(sql) {
            return Ok(s.clone());
        }
        let text = to_postgres(sql);
        let prepared = self.client.call(move |c| {
            // The statement's text names the problem ("could not determine data type of
            // parameter $1"); it holds no personal data (values are parameters).
            c.prepare(&text).map_err(|e| Error::Value(format!("{} in `{text}`", Error::from(e))))
        })?;
        self.statements.borrow_mut().insert(sql.to_owned(), prepared.clone());
        Ok(prepared)
    }

    /// Prepared statements die with their session: after an error that may have been a lost
    /// connection, prepare afresh.
    fn forget_statements(&self) {
        self.statements.borrow_mut().clear();
    }
}

/// Statements that only steer the session go through the simple protocol, unprepared.
fn is_control(sql: &str) -> bool {
    ["SAVEPOINT ", "RELEASE SAVEPOINT ", "ROLLBACK TO SAVEPOINT ", "BEGIN", "COMMIT", "ROLLBACK"]
        .iter()
        .any(|p| sql.starts_with(p))
}

/// A [`Value`] bound to whatever type PostgreSQL inferred for its placeholder.
#[derive(Debug)]
struct Param(Value);

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::BOOL => (*i != 0).to_sql(ty, out),
                Type::FLOAT8 => (*i as f64).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => i.to_string().to_sql(ty, out),
                _ => Err(format!("cannot bind an integer as {ty}").into()),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT8 => f.to_sql(ty, out),
                _ => Err(format!("cannot bind a real as {ty}").into()),
            },
            Value::Text(s) => match *ty {
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => s.as_str().to_sql(ty, out),
                _ => Err(format!("cannot bind text as {ty}").into()),
            },
            Value::Blob(b) => match *ty {
                Type::BYTEA => b.as_slice().to_sql(ty, out),
                _ => Err(format!("cannot bind bytes as {ty}").into()),
            },
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn row_of(r: &postgres::Row) -> Result<Row, Error> {
    let mut values = Vec::with_capacity(r.len());
    for (i, column) in r.columns().iter().enumerate() {
        let v = match *column.type_() {
            Type::INT8 => r.try_get::<_, Option<i64>>(i)?.map(Value::Int),
            Type::INT4 => r.try_get::<_, Option<i32>>(i)?.map(|v| Value::Int(v.into())),
            Type::INT2 => r.try_get::<_, Option<i16>>(i)?.map(|v| Value::Int(v.into())),
            Type::BOOL => r.try_get::<_, Option<bool>>(i)?.map(|v| Value::Int(v.into())),
            Type::FLOAT8 => r.try_get::<_, Option<f64>>(i)?.map(Value::Real),
            Type::FLOAT4 => r.try_get::<_, Option<f32>>(i)?.map(|v| Value::Real(v.into())),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
                r.try_get::<_, Option<String>>(i)?.map(Value::Text)
            }
            Type::BYTEA => r.try_get::<_, Option<Vec<u8>>>(i)?.map(Value::Blob),
            Type::VOID => None,
            ref other => {
                return Err(Error::Value(format!(
                    "column {} has type {other}, which the store does not read",
                    column.name()
                )));
            }
        };
        values.push(v.unwrap_or(Value::Null));
    }
    Ok(Row::new(values))
}

fn bind(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Db for PgConn {
    fn exec(&self, sql: &str, params: Vec<Value>) -> Result<usize, Error> {
        if params.is_empty() && is_control(sql) {
            self.batch(sql)?;
            return Ok(0);
        }
        let stmt = self.statement(sql)?;
        let params: Vec<Param> = params.into_iter().map(Param).collect();
        self.client.call(move |c| Ok(c.execute(&stmt, &bind(&params))? as usize))
    }

    fn fetch(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, Error> {
        let stmt = self.statement(sql)?;
        let params: Vec<Param> = params.into_iter().map(Param).collect();
        self.client.call(move |c| c.query(&stmt, &bind(&params))?.iter().map(row_of).collect())
    }

    fn stream(&self, sql: &str, params: Vec<Value>, f: &mut dyn FnMut(&Row) -> Result<(), Error>) -> Result<(), Error> {
        // A cursor (the read or write transaction is open): rows arrive in slices, and `f` may
        // run other statements on this connection between them.
        let n = self.cursors.get() + 1;
        self.cursors.set(n);
        let name = format!("efile_cursor_{n}");
        let params: Vec<Param> = params.into_iter().map(Param).collect();
        let declare = format!("DECLARE {name} NO SCROLL CURSOR FOR {}", to_postgres(sql));
        self.client.call(move |c| Ok(c.execute(&declare, &bind(&params))?))?;
        let fetch = format!("FETCH {FETCH} FROM {name}");
        loop {
            let query = fetch.clone();
            let rows =
                self.client.call(move |c| c.query(&query, &[])?.iter().map(row_of).collect::<Result<Vec<_>, _>>())?;
            for r in &rows {
                f(r)?;
            }
            if rows.len() < FETCH {
                break;
            }
        }
        self.batch(&format!("CLOSE {name}"))
    }

    fn insert(&self, sql: &str, params: Vec<Value>) -> Result<i64, Error> {
        // One round trip instead of the INSERT and a `lastval()`.
        let rows = self.fetch(&format!("{sql} RETURNING id"), params)?;
        rows.first().ok_or(Error::NoRows)?.get(0)
    }

    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }
}

/// A batch's journal appends in one statement: the entries, the Merkle nodes they complete,
/// and every provisional position its rows hold (`-((token << 20) | k) - 1` for the batch's
/// `k`-th entry, `$12..=$13` the batch's range), rewritten to `base + k`. Only this
/// transaction's rows can hold them (no committed row holds a provisional position, and other
/// transactions' uncommitted rows are invisible); an index range scan over the batch's own
/// range finds them, so the statement costs the same however large the tables grow.
const APPEND_DEFERRED: &str = "
WITH j AS (
    INSERT INTO journal (idx, kind, tenant, at, payload_digest, meta, hash)
    SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::bytea[], $6::text[], $7::bytea[])
), n AS (
    INSERT INTO merkle_nodes (level, idx, hash) SELECT * FROM unnest($8::bigint[], $9::bigint[], $10::bytea[])
), m AS (
    UPDATE messages SET journal_idx = $11 + ((-journal_idx - 1) & 1048575),
        entry_hash = ($7::bytea[])[(((-journal_idx - 1) & 1048575) + 1)::int]
    WHERE journal_idx BETWEEN $12 AND $13
), c AS (
    UPDATE citizens SET created_idx = $11 + ((-created_idx - 1) & 1048575) WHERE created_idx BETWEEN $12 AND $13
), v AS (
    UPDATE document_versions SET journal_idx = $11 + ((-journal_idx - 1) & 1048575)
    WHERE journal_idx BETWEEN $12 AND $13
), r AS (
    UPDATE reviews SET opened_idx = $11 + ((-opened_idx - 1) & 1048575) WHERE opened_idx BETWEEN $12 AND $13
), d AS (
    UPDATE deliveries
    SET created_idx = CASE WHEN created_idx < 0 THEN $11 + ((-created_idx - 1) & 1048575) ELSE created_idx END,
        outcome_idx = CASE WHEN outcome_idx < 0 THEN $11 + ((-outcome_idx - 1) & 1048575) ELSE outcome_idx END
    WHERE created_idx BETWEEN $12 AND $13 OR outcome_idx BETWEEN $12 AND $13
)
SELECT 1";
// APPEND_DEFERRED's mask (1048575) is 2^SLOT_BITS - 1.
const _: () = assert!(SLOT_BITS == 20);

/// The writer's connection.
struct Writer(PgConn);

impl WriteConn for Writer {
    fn db(&self) -> &Connection {
        &self.0
    }

    fn begin(&mut self) -> Result<(), StoreError> {
        Ok(self.0.batch("BEGIN")?)
    }

    fn defers(&self) -> bool {
        true
    }

    fn lock_exclusive(&mut self) -> Result<(), StoreError> {
        Ok(self.0.batch(&format!(
            "SELECT pg_advisory_xact_lock({FILING_LOCK}); SELECT pg_advisory_xact_lock({JOURNAL_LOCK})"
        ))?)
    }

    fn lock_tenants(&mut self, wait: &[&str], attempt: &[&str]) -> Result<Vec<bool>, StoreError> {
        // Waits always in the same order (the filing lock, then tenants by key): two hosts
        // never wait for each other in a circle. Attempts never wait. One round trip.
        let mut keys: Vec<i32> = wait.iter().map(|t| tenant_key(t)).collect();
        keys.sort_unstable();
        keys.dedup();
        let mut sql = format!("SELECT pg_advisory_xact_lock_shared({FILING_LOCK});");
        for key in keys {
            sql.push_str(&format!(" SELECT pg_advisory_xact_lock({TENANT_CLASS}, {key});"));
        }
        if attempt.is_empty() {
            self.0.batch(&sql)?;
            return Ok(Vec::new());
        }
        let tries: Vec<String> =
            attempt.iter().map(|t| format!("pg_try_advisory_xact_lock({TENANT_CLASS}, {})", tenant_key(t))).collect();
        sql.push_str(&format!(" SELECT {}", tries.join(", ")));
        let n = attempt.len();
        let got = self.0.client.call(move |c| {
            // The attempts' row is the last one (the waits answer a row each before it).
            let last = c.simple_query(&sql)?.into_iter().rev().find_map(|m| match m {
                postgres::SimpleQueryMessage::Row(row) if row.len() == n => Some(row),
                _ => None,
            });
            let row = last.ok_or_else(|| Error::Value("the tenants' locks could not be read".into()))?;
            Ok((0..n).map(|i| row.get(i) == Some("t")).collect::<Vec<_>>())
        })?;
        Ok(got)
    }

    fn lock_journal(&mut self) -> Result<u64, StoreError> {
        // Two statements in one round trip; the size is read by the second, whose snapshot is
        // taken after the lock is held (READ COMMITTED), so it sees every earlier append.
        let size = self.0.client.call(|c| {
            let lock =
                format!("SELECT pg_advisory_xact_lock({JOURNAL_LOCK}); SELECT COALESCE(MAX(idx) + 1, 0) FROM journal");
            let mut size = None;
            for message in c.simple_query(&lock)? {
                if let postgres::SimpleQueryMessage::Row(row) = message {
                    size = row.get(0).and_then(|v| v.parse::<u64>().ok());
                }
            }
            size.ok_or_else(|| Error::Value("the journal's size could not be read".into()))
        })?;
        Ok(size)
    }

    fn append_deferred(
        &mut self,
        base: u64,
        token: i64,
        leaves: &[Positioned],
        nodes: &[(u32, u64, Hash)],
    ) -> Result<(), StoreError> {
        let stmt = self.0.statement(APPEND_DEFERRED)?;
        let (lo, hi) = provisional_range(token);
        let text = |f: fn(&Entry) -> &str| leaves.iter().map(|l| f(&l.entry).to_owned()).collect::<Vec<_>>();
        // Owned: the client thread runs the statement.
        let params: Vec<Box<dyn ToSql + Sync + Send>> = vec![
            Box::new(leaves.iter().map(|l| l.entry.index as i64).collect::<Vec<_>>()),
            Box::new(text(|e| e.kind.as_str())),
            Box::new(text(|e| &e.tenant)),
            Box::new(text(|e| &e.at)),
            Box::new(leaves.iter().map(|l| l.entry.payload_digest.to_vec()).collect::<Vec<_>>()),
            Box::new(text(|e| &e.meta)),
            Box::new(leaves.iter().map(|l| l.hash.to_vec()).collect::<Vec<_>>()),
            Box::new(nodes.iter().map(|n| i64::from(n.0)).collect::<Vec<_>>()),
            Box::new(nodes.iter().map(|n| n.1 as i64).collect::<Vec<_>>()),
            Box::new(nodes.iter().map(|n| n.2.to_vec()).collect::<Vec<_>>()),
            Box::new(base as i64),
            Box::new(lo),
            Box::new(hi),
        ];
        self.0.client.call(move |c| {
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
            c.execute(&stmt, &refs)?;
            Ok(())
        })?;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        Ok(self.0.batch("COMMIT")?)
    }

    fn abort(&mut self) {
        let _ = self.0.batch("ROLLBACK");
        self.0.forget_statements();
    }
}

struct Readers {
    conns: Vec<Mutex<PgConn>>,
    next: AtomicUsize,
}

impl Readers {
    fn run(conn: &PgConn, f: &mut dyn FnMut(&Connection) -> Result<(), StoreError>) -> Result<(), StoreError> {
        if let Err(e) = conn.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") {
            conn.forget_statements();
            return Err(e.into());
        }
        let result = f(conn);
        let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
        let ended = conn.batch(end);
        if result.is_err() || ended.is_err() {
            conn.forget_statements();
        }
        result?;
        Ok(ended?)
    }
}

impl ReadPool for Readers {
    fn with(&self, f: &mut dyn FnMut(&Connection) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..self.conns.len() {
            if let Ok(conn) = self.conns[(start + i) % self.conns.len()].try_lock() {
                return Self::run(&conn, f);
            }
        }
        let conn = self.conns[start % self.conns.len()].lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Self::run(&conn, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_in_errors_carry_no_password() {
        assert_eq!(redact("postgres://efile:s3cret@db.example:5432/efile"), "postgres://efile@db.example:5432/efile");
        assert_eq!(redact("postgres://efile@db/efile"), "postgres://efile@db/efile");
        let config: postgres::Config = "postgres://efile:s3cret@db.example:6432/journal".parse().expect("url");
        assert_eq!(describe(&config), "postgres://efile@db.example:6432/journal");
    }

    #[test]
    fn sslrootcert_is_taken_out_of_the_url() {
        let split = |u: &str| split_rootcert(u);
        assert_eq!(split("postgres://db/e"), ("postgres://db/e".into(), None));
        assert_eq!(
            split("postgres://db/e?sslmode=require&sslrootcert=/etc/ca.pem&connect_timeout=5"),
            ("postgres://db/e?sslmode=require&connect_timeout=5".into(), Some(PathBuf::from("/etc/ca.pem")))
        );
        assert_eq!(
            split("postgres://db/e?sslrootcert=ca.pem"),
            ("postgres://db/e".into(), Some(PathBuf::from("ca.pem")))
        );
        let config: postgres::Config = "postgres://db/e?sslmode=require".parse().expect("url");
        let Err(missing) = Target::new(config, Some(Path::new("/nonexistent/ca.pem"))) else { panic!("no file") };
        assert!(missing.contains("/nonexistent/ca.pem"), "{missing}");
    }
}
