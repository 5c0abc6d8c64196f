//! Commands, exit codes, and messages naming the file and the problem.

use std::path::Path;
use std::process::Command;

use crate::support::{bin, root, text, write_config};

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

    let verify = bin(&config, &["verify", "--quiet"]);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    // The configuration, 3 accepted messages, each with one processing (or failure) entry.
    assert!(text(&verify.stdout).contains("journal ok: 7 entries"), "{}", text(&verify.stdout));
    assert!(text(&verify.stdout).contains("payloads ok:"), "{}", text(&verify.stdout));

    // A receipt, checked offline with nothing but the public key (and the message itself).
    let receipt = tmp.path().join("receipt.json");
    let key = tmp.path().join("public-key.json");
    let out = bin(&config, &["receipt", "--tenant", "09162000", "6e884c30-9524-4171-a63e-8845963c47b4"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(&receipt, &out.stdout).expect("write");
    let out = bin(&config, &["public-key"]);
    std::fs::write(&key, &out.stdout).expect("write");
    let message = inbox.join("anmeldung-0201-single-person.xml");
    let no_config = tmp.path().join("nowhere.toml");
    let args = |m: &Path| {
        vec![
            "verify-receipt".to_owned(),
            receipt.display().to_string(),
            "--public-key".into(),
            key.display().to_string(),
            "--message".into(),
            m.display().to_string(),
        ]
    };
    let run = |a: Vec<String>| bin(&no_config, &a.iter().map(String::as_str).collect::<Vec<_>>());
    let ok = run(args(&message));
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains("(message-accepted) is in the journal of efile-bridge/"), "{}", text(&ok.stdout));
    assert!(text(&ok.stdout).contains("the message matches"), "{}", text(&ok.stdout));
    let other = inbox.join("anmeldung-0201-family-of-three.xml");
    let bad = run(args(&other));
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("does not match"), "{}", text(&bad.stderr));
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

#[test]
fn sighup_reloads_tenants_and_tokens_without_a_restart() {
    use std::io::Write as _;
    let tmp = tempfile::tempdir().expect("tmp");
    let config = write_config(tmp.path());
    // Switch to tokens: München gets one.
    let token = "ebt_sighup-test";
    let hash = hex::encode(efile_bridge_pipeline::config::token_hash(token));
    let text = std::fs::read_to_string(&config).expect("config").replace("mode = \"open\"", "mode = \"tokens\"");
    std::fs::write(&config, &text).expect("write");
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("port");
    let mut child = Command::new(env!("CARGO_BIN_EXE_efile-bridge"))
        .args(["--config", config.to_str().expect("utf-8"), "serve", "--listen", &format!("127.0.0.1:{port}")])
        .env("EFILE_BRIDGE_LOG", "warn")
        .spawn()
        .expect("serve");
    let get = |auth: Option<&str>| -> u16 {
        for _ in 0..600 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let auth = auth.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
                let req =
                    format!("GET /v1/tenants/09162000/citizens HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n");
                s.write_all(req.as_bytes()).expect("write");
                let mut answer = String::new();
                let _ = std::io::Read::read_to_string(&mut s, &mut answer);
                if let Some(code) = answer.get(9..12).and_then(|c| c.parse().ok()) {
                    return code;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("serve did not answer");
    };
    assert_eq!(get(Some(token)), 401, "the token works before it is configured");
    let with_token =
        text.replace("adapters = [\"xmeld\"]\n", &format!("adapters = [\"xmeld\"]\ntokens = [\"sha256:{hash}\"]\n"));
    assert_ne!(with_token, text);
    std::fs::write(&config, with_token).expect("write");
    let hup = Command::new("kill").args(["-HUP", &child.id().to_string()]).status().expect("kill");
    assert!(hup.success());
    let mut code = 0;
    for _ in 0..100 {
        code = get(Some(token));
        if code == 200 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(code, 200, "the reloaded token is not accepted");
    // A broken file is refused and the running config stays.
    std::fs::write(&config, "this is = not [valid").expect("write");
    let _ = Command::new("kill").args(["-HUP", &child.id().to_string()]).status();
    assert_eq!(get(Some(token)), 200);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn review_lists_and_decides_an_ambiguous_citizen_match() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = write_config(tmp.path());
    let inbox = tmp.path().join("in");
    std::fs::create_dir_all(&inbox).expect("mkdir");
    let input = root().join("plugins/adapters/xmeld/tests/fixtures/anmeldung-1704-single-person/input.xml");
    let xml = std::fs::read_to_string(input).expect("fixture");
    let id_line = "<xmeld:idNr>02158049378</xmeld:idNr>";
    let uuid = |n: u8| format!("c1000000-0000-4000-8000-00000000000{n}");
    let start = xml.find("<nachrichtenUUID>").expect("uuid") + "<nachrichtenUUID>".len();
    let end = xml[start..].find('<').expect("end") + start;
    let with = |n: u8, id: Option<&str>| {
        let body = format!("{}{}{}", &xml[..start], uuid(n), &xml[end..]);
        match id {
            Some(id) => body.replace(id_line, &format!("<xmeld:idNr>{id}</xmeld:idNr>")),
            None => body.lines().filter(|l| !l.contains(id_line)).collect::<Vec<_>>().join("\n"),
        }
    };
    // Two people of the same name, birth date and place (different idNr), then, in a second
    // ingest (one ingest maps its files concurrently), a message about one of them without idNr.
    std::fs::write(inbox.join("1.xml"), with(1, Some("02158049378"))).expect("write");
    std::fs::write(inbox.join("2.xml"), with(2, Some("08962367457"))).expect("write");
    let out = bin(&config, &["ingest", "--quiet", inbox.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let later = tmp.path().join("later");
    std::fs::create_dir_all(&later).expect("mkdir");
    std::fs::write(later.join("3.xml"), with(3, None)).expect("write");
    let out = bin(&config, &["ingest", "--quiet", later.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));

    let list = bin(&config, &["review", "list", "--tenant", "09162000", "--json"]);
    assert!(list.status.success(), "{}", text(&list.stderr));
    let items: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    let items = items.as_array().expect("array");
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["message_uuid"], uuid(3).as_str());
    let review = items[0]["review_id"].as_str().expect("id");
    let candidate = items[0]["candidates"][0]["citizen_id"].as_str().expect("candidate");

    let wrong = bin(&config, &["review", "assign", review, "--citizen", "nobody", "--by", "clerk-7"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(text(&wrong.stderr).contains("citizen `nobody` is not a candidate"), "{}", text(&wrong.stderr));
    let ok = bin(&config, &["review", "assign", review, "--citizen", candidate, "--by", "clerk-7"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(text(&ok.stdout).contains(&format!("assigned {candidate} by cli:clerk-7")), "{}", text(&ok.stdout));
    let twice = bin(&config, &["review", "new-citizen", review, "--by", "clerk-7"]);
    assert_eq!(twice.status.code(), Some(2));
    assert!(text(&twice.stderr).contains("already decided"), "{}", text(&twice.stderr));

    let open = bin(&config, &["review", "list"]);
    assert!(text(&open.stdout).contains("0 review item(s) open"), "{}", text(&open.stdout));
    let show = bin(&config, &["files", "show", "--tenant", "09162000", candidate]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let verify = bin(&config, &["verify", "--quiet"]);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
    // Config, 3 accepted, 3 processed, 1 decision.
    assert!(text(&verify.stdout).contains("journal ok: 8 entries"), "{}", text(&verify.stdout));
}

#[test]
fn a_publisher_packs_and_signs_and_an_operator_installs_switches_and_rolls_back() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = write_config(tmp.path());
    let key = tmp.path().join("publisher.key");
    let out = bin(&config, &["plugin", "keygen", key.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let public = std::fs::read_to_string(tmp.path().join("publisher.key.pub")).expect("public key");
    let dist = tmp.path().join("dist");
    let adapter = root().join("plugins/adapters/einheitsakte");
    let target = root().join("target/adapters");
    let args = ["plugin", "pack", adapter.to_str().expect("utf-8"), "--author", "KRZ Test"];
    let out = bin(
        &config,
        &[&args[..], &["--out", dist.to_str().expect("utf-8"), "--target-dir", target.to_str().expect("utf-8")]]
            .concat(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let package = std::fs::read_dir(&dist).expect("dist").next().expect("a package").expect("entry").path();
    let name = package.file_name().and_then(|n| n.to_str()).expect("name").to_owned();
    assert!(name.starts_with("einheitsakte-") && name.ends_with(".efpkg"), "{name}");
    let version = name.trim_start_matches("einheitsakte-").trim_end_matches(".efpkg").to_owned();
    let adapter_ref = format!("einheitsakte@{version}");

    // Not trusted yet, and not signed yet: both refused, naming the file and the reason.
    let out = bin(&config, &["plugin", "install", package.to_str().expect("utf-8"), "--by", "ops-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains(&name) && text(&out.stderr).contains("not signed"), "{}", text(&out.stderr));
    let out =
        bin(&config, &["plugin", "sign", package.to_str().expect("utf-8"), "--key", key.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = bin(&config, &["plugin", "install", package.to_str().expect("utf-8"), "--by", "ops-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is not a trusted publisher"), "{}", text(&out.stderr));

    let mut text_config = std::fs::read_to_string(&config).expect("config");
    text_config = text_config
        .replace("adapters = [\"xmeld\"]\n", "adapters = [\"xmeld\"]\n[tenant.config]\naktenplan = \"99.1\"\n");
    text_config.push_str(&format!("[[trusted_publisher]]\nname = \"KRZ Test\"\npublic_key = \"{}\"\n", public.trim()));
    std::fs::write(&config, text_config).expect("config");
    let out = bin(&config, &["plugin", "install", package.to_str().expect("utf-8"), "--by", "ops-1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains(&format!("installed {adapter_ref} from KRZ Test")), "{}", text(&out.stdout));

    let out = bin(&config, &["plugin", "activate", "--tenant", "09162000", "nope@1.0.0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nope@1.0.0 is not installed"), "{}", text(&out.stderr));
    let out = bin(&config, &["plugin", "activate", "--tenant", "09162000", &adapter_ref, "--by", "ops-2"]);
    assert!(out.status.success(), "{}", text(&out.stderr));

    // The switch is in force: a 0201 is now mapped by einheitsakte.
    let inbox = tmp.path().join("in");
    std::fs::create_dir_all(&inbox).expect("mkdir");
    let fixture = root().join("plugins/adapters/xmeld/tests/fixtures/anmeldung-0201-single-person/input.xml");
    std::fs::copy(&fixture, inbox.join("m.xml")).expect("copy");
    let out = bin(&config, &["ingest", "--quiet", inbox.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let list = bin(&config, &["files", "list", "--tenant", "09162000", "--json"]);
    let citizens: serde_json::Value = serde_json::from_slice(&list.stdout).expect("json");
    let id = citizens[0]["citizen_id"].as_str().expect("id");
    let show = bin(&config, &["files", "show", "--tenant", "09162000", id]);
    assert!(text(&show.stdout).contains("[99.1]"), "einheitsakte files under its plan code: {}", text(&show.stdout));

    let list = bin(&config, &["plugin", "list", "--tenant", "09162000"]);
    let listed = text(&list.stdout);
    assert!(listed.contains(&format!("{adapter_ref} from KRZ Test")), "{listed}");
    assert!(listed.contains(&format!("activate {adapter_ref} for * by cli:ops-2")), "{listed}");
    let out = bin(&config, &["plugin", "remove", &adapter_ref, "--by", "ops-1"]);
    assert_eq!(out.status.code(), Some(2), "in use: {}", text(&out.stdout));
    let out = bin(&config, &["plugin", "rollback", "--tenant", "09162000", "--by", "ops-3"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("back to the config's adapters"), "{}", text(&out.stdout));
    let out = bin(&config, &["plugin", "remove", &adapter_ref, "--by", "ops-1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let verify = bin(&config, &["verify", "--quiet"]);
    assert!(verify.status.success(), "{}", text(&verify.stderr));
}

#[test]
fn plugin_new_scaffolds_an_adapter_that_builds_and_passes_its_fixture() {
    let tmp = tempfile::tempdir().expect("tmp");
    // Scaffolding, building and testing need no operator config.
    let config = tmp.path().join("nowhere.toml");
    let dir = tmp.path().join("meldeakte-mitte");
    let dir_arg = dir.to_str().expect("utf-8");
    let out = bin(&config, &["plugin", "new", "meldeakte-mitte", "--dir", dir_arg]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains(&format!("efile-bridge plugin test {dir_arg}")), "{stdout}");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
    assert!(manifest.contains("name = \"meldeakte-mitte\""), "{manifest}");
    assert!(manifest.contains("crate-type = [\"cdylib\", \"rlib\"]") && manifest.contains("\n[workspace]\n"));
    let sdk = root().join("plugins/sdk").canonicalize().expect("sdk");
    assert!(manifest.contains(&format!("efile-bridge-sdk = {{ path = \"{}\" }}", sdk.display())), "{manifest}");
    assert!(std::fs::read_to_string(dir.join("src/lib.rs")).expect("lib.rs").contains("pub struct MeldeakteMitte;"));

    // The adapter builds from a folder outside the workspace, and its golden fixture passes as made.
    let target = root().join("target/adapters");
    let plugin = |command: &str| {
        Command::new(env!("CARGO_BIN_EXE_efile-bridge"))
            .args(["plugin", command, dir_arg, "--target-dir", target.to_str().expect("utf-8")])
            .env("EFILE_BRIDGE_LOG", "warn")
            .env_remove("BLESS")
            .output()
            .expect("run")
    };
    let build = plugin("build");
    assert!(build.status.success(), "{}", text(&build.stderr));
    assert!(text(&build.stdout).starts_with("meldeakte-mitte 0.1.0 -> "), "{}", text(&build.stdout));
    let test = plugin("test");
    let stdout = text(&test.stdout);
    assert!(test.status.success(), "{stdout}\n{}", text(&test.stderr));
    assert!(stdout.contains("ok      anmeldung-0201-single-person"), "{stdout}");
    assert!(stdout.contains("1 fixture(s), 0 failed"), "{stdout}");

    // The fixture holds the adapter to its output: a changed expectation fails.
    let expected = dir.join("tests/fixtures/anmeldung-0201-single-person/expected.json");
    let golden = std::fs::read_to_string(&expected).expect("expected.json");
    assert!(golden.contains("\"document_type\": \"abmeldung\""), "{golden}");
    std::fs::write(&expected, golden.replace("\"abmeldung\"", "\"anmeldung\"")).expect("write");
    let test = plugin("test");
    assert_eq!(test.status.code(), Some(1), "{}", text(&test.stdout));
    assert!(text(&test.stdout).contains("FAILED  anmeldung-0201-single-person"), "{}", text(&test.stdout));

    // Never over an existing adapter, and never with a name cargo or the host would trip over.
    let again = bin(&config, &["plugin", "new", "meldeakte-mitte", "--dir", dir_arg]);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again.stdout));
    assert!(text(&again.stderr).contains(&format!("{dir_arg} exists and is not empty")), "{}", text(&again.stderr));
    assert_eq!(
        std::fs::read_to_string(&expected).expect("expected.json"),
        golden.replace("\"abmeldung\"", "\"anmeldung\"")
    );
    let bad = bin(&config, &["plugin", "new", "Melde_Akte", "--dir", tmp.path().join("bad").to_str().expect("utf-8")]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad.stdout));
    assert!(text(&bad.stderr).contains("adapter name `Melde_Akte` is not allowed"), "{}", text(&bad.stderr));
    assert!(!tmp.path().join("bad").exists());
}
