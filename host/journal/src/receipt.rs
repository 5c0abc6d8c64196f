//! Receipts: self-contained evidence that an entry is in the journal.
//!
//! A receipt holds the entry itself, its inclusion proof and the signed checkpoint the proof
//! leads to. [`Receipt::verify`] needs nothing else but the installation's public key: it
//! recomputes the leaf hash from the entry, walks the proof to the root (RFC 9162 §2.1.3.2) and
//! checks the checkpoint's signature. With the message itself and the salt in the receipt, it
//! also shows that exactly these bytes were accepted.

use serde::{Deserialize, Serialize};

use crate::checkpoint::{Checkpoint, CheckpointError, PublicKey};
use crate::merkle::{ProofError, verify_inclusion};
use crate::{Entry, Hash, parse_hash, payload_digest};

/// The receipt format tag.
pub const FORMAT: &str = "efile-bridge-receipt/1";

/// A receipt for one journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Receipt {
    /// [`FORMAT`].
    pub format: String,
    /// The message the entry is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_uuid: Option<String>,
    /// The entry.
    pub entry: Entry,
    /// Its leaf hash.
    #[serde(with = "crate::hex_hash")]
    pub leaf_hash: Hash,
    /// Audit path to the checkpoint's root, hex.
    pub inclusion_proof: Vec<String>,
    /// The signed checkpoint.
    pub checkpoint: Checkpoint,
    /// Salt of the payload digest, hex: lets whoever holds the payload check it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_salt: Option<String>,
}

/// Why a receipt does not verify.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// Unknown format.
    #[error("unknown receipt format `{0}`")]
    Format(String),
    /// The checkpoint is not signed by the key.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The entry does not hash to the leaf hash.
    #[error("entry {index} hashes to {computed}, not to the receipt's leaf hash {stated}")]
    Leaf {
        /// Entry index.
        index: u64,
        /// Recomputed.
        computed: String,
        /// In the receipt.
        stated: String,
    },
    /// A proof hash is not hex.
    #[error("inclusion proof hash `{0}` is not a 32-byte hex hash")]
    ProofHash(String),
    /// The proof does not lead to the checkpoint's root.
    #[error("entry {index} is not in the tree of size {size}: {source}")]
    Inclusion {
        /// Entry index.
        index: u64,
        /// Tree size.
        size: u64,
        /// Why.
        source: ProofError,
    },
    /// The payload given does not match the entry's digest.
    #[error("the message does not match the digest in entry {0}")]
    Payload(u64),
    /// A payload was given but the receipt has no salt.
    #[error("the receipt has no payload salt, so the message cannot be checked against it")]
    NoSalt,
}

/// What a verified receipt proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Entry index.
    pub index: u64,
    /// Checkpoint tree size.
    pub tree_size: u64,
    /// Checkpoint time.
    pub checkpoint_time: String,
    /// Whether the payload was checked too.
    pub payload_checked: bool,
}

impl Receipt {
    /// Verifies the receipt with the installation's public key, and the payload if given.
    pub fn verify(&self, key: &PublicKey, payload: Option<&[u8]>) -> Result<Verified, ReceiptError> {
        if self.format != FORMAT {
            return Err(ReceiptError::Format(self.format.clone()));
        }
        self.checkpoint.verify(key)?;
        let leaf = self.entry.leaf_hash();
        if leaf != self.leaf_hash {
            return Err(ReceiptError::Leaf {
                index: self.entry.index,
                computed: hex::encode(leaf),
                stated: hex::encode(self.leaf_hash),
            });
        }
        let proof = self
            .inclusion_proof
            .iter()
            .map(|h| parse_hash(h).ok_or_else(|| ReceiptError::ProofHash(h.clone())))
            .collect::<Result<Vec<_>, _>>()?;
        verify_inclusion(&leaf, self.entry.index, self.checkpoint.tree_size, &proof, &self.checkpoint.root_hash)
            .map_err(|source| ReceiptError::Inclusion {
                index: self.entry.index,
                size: self.checkpoint.tree_size,
                source,
            })?;
        let payload_checked = match payload {
            None => false,
            Some(bytes) => {
                let salt =
                    self.payload_salt.as_deref().and_then(|s| hex::decode(s).ok()).ok_or(ReceiptError::NoSalt)?;
                if payload_digest(&salt, bytes) != self.entry.payload_digest {
                    return Err(ReceiptError::Payload(self.entry.index));
                }
                true
            }
        };
        Ok(Verified {
            index: self.entry.index,
            tree_size: self.checkpoint.tree_size,
            checkpoint_time: self.checkpoint.time.clone(),
            payload_checked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EntryKind;
    use crate::checkpoint::Signer;
    use crate::merkle::{Frontier, NodeSource, inclusion_proof};

    struct Leaves(Vec<Hash>);
    impl NodeSource for Leaves {
        type Error = ();
        fn perfect(&self, level: u32, index: u64) -> Result<Hash, ()> {
            let start = (index << level) as usize;
            let f = self.0[start..start + (1 << level)].iter().fold(Frontier::new(), |mut f, h| {
                f.push(*h);
                f
            });
            Ok(f.root())
        }
    }

    #[test]
    fn a_receipt_verifies_offline_and_every_change_is_caught() {
        let dir = tempfile::tempdir().expect("tmp");
        let signer = Signer::load_or_create(dir.path()).expect("key");
        let salt = b"0123456789abcdef";
        let body = b"<xml>message</xml>";
        let entries: Vec<Entry> = (0..11u64)
            .map(|i| Entry {
                index: i,
                kind: EntryKind::MessageAccepted,
                tenant: "09162000".into(),
                at: "2026-11-25T10:00:00.000Z".into(),
                payload_digest: payload_digest(salt, if i == 6 { body } else { b"other" }),
                meta: "{}".into(),
            })
            .collect();
        let leaves = Leaves(entries.iter().map(Entry::leaf_hash).collect());
        let mut f = Frontier::new();
        leaves.0.iter().for_each(|h| drop(f.push(*h)));
        let cp = signer.sign(11, f.root(), "2026-11-25T10:00:01.000Z".into());
        let receipt = Receipt {
            format: FORMAT.into(),
            message_uuid: Some("u".into()),
            entry: entries[6].clone(),
            leaf_hash: entries[6].leaf_hash(),
            inclusion_proof: inclusion_proof(&leaves, 6, 11).expect("proof").iter().map(hex::encode).collect(),
            checkpoint: cp,
            payload_salt: Some(hex::encode(salt)),
        };
        let key = signer.public_key();
        let json = serde_json::to_string(&receipt).expect("json");
        let back: Receipt = serde_json::from_str(&json).expect("parse");
        let ok = back.verify(&key, Some(body)).expect("verifies");
        assert!(ok.payload_checked);
        assert_eq!((ok.index, ok.tree_size), (6, 11));

        assert!(matches!(receipt.verify(&key, Some(b"<xml>messagE</xml>")), Err(ReceiptError::Payload(6))));
        let mut bad = receipt.clone();
        bad.entry.meta = "{\"x\":1}".into();
        assert!(matches!(bad.verify(&key, None), Err(ReceiptError::Leaf { .. })));
        let mut bad = receipt.clone();
        bad.entry.index = 5;
        bad.leaf_hash = bad.entry.leaf_hash();
        assert!(matches!(bad.verify(&key, None), Err(ReceiptError::Inclusion { .. })));
        let mut bad = receipt.clone();
        bad.inclusion_proof.pop();
        assert!(matches!(bad.verify(&key, None), Err(ReceiptError::Inclusion { .. })));
        let mut bad = receipt.clone();
        bad.checkpoint.tree_size = 12;
        assert!(matches!(bad.verify(&key, None), Err(ReceiptError::Checkpoint(_))));
        let other = Signer::load_or_create(&dir.path().join("o")).expect("key");
        assert!(receipt.verify(&other.public_key(), None).is_err());
    }
}
