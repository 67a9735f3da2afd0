"""Reading large text files in blocks, and pinpointing what is wrong when parsing fails.

Every loader reads its input as a sequence of byte blocks that end on a line boundary, each
parsed by pyarrow (multithreaded C++). Memory stays bounded by the block size whatever the file
size, and each block knows its first line number, so an error can name the exact line.
Compressed inputs (.gz, .bz2, .zst, .lz4) are decompressed on the fly.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

BLOCK_BYTES = 32 << 20
_PREVIEW = 120


class DataFormatError(ValueError):
    """An input file does not have the expected format (the message names file, line, column)."""


class Block:
    """Whole lines of a file: ``data`` starts ``offset`` bytes into the (decompressed) file."""

    __slots__ = ("path", "offset", "data", "_first_line")

    def __init__(self, path: Path, offset: int, data: bytes) -> None:
        self.path, self.offset, self.data = path, offset, data
        self._first_line: int | None = None

    @property
    def first_line(self) -> int:
        """1-based number of the block's first line. Counted on demand (error messages only),
        by reading the file up to the block, so the fast path never counts lines."""
        if self._first_line is None:
            newlines = 0
            left = self.offset
            with open_binary(self.path) as f:
                while left > 0:
                    chunk = f.read(min(left, 1 << 24))
                    if not chunk:
                        break
                    newlines += chunk.count(b"\n")
                    left -= len(chunk)
            self._first_line = newlines + 1
        return self._first_line


def open_binary(path: Path) -> Any:
    """The file as a binary stream, decompressed on the fly; an error while reading it (a
    corrupt .gz, say) names the file."""
    import pyarrow as pa

    try:
        return _Named(pa.input_stream(str(path), compression="detect"), path)
    except (OSError, pa.ArrowException) as exc:
        raise _named_error(exc, path) from None


class _Named:
    """A pyarrow input stream whose read errors name the file (pyarrow's do not)."""

    def __init__(self, stream: Any, path: Path) -> None:
        self._stream, self._path = stream, path

    def read(self, n: int) -> bytes:
        import pyarrow as pa

        try:
            data: bytes = self._stream.read(n)
            return data
        except (OSError, pa.ArrowException) as exc:
            raise _named_error(exc, self._path) from None

    def __enter__(self) -> _Named:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stream.close()


def _named_error(exc: Exception, path: Path) -> Exception:
    """An I/O error (with an errno) stays an OSError; anything else (bad compressed data) is bad input."""
    errno_ = getattr(exc, "errno", None)
    if errno_ is not None:
        return OSError(errno_, f"{path}: cannot read: {exc.strerror or exc}")  # type: ignore[attr-defined]
    return DataFormatError(f"{path}: cannot read the file: {escape_unprintable(str(exc))}")


def iter_blocks(path: Path, block_bytes: int = BLOCK_BYTES, skip_lines: int = 0) -> Iterator[Block]:
    """Yield the file as blocks of whole lines (the last line gets a newline if it lacks one).
    Each block costs one copy of its bytes."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    offset = 0  # of the next block, in the decompressed file
    rest = b""
    with open_binary(path) as f:
        while True:
            buf = f.read(block_bytes)
            if not buf:
                block = rest if rest.endswith(b"\n") or not rest else rest + b"\n"
                rest = b""
            else:
                cut = buf.rfind(b"\n") + 1
                if cut == 0:  # no line ends in this read: keep reading
                    rest += buf
                    continue
                view = memoryview(buf)
                block = rest + view[:cut] if rest else (buf if cut == len(buf) else bytes(view[:cut]))
                rest = buf[cut:]
            if offset == 0 and block.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte order mark
                block = block[3:]
                offset = 3
            while skip_lines and block:
                nl = block.find(b"\n") + 1
                block = block[nl:]
                offset += nl
                skip_lines -= 1
            if block:
                yield Block(path, offset, block)
                offset += len(block)
            if not buf:
                return


def first_line(path: Path) -> str:
    """The file's first line (decoded leniently), without its newline."""
    with open_binary(path) as f:
        head = f.read(1 << 16)
    head = head.removeprefix(b"\xef\xbb\xbf")
    line: bytes = head.split(b"\n", 1)[0].rstrip(b"\r")
    return line.decode("utf-8", errors="replace")


def preview(text: str) -> str:
    return repr(text if len(text) <= _PREVIEW else text[:_PREVIEW] + "...")


def escape_unprintable(text: str) -> str:
    """``text`` with control characters, undecodable bytes (surrogate escapes) and other
    unprintable characters as Python escapes: garbage from a file is never echoed raw."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape", "backslashreplace").decode("ascii") for ch in text)


def preview_bytes(raw: bytes) -> str:
    """A quoted, printable preview of raw input bytes: text as is, bytes that are not UTF-8 as
    \\xNN and control characters escaped (garbage is never echoed raw to the terminal)."""
    text = raw[: _PREVIEW * 4].decode("utf-8", errors="backslashreplace")
    text = escape_unprintable(text)
    return "'" + (text if len(text) <= _PREVIEW else text[:_PREVIEW] + "...") + "'"


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _is_int(text: str) -> bool:
    try:
        int(text)
        return True
    except ValueError:
        return False


def _is_time(text: str) -> bool:
    if _is_number(text):
        return True
    try:
        datetime.fromisoformat(text.strip())
        return True
    except ValueError:
        return False


# What a typed column must hold, for error messages: kind -> (check, description)
KINDS = {
    "int": (_is_int, "an integer"),
    "number": (_is_number, "a finite number"),
    "time": (_is_time, "a numeric timestamp or an ISO date-time"),
    "text": (lambda s: s != "", "a non-empty value"),
}


def locate_csv_error(
    block: Block,
    delimiter: str,
    quoting: bool,
    names: Sequence[str],
    checks: dict[str, str],
    arrow_message: str,
) -> DataFormatError:
    """Scan a block that pyarrow rejected and describe its first bad line.

    ``checks`` maps a column name to a kind in ``KINDS``. Falls back to pyarrow's own message
    (with the block's line range) when no line is found to be wrong.
    """
    index = {name: i for i, name in enumerate(names)}
    # undecodable bytes stay recoverable (surrogate escapes) so that messages show them as \xNN
    text = block.data.decode("utf-8", errors="surrogateescape")
    time_kinds: dict[str, tuple[str, int]] = {}
    for offset, raw in enumerate(text.split("\n")):
        raw = raw.rstrip("\r")
        if raw == "":
            continue
        lineno = block.first_line + offset
        if quoting:
            fields = next(csv.reader([raw], delimiter=delimiter))
        else:
            fields = raw.split(delimiter)
        if len(fields) != len(names):
            return DataFormatError(
                f"{block.path}, line {lineno}: expected {len(names)} {_delim_name(delimiter)}-separated fields "
                f"({', '.join(names)}), got {len(fields)}: {_shown(raw)}"
            )
        for col, kind in checks.items():
            value = fields[index[col]]
            ok, what = KINDS[kind]
            if not ok(value):
                return DataFormatError(
                    f"{block.path}, line {lineno}, column {col!r}: expected {what}, got {_shown(value)}"
                )
            if kind == "time":  # one kind throughout: numbers or date-times, not both
                this = "a number" if _is_number(value) else "a date-time"
                first_kind, first_line_no = time_kinds.setdefault(col, (this, lineno))
                if this != first_kind:
                    return DataFormatError(
                        f"{block.path}, line {lineno}, column {col!r}: expected {first_kind} like line "
                        f"{first_line_no}, got {this}: {_shown(value)}"
                    )
    last = block.first_line + block.data.count(b"\n") - 1
    return DataFormatError(f"{block.path}, lines {block.first_line}-{last}: cannot parse: {preview(arrow_message)}")


def _shown(text: str) -> str:
    """A field or line of the file, quoted, with its undecodable bytes as \\xNN (as read)."""
    return preview_bytes(text.encode("utf-8", errors="surrogateescape"))


def _delim_name(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", "|": "pipe", " ": "space", ";": "semicolon", "\x1f": "'::'"}.get(
        delimiter, repr(delimiter)
    )
