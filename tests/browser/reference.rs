//! The docs pages generated from the code, so they cannot drift: the configuration reference
//! (from the operator config's types and their doc comments) and the adapter catalogue (from
//! the adapters in `plugins/adapters/`: what each says about itself, its fixtures and whether
//! they pass). The committed pages must equal what the code gives; `BLESS=1` rewrites them.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

fn check(path: &Path, generated: &str) {
    if std::env::var("BLESS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
        std::fs::write(path, generated).expect("write");
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is not what the code gives: review and run with BLESS=1\n--- generated ---\n{generated}",
        path.display()
    );
}

/// Where a key sits in the TOML file.
#[derive(Clone)]
enum At {
    Root,
    /// `[name]` at the top: keys are written `name.key`.
    Table(String),
    /// Inside `[[a.b]]` (`array`) or `[a.b]`: keys are written `[[a.b]] key` or `[a.b] key`.
    Section {
        path: String,
        array: bool,
    },
}

impl At {
    fn join(&self, name: &str) -> String {
        match self {
            At::Root => name.to_owned(),
            At::Table(t) | At::Section { path: t, .. } => format!("{t}.{name}"),
        }
    }
}

fn resolve<'a>(schema: &'a Value, defs: &'a Value) -> &'a Value {
    let by_ref = |v: &'a Value| v["$ref"].as_str().and_then(|r| r.rsplit('/').next()).map(|n| &defs[n]);
    if let Some(d) = by_ref(schema) {
        return d;
    }
    for key in ["anyOf", "allOf", "oneOf"] {
        if let Some(d) = schema[key].as_array().into_iter().flatten().find_map(by_ref) {
            return d;
        }
    }
    schema
}

fn type_of(schema: &Value, defs: &Value) -> String {
    let s = resolve(schema, defs);
    if let Some(values) = s["enum"].as_array() {
        return values.iter().filter_map(Value::as_str).map(|v| format!("`\"{v}\"`")).collect::<Vec<_>>().join(" or ");
    }
    if let Some(one_of) = s["oneOf"].as_array() {
        let consts: Vec<String> =
            one_of.iter().filter_map(|v| v["const"].as_str().map(|c| format!("`\"{c}\"`"))).collect();
        if !consts.is_empty() {
            return consts.join(" or ");
        }
    }
    let types: Vec<&str> = match &s["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect(),
        _ => Vec::new(),
    };
    match types.first().copied() {
        Some("array") => format!("list of {}", type_of(&s["items"], defs)),
        Some("object") => "table of strings".into(),
        Some("integer") => "integer".into(),
        Some(t) => t.into(),
        None => "value".into(),
    }
}

/// One table cell: one line, rustdoc's intra-doc link brackets dropped, pipes escaped.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ").replace("[`", "`").replace("`]", "`").replace('|', "\\|")
}

fn rows(schema: &Value, defs: &Value, at: &At, out: &mut String) {
    let Some(props) = schema["properties"].as_object() else { return };
    for (name, prop) in props {
        let target = resolve(prop, defs);
        let description = prop["description"].as_str().or(target["description"].as_str()).unwrap_or("");
        let is_table = target["properties"].is_object();
        let item = resolve(&target["items"], defs);
        let is_array_of_tables = target["type"] == "array" && item["properties"].is_object();
        if is_table {
            let next = match at {
                At::Root => At::Table(name.clone()),
                _ => At::Section { path: at.join(name), array: false },
            };
            rows(target, defs, &next, out);
        } else if is_array_of_tables {
            let path = at.join(name);
            let _ = writeln!(out, "| `[[{path}]]` | list of tables | {} |", one_line(description));
            rows(item, defs, &At::Section { path, array: true }, out);
        } else {
            let key = match at {
                At::Root => format!("`{name}`"),
                At::Table(t) => format!("`{t}.{name}`"),
                At::Section { path, array: true } => format!("`[[{path}]] {name}`"),
                At::Section { path, array: false } => format!("`[{path}] {name}`"),
            };
            let _ = writeln!(out, "| {key} | {} | {} |", type_of(prop, defs), one_line(description));
        }
    }
}

#[test]
fn the_configuration_reference_is_generated_from_the_config_types() {
    let schema = serde_json::to_value(schemars::schema_for!(efile_bridge_pipeline::Config)).expect("schema");
    let defs = &schema["$defs"];
    let mut page = String::from(
        "# Configuration reference\n\n\
         Every key of the operator config (`efile-bridge.toml`), generated from the config types in\n\
         `host/pipeline/src/config.rs` and their documentation; a test fails when this page and the\n\
         code differ. Unknown keys are refused with their name. The [operator guide](../operator.md)\n\
         explains how the keys work together.\n\n\
         | key | type | meaning |\n|---|---|---|\n",
    );
    rows(&schema, defs, &At::Root, &mut page);
    assert!(page.contains("`storage`") && page.contains("`[[tenant.sink]] url`"), "{page}");
    check(&efile_bridge_tests::root().join("docs/src/reference/config.md"), &page);
}

#[test]
fn the_adapter_catalogue_is_generated_from_the_adapters() {
    let root = efile_bridge_tests::root();
    let mut adapters: Vec<_> = std::fs::read_dir(root.join("plugins/adapters"))
        .expect("adapters")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.join("Cargo.toml").is_file())
        .collect();
    adapters.sort();
    let mut index = String::from(
        "# Adapter catalogue\n\n\
         The adapters in this repository (`plugins/adapters/`), generated from what each component says\n\
         about itself when loaded (`describe`), its golden fixtures and their result in the sandbox;\n\
         a test fails when a page and the adapters differ.\n\n\
         | adapter | version | message types | config keys | fixtures |\n|---|---|---|---|---|\n",
    );
    for dir in &adapters {
        let rel = dir.strip_prefix(&root).expect("under root").to_string_lossy().into_owned();
        let wasm = efile_bridge_tests::adapter_wasm(&rel);
        let (runtime, adapter) = efile_bridge_tests::load(&wasm);
        let info = adapter.info().clone();
        let results = efile_bridge_devkit::run_fixtures(&runtime, &adapter, dir, false).expect("fixtures");
        let passed = results.iter().filter(|r| r.outcome == efile_bridge_devkit::FixtureOutcome::Passed).count();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("manifest");
        let description = manifest
            .lines()
            .find_map(|l| l.strip_prefix("description = \""))
            .map(|d| d.trim_end_matches('"').to_owned())
            .unwrap_or_default();
        let types: Vec<String> =
            info.handles.iter().map(|h| format!("{} {} `{}`", h.standard, h.version, h.message_type)).collect();
        let _ = writeln!(
            index,
            "| [{name}]({name}.md) | {version} | {types} | {keys} | {passed} of {total} pass |",
            name = info.name,
            version = info.version,
            types = types.len(),
            keys = info.config_keys.len(),
            total = results.len()
        );
        let mut page = format!(
            "# Adapter `{}` {}\n\n{description}\n\nSource: `{rel}`. Fixtures: {passed} of {} pass in the sandbox \
             (`efile-bridge plugin test {rel}`).\n\n## Message types\n\n| standard | version | type |\n|---|---|---|\n",
            info.name,
            info.version,
            results.len()
        );
        for h in &info.handles {
            let _ = writeln!(page, "| {} | {} | `{}` |", h.standard, h.version, h.message_type);
        }
        page.push_str("\n## Config keys\n\n");
        if info.config_keys.is_empty() {
            page.push_str("None.\n");
        } else {
            page.push_str("| key | required | meaning |\n|---|---|---|\n");
            for k in &info.config_keys {
                let _ = writeln!(
                    page,
                    "| `{}` | {} | {} |",
                    k.name,
                    if k.required { "yes" } else { "no" },
                    one_line(&k.description)
                );
            }
        }
        page.push_str("\n## Fixtures\n\n");
        for r in &results {
            let state = if r.outcome == efile_bridge_devkit::FixtureOutcome::Passed { "passes" } else { "FAILS" };
            let _ = writeln!(page, "- `{}`: {state}", r.case);
        }
        assert_eq!(passed, results.len(), "{}: fixtures fail", info.name);
        check(&root.join(format!("docs/src/adapters/{}.md", info.name)), &page);
    }
    check(&root.join("docs/src/adapters/index.md"), &index);
}
