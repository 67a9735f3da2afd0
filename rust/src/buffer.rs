//! Output buffers. A fresh zeroed vector of many megabytes comes from `calloc` as untouched
//! pages, and the kernels' first writes fault them in one 4 KiB page at a time: for the
//! (100,000 x 50) outputs of `aggregate` that is ~15,000 faults, a sizeable part of the call.
//! Where the kernel backs anonymous memory with transparent huge pages on request
//! (`/sys/kernel/mm/transparent_hugepage/enabled` = `madvise`, the common default), asking for
//! them makes it one fault per 2 MiB. numpy does the same for its own large arrays.

/// Buffers below this size are left alone (as numpy's threshold).
const MIN_BYTES: usize = 4 << 20;

/// A zeroed vector of `len` elements, its pages advised to be huge when it is large.
pub(crate) fn zeroed<T: Copy + Default>(len: usize) -> Vec<T> {
    let buf = vec![T::default(); len];
    advise_huge_pages(&buf);
    buf
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

    #[test]
    fn zeroed_buffers_are_zero_small_and_large() {
        for len in [0, 1, 1000, (MIN_BYTES / 8) + 12345] {
            let v: Vec<i64> = zeroed(len);
            assert_eq!(v.len(), len);
            assert!(v.iter().all(|&x| x == 0));
        }
        let v: Vec<f32> = zeroed(MIN_BYTES);
        assert!(v.iter().all(|&x| x == 0.0));
    }
}
