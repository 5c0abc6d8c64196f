//! The store on PostgreSQL over TLS: a PostgreSQL server of the test's own (initdb on a free
//! port, `ssl = on` with a certificate made here, and `pg_hba.conf` allowing TLS connections
//! only), reached with `sslmode=require&sslrootcert=FILE`. A plain connection is refused by
//! the server, a certificate from another CA by the host.
//!
//! Needs PostgreSQL's server binaries (`initdb`, `pg_ctl` on the PATH or in
//! `pg_config --bindir`) and, when run as root, the `postgres` system user to run them.

use std::path::{Path, PathBuf};
use std::process::Command;

use efile_bridge_store::{Accepted, Storage};

use crate::store::new_message;
use efile_bridge_tests::fixture;

/// A throwaway PostgreSQL server, stopped when dropped.
struct Server {
    bin: PathBuf,
    data: PathBuf,
    port: u16,
    as_postgres: bool,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.run("pg_ctl", &["-D", &self.data.to_string_lossy(), "-m", "immediate", "stop"]);
    }
}

fn bindir() -> PathBuf {
    let out = Command::new("pg_config").arg("--bindir").output();
    match out {
        Ok(o) if o.status.success() => PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()),
        _ => panic!("`pg_config` is not installed: apt-get install postgresql (its server binaries run this test)"),
    }
}

impl Server {
    fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        let exe = self.bin.join(program);
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).output().unwrap_or_else(|e| panic!("{}: {e}", exe.display()))
    }

    /// Starts a server whose certificate is `cert` (for 127.0.0.1) with `key`.
    fn start(cert: &str, key: &str) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        let as_postgres = is_root();
        let data = dir.path().join("data");
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("port").port();
        std::fs::write(dir.path().join("server.crt"), cert).expect("cert");
        std::fs::write(dir.path().join("server.key"), key).expect("key");
        set_mode(&dir.path().join("server.key"), 0o600);
        if as_postgres {
            chown_postgres(dir.path());
        }
        let server = Self { bin: bindir(), data: data.clone(), port, as_postgres, _dir: dir };
        let out = server.run("initdb", &["-D", &data.to_string_lossy(), "-U", "postgres", "--auth=trust", "--no-sync"]);
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        // TLS connections only, from this machine.
        std::fs::write(data.join("pg_hba.conf"), "hostssl all all 127.0.0.1/32 trust\n").expect("hba");
        let root = data.parent().expect("dir").to_owned();
        let options = format!(
            "-c port={port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c ssl=on \
             -c ssl_cert_file={} -c ssl_key_file={} -c fsync=off",
            root.display(),
            root.join("server.crt").display(),
            root.join("server.key").display()
        );
        let log = root.join("server.log");
        let out = server.run(
            "pg_ctl",
            &["-D", &data.to_string_lossy(), "-l", &log.to_string_lossy(), "-o", &options, "-w", "start"],
        );
        assert!(
            out.status.success(),
            "pg_ctl start: {} {}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        server
    }

    fn url(&self, query: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres{query}", self.port)
    }
}

fn is_root() -> bool {
    // The effective uid, without a libc dependency: /proc/self/status `Uid:` real effective ...
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Uid:")).map(|l| l.split_whitespace().nth(2) == Some("0")))
        .unwrap_or(false)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown_postgres(dir: &Path) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id").args([flag, "postgres"]).output().expect("id");
        assert!(out.status.success(), "no `postgres` system user to run the server as (apt-get install postgresql)");
        String::from_utf8_lossy(&out.stdout).trim().parse().expect("a number")
    };
    let (uid, gid) = (id("-u"), id("-g"));
    for entry in
        std::iter::once(dir.to_owned()).chain(std::fs::read_dir(dir).expect("dir").map(|e| e.expect("entry").path()))
    {
        std::os::unix::fs::chown(&entry, Some(uid), Some(gid)).expect("chown");
    }
}

fn self_signed() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).expect("cert");
    (c.cert.pem(), c.key_pair.serialize_pem())
}

/// The error opening a store at `url`, which must fail.
fn refused(url: &str, dir: &Path) -> efile_bridge_store::StoreError {
    match efile_bridge_store::open(Some(url), dir) {
        Ok(_) => panic!("{url} opened"),
        Err(e) => e,
    }
}

#[test]
fn the_store_reaches_postgresql_over_tls_and_checks_the_certificate() {
    let (cert, key) = self_signed();
    let server = Server::start(&cert, &key);
    let keys = tempfile::tempdir().expect("keys");
    let ca = keys.path().join("ca.pem");
    std::fs::write(&ca, &cert).expect("ca");

    // Plain: the server allows TLS connections only.
    let err = refused(&server.url(""), keys.path());
    assert!(err.to_string().contains("no encryption"), "{err}");

    // TLS with the server's CA: works end to end.
    let url = server.url(&format!("?sslmode=require&sslrootcert={}", ca.display()));
    let store = efile_bridge_store::open(Some(&url), keys.path()).unwrap_or_else(|e| panic!("{e}"));
    let accepted = store.accept(new_message(&fixture("anmeldung-0201-single-person"))).expect("accept");
    assert!(matches!(accepted, Accepted::New { .. }));
    assert!(store.checkpoint().expect("checkpoint").is_some());
    let report = store.verify(&|_| {}).expect("verify");
    assert_eq!(report.messages, 1);
    drop(store);

    // Another CA's certificate is not trusted; a CA file without certificates is named.
    let other = keys.path().join("other.pem");
    std::fs::write(&other, self_signed().0).expect("other");
    let url = server.url(&format!("?sslmode=require&sslrootcert={}", other.display()));
    let err = refused(&url, keys.path());
    assert!(err.to_string().to_lowercase().contains("certificate"), "{err}");
    let empty = keys.path().join("empty.pem");
    std::fs::write(&empty, "").expect("empty");
    let url = server.url(&format!("?sslmode=require&sslrootcert={}", empty.display()));
    let err = refused(&url, keys.path());
    assert!(err.to_string().contains("no certificate in the file"), "{err}");
    let url = server.url(&format!("?sslrootcert={}", ca.display()));
    let err = refused(&url, keys.path());
    assert!(err.to_string().contains("without sslmode=require"), "{err}");
}
