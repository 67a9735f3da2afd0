//! The one error type of the core. Every variant names the Python argument it is about, so the
//! message can be raised as-is; `python.rs` maps `kind()` to `ValueError` / `TypeError`.

use thiserror::Error;

pub type Result<T> = std::result::Result<T, CoreError>;

/// Which Python exception a [`CoreError`] becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Value,
    Type,
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
    /// A bug: a panic caught at the boundary. Never expected; reported instead of crashing.
    #[error("internal error in comirec's core (please report it): {0}")]
    Internal(String),
}

impl CoreError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            CoreError::Dtype { .. } => ErrorKind::Type,
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

/// Run `f`, turning a panic into [`CoreError::Internal`] so that none can cross into Python.
pub fn catch_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = if let Some(s) = payload.downcast_ref::<&str>() {
                (*s).to_string()
            } else if let Some(s) = payload.downcast_ref::<String>() {
                s.clone()
            } else {
                "a panic with a non-string payload".to_string()
            };
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
        assert_eq!(r, Err(CoreError::Internal("boom".into())));
        assert_eq!(r.unwrap_err().kind(), ErrorKind::Internal);
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
