//! PyO3 wrappers: borrow numpy views, release the GIL around the kernels, return numpy arrays.

use pyo3::prelude::*;

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add(
        "__doc__",
        "comirec's native core (private: use the comirec package)",
    )?;
    m.add_function(wrap_pyfunction!(sampler_validate_csr, m)?)?;
    m.add_function(wrap_pyfunction!(sampler_drawable_users, m)?)?;
    m.add_function(wrap_pyfunction!(sampler_train_batch, m)?)?;
    m.add_function(wrap_pyfunction!(sampler_eval_batch, m)?)?;
    m.add_function(wrap_pyfunction!(sampler_mark_forked, m)?)?;
    Ok(())
}

// ===== sampler (issue 3, data layer): training and evaluation batches =====================
// Thin wrappers over `crate::sampler`; `comirec.data.sampler` coerces dtypes/contiguity first.

mod sampler_py {
    use numpy::ndarray::Array2;
    use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
    use pyo3::exceptions::PyValueError;
    use pyo3::prelude::*;

    use crate::sampler;

    fn value_error(e: sampler::SamplerError) -> PyErr {
        PyValueError::new_err(e.to_string())
    }

    fn slice<'a, T: numpy::Element>(
        a: &'a PyReadonlyArray1<'_, T>,
        name: &str,
    ) -> PyResult<&'a [T]> {
        a.as_slice().map_err(|_| {
            PyValueError::new_err(format!("{name}: expected a C-contiguous 1-D array"))
        })
    }

    fn rows<'py, T: numpy::Element>(
        py: Python<'py>,
        v: Vec<T>,
        b: usize,
        w: usize,
    ) -> PyResult<Bound<'py, PyArray2<T>>> {
        // The kernels size every buffer b * w, so this cannot fail; map it anyway, never panic.
        let a = Array2::from_shape_vec((b, w), v)
            .map_err(|e| PyValueError::new_err(format!("internal: {e}")))?;
        Ok(a.into_pyarray(py))
    }

    /// Call in a fork()ed child: fill batches serially (rayon's pool does not survive fork).
    #[pyfunction]
    pub fn sampler_mark_forked() {
        sampler::mark_forked();
    }

    /// Check CSR offsets: indptr[0] == 0, non-decreasing, indptr[-1] == n_items.
    #[pyfunction]
    pub fn sampler_validate_csr(
        py: Python<'_>,
        indptr: PyReadonlyArray1<'_, i64>,
        n_items: usize,
    ) -> PyResult<()> {
        let ip = slice(&indptr, "indptr")?;
        py.detach(|| sampler::validate_csr(ip, n_items))
            .map_err(value_error)
    }

    /// The drawable users' table: (start, end, user) triples for the given users whose
    /// sequences are longer than min_hist, in order.
    #[pyfunction]
    pub fn sampler_drawable_users<'py>(
        py: Python<'py>,
        indptr: PyReadonlyArray1<'py, i64>,
        users: PyReadonlyArray1<'py, i64>,
        min_hist: usize,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let (ip, us) = (slice(&indptr, "indptr")?, slice(&users, "users")?);
        let table = py
            .detach(|| sampler::drawable_users(ip, us, min_hist))
            .map_err(value_error)?;
        Ok(table.into_pyarray(py))
    }

    type TrainOut<'py> = (
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray2<i64>>,
        Bound<'py, PyArray2<f32>>,
        Bound<'py, PyArray1<i64>>,
    );

    /// Training batch `step`: (users, history, mask, target).
    #[pyfunction]
    #[allow(clippy::too_many_arguments)]
    pub fn sampler_train_batch<'py>(
        py: Python<'py>,
        items: PyReadonlyArray1<'py, i32>,
        table: PyReadonlyArray1<'py, i64>,
        batch_size: usize,
        maxlen: usize,
        min_hist: usize,
        seed: u64,
        step: u64,
        replacement: bool,
    ) -> PyResult<TrainOut<'py>> {
        let (it, tb) = (slice(&items, "items")?, slice(&table, "table")?);
        let b = py
            .detach(|| {
                sampler::train_batch(
                    it,
                    tb,
                    batch_size,
                    maxlen,
                    min_hist,
                    seed,
                    step,
                    replacement,
                )
            })
            .map_err(value_error)?;
        Ok((
            b.users.into_pyarray(py),
            rows(py, b.history, batch_size, maxlen)?,
            rows(py, b.mask, batch_size, maxlen)?,
            b.target.into_pyarray(py),
        ))
    }

    type EvalOut<'py> = (
        Bound<'py, PyArray2<i64>>,
        Bound<'py, PyArray2<f32>>,
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<i64>>,
    );

    /// Evaluation rows for `users`: (history, mask, target_indptr, target_items).
    #[pyfunction]
    pub fn sampler_eval_batch<'py>(
        py: Python<'py>,
        indptr: PyReadonlyArray1<'py, i64>,
        items: PyReadonlyArray1<'py, i32>,
        users: PyReadonlyArray1<'py, i64>,
        maxlen: usize,
    ) -> PyResult<EvalOut<'py>> {
        let (ip, it, us) = (
            slice(&indptr, "indptr")?,
            slice(&items, "items")?,
            slice(&users, "users")?,
        );
        let b = us.len();
        let e = py
            .detach(|| sampler::eval_batch(ip, it, us, maxlen))
            .map_err(value_error)?;
        Ok((
            rows(py, e.history, b, maxlen)?,
            rows(py, e.mask, b, maxlen)?,
            e.target_indptr.into_pyarray(py),
            e.target_items.into_pyarray(py),
        ))
    }
}

use sampler_py::{
    sampler_drawable_users, sampler_eval_batch, sampler_mark_forked, sampler_train_batch,
    sampler_validate_csr,
};
// ===== end sampler =========================================================================
