//! Adapter packages: what an IT provider installs per municipality.
//!
//! A package (`NAME-VERSION.efpkg`) is a zip with two entries, written deterministically:
//! - `manifest.json`: [`Manifest`]: name, semantic version, the WIT world it targets, the
//!   message types it handles, its config keys with types, the author, and the SHA-256 of the
//!   component;
//! - `adapter.wasm`: the component.
//!
//! A publisher signs a package with an Ed25519 key ([`sign`]); the signature is detached
//! (`NAME-VERSION.efpkg.sig`, [`Signature`]) and covers the SHA-256 of the whole package file,
//! so neither the manifest nor the component can change without breaking it. At install,
//! [`verify`] checks the signature against the operator's trusted publisher keys, that the
//! package targets a world this host implements, and that the manifest's component digest
//! matches the component. Whether the component really is what the manifest says (name,
//! version, message types) is checked by the host after loading it.

use std::io::{Read as _, Write as _};

use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, Verifier as _, VerifyingKey};
use efile_bridge_model::{AdapterInfo, MessageKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The WIT world this host implements (`plugins/wit/adapter.wit`).
pub const WORLD: &str = "efile-bridge:adapter@0.1.0";

/// A package problem; every message names the offending value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    /// Not a readable package.
    #[error("not an adapter package: {0}")]
    Format(String),
    /// No signature was given.
    #[error("the package is not signed (expected a detached signature, e.g. {0})")]
    Unsigned(String),
    /// The signature is malformed, from an unknown key, or does not verify.
    #[error("signature: {0}")]
    Signature(String),
    /// The package targets another WIT world.
    #[error("the package targets `{found}`, this host implements `{expected}`")]
    World {
        /// What the manifest says.
        found: String,
        /// What this host implements.
        expected: String,
    },
    /// A key file is unusable.
    #[error("key: {0}")]
    Key(String),
}

/// One config key of an adapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestConfigKey {
    /// The key.
    pub name: String,
    /// `string`, `integer` or `boolean` (every value reaches the adapter as a string; the type
    /// says how the operator should write it).
    #[serde(rename = "type")]
    pub kind: String,
    /// Whether a tenant must set it.
    pub required: bool,
    /// What it means.
    pub description: String,
}

/// What a package says about its adapter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Adapter name.
    pub name: String,
    /// Semantic version.
    pub version: String,
    /// The WIT world targeted.
    pub world: String,
    /// Message kinds handled.
    pub handles: Vec<MessageKind>,
    /// Config keys.
    pub config_keys: Vec<ManifestConfigKey>,
    /// Who publishes it.
    pub author: String,
    /// SHA-256 of `adapter.wasm`, hex.
    pub component_sha256: String,
}

impl Manifest {
    /// The manifest of a component that describes itself as `info`.
    pub fn new(info: &AdapterInfo, author: &str, component: &[u8]) -> Self {
        Self {
            name: info.name.clone(),
            version: info.version.clone(),
            world: WORLD.to_owned(),
            handles: info.handles.clone(),
            config_keys: info
                .config_keys
                .iter()
                .map(|k| ManifestConfigKey {
                    name: k.name.clone(),
                    // Retention periods are counted in years; everything else is text.
                    kind: if k.name.ends_with(".jahre") { "integer".into() } else { "string".into() },
                    required: k.required,
                    description: k.description.clone(),
                })
                .collect(),
            author: author.to_owned(),
            component_sha256: hex::encode(Sha256::digest(component)),
        }
    }

    /// `NAME-VERSION.efpkg`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.efpkg", self.name, self.version)
    }
}

/// An unpacked package.
#[derive(Debug, Clone)]
pub struct Package {
    /// The manifest.
    pub manifest: Manifest,
    /// The component bytes.
    pub component: Vec<u8>,
}

/// Writes a package: deterministic bytes for the same manifest and component.
pub fn pack(manifest: &Manifest, component: &[u8]) -> Result<Vec<u8>, PackageError> {
    let fail = |e: &dyn std::fmt::Display| PackageError::Format(e.to_string());
    let mut out = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .last_modified_time(zip::DateTime::default())
        .unix_permissions(0o644);
    let manifest_json = serde_json::to_vec_pretty(manifest).map_err(|e| fail(&e))?;
    for (name, data) in [("manifest.json", manifest_json.as_slice()), ("adapter.wasm", component)] {
        zip.start_file(name, options).map_err(|e| fail(&e))?;
        zip.write_all(data).map_err(|e| fail(&e))?;
    }
    zip.finish().map_err(|e| fail(&e))?;
    Ok(out.into_inner())
}

/// Whether `v` is a semantic version: `MAJOR.MINOR.PATCH`, optionally `-PRE` and `+BUILD`.
pub fn is_semver(v: &str) -> bool {
    let core = v.split(['-', '+']).next().unwrap_or("");
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && (p.len() == 1 || !p.starts_with('0')))
        && v[core.len()..].bytes().all(|b| b.is_ascii_alphanumeric() || b"-+.".contains(&b))
}

/// Reads a package and checks the component against the manifest's digest.
pub fn unpack(bytes: &[u8]) -> Result<Package, PackageError> {
    let fail = |e: String| PackageError::Format(e);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| fail(e.to_string()))?;
    let mut read = |name: &str| -> Result<Vec<u8>, PackageError> {
        let mut entry = zip.by_name(name).map_err(|_| fail(format!("no `{name}` in the package")))?;
        let mut data = Vec::new();
        entry.read_to_end(&mut data).map_err(|e| fail(format!("{name}: {e}")))?;
        Ok(data)
    };
    let manifest: Manifest =
        serde_json::from_slice(&read("manifest.json")?).map_err(|e| fail(format!("manifest.json: {e}")))?;
    if !is_semver(&manifest.version) {
        return Err(fail(format!("version `{}` is not a semantic version (MAJOR.MINOR.PATCH)", manifest.version)));
    }
    let component = read("adapter.wasm")?;
    let digest = hex::encode(Sha256::digest(&component));
    if digest != manifest.component_sha256 {
        return Err(fail(format!("adapter.wasm has sha256 {digest}, the manifest says {}", manifest.component_sha256)));
    }
    Ok(Package { manifest, component })
}

/// A detached signature (`.sig` file, JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    /// `ed25519:BASE64` public key of the signer.
    pub public_key: String,
    /// SHA-256 of the package file, hex.
    pub package_sha256: String,
    /// Ed25519 signature over the context string and `package_sha256`, base64.
    pub signature: String,
}

const CONTEXT: &[u8] = b"efile-bridge adapter package v1\0";

fn signed_bytes(package_sha256: &str) -> Vec<u8> {
    [CONTEXT, package_sha256.as_bytes()].concat()
}

/// A publisher's key pair.
pub struct PublisherKey(SigningKey);

impl PublisherKey {
    /// A new random key.
    pub fn generate() -> Result<Self, PackageError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|e| PackageError::Key(format!("no randomness: {e}")))?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// Parses the private key file text (`ed25519-private:BASE64` of the 32-byte seed).
    pub fn parse(text: &str) -> Result<Self, PackageError> {
        let b64 = text
            .trim()
            .strip_prefix("ed25519-private:")
            .ok_or_else(|| PackageError::Key("expected `ed25519-private:BASE64`".into()))?;
        let seed: [u8; 32] = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| PackageError::Key("the private key is not 32 bytes of base64".into()))?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// The private key file text.
    pub fn to_private_text(&self) -> String {
        format!("ed25519-private:{}\n", base64::engine::general_purpose::STANDARD.encode(self.0.to_bytes()))
    }

    /// `ed25519:BASE64`, for the operator's `[[trusted_publisher]]`.
    pub fn public_key(&self) -> String {
        public_key_text(&self.0.verifying_key())
    }
}

fn public_key_text(key: &VerifyingKey) -> String {
    format!("ed25519:{}", base64::engine::general_purpose::STANDARD.encode(key.to_bytes()))
}

fn parse_public_key(text: &str) -> Result<VerifyingKey, PackageError> {
    let b64 = text
        .trim()
        .strip_prefix("ed25519:")
        .ok_or_else(|| PackageError::Key(format!("public key `{text}` is not `ed25519:BASE64`")))?;
    let bytes: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| PackageError::Key(format!("public key `{text}` is not 32 bytes of base64")))?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| PackageError::Key(format!("public key `{text}`: {e}")))
}

/// Checks that a configured trusted key parses.
pub fn check_public_key(text: &str) -> Result<(), PackageError> {
    parse_public_key(text).map(|_| ())
}

/// Signs a package file's bytes.
pub fn sign(package: &[u8], key: &PublisherKey) -> Signature {
    let digest = hex::encode(Sha256::digest(package));
    let sig = key.0.sign(&signed_bytes(&digest));
    Signature {
        public_key: key.public_key(),
        package_sha256: digest,
        signature: base64::engine::general_purpose::STANDARD.encode(sig.to_bytes()),
    }
}

/// A package that passed [`verify`].
#[derive(Debug, Clone)]
pub struct Verified {
    /// The package.
    pub package: Package,
    /// The trusted publisher (name as configured) whose key signed it.
    pub publisher: String,
    /// SHA-256 of the package file, hex.
    pub package_sha256: String,
}

/// Verifies a package against trusted publishers `(name, "ed25519:…")`: signature, world,
/// component digest.
pub fn verify(
    package: &[u8],
    signature: Option<&Signature>,
    trusted: &[(String, String)],
) -> Result<Verified, PackageError> {
    let digest = hex::encode(Sha256::digest(package));
    let sig = signature.ok_or_else(|| PackageError::Unsigned("PACKAGE.efpkg.sig".into()))?;
    if sig.package_sha256 != digest {
        return Err(PackageError::Signature(format!(
            "it covers a package with sha256 {}, this one has {digest}",
            sig.package_sha256
        )));
    }
    let Some((publisher, _)) = trusted.iter().find(|(_, k)| k.trim() == sig.public_key.trim()) else {
        return Err(PackageError::Signature(format!("key `{}` is not a trusted publisher", sig.public_key)));
    };
    let key = parse_public_key(&sig.public_key)?;
    let bytes: [u8; 64] = base64::engine::general_purpose::STANDARD
        .decode(&sig.signature)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| PackageError::Signature("the signature is not 64 bytes of base64".into()))?;
    key.verify(&signed_bytes(&digest), &ed25519_dalek::Signature::from_bytes(&bytes))
        .map_err(|_| PackageError::Signature(format!("it does not verify with the key of `{publisher}`")))?;
    let package_parsed = unpack(package)?;
    if package_parsed.manifest.world != WORLD {
        return Err(PackageError::World { found: package_parsed.manifest.world, expected: WORLD.into() });
    }
    Ok(Verified { package: package_parsed, publisher: publisher.clone(), package_sha256: digest })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> AdapterInfo {
        AdapterInfo {
            name: "demo".into(),
            version: "1.2.3".into(),
            handles: vec![MessageKind {
                standard: "XMeld".into(),
                version: "25.11a".into(),
                message_type: "0201".into(),
            }],
            config_keys: vec![],
        }
    }

    fn trusted(key: &PublisherKey) -> Vec<(String, String)> {
        vec![("Kommunales Rechenzentrum".into(), key.public_key())]
    }

    #[test]
    fn a_signed_package_verifies_and_packing_is_deterministic() {
        let key = PublisherKey::generate().expect("key");
        let manifest = Manifest::new(&info(), "KRZ", b"\0asm component bytes");
        let bytes = pack(&manifest, b"\0asm component bytes").expect("pack");
        assert_eq!(bytes, pack(&manifest, b"\0asm component bytes").expect("pack"), "same input, same bytes");
        let sig = sign(&bytes, &key);
        let v = verify(&bytes, Some(&sig), &trusted(&key)).expect("verifies");
        assert_eq!((v.publisher.as_str(), v.package.manifest), ("Kommunales Rechenzentrum", manifest));
        let reparsed = PublisherKey::parse(&key.to_private_text()).expect("key file");
        assert_eq!(reparsed.public_key(), key.public_key());
    }

    #[test]
    fn unsigned_foreign_tampered_and_incompatible_packages_are_refused() {
        let key = PublisherKey::generate().expect("key");
        let other = PublisherKey::generate().expect("key");
        let manifest = Manifest::new(&info(), "KRZ", b"component");
        let bytes = pack(&manifest, b"component").expect("pack");
        let err = verify(&bytes, None, &trusted(&key)).expect_err("unsigned");
        assert!(matches!(err, PackageError::Unsigned(_)), "{err}");
        let err = verify(&bytes, Some(&sign(&bytes, &other)), &trusted(&key)).expect_err("foreign key");
        assert!(err.to_string().contains("is not a trusted publisher"), "{err}");
        let mut forged = sign(&bytes, &other);
        forged.public_key = key.public_key();
        let err = verify(&bytes, Some(&forged), &trusted(&key)).expect_err("wrong signature");
        assert!(err.to_string().contains("does not verify"), "{err}");
        let mut tampered = bytes.clone();
        let last = tampered.len() - 1;
        tampered[last] ^= 1;
        let err = verify(&tampered, Some(&sign(&bytes, &key)), &trusted(&key)).expect_err("tampered");
        assert!(err.to_string().contains("covers a package with sha256"), "{err}");
        let mut future = manifest.clone();
        future.world = "efile-bridge:adapter@0.2.0".into();
        let bytes = pack(&future, b"component").expect("pack");
        let err = verify(&bytes, Some(&sign(&bytes, &key)), &trusted(&key)).expect_err("world");
        assert!(err.to_string().contains("targets `efile-bridge:adapter@0.2.0`"), "{err}");
        let mut loose = manifest.clone();
        loose.version = "1.2".into();
        let bytes = pack(&loose, b"component").expect("pack");
        let err = verify(&bytes, Some(&sign(&bytes, &key)), &trusted(&key)).expect_err("semver");
        assert!(err.to_string().contains("version `1.2` is not a semantic version"), "{err}");
        assert!(is_semver("0.1.0") && is_semver("2.10.3-rc.1+build.5") && !is_semver("01.2.3"));
        let mut lying = manifest;
        lying.component_sha256 = "00".repeat(32);
        let bytes = pack(&lying, b"component").expect("pack");
        let err = verify(&bytes, Some(&sign(&bytes, &key)), &trusted(&key)).expect_err("digest");
        assert!(err.to_string().contains("the manifest says"), "{err}");
    }
}
