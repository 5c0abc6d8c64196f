//! `efile-bridge plugin new`: a new adapter crate from the template in `templates/adapter/`.
//!
//! The template is compiled into the binary, so the command works wherever the binary is
//! installed; only the SDK has to be on disk. The scaffold builds and passes `plugin test` as
//! written: the fixture's `expected.json` is what the template's mapping produces, so a change
//! to `templates/adapter/src/lib.rs` needs the fixture re-blessed (the CLI tests catch it).

use std::path::{Path, PathBuf};

use anyhow::Context as _;

/// The files of a new adapter crate and their templates. `{{name}}` becomes the adapter name,
/// `{{type}}` its Rust type name, `{{sdk}}` the SDK folder (escaped for a TOML string).
const FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../templates/adapter/Cargo.toml.in")),
    (".gitignore", include_str!("../templates/adapter/gitignore")),
    ("README.md", include_str!("../templates/adapter/README.md")),
    ("src/lib.rs", include_str!("../templates/adapter/src/lib.rs")),
    (
        "tests/fixtures/anmeldung-0201-single-person/input.xml",
        include_str!("../templates/adapter/tests/fixtures/anmeldung-0201-single-person/input.xml"),
    ),
    (
        "tests/fixtures/anmeldung-0201-single-person/expected.json",
        include_str!("../templates/adapter/tests/fixtures/anmeldung-0201-single-person/expected.json"),
    ),
];

/// The SDK in the source tree this binary was built from.
const SOURCE_SDK: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../plugins/sdk");

/// Names that match the allowed characters but that cargo refuses as a package name or that
/// break the build as a crate name (Rust keywords, sysroot crates, target-folder names).
const RESERVED: &[&str] = &[
    "abstract",
    "alloc",
    "as",
    "async",
    "await",
    "become",
    "box",
    "break",
    "build",
    "const",
    "continue",
    "core",
    "crate",
    "deps",
    "do",
    "dyn",
    "else",
    "enum",
    "examples",
    "extern",
    "false",
    "final",
    "fn",
    "for",
    "gen",
    "if",
    "impl",
    "in",
    "incremental",
    "let",
    "loop",
    "macro",
    "match",
    "mod",
    "move",
    "mut",
    "override",
    "priv",
    "proc-macro",
    "pub",
    "ref",
    "return",
    "self",
    "static",
    "std",
    "struct",
    "super",
    "test",
    "trait",
    "true",
    "try",
    "type",
    "typeof",
    "unsafe",
    "unsized",
    "use",
    "virtual",
    "where",
    "while",
    "yield",
];

/// Writes a new adapter crate `name` into `dir` (default `./name`) against the SDK at `sdk`.
pub(crate) fn scaffold(name: &str, dir: Option<&Path>, sdk: Option<&Path>) -> anyhow::Result<()> {
    check_name(name)?;
    let dir = dir.map_or_else(|| PathBuf::from(name), Path::to_path_buf);
    match std::fs::read_dir(&dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                anyhow::bail!("{} exists and is not empty; not writing an adapter over it", dir.display());
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot use {} as the adapter folder", dir.display())),
    }
    let sdk = sdk_dir(sdk)?;
    let sdk_text = sdk.to_str().with_context(|| format!("the SDK path {} is not UTF-8", sdk.display()))?;
    let mut created = Vec::new();
    for (path, template) in FILES {
        let text = template
            .replace("{{name}}", name)
            .replace("{{type}}", &type_name(name))
            .replace("{{sdk}}", &sdk_text.replace('\\', "\\\\").replace('"', "\\\""));
        let path = dir.join(path);
        write(&path, text.as_bytes())?;
        created.push(path);
    }
    // The SDK's own lock file pins the dependency versions the SDK is built and tested with;
    // without it the first build resolves whatever the registry has newest.
    if let Some(lock) = sdk.ancestors().skip(1).map(|d| d.join("Cargo.lock")).find(|p| p.is_file()) {
        let path = dir.join("Cargo.lock");
        write(&path, &std::fs::read(&lock).with_context(|| format!("cannot read {}", lock.display()))?)?;
        created.push(path);
    }
    println!("created adapter `{name}` in {} (SDK {})", dir.display(), sdk.display());
    for path in &created {
        println!("    {}", path.display());
    }
    println!("next:");
    println!("    efile-bridge plugin build {}", dir.display());
    println!("    efile-bridge plugin test {}", dir.display());
    println!(
        "then edit src/lib.rs and add fixtures; {} says how to pack, sign and install",
        dir.join("README.md").display()
    );
    Ok(())
}

/// An adapter name is also the cargo package name, so it follows cargo's rules, narrowed to
/// one spelling (no `_`, no capitals) so that `plugin activate NAME@VERSION` is unambiguous.
fn check_name(name: &str) -> anyhow::Result<()> {
    let allowed = name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let starts_with_letter = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase());
    if !allowed || !starts_with_letter || name.ends_with('-') || name.contains("--") {
        anyhow::bail!(
            "adapter name `{name}` is not allowed: use lowercase letters, digits and single `-`, \
             starting with a letter (e.g. `meldeakte-mitte`)"
        );
    }
    if RESERVED.contains(&name) {
        anyhow::bail!("adapter name `{name}` is reserved by Rust or cargo; pick another");
    }
    Ok(())
}

/// `meldeakte-mitte` -> `MeldeakteMitte`.
fn type_name(name: &str) -> String {
    name.split('-')
        .flat_map(|part| {
            let mut chars = part.chars();
            chars.next().map(|c| c.to_ascii_uppercase()).into_iter().chain(chars)
        })
        .collect()
}

fn sdk_dir(sdk: Option<&Path>) -> anyhow::Result<PathBuf> {
    let Some(sdk) = sdk else {
        return Path::new(SOURCE_SDK).canonicalize().ok().filter(|p| p.join("Cargo.toml").is_file()).with_context(
            || {
                format!(
                    "the SDK of the source tree this binary was built from ({SOURCE_SDK}) is not there; \
                     pass --sdk PATH to the efile-bridge-sdk crate folder (plugins/sdk in the efile-bridge sources)"
                )
            },
        );
    };
    let manifest = sdk.join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .with_context(|| format!("--sdk {}: cannot read {}", sdk.display(), manifest.display()))?;
    if !text.lines().any(|l| l.replace(' ', "") == "name=\"efile-bridge-sdk\"") {
        anyhow::bail!("--sdk {}: {} is not the efile-bridge-sdk crate", sdk.display(), manifest.display());
    }
    sdk.canonicalize().with_context(|| format!("--sdk {}", sdk.display()))
}

fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_one_spelling() {
        for good in ["meldeakte", "meldeakte-mitte", "akte2026", "a-1"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Meldeakte", "melde_akte", "2akte", "-akte", "akte-", "melde--akte", "akte.x", "fn", "test"] {
            let err = check_name(bad).expect_err(bad).to_string();
            assert!(err.contains(&format!("`{bad}`")), "{err}");
        }
    }

    #[test]
    fn type_names_are_camel_case() {
        assert_eq!(type_name("meldeakte-mitte"), "MeldeakteMitte");
        assert_eq!(type_name("akte-2026"), "Akte2026");
    }

    #[test]
    fn every_placeholder_is_known() {
        for (path, template) in FILES {
            let rest = template.replace("{{name}}", "").replace("{{type}}", "").replace("{{sdk}}", "");
            assert!(!rest.contains("{{"), "{path} has an unknown placeholder");
        }
    }
}
