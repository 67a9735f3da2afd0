//! When to run users in parallel on rayon's global pool.
//!
//! Never a pool per call: the kernels use the global pool (sized by `RAYON_NUM_THREADS`).
//! Tiny batches take the serial path (thread hand-off would cost more than the work). After
//! `os.fork()` (torch DataLoader workers, multiprocessing) the child inherits rayon's global
//! registry but not its threads, so submitting work there would wait forever; we therefore
//! record the pid of the process that first used the pool and run serially in any other.
//! Every parallel kernel in this crate must ask [`use_pool`] first.

use std::sync::atomic::{AtomicU32, Ordering};

/// The pid of the process that started (or is about to start) rayon's global pool; 0 = none yet.
static POOL_PID: AtomicU32 = AtomicU32::new(0);

/// Batches smaller than this run serially.
pub const MIN_PARALLEL_USERS: usize = 512;

/// Users handed to one task: large enough to amortise scheduling, small enough to balance.
pub const USERS_PER_TASK: usize = 64;

/// Whether a batch of `n_users` should run on the global pool in this process.
pub fn use_pool(n_users: usize) -> bool {
    if n_users < MIN_PARALLEL_USERS {
        return false;
    }
    let pid = std::process::id();
    match POOL_PID.compare_exchange(0, pid, Ordering::SeqCst, Ordering::SeqCst) {
        Ok(_) => true,              // first use: the pool is started by this process
        Err(owner) => owner == pid, // a forked child sees its parent's pid here: stay serial
    }
}

/// Whether this process is a fork of the one that owns rayon's pool (so kernels run serially).
pub fn forked_from_pool_owner() -> bool {
    let owner = POOL_PID.load(Ordering::SeqCst);
    owner != 0 && owner != std::process::id()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_batches_are_serial_and_large_ones_use_the_pool() {
        assert!(!use_pool(MIN_PARALLEL_USERS - 1));
        assert!(use_pool(MIN_PARALLEL_USERS));
        assert!(!forked_from_pool_owner());
    }
}
