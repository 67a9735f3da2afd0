//! Contention-independent measurements of the kernels, single-threaded on inputs generated like
//! `benches/_inputs.py` (same recipes, not the same random numbers): CPU time per user, and a
//! checksum of the outputs (to compare builds: equal checksums, equal outputs).
//!
//! ```text
//! cargo build --release --example kernel_bench
//! RAYON_NUM_THREADS=1 target/release/examples/kernel_bench agg clustered 0.1 10000 5
//! RAYON_NUM_THREADS=1 target/release/examples/kernel_bench metrics plain standard 10000 20
//! ```
//!
//! Arguments: `agg <uniform|clustered> <lam> <users> <reps>` (n = 50, or `TOPN`) or
//! `metrics <plain|diversity> <standard|comirec> <users> <reps>`. CPU time is the sum over the
//! process's threads (from /proc, in ns): the work done, not the wait for a busy core.
//! Instructions per user: run under `valgrind --tool=callgrind` with 3 and with 1 rep and divide
//! the difference of the totals by 2 × users (input generation cancels out).

use std::time::Instant;

use comirec_core::aggregate::{aggregate, Lambda};
use comirec_core::merge::CandidateView;
use comirec_core::metrics::{metrics, MetricInputs, Protocol};

const N_ITEMS: usize = 1_000_000;
const N_CATS: usize = 1_000;
const K: usize = 4;
const N: usize = 50;

/// xorshift64*: deterministic, fast, good enough for benchmark inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, k: usize) -> usize {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64 * k as f64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f32 {
        let (a, b) = (self.unit().max(1e-300), self.unit());
        ((-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos()) as f32
    }
}

fn category_table(rng: &mut Rng) -> Vec<i32> {
    let mut cats: Vec<i32> = (0..=N_ITEMS).map(|_| rng.below(N_CATS) as i32).collect();
    cats[0] = -1;
    cats
}

/// Each row's scores: standard normal, sorted descending, + 2.
fn sorted_scores(rng: &mut Rng, users: usize) -> Vec<f32> {
    let mut scores: Vec<f32> = (0..users * K * N).map(|_| rng.normal() + 2.0).collect();
    for row in scores.chunks_mut(N) {
        row.sort_by(|a, b| b.total_cmp(a));
    }
    scores
}

/// `uniform`: half the slots from 5,000 popular items, half uniform (categories uniformly
/// random). `clustered`: each interest draws 80% of its slots from one category, 15% from a
/// second, 5% anywhere; within a category, 30% from its 20 most popular items; an interest
/// shares the previous interest's main category with probability 0.3.
fn candidates(kind: &str, users: usize, cats: &[i32], rng: &mut Rng) -> Vec<i64> {
    let mut items = vec![0_i64; users * K * N];
    match kind {
        "uniform" => {
            let popular: Vec<i64> = (0..5000).map(|_| 1 + rng.below(N_ITEMS) as i64).collect();
            for it in items.iter_mut() {
                *it = if rng.unit() < 0.5 {
                    popular[rng.below(5000)]
                } else {
                    1 + rng.below(N_ITEMS) as i64
                };
            }
        }
        "clustered" => {
            let by_cat = items_by_category(cats);
            let mut c1 = 0;
            for (r, row) in items.chunks_mut(N).enumerate() {
                if r % K == 0 || rng.unit() >= 0.3 {
                    c1 = rng.below(N_CATS); // else: the previous interest's main category
                }
                let c2 = rng.below(N_CATS);
                for it in row.iter_mut() {
                    let u = rng.unit();
                    *it = if u < 0.95 {
                        let c = if u < 0.8 { c1 } else { c2 };
                        let list = &by_cat[c];
                        let span = if rng.unit() < 0.3 {
                            list.len().min(20)
                        } else {
                            list.len()
                        };
                        list[rng.below(span)]
                    } else {
                        1 + rng.below(N_ITEMS) as i64
                    };
                }
            }
        }
        other => panic!("unknown candidate kind {other}"),
    }
    items
}

fn items_by_category(cats: &[i32]) -> Vec<Vec<i64>> {
    let mut by_cat = vec![Vec::new(); N_CATS];
    for (i, &c) in cats.iter().enumerate().skip(1) {
        by_cat[c as usize].push(i as i64);
    }
    by_cat
}

/// Distinct ranked recommendations (users, 50) and CSR targets, 1-50 per user, ~20% hits.
fn rankings(users: usize, rng: &mut Rng) -> (Vec<i64>, Vec<i64>, Vec<i64>) {
    let mut recs = Vec::with_capacity(users * N);
    let mut indptr = vec![0_i64];
    let mut targets = Vec::new();
    for _ in 0..users {
        let row_start = recs.len();
        while recs.len() < row_start + N {
            let x = 1 + rng.below(N_ITEMS) as i64;
            if !recs[row_start..].contains(&x) {
                recs.push(x);
            }
        }
        for _ in 0..1 + rng.below(50) {
            targets.push(if rng.unit() < 0.2 {
                recs[row_start + rng.below(N)]
            } else {
                1 + rng.below(N_ITEMS) as i64
            });
        }
        indptr.push(targets.len() as i64);
    }
    (recs, indptr, targets)
}

/// CPU time of all threads of this process, in ns (/proc/self/task/*/schedstat).
fn cpu_ns() -> u64 {
    std::fs::read_dir("/proc/self/task")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| std::fs::read_to_string(e.path().join("schedstat")).ok())
                .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0)
}

const FNV0: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a over 64-bit words: a checksum to compare outputs before and after a change.
fn fnv(acc: u64, word: u64) -> u64 {
    (acc ^ word).wrapping_mul(0x100_0000_01b3)
}

fn report(what: &str, users: usize, reps: usize, cpu: u64, wall: f64, checksum: u64) {
    let per = (users * reps.max(1)) as f64;
    println!(
        "{what}: users {users} reps {reps}  cpu {:.3} us/user  wall {:.3} us/user  checksum {checksum:016x}",
        cpu as f64 / 1e3 / per,
        wall * 1e6 / per
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let cats = category_table(&mut rng);
    match arg(0) {
        "agg" => {
            let lam: f64 = arg(2).parse().expect("lam");
            let users: usize = arg(3).parse().expect("users");
            let reps: usize = arg(4).parse().expect("reps");
            let items = candidates(arg(1), users, &cats, &mut rng);
            let scores = sorted_scores(&mut rng, users);
            let view = CandidateView::new(&items, &scores, [users, K, N]).unwrap();
            let lam = Lambda::new(lam).unwrap();
            // n = 50 unless TOPN says otherwise (to split the cost between setup and picks)
            let top_n = std::env::var("TOPN").map_or(N, |v| v.parse().expect("TOPN"));
            let (c0, t0) = (cpu_ns(), Instant::now());
            let mut last = None;
            for _ in 0..reps {
                last = Some(aggregate(&view, Some(&cats[..]), lam, top_n).unwrap());
            }
            let (cpu, wall) = (cpu_ns() - c0, t0.elapsed().as_secs_f64());
            let checksum = last.map_or(0, |out| {
                let h = out.items.iter().fold(FNV0, |h, x| fnv(h, *x as u64));
                out.scores.iter().fold(h, |h, x| fnv(h, x.to_bits() as u64))
            });
            let what = format!("agg {} lam={}", arg(1), arg(2));
            report(&what, users, reps, cpu, wall, checksum);
        }
        "metrics" => {
            let users: usize = arg(3).parse().expect("users");
            let reps: usize = arg(4).parse().expect("reps");
            let (recs, indptr, targets) = rankings(users, &mut rng);
            let with_cats = arg(1) == "diversity";
            let x = MetricInputs {
                recs: &recs[..],
                users,
                width: N,
                indptr: &indptr,
                target_items: &targets[..],
                cats: with_cats.then_some(&cats[..]),
            };
            let (c0, t0) = (cpu_ns(), Instant::now());
            let protocol = Protocol::parse(arg(2)).unwrap();
            let mut last = None;
            for _ in 0..reps {
                last = Some(metrics(&x, &[20, 50], protocol).unwrap());
            }
            let (cpu, wall) = (cpu_ns() - c0, t0.elapsed().as_secs_f64());
            let checksum = last.map_or(0, |t| {
                t.values.iter().fold(FNV0, |h, v| fnv(h, v.to_bits()))
            });
            let what = format!("metrics {} {}", arg(1), arg(2));
            report(&what, users, reps, cpu, wall, checksum);
        }
        _ => panic!("usage: see the module documentation"),
    }
}
