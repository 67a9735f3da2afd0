//! The kernels on arbitrary bytes: every input gives a result or a documented error, never a
//! panic (a caught one is `CoreError::Internal`: a crash here), and the results keep their
//! invariants. Parity with the Python reference is the atheris harness's job (tests/fuzz).
#![no_main]

use comirec_core::aggregate::{aggregate, Lambda};
use comirec_core::merge::CandidateView;
use comirec_core::metrics::{metrics, MetricInputs, Protocol};
use comirec_core::{CoreError, ErrorKind};
use libfuzzer_sys::fuzz_target;

struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn below(&mut self, n: u64) -> u64 {
        let (b, rest) = match self.0.split_first() {
            Some((&b, rest)) => (b, rest),
            None => (0, &[][..]),
        };
        self.0 = rest;
        b as u64 % n.max(1)
    }
}

fn no_bug(e: &CoreError) {
    assert_ne!(e.kind(), ErrorKind::Internal, "a panic inside the core: {e}");
}

fuzz_target!(|data: &[u8]| {
    let mut r = Bytes(data);
    let (b, k, slots) = (r.below(4) as usize, 1 + r.below(5) as usize, r.below(7) as usize);
    let len = b * k * slots;
    let items: Vec<i64> = (0..len)
        .map(|_| match r.below(16) {
            15 => 1 << 40,
            x => x as i64 - 2,
        })
        .collect();
    let grid = [-1.0, -0.0, 0.0, 0.5, 0.5, 1.0, f32::NAN, f32::INFINITY, 1e30];
    let scores: Vec<f32> = (0..len).map(|_| grid[r.below(9) as usize]).collect();
    let cats: Vec<i64> = (0..r.below(16)).map(|_| r.below(5) as i64 - 1).collect();
    let lam = [0.0, 0.1, 1.0, f64::INFINITY, -1.0, f64::NAN][r.below(6) as usize];
    let n = [0, 1, 2, 3, 7, 50, 1 << 40, usize::MAX][r.below(8) as usize];
    let view = CandidateView::new(&items, &scores, [b, k, slots]).unwrap();
    let use_cats = r.below(4) > 0;
    let out = match Lambda::new(lam) {
        Ok(lam) => aggregate(&view, use_cats.then_some(&cats[..]), lam, n),
        Err(e) => Err(e),
    };
    match out {
        Err(e) => no_bug(&e),
        Ok(out) => {
            assert_eq!(out.items.len(), b * n);
            for row in out.items.chunks(n.max(1)) {
                let real: Vec<i64> = row.iter().copied().filter(|&i| i >= 0).collect();
                let mut distinct = real.clone();
                distinct.sort_unstable();
                distinct.dedup();
                assert_eq!(distinct.len(), real.len(), "a repeated item in {row:?}");
                assert!(row[real.len()..].iter().all(|&i| i == -1), "padding inside {row:?}");
            }
        }
    }
    // metrics over the first rows of the items as recommendations, with CSR targets
    let width = 1 + r.below(6) as usize;
    let users = r.below(4) as usize;
    let recs: Vec<i64> = (0..users * width).map(|_| r.below(12) as i64 - 2).collect();
    let mut indptr = vec![0_i64];
    let mut targets = Vec::new();
    for _ in 0..users {
        for _ in 0..r.below(5) {
            targets.push(r.below(12) as i64 - 1);
        }
        indptr.push(targets.len() as i64);
    }
    if r.below(8) == 0 && users > 0 {
        indptr[r.below(users as u64 + 1) as usize] += 1; // a corrupt CSR
    }
    let ks: Vec<usize> = (0..1 + r.below(3)).map(|_| r.below(width as u64 + 2) as usize).collect();
    let protocol = [Protocol::Standard, Protocol::Comirec][r.below(2) as usize];
    let x = MetricInputs {
        recs: &recs,
        users,
        width,
        indptr: &indptr,
        target_items: &targets,
        cats: use_cats.then_some(&cats[..]),
    };
    match metrics(&x, &ks, protocol) {
        Err(e) => no_bug(&e),
        Ok(t) => assert!(t.values.iter().all(|v| v.is_nan() || (0.0..=1.0).contains(v))),
    }
});
