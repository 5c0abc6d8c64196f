//! The SQL the store's logic is written in, once, for both backends.
//!
//! The logic (`engine`) talks to a [`Db`]: run a statement with [`Value`] parameters, get
//! [`Row`]s back. SQLite and PostgreSQL each implement it; the PostgreSQL side translates the
//! few differences (`?N` placeholders become `$N`). The surface copies rusqlite's
//! (`prepare_cached(..)?.query_row(params![..], |r| r.get(0)).optional()?`) so the logic
//! reads like ordinary rusqlite code, while the statements themselves stay in the common
//! subset of the two dialects: `INSERT .. ON CONFLICT`, no `INSERT OR ..`, `CAST(.. AS BIGINT)`
//! around aggregates PostgreSQL would widen to `numeric`.

use std::fmt;

/// A failure of the SQL layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// `query_row` found no row.
    #[error("query returned no rows")]
    NoRows,
    /// A column holds another type than the code reads.
    #[error("column {column}: expected {expected}, found {found}")]
    Type {
        /// Column position.
        column: usize,
        /// What the code wanted.
        expected: &'static str,
        /// What the row held.
        found: &'static str,
    },
    /// A column index past the row's end.
    #[error("no column {0} in the row")]
    Column(usize),
    /// SQLite failed.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL failed.
    #[error("postgres: {}", postgres_message(.0))]
    Postgres(#[from] postgres::Error),
    /// A value the database cannot take or give.
    #[error("{0}")]
    Value(String),
}

/// PostgreSQL's own message (`ERROR: ...: detail`), not just "db error".
fn postgres_message(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("{}: {detail}", db.message()),
            None => db.message().to_owned(),
        },
        None => {
            // The cause (a TLS handshake's "invalid peer certificate", a refused connection)
            // is where the useful part is.
            let mut out = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                let text = s.to_string();
                if !out.contains(&text) {
                    out = format!("{out}: {text}");
                }
                source = s.source();
            }
            out
        }
    }
}

/// A value bound to a statement or read from a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (SQLite INTEGER, PostgreSQL BIGINT/INTEGER/SMALLINT/BOOLEAN).
    Int(i64),
    /// A float.
    Real(f64),
    /// Text.
    Text(String),
    /// Bytes (SQLite BLOB, PostgreSQL BYTEA).
    Blob(Vec<u8>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Int(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "bytes",
        }
    }
}

/// Something that can be bound as a parameter.
pub trait ToValue {
    /// The value bound.
    fn to_value(&self) -> Value;
}

macro_rules! int_to_value {
    ($($t:ty),*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> Value {
                Value::Int(i64::try_from(*self).unwrap_or(i64::MAX))
            }
        }
    )*};
}
int_to_value!(i64, i32, u32, u64, usize, u16, u8);

impl ToValue for bool {
    fn to_value(&self) -> Value {
        Value::Int(i64::from(*self))
    }
}
impl ToValue for f64 {
    fn to_value(&self) -> Value {
        Value::Real(*self)
    }
}
impl ToValue for str {
    fn to_value(&self) -> Value {
        Value::Text(self.to_owned())
    }
}
impl ToValue for String {
    fn to_value(&self) -> Value {
        Value::Text(self.clone())
    }
}
impl ToValue for [u8] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToValue for Vec<u8> {
    fn to_value(&self) -> Value {
        Value::Blob(self.clone())
    }
}
impl<const N: usize> ToValue for [u8; N] {
    fn to_value(&self) -> Value {
        Value::Blob(self.to_vec())
    }
}
impl ToValue for Value {
    fn to_value(&self) -> Value {
        self.clone()
    }
}
impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value {
        (**self).to_value()
    }
}
impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

/// A statement's parameters: `params![a, b]`, `[x]`, `[]` or `()`.
pub trait Params {
    /// The values, in placeholder order.
    fn into_values(self) -> Vec<Value>;
}

impl Params for &[&dyn ToValue] {
    fn into_values(self) -> Vec<Value> {
        self.iter().map(|v| v.to_value()).collect()
    }
}
impl<T: ToValue, const N: usize> Params for [T; N] {
    fn into_values(self) -> Vec<Value> {
        self.iter().map(ToValue::to_value).collect()
    }
}
impl Params for () {
    fn into_values(self) -> Vec<Value> {
        Vec::new()
    }
}
impl Params for Vec<Value> {
    fn into_values(self) -> Vec<Value> {
        self
    }
}

/// `params![a, b, c]`: parameters of mixed types.
macro_rules! params {
    () => { &[] as &[&dyn $crate::sql::ToValue] };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::sql::ToValue),+] as &[&dyn $crate::sql::ToValue] };
}
pub(crate) use params;

/// Something a column can be read as.
pub trait FromValue: Sized {
    /// Converts the column's value.
    fn from_value(v: &Value, column: usize) -> Result<Self, Error>;
}

fn mismatch<T>(v: &Value, column: usize, expected: &'static str) -> Result<T, Error> {
    Err(Error::Type { column, expected, found: v.type_name() })
}

macro_rules! int_from_value {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(v: &Value, column: usize) -> Result<Self, Error> {
                match v {
                    Value::Int(i) => <$t>::try_from(*i).map_err(|_| Error::Value(format!(
                        "column {column}: {i} does not fit {}", stringify!($t)
                    ))),
                    _ => mismatch(v, column, "integer"),
                }
            }
        }
    )*};
}
int_from_value!(i64, i32, u32, u64, usize);

impl FromValue for bool {
    fn from_value(v: &Value, column: usize) -> Result<Self, Error> {
        match v {
            Value::Int(i) => Ok(*i != 0),
            _ => mismatch(v, column, "boolean"),
        }
    }
}
impl FromValue for f64 {
    fn from_value(v: &Value, column: usize) -> Result<Self, Error> {
        match v {
            Value::Real(f) => Ok(*f),
            Value::Int(i) => Ok(*i as f64),
            _ => mismatch(v, column, "real"),
        }
    }
}
impl FromValue for String {
    fn from_value(v: &Value, column: usize) -> Result<Self, Error> {
        match v {
            Value::Text(s) => Ok(s.clone()),
            _ => mismatch(v, column, "text"),
        }
    }
}
impl FromValue for Vec<u8> {
    fn from_value(v: &Value, column: usize) -> Result<Self, Error> {
        match v {
            Value::Blob(b) => Ok(b.clone()),
            Value::Text(s) => Ok(s.as_bytes().to_vec()),
            _ => mismatch(v, column, "bytes"),
        }
    }
}
impl FromValue for Value {
    fn from_value(v: &Value, _: usize) -> Result<Self, Error> {
        Ok(v.clone())
    }
}
impl<T: FromValue> FromValue for Option<T> {
    fn from_value(v: &Value, column: usize) -> Result<Self, Error> {
        match v {
            Value::Null => Ok(None),
            _ => T::from_value(v, column).map(Some),
        }
    }
}

/// A column position (rusqlite's `r.get::<_, T>(i)` shape).
pub trait RowIndex {
    /// The position.
    fn index(self) -> usize;
}
impl RowIndex for usize {
    fn index(self) -> usize {
        self
    }
}

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    values: Vec<Value>,
}

impl Row {
    /// A row of these values.
    pub fn new(values: Vec<Value>) -> Self {
        Self { values }
    }

    /// Column `i` as `T`.
    pub fn get<I: RowIndex, T: FromValue>(&self, i: I) -> Result<T, Error> {
        let i = i.index();
        let v = self.values.get(i).ok_or(Error::Column(i))?;
        T::from_value(v, i)
    }
}

/// Which SQL dialect a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite 3.
    Sqlite,
    /// PostgreSQL 13 or newer.
    Postgres,
}

/// A connection (or transaction) the logic runs statements on.
pub trait Db {
    /// Runs a statement that returns no rows; the number of rows changed.
    fn exec(&self, sql: &str, params: Vec<Value>) -> Result<usize, Error>;
    /// Runs a query and returns every row.
    fn fetch(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, Error>;
    /// Runs a query and hands its rows to `f` one by one, without holding them all in memory;
    /// `f` may run other statements on this connection.
    fn stream(&self, sql: &str, params: Vec<Value>, f: &mut dyn FnMut(&Row) -> Result<(), Error>) -> Result<(), Error>;
    /// Runs an `INSERT` into a table with an `id` key and returns the new row's id.
    fn insert(&self, sql: &str, params: Vec<Value>) -> Result<i64, Error>;
    /// The dialect, for the rare statement that must differ.
    fn dialect(&self) -> Dialect;
}

/// What the logic names a connection: `&Connection` is `&dyn Db`.
pub type Connection = dyn Db;

impl<'c> dyn Db + 'c {
    /// A statement (both backends cache prepared statements by their text).
    pub fn prepare_cached<'a>(&'a self, sql: &str) -> Result<Stmt<'a, 'c>, Error> {
        Ok(Stmt { db: self, sql: sql.to_owned() })
    }

    /// A statement.
    pub fn prepare<'a>(&'a self, sql: &str) -> Result<Stmt<'a, 'c>, Error> {
        self.prepare_cached(sql)
    }

    /// Runs a statement; the number of rows changed.
    pub fn execute(&self, sql: &str, params: impl Params) -> Result<usize, Error> {
        self.exec(sql, params.into_values())
    }

    /// The first row of a query, mapped by `f`; [`Error::NoRows`] if there is none.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        f: impl FnOnce(&Row) -> Result<T, Error>,
    ) -> Result<T, Error> {
        self.prepare(sql)?.query_row(params, f)
    }
}

/// A statement ready to run.
pub struct Stmt<'a, 'c> {
    db: &'a (dyn Db + 'c),
    sql: String,
}

impl fmt::Debug for Stmt<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stmt").field("sql", &self.sql).finish_non_exhaustive()
    }
}

impl Stmt<'_, '_> {
    /// Runs it; the number of rows changed.
    pub fn execute(&mut self, params: impl Params) -> Result<usize, Error> {
        self.db.exec(&self.sql, params.into_values())
    }

    /// Runs an `INSERT` and returns the new row's `id`.
    pub fn insert(&mut self, params: impl Params) -> Result<i64, Error> {
        self.db.insert(&self.sql, params.into_values())
    }

    /// The first row, mapped by `f`; [`Error::NoRows`] if there is none.
    pub fn query_row<T>(&mut self, params: impl Params, f: impl FnOnce(&Row) -> Result<T, Error>) -> Result<T, Error> {
        let rows = self.db.fetch(&self.sql, params.into_values())?;
        rows.first().map_or(Err(Error::NoRows), f)
    }

    /// Every row, mapped by `f` (collect it: `.collect::<Result<Vec<_>, _>>()`).
    pub fn query_map<T>(
        &mut self,
        params: impl Params,
        mut f: impl FnMut(&Row) -> Result<T, Error>,
    ) -> Result<std::vec::IntoIter<Result<T, Error>>, Error> {
        let rows = self.db.fetch(&self.sql, params.into_values())?;
        Ok(rows.iter().map(&mut f).collect::<Vec<_>>().into_iter())
    }

    /// Hands every row to `f` as it is read; the first error (from the database or from `f`)
    /// stops the query and is returned.
    pub fn for_each<E: From<Error>>(
        &mut self,
        params: impl Params,
        mut f: impl FnMut(&Row) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut failed: Option<E> = None;
        let result = self.db.stream(&self.sql, params.into_values(), &mut |row| match f(row) {
            Ok(()) => Ok(()),
            Err(e) => {
                failed = Some(e);
                Err(Error::Value("stopped".into()))
            }
        });
        match (failed, result) {
            (Some(e), _) => Err(e),
            (None, r) => r.map_err(E::from),
        }
    }
}

/// rusqlite's `.optional()`: no row is `None`, not an error.
pub trait OptionalExtension<T> {
    /// `Ok(None)` for [`Error::NoRows`].
    fn optional(self) -> Result<Option<T>, Error>;
}

impl<T> OptionalExtension<T> for Result<T, Error> {
    fn optional(self) -> Result<Option<T>, Error> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(Error::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Rewrites `?N` placeholders as PostgreSQL's `$N` (and bare `?` as the next number),
/// leaving string literals alone.
pub fn to_postgres(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut in_string = false;
    let mut next = 1u32;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            in_string = !in_string;
            out.push(c);
        } else if c == '?' && !in_string {
            let mut digits = String::new();
            while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                digits.push(d);
                chars.next();
            }
            if digits.is_empty() {
                out.push_str(&format!("${next}"));
                next += 1;
            } else {
                out.push('$');
                out.push_str(&digits);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollar_numbers_outside_literals() {
        assert_eq!(
            to_postgres("SELECT a FROM t WHERE b = ?1 AND (?2 IS NULL OR c = ?2) AND d = '?3'"),
            "SELECT a FROM t WHERE b = $1 AND ($2 IS NULL OR c = $2) AND d = '?3'"
        );
        assert_eq!(to_postgres("VALUES (?, ?)"), "VALUES ($1, $2)");
    }

    #[test]
    fn values_convert_both_ways_and_name_mismatches() {
        let row = Row::new(vec![Value::Int(7), Value::Null, Value::Text("x".into()), Value::Int(-1)]);
        assert_eq!(row.get::<_, i64>(0).expect("int"), 7);
        assert_eq!(row.get::<_, Option<String>>(1).expect("null"), None);
        assert_eq!(row.get::<_, String>(2).expect("text"), "x");
        let e = row.get::<_, i64>(2).expect_err("text is not an int");
        assert_eq!(e.to_string(), "column 2: expected integer, found text");
        assert!(row.get::<_, u32>(3).expect_err("negative").to_string().contains("-1 does not fit u32"));
        assert!(matches!(row.get::<_, i64>(9), Err(Error::Column(9))));
        let p = params![1u32, "a", Option::<i64>::None, [1u8, 2]].into_values();
        assert_eq!(p, vec![Value::Int(1), Value::Text("a".into()), Value::Null, Value::Blob(vec![1, 2])]);
    }
}
