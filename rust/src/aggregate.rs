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
//! the merge is consumed lazily (see `greedy_user`): the greedy looks up the categories of the
//! candidates it reaches, typically a little more than n of the K·N with uniformly spread
//! categories, most of them when each interest's list is one category. (The categories of each
//! row's first candidates, as deep as the previous user needed, are read ahead in one pass: see
//! `gather`.) Every candidate is still checked against `cats`, so that whether a call fails never
//! depends on `n` or the scores: see [`CatsCheck`].

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::buffer::{try_zeroed, Sizing};
use crate::error::{CoreError, Result};
use crate::merge::{top_n_user, CandidateView, MergeCursor, MergeScratch, MAX_ROWS};
use crate::parallel::{use_pool, USERS_PER_TASK};
use crate::table::DenseIndex;
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

/// The largest `n`: numpy cannot describe a (B, n) int64 array with more bytes per row than
/// `isize::MAX`, even for an empty batch.
pub const MAX_N: usize = isize::MAX as usize / 8;

/// Aggregate every user of `cands` into `n` items. `cats` (item id -> category) is needed when
/// λ > 0 and then every non-empty candidate is checked against it (see [`CatsCheck`]); at λ = 0
/// it is not read. The output is (users, n) however few candidates there are (the rest is
/// padding), so an `n` whose output cannot be allocated is an `OutOfMemory` error naming `n`,
/// raised before any work; the per-task scratch is sized by min(n, K·N), never by `n` alone.
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
    if n > MAX_N {
        let expected = format!("a positive number of items per user, at most {MAX_N}");
        return Err(CoreError::argument("n", expected, n));
    }
    let users = cands.users;
    let (k, slots) = (cands.interests, cands.slots);
    let what = || format!("the ({users}, {n}) output items and scores");
    let sizing = Sizing {
        arg: "n",
        what: &what,
        expected: "an n whose (B, n) output fits in memory (n beyond the K·N candidates only \
                   pads with item -1)",
    };
    let total = users.saturating_mul(n);
    let mut out_items = try_zeroed::<i64>(total, &sizing)?;
    let mut out_scores = try_zeroed::<f32>(total, &sizing)?;
    let check = cats.map(|c| CatsCheck::choose(c, users.saturating_mul(k * slots)));

    let run_task = |sc: &mut Scratch, task: usize, oi: &mut [i64], os: &mut [f32]| -> Result<()> {
        let u0 = task * USERS_PER_TASK;
        for (du, (oi, os)) in oi.chunks_mut(n).zip(os.chunks_mut(n)).enumerate() {
            let u = u0 + du;
            let (items, scores) = cands.user(u);
            match cats {
                None => top_n_user(&mut sc.merge, items, scores, k, u, oi, os)?,
                Some(cats) => {
                    if u + 1 < users {
                        let next = cands.user(u + 1).0;
                        prefetch_categories(next, slots, sc.greedy.depth + 4, cats);
                    }
                    let check = check.unwrap_or(CatsCheck::Entries);
                    greedy_user(sc, items, scores, k, u, cats, check, lam, oi, os)?
                }
            }
        }
        Ok(())
    };

    let per_task = USERS_PER_TASK.min(users.max(1)) * n; // <= max(total, n): no overflow
    if use_pool(users) {
        out_items
            .par_chunks_mut(per_task)
            .zip(out_scores.par_chunks_mut(per_task))
            .enumerate()
            .try_for_each_init(
                || Scratch::new(k, slots, n, lam),
                |sc, (t, (oi, os))| run_task(sc, t, oi, os),
            )?;
    } else if users > 0 {
        let mut sc = Scratch::new(k, slots, n, lam);
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

/// How each user's candidates are checked against `cats` at λ > 0: all of them, so that whether
/// a call fails never depends on `n` or on the scores (the greedy itself looks up only the
/// candidates it reaches). The check reads whichever is smaller, the table or the candidates.
#[derive(Clone, Copy, Debug, PartialEq)]
enum CatsCheck {
    /// Every category in the table is valid (checked once per call, one vectorised pass, when the
    /// table is no longer than the batch's candidates): per user, one max (and min) of the ids
    /// checks that they lie inside the table.
    Range { first_valid: u64 },
    /// Each candidate's entry is looked up (a table longer than the batch, or one with negative
    /// categories: those only matter for the items that are candidates).
    Entries,
}

impl CatsCheck {
    fn choose<C: Id>(cats: &[C], candidates: usize) -> Self {
        let tail = cats.get(1..).unwrap_or(&[]);
        let clean = tail.iter().fold(0, |acc, &c| acc | c.to_i64()) >= 0;
        if !clean || cats.len() > candidates {
            return CatsCheck::Entries;
        }
        // cats[0] (the padding id's entry) may be negative: then item 0 is no valid candidate.
        let first_valid = cats.first().is_some_and(|c| c.to_i64() < 0) as u64;
        CatsCheck::Range { first_valid }
    }

    /// Check every non-empty candidate of one user: inside the table, with a category >= 0.
    /// Errors name the first bad candidate in row-major order.
    fn user<I: Id, C: Id>(self, items: &[I], cats: &[C], user: usize) -> Result<()> {
        let ok = match self {
            CatsCheck::Range { first_valid } => {
                // negative ids (empty slots) are below every max and, as u64, above every min
                let (max, min) = items.iter().fold((-1_i64, u64::MAX), |(mx, mn), &i| {
                    (mx.max(i.to_i64()), mn.min(i.to_i64() as u64))
                });
                max < cats.len() as i64 && min >= first_valid
            }
            CatsCheck::Entries => {
                let entry = |i: i64| cats.get(i as u64 as usize).map_or(-1, |c| c.to_i64());
                let bad = items.iter().fold(false, |bad, &i| {
                    let i = i.to_i64();
                    bad | ((i >= 0) & (entry(i) < 0))
                });
                !bad
            }
        };
        if ok {
            return Ok(());
        }
        for &i in items {
            if i.to_i64() >= 0 {
                category_of(cats, i.to_i64(), "items", user)?;
            }
        }
        Ok(())
    }
}

/// Ask for the category entries of the next user's candidates while this user is processed:
/// the table has one entry per catalogue item and the lookups would otherwise miss cache.
/// `depth` slots per row: about as deep as the merge went for the previous user.
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

/// Per-task scratch, reused across users.
struct Scratch {
    merge: MergeScratch,
    greedy: Greedy,
}

impl Scratch {
    fn new(interests: usize, slots: usize, n: usize, lam: Lambda) -> Self {
        let depth = slots.min(n.div_ceil(interests.max(1)));
        // at most K·N picks: n beyond that only pads, and sizes nothing here
        let picks = n.min(interests * slots);
        Scratch {
            merge: MergeScratch::new(interests, slots),
            greedy: Greedy::new(interests * slots, picks, lam, depth),
        }
    }
}

/// A candidate taken from the merge.
#[derive(Clone, Copy)]
struct Taken {
    item: i64,
    f: f32,
    cat: u32,  // its local category
    next: u32, // the next taken candidate of the same category (NONE: none yet)
}

/// A category met in this user's candidates.
#[derive(Clone, Copy)]
struct Category {
    count: u32, // items picked so far: its class
    first: u32, // its best remaining taken candidate (NONE: none)
    last: u32,  // its last taken candidate (to link `next`)
}

/// The greedy's state for one user (reused across users). Candidates are kept in the order the
/// merge yields them, (f desc, id asc), so that among equal diversity terms the candidate with
/// the smaller position is the better one: positions are all the heaps compare.
struct Greedy {
    local: DenseIndex, // category id -> local category
    taken: Vec<Taken>,
    categories: Vec<Category>,
    // Per class c >= 1, the best remaining taken candidate of each category with c picks
    // (a min-heap of positions: the top is the class's best); bit c of `nonempty` marks a
    // class with candidates. Class 0 is a single head, see `greedy_user`.
    classes: Vec<BinaryHeap<Reverse<u32>>>,
    nonempty: Vec<u64>,
    gathered: Vec<i64>, // by key position: the category of the candidate (see `gather`)
    lam_times: Vec<f64>, // λ·d for d = 0..=n (finite λ): the same float64 products, computed once
    depth: usize,       // how deep the merge went for the last user: the prefetch depth
}

impl Greedy {
    /// Scratch for users of `candidates` slots and at most `n` picks (n <= candidates).
    fn new(candidates: usize, n: usize, lam: Lambda, depth: usize) -> Self {
        let lam_times = match lam {
            Lambda::Finite(l) => (0..=n).map(|d| l * d as f64).collect(),
            _ => Vec::new(),
        };
        Greedy {
            lam_times,
            local: DenseIndex::new(candidates),
            taken: Vec::with_capacity(candidates),
            categories: Vec::with_capacity(candidates),
            classes: (0..n + 2).map(|_| BinaryHeap::new()).collect(),
            nonempty: vec![0; (n + 2).div_ceil(64)],
            gathered: Vec::with_capacity(candidates + MAX_ROWS),
            depth,
        }
    }

    fn start_user(&mut self, candidates: usize) {
        self.local.clear_for(candidates);
        self.taken.clear();
        self.categories.clear();
    }

    /// Look up the categories of the first `depth` candidates of each row at once, into
    /// `gathered` by key position (i64::MIN where not gathered or not valid). The loads do not
    /// depend on each other, so their cache misses overlap; looked up one at a time as the merge
    /// reaches them, each would stall the greedy in turn.
    fn gather<C: Id>(&mut self, cur: &MergeCursor<'_>, cats: &[C]) {
        self.gathered.clear();
        self.gathered.resize(cur.keys(), i64::MIN);
        let gathered = &mut self.gathered;
        cur.for_each_head(self.depth + 2, |p, item| {
            gathered[p] = match cats.get(item as u64 as usize) {
                Some(c) => c.to_i64(),
                None => i64::MIN,
            }
        });
    }

    /// Append a candidate taken from the merge (key position `at`); returns (its position, its
    /// local category). Its category is validated here, when the greedy reaches it.
    #[inline]
    fn take<C: Id>(
        &mut self,
        item: i64,
        f: f32,
        at: usize,
        cats: &[C],
        user: usize,
    ) -> Result<(u32, usize)> {
        let c = match self.gathered[at] {
            c if c >= 0 => c,
            _ => category_of(cats, item, "items", user)?, // not gathered, or the precise error
        };
        let (cat, new) = self.local.get_or_insert(c);
        if new {
            let fresh = Category {
                count: 0,
                first: NONE,
                last: NONE,
            };
            self.categories.push(fresh);
        }
        let p = self.taken.len() as u32;
        let next = NONE;
        self.taken.push(Taken { item, f, cat, next });
        Ok((p, cat as usize))
    }

    /// File the taken candidate `p` of the picked category `l` behind that category's known
    /// ones; the first one becomes the category's head and so enters its class.
    #[inline]
    fn file(&mut self, p: u32, l: usize) {
        let cat = &mut self.categories[l];
        if cat.first == NONE {
            cat.first = p;
            cat.last = p;
            let class = cat.count as usize;
            self.push_class(class, p);
        } else {
            let last = std::mem::replace(&mut cat.last, p);
            self.taken[last as usize].next = p;
        }
    }

    #[inline]
    fn push_class(&mut self, class: usize, p: u32) {
        self.classes[class].push(Reverse(p));
        self.nonempty[class / 64] |= 1 << (class % 64);
    }

    /// The winner of pick number `picked` (|S| = `picked`) among the class-0 head and each
    /// class's head, as (class, position); None when no candidate is left. Algorithm 2's order:
    /// the larger gain (λ = inf: the larger diversity term |S| − class, so the lowest class),
    /// then the larger f, then the smaller id, i.e. the earlier position in merge order.
    #[inline]
    fn choose(&self, lam: Lambda, picked: usize, head0: Option<u32>) -> Option<(usize, u32)> {
        let lowest = || self.lowest_class().map(|c| (c, self.head(c)));
        match lam {
            Lambda::Inf => head0.map(|p| (0, p)).or_else(lowest),
            _ => self.by_gain(picked, head0),
        }
    }

    fn lowest_class(&self) -> Option<usize> {
        let w = self.nonempty.iter().position(|&w| w != 0)?;
        Some(w * 64 + self.nonempty[w].trailing_zeros() as usize)
    }

    /// The head (best position) of a nonempty class.
    #[inline(always)]
    fn head(&self, class: usize) -> u32 {
        self.classes[class].peek().map_or(NONE, |p| p.0)
    }

    /// `choose` for finite λ: gain = f + λ·(|S| − class) in float64 (SPEC §5), λ·d from the
    /// table; one pass over the nonempty classes.
    #[inline]
    fn by_gain(&self, picked: usize, head0: Option<u32>) -> Option<(usize, u32)> {
        let gain = |class: usize, pos: u32| {
            self.taken[pos as usize].f as f64 + self.lam_times[picked - class]
        };
        let (mut best, mut best_gain) = (head0.map(|p| (0, p)), f64::NEG_INFINITY);
        if let Some(p) = head0 {
            best_gain = gain(0, p);
        }
        for (w, &word) in self.nonempty.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let class = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let pos = self.head(class);
                let g = gain(class, pos);
                let earlier = best.is_none_or(|(_, p)| pos < p);
                if g > best_gain || (g == best_gain && earlier) {
                    (best, best_gain) = (Some((class, pos)), g);
                }
            }
        }
        best
    }

    /// Pick the candidate at `pos` of class `class`: its category moves up one class, with its
    /// next taken candidate as head.
    fn pick(&mut self, class: usize, pos: u32) {
        let t = self.taken[pos as usize];
        let cat = &mut self.categories[t.cat as usize];
        cat.count = class as u32 + 1;
        if class == 0 {
            return; // the class-0 head is its category's only taken candidate
        }
        cat.first = t.next;
        if t.next == NONE {
            cat.last = NONE;
        }
        self.classes[class].pop();
        if self.classes[class].is_empty() {
            self.nonempty[class / 64] &= !(1 << (class % 64));
        }
        if t.next != NONE {
            self.push_class(class + 1, t.next);
        }
    }

    fn clear_classes(&mut self) {
        for w in 0..self.nonempty.len() {
            let mut bits = self.nonempty[w];
            while bits != 0 {
                self.classes[w * 64 + bits.trailing_zeros() as usize].clear();
                bits &= bits - 1;
            }
            self.nonempty[w] = 0;
        }
    }
}

/// Algorithm 2 for one user. The merge is consumed lazily: it is advanced only until it yields
/// an item of a category with no pick yet (the class-0 head). Any candidate further down has a
/// smaller or equal f and, its category being picked already, a smaller diversity term, so it
/// cannot beat the class-0 head (ties included: equal f comes later in id order); the winner is
/// the class-0 head or a known head of a picked category. Only taken candidates are looked up
/// for the greedy, typically a little more than n of the K·N; `check` validates all of them.
#[allow(clippy::too_many_arguments)]
fn greedy_user<I: Id, C: Id>(
    sc: &mut Scratch,
    items: &[I],
    scores: &[f32],
    interests: usize,
    user: usize,
    cats: &[C],
    check: CatsCheck,
    lam: Lambda,
    out_items: &mut [i64],
    out_scores: &mut [f32],
) -> Result<()> {
    let n = out_items.len();
    let g = &mut sc.greedy;
    g.start_user(items.len());
    let mut cur = sc.merge.cursor(items, scores, interests, user)?; // scores first, as SPEC §7
    check.user(items, cats, user)?;
    g.gather(&cur, cats);
    let mut head0: Option<u32> = None; // the class-0 head
    let mut exhausted = false;
    let mut m = 0;
    while m < n {
        // 1. Advance the merge to the next item of a category without picks, filing the items of
        //    picked categories met on the way as their categories' known candidates.
        while head0.is_none() && !exhausted {
            let Some((item, f, at)) = cur.next_at() else {
                exhausted = true;
                break;
            };
            let (p, l) = match g.take(item, f, at, cats, user) {
                Ok(taken) => taken,
                Err(e) => {
                    g.clear_classes();
                    return Err(e);
                }
            };
            if g.categories[l].count == 0 {
                head0 = Some(p);
            } else {
                g.file(p, l);
            }
        }
        // 2. The best of the class-0 head and each class's head.
        let Some((class, pos)) = g.choose(lam, m, head0) else {
            break;
        };
        // 3. Pick it.
        let t = g.taken[pos as usize];
        out_items[m] = t.item;
        out_scores[m] = t.f;
        m += 1;
        if class == 0 {
            head0 = None;
        }
        g.pick(class, pos);
    }
    out_items[m..].fill(-1);
    out_scores[m..].fill(f32::NEG_INFINITY);
    g.depth = cur.depth();
    g.clear_classes();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering;

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
    fn every_candidate_is_checked_whatever_n() {
        let items = [1_i64, 2, 3];
        let scores = [0.3_f32, 0.2, 0.1];
        let view = CandidateView::new(&items, &scores, [1, 1, 3]).unwrap();
        // a table no longer than the candidates: checked once, then one max per user
        let short = [-1_i32, 0, 1];
        for n in [1, 2, 3, 1 << 20] {
            let err = aggregate(&view, Some(&short[..]), Lambda::Finite(0.1), n).unwrap_err();
            let beyond = CoreError::ItemBeyondCats {
                arg: "items",
                item: 3,
                user: 0,
                len: 3,
            };
            assert_eq!(err, beyond, "n = {n}");
        }
        // λ = 0 never reads the table
        assert!(aggregate(&view, Some(&short[..]), Lambda::Zero, 2).is_ok());
        // a longer table with a negative category: each candidate's entry is looked up
        let negative = [-1_i32, 0, -5, 1, 0, 0, 0, 0];
        for n in [1, 2] {
            let err = aggregate(&view, Some(&negative[..]), Lambda::Inf, n).unwrap_err();
            assert_eq!(err, CoreError::NegativeCategory { item: 2, cat: -5 });
        }
        // ... which matters only for candidates
        let fine = [-1_i32, 0, 3, 1, -7, -7];
        assert!(aggregate(&view, Some(&fine[..]), Lambda::Inf, 1).is_ok());
        // item 0 is no candidate while cats[0] < 0, in both checks
        let zero = [0_i64, 1, 2];
        let view0 = CandidateView::new(&zero, &scores, [1, 1, 3]).unwrap();
        for table in [&[-1_i32, 0, 1][..], &[-1, 0, 1, 1, 1, 1, 1][..]] {
            let err = aggregate(&view0, Some(table), Lambda::Finite(1.0), 1).unwrap_err();
            assert_eq!(err, CoreError::NegativeCategory { item: 0, cat: -1 });
        }
        let err = aggregate::<i64, i32>(&view, None, Lambda::Inf, 2).unwrap_err();
        assert!(err.to_string().starts_with("cats: "));
        let err = aggregate(&view, Some(&short[..]), Lambda::Zero, 0).unwrap_err();
        assert!(err.to_string().starts_with("n: "));
    }

    #[test]
    fn a_huge_n_is_an_error_before_any_allocation() {
        let items = [1_i64];
        let scores = [0.5_f32];
        let one = CandidateView::new(&items, &scores, [1, 1, 1]).unwrap();
        let cats = [0_i64, 0];
        for lam in [Lambda::Zero, Lambda::Finite(0.5)] {
            let err = aggregate(&one, Some(&cats[..]), lam, 1 << 40).unwrap_err();
            assert!(
                matches!(err, CoreError::OutOfMemory { arg: "n", .. }),
                "{err}"
            );
            let err = aggregate(&one, Some(&cats[..]), lam, usize::MAX).unwrap_err();
            assert!(err.to_string().starts_with("n: "), "{err}");
        }
        // an empty batch needs no memory, whatever n (up to numpy's limit)
        let empty = CandidateView::<i64>::new(&[], &[], [0, 1, 1]).unwrap();
        let out = aggregate::<i64, i64>(&empty, None, Lambda::Zero, MAX_N).unwrap();
        assert_eq!((out.users, out.n, out.items.len()), (0, MAX_N, 0));
        assert!(aggregate::<i64, i64>(&empty, None, Lambda::Zero, MAX_N + 1).is_err());
        // a large n with few candidates: the scratch is sized by K·N, the rest is padding
        let out = aggregate(&one, Some(&cats[..]), Lambda::Finite(0.5), 1 << 20).unwrap();
        assert_eq!(out.items[..2], [1, -1]);
        assert!(out.items[1..].iter().all(|&i| i == -1));
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
