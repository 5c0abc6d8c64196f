//! Signed checkpoints: "at this time the journal had this many entries and this root".
//!
//! The signed text is the body of a C2SP-style checkpoint note, one field per line:
//!
//! ```text
//! efile-bridge/3f0c…            origin: names the installation
//! 1234                          tree size
//! q83vEjRWeJA…=                 root hash, base64
//! 2026-11-25T10:00:00.000Z      time, RFC 3339 UTC
//! ```
//!
//! The installation's Ed25519 key is generated on first start and kept in
//! `DATA_DIR/keys/` (owner-only permissions). Its public half ([`PublicKey`]) is all an
//! auditor needs.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::Hash;

/// A signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The installation.
    pub origin: String,
    /// Number of journal entries covered.
    pub tree_size: u64,
    /// Merkle root of those entries.
    #[serde(with = "crate::hex_hash")]
    pub root_hash: Hash,
    /// When it was signed.
    pub time: String,
    /// Ed25519 signature over [`Checkpoint::body`], base64.
    pub signature: String,
}

impl Checkpoint {
    /// The signed text.
    pub fn body(&self) -> String {
        body(&self.origin, self.tree_size, &self.root_hash, &self.time)
    }

    /// Checks the signature and that the checkpoint comes from the key's installation.
    pub fn verify(&self, key: &PublicKey) -> Result<(), CheckpointError> {
        if self.origin != key.origin {
            return Err(CheckpointError::Origin { checkpoint: self.origin.clone(), key: key.origin.clone() });
        }
        let sig = B64.decode(&self.signature).map_err(|_| CheckpointError::Signature(self.tree_size))?;
        let sig = Signature::from_slice(&sig).map_err(|_| CheckpointError::Signature(self.tree_size))?;
        key.key.verify(self.body().as_bytes(), &sig).map_err(|_| CheckpointError::Signature(self.tree_size))
    }
}

fn body(origin: &str, size: u64, root: &Hash, time: &str) -> String {
    format!("{origin}\n{size}\n{}\n{time}\n", B64.encode(root))
}

/// Why a checkpoint or key is not acceptable.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CheckpointError {
    /// Bad signature.
    #[error("the signature of the checkpoint at tree size {0} does not verify")]
    Signature(u64),
    /// Signed by another installation.
    #[error("checkpoint is from `{checkpoint}` but the key is for `{key}`")]
    Origin {
        /// Origin in the checkpoint.
        checkpoint: String,
        /// Origin of the key.
        key: String,
    },
    /// A key file is unusable.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// Path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// An installation's public key, as exported for auditors (`public-key.json`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// The installation's origin line.
    pub origin: String,
    key: VerifyingKey,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicKeyFile {
    origin: String,
    algorithm: String,
    key: String,
}

impl PublicKey {
    /// The JSON form.
    pub fn to_json(&self) -> String {
        let file = PublicKeyFile {
            origin: self.origin.clone(),
            algorithm: "ed25519".into(),
            key: B64.encode(self.key.as_bytes()),
        };
        let mut s = serde_json::to_string_pretty(&file).unwrap_or_default();
        s.push('\n');
        s
    }

    /// Parses the JSON form.
    pub fn from_json(text: &str) -> Result<Self, String> {
        let file: PublicKeyFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if file.algorithm != "ed25519" {
            return Err(format!("algorithm `{}` is not supported", file.algorithm));
        }
        let bytes: [u8; 32] = B64
            .decode(&file.key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| "key is not 32 bytes of base64".to_owned())?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|e| e.to_string())?;
        Ok(Self { origin: file.origin, key })
    }
}

/// The installation's signing key.
pub struct Signer {
    key: SigningKey,
    origin: String,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("origin", &self.origin).finish_non_exhaustive()
    }
}

impl Signer {
    /// Loads the key from `dir`, creating key and origin on first use.
    pub fn load_or_create(dir: &Path) -> Result<Self, CheckpointError> {
        let key_path = dir.join("checkpoint-ed25519.key");
        let origin_path = dir.join("origin");
        let fail = |path: &Path, reason: String| CheckpointError::KeyFile { path: path.to_owned(), reason };
        if !key_path.exists() {
            std::fs::create_dir_all(dir).map_err(|e| fail(dir, e.to_string()))?;
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| fail(&key_path, format!("no randomness: {e}")))?;
            let mut id = [0u8; 8];
            getrandom::fill(&mut id).map_err(|e| fail(&key_path, format!("no randomness: {e}")))?;
            write_private(&origin_path, format!("efile-bridge/{}\n", hex::encode(id)).as_bytes())
                .map_err(|e| fail(&origin_path, e.to_string()))?;
            write_private(&key_path, format!("{}\n", hex::encode(seed)).as_bytes())
                .map_err(|e| fail(&key_path, e.to_string()))?;
        }
        let text = std::fs::read_to_string(&key_path).map_err(|e| fail(&key_path, e.to_string()))?;
        let seed: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| fail(&key_path, "not a 32-byte hex seed".into()))?;
        let origin = std::fs::read_to_string(&origin_path).map_err(|e| fail(&origin_path, e.to_string()))?;
        Ok(Self { key: SigningKey::from_bytes(&seed), origin: origin.trim().to_owned() })
    }

    /// The installation's origin line.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The public key for auditors.
    pub fn public_key(&self) -> PublicKey {
        PublicKey { origin: self.origin.clone(), key: self.key.verifying_key() }
    }

    /// Signs a checkpoint.
    pub fn sign(&self, tree_size: u64, root_hash: Hash, time: String) -> Checkpoint {
        let sig = self.key.sign(body(&self.origin, tree_size, &root_hash, &time).as_bytes());
        Checkpoint { origin: self.origin.clone(), tree_size, root_hash, time, signature: B64.encode(sig.to_bytes()) }
    }
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_checkpoint_verifies_only_unchanged_and_with_its_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let signer = Signer::load_or_create(dir.path()).expect("key");
        let again = Signer::load_or_create(dir.path()).expect("key again");
        assert_eq!(signer.public_key(), again.public_key(), "the key must persist");
        let key = PublicKey::from_json(&signer.public_key().to_json()).expect("round trip");
        let cp = signer.sign(5, [7; 32], "2026-11-25T10:00:00.000Z".into());
        cp.verify(&key).expect("verifies");
        let mut bad = cp.clone();
        bad.tree_size = 6;
        assert!(matches!(bad.verify(&key), Err(CheckpointError::Signature(6))));
        let mut bad = cp.clone();
        bad.root_hash[0] ^= 1;
        assert!(bad.verify(&key).is_err());
        let other = Signer::load_or_create(&dir.path().join("other")).expect("other key");
        assert!(cp.verify(&other.public_key()).is_err());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("checkpoint-ed25519.key")).expect("meta").permissions().mode();
            assert_eq!(mode & 0o077, 0, "private key readable by others: {mode:o}");
        }
    }
}
