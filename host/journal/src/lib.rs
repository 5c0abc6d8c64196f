//! The journal: what is recorded, and how anyone can check it.
//!
//! Every state change of an installation is one [`Entry`]: a message accepted, a message mapped
//! into record versions, a mapping that failed, a payload deleted at the end of its retention
//! period, a legal hold, a configuration applied, a clerk's decision on an ambiguous citizen match. Entries are numbered from 0 without gaps and
//! are the leaves of an append-only Merkle tree in the style of RFC 6962 / RFC 9162
//! ([`merkle`]): leaf hash `H(0x00 || leaf)`, node hash `H(0x01 || left || right)`, so changing,
//! removing or reordering any entry changes the root.
//!
//! An entry never holds the payload it is about (the message body, a record version's content),
//! only a *salted* digest of it ([`payload_digest`]). The payload lives beside the journal; it
//! can be deleted when its retention period ends and every proof stays valid (BSI TR-03125:
//! deleting one record must not weaken the evidence for the others). The salt keeps a short,
//! guessable payload from being confirmed from its digest alone.
//!
//! The installation signs [`checkpoint::Checkpoint`]s (tree size, root, time) with its Ed25519
//! key. A [`receipt::Receipt`] (entry, inclusion proof, signed checkpoint) can be checked offline
//! with nothing but the installation's public key: [`receipt::Receipt::verify`].
//!
//! This crate is storage-agnostic: it defines the bytes that are hashed, the tree algorithms
//! and the signatures. Where entries and nodes are kept is the store's business.

pub mod checkpoint;
pub mod merkle;
pub mod receipt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The digest of "no payload".
pub const NO_PAYLOAD: Hash = [0; 32];

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum EntryKind {
    /// A message passed intake and was stored.
    MessageAccepted,
    /// An adapter mapped a message into record versions.
    MessageProcessed,
    /// A message could not be mapped.
    MessageFailed,
    /// A payload was deleted (retention); the entry names it and the rule.
    PayloadDeleted,
    /// A legal hold was placed.
    HoldAdded,
    /// A legal hold was lifted.
    HoldRemoved,
    /// The host started with a configuration (digest) and adapters (content hashes) that differ
    /// from the last ones recorded.
    ConfigApplied,
    /// A clerk decided where a record that matched several citizens belongs; the entry lists
    /// the record version it became and who decided.
    ReviewDecided,
    /// A sink confirmed a record version.
    Delivered,
    /// A record version could not be delivered to a sink: a dead letter, with every error.
    DeliveryDead,
    /// An operator queued a dead letter again.
    DeliveryRequeued,
    /// An operator gave a dead letter up.
    DeliveryDiscarded,
    /// A signed adapter package was installed.
    AdapterInstalled,
    /// An adapter version was made active for a tenant (all its message types or one).
    AdapterActivated,
    /// A tenant's last adapter switch was undone.
    AdapterRolledBack,
    /// An installed adapter version was removed.
    AdapterRemoved,
    /// A message was mapped again (replay): the record versions that changed or were added.
    MessageReplayed,
    /// A candidate adapter started running beside a tenant's active one (outputs not stored).
    ShadowStarted,
    /// The shadow run of a tenant stopped.
    ShadowStopped,
}

impl EntryKind {
    /// Every kind.
    pub const ALL: [Self; 19] = [
        Self::MessageAccepted,
        Self::MessageProcessed,
        Self::MessageFailed,
        Self::PayloadDeleted,
        Self::HoldAdded,
        Self::HoldRemoved,
        Self::ConfigApplied,
        Self::ReviewDecided,
        Self::Delivered,
        Self::DeliveryDead,
        Self::DeliveryRequeued,
        Self::DeliveryDiscarded,
        Self::AdapterInstalled,
        Self::AdapterActivated,
        Self::AdapterRolledBack,
        Self::AdapterRemoved,
        Self::MessageReplayed,
        Self::ShadowStarted,
        Self::ShadowStopped,
    ];

    /// The stable name stored with the entry.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MessageAccepted => "message-accepted",
            Self::MessageProcessed => "message-processed",
            Self::MessageFailed => "message-failed",
            Self::PayloadDeleted => "payload-deleted",
            Self::HoldAdded => "hold-added",
            Self::HoldRemoved => "hold-removed",
            Self::ConfigApplied => "config-applied",
            Self::ReviewDecided => "review-decided",
            Self::Delivered => "delivered",
            Self::DeliveryDead => "delivery-dead",
            Self::DeliveryRequeued => "delivery-requeued",
            Self::DeliveryDiscarded => "delivery-discarded",
            Self::AdapterInstalled => "adapter-installed",
            Self::AdapterActivated => "adapter-activated",
            Self::AdapterRolledBack => "adapter-rolled-back",
            Self::AdapterRemoved => "adapter-removed",
            Self::MessageReplayed => "message-replayed",
            Self::ShadowStarted => "shadow-started",
            Self::ShadowStopped => "shadow-stopped",
        }
    }

    /// Parses the stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for EntryKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One journal entry: one leaf of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the journal, from 0.
    pub index: u64,
    /// What happened.
    pub kind: EntryKind,
    /// The tenant it concerns (AGS; `-` for installation-wide entries).
    pub tenant: String,
    /// When, RFC 3339 UTC.
    pub at: String,
    /// Salted digest of the payload the entry is about ([`NO_PAYLOAD`] if none).
    #[serde(with = "hex_hash")]
    pub payload_digest: Hash,
    /// Facts about the event as compact JSON (ids, digests, adapter); never personal data.
    pub meta: String,
}

impl Entry {
    /// The leaf bytes: a version tag and every field, length-prefixed, so that no two
    /// different entries have the same encoding.
    pub fn leaf_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(96 + self.meta.len());
        out.extend_from_slice(b"efile-bridge entry v1\0");
        out.extend_from_slice(&self.index.to_be_bytes());
        for field in [self.kind.as_str().as_bytes(), self.tenant.as_bytes(), self.at.as_bytes()] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(&self.payload_digest);
        out.extend_from_slice(&(self.meta.len() as u64).to_be_bytes());
        out.extend_from_slice(self.meta.as_bytes());
        out
    }

    /// The Merkle leaf hash `H(0x00 || leaf_bytes)`.
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.leaf_bytes())
    }
}

/// The salted digest of a payload: `SHA-256(salt || payload)`.
pub fn payload_digest(salt: &[u8], payload: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(salt);
    h.update(payload);
    h.finalize().into()
}

/// Parses a hex hash.
pub fn parse_hash(s: &str) -> Option<Hash> {
    let bytes = hex::decode(s).ok()?;
    bytes.try_into().ok()
}

/// Serde for [`Hash`] as lowercase hex.
pub mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as hex.
    pub fn serialize<S: Serializer>(h: &super::Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(h))
    }

    /// Deserializes from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<super::Hash, D::Error> {
        let s = String::deserialize(d)?;
        super::parse_hash(&s).ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a 32-byte hex hash")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64) -> Entry {
        Entry {
            index,
            kind: EntryKind::MessageAccepted,
            tenant: "09162000".into(),
            at: "2026-01-01T00:00:00Z".into(),
            payload_digest: payload_digest(b"salt", &index.to_be_bytes()),
            meta: format!("{{\"n\":{index}}}"),
        }
    }

    #[test]
    fn every_field_changes_the_leaf() {
        let base = entry(3).leaf_hash();
        let mut e = entry(3);
        e.index = 4;
        assert_ne!(e.leaf_hash(), base);
        let mut e = entry(3);
        e.kind = EntryKind::MessageFailed;
        assert_ne!(e.leaf_hash(), base);
        let mut e = entry(3);
        e.tenant = "06412000".into();
        assert_ne!(e.leaf_hash(), base);
        let mut e = entry(3);
        e.at.push('1');
        assert_ne!(e.leaf_hash(), base);
        let mut e = entry(3);
        e.payload_digest[0] ^= 1;
        assert_ne!(e.leaf_hash(), base);
        let mut e = entry(3);
        e.meta.push(' ');
        assert_ne!(e.leaf_hash(), base);
    }

    #[test]
    fn field_boundaries_cannot_be_shifted() {
        let mut a = entry(0);
        a.tenant = "ab".into();
        a.at = "c".into();
        let mut b = entry(0);
        b.tenant = "a".into();
        b.at = "bc".into();
        assert_ne!(a.leaf_hash(), b.leaf_hash());
    }

    #[test]
    fn kinds_round_trip_and_salt_changes_the_digest() {
        for k in EntryKind::ALL {
            assert_eq!(EntryKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(EntryKind::parse("nope"), None);
        assert_ne!(payload_digest(b"a", b"x"), payload_digest(b"b", b"x"));
    }
}
