//! Ranking metrics (SPEC §6) in one pass per user, for several cut-offs k at once.
//!
//! For each user and each k the kernel writes Recall, NDCG, HitRate and (with a category table)
//! Diversity of the top-k recommendations. Means are left to the caller (from these per-user
//! values). T = the user's targets (CSR row), S = set(T), R = recs[:k] (item < 0 = empty slot).
//!
//! `Standard`: Recall = |R ∩ S| / |S|, HitRate = 1[|R ∩ S| > 0],
//! NDCG = Σ_{r: R[r] ∈ S} 1/log2(r+2) / Σ_{j < min(|S|, k)} 1/log2(j+2), Diversity = the share of
//! pairs of non-empty slots whose categories differ. A repeated recommendation is a hit only at
//! its first rank (R is a list of distinct items by contract; this keeps the values in [0, 1]).
//!
//! `Comirec`: the authors' `evaluate_full` (THUDM/ComiRec src/train.py), for comparing with
//! published numbers: recommendations are a set; hits = #{j : T[j] ∈ R} counting repeated
//! targets; Recall = hits / |T|; DCG = Σ_{j: T[j] ∈ R} 1/log2(j+2) — the discount is the target's
//! position in T, not a rank; NDCG = DCG / Σ_{j < hits} 1/log2(j+2) (0 when hits = 0);
//! Diversity over the distinct non-empty recommendations.
//!
//! Users without targets get NaN for Recall/NDCG/HitRate (the caller averages over the others);
//! their Diversity is still defined. Diversity of fewer than two items is 0.

use rayon::prelude::*;

use crate::buffer::{try_zeroed, Sizing};
use crate::error::{CoreError, Result};
use crate::parallel::{use_pool, USERS_PER_TASK};
use crate::table::IdMap;
use crate::{category_of, Id};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Standard,
    Comirec,
}

impl Protocol {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "standard" => Ok(Protocol::Standard),
            "comirec" => Ok(Protocol::Comirec),
            other => Err(CoreError::argument(
                "protocol",
                "\"standard\" or \"comirec\"",
                format!("{other:?}"),
            )),
        }
    }
}

/// Per k, the metrics in this column order (diversity only with a category table).
pub const METRIC_NAMES: [&str; 4] = ["recall", "ndcg", "hitrate", "diversity"];

/// Row-major (users, ks.len() * per_k) per-user values; column `ki * per_k + m` holds metric
/// `METRIC_NAMES[m]` at cut-off `ks[ki]`.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricTable {
    pub values: Vec<f64>,
    pub users: usize,
    pub per_k: usize,
}

/// Borrowed inputs of [`metrics`].
#[derive(Clone, Copy)]
pub struct MetricInputs<'a, R, T, C> {
    /// (users, width) ranked recommendations, row-major.
    pub recs: &'a [R],
    pub users: usize,
    pub width: usize,
    /// CSR targets: user u's targets are `target_items[indptr[u]..indptr[u+1]]`.
    pub indptr: &'a [i64],
    pub target_items: &'a [T],
    pub cats: Option<&'a [C]>,
}

fn validate<R, T, C>(x: &MetricInputs<'_, R, T, C>, ks: &[usize]) -> Result<()> {
    let cells = x.users.checked_mul(x.width);
    if cells != Some(x.recs.len()) {
        return Err(CoreError::shape(
            "recs",
            format!("{} x {} values", x.users, x.width),
            format!("{} values", x.recs.len()),
        ));
    }
    if x.indptr.len() != x.users + 1 {
        return Err(CoreError::shape(
            "targets",
            format!(
                "an indptr of length B + 1 = {} (B = rows of recs)",
                x.users + 1
            ),
            format!("length {}", x.indptr.len()),
        ));
    }
    let bad = |what: String| {
        Err(CoreError::Indptr {
            arg: "targets",
            what,
        })
    };
    if x.indptr[0] != 0 {
        return bad(format!("indptr[0] must be 0, got {}", x.indptr[0]));
    }
    if let Some(u) = x.indptr.windows(2).position(|w| w[1] < w[0]) {
        return bad(format!(
            "indptr must be non-decreasing, but indptr[{}] = {} > indptr[{}] = {}",
            u,
            x.indptr[u],
            u + 1,
            x.indptr[u + 1]
        ));
    }
    let last = x.indptr[x.users];
    if last != x.target_items.len() as i64 {
        return bad(format!(
            "indptr[-1] must equal the number of target items {}, got {}",
            x.target_items.len(),
            last
        ));
    }
    if ks.is_empty() {
        return Err(CoreError::argument(
            "ks",
            "at least one cut-off k",
            "an empty list",
        ));
    }
    if let Some(&k) = ks.iter().find(|&&k| k == 0 || k > x.width) {
        return Err(CoreError::argument(
            "ks",
            format!(
                "cut-offs in 1..={} (the number of columns of recs)",
                x.width
            ),
            k,
        ));
    }
    Ok(())
}

/// 1/log2(j+2) for j < len, and its prefix sums (the ideal DCG of m hits is `ideal[m]`).
struct Discounts {
    disc: Vec<f64>,
    ideal: Vec<f64>,
}

impl Discounts {
    fn new(len: usize) -> Self {
        let disc: Vec<f64> = (0..len).map(|j| 1.0 / ((j + 2) as f64).log2()).collect();
        let mut ideal = Vec::with_capacity(len + 1);
        let mut acc = 0.0;
        ideal.push(0.0);
        for d in &disc {
            acc += d;
            ideal.push(acc);
        }
        Discounts { disc, ideal }
    }
}

/// Per-user metrics for every user, every k in `ks` (in that order).
pub fn metrics<R: Id, T: Id, C: Id>(
    x: &MetricInputs<'_, R, T, C>,
    ks: &[usize],
    protocol: Protocol,
) -> Result<MetricTable> {
    validate(x, ks)?;
    let per_k = if x.cats.is_some() { 4 } else { 3 };
    let cols = ks.len() * per_k;
    // ks ascending, remembering each one's column block; kmax = the last.
    let mut order: Vec<(usize, usize)> = ks.iter().enumerate().map(|(i, &k)| (k, i)).collect();
    order.sort_unstable();
    let kmax = order[order.len() - 1].0;
    let max_targets = x
        .indptr
        .windows(2)
        .map(|w| (w[1] - w[0]) as usize)
        .max()
        .unwrap_or(0);
    let disc = Discounts::new(kmax.max(max_targets));
    let users = x.users;
    let what = || {
        format!(
            "the ({users}, {cols}) per-user table for {} cut-offs",
            ks.len()
        )
    };
    let sizing = Sizing {
        arg: "ks",
        what: &what,
        expected: "fewer cut-offs (or a smaller batch)",
    };
    let mut values = try_zeroed::<f64>(users.saturating_mul(cols), &sizing)?;

    let run_task = |sc: &mut Scratch, task: usize, out: &mut [f64]| -> Result<()> {
        let u0 = task * USERS_PER_TASK;
        for (du, row) in out.chunks_mut(cols).enumerate() {
            let u = u0 + du;
            let recs = &x.recs[u * x.width..u * x.width + kmax];
            let targets = &x.target_items[x.indptr[u] as usize..x.indptr[u + 1] as usize];
            if let Some(cats) = x.cats {
                if u + 1 < x.users {
                    let start = (u + 1) * x.width;
                    prefetch_categories(&x.recs[start..start + kmax], cats);
                }
                gather_categories(recs, cats, &mut sc.rec_cat);
            }
            match protocol {
                Protocol::Standard => {
                    standard_user(sc, x.cats, recs, targets, &order, &disc, per_k, u, row)?
                }
                Protocol::Comirec => {
                    comirec_user(sc, x.cats, recs, targets, &order, &disc, per_k, u, row)?
                }
            }
        }
        Ok(())
    };
    let new_scratch = || Scratch::new(kmax, ks.len());
    let per_task = USERS_PER_TASK * cols;
    if x.users > 0 && cols > 0 {
        if use_pool(x.users) {
            values
                .par_chunks_mut(per_task)
                .enumerate()
                .try_for_each_init(new_scratch, |sc, (t, out)| run_task(sc, t, out))?;
        } else {
            let mut sc = new_scratch();
            for (t, out) in values.chunks_mut(per_task).enumerate() {
                run_task(&mut sc, t, out)?;
            }
        }
    }
    Ok(MetricTable {
        values,
        users: x.users,
        per_k,
    })
}

/// One user's rows in, per-user values out; reused across users, nothing allocated per user.
struct Scratch {
    filter: Filter,    // over the short list of one user (targets or recommendations)
    set: IdMap,        // the same for long lists: targets (standard) or recs -> first rank
    cat_count: IdMap,  // category -> items so far in the top-k, for categories >= DIRECT_CATS
    counts: Vec<u32>,  // the same, indexed by category (all zero between users)
    rec_cat: Vec<i64>, // the categories of the user's top-kmax recommendations
    shown: Vec<bool>,  // which of them count for Diversity
    hits: Vec<usize>,
    dcg: Vec<f64>,
}

impl Scratch {
    fn new(kmax: usize, ks: usize) -> Self {
        Scratch {
            filter: Filter([0; FILTER_WORDS]),
            set: IdMap::with_capacity(kmax.max(64)),
            cat_count: IdMap::with_capacity(kmax),
            counts: Vec::new(),
            rec_cat: Vec::with_capacity(kmax),
            shown: Vec::with_capacity(kmax),
            hits: vec![0; ks],
            dcg: vec![0.0; ks],
        }
    }
}

/// Lists up to this long (a user's targets, or top-k recommendations) are looked up through
/// [`Filter`]; longer ones through the hash map.
const SHORT_LIST: usize = 64;
const FILTER_WORDS: usize = 32;

/// A one-hash Bloom filter of 2048 bits over a short list of ids, cleared per user (32 words):
/// most lookups are misses and cost one bit test; a set bit is confirmed by scanning the list
/// (at most SHORT_LIST ids, about 2% false positives). Exact for any ids.
struct Filter([u64; FILTER_WORDS]);

impl Filter {
    #[inline(always)]
    fn bit(id: i64) -> (usize, u64) {
        let h = ((id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 53) as usize;
        (h / 64 % FILTER_WORDS, 1 << (h % 64))
    }

    fn clear(&mut self) {
        self.0 = [0; FILTER_WORDS];
    }

    /// Set the bit of `id`; true when it was set already (so `id` may be in the list).
    #[inline(always)]
    fn insert(&mut self, id: i64) -> bool {
        let (w, b) = Self::bit(id);
        let was = self.0[w] & b != 0;
        self.0[w] |= b;
        was
    }

    #[inline(always)]
    fn may_contain(&self, id: i64) -> bool {
        let (w, b) = Self::bit(id);
        self.0[w] & b != 0
    }
}

/// The first position of `id` in `list`.
#[inline]
fn position<X: Id>(list: &[X], id: i64) -> Option<usize> {
    list.iter().position(|&x| x.to_i64() == id)
}

/// Check that `targets` holds ids >= 0 (one vectorised pass; the error names the first bad one).
#[inline]
fn check_targets<T: Id>(targets: &[T], user: usize) -> Result<()> {
    if targets.iter().fold(0, |acc, &t| acc | t.to_i64()) >= 0 {
        return Ok(());
    }
    let t = targets
        .iter()
        .map(|t| t.to_i64())
        .find(|&t| t < 0)
        .unwrap_or(-1);
    Err(CoreError::argument(
        "targets",
        format!("item ids >= 0 (user {user})"),
        t,
    ))
}

/// The categories of `recs` into `out` (i64::MIN where an id is outside the table), in a loop
/// without data-dependent branches so that the cache-missing loads overlap.
#[inline]
fn gather_categories<R: Id, C: Id>(recs: &[R], cats: &[C], out: &mut Vec<i64>) {
    out.clear();
    out.extend(
        recs.iter()
            .map(|&r| match cats.get(r.to_i64() as u64 as usize) {
                Some(c) => c.to_i64(),
                None => i64::MIN,
            }),
    );
}

/// Ask for the category entries of the next user's recommendations ahead of time.
#[inline]
fn prefetch_categories<R: Id, C: Id>(recs: &[R], cats: &[C]) {
    #[cfg(target_arch = "x86_64")]
    for &r in recs {
        let i = r.to_i64() as u64 as usize;
        if i < cats.len() {
            // SAFETY: the address is inside `cats`; a prefetch never faults nor writes.
            unsafe {
                use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                _mm_prefetch::<_MM_HINT_T0>(cats.as_ptr().add(i) as *const i8);
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (recs, cats);
}

#[inline]
fn diversity(m: u64, same: u64) -> f64 {
    if m < 2 {
        return 0.0;
    }
    let pairs = m * (m - 1) / 2;
    (pairs - same) as f64 / pairs as f64
}

/// Recall, NDCG, HitRate into the first three columns of `out` (NaN without targets).
#[inline]
fn write_accuracy(out: &mut [f64], hits: usize, dcg: f64, distinct: usize, ideal: f64) {
    if distinct == 0 {
        out[..3].fill(f64::NAN);
    } else {
        out[0] = hits as f64 / distinct as f64;
        out[1] = dcg / ideal;
        out[2] = (hits > 0) as u8 as f64;
    }
}

/// Categories below this are counted in a table indexed by category.
const DIRECT_CATS: i64 = 1 << 16;

/// Diversity@k for every k into column 3 of each block of `row`: over the recommendations r
/// with `sc.shown[r]` (their categories in `sc.rec_cat`, gathered), the share of pairs in
/// different categories. Errors on the first shown item without a valid category.
#[allow(clippy::too_many_arguments)]
fn diversity_pass<R: Id, C: Id>(
    sc: &mut Scratch,
    cats: &[C],
    recs: &[R],
    order: &[(usize, usize)],
    per_k: usize,
    user: usize,
    row: &mut [f64],
) -> Result<()> {
    let shown = sc.shown.iter().zip(&sc.rec_cat);
    let top = shown.fold(0, |acc, (&s, &c)| acc | if s { c } else { 0 });
    let direct = (0..DIRECT_CATS).contains(&top); // all shown categories valid and small
    if direct && sc.counts.len() <= top as usize {
        sc.counts.resize((top as usize + 1).next_power_of_two(), 0);
    }
    sc.cat_count.clear_for(recs.len());
    let (mut m, mut same, mut start) = (0_u64, 0_u64, 0);
    for &(k, block) in order {
        for (r, (&shown, &c)) in sc.shown[start..k]
            .iter()
            .zip(&sc.rec_cat[start..k])
            .enumerate()
        {
            if !shown {
                continue;
            }
            let before = if direct {
                let n = &mut sc.counts[c as usize];
                *n += 1;
                *n - 1
            } else {
                if c < 0 {
                    let item = recs[start + r].to_i64();
                    category_of(cats, item, "recs", user)?; // the precise error
                }
                let (prev, new) = sc.cat_count.get_or_insert(c, 1);
                if !new {
                    *sc.cat_count.get_mut(c).expect("present") = prev + 1;
                }
                if new {
                    0
                } else {
                    prev
                }
            };
            same += before as u64;
            m += 1;
        }
        start = k;
        row[block * per_k + 3] = diversity(m, same);
    }
    if direct {
        for (&s, &c) in sc.shown.iter().zip(&sc.rec_cat) {
            if s {
                sc.counts[c as usize] = 0;
            }
        }
    }
    Ok(())
}

/// The standard protocol for one user (see the module documentation).
#[allow(clippy::too_many_arguments)]
fn standard_user<R: Id, T: Id, C: Id>(
    sc: &mut Scratch,
    cats: Option<&[C]>,
    recs: &[R],
    targets: &[T],
    order: &[(usize, usize)],
    disc: &Discounts,
    per_k: usize,
    user: usize,
    row: &mut [f64],
) -> Result<()> {
    check_targets(targets, user)?;
    let short = targets.len() <= SHORT_LIST;
    // |S| = the number of distinct targets
    let mut distinct = 0;
    if short {
        sc.filter.clear();
        for (j, &t) in targets.iter().enumerate() {
            let id = t.to_i64();
            let repeated = sc.filter.insert(id) && position(&targets[..j], id).is_some();
            distinct += !repeated as usize;
        }
    } else {
        sc.set.clear_for(targets.len());
        for &t in targets {
            sc.set.insert(t.to_i64());
        }
        distinct = sc.set.len();
    }
    // hits in rank order; a target is hit once (a repeated recommendation earns nothing)
    let (mut used, mut hits, mut dcg, mut start) = (0_u64, 0, 0.0_f64, 0);
    for &(k, block) in order {
        for (i, &rec) in recs[start..k].iter().enumerate() {
            let (r, rec) = (start + i, rec.to_i64());
            let hit = if rec < 0 {
                false
            } else if short {
                match sc.filter.may_contain(rec).then(|| position(targets, rec)) {
                    Some(Some(j)) if used & (1 << j) == 0 => {
                        used |= 1 << j;
                        true
                    }
                    _ => false,
                }
            } else {
                match sc.set.get_mut(rec) {
                    Some(v) if *v == 0 => {
                        *v = 1;
                        true
                    }
                    _ => false,
                }
            };
            if hit {
                hits += 1;
                dcg += disc.disc[r];
            }
        }
        start = k;
        let ideal = disc.ideal[distinct.min(k)];
        write_accuracy(&mut row[block * per_k..], hits, dcg, distinct, ideal);
    }
    if let Some(cats) = cats {
        sc.shown.clear();
        sc.shown.extend(recs.iter().map(|&rec| rec.to_i64() >= 0));
        diversity_pass(sc, cats, recs, order, per_k, user, row)?;
    }
    Ok(())
}

/// The authors' protocol for one user (see the module documentation).
#[allow(clippy::too_many_arguments)]
fn comirec_user<R: Id, T: Id, C: Id>(
    sc: &mut Scratch,
    cats: Option<&[C]>,
    recs: &[R],
    targets: &[T],
    order: &[(usize, usize)],
    disc: &Discounts,
    per_k: usize,
    user: usize,
    row: &mut [f64],
) -> Result<()> {
    // Recommendations as a set: which ranks hold an id's first occurrence.
    let short = recs.len() <= SHORT_LIST;
    sc.shown.clear();
    if short {
        sc.filter.clear();
        for (r, &rec) in recs.iter().enumerate() {
            let rec = rec.to_i64();
            let first = rec >= 0 && !(sc.filter.insert(rec) && position(&recs[..r], rec).is_some());
            sc.shown.push(first);
        }
    } else {
        sc.set.clear_for(recs.len());
        for (r, &rec) in recs.iter().enumerate() {
            let rec = rec.to_i64();
            sc.shown
                .push(rec >= 0 && sc.set.get_or_insert(rec, r as u32).1);
        }
    }
    if let Some(cats) = cats {
        diversity_pass(sc, cats, recs, order, per_k, user, row)?; // over distinct items
    }
    // Targets in order, duplicates counted; a target at position j hits every k > its rank.
    sc.hits.fill(0);
    sc.dcg.fill(0.0);
    check_targets(targets, user)?;
    for (j, &t) in targets.iter().enumerate() {
        let id = t.to_i64();
        let rank = if short {
            sc.filter
                .may_contain(id)
                .then(|| position(recs, id))
                .flatten()
        } else {
            sc.set.get(id).map(|rank| rank as usize)
        };
        if let Some(rank) = rank {
            let first = order.partition_point(|&(k, _)| k <= rank);
            for i in first..order.len() {
                sc.hits[i] += 1;
                sc.dcg[i] += disc.disc[j];
            }
        }
    }
    for (i, &(_, block)) in order.iter().enumerate() {
        let out = &mut row[block * per_k..block * per_k + 3];
        if targets.is_empty() {
            out.fill(f64::NAN);
            continue;
        }
        let hits = sc.hits[i];
        out[0] = hits as f64 / targets.len() as f64;
        out[1] = if hits > 0 {
            sc.dcg[i] / disc.ideal[hits]
        } else {
            0.0
        };
        out[2] = (hits > 0) as u8 as f64;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(
        recs: &[i64],
        width: usize,
        indptr: &[i64],
        targets: &[i64],
        cats: Option<&[i64]>,
        ks: &[usize],
        p: Protocol,
    ) -> Result<MetricTable> {
        let x = MetricInputs {
            recs,
            users: indptr.len() - 1,
            width,
            indptr,
            target_items: targets,
            cats,
        };
        metrics(&x, ks, p)
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn standard_by_hand() {
        // recs [7, 3, 9, 1], targets {3, 1, 5}: hits at ranks 1 and 3.
        let cats = [0_i64, 0, 0, 1, 0, 0, 0, 2, 0, 1];
        let t = run(
            &[7, 3, 9, 1],
            4,
            &[0, 3],
            &[3, 1, 5],
            Some(&cats),
            &[2, 4],
            Protocol::Standard,
        )
        .unwrap();
        let v = &t.values;
        let l = |r: f64| 1.0 / (r + 2.0).log2();
        // @2: R = [7, 3]: one hit of three targets; ideal over min(3, 2) = 2 ranks.
        assert!(close(v[0], 1.0 / 3.0));
        assert!(close(v[1], l(1.0) / (l(0.0) + l(1.0))));
        assert_eq!(v[2], 1.0);
        assert_eq!(v[3], 1.0); // cats 2 and 1 differ
                               // @4: cats [2, 1, 1, 0]: 6 pairs, one same-category pair
        assert!(close(v[4], 2.0 / 3.0));
        assert!(close(v[5], (l(1.0) + l(3.0)) / (l(0.0) + l(1.0) + l(2.0))));
        assert_eq!(v[6], 1.0);
        assert!(close(v[7], 5.0 / 6.0));
    }

    #[test]
    fn comirec_protocol_by_hand() {
        // targets [5, 3, 3, 8]: 3 twice. recs [3, 4]: hits = 2 (both 3s), recall = 2/4;
        // DCG uses target positions 1 and 2; ideal over the first 2 positions.
        let t = run(
            &[3, 4],
            2,
            &[0, 4],
            &[5, 3, 3, 8],
            None,
            &[2],
            Protocol::Comirec,
        )
        .unwrap();
        let l = |r: f64| 1.0 / (r + 2.0).log2();
        assert!(close(t.values[0], 0.5));
        assert!(close(t.values[1], (l(1.0) + l(2.0)) / (l(0.0) + l(1.0))));
        assert_eq!(t.values[2], 1.0);
        // the standard protocol on the same input: |S| = 3, one distinct hit at rank 0
        let s = run(
            &[3, 4],
            2,
            &[0, 4],
            &[5, 3, 3, 8],
            None,
            &[2],
            Protocol::Standard,
        )
        .unwrap();
        assert!(close(s.values[0], 1.0 / 3.0));
        assert!(close(s.values[1], 1.0 / (l(0.0) + l(1.0))));
    }

    #[test]
    fn users_without_targets_are_nan_and_empty_slots_are_skipped() {
        let cats = [0_i64, 1, 1];
        let t = run(
            &[1, -1, 2, -1, -1, -1],
            3,
            &[0, 0, 1],
            &[2],
            Some(&cats),
            &[3],
            Protocol::Standard,
        )
        .unwrap();
        assert!(t.values[0].is_nan() && t.values[1].is_nan() && t.values[2].is_nan());
        assert_eq!(t.values[3], 0.0); // cats 1, 1: same category
        assert_eq!(&t.values[4..], &[0.0, 0.0, 0.0, 0.0]); // no recommendation at all
    }

    #[test]
    fn bad_inputs_name_the_argument() {
        let e = |r: Result<MetricTable>| r.unwrap_err().to_string();
        assert!(e(run(
            &[1, 2],
            2,
            &[0, 1],
            &[1],
            None,
            &[3],
            Protocol::Standard
        ))
        .starts_with("ks: "));
        assert!(e(run(
            &[1, 2],
            2,
            &[0, 1],
            &[1],
            None,
            &[],
            Protocol::Standard
        ))
        .starts_with("ks: "));
        assert!(e(run(
            &[1, 2],
            2,
            &[1, 1],
            &[1],
            None,
            &[1],
            Protocol::Standard
        ))
        .starts_with("targets: "));
        assert!(e(run(
            &[1, 2, 3, 4],
            2,
            &[0, 1, 0],
            &[1],
            None,
            &[1],
            Protocol::Standard
        ))
        .starts_with("targets: "));
        assert!(e(run(
            &[1, 2],
            2,
            &[0, 2],
            &[1],
            None,
            &[1],
            Protocol::Standard
        ))
        .starts_with("targets: "));
        assert!(e(run(
            &[1, 2],
            2,
            &[0, 1],
            &[-4],
            None,
            &[1],
            Protocol::Comirec
        ))
        .starts_with("targets: "));
        let cats = [0_i64, 0];
        assert!(e(run(
            &[1, 2],
            2,
            &[0, 1],
            &[1],
            Some(&cats),
            &[2],
            Protocol::Standard
        ))
        .starts_with("recs: "));
        assert!(Protocol::parse("trec")
            .unwrap_err()
            .to_string()
            .starts_with("protocol: "));
    }
}
