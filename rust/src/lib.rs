//! comirec's Rust core: the serving-side hot paths over numpy arrays.
//!
//! Each concept is a plain Rust module over slices that `cargo test` exercises without Python;
//! `python.rs` holds the thin PyO3 wrappers (validate, detach, convert).

mod python;
pub mod sampler;

use pyo3::prelude::*;

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    python::register(m)
}
