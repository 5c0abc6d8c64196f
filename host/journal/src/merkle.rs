//! RFC 6962 / RFC 9162 Merkle tree algorithms over a store of perfect subtrees.
//!
//! The store keeps the hash of every *perfect* subtree (2^level leaves starting at a multiple
//! of 2^level) as it completes: level 0 are the leaves, level 1 pairs, and so on. That is one
//! extra node per leaf on average, written in the same transaction as the leaf. Any subtree
//! hash the RFC's recursive definitions need is then at most O(log n) lookups, so roots,
//! inclusion and consistency proofs never rehash the journal.
//!
//! [`Frontier`] is the right edge of the tree (one perfect node per set bit of the size): the
//! writer appends with it and gets the root at any size in O(log n).
//! Verification ([`verify_inclusion`], [`verify_consistency`]) follows RFC 9162 §2.1.3.2 and
//! §2.1.4.2 literally, so a third party can reimplement it from the RFC.

use sha2::{Digest, Sha256};

use crate::Hash;

/// The root of the empty tree: `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest(b"").into()
}

/// `H(0x00 || leaf)`.
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(leaf);
    h.finalize().into()
}

/// `H(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// Where perfect subtree hashes come from.
pub trait NodeSource {
    /// The error of the backing store.
    type Error;
    /// The hash of the perfect subtree of 2^`level` leaves starting at leaf `index << level`.
    fn perfect(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// Largest power of two strictly below `n` (n ≥ 2).
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[lo..hi])` for a range that the RFC recursion produces (its left parts are perfect
/// and aligned).
pub fn subtree<S: NodeSource>(src: &S, lo: u64, hi: u64) -> Result<Hash, S::Error> {
    let n = hi - lo;
    if n == 0 {
        return Ok(empty_root());
    }
    if n.is_power_of_two() && lo.is_multiple_of(n) {
        return src.perfect(n.trailing_zeros(), lo >> n.trailing_zeros());
    }
    let k = split(n);
    Ok(node_hash(&subtree(src, lo, lo + k)?, &subtree(src, lo + k, hi)?))
}

/// The root of the tree of the first `size` leaves.
pub fn root<S: NodeSource>(src: &S, size: u64) -> Result<Hash, S::Error> {
    subtree(src, 0, size)
}

/// The inclusion proof (audit path) of leaf `index` in the tree of `size` leaves (RFC 6962 §2.1.1).
pub fn inclusion_proof<S: NodeSource>(src: &S, index: u64, size: u64) -> Result<Vec<Hash>, S::Error> {
    fn path<S: NodeSource>(src: &S, m: u64, lo: u64, hi: u64, out: &mut Vec<Hash>) -> Result<(), S::Error> {
        let n = hi - lo;
        if n <= 1 {
            return Ok(());
        }
        let k = split(n);
        if m < k {
            path(src, m, lo, lo + k, out)?;
            out.push(subtree(src, lo + k, hi)?);
        } else {
            path(src, m - k, lo + k, hi, out)?;
            out.push(subtree(src, lo, lo + k)?);
        }
        Ok(())
    }
    let mut out = Vec::new();
    if index < size {
        path(src, index, 0, size, &mut out)?;
    }
    Ok(out)
}

/// The consistency proof between the trees of `old` and `new` leaves (RFC 6962 §2.1.2).
pub fn consistency_proof<S: NodeSource>(src: &S, old: u64, new: u64) -> Result<Vec<Hash>, S::Error> {
    fn proof<S: NodeSource>(
        src: &S,
        m: u64,
        lo: u64,
        hi: u64,
        complete: bool,
        out: &mut Vec<Hash>,
    ) -> Result<(), S::Error> {
        let n = hi - lo;
        if m == n {
            if !complete {
                out.push(subtree(src, lo, hi)?);
            }
            return Ok(());
        }
        let k = split(n);
        if m <= k {
            proof(src, m, lo, lo + k, complete, out)?;
            out.push(subtree(src, lo + k, hi)?);
        } else {
            proof(src, m - k, lo + k, hi, false, out)?;
            out.push(subtree(src, lo, lo + k)?);
        }
        Ok(())
    }
    let mut out = Vec::new();
    if 0 < old && old < new {
        proof(src, old, 0, new, true, &mut out)?;
    }
    Ok(out)
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// Index or sizes out of range.
    #[error("proof parameters out of range: {0}")]
    Range(String),
    /// The proof has the wrong number of hashes.
    #[error("proof has the wrong length")]
    Length,
    /// The recomputed root differs.
    #[error("recomputed root {computed} does not match {expected}")]
    RootMismatch {
        /// Recomputed, hex.
        computed: String,
        /// Expected, hex.
        expected: String,
    },
}

/// RFC 9162 §2.1.3.2: verifies that `leaf` is at `index` in the tree of `size` with `root`.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::Range(format!("index {index} is not below tree size {size}")));
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::Length);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Length);
    }
    if r != *root {
        return Err(ProofError::RootMismatch { computed: hex::encode(r), expected: hex::encode(root) });
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: verifies that the tree of `new` leaves with `new_root` extends the tree
/// of `old` leaves with `old_root`.
pub fn verify_consistency(
    old: u64,
    new: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if old > new {
        return Err(ProofError::Range(format!("old size {old} is larger than new size {new}")));
    }
    if old == new {
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch { computed: hex::encode(old_root), expected: hex::encode(new_root) })
        };
    }
    if old == 0 {
        return if proof.is_empty() { Ok(()) } else { Err(ProofError::Length) };
    }
    if proof.is_empty() {
        return Err(ProofError::Length);
    }
    let mut path: Vec<Hash> = proof.to_vec();
    if old.is_power_of_two() {
        path.insert(0, *old_root);
    }
    let (mut fnode, mut snode) = (old - 1, new - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if snode == 0 {
            return Err(ProofError::Length);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Length);
    }
    if fr != *old_root {
        return Err(ProofError::RootMismatch { computed: hex::encode(fr), expected: hex::encode(old_root) });
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch { computed: hex::encode(sr), expected: hex::encode(new_root) });
    }
    Ok(())
}

/// The right edge of the tree: one perfect subtree per set bit of the size, largest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// (level, hash), levels strictly decreasing.
    nodes: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from its perfect nodes.
    pub fn load<S: NodeSource>(src: &S, size: u64) -> Result<Self, S::Error> {
        let mut nodes = Vec::new();
        let mut start = 0u64;
        for level in (0..64u32).rev() {
            if size & (1 << level) != 0 {
                nodes.push((level, src.perfect(level, start >> level)?));
                start += 1 << level;
            }
        }
        Ok(Self { size, nodes })
    }

    /// Leaves so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash; returns the perfect nodes above level 0 it completed, as
    /// `(level, index, hash)`, for the store to keep.
    pub fn push(&mut self, leaf: Hash) -> Vec<(u32, u64, Hash)> {
        let index = self.size;
        self.size += 1;
        let mut completed = Vec::new();
        let mut level = 0u32;
        let mut hash = leaf;
        while let Some(&(l, left)) = self.nodes.last() {
            if l != level {
                break;
            }
            self.nodes.pop();
            hash = node_hash(&left, &hash);
            level += 1;
            completed.push((level, index >> level, hash));
        }
        self.nodes.push((level, hash));
        completed
    }

    /// The root of the tree so far.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        let Some(&(_, last)) = iter.next() else { return empty_root() };
        iter.fold(last, |acc, (_, left)| node_hash(left, &acc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every perfect node kept in memory, as the store keeps them.
    struct Mem(Vec<Vec<Hash>>);

    impl NodeSource for Mem {
        type Error = String;
        fn perfect(&self, level: u32, index: u64) -> Result<Hash, String> {
            self.0
                .get(level as usize)
                .and_then(|l| l.get(index as usize))
                .copied()
                .ok_or(format!("no node {level}/{index}"))
        }
    }

    fn tree(n: u64) -> (Mem, Frontier, Vec<Hash>) {
        let mut mem = Mem(vec![Vec::new()]);
        let mut frontier = Frontier::new();
        let mut leaves = Vec::new();
        for i in 0..n {
            let leaf = leaf_hash(&i.to_be_bytes());
            leaves.push(leaf);
            mem.0[0].push(leaf);
            for (level, index, hash) in frontier.push(leaf) {
                while mem.0.len() <= level as usize {
                    mem.0.push(Vec::new());
                }
                assert_eq!(mem.0[level as usize].len() as u64, index);
                mem.0[level as usize].push(hash);
            }
        }
        (mem, frontier, leaves)
    }

    /// RFC 6962 MTH straight from the definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn roots_match_the_rfc_definition_for_every_size() {
        let (mem, _, leaves) = tree(70);
        for size in 0..=70u64 {
            let want = mth(&leaves[..size as usize]);
            assert_eq!(root(&mem, size).expect("root"), want, "size {size}");
            let (_, f, _) = tree(size);
            assert_eq!(f.root(), want, "frontier root at size {size}");
            assert_eq!(Frontier::load(&mem, size).expect("load"), f, "frontier load at size {size}");
        }
    }

    #[test]
    fn inclusion_proofs_verify_and_reject_wrong_leaves() {
        let (mem, _, leaves) = tree(37);
        for size in 1..=37u64 {
            let r = root(&mem, size).expect("root");
            for index in 0..size {
                let proof = inclusion_proof(&mem, index, size).expect("proof");
                verify_inclusion(&leaves[index as usize], index, size, &proof, &r).expect("verifies");
                let other = leaves[((index + 1) % 37) as usize];
                assert!(verify_inclusion(&other, index, size, &proof, &r).is_err(), "{index}/{size}");
                if size > 1 {
                    assert!(verify_inclusion(&leaves[index as usize], (index + 1) % size, size, &proof, &r).is_err());
                }
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_between_every_pair_of_sizes() {
        let (mem, _, _) = tree(33);
        for new in 1..=33u64 {
            let new_root = root(&mem, new).expect("root");
            for old in 1..=new {
                let old_root = root(&mem, old).expect("root");
                let proof = consistency_proof(&mem, old, new).expect("proof");
                verify_consistency(old, new, &old_root, &new_root, &proof).expect("consistent");
                if old < new {
                    let mut bad = old_root;
                    bad[0] ^= 1;
                    assert!(verify_consistency(old, new, &bad, &new_root, &proof).is_err(), "{old}->{new}");
                }
            }
        }
    }
}
