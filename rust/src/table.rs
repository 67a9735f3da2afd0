//! A tiny open-addressing hash map from i64 keys (item or category ids) to u32 values, reused
//! across users without clearing: each slot carries the generation that wrote it, so `clear` is
//! O(1) and the hot loops allocate nothing. It lives in per-task scratch and stays in L1/L2.

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
}

#[inline]
fn hash(key: i64, shift: u32) -> usize {
    // Fibonacci hashing: ids are often dense and sequential; the multiply spreads them.
    ((key as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> shift) as usize
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
        let mut i = hash(key, self.shift);
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
        let mut i = hash(key, self.shift);
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
        let mut i = hash(key, self.shift);
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
    fn generation_wraparound_clears() {
        let mut m = IdMap::with_capacity(4);
        m.generation = u32::MAX;
        assert!(m.insert(1));
        m.clear_for(4);
        assert_eq!(m.len(), 0);
        assert_eq!(m.get(1), None);
        assert!(m.insert(1));
    }
}
