//! A batch of per-interest candidate lists and the K-way merge of one user's K rows into distinct
//! items in the order of SPEC §5: f descending (f = the item's best score over its slots, eq. 11),
//! ties by the smaller item id. λ = 0 aggregation is this merge stopped after n distinct items.
//!
//! Retrieval returns each row sorted by score, so the merge only advances K row heads. Rows may
//! hold equal scores in any id order (Faiss does not order ties), so equal-scored heads are
//! gathered into a tie group and emitted by id. A row that is not sorted (checked per user, which
//! also rejects NaN/inf scores) is sorted into scratch first: slower, still exact.

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

/// The merge order as one integer: larger key = earlier. The high half is the score mapped to an
/// unsigned integer with the same order (after `+ 0.0`, so that -0.0 and 0.0 tie), the low half
/// the complement of the id (a smaller id wins a tie). Keys of real slots are > 0 (scores are
/// finite and ids >= 0): 0 marks an exhausted row.
#[inline(always)]
fn key(score: f32, item: i64) -> u128 {
    let bits = (score + 0.0).to_bits();
    // flip every bit of a negative float, only the sign bit of a positive one
    let ordered = bits ^ ((((bits as i32) >> 31) as u32) | 0x8000_0000);
    ((ordered as u128) << 64) | (!(item as u64)) as u128
}

#[inline(always)]
fn key_item(key: u128) -> i64 {
    !(key as u64) as i64
}

#[inline(always)]
fn key_score(key: u128) -> f32 {
    let ordered = (key >> 64) as u32;
    let mask = (((!ordered as i32) >> 31) as u32) | 0x8000_0000; // undoes `key`'s flip
    f32::from_bits(ordered ^ mask)
}

/// The most rows the merge takes as they are; a user with more is merged as one sorted row.
pub const MAX_ROWS: usize = 64;

/// The rows' heads and a winner tree over them: `win[j]` is the row with the larger head key in
/// node j's subtree (leaves are nodes `leaves..2·leaves`). Taking the top and advancing its row
/// replays one root path, log2 K comparisons with no data-dependent branch, instead of a scan
/// of all K heads per step. Fixed-size arrays indexed `% MAX_ROWS` (a mask) let the compiler
/// drop every bounds check from the loop.
struct Heads {
    leaves: usize,
    key: [u128; MAX_ROWS],    // per row: the key of its head slot (0: exhausted)
    pos: [usize; MAX_ROWS],   // per row: its head slot (an index into the user's arrays)
    end: [usize; MAX_ROWS],   // per row: one past its last real slot
    win: [u32; 2 * MAX_ROWS], // the tree
}

impl Heads {
    fn new() -> Self {
        Heads {
            leaves: 1,
            key: [0; MAX_ROWS],
            pos: [0; MAX_ROWS],
            end: [0; MAX_ROWS],
            win: [0; 2 * MAX_ROWS],
        }
    }

    /// Start over with the rows `start..end` of `(scores, items)` (at most MAX_ROWS of them).
    fn reset<I: Id>(&mut self, scores: &[f32], items: &[I], rows: &[(usize, usize)]) {
        let leaves = rows.len().max(1).next_power_of_two();
        self.leaves = leaves;
        for r in 0..leaves {
            let (start, end) = rows.get(r).copied().unwrap_or((0, 0));
            self.pos[r] = start;
            self.end[r] = end;
            self.key[r] = if start < end {
                key(scores[start], items[start].to_i64())
            } else {
                0
            };
            self.win[leaves + r] = r as u32;
        }
        for j in (1..leaves).rev() {
            self.win[j] = self.better(self.win[2 * j], self.win[2 * j + 1]);
        }
    }

    #[inline(always)]
    fn better(&self, a: u32, b: u32) -> u32 {
        let (ka, kb) = (self.key[a as usize % MAX_ROWS], self.key[b as usize % MAX_ROWS]);
        if ka >= kb {
            a
        } else {
            b
        }
    }

    /// The key of the best head; its row moves to its next slot. Call only when `peek() != 0`.
    #[inline(always)]
    fn pop<I: Id>(&mut self, scores: &[f32], items: &[I]) -> u128 {
        let r = self.win[1] as usize % MAX_ROWS;
        let top = self.key[r];
        let p = self.pos[r] + 1;
        self.pos[r] = p;
        self.key[r] = match (p < self.end[r], scores.get(p), items.get(p)) {
            (true, Some(&s), Some(&it)) => key(s, it.to_i64()),
            _ => 0,
        };
        let mut j = (self.leaves + r) / 2;
        while j > 0 {
            let child = (2 * j) % (2 * MAX_ROWS);
            self.win[j % (2 * MAX_ROWS)] = self.better(self.win[child], self.win[child + 1]);
            j /= 2;
        }
        top
    }

    #[inline(always)]
    fn peek(&self) -> u128 {
        self.key[self.win[1] as usize % MAX_ROWS]
    }
}

/// Per-task scratch of the merge; reused across users, nothing allocated per user.
pub struct MergeScratch<I> {
    seen: IdMap,
    heads: Box<Heads>,
    rows: Vec<(usize, usize)>, // per row: its real slots, start..end
    sorted_items: Vec<I>,
    sorted_scores: Vec<f32>,
    order: Vec<(u128, usize)>,
}

impl<I: Id> MergeScratch<I> {
    pub fn new(interests: usize, slots: usize) -> Self {
        MergeScratch {
            seen: IdMap::with_capacity(interests * slots),
            heads: Box::new(Heads::new()),
            rows: Vec::with_capacity(interests),
            sorted_items: Vec::new(),
            sorted_scores: Vec::new(),
            order: Vec::new(),
        }
    }

    /// A cursor over user `user`'s distinct candidates `(item, f)` in (f desc, id asc) order.
    /// Checks the rows first: errors on NaN/inf scores of used slots; rows that are not in merge
    /// order (see [`check_rows`]) are sorted into scratch.
    pub fn cursor<'a>(
        &'a mut self,
        items: &'a [I],
        scores: &'a [f32],
        interests: usize,
        user: usize,
    ) -> Result<MergeCursor<'a, I>> {
        let slots = items.len().checked_div(interests).unwrap_or(0);
        let in_order = check_rows(items, scores, interests, slots, user, &mut self.rows)?;
        let (items, scores) = if in_order && interests <= MAX_ROWS {
            (items, scores)
        } else {
            let user_rows = (items, scores, interests, slots);
            let (it, sc) = (&mut self.sorted_items, &mut self.sorted_scores);
            sort_rows(it, sc, &mut self.order, &mut self.rows, user_rows);
            (&self.sorted_items[..], &self.sorted_scores[..])
        };
        self.seen.clear_for(interests * slots);
        self.heads.reset(scores, items, &self.rows);
        Ok(MergeCursor {
            items,
            scores,
            seen: &mut self.seen,
            heads: &mut self.heads,
            rows: &self.rows,
        })
    }
}

/// See [`MergeScratch::cursor`]. Emitted scores are normalised by `+ 0.0` (-0.0 becomes 0.0).
pub struct MergeCursor<'a, I> {
    items: &'a [I],
    scores: &'a [f32],
    seen: &'a mut IdMap,
    heads: &'a mut Heads,
    rows: &'a [(usize, usize)],
}

impl<I: Id> MergeCursor<'_, I> {
    /// The next distinct candidate, or None when all rows are exhausted.
    #[inline(always)]
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<(i64, f32)> {
        loop {
            if self.heads.peek() == 0 {
                return None;
            }
            let k = self.heads.pop(self.scores, self.items);
            let item = key_item(k);
            if self.seen.insert(item) {
                return Some((item, key_score(k)));
            }
        }
    }

    /// The most slots any row has consumed so far.
    pub fn depth(&self) -> usize {
        let used = self.rows.iter().enumerate();
        used.map(|(r, &(start, _))| self.heads.pos[r] - start).max().unwrap_or(0)
    }
}

/// Check one user's rows and record each row's real slots in `rows` (start..end). True when
/// every row is in merge order: real slots first, sorted by (score desc, id asc); false when some
/// row must be sorted first. Errors on a non-finite score in a real slot (item >= 0), the first
/// in row-major order. Retrieval output (strictly decreasing scores, no empty slot) passes the
/// first, branch-free test; the rest (ties, empty slots, errors) takes the exact scalar one.
fn check_rows<I: Id>(
    items: &[I],
    scores: &[f32],
    interests: usize,
    slots: usize,
    user: usize,
    rows: &mut Vec<(usize, usize)>,
) -> Result<bool> {
    rows.clear();
    let mut in_order = true;
    for r in 0..interests {
        let start = r * slots;
        let (it, sc) = (&items[start..start + slots], &scores[start..start + slots]);
        if all_real(it) && finite_strictly_decreasing(sc) {
            rows.push((start, start + slots));
            continue;
        }
        let (real, ordered) = check_row_exactly(it, sc, r, user)?;
        rows.push((start, start + real));
        in_order &= ordered;
    }
    Ok(in_order)
}

#[inline]
fn all_real<I: Id>(items: &[I]) -> bool {
    items.iter().fold(0, |acc, &x| acc | x.to_i64()) >= 0
}

/// All scores finite and each smaller than the previous (written to vectorise: no early exit).
#[inline]
fn finite_strictly_decreasing(scores: &[f32]) -> bool {
    let finite = scores.iter().fold(true, |ok, s| ok & (s.abs() < f32::INFINITY));
    let pairs = scores.iter().zip(scores.iter().skip(1));
    finite & pairs.fold(true, |ok, (a, b)| ok & (a > b))
}

/// The exact check of one row: (real slots, whether they come first and in merge order).
fn check_row_exactly<I: Id>(
    items: &[I],
    scores: &[f32],
    interest: usize,
    user: usize,
) -> Result<(usize, bool)> {
    let (mut real, mut ordered, mut gap) = (0, true, false);
    let mut last = u128::MAX;
    for (slot, (&it, &value)) in items.iter().zip(scores).enumerate() {
        let item = it.to_i64();
        if item < 0 {
            gap = true;
            continue;
        }
        if !value.is_finite() {
            return Err(CoreError::BadScore {
                user,
                interest,
                slot,
                value,
            });
        }
        let k = key(value, item);
        ordered &= !gap && k <= last;
        last = k;
        real += 1;
    }
    Ok((real, ordered))
}

/// Copy the rows into scratch in merge order, real slots only, and record them in `rows` (the
/// slow path for rows that come in another order). Beyond MAX_ROWS rows, all candidates are
/// sorted as one row.
fn sort_rows<I: Id>(
    out_items: &mut Vec<I>,
    out_scores: &mut Vec<f32>,
    order: &mut Vec<(u128, usize)>,
    rows: &mut Vec<(usize, usize)>,
    (items, scores, interests, slots): (&[I], &[f32], usize, usize),
) {
    let (groups, width) = if interests <= MAX_ROWS {
        (interests, slots)
    } else {
        (1, interests * slots)
    };
    out_items.clear();
    out_scores.clear();
    rows.clear();
    for g in 0..groups {
        order.clear();
        for j in g * width..(g + 1) * width {
            if items[j].to_i64() >= 0 {
                order.push((key(scores[j], items[j].to_i64()), j));
            }
        }
        order.sort_unstable_by(|a, b| b.0.cmp(&a.0));
        let start = out_items.len();
        rows.push((start, start + order.len()));
        for &(_, j) in order.iter() {
            out_items.push(items[j]);
            out_scores.push(scores[j]);
        }
    }
}

/// λ = 0 for one user: the `out_items.len()` items of largest f (ties: smaller id), padded with
/// item -1 / score -inf.
pub fn top_n_user<I: Id>(
    scratch: &mut MergeScratch<I>,
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
        let (mut it, mut sc) = ([0_i64; 4], [0_f32; 4]);
        top_n_user(
            &mut s,
            &[4_i32, 4, 2],
            &[0.9, 0.8, 0.7],
            1,
            0,
            &mut it,
            &mut sc,
        )
        .unwrap();
        assert_eq!(it, [4, 2, -1, -1]);
        assert_eq!(sc, [0.9, 0.7, f32::NEG_INFINITY, f32::NEG_INFINITY]);
        let (mut it, mut sc) = ([0_i64; 1], [0_f32; 1]);
        top_n_user(
            &mut s,
            &[4_i32, 4, 2],
            &[0.9, 0.8, 0.7],
            1,
            0,
            &mut it,
            &mut sc,
        )
        .unwrap();
        assert_eq!(it, [4]);
    }
}
