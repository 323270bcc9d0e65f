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
            let next = below
                .chunks(2)
                .map(|p| {
                    if p.len() == 2 {
                        node_hash(&p[0], &p[1])
                    } else {
                        p[0]
                    }
                })
                .collect();
            levels.push(next);
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
            }
        }
    }
}
