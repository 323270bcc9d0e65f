//! The ledger's uniqueness rule: an inference id occurs once in a node's ledger, and an
//! idle interval (node, GPUs, start, end) is recorded once.
//!
//! Each row has a [`RowKey`], a 128-bit XXH3 digest of what must be unique, held in
//! memory only. A record's partition date is the date of its start, so a record stored
//! twice (a replayed import, a second writer) is always in one partition day: the
//! checks hold one day's keys at a time ([`DayKeys`]), which bounds their memory by the
//! largest day. An inference id reused on another day is refused by the import (which
//! reads the node's whole ledger) and is outside what the verifier checks.

use std::collections::HashMap;

use xxhash_rust::xxh3::Xxh3;

/// The digest of what must be unique in a row. The top bit says idle (1) or inference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowKey(u128);

impl std::hash::Hash for RowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        // Already a uniform digest: its low 64 bits are the hash.
        state.write_u64(self.0 as u64);
    }
}

/// Hashes a [`RowKey`] as the 64 bits it writes (no second hash of a digest).
#[derive(Debug, Clone, Copy, Default)]
pub struct KeyHasher(u64);

impl std::hash::Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `RowKey`; fold anything else in.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = v;
    }
}

/// A map or set keyed by [`RowKey`].
pub type KeyBuild = std::hash::BuildHasherDefault<KeyHasher>;

const IDLE_BIT: u128 = 1 << 127;

impl RowKey {
    /// An inference row's key: (node, inference id).
    pub fn inference(node_id: &str, inference_id: &str) -> Self {
        let mut h = Xxh3::new();
        for part in [
            b"inference".as_slice(),
            node_id.as_bytes(),
            inference_id.as_bytes(),
        ] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        RowKey(h.digest128() & !IDLE_BIT)
    }

    /// An idle row's key: (node, GPUs, start, end).
    pub fn idle<'a>(
        node_id: &str,
        gpus: impl IntoIterator<Item = &'a str>,
        start: i64,
        end: i64,
    ) -> Self {
        let mut h = Xxh3::new();
        for part in [b"idle".as_slice(), node_id.as_bytes()] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part);
        }
        for g in gpus {
            h.update(&(g.len() as u64).to_le_bytes());
            h.update(g.as_bytes());
        }
        h.update(&start.to_le_bytes());
        h.update(&end.to_le_bytes());
        RowKey(h.digest128() | IDLE_BIT)
    }

    /// The key of a row from its kind, ids, GPUs and interval.
    pub fn of<'a>(
        kind: &str,
        node_id: &str,
        inference_id: Option<&str>,
        gpus: impl IntoIterator<Item = &'a str>,
        start: i64,
        end: i64,
    ) -> Self {
        match inference_id {
            Some(id) if kind != crate::RecordKind::Idle.as_str() => Self::inference(node_id, id),
            _ => Self::idle(node_id, gpus, start, end),
        }
    }

    pub fn is_idle(self) -> bool {
        self.0 & IDLE_BIT != 0
    }

    /// The problem code of a repeat of this key.
    pub fn duplicate_code(self) -> &'static str {
        if self.is_idle() {
            "duplicate_record"
        } else {
            "duplicate_inference_id"
        }
    }

    /// What is repeated, for a message.
    pub fn what(self) -> &'static str {
        if self.is_idle() {
            "idle interval (node, GPUs, start, end)"
        } else {
            "inference_id"
        }
    }
}

/// Where a row is: an object (by the caller's index) and a zero-based row.
pub type Place = (usize, u64);

/// One partition day's keys.
#[derive(Debug, Default)]
pub struct DayKeys {
    first: HashMap<RowKey, Place, KeyBuild>,
    /// Keys seen more than once, with every place they were seen.
    repeated: HashMap<RowKey, Vec<Place>, KeyBuild>,
}

impl DayKeys {
    /// The first place `key` was seen, if it was.
    pub fn get(&self, key: RowKey) -> Option<Place> {
        self.first.get(&key).copied()
    }

    /// Records `key` at `place` (any order of arrival).
    pub fn insert(&mut self, key: RowKey, place: Place) {
        match self.first.get(&key) {
            None => {
                self.first.insert(key, place);
            }
            Some(&earlier) => self
                .repeated
                .entry(key)
                .or_insert_with(|| vec![earlier])
                .push(place),
        }
    }

    /// Every repeat: `(key, place, first place)`, where the first place is the
    /// smallest `(object, row)` of the key and each other place is listed against it,
    /// sorted. Independent of the order the places arrived in.
    pub fn repeats(self) -> Vec<(RowKey, Place, Place)> {
        let mut out = Vec::new();
        for (key, mut places) in self.repeated {
            places.sort_unstable();
            let first = places[0];
            out.extend(places[1..].iter().map(|&p| (key, p, first)));
        }
        out.sort_unstable_by_key(|&(_, p, f)| (p, f));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_separate_kinds_nodes_and_fields() {
        let a = RowKey::inference("n1", "r-1");
        assert_eq!(a, RowKey::inference("n1", "r-1"));
        assert_ne!(a, RowKey::inference("n2", "r-1"));
        assert_ne!(a, RowKey::inference("n1", "r-2"));
        // Length prefixes: ("n1", "x") and ("n1x", "") differ.
        assert_ne!(RowKey::inference("n1", "x"), RowKey::inference("n1x", ""));
        assert!(!a.is_idle());
        let i = RowKey::idle("n1", ["0"], 10, 20);
        assert!(i.is_idle());
        assert_eq!(i, RowKey::idle("n1", ["0"], 10, 20));
        assert_ne!(i, RowKey::idle("n1", ["1"], 10, 20));
        assert_ne!(i, RowKey::idle("n1", ["0"], 10, 21));
        assert_ne!(
            RowKey::idle("n1", ["0", "1"], 1, 2),
            RowKey::idle("n1", ["01"], 1, 2)
        );
        assert_eq!(RowKey::of("idle", "n1", None, ["0"], 10, 20), i);
        assert_eq!(RowKey::of("inference", "n1", Some("r-1"), ["0"], 1, 2), a);
        assert_eq!(i.duplicate_code(), "duplicate_record");
        assert_eq!(a.duplicate_code(), "duplicate_inference_id");
    }

    #[test]
    fn repeats_are_listed_against_the_first_place_whatever_the_arrival_order() {
        let k = RowKey::inference("n", "r");
        let j = RowKey::inference("n", "s");
        let mut one = DayKeys::default();
        let mut two = DayKeys::default();
        let places = [(3, 0), (1, 5), (2, 9), (1, 2)];
        for p in places {
            one.insert(k, p);
        }
        for p in places.iter().rev() {
            two.insert(k, *p);
        }
        one.insert(j, (0, 0));
        two.insert(j, (0, 0));
        let expected = vec![
            (k, (1, 5), (1, 2)),
            (k, (2, 9), (1, 2)),
            (k, (3, 0), (1, 2)),
        ];
        assert_eq!(one.repeats(), expected);
        assert_eq!(two.repeats(), expected);
    }
}
