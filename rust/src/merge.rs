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

/// Per-task scratch of the merge; reused across users, nothing allocated per user.
pub struct MergeScratch<I> {
    state: MergeState,
    sorted_items: Vec<I>,
    sorted_scores: Vec<f32>,
    row: Vec<(i64, f32)>,
}

/// The merge's position: one head per row, and the pending tie group.
struct MergeState {
    seen: IdMap,
    heads: Vec<usize>,
    head_score: Vec<f32>,
    group: Vec<i64>,
    group_pos: usize,
    group_score: f32,
}

impl<I: Id> MergeScratch<I> {
    pub fn new(interests: usize, slots: usize) -> Self {
        MergeScratch {
            state: MergeState {
                seen: IdMap::with_capacity(interests * slots),
                heads: Vec::with_capacity(interests),
                head_score: Vec::with_capacity(interests),
                group: Vec::new(),
                group_pos: 0,
                group_score: 0.0,
            },
            sorted_items: Vec::new(),
            sorted_scores: Vec::new(),
            row: Vec::new(),
        }
    }

    /// A cursor over user `user`'s distinct candidates `(item, f)` in (f desc, id asc) order.
    /// Checks the rows first: errors on NaN/inf scores of used slots; unsorted rows are sorted
    /// into scratch.
    pub fn cursor<'a>(
        &'a mut self,
        items: &'a [I],
        scores: &'a [f32],
        interests: usize,
        user: usize,
    ) -> Result<MergeCursor<'a, I>> {
        let slots = items.len().checked_div(interests).unwrap_or(0);
        let (items, scores) = if rows_sorted(items, scores, interests, slots, user)? {
            (items, scores)
        } else {
            sort_rows(
                &mut self.sorted_items,
                &mut self.sorted_scores,
                &mut self.row,
                items,
                scores,
                interests,
                slots,
            );
            (&self.sorted_items[..], &self.sorted_scores[..])
        };
        let st = &mut self.state;
        st.seen.clear_for(interests * slots);
        st.heads.clear();
        st.head_score.clear();
        st.group.clear();
        st.group_pos = 0;
        for r in 0..interests {
            let end = (r + 1) * slots;
            let p = next_valid(items, r * slots, end);
            st.heads.push(p);
            // Scores of non-empty slots are finite, so -inf marks an exhausted row.
            st.head_score.push(if p < end {
                scores[p]
            } else {
                f32::NEG_INFINITY
            });
        }
        Ok(MergeCursor {
            items,
            scores,
            slots,
            st,
        })
    }
}

/// See [`MergeScratch::cursor`]. Emitted scores get `+ 0.0` so that -0.0 becomes 0.0: equal
/// scores then also compare equal in total orders.
pub struct MergeCursor<'a, I> {
    items: &'a [I],
    scores: &'a [f32],
    slots: usize,
    st: &'a mut MergeState,
}

impl<I: Id> MergeCursor<'_, I> {
    #[inline(always)]
    fn advance(&mut self, r: usize) {
        let end = (r + 1) * self.slots;
        let p = next_valid(self.items, self.st.heads[r] + 1, end);
        self.st.heads[r] = p;
        self.st.head_score[r] = if p < end {
            self.scores[p]
        } else {
            f32::NEG_INFINITY
        };
    }

    /// The next distinct candidate, or None when all rows are exhausted.
    #[inline(always)]
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Option<(i64, f32)> {
        loop {
            if self.st.group_pos < self.st.group.len() {
                let item = self.st.group[self.st.group_pos];
                self.st.group_pos += 1;
                if self.st.seen.insert(item) {
                    return Some((item, self.st.group_score));
                }
                continue;
            }
            if self.st.head_score.is_empty() {
                return None;
            }
            // Branch-free max over the heads: which row wins is data-dependent, unpredictable.
            let hs = &self.st.head_score;
            let mut best = 0;
            let mut bs = hs[0];
            for (r, &s) in hs.iter().enumerate().skip(1) {
                let gt = s > bs;
                bs = if gt { s } else { bs };
                best = if gt { r } else { best };
            }
            if bs == f32::NEG_INFINITY {
                return None; // every row exhausted
            }
            let tie = hs.iter().map(|&s| (s == bs) as u32).sum::<u32>() > 1;
            self.st.group.clear();
            self.st.group_pos = 0;
            if !tie {
                let item = self.items[self.st.heads[best]].to_i64();
                self.advance(best);
                if self.st.head_score[best] != bs {
                    // The common case: a unique best head.
                    if self.st.seen.insert(item) {
                        return Some((item, bs + 0.0));
                    }
                    continue;
                }
                self.st.group.push(item);
            }
            // Several slots share the best score: queue them all, by id.
            for r in 0..self.st.heads.len() {
                while self.st.head_score[r] == bs {
                    let item = self.items[self.st.heads[r]].to_i64();
                    self.st.group.push(item);
                    self.advance(r);
                }
            }
            self.st.group.sort_unstable();
            self.st.group_score = bs + 0.0;
        }
    }
}

/// Whether every row is sorted by score descending, ignoring empty slots (item < 0); errors on a
/// non-finite score in a non-empty slot.
fn rows_sorted<I: Id>(
    items: &[I],
    scores: &[f32],
    interests: usize,
    slots: usize,
    user: usize,
) -> Result<bool> {
    let mut sorted = true;
    for r in 0..interests {
        let mut last = f32::INFINITY;
        let row = r * slots..(r + 1) * slots;
        for (j, (&it, &s)) in items[row.clone()].iter().zip(&scores[row]).enumerate() {
            if it.to_i64() >= 0 {
                if !s.is_finite() {
                    return Err(CoreError::BadScore {
                        user,
                        interest: r,
                        slot: j,
                        value: s,
                    });
                }
                sorted &= s <= last;
                last = s;
            }
        }
    }
    Ok(sorted)
}

/// Copy the rows into scratch, each sorted by (score desc, id asc), empty slots last.
fn sort_rows<I: Id>(
    out_items: &mut Vec<I>,
    out_scores: &mut Vec<f32>,
    row: &mut Vec<(i64, f32)>,
    items: &[I],
    scores: &[f32],
    interests: usize,
    slots: usize,
) {
    out_items.clear();
    out_scores.clear();
    for r in 0..interests {
        row.clear();
        for j in r * slots..(r + 1) * slots {
            if items[j].to_i64() >= 0 {
                row.push((j as i64, scores[j]));
            }
        }
        // Keys are (score desc, item asc); `row` holds the slot index to recover the typed item.
        row.sort_unstable_by(|a, b| {
            b.1.total_cmp(&a.1).then(
                items[a.0 as usize]
                    .to_i64()
                    .cmp(&items[b.0 as usize].to_i64()),
            )
        });
        for &(j, s) in row.iter() {
            out_items.push(items[j as usize]);
            out_scores.push(s);
        }
        for _ in row.len()..slots {
            out_items.push(I::EMPTY);
            out_scores.push(f32::NEG_INFINITY);
        }
    }
}

/// Position of the first non-empty slot in `p..end` (or `end`).
#[inline(always)]
fn next_valid<I: Id>(items: &[I], mut p: usize, end: usize) -> usize {
    while p < end && items[p].to_i64() < 0 {
        p += 1;
    }
    p
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
