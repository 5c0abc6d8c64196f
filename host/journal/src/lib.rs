//! The journal's entry format and hash chain.
//!
//! Every state change of an installation is one [`Entry`]: a message accepted, a message
//! mapped into records, a mapping that failed. Entries are numbered from 0 without gaps, and
//! each entry's hash covers the previous entry's hash ([`Entry::chain_hash`]), so changing,
//! removing or reordering any entry changes every hash after it.
//!
//! An entry never holds the payload it is about (the message body, a record version's
//! content), only a *salted* digest of it ([`payload_digest`]). The payload lives beside the
//! journal; it can be deleted when its retention period ends and the chain still verifies,
//! and the salt keeps a short, guessable payload from being confirmed from its digest alone.
//!
//! This crate is storage-agnostic: it defines the bytes that are hashed and how a chain is
//! checked. Where entries are kept is the store's business.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The hash that precedes entry 0.
pub const GENESIS: Hash = [0; 32];

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryKind {
    /// A message passed intake and was stored.
    MessageAccepted,
    /// An adapter mapped a message into record versions.
    MessageProcessed,
    /// A message could not be mapped.
    MessageFailed,
}

impl EntryKind {
    /// The stable name stored with the entry.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageAccepted => "message-accepted",
            Self::MessageProcessed => "message-processed",
            Self::MessageFailed => "message-failed",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "message-accepted" => Some(Self::MessageAccepted),
            "message-processed" => Some(Self::MessageProcessed),
            "message-failed" => Some(Self::MessageFailed),
            _ => None,
        }
    }
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Position in the journal, from 0.
    pub index: u64,
    /// What happened.
    pub kind: EntryKind,
    /// The tenant it concerns (AGS).
    pub tenant: String,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// Salted digest of the payload the entry is about ([`GENESIS`] if none).
    pub payload_digest: Hash,
    /// Facts about the event as compact JSON (ids, hashes, adapter); never personal data.
    pub meta: String,
}

impl Entry {
    /// The hash of this entry chained to the previous one.
    ///
    /// Fields are length-prefixed so that no two different entries hash the same bytes.
    pub fn chain_hash(&self, prev: &Hash) -> Hash {
        let mut h = Sha256::new();
        h.update(b"efile-bridge journal v1\0");
        h.update(prev);
        h.update(self.index.to_be_bytes());
        for field in [self.kind.as_str().as_bytes(), self.tenant.as_bytes(), self.at.as_bytes()] {
            h.update((field.len() as u64).to_be_bytes());
            h.update(field);
        }
        h.update(self.payload_digest);
        h.update((self.meta.len() as u64).to_be_bytes());
        h.update(self.meta.as_bytes());
        h.finalize().into()
    }
}

/// The salted digest of a payload: `SHA-256(salt || payload)`.
pub fn payload_digest(salt: &[u8], payload: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(payload);
    h.finalize().into()
}

/// Where a chain stops verifying.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// An index is missing or out of order.
    #[error("journal entry at position {position} has index {found}, expected {expected}")]
    Gap {
        /// Position in the iteration.
        position: u64,
        /// Index found.
        found: u64,
        /// Index expected.
        expected: u64,
    },
    /// A stored hash does not match the recomputed one.
    #[error("journal entry {index} ({kind}): stored hash {stored} but content hashes to {computed}")]
    HashMismatch {
        /// Entry index.
        index: u64,
        /// Entry kind.
        kind: &'static str,
        /// Stored hash, hex.
        stored: String,
        /// Recomputed hash, hex.
        computed: String,
    },
}

/// Checks a sequence of `(entry, stored hash)` pairs from index 0 on; returns the last hash.
pub fn verify_chain<I>(entries: I) -> Result<(u64, Hash), ChainError>
where
    I: IntoIterator<Item = (Entry, Hash)>,
{
    let mut prev = GENESIS;
    let mut count = 0u64;
    for (entry, stored) in entries {
        if entry.index != count {
            return Err(ChainError::Gap { position: count, found: entry.index, expected: count });
        }
        let computed = entry.chain_hash(&prev);
        if computed != stored {
            return Err(ChainError::HashMismatch {
                index: entry.index,
                kind: entry.kind.as_str(),
                stored: hex::encode(stored),
                computed: hex::encode(computed),
            });
        }
        prev = computed;
        count += 1;
    }
    Ok((count, prev))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain(n: u64) -> Vec<(Entry, Hash)> {
        let mut prev = GENESIS;
        (0..n)
            .map(|index| {
                let e = Entry {
                    index,
                    kind: EntryKind::MessageAccepted,
                    tenant: "09162000".into(),
                    at: "2026-01-01T00:00:00Z".into(),
                    payload_digest: payload_digest(b"salt", &index.to_be_bytes()),
                    meta: format!("{{\"n\":{index}}}"),
                };
                prev = e.chain_hash(&prev);
                (e, prev)
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let (count, _) = verify_chain(chain(5)).expect("intact");
        assert_eq!(count, 5);
    }

    #[test]
    fn a_changed_field_is_named() {
        let mut c = chain(5);
        c[2].0.meta = "{\"n\":99}".into();
        let e = verify_chain(c).expect_err("tampered");
        assert!(matches!(e, ChainError::HashMismatch { index: 2, .. }), "{e}");
    }

    #[test]
    fn a_removed_entry_is_a_gap() {
        let mut c = chain(5);
        c.remove(3);
        assert!(matches!(verify_chain(c), Err(ChainError::Gap { found: 4, expected: 3, .. })));
    }

    #[test]
    fn salt_changes_the_digest() {
        assert_ne!(payload_digest(b"a", b"x"), payload_digest(b"b", b"x"));
    }
}
