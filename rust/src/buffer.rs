//! Output buffers, allocated fallibly: their sizes come from the caller's arguments (`n`, `ks`,
//! `batch_size`, `maxlen`), so a size that cannot be had is a `MemoryError` naming the argument,
//! never the process abort of an infallible `Vec` allocation.
//!
//! A fresh zeroed vector of many megabytes comes from `calloc` as untouched pages, and the
//! kernels' first writes fault them in one 4 KiB page at a time: for the (100,000 x 50) outputs
//! of `aggregate` that is ~15,000 faults, a sizeable part of the call. Where the kernel backs
//! anonymous memory with transparent huge pages on request
//! (`/sys/kernel/mm/transparent_hugepage/enabled` = `madvise`, the common default), asking for
//! them makes it one fault per 2 MiB. numpy does the same for its own large arrays.

use std::alloc::Layout;

use crate::error::{CoreError, Result};

/// Buffers below this size are left alone (as numpy's threshold).
const MIN_BYTES: usize = 4 << 20;

/// Element types whose all-zero bit pattern is a valid value (so `calloc`ed memory holds them).
pub(crate) trait Zeroable: Copy {}
impl Zeroable for i64 {}
impl Zeroable for f32 {}
impl Zeroable for f64 {}

/// How a failed allocation is reported: the argument the size came from, what was being
/// allocated and what the argument should be instead.
pub(crate) struct Sizing<'a> {
    pub arg: &'static str,
    pub what: &'a dyn Fn() -> String,
    pub expected: &'a str,
}

impl Sizing<'_> {
    fn error(&self, bytes: u128) -> CoreError {
        CoreError::OutOfMemory {
            arg: self.arg,
            what: (self.what)(),
            bytes,
            expected: self.expected.to_string(),
        }
    }
}

fn bytes_of<T>(len: usize) -> u128 {
    len as u128 * std::mem::size_of::<T>() as u128
}

/// A zeroed vector of `len` elements, its pages advised to be huge when it is large; an error
/// (not an abort) when it cannot be allocated. The caller writes every element, so a buffer
/// larger than the machine's memory (RAM + swap) is refused up front even where the kernel
/// would overcommit it: writing it would only summon the OOM killer.
pub(crate) fn try_zeroed<T: Zeroable>(len: usize, sizing: &Sizing<'_>) -> Result<Vec<T>> {
    if len == 0 || std::mem::size_of::<T>() == 0 {
        return Ok(Vec::new());
    }
    let bytes = bytes_of::<T>(len);
    let layout = Layout::array::<T>(len).map_err(|_| sizing.error(bytes))?;
    if bytes > machine_memory() {
        return Err(sizing.error(bytes));
    }
    // SAFETY: `layout` has a non-zero size (len > 0, T not zero-sized).
    let ptr = unsafe { std::alloc::alloc_zeroed(layout) } as *mut T;
    if ptr.is_null() {
        return Err(sizing.error(bytes));
    }
    // SAFETY: `ptr` comes from the global allocator with `Layout::array::<T>(len)`, the layout
    // a Vec of capacity `len` frees with; its `len` elements are all-zero, a valid T (Zeroable).
    let buf = unsafe { Vec::from_raw_parts(ptr, len, len) };
    advise_huge_pages(&buf);
    Ok(buf)
}

/// An empty vector with room for `len` elements, or an error when that cannot be allocated.
pub(crate) fn try_with_capacity<T>(len: usize, sizing: &Sizing<'_>) -> Result<Vec<T>> {
    let mut v = Vec::new();
    if bytes_of::<T>(len) > machine_memory() {
        return Err(sizing.error(bytes_of::<T>(len)));
    }
    v.try_reserve_exact(len)
        .map_err(|_| sizing.error(bytes_of::<T>(len)))?;
    Ok(v)
}

/// The machine's RAM + swap in bytes (unbounded where unknown).
fn machine_memory() -> u128 {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: sysinfo only writes the struct it is given.
        let mut info: libc::sysinfo = unsafe { std::mem::zeroed() };
        if unsafe { libc::sysinfo(&mut info) } == 0 {
            let unit = (info.mem_unit as u128).max(1);
            return (info.totalram as u128 + info.totalswap as u128) * unit;
        }
    }
    u128::MAX
}

/// Advise the kernel to back `buf`'s whole pages with huge pages. Only advice: the contents
/// never change, failure (another OS, THP disabled, an odd page size) is ignored.
fn advise_huge_pages<T>(buf: &[T]) {
    #[cfg(target_os = "linux")]
    {
        let bytes = std::mem::size_of_val(buf);
        if bytes < MIN_BYTES {
            return;
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = if page > 0 { page as usize } else { return };
        let start = buf.as_ptr() as usize;
        let (first, end) = (start.next_multiple_of(page), (start + bytes) / page * page);
        if end > first {
            // SAFETY: [first, end) lies inside `buf`'s allocation, which we own; MADV_HUGEPAGE
            // only changes how the kernel backs the range, never its contents.
            unsafe {
                libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = buf;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizing() -> Sizing<'static> {
        Sizing {
            arg: "n",
            what: &|| "the test buffer".to_string(),
            expected: "a smaller n",
        }
    }

    #[test]
    fn zeroed_buffers_are_zero_small_and_large() {
        for len in [0, 1, 1000, (MIN_BYTES / 8) + 12345] {
            let v: Vec<i64> = try_zeroed(len, &sizing()).unwrap();
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0));
        }
        let v: Vec<f32> = try_zeroed(MIN_BYTES, &sizing()).unwrap();
        assert!(v.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn impossible_sizes_are_errors_naming_the_argument() {
        for len in [usize::MAX, usize::MAX / 8, 1 << 50] {
            let e = try_zeroed::<i64>(len, &sizing()).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("n: cannot allocate the test buffer"),
                "{e}"
            );
            assert_eq!(e.kind(), crate::ErrorKind::Memory);
            let e = try_with_capacity::<u64>(len, &sizing()).unwrap_err();
            assert!(e.to_string().starts_with("n: "), "{e}");
        }
        let v: Vec<u8> = try_with_capacity(10, &sizing()).unwrap();
        assert!(v.capacity() >= 10 && v.is_empty());
    }
}
