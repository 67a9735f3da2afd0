//! A batch of per-interest candidate lists and the K-way merge of one user's K rows into distinct
//! items in the order of SPEC §5: f descending (f = the item's best score over its slots, eq. 11),
//! ties by the smaller item id. λ = 0 aggregation is this merge stopped after n distinct items.
//!
//! Each slot becomes one u64 key whose integer order is the merge order (score, then id), and
//! each row a run of keys ended by a 0 sentinel; the merge then only compares integers. Retrieval
//! returns each row sorted by score, so one branch-free pass checks the rows and writes the keys;
//! a row in another order (ties in any id order, empty slots inside, NaN/inf scores: those are
//! errors) takes an exact scalar path and is sorted: slower, still exact. Ids of 2^32 and above
//! are replaced by their rank among the user's ids (the order is the same) and mapped back.

use crate::error::{CoreError, Result};
use crate::table::IdMap;
use crate::Id;

/// Borrowed (B, K, N) candidate arrays, row-major: `items[(u*K + k)*N + j]`.
#[derive(Clone, Copy)]
pub struct CandidateView<'a, I> {
    pub items: &'a [I],
    pub scores: &'a [f32],
    pub users: usize,
    pub interests: usize,
    pub slots: usize,
}

impl<'a, I: Id> CandidateView<'a, I> {
    /// Check that both arrays hold `users * interests * slots` values.
    pub fn new(items: &'a [I], scores: &'a [f32], shape: [usize; 3]) -> Result<Self> {
        let [users, interests, slots] = shape;
        let len = users
            .checked_mul(interests)
            .and_then(|x| x.checked_mul(slots))
            .ok_or_else(|| {
                CoreError::shape(
                    "items",
                    "a shape whose size fits in memory",
                    format!("{shape:?}"),
                )
            })?;
        if items.len() != len {
            return Err(CoreError::shape(
                "items",
                format!("{len} values for shape {shape:?}"),
                format!("{} values", items.len()),
            ));
        }
        if scores.len() != len {
            return Err(CoreError::shape(
                "scores",
                format!("the shape of items {shape:?} ({len} values)"),
                format!("{} values", scores.len()),
            ));
        }
        Ok(CandidateView {
            items,
            scores,
            users,
            interests,
            slots,
        })
    }

    /// One user's K·N items and scores.
    #[inline]
    pub fn user(&self, u: usize) -> (&'a [I], &'a [f32]) {
        let w = self.interests * self.slots;
        (
            &self.items[u * w..(u + 1) * w],
            &self.scores[u * w..(u + 1) * w],
        )
    }
}

/// The merge order as one integer, larger = earlier: the score mapped to an unsigned integer of
/// the same order (after `+ 0.0`, so that -0.0 and 0.0 tie) in the high half, the complement of
/// the id's code in the low half (a smaller id wins a tie). Keys of real slots are > 2^55
/// (scores are finite); 0 ends a row.
#[inline(always)]
fn key(score: f32, code: u32) -> u64 {
    let bits = (score + 0.0).to_bits();
    // flip every bit of a negative float, only the sign bit of a positive one
    let ordered = bits ^ ((((bits as i32) >> 31) as u32) | 0x8000_0000);
    ((ordered as u64) << 32) | (!code) as u64
}

#[inline(always)]
fn key_code(key: u64) -> u32 {
    !(key as u32)
}

#[inline(always)]
fn key_score(key: u64) -> f32 {
    let ordered = (key >> 32) as u32;
    let mask = (((!ordered as i32) >> 31) as u32) | 0x8000_0000; // undoes `key`'s flip
    f32::from_bits(ordered ^ mask)
}

/// The most rows the merge takes as they are; a user with more is merged as one sorted row.
pub const MAX_ROWS: usize = 64;

/// One user's rows as runs of keys, each in merge order and ended by a 0 sentinel.
struct Runs {
    keys: Vec<u64>,
    starts: Vec<usize>, // per row: the index of its first key
    ids: Vec<i64>,      // code -> id when the user has ids >= 2^32 (empty: code = id)
    real: Vec<(u64, usize)>,
}

impl Runs {
    fn new() -> Self {
        Runs {
            keys: Vec::new(),
            starts: Vec::new(),
            ids: Vec::new(),
            real: Vec::new(),
        }
    }

    #[inline(always)]
    fn item(&self, code: u32) -> i64 {
        match self.ids.get(code as usize) {
            Some(&id) => id,
            None => code as i64,
        }
    }

    /// Check user `user`'s rows and write their keys. Errors on a non-finite score in a real
    /// slot (item >= 0), the first in row-major order, as the check of every row does.
    fn build<I: Id>(
        &mut self,
        items: &[I],
        scores: &[f32],
        rows: usize,
        user: usize,
    ) -> Result<()> {
        let slots = items.len().checked_div(rows).unwrap_or(0);
        self.keys.clear();
        self.starts.clear();
        self.ids.clear();
        for r in 0..rows {
            let span = r * slots..(r + 1) * slots;
            let (it, sc) = (&items[span.clone()], &scores[span]);
            if !(narrow_real(it) && finite_strictly_decreasing(sc)) || rows > MAX_ROWS {
                return self.build_exactly(items, scores, rows, user);
            }
            self.starts.push(self.keys.len());
            let keys = it.iter().zip(sc).map(|(&i, &s)| key(s, i.to_i64() as u32));
            self.keys.extend(keys);
            self.keys.push(0);
        }
        Ok(())
    }

    /// The exact path: validate every real slot, give ids >= 2^32 rank codes, sort each row's
    /// keys (beyond MAX_ROWS rows, all keys as one row).
    fn build_exactly<I: Id>(
        &mut self,
        items: &[I],
        scores: &[f32],
        rows: usize,
        user: usize,
    ) -> Result<()> {
        let slots = items.len().checked_div(rows).unwrap_or(0);
        self.real.clear();
        for (j, (&it, &value)) in items.iter().zip(scores).enumerate() {
            if it.to_i64() >= 0 {
                if !value.is_finite() {
                    let (interest, slot) = (j / slots, j % slots);
                    return Err(CoreError::BadScore {
                        user,
                        interest,
                        slot,
                        value,
                    });
                }
                self.real.push((0, j));
            }
        }
        self.ids.clear();
        if self
            .real
            .iter()
            .any(|&(_, j)| items[j].to_i64() > u32::MAX as i64)
        {
            self.ids
                .extend(self.real.iter().map(|&(_, j)| items[j].to_i64()));
            self.ids.sort_unstable();
            self.ids.dedup();
        }
        for (k, j) in self.real.iter_mut() {
            let id = items[*j].to_i64();
            let code = match self.ids.binary_search(&id) {
                Ok(rank) if !self.ids.is_empty() => rank as u32,
                _ => id as u32,
            };
            *k = key(scores[*j], code);
        }
        let width = if rows > MAX_ROWS { rows * slots } else { slots };
        self.keys.clear();
        self.starts.clear();
        for row in self
            .real
            .chunk_by_mut(|a, b| a.1 / width.max(1) == b.1 / width.max(1))
        {
            row.sort_unstable_by_key(|&(k, _)| std::cmp::Reverse(k));
            while self.starts.len() < row[0].1 / width.max(1) {
                self.starts.push(self.keys.len()); // rows without a real slot
                self.keys.push(0);
            }
            self.starts.push(self.keys.len());
            self.keys.extend(row.iter().map(|&(k, _)| k));
            self.keys.push(0);
        }
        Ok(())
    }
}

/// All ids real (>= 0) and below 2^32 (written to vectorise: no early exit).
#[inline]
fn narrow_real<I: Id>(items: &[I]) -> bool {
    items.iter().fold(0, |acc, &x| acc | x.to_i64()) as u64 <= u32::MAX as u64
}

/// All scores finite and each smaller than the previous (written to vectorise: no early exit).
#[inline]
fn finite_strictly_decreasing(scores: &[f32]) -> bool {
    let finite = scores
        .iter()
        .fold(true, |ok, s| ok & (s.abs() < f32::INFINITY));
    let pairs = scores.iter().zip(scores.iter().skip(1));
    finite & pairs.fold(true, |ok, (a, b)| ok & (a > b))
}

/// The rows' heads in a winner tree that holds keys: node j holds the largest head key in its
/// subtree and that key's row (leaves are nodes `leaves..2·leaves`), the root the next key in
/// merge order. Advancing a row replays one root path: one comparison with the sibling per
/// level, no data-dependent branch, instead of a scan of all K heads per step. Fixed-size
/// arrays indexed `% MAX_ROWS` (a mask) let the compiler drop the bounds checks.
struct Heads {
    leaves: usize,
    key: [u64; 2 * MAX_ROWS],
    row: [u32; 2 * MAX_ROWS],
    pos: [usize; MAX_ROWS], // per row: the index of its head key
}

impl Heads {
    fn new() -> Self {
        Heads {
            leaves: 1,
            key: [0; 2 * MAX_ROWS],
            row: [0; 2 * MAX_ROWS],
            pos: [0; MAX_ROWS],
        }
    }

    fn reset(&mut self, runs: &Runs) {
        let leaves = runs.starts.len().max(1).next_power_of_two();
        self.leaves = leaves;
        for r in 0..leaves {
            let start = runs.starts.get(r).copied();
            self.pos[r] = start.unwrap_or(0);
            self.key[leaves + r] = start.map_or(0, |p| runs.keys[p]);
            self.row[leaves + r] = r as u32;
        }
        for j in (1..leaves).rev() {
            let right = self.key[2 * j + 1] > self.key[2 * j];
            self.key[j] = self.key[2 * j + right as usize];
            self.row[j] = self.row[2 * j + right as usize];
        }
    }

    /// The next key in merge order (0 when every row is exhausted) and its row.
    #[inline(always)]
    fn top(&self) -> (u64, usize) {
        (self.key[1], self.row[1] as usize % MAX_ROWS)
    }

    /// Move row `r` to its next key (the sentinel stops it) and replay its path to the root.
    #[inline(always)]
    fn advance(&mut self, r: usize, keys: &[u64]) {
        let p = self.pos[r] + 1;
        self.pos[r] = p;
        let (mut k, mut row) = (keys.get(p).copied().unwrap_or(0), r as u32);
        let mut j = self.leaves + r;
        while j > 1 {
            let (at, sibling) = (j % (2 * MAX_ROWS), (j ^ 1) % (2 * MAX_ROWS));
            self.key[at] = k;
            self.row[at] = row;
            // which row wins is data-dependent: a branch would mispredict half the time
            let theirs = self.key[sibling] > k;
            k = std::hint::select_unpredictable(theirs, self.key[sibling], k);
            row = std::hint::select_unpredictable(theirs, self.row[sibling], row);
            j /= 2;
        }
        self.key[1] = k;
        self.row[1] = row;
    }
}

/// Per-task scratch of the merge; reused across users, nothing allocated per user.
pub struct MergeScratch {
    seen: IdMap,
    heads: Box<Heads>,
    runs: Runs,
}

impl MergeScratch {
    pub fn new(interests: usize, slots: usize) -> Self {
        MergeScratch {
            seen: IdMap::with_capacity(interests * slots),
            heads: Box::new(Heads::new()),
            runs: Runs::new(),
        }
    }

    /// A cursor over user `user`'s distinct candidates `(item, f)` in (f desc, id asc) order.
    /// Checks the rows first: errors on NaN/inf scores of used slots.
    pub fn cursor<I: Id>(
        &mut self,
        items: &[I],
        scores: &[f32],
        interests: usize,
        user: usize,
    ) -> Result<MergeCursor<'_>> {
        self.runs.build(items, scores, interests, user)?;
        self.seen.clear_for(items.len());
        self.heads.reset(&self.runs);
        Ok(MergeCursor {
            seen: &mut self.seen,
            heads: &mut self.heads,
            runs: &self.runs,
        })
    }
}

/// See [`MergeScratch::cursor`]. Emitted scores are normalised by `+ 0.0` (-0.0 becomes 0.0).
pub struct MergeCursor<'a> {
    seen: &'a mut IdMap,
    heads: &'a mut Heads,
    runs: &'a Runs,
}

impl MergeCursor<'_> {
    /// The next distinct candidate, or None when all rows are exhausted.
    #[inline(always)]
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<(i64, f32)> {
        self.next_at().map(|(item, f, _)| (item, f))
    }

    /// [`next`](Self::next) and the candidate's position among [`keys`](Self::keys): where
    /// data gathered per key lies.
    #[inline(always)]
    pub fn next_at(&mut self) -> Option<(i64, f32, usize)> {
        loop {
            let (k, r) = self.heads.top();
            if k == 0 {
                return None;
            }
            let at = self.heads.pos[r];
            self.heads.advance(r, &self.runs.keys);
            let code = key_code(k);
            if self.seen.insert(code as i64) {
                return Some((self.runs.item(code), key_score(k), at));
            }
        }
    }

    /// The number of key positions (some are row ends).
    pub fn keys(&self) -> usize {
        self.runs.keys.len()
    }

    /// Call `f(position, item)` for the first `depth` keys of every row.
    #[inline]
    pub fn for_each_head(&self, depth: usize, mut f: impl FnMut(usize, i64)) {
        for &start in &self.runs.starts {
            for (p, &k) in self.runs.keys.iter().enumerate().skip(start).take(depth) {
                if k == 0 {
                    break;
                }
                f(p, self.runs.item(key_code(k)));
            }
        }
    }

    /// The most keys any row has consumed so far.
    pub fn depth(&self) -> usize {
        let used = self.runs.starts.iter().enumerate();
        used.map(|(r, &start)| self.heads.pos[r] - start)
            .max()
            .unwrap_or(0)
    }
}

/// λ = 0 for one user: the `out_items.len()` items of largest f (ties: smaller id), padded with
/// item -1 / score -inf.
pub fn top_n_user<I: Id>(
    scratch: &mut MergeScratch,
    items: &[I],
    scores: &[f32],
    interests: usize,
    user: usize,
    out_items: &mut [i64],
    out_scores: &mut [f32],
) -> Result<()> {
    let n = out_items.len();
    let mut cur = scratch.cursor(items, scores, interests, user)?;
    let mut m = 0;
    while m < n {
        let Some((item, f)) = cur.next() else { break };
        out_items[m] = item;
        out_scores[m] = f;
        m += 1;
    }
    out_items[m..].fill(-1);
    out_scores[m..].fill(f32::NEG_INFINITY);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn merged(items: &[i64], scores: &[f32], k: usize) -> Vec<(i64, f32)> {
        let mut s = MergeScratch::new(k, items.len() / k);
        let mut cur = s.cursor(items, scores, k, 0).unwrap();
        let mut out = Vec::new();
        while let Some(x) = cur.next() {
            out.push(x);
        }
        out
    }

    /// The definition: f = the best score per item, sorted by (f desc, id asc).
    fn by_definition(items: &[i64], scores: &[f32]) -> Vec<(i64, f32)> {
        let mut f: Vec<(i64, f32)> = Vec::new();
        for (&i, &s) in items.iter().zip(scores) {
            match f.iter_mut().find(|e| e.0 == i) {
                _ if i < 0 => {}
                Some(e) => e.1 = e.1.max(s),
                None => f.push((i, s)),
            }
        }
        f.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap().then(a.0.cmp(&b.0)));
        f.iter().map(|&(i, s)| (i, s + 0.0)).collect()
    }

    #[test]
    fn every_path_merges_by_definition() {
        // wide ids (rank codes), ties in any order, empty slots inside rows, -0.0, > MAX_ROWS rows
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        let mut rand = |k: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % k
        };
        for case in 0..300 {
            let rows = [1, 2, 3, 4, 7, MAX_ROWS + 3][case % 6];
            let slots = 1 + rand(9) as usize;
            let wide = case % 4 == 1;
            let items: Vec<i64> = (0..rows * slots)
                .map(|_| match rand(12) as i64 - 1 {
                    id if wide && id >= 0 => (id << 40) + 7,
                    id => id,
                })
                .collect();
            let grid = [-1.0, -0.0, 0.0, 0.5, 1.0];
            let mut scores: Vec<f32> = (0..rows * slots).map(|_| grid[rand(5) as usize]).collect();
            if case % 3 > 0 {
                for row in scores.chunks_mut(slots) {
                    row.sort_by(|a, b| b.partial_cmp(a).unwrap());
                }
            }
            let want = by_definition(&items, &scores);
            let got = merged(&items, &scores, rows);
            assert_eq!(got.len(), want.len(), "case {case}");
            for (g, w) in got.iter().zip(&want) {
                assert!(
                    g.0 == w.0 && g.1.to_bits() == w.1.to_bits(),
                    "case {case}: {got:?} {want:?}"
                );
            }
        }
        // the fast path: strictly decreasing rows without empty slots
        let items = [3_i64, 9, 1, 9, 4, 2];
        let scores = [0.9_f32, 0.5, 0.1, 0.7, 0.5, -0.2];
        assert_eq!(merged(&items, &scores, 2), by_definition(&items, &scores));
    }

    #[test]
    fn merges_sorted_rows_with_duplicates_and_empty_slots() {
        let items = [5, 3, -1, 3, 7, 9];
        let scores = [0.9, 0.5, 0.0, 0.8, 0.4, 0.1];
        assert_eq!(
            merged(&items, &scores, 2),
            vec![(5, 0.9), (3, 0.8), (7, 0.4), (9, 0.1)]
        );
    }

    #[test]
    fn ties_go_to_the_smaller_id_even_within_a_row() {
        let items = [8, 2, 6, 4, 1, 3];
        let scores = [1.0, 1.0, 0.5, 1.0, 0.5, 0.2];
        assert_eq!(
            merged(&items, &scores, 2),
            vec![(2, 1.0), (4, 1.0), (8, 1.0), (1, 0.5), (6, 0.5), (3, 0.2)]
        );
    }

    #[test]
    fn unsorted_rows_fall_back_to_sorting() {
        let items = [1, 2, 3, 4, 2, 1];
        let scores = [0.1, 0.3, 0.2, 0.0, 0.05, 0.9];
        assert_eq!(
            merged(&items, &scores, 2),
            vec![(1, 0.9), (2, 0.3), (3, 0.2), (4, 0.0)]
        );
    }

    #[test]
    fn nan_in_a_used_slot_is_an_error_and_ignored_in_an_empty_one() {
        let mut s = MergeScratch::new(1, 2);
        let err = s.cursor(&[1_i64, 2], &[0.5, f32::NAN], 1, 7).err().unwrap();
        assert!(matches!(
            err,
            CoreError::BadScore {
                user: 7,
                interest: 0,
                slot: 1,
                ..
            }
        ));
        assert!(s.cursor(&[1_i64, -1], &[0.5, f32::NAN], 1, 0).is_ok());
    }

    #[test]
    fn top_n_pads_and_stops_early() {
        let mut s = MergeScratch::new(1, 3);
        let mut top = |it: &mut [i64], sc: &mut [f32]| {
            top_n_user(&mut s, &[4_i32, 4, 2], &[0.9, 0.8, 0.7], 1, 0, it, sc).unwrap()
        };
        let (mut it, mut sc) = ([0_i64; 4], [0_f32; 4]);
        top(&mut it, &mut sc);
        assert_eq!(it, [4, 2, -1, -1]);
        assert_eq!(sc, [0.9, 0.7, f32::NEG_INFINITY, f32::NEG_INFINITY]);
        let (mut it, mut sc) = ([0_i64; 1], [0_f32; 1]);
        top(&mut it, &mut sc);
        assert_eq!(it, [4]);
    }
}
