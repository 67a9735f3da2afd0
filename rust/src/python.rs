//! PyO3 wrappers: borrow numpy views, release the GIL around the kernels, return numpy arrays.

use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__doc__", "comirec's native core (private: use the comirec package)")?;
    Ok(())
}
