//! comirec's Rust core: the serving-side hot paths over numpy arrays.
//!
//! Each concept is a plain Rust module over slices that `cargo test` exercises without Python;
//! `python.rs` holds the thin PyO3 wrappers (validate, detach, convert) and is compiled only with
//! the `python` feature, which maturin enables.

pub mod aggregate;
mod buffer;
pub mod error;
pub mod merge;
pub mod metrics;
pub mod parallel;
pub mod sampler;
mod table;

pub use error::{CoreError, ErrorKind, Result};

/// Integer ids as they arrive from numpy: int32 or int64 arrays are used without a copy.
pub trait Id: Copy + Send + Sync + 'static {
    /// The empty-slot marker, -1.
    const EMPTY: Self;
    fn to_i64(self) -> i64;
}

impl Id for i32 {
    const EMPTY: Self = -1;
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self as i64
    }
}

impl Id for i64 {
    const EMPTY: Self = -1;
    #[inline(always)]
    fn to_i64(self) -> i64 {
        self
    }
}

/// The category of `item` from the table `cats` (item id -> category), validated: the id must be
/// inside the table and its category >= 0. `arg` names the array the item came from.
#[inline]
pub(crate) fn category_of<C: Id>(
    cats: &[C],
    item: i64,
    arg: &'static str,
    user: usize,
) -> Result<i64> {
    let c = match usize::try_from(item).ok().and_then(|i| cats.get(i)) {
        Some(c) => c.to_i64(),
        None => {
            return Err(CoreError::ItemBeyondCats {
                arg,
                item,
                user,
                len: cats.len(),
            })
        }
    };
    if c < 0 {
        return Err(CoreError::NegativeCategory { item, cat: c });
    }
    Ok(c)
}

#[cfg(feature = "python")]
mod python;

/// comirec's native core (private: use the comirec package).
#[cfg(feature = "python")]
#[pyo3::pymodule]
fn _core(m: &pyo3::Bound<'_, pyo3::types::PyModule>) -> pyo3::PyResult<()> {
    python::register(m)
}
