//! Per-user lookup tables reused across users without clearing: each entry carries the
//! generation that wrote it, so `clear` is O(1) and the hot loops allocate nothing. They live in
//! per-task scratch and stay in L1/L2. [`IdMap`]: a tiny open-addressing hash map from i64 keys
//! (item or category ids) to u32 values; [`DenseIndex`]: ids to dense indices 0, 1, 2, ...
//!
//! The keys come from the caller (target ids, recommended ids, categories), so the hash is
//! keyed per map with random values: with a fixed hash, ids chosen to share one slot turn every
//! lookup into a scan of the whole table (131,072 such target ids made `metrics` 800x slower).

use std::hash::{BuildHasher, RandomState};

#[derive(Clone, Copy, Default)]
struct Slot {
    key: i64,
    stamp: u32,
    value: u32,
}

pub struct IdMap {
    slots: Vec<Slot>,
    mask: usize,
    shift: u32,
    generation: u32,
    len: usize,
    keys: HashKeys,
}

/// A map's random hash keys: an xor and an odd multiplier (multiply-shift hashing with a random
/// multiplier is universal: no fixed set of ids collides more than by chance).
#[derive(Clone, Copy)]
struct HashKeys {
    xor: u64,
    mul: u64,
}

impl HashKeys {
    fn random() -> Self {
        // std's RandomState is seeded from the OS once per thread and differs per instance.
        let state = RandomState::new();
        HashKeys {
            xor: state.hash_one(0x243F_6A88_85A3_08D3_u64),
            mul: state.hash_one(0x1319_8A2E_0370_7344_u64) | 1,
        }
    }
}

#[inline(always)]
fn hash(key: i64, keys: HashKeys, shift: u32) -> usize {
    // Multiply-shift (the top bits of the product pick the slot) with a random odd multiplier:
    // one multiply on the lookup's critical path, as the fixed Fibonacci hash had, and it
    // still spreads dense, sequential ids.
    ((key as u64 ^ keys.xor).wrapping_mul(keys.mul) >> shift) as usize
}

impl IdMap {
    /// A map that holds at least `capacity` keys between clears.
    pub fn with_capacity(capacity: usize) -> Self {
        let mut m = IdMap {
            slots: Vec::new(),
            mask: 0,
            shift: 0,
            generation: 1,
            len: 0,
            keys: HashKeys::random(),
        };
        m.resize_for(capacity);
        m
    }

    fn resize_for(&mut self, capacity: usize) {
        let size = (2 * capacity.max(8)).next_power_of_two();
        self.slots = vec![Slot::default(); size];
        self.mask = size - 1;
        self.shift = 64 - size.trailing_zeros();
        self.generation = 1;
        self.len = 0;
    }

    /// Forget all keys and make room for `capacity` of them (load factor <= 1/2).
    #[inline]
    pub fn clear_for(&mut self, capacity: usize) {
        if 2 * capacity > self.slots.len() {
            self.resize_for(capacity); // rare: a user larger than any before
            return;
        }
        self.len = 0;
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.slots.fill(Slot::default());
            self.generation = 1;
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// The value of `key`, inserting `value` first if the key is new. Returns (value, inserted).
    /// The caller guarantees at most `capacity` distinct keys since the last `clear_for`.
    #[inline]
    pub fn get_or_insert(&mut self, key: i64, value: u32) -> (u32, bool) {
        let mut i = hash(key, self.keys, self.shift);
        loop {
            let s = &mut self.slots[i];
            if s.stamp != self.generation {
                *s = Slot {
                    key,
                    stamp: self.generation,
                    value,
                };
                self.len += 1;
                return (value, true);
            }
            if s.key == key {
                return (s.value, false);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Insert `key` if new; true when it was new (set semantics).
    #[inline]
    pub fn insert(&mut self, key: i64) -> bool {
        self.get_or_insert(key, 0).1
    }

    #[inline]
    pub fn get(&self, key: i64) -> Option<u32> {
        let mut i = hash(key, self.keys, self.shift);
        loop {
            let s = &self.slots[i];
            if s.stamp != self.generation {
                return None;
            }
            if s.key == key {
                return Some(s.value);
            }
            i = (i + 1) & self.mask;
        }
    }

    /// Mutable access to the value of a present key.
    #[inline]
    pub fn get_mut(&mut self, key: i64) -> Option<&mut u32> {
        let mut i = hash(key, self.keys, self.shift);
        loop {
            if self.slots[i].stamp != self.generation {
                return None;
            }
            if self.slots[i].key == key {
                return Some(&mut self.slots[i].value);
            }
            i = (i + 1) & self.mask;
        }
    }
}

/// Dense per-user indices 0, 1, 2, ... for ids met in order (categories): a direct-mapped table
/// for ids below [`DIRECT_IDS`] (one load and compare: category ids are usually small and
/// dense), the hash map above. Cleared in O(1) per user by a generation stamp, like [`IdMap`].
pub struct DenseIndex {
    direct: Vec<(u32, u32)>, // id -> (generation, index); grown to the largest id seen
    generation: u32,
    map: IdMap,
    len: u32,
}

/// Ids below this use the direct table (at most 512 KiB per task).
pub const DIRECT_IDS: usize = 1 << 16;

impl DenseIndex {
    pub fn new(capacity: usize) -> Self {
        DenseIndex {
            direct: Vec::new(),
            generation: 1,
            map: IdMap::with_capacity(capacity),
            len: 0,
        }
    }

    /// Forget all ids; at most `capacity` new ones follow.
    #[inline]
    pub fn clear_for(&mut self, capacity: usize) {
        self.map.clear_for(capacity);
        self.len = 0;
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.direct.fill((0, 0));
            self.generation = 1;
        }
    }

    /// The index of `id`, assigning the next one if `id` is new. Returns (index, new).
    #[inline]
    pub fn get_or_insert(&mut self, id: i64) -> (u32, bool) {
        let i = id as u64 as usize; // negative ids become huge and go to the map
        if i >= self.direct.len() {
            if i >= DIRECT_IDS {
                let (index, new) = self.map.get_or_insert(id, self.len);
                self.len += new as u32;
                return (index, new);
            }
            self.direct.resize((i + 1).next_power_of_two(), (0, 0)); // rare: a larger id
        }
        let e = &mut self.direct[i];
        if e.0 == self.generation {
            return (e.1, false);
        }
        *e = (self.generation, self.len);
        self.len += 1;
        (self.len - 1, true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_like_a_map_across_generations() {
        let mut m = IdMap::with_capacity(4);
        for round in 0..5_i64 {
            m.clear_for(100); // grows on the first round
            for k in 0..100_i64 {
                let key = k * 7919 - 50 + round;
                assert_eq!(m.get_or_insert(key, k as u32), (k as u32, true));
            }
            for k in 0..100_i64 {
                let key = k * 7919 - 50 + round;
                assert_eq!(m.get(key), Some(k as u32));
                assert!(!m.insert(key));
            }
            assert_eq!(m.get(i64::MAX), None);
            *m.get_mut(-50 + round).unwrap() += 1000;
            assert_eq!(m.get(-50 + round), Some(1000));
            assert_eq!(m.len(), 100);
        }
    }

    #[test]
    fn dense_index_numbers_ids_in_order_of_arrival() {
        let mut d = DenseIndex::new(8);
        for round in 0..3 {
            d.clear_for(8);
            let ids = [5_i64, 70_000, 5, -3, 0, 70_000, 1 << 40, round];
            let got: Vec<(u32, bool)> = ids.iter().map(|&i| d.get_or_insert(i)).collect();
            let fresh = |k: u32| (k, true);
            let mut want = vec![
                fresh(0),
                fresh(1),
                (0, false),
                fresh(2),
                fresh(3),
                (1, false),
            ];
            want.push(fresh(4));
            want.push(match round {
                0 => (3, false),
                _ => fresh(5),
            });
            assert_eq!(got, want, "round {round}");
        }
        d.generation = u32::MAX;
        d.clear_for(2);
        assert_eq!(d.get_or_insert(5), (0, true));
    }

    #[test]
    fn generation_wraparound_clears() {
        let mut m = IdMap::with_capacity(4);
        m.generation = u32::MAX;
        assert!(m.insert(1));
        m.clear_for(4);
        assert_eq!(m.len(), 0);
        assert_eq!(m.get(1), None);
        assert!(m.insert(1));
    }

    /// Ids that all hash to slot 0 under the unkeyed Fibonacci hash (key * C >> shift): the
    /// multiples of C's inverse mod 2^64, as an adversary would pick them.
    pub(crate) fn fibonacci_colliding_ids(count: usize) -> Vec<i64> {
        const C: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut inv = C; // Newton's iteration for the inverse of an odd number mod 2^64
        for _ in 0..6 {
            inv = inv.wrapping_mul(2u64.wrapping_sub(C.wrapping_mul(inv)));
        }
        assert_eq!(C.wrapping_mul(inv), 1);
        let ids = (1..).map(|j: u64| j.wrapping_mul(inv) as i64);
        ids.filter(|&id| id >= 0).take(count).collect()
    }

    #[test]
    fn chosen_ids_do_not_collide() {
        let ids = fibonacci_colliding_ids(4096);
        let mut m = IdMap::with_capacity(ids.len());
        let slots: std::collections::HashSet<usize> =
            ids.iter().map(|&id| hash(id, m.keys, m.shift)).collect();
        // 4096 keys in 8192 slots: about 3200 distinct by chance; all in one under the old hash
        assert!(
            slots.len() > ids.len() / 2,
            "{} distinct slots",
            slots.len()
        );
        for &id in &ids {
            assert!(m.insert(id));
        }
        assert!(ids.iter().all(|&id| m.get(id) == Some(0)));
    }
}
