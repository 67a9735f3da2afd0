//! PyO3 wrappers: borrow numpy views, release the GIL around the kernels, return numpy arrays.
//!
//! The typed facade (`python/comirec/core.py`) hands over C-contiguous arrays of the dtypes used
//! here (int32/int64 ids, float32 scores, int64 indptr); anything else is a `TypeError` naming the
//! argument. Kernels run inside `py.detach` and `catch_panic`, so no panic reaches Python.
//!
//! Layout: shared helpers first, then one section per kernel (aggregate, metrics, ...), each
//! with its `#[pyfunction]`s; `register` at the end lists every section. To add a kernel, add a
//! section and one line in `register`.

use numpy::ndarray::Dimension;
use numpy::{
    Ix1, Ix2, Ix3, PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::aggregate::{aggregate as aggregate_kernel, Lambda};
use crate::error::{catch_panic, CoreError, ErrorKind};
use crate::merge::CandidateView;
use crate::metrics::{metrics as metrics_kernel, MetricInputs, Protocol, METRIC_NAMES};
use crate::parallel::forked_from_pool_owner;
use crate::sampler;

// ------------------------------------------------------------------------------------------
// Shared helpers
// ------------------------------------------------------------------------------------------

impl From<CoreError> for PyErr {
    fn from(e: CoreError) -> PyErr {
        let msg = e.to_string();
        match e.kind() {
            ErrorKind::Value => PyValueError::new_err(msg),
            ErrorKind::Type => PyTypeError::new_err(msg),
            ErrorKind::Memory => PyMemoryError::new_err(msg),
            ErrorKind::Internal => PyRuntimeError::new_err(msg),
        }
    }
}

fn dtype_name(ob: &Bound<'_, PyAny>) -> String {
    ob.getattr("dtype")
        .and_then(|d| d.str())
        .map(|s| s.to_string())
        .unwrap_or_else(|_| {
            format!(
                "(not an array: {})",
                ob.get_type()
                    .name()
                    .map(|n| n.to_string())
                    .unwrap_or_default()
            )
        })
}

fn dtype_error(arg: &'static str, expected: &'static str, ob: &Bound<'_, PyAny>) -> PyErr {
    CoreError::Dtype {
        arg,
        expected,
        got: dtype_name(ob),
    }
    .into()
}

/// A borrowed int32 or int64 numpy array (ids are used in their own width, never copied).
enum Ints<'py, D: Dimension> {
    I32(PyReadonlyArray<'py, i32, D>),
    I64(PyReadonlyArray<'py, i64, D>),
}

fn ints<'py, D: Dimension>(
    ob: &Bound<'py, PyAny>,
    arg: &'static str,
    expected: &'static str,
) -> PyResult<Ints<'py, D>> {
    if let Ok(a) = ob.extract::<PyReadonlyArray<'py, i64, D>>() {
        return Ok(Ints::I64(a));
    }
    if let Ok(a) = ob.extract::<PyReadonlyArray<'py, i32, D>>() {
        return Ok(Ints::I32(a));
    }
    Err(dtype_error(arg, expected, ob))
}

impl<D: Dimension> Ints<'_, D> {
    fn shape(&self) -> Vec<usize> {
        match self {
            Ints::I32(a) => a.shape().to_vec(),
            Ints::I64(a) => a.shape().to_vec(),
        }
    }
}

fn slice<'a, T: numpy::Element, D: Dimension>(
    a: &'a PyReadonlyArray<'_, T, D>,
    arg: &'static str,
) -> PyResult<&'a [T]> {
    a.as_slice().map_err(|_| {
        PyTypeError::new_err(format!(
            "{arg}: expected a C-contiguous array (numpy.ascontiguousarray makes one)"
        ))
    })
}

/// The (indptr, items, users) slices of an evaluation or serving batch.
fn csr_users<'a>(
    indptr: &'a PyReadonlyArray<'_, i64, Ix1>,
    items: &'a PyReadonlyArray<'_, i32, Ix1>,
    users: &'a PyReadonlyArray<'_, i64, Ix1>,
) -> PyResult<(&'a [i64], &'a [i32], &'a [i64])> {
    Ok((
        slice(indptr, "indptr")?,
        slice(items, "items")?,
        slice(users, "users")?,
    ))
}

/// Bind `$s` to the slice of an `Ints` and evaluate `$body` for its element type.
macro_rules! with_ints {
    ($ints:expr, $arg:expr, |$s:ident| $body:expr) => {
        match &$ints {
            Ints::I32(a) => {
                let $s = slice(a, $arg)?;
                $body
            }
            Ints::I64(a) => {
                let $s = slice(a, $arg)?;
                $body
            }
        }
    };
}

/// Like `with_ints!` for an optional array; `None` binds `Option<&[i64]>::None`.
macro_rules! with_opt_ints {
    ($ints:expr, $arg:expr, |$s:ident| $body:expr) => {
        match &$ints {
            None => {
                let $s: Option<&[i64]> = None;
                $body
            }
            Some(Ints::I32(a)) => {
                let $s = Some(slice(a, $arg)?);
                $body
            }
            Some(Ints::I64(a)) => {
                let $s = Some(slice(a, $arg)?);
                $body
            }
        }
    };
}

fn positive(value: i64, arg: &'static str, expected: &'static str) -> PyResult<usize> {
    if value <= 0 {
        return Err(CoreError::argument(arg, expected, value).into());
    }
    Ok(value as usize)
}

/// Raise a Rust panic inside the guarded boundary (tests check it arrives as RuntimeError).
#[pyfunction]
fn _panic_for_test(py: Python<'_>) -> PyResult<()> {
    py.detach(|| {
        catch_panic(|| -> crate::Result<()> { panic!("deliberate panic for the test suite") })
    })?;
    Ok(())
}

/// True in a process forked from the one that started rayon's pool: kernels run serially there.
#[pyfunction]
fn _forked_from_pool_owner() -> bool {
    forked_from_pool_owner()
}

// ------------------------------------------------------------------------------------------
// aggregate: merge / λ-greedy (aggregate.rs, merge.rs)
// ------------------------------------------------------------------------------------------

type ItemsAndScores<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);

/// The optional item -> category table of `aggregate` and `metrics`.
fn categories<'py>(cats: Option<&Bound<'py, PyAny>>) -> PyResult<Option<Ints<'py, Ix1>>> {
    cats.map(|c| {
        ints::<Ix1>(
            c,
            "cats",
            "a 1-D int32 or int64 array (item id -> category)",
        )
    })
    .transpose()
}

/// items (B,K,N) int32|int64, scores (B,K,N) float32, cats 1-D int32|int64 or None (allowed at
/// lam = 0), lam >= 0 or inf, n >= 1 -> (items (B,n) int64, scores (B,n) float32).
#[pyfunction]
#[pyo3(signature = (items, scores, cats, lam, n))]
fn aggregate<'py>(
    py: Python<'py>,
    items: &Bound<'py, PyAny>,
    scores: &Bound<'py, PyAny>,
    cats: Option<&Bound<'py, PyAny>>,
    lam: f64,
    n: i64,
) -> PyResult<ItemsAndScores<'py>> {
    let items = ints::<Ix3>(items, "items", "a 3-D int32 or int64 array (B, K, N)")?;
    let scores_arr = scores
        .extract::<PyReadonlyArray<'py, f32, Ix3>>()
        .map_err(|_| dtype_error("scores", "a 3-D float32 array (B, K, N)", scores))?;
    let cats = categories(cats)?;
    let lam = Lambda::new(lam)?;
    let n = positive(n, "n", "a positive number of items per user")?;
    let shape = items.shape();
    if scores_arr.shape() != shape.as_slice() {
        return Err(CoreError::shape(
            "scores",
            format!("the shape of items {shape:?}"),
            format!("{:?}", scores_arr.shape()),
        )
        .into());
    }
    let shape = [shape[0], shape[1], shape[2]];
    let sc = slice(&scores_arr, "scores")?;
    let out = with_ints!(items, "items", |it| with_opt_ints!(cats, "cats", |c| py
        .detach(|| catch_panic(|| {
            let view = CandidateView::new(it, sc, shape)?;
            aggregate_kernel(&view, c, lam, n)
        })))?);
    let (users, n) = (out.users, out.n);
    Ok((
        PyArray1::from_vec(py, out.items).reshape([users, n])?,
        PyArray1::from_vec(py, out.scores).reshape([users, n])?,
    ))
}

// ------------------------------------------------------------------------------------------
// metrics (metrics.rs)
// ------------------------------------------------------------------------------------------

/// recs (B,W) int32|int64, CSR targets (indptr int64 (B+1,), items int32|int64), cats or None,
/// ks, protocol -> (B, len(ks) * per_k) float64; columns per k in METRIC_NAMES order (diversity
/// only with cats).
#[pyfunction]
#[pyo3(signature = (recs, indptr, target_items, cats, ks, protocol))]
fn metrics<'py>(
    py: Python<'py>,
    recs: &Bound<'py, PyAny>,
    indptr: &Bound<'py, PyAny>,
    target_items: &Bound<'py, PyAny>,
    cats: Option<&Bound<'py, PyAny>>,
    ks: Vec<i64>,
    protocol: &str,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let recs = ints::<Ix2>(recs, "recs", "a 2-D int32 or int64 array (B, n)")?;
    let indptr_arr = indptr
        .extract::<PyReadonlyArray<'py, i64, Ix1>>()
        .map_err(|_| dtype_error("targets", "an int64 indptr (B + 1,)", indptr))?;
    let targets = ints::<Ix1>(target_items, "targets", "1-D int32 or int64 target items")?;
    let cats = categories(cats)?;
    let ks = ks
        .into_iter()
        .map(|k| positive(k, "ks", "positive cut-offs"))
        .collect::<PyResult<Vec<usize>>>()?;
    let protocol = Protocol::parse(protocol)?;
    let shape = recs.shape();
    let (users, width) = (shape[0], shape[1]);
    let ip = slice(&indptr_arr, "targets")?;
    let table = with_ints!(recs, "recs", |r| with_ints!(
        targets,
        "targets",
        |t| with_opt_ints!(cats, "cats", |c| py.detach(|| catch_panic(|| {
            let x = MetricInputs {
                recs: r,
                users,
                width,
                indptr: ip,
                target_items: t,
                cats: c,
            };
            metrics_kernel(&x, &ks, protocol)
        })))
    ))?;
    let cols = ks.len() * table.per_k;
    PyArray1::from_vec(py, table.values).reshape([users, cols])
}

// ------------------------------------------------------------------------------------------
// sampler: training and evaluation batches over CSR sequences (sampler.rs)
// `comirec.data.sampler` hands over C-contiguous int64 indptr/users/table and int32 items.
// ------------------------------------------------------------------------------------------

type SamplerTrainOut<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray2<i64>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<i64>>,
);
type SamplerRecentOut<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);
type SamplerEvalOut<'py> = (
    Bound<'py, PyArray2<i64>>,
    Bound<'py, PyArray2<f32>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
);

/// Check CSR offsets: indptr[0] == 0, non-decreasing, indptr[-1] == n_items.
#[pyfunction]
fn sampler_validate_csr(
    py: Python<'_>,
    indptr: PyReadonlyArray<'_, i64, Ix1>,
    n_items: usize,
) -> PyResult<()> {
    let ip = slice(&indptr, "indptr")?;
    Ok(py.detach(|| catch_panic(|| sampler::validate_csr(ip, n_items)))?)
}

/// The drawable users' table: (start, end, user) triples for the given users whose sequences
/// are longer than min_hist, in order.
#[pyfunction]
fn sampler_drawable_users<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray<'py, i64, Ix1>,
    users: PyReadonlyArray<'py, i64, Ix1>,
    min_hist: usize,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let (ip, us) = (slice(&indptr, "indptr")?, slice(&users, "users")?);
    let table = py.detach(|| catch_panic(|| sampler::drawable_users(ip, us, min_hist)))?;
    Ok(PyArray1::from_vec(py, table))
}

/// Training batch `step`: (users (B,), history (B, maxlen), mask (B, maxlen), target (B,)).
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn sampler_train_batch<'py>(
    py: Python<'py>,
    items: PyReadonlyArray<'py, i32, Ix1>,
    table: PyReadonlyArray<'py, i64, Ix1>,
    batch_size: usize,
    maxlen: usize,
    min_hist: usize,
    seed: u64,
    step: u64,
    replacement: bool,
) -> PyResult<SamplerTrainOut<'py>> {
    let (it, tb) = (slice(&items, "items")?, slice(&table, "table")?);
    let b = py.detach(|| {
        catch_panic(|| {
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
    })?;
    Ok((
        PyArray1::from_vec(py, b.users),
        PyArray1::from_vec(py, b.history).reshape([batch_size, maxlen])?,
        PyArray1::from_vec(py, b.mask).reshape([batch_size, maxlen])?,
        PyArray1::from_vec(py, b.target),
    ))
}

/// Evaluation rows for `users`: (history, mask, target_indptr, target_items).
#[pyfunction]
fn sampler_eval_batch<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray<'py, i64, Ix1>,
    items: PyReadonlyArray<'py, i32, Ix1>,
    users: PyReadonlyArray<'py, i64, Ix1>,
    maxlen: usize,
) -> PyResult<SamplerEvalOut<'py>> {
    let (ip, it, us) = csr_users(&indptr, &items, &users)?;
    let b = us.len();
    let e = py.detach(|| catch_panic(|| sampler::eval_batch(ip, it, us, maxlen)))?;
    Ok((
        PyArray1::from_vec(py, e.history).reshape([b, maxlen])?,
        PyArray1::from_vec(py, e.mask).reshape([b, maxlen])?,
        PyArray1::from_vec(py, e.target_indptr),
        PyArray1::from_vec(py, e.target_items),
    ))
}

/// Serving rows for `users`: the last `maxlen` items of each whole sequence, (history, mask).
#[pyfunction]
fn sampler_recent_rows<'py>(
    py: Python<'py>,
    indptr: PyReadonlyArray<'py, i64, Ix1>,
    items: PyReadonlyArray<'py, i32, Ix1>,
    users: PyReadonlyArray<'py, i64, Ix1>,
    maxlen: usize,
) -> PyResult<SamplerRecentOut<'py>> {
    let (ip, it, us) = csr_users(&indptr, &items, &users)?;
    let b = us.len();
    let (h, m) = py.detach(|| catch_panic(|| sampler::recent_rows(ip, it, us, maxlen)))?;
    Ok((
        PyArray1::from_vec(py, h).reshape([b, maxlen])?,
        PyArray1::from_vec(py, m).reshape([b, maxlen])?,
    ))
}

// ------------------------------------------------------------------------------------------
// Registration: one line per function / constant.
// ------------------------------------------------------------------------------------------

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(aggregate, m)?)?;
    m.add_function(wrap_pyfunction!(metrics, m)?)?;
    m.add("METRIC_NAMES", METRIC_NAMES.to_vec())?;
    m.add_function(wrap_pyfunction!(_panic_for_test, m)?)?;
    m.add_function(wrap_pyfunction!(_forked_from_pool_owner, m)?)?;
    m.add_function(wrap_pyfunction!(sampler_validate_csr, m)?)?;
    m.add_function(wrap_pyfunction!(sampler_drawable_users, m)?)?;
    m.add_function(wrap_pyfunction!(sampler_train_batch, m)?)?;
    m.add_function(wrap_pyfunction!(sampler_recent_rows, m)?)?;
    m.add_function(wrap_pyfunction!(sampler_eval_batch, m)?)?;
    Ok(())
}
