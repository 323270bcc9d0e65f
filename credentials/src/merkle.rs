//! RFC 6962 Merkle trees over ledger leaf hashes, the ledger's construction
//! (`gco_ledger::hash`), in two forms that do not recompute the tree per proof:
//!
//! * [`RootBuilder`]: a streaming root in O(log n) memory (an aggregate's member root
//!   over millions of inferences);
//! * [`Tree`]: every level kept, so each audit path costs O(log n) (the inclusion proof
//!   of every record of a batch).
//!
//! An RFC 6962 tree is the bottom-up binary tree in which a level's last node, when it
//! has no sibling, moves up unchanged; both forms rely on that.

use gco_ledger::hash::{Hash32, node_hash};
use sha2::{Digest, Sha256};

/// The RFC 6962 root of no leaves: SHA-256 of the empty string.
pub fn empty_root() -> Hash32 {
    Sha256::digest([]).into()
}

/// Streaming RFC 6962 root: a stack of perfect subtrees, largest first.
#[derive(Debug, Clone, Default)]
pub struct RootBuilder {
    stack: Vec<(u32, Hash32)>,
    count: u64,
}

impl RootBuilder {
    pub fn push(&mut self, leaf: Hash32) {
        let mut node = (0u32, leaf);
        while let Some(&(height, left)) = self.stack.last() {
            if height != node.0 {
                break;
            }
            self.stack.pop();
            node = (height + 1, node_hash(&left, &node.1));
        }
        self.stack.push(node);
        self.count += 1;
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn root(&self) -> Hash32 {
        let mut it = self.stack.iter().rev();
        let Some(&(_, mut acc)) = it.next() else {
            return empty_root();
        };
        for (_, left) in it {
            acc = node_hash(left, &acc);
        }
        acc
    }
}

/// A whole tree, level by level.
#[derive(Debug, Clone)]
pub struct Tree {
    levels: Vec<Vec<Hash32>>,
}

impl Tree {
    pub fn new(leaves: Vec<Hash32>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().is_some_and(|l| l.len() > 1) {
            let below = levels.last().map(Vec::as_slice).unwrap_or_default();
            levels.push(level_above(below));
        }
        Tree { levels }
    }

    pub fn len(&self) -> usize {
        self.levels[0].len()
    }

    pub fn is_empty(&self) -> bool {
        self.levels[0].is_empty()
    }

    pub fn leaf(&self, index: usize) -> Option<&Hash32> {
        self.levels[0].get(index)
    }

    pub fn root(&self) -> Hash32 {
        match self.levels.last().and_then(|l| l.first()) {
            Some(r) => *r,
            None => empty_root(),
        }
    }

    /// The stored form of the tree that [`sparse_path`] reads: the leaves, then every
    /// level from `low` up (bottom-up, each level left to right), 32 bytes a node.
    /// Levels 1 to `low - 1` are left out: an audit path recomputes them from the
    /// `2^low` leaves around the leaf it proves.
    pub fn sparse_bytes(&self, low: usize) -> Vec<u8> {
        let kept = self.levels[0]
            .iter()
            .chain(self.levels.iter().skip(low).flatten());
        let upper: usize = self.levels.iter().skip(low).map(Vec::len).sum();
        let mut out = Vec::with_capacity(32 * (self.len() + upper));
        kept.for_each(|h| out.extend_from_slice(h));
        out
    }

    /// The RFC 6962 audit path of leaf `index` (verify with
    /// `gco_ledger::hash::verify_inclusion`).
    pub fn path(&self, mut index: usize) -> Vec<Hash32> {
        let mut out = Vec::new();
        for level in &self.levels[..self.levels.len().saturating_sub(1)] {
            if let Some(sibling) = level.get(index ^ 1) {
                out.push(*sibling);
            }
            index >>= 1;
        }
        out
    }
}

/// The level above `below`: each pair hashed, an unpaired last node moved up.
fn level_above(below: &[Hash32]) -> Vec<Hash32> {
    below
        .chunks(2)
        .map(|p| {
            if p.len() == 2 {
                node_hash(&p[0], &p[1])
            } else {
                p[0]
            }
        })
        .collect()
}

/// Node counts of each level of an RFC 6962 tree of `n` leaves, bottom-up (as [`Tree`]
/// keeps them: a level's unpaired last node moves up).
pub fn level_sizes(n: usize) -> Vec<usize> {
    let mut sizes = vec![n];
    while let Some(&last) = sizes.last().filter(|&&l| l > 1) {
        sizes.push(last.div_ceil(2));
    }
    sizes
}

/// Where [`sparse_path`] reads in a tree's [`Tree::sparse_bytes`]: the byte range of
/// the leaves around `index` (the aligned `2^low` of them, fewer at the end) and of the
/// upper levels. `None` when `index` is not a leaf of a tree of `n`.
pub fn sparse_ranges(
    n: usize,
    index: usize,
    low: usize,
) -> Option<(std::ops::Range<u64>, std::ops::Range<u64>)> {
    if index >= n || low >= usize::BITS as usize {
        return None;
    }
    let start = index >> low << low;
    let end = (start + (1 << low)).min(n);
    let upper: usize = level_sizes(n).iter().skip(low).sum();
    let at = |nodes: usize| nodes as u64 * 32;
    Some((at(start)..at(end), at(n)..at(n + upper)))
}

/// The RFC 6962 audit path of leaf `index` in a tree of `n` leaves from its stored
/// form ([`Tree::sparse_bytes`]): `chunk` the leaves [`sparse_ranges`] names, `upper`
/// the levels from `low` up. The same path as [`Tree::path`]; `None` when the bytes
/// given are not of the sizes a tree of `n` has.
pub fn sparse_path(
    n: usize,
    index: usize,
    low: usize,
    chunk: &[u8],
    upper: &[u8],
) -> Option<(Hash32, Vec<Hash32>)> {
    let (leaves, up) = sparse_ranges(n, index, low)?;
    if chunk.len() as u64 != leaves.end - leaves.start || upper.len() as u64 != up.end - up.start {
        return None;
    }
    let node =
        |b: &[u8], i: usize| -> Option<Hash32> { b.get(i * 32..i * 32 + 32)?.try_into().ok() };
    let sizes = level_sizes(n);
    let first = index >> low << low;
    // Levels 0..low of the chunk, recomputed from its leaves.
    let mut low_levels: Vec<Vec<Hash32>> = vec![
        (0..chunk.len() / 32)
            .map(|i| node(chunk, i))
            .collect::<Option<_>>()?,
    ];
    while low_levels.len() < low.min(sizes.len()) {
        let next = level_above(low_levels.last()?);
        low_levels.push(next);
    }
    let leaf = *low_levels[0].get(index - first)?;
    let mut path = Vec::new();
    let (mut i, mut upper_at) = (index, 0usize);
    for (k, &size) in sizes.iter().enumerate().take(sizes.len().saturating_sub(1)) {
        let sibling = i ^ 1;
        if sibling < size {
            path.push(if k < low {
                *low_levels[k].get(sibling - (first >> k))?
            } else {
                node(upper, upper_at + sibling)?
            });
        }
        if k >= low {
            upper_at += size;
        }
        i >>= 1;
    }
    Some((leaf, path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gco_ledger::hash::{inclusion_proof, merkle_root, verify_inclusion};

    #[test]
    fn agrees_with_the_ledger_for_every_size_and_index() {
        for n in 0..=70usize {
            let leaves: Vec<Hash32> = (0..n)
                .map(|i| Sha256::digest(i.to_be_bytes()).into())
                .collect();
            let mut b = RootBuilder::default();
            leaves.iter().for_each(|l| b.push(*l));
            let tree = Tree::new(leaves.clone());
            assert_eq!(b.root(), merkle_root(&leaves), "n={n}");
            assert_eq!(tree.root(), merkle_root(&leaves), "n={n}");
            assert_eq!(b.count(), n as u64);
            for i in 0..n {
                let path = tree.path(i);
                assert_eq!(path, inclusion_proof(&leaves, i), "n={n} i={i}");
                assert!(verify_inclusion(
                    &leaves[i],
                    i as u64,
                    n as u64,
                    &path,
                    &tree.root()
                ));
                for low in [1, 2, 4] {
                    let bytes = tree.sparse_bytes(low);
                    let (a, b) = sparse_ranges(n, i, low).unwrap();
                    let cut = |r: std::ops::Range<u64>| &bytes[r.start as usize..r.end as usize];
                    let got = sparse_path(n, i, low, cut(a.clone()), cut(b.clone()));
                    assert_eq!(
                        got,
                        Some((leaves[i], path.clone())),
                        "n={n} i={i} low={low}"
                    );
                    // Bytes of the wrong size are refused, not misread.
                    assert_eq!(sparse_path(n, i, low, &cut(a)[32..], cut(b)), None);
                }
            }
        }
    }
}
