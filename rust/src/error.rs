//! The one error type of the core. Every variant names the Python argument it is about, so the
//! message can be raised as-is; `python.rs` maps `kind()` to `ValueError` / `TypeError`.

use std::backtrace::{Backtrace, BacktraceStatus};
use std::cell::Cell;
use std::sync::{Mutex, Once};

use thiserror::Error;

pub type Result<T> = std::result::Result<T, CoreError>;

/// Which Python exception a [`CoreError`] becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Value,
    Type,
    Memory,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum CoreError {
    /// An array has the wrong shape or length (or two arrays disagree).
    #[error("{arg}: expected {expected}, got {got}")]
    Shape {
        arg: &'static str,
        expected: String,
        got: String,
    },
    /// An array has a dtype the core cannot use (the facade casts what can be cast safely).
    #[error("{arg}: expected {expected}, got dtype {got}")]
    Dtype {
        arg: &'static str,
        expected: &'static str,
        got: String,
    },
    /// A score of a non-empty candidate slot is NaN or infinite.
    #[error(
        "scores: expected finite scores for non-empty slots (item >= 0), got {value} at \
         [user {user}, interest {interest}, slot {slot}]"
    )]
    BadScore {
        user: usize,
        interest: usize,
        slot: usize,
        value: f32,
    },
    /// An item id that must be looked up in the category table is beyond its end.
    #[error(
        "{arg}: item id {item} (user {user}) is beyond the category table `cats` of length {len}; \
         expected item ids in 0..{len}"
    )]
    ItemBeyondCats {
        arg: &'static str,
        item: i64,
        user: usize,
        len: usize,
    },
    /// The category of a looked-up item is negative.
    #[error(
        "cats: item {item} has category {cat}; expected categories >= 0 for real items \
         (only the padding entry cats[0] may be negative)"
    )]
    NegativeCategory { item: i64, cat: i64 },
    /// A scalar argument is outside its domain.
    #[error("{arg}: expected {expected}, got {got}")]
    Argument {
        arg: &'static str,
        expected: String,
        got: String,
    },
    /// A CSR index pointer is inconsistent.
    #[error("{arg}: inconsistent CSR indptr: {what}")]
    Indptr { arg: &'static str, what: String },
    /// A buffer sized from an argument cannot be allocated (checked before allocating: no abort).
    #[error("{arg}: cannot allocate {what} ({bytes} bytes); expected {expected}")]
    OutOfMemory {
        arg: &'static str,
        what: String,
        bytes: u128,
        expected: String,
    },
    /// A bug: a panic caught at the boundary. Never expected; reported instead of crashing.
    #[error("internal error in comirec's core (please report it): {0}")]
    Internal(String),
}

impl CoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::Dtype { .. } => ErrorKind::Type,
            CoreError::OutOfMemory { .. } => ErrorKind::Memory,
            CoreError::Internal(_) => ErrorKind::Internal,
            _ => ErrorKind::Value,
        }
    }

    pub(crate) fn shape(
        arg: &'static str,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        CoreError::Shape {
            arg,
            expected: expected.into(),
            got: got.into(),
        }
    }

    pub(crate) fn argument(
        arg: &'static str,
        expected: impl Into<String>,
        got: impl ToString,
    ) -> Self {
        CoreError::Argument {
            arg,
            expected: expected.into(),
            got: got.to_string(),
        }
    }
}

thread_local! {
    /// How many `catch_panic` calls this thread is inside.
    static GUARDED: Cell<u32> = const { Cell::new(0) };
}

/// Where the last caught panic happened, and its backtrace when `RUST_BACKTRACE` asks for one.
static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);
static HOOK: Once = Once::new();

/// Install (once) a panic hook that keeps a guarded panic off stderr: its location and, when
/// `RUST_BACKTRACE` is set, its backtrace go into the error's message instead. A panic inside
/// `catch_panic` (or on one of rayon's workers, which only run the kernels) is reported there;
/// any other still goes to the previous hook. The hook belongs to this library's copy of std,
/// so it never sees the panics of other native modules.
fn install_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let guarded = GUARDED.with(|g| g.get() > 0) || rayon::current_thread_index().is_some();
            if !guarded {
                return previous(info);
            }
            let mut report = match info.location() {
                Some(at) => format!(" (at {}:{})", at.file(), at.line()),
                None => String::new(),
            };
            let trace = Backtrace::capture(); // honours RUST_BACKTRACE / RUST_LIB_BACKTRACE
            if trace.status() == BacktraceStatus::Captured {
                report.push_str(&format!("\nRust backtrace:\n{trace}"));
            }
            if let Ok(mut last) = LAST_PANIC.lock() {
                *last = Some(report);
            }
        }));
    });
}

/// Run `f`, turning a panic into [`CoreError::Internal`] so that none can cross into Python;
/// nothing is printed (see `install_hook`).
pub fn catch_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    install_hook();
    GUARDED.with(|g| g.set(g.get() + 1));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(g.get() - 1));
    match outcome {
        Ok(r) => r,
        Err(payload) => {
            let mut msg = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "a panic with a non-string payload".to_string()
            };
            if let Some(report) = LAST_PANIC.lock().ok().and_then(|mut last| last.take()) {
                msg.push_str(&report);
            }
            Err(CoreError::Internal(msg))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_internal_errors() {
        let r: Result<()> = catch_panic(|| panic!("boom"));
        let Err(CoreError::Internal(msg)) = &r else {
            panic!("{r:?}")
        };
        assert!(msg.starts_with("boom (at "), "{msg}");
        assert!(msg.contains("error.rs"), "{msg}");
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Internal);
        // a panic on one of rayon's workers arrives the same way
        let r: Result<()> = catch_panic(|| {
            use rayon::prelude::*;
            (0..64)
                .into_par_iter()
                .for_each(|i| assert!(i < 1000, "never"));
            rayon::join(|| (), || panic!("on a worker"));
            Ok(())
        });
        let msg = r.unwrap_err().to_string();
        assert!(msg.contains("on a worker"), "{msg}");
        let r: Result<u8> = catch_panic(|| Ok(3));
        assert_eq!(r, Ok(3));
    }

    #[test]
    fn messages_name_the_argument() {
        let e = CoreError::argument("lam", "a number >= 0 or inf", -1.0);
        assert!(e.to_string().starts_with("lam: "));
        let e = CoreError::BadScore {
            user: 1,
            interest: 2,
            slot: 3,
            value: f32::NAN,
        };
        assert!(e.to_string().starts_with("scores: "));
    }
}
