//! The `efile-bridge` binary as a user runs it: exit codes, messages naming the file and the
//! problem, and the commands the README shows.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn xmeld_wasm() -> &'static Path {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        efile_bridge_devkit::build(&root().join("plugins/adapters/xmeld"), &root().join("target/adapters"))
            .unwrap_or_else(|e| panic!("{e}"))
    })
}

fn bin(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_efile-bridge"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env("EFILE_BRIDGE_LOG", "warn")
        .output()
        .expect("run efile-bridge")
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn write_config(dir: &Path) -> PathBuf {
    let config = dir.join("efile-bridge.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\n[[adapter]]\nname = \"xmeld\"\ncomponent = \"{}\"\n\
             [[tenant]]\nags = \"09162000\"\nname = \"München\"\nadapters = [\"xmeld\"]\n",
            xmeld_wasm().display()
        ),
    )
    .expect("config");
    config
}

#[test]
fn ingest_then_list_show_check_and_verify() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = write_config(tmp.path());
    let inbox = tmp.path().join("in");
    std::fs::create_dir_all(&inbox).expect("mkdir");
    let fixtures = root().join("plugins/adapters/xmeld/tests/fixtures");
    for case in ["anmeldung-0201-single-person", "anmeldung-0201-family-of-three", "invalid-idnr-0201"] {
        std::fs::copy(fixtures.join(case).join("input.xml"), inbox.join(format!("{case}.xml"))).expect("copy");
    }
    std::fs::write(inbox.join("zz-broken.xml"), "<oops>").expect("write");

    let out = bin(&config, &["ingest", "--quiet", inbox.to_str().expect("utf-8")]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("4 file(s): 2 processed"), "{stdout}");
    assert!(stdout.contains("1 failed, 1 refused"), "{stdout}");
    assert!(stderr.contains("zz-broken.xml"), "the refused file is not named: {stderr}");
    assert!(stderr.contains("invalid-idnr-0201.xml") && stderr.contains("idNr"), "{stderr}");

    // Ingesting the same folder again: everything is already known, nothing is doubled.
    let again = bin(&config, &["ingest", "--quiet", inbox.to_str().expect("utf-8")]);
    assert!(text(&again.stdout).contains("2 processed (3 already known), 1 failed"), "{}", text(&again.stdout));

    let list = bin(&config, &["files", "list", "--tenant", "09162000", "--json"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let citizens: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    let citizens = citizens.as_array().expect("array");
    assert_eq!(citizens.len(), 4, "{citizens:?}");
    let brandl = citizens.iter().find(|c| c["display_name"] == "Brandl, Katharina Maria").expect("Brandl");
    let id = brandl["citizen_id"].as_str().expect("id");

    let show = bin(&config, &["files", "show", "--tenant", "09162000", id]);
    let shown = text(&show.stdout);
    assert!(show.status.success(), "{}", text(&show.stderr));
    assert!(shown.contains("Brandl, Katharina Maria (born 1991-04-17)"), "{shown}");
    assert!(shown.contains("[12.20.10] Meldeakte Brandl, Katharina Maria"), "{shown}");
    assert!(shown.contains("keep until 2031-12-31"), "{shown}");

    let missing = bin(&config, &["files", "show", "--tenant", "09162000", "nobody"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("no citizen `nobody`"), "{}", text(&missing.stderr));

    let check = bin(&config, &["check"]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    assert!(text(&check.stdout).contains("adapter `xmeld`"), "{}", text(&check.stdout));

    let verify = bin(&config, &["verify"]);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    // 3 accepted messages, each with one processing entry.
    assert!(text(&verify.stdout).contains("6 entries verified"), "{}", text(&verify.stdout));
}

#[test]
fn a_bad_config_is_refused_naming_file_and_key() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = tmp.path().join("efile-bridge.toml");
    std::fs::write(&config, "data_dir = \"data\"\nlisten_on = \"127.0.0.1:1\"\n").expect("write");
    let out = bin(&config, &["check"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("efile-bridge.toml") && stderr.contains("listen_on"), "{stderr}");
    let out = bin(&tmp.path().join("missing.toml"), &["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("missing.toml"), "{}", text(&out.stderr));
}

#[test]
fn plugin_test_runs_the_golden_fixtures() {
    let out = Command::new(env!("CARGO_BIN_EXE_efile-bridge"))
        .current_dir(root())
        .args(["plugin", "test", "plugins/adapters/xmeld"])
        .env("EFILE_BRIDGE_LOG", "warn")
        .env_remove("BLESS")
        .output()
        .expect("run");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("ok      anmeldung-0201-single-person"), "{stdout}");
    assert!(stdout.contains("fixture(s), 0 failed"), "{stdout}");
}
