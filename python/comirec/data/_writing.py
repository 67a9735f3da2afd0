"""Writing output directories safely: one writer per ``--out``, no half results, no leaks.

- :class:`OutputLock` holds an exclusive ``flock`` on ``OUT.lock`` for the whole write, so a
  second comirec process writing the same ``--out`` fails at once instead of racing.
- :func:`rename_noreplace` is the final rename; it never replaces a directory that appeared
  meanwhile (``renameat2(RENAME_NOREPLACE)`` on Linux; elsewhere the lock is the guard).
- :func:`clean_stale` removes temporary directories of dead writers and restores an
  ``.OUT.old-PID`` left by a kill between the two renames of ``--overwrite``.
- :func:`write_error` turns an ``OSError`` met while writing into one line naming the file.

The model is SQLite's atomic commit: write beside the target, fsync, rename, clean up after
dead writers.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any


class _OneLineOSError(OSError):
    def __str__(self) -> str:  # the message alone, without "[Errno N]"
        return str(self.args[-1]) if self.args else ""


class OutputBusyError(_OneLineOSError):
    """Another process is writing the same output (CLI exit code 1)."""


class WriteError(_OneLineOSError):
    """An ``OSError`` while writing, re-raised with one line naming the file (CLI exit code 1)."""


def write_error(exc: OSError, path: str | os.PathLike[str]) -> WriteError:
    """``exc`` as a :class:`WriteError` whose message names ``path``."""
    if isinstance(exc, WriteError):
        return exc
    code = exc.errno
    if code is None and _disk_full(Path(path)):  # numpy's tofile: "N requested and M written", no errno
        code = errno.ENOSPC
    if code in (errno.ENOSPC, errno.EDQUOT):
        what = "no space left on device" if code == errno.ENOSPC else "disk quota exceeded"
        return WriteError(code, f"{what} writing {path}")
    reason = exc.strerror or str(exc)
    return WriteError(exc.errno, f"cannot write {path}: {reason}")


def _disk_full(path: Path) -> bool:
    """Whether the filesystem holding ``path`` has (almost) no space left for us."""
    for p in (path, *path.parents):
        try:
            st = os.statvfs(p)
        except OSError:
            continue
        return st.f_bavail * st.f_frsize < (1 << 20)
    return False


def lock_path(out: Path) -> Path:
    return out.with_name(out.name + ".lock")


class OutputLock:
    """An exclusive, non-blocking ``flock`` on ``OUT.lock``, removed on release.

    After locking, the file must still be the one at the path (another holder may have
    unlinked it on release); otherwise retry, so two holders never lock different inodes."""

    def __init__(self, out: str | os.PathLike[str]) -> None:
        self.out = Path(out)
        self.path = lock_path(self.out)
        self._fd: int | None = None

    def acquire(self) -> "OutputLock":
        import fcntl

        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise OutputBusyError(
                    errno.EBUSY,
                    f"{self.out}: another comirec process is writing it (lock {self.path} is held); "
                    "wait for it to finish or choose another --out",
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                try:
                    os.write(fd, f"{os.getpid()}\n".encode())  # for people reading it; the flock is the lock
                except OSError:
                    pass
                return self
            os.close(fd)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            os.unlink(self.path)
        except OSError:
            pass
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def __enter__(self) -> "OutputLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


# -- the final rename ---------------------------------------------------------------------------

_RENAME_NOREPLACE = 1
_AT_FDCWD = -100
_renameat2: Any = None  # resolved once: a ctypes function, or False where unavailable


def _libc_renameat2() -> Any:
    global _renameat2
    if _renameat2 is None:
        _renameat2 = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                fn = libc.renameat2  # glibc >= 2.28
                fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
                fn.restype = ctypes.c_int
                _renameat2 = fn
            except (OSError, AttributeError):
                pass
    return _renameat2


def rename_noreplace(src: Path, dst: Path) -> None:
    """Rename ``src`` to ``dst``; raise :class:`OutputBusyError` if ``dst`` exists, never
    replacing it. Atomic with ``renameat2`` on Linux; elsewhere (or on a filesystem without
    RENAME_NOREPLACE) a check then ``os.rename``, which the caller's :class:`OutputLock` guards
    against other comirec writers."""
    fn = _libc_renameat2()
    if fn:
        rc = fn(_AT_FDCWD, os.fsencode(src), _AT_FDCWD, os.fsencode(dst), _RENAME_NOREPLACE)
        if rc == 0:
            return
        err = ctypes.get_errno()
        if err in (errno.EEXIST, errno.ENOTEMPTY):
            raise OutputBusyError(err, f"{dst}: appeared while this command was writing it; not replaced "
                                  f"(another process wrote it; the new output was discarded)")
        if err not in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise OSError(err, f"cannot rename {src} to {dst}: {os.strerror(err)}")
    if os.path.lexists(dst):
        raise OutputBusyError(errno.EEXIST, f"{dst}: appeared while this command was writing it; not replaced "
                              f"(another process wrote it; the new output was discarded)")
    os.rename(src, dst)


# -- cleaning up after dead writers -------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def tmp_prefix(out: Path) -> str:
    """The prefix of this process's temporary directories for ``out`` (it names the PID)."""
    return f".{out.name}.tmp-{os.getpid()}-"


def old_name(out: Path) -> Path:
    return out.with_name(f".{out.name}.old-{os.getpid()}")


def clean_stale(out: Path, report: Any = None) -> list[str]:
    """Remove ``.OUT.tmp-PID-*`` directories whose PID is dead; restore ``OUT`` from an
    ``.OUT.old-PID`` whose PID is dead when ``OUT`` is missing (a kill between the two renames
    of ``--overwrite``), or remove that old copy when ``OUT`` was already replaced. Call with
    the :class:`OutputLock` held. Returns the notices (also passed to ``report``, default: stderr)."""
    parent = out.parent
    notes: list[str] = []
    if not parent.is_dir():
        return notes
    tmp_re = re.compile(rf"^\.{re.escape(out.name)}\.tmp-(\d+)-")
    old_re = re.compile(rf"^\.{re.escape(out.name)}\.old-(\d+)$")
    for entry in sorted(parent.iterdir()):
        m = tmp_re.match(entry.name)
        if m and not _pid_alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            notes.append(f"removed {entry}, left by a writer (PID {m.group(1)}) that died")
            continue
        m = old_re.match(entry.name)
        if m and not _pid_alive(int(m.group(1))):
            if not os.path.lexists(out):
                os.rename(entry, out)
                notes.append(f"restored {out} from {entry.name}, left by an --overwrite (PID {m.group(1)}) killed between its renames")
            else:
                shutil.rmtree(entry, ignore_errors=True)
                notes.append(f"removed {entry}: the previous {out.name}, already replaced by an --overwrite (PID {m.group(1)}) that died before removing it")
    for note in notes:
        (report or (lambda s: print(f"comirec: {s}", file=sys.stderr)))(note)
    return notes


def fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
