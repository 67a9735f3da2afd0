//! Training and evaluation batches over CSR sequences (SPEC section 2).
//!
//! Sequences are a CSR pair: `indptr` (n_users + 1, non-decreasing, starting at 0) and `items`
//! (each user's items in time order). Everything here is plain Rust over slices; the PyO3
//! wrappers live in `python.rs`.
//!
//! Randomness is a small self-contained SplitMix64 so a batch is a pure function of
//! (seed, step) on every platform, crate version and thread count:
//! - the users of batch `step` come from one stream keyed by (seed, step), drawn serially;
//! - the cut point of row `r` comes from its own stream keyed by (seed, step, r), so rows can be
//!   filled in parallel in any order.
//!
//! `python/comirec/data/reference_sampler.py` restates these rules in pure Python; the tests
//! check that both produce identical batches.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::buffer::{try_with_capacity, Sizing};
use crate::error::{CoreError, Result};
use crate::parallel;

/// Rows per unit of work in a training batch: their random loads are issued together.
const ROW_CHUNK: usize = 32;

/// Below this many history cells a batch is filled serially (rayon's fork costs more).
const PARALLEL_MIN_CELLS: usize = 4_096;

#[inline]
fn use_parallel(cells: usize) -> bool {
    // use_pool does the pid bookkeeping that keeps a fork()ed child (a DataLoader worker) off
    // rayon's inherited, threadless pool; the size threshold here is in cells, not users.
    cells >= PARALLEL_MIN_CELLS && parallel::use_pool(parallel::MIN_PARALLEL_USERS)
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
const SEED_SALT: u64 = 0x5851_F42D_4C95_7F2D;

/// Errors are the crate's one [`CoreError`]; these build the sampler's.
fn indptr_error(what: String) -> CoreError {
    CoreError::Indptr {
        arg: "indptr",
        what,
    }
}

fn user_out_of_range(pos: usize, user: i64, n_users: usize) -> CoreError {
    CoreError::argument(
        "users",
        format!("user indices in [0, {n_users})"),
        format!("{user} at position {pos}"),
    )
}

fn batch_too_large(batch_size: usize, n: usize) -> CoreError {
    let want = format!(
        "at most {n} (the users with more than min_hist items: a batch draws distinct users, as the \
         authors' random.sample)"
    );
    CoreError::argument("batch_size", want, batch_size)
}

fn too_short(user: i64, len: usize, min_hist: usize) -> CoreError {
    let want = format!("users with more than min_hist = {min_hist} items");
    CoreError::argument("users", want, format!("user {user} with {len}"))
}

fn bad_range(user: i64, start: i64, end: i64, n_items: usize) -> CoreError {
    let want = format!("item ranges within the {n_items} items");
    CoreError::argument("table", want, format!("[{start}, {end}) for user {user}"))
}

fn positive(name: &'static str, value: usize) -> Result<usize> {
    if value == 0 {
        return Err(CoreError::argument(name, "a positive integer", 0));
    }
    Ok(value)
}

/// The SplitMix64 finaliser (Steele, Lea & Flood 2014): a bijective 64-bit mixer.
#[inline]
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// SplitMix64: a counter through `mix64`. Small, fast, and passes BigCrush.
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub fn new(state: u64) -> Self {
        Self { state }
    }

    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// Uniform in `0..n` (n > 0) by Lemire's multiply-shift; the bias is below n / 2^64.
    #[inline]
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// The key of batch `step`: every random choice of the batch derives from it.
#[inline]
pub fn batch_key(seed: u64, step: u64) -> u64 {
    mix64(mix64(seed ^ SEED_SALT).wrapping_add(step))
}

/// The stream that draws row `row`'s cut point in the batch with key `key`.
#[inline]
pub fn row_stream(key: u64, row: u64) -> SplitMix64 {
    SplitMix64::new(key ^ mix64(row.wrapping_add(1)))
}

/// Checks the CSR offsets once, so the kernels can trust them.
pub fn validate_csr(indptr: &[i64], n_items: usize) -> Result<()> {
    let Some(&first) = indptr.first() else {
        return Err(indptr_error(
            "expected at least one entry (n_users + 1), got an empty array".into(),
        ));
    };
    if first != 0 {
        return Err(indptr_error(format!(
            "expected indptr[0] == 0, got {first}"
        )));
    }
    for (pos, w) in indptr.windows(2).enumerate() {
        if w[1] < w[0] {
            let (i, prev, next) = (pos + 1, w[0], w[1]);
            return Err(indptr_error(format!(
                "expected non-decreasing offsets, but indptr[{i}] = {next} < indptr[{pos}] = {prev}"
            )));
        }
    }
    let last = indptr[indptr.len() - 1];
    if usize::try_from(last).ok() != Some(n_items) {
        return Err(indptr_error(format!(
            "expected indptr[-1] == len(items) = {n_items}, got {last}"
        )));
    }
    Ok(())
}

/// Offsets of user `user` (in a validated CSR), or an error naming the bad index.
#[inline]
fn span(indptr: &[i64], user: i64, pos: usize) -> Result<(usize, usize)> {
    let n_users = indptr.len().saturating_sub(1);
    match usize::try_from(user) {
        // validate_csr guarantees 0 <= indptr[u] <= indptr[u + 1] <= len(items).
        Ok(u) if u < n_users => Ok((indptr[u] as usize, indptr[u + 1] as usize)),
        _ => Err(user_out_of_range(pos, user, n_users)),
    }
}

/// The users that training can draw: those (in the given order) whose sequences are longer
/// than `min_hist`, so that a cut point `k` in `min_hist..len` exists.
///
/// Returns a flat table of triples `[start, end, user, start, end, user, ...]` (the user's
/// item range and index): a batch then reaches everything about a drawn user in one cache line
/// instead of several dependent random accesses.
pub fn drawable_users(indptr: &[i64], users: &[i64], min_hist: usize) -> Result<Vec<i64>> {
    let mut table = Vec::with_capacity(3 * users.len());
    for (pos, &u) in users.iter().enumerate() {
        let (start, end) = span(indptr, u, pos)?;
        if end - start > min_hist {
            table.extend([start as i64, end as i64, u]);
        }
    }
    if table.is_empty() {
        let want = format!("at least one user with more than min_hist = {min_hist} items");
        return Err(CoreError::argument("users", want, "none"));
    }
    Ok(table)
}

/// Draws `out.len()` positions in `0..n` for one batch.
///
/// Without replacement (the authors draw a batch with `random.sample`): rejection of repeats
/// while the batch is at most half the population, a partial Fisher-Yates shuffle beyond that.
/// Both are exact uniform samples of distinct positions in draw order.
pub fn draw_positions(
    n: usize,
    replacement: bool,
    rng: &mut SplitMix64,
    out: &mut [usize],
) -> Result<()> {
    let b = out.len();
    if n == 0 && b > 0 {
        return Err(batch_too_large(b, 0));
    }
    if replacement {
        for o in out.iter_mut() {
            *o = rng.below(n as u64) as usize;
        }
        return Ok(());
    }
    if b > n {
        return Err(batch_too_large(b, n));
    }
    if 2 * b <= n {
        // Open addressing over a power-of-two table at most half full.
        let cap = (2 * b).next_power_of_two().max(8);
        let mask = cap - 1;
        let mut table = vec![usize::MAX; cap];
        let mut filled = 0;
        while filled < b {
            let p = rng.below(n as u64) as usize;
            let mut slot = (mix64(p as u64) as usize) & mask;
            loop {
                if table[slot] == usize::MAX {
                    table[slot] = p;
                    out[filled] = p;
                    filled += 1;
                    break;
                }
                if table[slot] == p {
                    break; // a repeat: draw again
                }
                slot = (slot + 1) & mask;
            }
        }
    } else {
        let mut perm: Vec<usize> = (0..n).collect();
        for i in 0..b {
            let j = i + rng.below((n - i) as u64) as usize;
            perm.swap(i, j);
            out[i] = perm[i];
        }
    }
    Ok(())
}

/// Writes one history row: `hist` (at most `h.len()` items) left-aligned, zeros after it, and
/// the mask 1.0 on the copied positions, 0.0 after. Every cell of `h` and `m` is written.
#[inline]
fn write_row(hist: &[i32], h: &mut [MaybeUninit<i64>], m: &mut [MaybeUninit<f32>]) {
    let n = hist.len().min(h.len());
    for (dst, &it) in h[..n].iter_mut().zip(hist) {
        dst.write(i64::from(it));
    }
    for dst in &mut h[n..] {
        dst.write(0);
    }
    for dst in &mut m[..n] {
        dst.write(1.0);
    }
    for dst in &mut m[n..] {
        dst.write(0.0);
    }
}

/// Room for the (rows, maxlen) history and mask of a batch, allocated fallibly: `arg` names
/// the argument that sized it in the error.
fn batch_buffers(rows: usize, maxlen: usize, arg: &'static str) -> Result<(Vec<i64>, Vec<f32>)> {
    let what = || format!("a batch of {rows} x maxlen = {maxlen} history and mask cells");
    let sizing = Sizing {
        arg,
        what: &what,
        expected: "batch_size * maxlen small enough for one batch to fit in memory",
    };
    if maxlen > isize::MAX as usize / 8 {
        let expected = format!("a positive integer, at most {}", isize::MAX as usize / 8);
        return Err(CoreError::argument("maxlen", expected, maxlen)); // numpy's limit per row
    }
    let cells = rows.saturating_mul(maxlen);
    Ok((
        try_with_capacity(cells, &sizing)?,
        try_with_capacity(cells, &sizing)?,
    ))
}

/// Room for `len` per-row values of a batch of `len` rows.
fn per_row<T>(len: usize) -> Result<Vec<T>> {
    let what = || format!("a batch of {len} rows");
    let expected = "a batch_size that fits in memory";
    try_with_capacity(
        len,
        &Sizing {
            arg: "batch_size",
            what: &what,
            expected,
        },
    )
}

/// One row's history and mask cells, not yet written.
type RowBuffers<'a> = (&'a mut [MaybeUninit<i64>], &'a mut [MaybeUninit<f32>]);

/// History rows for a batch: row `r` holds `rows(r)` (at most `maxlen` items) left-aligned and
/// zero-padded, and the mask is 1.0 on its real positions. Each cell is written exactly once
/// into fresh buffers (no zero-fill first), in parallel for large batches.
fn history_rows<'a, F>(n_rows: usize, maxlen: usize, rows: F) -> Result<(Vec<i64>, Vec<f32>)>
where
    F: Fn(usize) -> &'a [i32] + Sync,
{
    let (mut history, mut mask) = batch_buffers(n_rows, maxlen, "maxlen")?;
    let cells = n_rows * maxlen; // allocated above, so it does not overflow
    let fill = |(r, (h, m)): (usize, RowBuffers<'_>)| write_row(rows(r), h, m);
    if maxlen > 0 {
        let h = &mut history.spare_capacity_mut()[..cells];
        let m = &mut mask.spare_capacity_mut()[..cells];
        if use_parallel(cells) {
            h.par_chunks_mut(maxlen)
                .zip(m.par_chunks_mut(maxlen))
                .enumerate()
                .for_each(fill);
        } else {
            h.chunks_mut(maxlen)
                .zip(m.chunks_mut(maxlen))
                .enumerate()
                .for_each(fill);
        }
    }
    // SAFETY: the loop above wrote every one of the `cells` entries of both buffers (each row
    // chunk of `maxlen` cells is fully written: `n` copied or 1.0, the rest 0); with maxlen 0
    // there are no cells.
    unsafe {
        history.set_len(cells);
        mask.set_len(cells);
    }
    Ok((history, mask))
}

/// A training batch as flat row-major buffers.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainBatch {
    pub users: Vec<i64>,
    pub history: Vec<i64>,
    pub mask: Vec<f32>,
    pub target: Vec<i64>,
}

/// Hints the CPU to start loading the cache line at `ptr` (a no-op off x86_64).
#[inline(always)]
fn prefetch<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; it never faults and reads nothing, whatever the address.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(ptr as *const i8);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Batch `step` of the training stream: `batch_size` users drawn from `table` (see
/// [`drawable_users`]), one random cut each. A pure function of its inputs.
#[allow(clippy::too_many_arguments)]
pub fn train_batch(
    items: &[i32],
    table: &[i64],
    batch_size: usize,
    maxlen: usize,
    min_hist: usize,
    seed: u64,
    step: u64,
    replacement: bool,
) -> Result<TrainBatch> {
    positive("batch_size", batch_size)?;
    positive("maxlen", maxlen)?;
    if !table.len().is_multiple_of(3) {
        let got = format!("{} entries", table.len());
        return Err(CoreError::shape("table", "(start, end, user) triples", got));
    }
    let key = batch_key(seed, step);
    // every buffer sized by batch_size / maxlen first, fallibly: a size that cannot be had is
    // an error naming the argument, never an abort
    let (mut history, mut mask) = batch_buffers(batch_size, maxlen, "batch_size")?;
    let cells = batch_size * maxlen; // allocated above, so it does not overflow
    let mut target: Vec<i64> = per_row(batch_size)?;
    let mut ranges = per_row(batch_size)?;
    let mut users = per_row(batch_size)?;
    let mut positions = per_row(batch_size)?;
    positions.resize(batch_size, 0usize);
    draw_positions(
        table.len() / 3,
        replacement,
        &mut SplitMix64::new(key),
        &mut positions,
    )?;
    // Resolve and check every row's item range first (serially: it may fail), so that the
    // parallel stage below cannot. The rows' table entries are random lines of a table of
    // 24 bytes per user: their loads are issued together first, so that the misses overlap.
    for &p in &positions {
        if let Some(entry) = table.get(3 * p..3 * p + 3) {
            prefetch(entry.as_ptr());
            prefetch(entry[2..].as_ptr()); // an entry may straddle two cache lines
        }
    }
    for &p in &positions {
        let (start, end, user) = (table[3 * p], table[3 * p + 1], table[3 * p + 2]);
        if start < 0 || start > end || end as usize > items.len() {
            let n_items = items.len();
            return Err(bad_range(user, start, end, n_items));
        }
        let len = (end - start) as usize;
        if len <= min_hist {
            return Err(too_short(user, len, min_hist));
        }
        ranges.push((start as usize, end as usize));
        users.push(user);
    }
    // Then, per chunk of ROW_CHUNK rows: every row's cut and target, with its history's cache
    // lines prefetched (independent random loads, which the CPU overlaps), then the copies.
    let work = |(c, ((h, m), t)): (usize, (RowBuffers<'_>, &mut [MaybeUninit<i64>]))| {
        let mut cuts = [(0usize, 0usize); ROW_CHUNK];
        for (j, (tj, cut)) in t.iter_mut().zip(cuts.iter_mut()).enumerate() {
            let row = c * ROW_CHUNK + j;
            let (start, end) = ranges[row];
            // The cut k is uniform in min_hist..len, from the row's own stream.
            let k = start
                + min_hist
                + row_stream(key, row as u64).below((end - start - min_hist) as u64) as usize;
            let lo = k.saturating_sub(maxlen).max(start);
            for line in (lo..k).step_by(16) {
                prefetch(items[line..].as_ptr()); // 64-byte cache lines hold 16 items
            }
            tj.write(i64::from(items[k]));
            *cut = (lo, k);
        }
        let rows = h.chunks_mut(maxlen).zip(m.chunks_mut(maxlen));
        for (&(lo, k), (hr, mr)) in cuts[..t.len()].iter().zip(rows) {
            write_row(&items[lo..k], hr, mr);
        }
    };
    {
        let h = &mut history.spare_capacity_mut()[..cells];
        let m = &mut mask.spare_capacity_mut()[..cells];
        let t = &mut target.spare_capacity_mut()[..batch_size];
        let width = ROW_CHUNK * maxlen;
        if use_parallel(cells) {
            let chunks = h.par_chunks_mut(width).zip(m.par_chunks_mut(width));
            chunks
                .zip(t.par_chunks_mut(ROW_CHUNK))
                .enumerate()
                .for_each(work);
        } else {
            let chunks = h.chunks_mut(width).zip(m.chunks_mut(width));
            chunks
                .zip(t.chunks_mut(ROW_CHUNK))
                .enumerate()
                .for_each(work);
        }
    }
    // SAFETY: `work` ran once per chunk of ROW_CHUNK rows covering all `batch_size` rows, and
    // wrote every target and, through write_row, every history and mask cell of its rows.
    unsafe {
        history.set_len(cells);
        mask.set_len(cells);
        target.set_len(batch_size);
    }
    Ok(TrainBatch {
        users,
        history,
        mask,
        target,
    })
}

/// An evaluation batch as flat buffers: histories plus CSR targets.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalBatch {
    pub history: Vec<i64>,
    pub mask: Vec<f32>,
    pub target_indptr: Vec<i64>,
    pub target_items: Vec<i64>,
}

/// The evaluation cut `k = floor(0.8 * len)`, in integers (equal to the float formula for every
/// length below 2^53, as in the authors' `int(len * 0.8)`).
#[inline]
pub fn eval_cut(len: usize) -> usize {
    len * 4 / 5
}

/// Evaluation rows for `users`: history = the last `maxlen` of `items[:k]`, targets = `items[k:]`.
pub fn eval_batch(
    indptr: &[i64],
    items: &[i32],
    users: &[i64],
    maxlen: usize,
) -> Result<EvalBatch> {
    positive("maxlen", maxlen)?;
    let spans = checked_spans(indptr, items.len(), users)?;
    let mut target_indptr = Vec::with_capacity(users.len() + 1);
    target_indptr.push(0i64);
    let mut total = 0usize;
    for &(start, end) in &spans {
        total += end - start - eval_cut(end - start);
        target_indptr.push(total as i64);
    }
    let b = users.len();
    let (history, mask) = history_rows(b, maxlen, |r| {
        let (start, end) = spans[r];
        let k = start + eval_cut(end - start);
        &items[k.saturating_sub(maxlen).max(start)..k]
    })?;
    let mut target_items = Vec::with_capacity(total);
    for &(start, end) in &spans {
        target_items.extend(
            items[start + eval_cut(end - start)..end]
                .iter()
                .map(|&it| i64::from(it)),
        );
    }
    Ok(EvalBatch {
        history,
        mask,
        target_indptr,
        target_items,
    })
}

/// The item range of each of `users`, checked against `n_items` (an evaluation or serving batch
/// takes an unvalidated CSR: every offset it reads is checked here).
fn checked_spans(indptr: &[i64], n_items: usize, users: &[i64]) -> Result<Vec<(usize, usize)>> {
    let mut spans = Vec::with_capacity(users.len());
    for (pos, &u) in users.iter().enumerate() {
        let (start, end) = span(indptr, u, pos)?;
        if end > n_items {
            return Err(indptr_error(format!(
                "expected offsets within len(items) = {n_items}, got {end}"
            )));
        }
        spans.push((start, end));
    }
    Ok(spans)
}

/// Serving rows for `users`: each history is the last `maxlen` items of the user's whole
/// sequence (no cut: everything known is history), left-aligned and zero-padded as in training
/// and evaluation. Returns (history, mask), row-major `(users.len(), maxlen)`.
pub fn recent_rows(
    indptr: &[i64],
    items: &[i32],
    users: &[i64],
    maxlen: usize,
) -> Result<(Vec<i64>, Vec<f32>)> {
    positive("maxlen", maxlen)?;
    let spans = checked_spans(indptr, items.len(), users)?;
    history_rows(users.len(), maxlen, |r| {
        let (start, end) = spans[r];
        &items[end.saturating_sub(maxlen).max(start)..end]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err<T: std::fmt::Debug>(r: Result<T>) -> String {
        r.unwrap_err().to_string()
    }

    /// The drawable table of all `users` (no length filter).
    fn table(indptr: &[i64], users: &[i64]) -> Vec<i64> {
        users
            .iter()
            .flat_map(|&u| [indptr[u as usize], indptr[u as usize + 1], u])
            .collect()
    }

    /// A CSR where user u has length `lens[u]` and item j of user u is `1000 * u + j`.
    fn csr(lens: &[usize]) -> (Vec<i64>, Vec<i32>) {
        let mut indptr = vec![0i64];
        let mut items = Vec::new();
        for (u, &l) in lens.iter().enumerate() {
            items.extend((0..l).map(|j| (1000 * u + j) as i32));
            indptr.push(items.len() as i64);
        }
        (indptr, items)
    }

    #[test]
    fn splitmix_matches_published_vector() {
        // First outputs of SplitMix64 seeded with 0 (the reference C implementation).
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn below_stays_in_range_and_covers_it() {
        let mut r = SplitMix64::new(7);
        let mut seen = [0u32; 5];
        for _ in 0..10_000 {
            let x = r.below(5) as usize;
            seen[x] += 1;
        }
        assert!(seen.iter().all(|&c| c > 1800 && c < 2200), "{seen:?}");
    }

    #[test]
    fn validate_csr_rejects_bad_offsets() {
        assert!(err(validate_csr(&[], 0)).contains("at least one entry"));
        assert!(err(validate_csr(&[1, 2], 2)).contains("expected indptr[0] == 0, got 1"));
        assert!(err(validate_csr(&[0, 3, 2], 2)).contains("indptr[2] = 2 < indptr[1] = 3"));
        assert!(err(validate_csr(&[0, 2], 3)).contains("indptr[-1] == len(items) = 3, got 2"));
        assert!(err(validate_csr(&[0, 2], 3)).starts_with("indptr: "));
        assert_eq!(validate_csr(&[0, 2, 3], 3), Ok(()));
    }

    #[test]
    fn drawable_users_keep_order_and_drop_short() {
        let (indptr, _) = csr(&[5, 4, 6, 0]);
        assert_eq!(
            drawable_users(&indptr, &[2, 1, 0, 3], 4).unwrap(),
            vec![9, 15, 2, 0, 5, 0]
        );
        let e = err(drawable_users(&indptr, &[1, 3], 4));
        assert!(
            e.starts_with("users: ") && e.contains("more than min_hist = 4"),
            "{e}"
        );
        assert!(err(drawable_users(&indptr, &[4], 4))
            .contains("user indices in [0, 4), got 4 at position 0"));
        assert!(err(drawable_users(&indptr, &[-1], 4)).contains("got -1"));
    }

    #[test]
    fn draws_are_distinct_without_replacement() {
        for &(n, b) in &[(10usize, 10usize), (10, 4), (1000, 256), (300, 256), (1, 1)] {
            for seed in 0..20 {
                let mut out = vec![0usize; b];
                draw_positions(n, false, &mut SplitMix64::new(seed), &mut out).unwrap();
                let mut s = out.clone();
                s.sort_unstable();
                s.dedup();
                assert_eq!(s.len(), b);
                assert!(out.iter().all(|&p| p < n));
            }
        }
        let mut out = vec![0usize; 11];
        let e = err(draw_positions(10, false, &mut SplitMix64::new(0), &mut out));
        assert!(e.starts_with("batch_size: expected at most 10"), "{e}");
        assert!(draw_positions(10, true, &mut SplitMix64::new(0), &mut out).is_ok());
    }

    #[test]
    fn train_rows_follow_the_protocol() {
        let lens = [5usize, 6, 30, 80, 7, 9, 100, 5];
        let (indptr, items) = csr(&lens);
        let eligible: Vec<i64> = (0..lens.len() as i64).collect();
        let (maxlen, min_hist) = (20, 4);
        for step in 0..50 {
            let tb = table(&indptr, &eligible);
            let b = train_batch(&items, &tb, 6, maxlen, min_hist, 3, step, false).unwrap();
            for r in 0..6 {
                let u = b.users[r] as usize;
                let t = b.target[r];
                let k = (t - 1000 * u as i64) as usize; // items encode their position
                assert!(k >= min_hist && k < lens[u]);
                let h = &b.history[r * maxlen..(r + 1) * maxlen];
                let m = &b.mask[r * maxlen..(r + 1) * maxlen];
                let n = k.min(maxlen);
                for j in 0..maxlen {
                    if j < n {
                        assert_eq!(h[j], (1000 * u + k - n + j) as i64);
                        assert_eq!(m[j], 1.0);
                    } else {
                        assert_eq!((h[j], m[j]), (0, 0.0));
                    }
                }
            }
        }
    }

    #[test]
    fn train_batch_is_a_function_of_seed_and_step() {
        let (indptr, items) = csr(&[50; 400]);
        let eligible: Vec<i64> = (0..400).collect();
        let tb = table(&indptr, &eligible);
        // 256 x 100 cells takes the parallel path; 4 x 10 the serial one.
        for &(bs, maxlen) in &[(256usize, 100usize), (4, 10)] {
            let a = train_batch(&items, &tb, bs, maxlen, 4, 11, 5, false).unwrap();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            let b = pool.install(|| train_batch(&items, &tb, bs, maxlen, 4, 11, 5, false).unwrap());
            assert_eq!(a, b);
            let c = train_batch(&items, &tb, bs, maxlen, 4, 11, 6, false).unwrap();
            assert_ne!(a, c);
        }
    }

    #[test]
    fn train_batch_reports_bad_input() {
        let (indptr, items) = csr(&[5, 3]);
        let (t0, t1) = (table(&indptr, &[0]), table(&indptr, &[1]));
        let e = err(train_batch(&items, &t1, 1, 4, 4, 0, 0, false));
        assert!(
            e.contains("more than min_hist = 4") && e.contains("user 1 with 3"),
            "{e}"
        );
        assert!(err(train_batch(&items, &t0, 0, 4, 4, 0, 0, false))
            .starts_with("batch_size: expected a positive"));
        assert!(err(train_batch(&items, &t0, 1, 0, 4, 0, 0, false))
            .starts_with("maxlen: expected a positive"));
        assert!(err(train_batch(&items, &t0, 2, 4, 4, 0, 0, false))
            .starts_with("batch_size: expected at most 1"));
        assert!(err(train_batch(&items, &[3, 9, 0], 1, 4, 2, 0, 0, false))
            .contains("[3, 9) for user 0"));
        assert!(err(train_batch(&items, &[0, 5], 1, 4, 2, 0, 0, false)).contains("got 2 entries"));
    }

    #[test]
    fn eval_rows_cut_at_four_fifths() {
        let lens = [5usize, 10, 1, 0, 63];
        let (indptr, items) = csr(&lens);
        let users = [4i64, 0, 1, 2, 3];
        let maxlen = 8;
        let e = eval_batch(&indptr, &items, &users, maxlen).unwrap();
        for (r, &u) in users.iter().enumerate() {
            let u = u as usize;
            let len = lens[u];
            let k = (0.8 * len as f64).floor() as usize;
            let t = &e.target_items[e.target_indptr[r] as usize..e.target_indptr[r + 1] as usize];
            let want: Vec<i64> = (k..len).map(|j| (1000 * u + j) as i64).collect();
            assert_eq!(t, want.as_slice());
            let n = k.min(maxlen);
            let h = &e.history[r * maxlen..(r + 1) * maxlen];
            let m = &e.mask[r * maxlen..(r + 1) * maxlen];
            for (j, (&hj, &mj)) in h.iter().zip(m).enumerate() {
                let want = if j < n {
                    (1000 * u + k - n + j) as i64
                } else {
                    0
                };
                assert_eq!((hj, mj), (want, if j < n { 1.0 } else { 0.0 }));
            }
        }
        assert!(err(eval_batch(&indptr, &items, &[5], 4))
            .starts_with("users: expected user indices in [0, 5)"));
    }

    #[test]
    fn recent_rows_keep_the_last_maxlen_items() {
        let lens = [5usize, 10, 1, 0, 63];
        let (indptr, items) = csr(&lens);
        let users = [4i64, 0, 1, 2, 3, 4];
        let maxlen = 8;
        let (h, m) = recent_rows(&indptr, &items, &users, maxlen).unwrap();
        assert_eq!(
            (h.len(), m.len()),
            (users.len() * maxlen, users.len() * maxlen)
        );
        for (r, &u) in users.iter().enumerate() {
            let u = u as usize;
            let n = lens[u].min(maxlen);
            for j in 0..maxlen {
                let want = if j < n {
                    (1000 * u + lens[u] - n + j) as i64
                } else {
                    0
                };
                assert_eq!(
                    (h[r * maxlen + j], m[r * maxlen + j]),
                    (want, if j < n { 1.0 } else { 0.0 })
                );
            }
        }
        assert!(err(recent_rows(&indptr, &items, &[-1], 4))
            .starts_with("users: expected user indices in [0, 5)"));
        assert!(err(recent_rows(&indptr, &items, &[0], 0)).starts_with("maxlen: "));
        assert!(err(recent_rows(&indptr, &items, &[0], 1 << 40)).starts_with("maxlen: "));
        assert!(err(recent_rows(&indptr, &items[..3], &[0], 4)).starts_with("indptr: "));
    }

    #[test]
    fn eval_cut_equals_float_floor() {
        for len in 0..100_000usize {
            assert_eq!(eval_cut(len), (len as f64 * 0.8) as usize);
        }
    }

    #[test]
    fn batch_sizes_that_cannot_be_allocated_are_errors() {
        let (indptr, items) = csr(&[5, 6, 7]);
        let users = [0_i64, 1, 2];
        let tb = table(&indptr, &users);
        for (b, m, arg) in [(1 << 40, 20, "batch_size"), (2, 1 << 40, "batch_size")] {
            let e = train_batch(&items, &tb, b, m, 1, 0, 0, true).unwrap_err();
            assert_eq!(e.kind(), crate::ErrorKind::Memory, "{e}");
            assert!(e.to_string().starts_with(&format!("{arg}: ")), "{e}");
        }
        let e = train_batch(&items, &tb, 3, usize::MAX, 1, 0, 0, true).unwrap_err();
        assert!(e.to_string().starts_with("maxlen: "), "{e}");
        let e = eval_batch(&indptr, &items, &users, 1 << 40).unwrap_err();
        assert!(e.to_string().starts_with("maxlen: "), "{e}");
        assert!(eval_batch(&indptr, &items, &[], 1 << 40).is_ok()); // no rows, no cells
    }
}
