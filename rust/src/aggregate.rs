//! Aggregation of K·N per-interest candidates into one top-n list per user (SPEC §5, Algorithm 2).
//!
//! λ = 0 is the merge of `merge.rs` stopped after n distinct items. For λ > 0 the greedy picks, n
//! times, the remaining item maximising gain(i) = f(i) + λ·#{k ∈ S : cat(k) ≠ cat(i)} (float64),
//! ties → larger f → smaller id. As #{...} = |S| − count_S(cat(i)), every item of a category
//! shares the diversity term, so only each category's best remaining item can win, and the
//! categories with the same count c form a class whose winner is its best (f, −id) head: rounding
//! of f + λ·(|S| − c) is monotone in f. Per pick we therefore compare one head per class:
//! class 0 (categories not yet picked) is the next item of the merge whose category has no pick,
//! classes c ≥ 1 are small heaps; a pick moves its category up one class. No O(n·K·N) scan, and
//! the merge is consumed lazily (see `greedy_user`): only the candidates it reaches are looked up
//! in `cats` (validated then), typically a little more than n of the K·N.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::merge::{top_n_user, CandidateView, MergeScratch};
use crate::parallel::{use_pool, USERS_PER_TASK};
use crate::table::IdMap;
use crate::{category_of, Id};

/// The diversity factor λ, validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Lambda {
    Zero,
    Finite(f64),
    Inf,
}

impl Lambda {
    pub fn new(lam: f64) -> Result<Self> {
        if lam.is_nan() || lam < 0.0 {
            return Err(CoreError::argument(
                "lam",
                "a number >= 0 (float('inf') allowed)",
                lam,
            ));
        }
        Ok(if lam == 0.0 {
            Lambda::Zero
        } else if lam.is_infinite() {
            Lambda::Inf
        } else {
            Lambda::Finite(lam)
        })
    }
}

/// Row-major (users, n) results: items (-1 pad) and f (-inf pad).
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregated {
    pub items: Vec<i64>,
    pub scores: Vec<f32>,
    pub users: usize,
    pub n: usize,
}

/// Aggregate every user of `cands` into `n` items. `cats` (item id -> category) is needed when
/// λ > 0 and is then validated for each distinct candidate looked up; at λ = 0 it is not read.
pub fn aggregate<I: Id, C: Id>(
    cands: &CandidateView<'_, I>,
    cats: Option<&[C]>,
    lam: Lambda,
    n: usize,
) -> Result<Aggregated> {
    if n == 0 {
        return Err(CoreError::argument(
            "n",
            "a positive number of items per user",
            0,
        ));
    }
    let cats = match (lam, cats) {
        (Lambda::Zero, _) => None,
        (_, Some(c)) => Some(c),
        (_, None) => {
            return Err(CoreError::argument(
                "cats",
                "a category table (1-D int array, item id -> category) when lam > 0",
                "None",
            ))
        }
    };
    let users = cands.users;
    let total = users
        .checked_mul(n)
        .ok_or_else(|| CoreError::argument("n", "n * batch size to fit in memory", n))?;
    let mut out_items = vec![0_i64; total];
    let mut out_scores = vec![0_f32; total];
    let (k, slots) = (cands.interests, cands.slots);

    let run_task =
        |sc: &mut Scratch<I>, task: usize, oi: &mut [i64], os: &mut [f32]| -> Result<()> {
            let u0 = task * USERS_PER_TASK;
            for (du, (oi, os)) in oi.chunks_mut(n).zip(os.chunks_mut(n)).enumerate() {
                let u = u0 + du;
                let (items, scores) = cands.user(u);
                match cats {
                    None => top_n_user(&mut sc.merge, items, scores, k, u, oi, os)?,
                    Some(cats) => {
                        if u + 1 < users {
                            prefetch_categories(
                                cands.user(u + 1).0,
                                slots,
                                n.div_ceil(k.max(1)) + 4,
                                cats,
                            );
                        }
                        greedy_user(sc, items, scores, k, u, cats, lam, oi, os)?
                    }
                }
            }
            Ok(())
        };

    let per_task = USERS_PER_TASK * n;
    if use_pool(users) {
        out_items
            .par_chunks_mut(per_task)
            .zip(out_scores.par_chunks_mut(per_task))
            .enumerate()
            .try_for_each_init(
                || Scratch::new(k, slots, n),
                |sc, (t, (oi, os))| run_task(sc, t, oi, os),
            )?;
    } else if users > 0 {
        let mut sc = Scratch::new(k, slots, n);
        for (t, (oi, os)) in out_items
            .chunks_mut(per_task)
            .zip(out_scores.chunks_mut(per_task))
            .enumerate()
        {
            run_task(&mut sc, t, oi, os)?;
        }
    }
    Ok(Aggregated {
        items: out_items,
        scores: out_scores,
        users,
        n,
    })
}

const NONE: u32 = u32::MAX;

/// Ask for the category entries of the next user's candidates while this user is processed:
/// the table has one entry per catalogue item and the lookups would otherwise miss cache.
#[inline]
fn prefetch_categories<I: Id, C: Id>(items: &[I], slots: usize, depth: usize, cats: &[C]) {
    #[cfg(target_arch = "x86_64")]
    for row in items.chunks(slots.max(1)) {
        for &item in &row[..depth.min(row.len())] {
            let i = item.to_i64() as u64 as usize; // negative ids become huge and are skipped
            if i < cats.len() {
                // SAFETY: the address is inside `cats`; a prefetch never faults nor writes.
                unsafe {
                    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
                    _mm_prefetch::<_MM_HINT_T0>(cats.as_ptr().add(i) as *const i8);
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (items, slots, depth, cats);
}

/// A category's best remaining item, as held in its class heap: max f, then min id.
#[derive(Clone, Copy)]
struct Head {
    f: f32,
    item: i64,
    pos: u32,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        // f is finite and never -0.0 (see merge.rs), so total_cmp is the numeric order.
        self.f.total_cmp(&other.f).then(other.item.cmp(&self.item))
    }
}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}

/// Per-task scratch, reused across users.
struct Scratch<I> {
    merge: MergeScratch<I>,
    cat_index: IdMap, // category id -> local category index
    // Candidates taken from the merge so far, in (f desc, id asc) order:
    item: Vec<i64>,
    f: Vec<f32>,
    cat: Vec<u32>,  // local category
    next: Vec<u32>, // the next known candidate of the same category (NONE: none yet)
    // Per local category:
    count: Vec<u32>, // items picked so far (its class)
    first: Vec<u32>, // its best remaining known candidate (NONE: none known)
    last: Vec<u32>,  // its last known candidate (to link `next`)
    classes: Vec<BinaryHeap<Head>>,
    nonempty: Vec<u64>, // bitset over classes
}

impl<I: Id> Scratch<I> {
    fn new(interests: usize, slots: usize, n: usize) -> Self {
        let cands = interests * slots;
        Scratch {
            merge: MergeScratch::new(interests, slots),
            cat_index: IdMap::with_capacity(cands),
            item: Vec::with_capacity(cands),
            f: Vec::with_capacity(cands),
            cat: Vec::with_capacity(cands),
            next: Vec::with_capacity(cands),
            count: Vec::with_capacity(cands),
            first: Vec::with_capacity(cands),
            last: Vec::with_capacity(cands),
            classes: Vec::new(),
            nonempty: vec![0; (n + 2).div_ceil(64)],
        }
    }
}

/// Whether candidate `a` beats `b` when |S| = `picked`. A candidate is (class, f, item), class =
/// the number of already picked items of its category.
#[inline]
fn beats(lam: Lambda, picked: usize, a: (usize, f32, i64), b: (usize, f32, i64)) -> bool {
    let by_gain = match lam {
        // maximise the diversity term |S| - class first
        Lambda::Inf => b.0.cmp(&a.0),
        Lambda::Finite(l) => {
            let ga = a.1 as f64 + l * (picked - a.0) as f64;
            let gb = b.1 as f64 + l * (picked - b.0) as f64;
            ga.partial_cmp(&gb).unwrap_or(Ordering::Equal)
        }
        Lambda::Zero => Ordering::Equal,
    };
    let ord = by_gain
        .then(a.1.partial_cmp(&b.1).unwrap_or(Ordering::Equal))
        .then(b.2.cmp(&a.2));
    ord == Ordering::Greater
}

/// Algorithm 2 for one user. The merge is consumed lazily: it is advanced only until it yields
/// an item of a category with no pick yet (the class-0 head). Any candidate further down has a
/// smaller or equal f and, its category being picked already, a smaller diversity term, so it
/// cannot beat the class-0 head (ties included: equal f comes later in id order); the winner is
/// the class-0 head or a known head of a picked category. Only taken candidates are looked up
/// in `cats`, typically little more than n of the K·N.
#[allow(clippy::too_many_arguments)]
fn greedy_user<I: Id, C: Id>(
    sc: &mut Scratch<I>,
    items: &[I],
    scores: &[f32],
    interests: usize,
    user: usize,
    cats: &[C],
    lam: Lambda,
    out_items: &mut [i64],
    out_scores: &mut [f32],
) -> Result<()> {
    let n = out_items.len();
    let Scratch {
        merge,
        cat_index,
        item,
        f,
        cat,
        next,
        count,
        first,
        last,
        classes,
        nonempty,
    } = sc;
    let mut cur = merge.cursor(items, scores, interests, user)?;
    cat_index.clear_for(items.len());
    for v in [&mut *cat, &mut *next, &mut *count, &mut *first, &mut *last] {
        v.clear();
    }
    item.clear();
    f.clear();
    if classes.len() < n + 2 {
        classes.resize_with(n + 2, BinaryHeap::new);
    }
    let push =
        |classes: &mut Vec<BinaryHeap<Head>>, nonempty: &mut Vec<u64>, class: usize, h: Head| {
            classes[class].push(h);
            nonempty[class / 64] |= 1 << (class % 64);
        };
    let mut head0: Option<usize> = None; // the class-0 head
    let mut exhausted = false;
    let mut m = 0;
    while m < n {
        // 1. Advance the merge to the next item of a category without picks, filing the items of
        //    picked categories met on the way as their categories' known candidates.
        while head0.is_none() && !exhausted {
            let Some((it, fv)) = cur.next() else {
                exhausted = true;
                break;
            };
            let c = category_of(cats, it, "items", user)?;
            let (local, new) = cat_index.get_or_insert(c, count.len() as u32);
            let l = local as usize;
            if new {
                count.push(0);
                first.push(NONE);
                last.push(NONE);
            }
            let p = item.len();
            item.push(it);
            f.push(fv);
            cat.push(local);
            next.push(NONE);
            if count[l] == 0 {
                head0 = Some(p);
            } else if first[l] == NONE {
                first[l] = p as u32;
                last[l] = p as u32;
                let h = Head {
                    f: fv,
                    item: it,
                    pos: p as u32,
                };
                push(classes, nonempty, count[l] as usize, h);
            } else {
                next[last[l] as usize] = p as u32;
                last[l] = p as u32;
            }
        }
        // 2. The best of the class-0 head and each class's best head.
        let mut best: Option<(usize, usize)> = None; // (class, position)
        let mut key = (0, 0.0_f32, 0_i64);
        if let Some(p) = head0 {
            best = Some((0, p));
            key = (0, f[p], item[p]);
        }
        for (w, &word) in nonempty.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let class = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let h = classes[class].peek().expect("nonempty class");
                let cand = (class, h.f, h.item);
                if best.is_none() || beats(lam, m, cand, key) {
                    best = Some((class, h.pos as usize));
                    key = cand;
                }
            }
        }
        let Some((class, pos)) = best else { break };
        // 3. Pick it; its category moves up one class with its next known candidate.
        out_items[m] = item[pos];
        out_scores[m] = f[pos];
        m += 1;
        let l = cat[pos] as usize;
        count[l] = class as u32 + 1;
        if class == 0 {
            head0 = None;
        } else {
            classes[class].pop();
            if classes[class].is_empty() {
                nonempty[class / 64] &= !(1 << (class % 64));
            }
            let nx = next[pos];
            first[l] = nx;
            if nx == NONE {
                last[l] = NONE;
            } else {
                let nx = nx as usize;
                let h = Head {
                    f: f[nx],
                    item: item[nx],
                    pos: nx as u32,
                };
                push(classes, nonempty, class + 1, h);
            }
        }
    }
    out_items[m..].fill(-1);
    out_scores[m..].fill(f32::NEG_INFINITY);
    for w in 0..nonempty.len() {
        let mut bits = nonempty[w];
        while bits != 0 {
            classes[w * 64 + bits.trailing_zeros() as usize].clear();
            bits &= bits - 1;
        }
        nonempty[w] = 0;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The literal Algorithm 2 (O(n·D·|S|)): the oracle for the class-based greedy.
    fn brute(
        items: &[i64],
        scores: &[f32],
        cats: &[i64],
        lam: f64,
        n: usize,
    ) -> (Vec<i64>, Vec<f32>) {
        let mut f: Vec<(i64, f32)> = Vec::new();
        for (&i, &s) in items.iter().zip(scores) {
            if i < 0 {
                continue;
            }
            match f.iter_mut().find(|e| e.0 == i) {
                Some(e) => e.1 = e.1.max(s),
                None => f.push((i, s)),
            }
        }
        let mut picked: Vec<(i64, f32)> = Vec::new();
        while picked.len() < n && !f.is_empty() {
            let div = |i: i64| {
                picked
                    .iter()
                    .filter(|k| cats[k.0 as usize] != cats[i as usize])
                    .count()
            };
            let mut best = 0;
            for c in 1..f.len() {
                let (a, b) = (f[c], f[best]);
                let ord = if lam.is_infinite() {
                    div(a.0).cmp(&div(b.0))
                } else {
                    let ga = a.1 as f64 + lam * div(a.0) as f64;
                    let gb = b.1 as f64 + lam * div(b.0) as f64;
                    ga.partial_cmp(&gb).unwrap()
                };
                if ord.then(a.1.partial_cmp(&b.1).unwrap()).then(b.0.cmp(&a.0)) == Ordering::Greater
                {
                    best = c;
                }
            }
            picked.push(f.remove(best));
        }
        let mut it: Vec<i64> = picked.iter().map(|p| p.0).collect();
        let mut sc: Vec<f32> = picked.iter().map(|p| p.1).collect();
        it.resize(n, -1);
        sc.resize(n, f32::NEG_INFINITY);
        (it, sc)
    }

    struct Rng(u64);
    impl Rng {
        fn below(&mut self, k: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % k
        }
    }

    #[test]
    fn greedy_matches_the_literal_algorithm_on_random_batches() {
        let mut rng = Rng(0x2545F4914F6CDD1D);
        for case in 0..400 {
            let (b, k, slots) = (
                1 + rng.below(3) as usize,
                1 + rng.below(4) as usize,
                rng.below(7) as usize,
            );
            let n_items = 2 + rng.below(12) as usize;
            let cats: Vec<i64> = (0..n_items).map(|_| rng.below(4) as i64).collect();
            let len = b * k * slots;
            // coarse scores -> many exact ties; some slots empty; rows sorted or not
            let items: Vec<i64> = (0..len)
                .map(|_| rng.below(n_items as u64 + 2) as i64 - 2)
                .map(|i| i.max(-1))
                .collect();
            let mut scores: Vec<f32> = (0..len).map(|_| rng.below(5) as f32 * 0.25 - 0.5).collect();
            if case % 2 == 0 {
                for row in scores.chunks_mut(slots.max(1)) {
                    row.sort_by(|a, b| b.partial_cmp(a).unwrap());
                }
            }
            let view = CandidateView::new(&items, &scores, [b, k, slots]).unwrap();
            for &lam in &[0.0, 0.1, 0.25, 1.0, 1e9, f64::INFINITY] {
                let n = 1 + rng.below(8) as usize;
                let got = aggregate(&view, Some(&cats[..]), Lambda::new(lam).unwrap(), n).unwrap();
                for u in 0..b {
                    let (it, sc) = view.user(u);
                    let (ei, es) = brute(it, sc, &cats, lam, n);
                    assert_eq!(
                        &got.items[u * n..(u + 1) * n],
                        &ei[..],
                        "case {case} lam {lam} user {u}"
                    );
                    assert_eq!(
                        &got.scores[u * n..(u + 1) * n],
                        &es[..],
                        "case {case} lam {lam} user {u}"
                    );
                }
            }
        }
    }

    #[test]
    fn lambda_is_validated() {
        assert!(Lambda::new(-0.1).is_err());
        assert!(Lambda::new(f64::NAN).is_err());
        assert_eq!(Lambda::new(0.0).unwrap(), Lambda::Zero);
        assert_eq!(Lambda::new(f64::INFINITY).unwrap(), Lambda::Inf);
    }

    #[test]
    fn categories_are_checked_for_looked_up_items_only() {
        let items = [1_i64, 2, 3];
        let scores = [0.3_f32, 0.2, 0.1];
        let view = CandidateView::new(&items, &scores, [1, 1, 3]).unwrap();
        let short = [-1_i32, 0, 1];
        let err = aggregate(&view, Some(&short[..]), Lambda::Finite(0.1), 3).unwrap_err();
        assert!(
            matches!(
                err,
                CoreError::ItemBeyondCats {
                    item: 3,
                    len: 3,
                    ..
                }
            ),
            "{err}"
        );
        // n = 2 never examines item 3 (the merge stops at the second pick)
        assert!(aggregate(&view, Some(&short[..]), Lambda::Finite(0.1), 2).is_ok());
        // λ = 0 never reads the table
        assert!(aggregate(&view, Some(&short[..]), Lambda::Zero, 2).is_ok());
        let negative = [-1_i32, 0, -5, 1];
        let err = aggregate(&view, Some(&negative[..]), Lambda::Inf, 2).unwrap_err();
        assert_eq!(err, CoreError::NegativeCategory { item: 2, cat: -5 });
        let err = aggregate::<i64, i32>(&view, None, Lambda::Inf, 2).unwrap_err();
        assert!(err.to_string().starts_with("cats: "));
        let err = aggregate(&view, Some(&short[..]), Lambda::Zero, 0).unwrap_err();
        assert!(err.to_string().starts_with("n: "));
    }

    #[test]
    fn empty_batch_and_parallel_batch() {
        let view = CandidateView::<i64>::new(&[], &[], [0, 4, 50]).unwrap();
        let out = aggregate::<i64, i64>(&view, None, Lambda::Zero, 5).unwrap();
        assert_eq!((out.items.len(), out.users), (0, 0));
        // a batch large enough for the pool equals the serial per-user result
        let (b, k, slots) = (3000, 2, 5);
        let mut rng = Rng(7);
        let items: Vec<i64> = (0..b * k * slots).map(|_| rng.below(40) as i64).collect();
        let scores: Vec<f32> = (0..b * k * slots).map(|_| rng.below(9) as f32).collect();
        let cats: Vec<i64> = (0..40).map(|i| i % 3).collect();
        let view = CandidateView::new(&items, &scores, [b, k, slots]).unwrap();
        let big = aggregate(&view, Some(&cats[..]), Lambda::Finite(0.5), 4).unwrap();
        for u in (0..b).step_by(97) {
            let (it, sc) = view.user(u);
            let one = CandidateView::new(it, sc, [1, k, slots]).unwrap();
            let small = aggregate(&one, Some(&cats[..]), Lambda::Finite(0.5), 4).unwrap();
            assert_eq!(&big.items[u * 4..u * 4 + 4], &small.items[..]);
        }
    }
}
