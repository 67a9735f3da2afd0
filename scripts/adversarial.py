"""Adversarial battery (issue 9): bad and edge inputs per area, each case in its own subprocess
with a timeout, classified automatically; prints the table of docs/reliability.md.

    PYTHONPATH=python python scripts/adversarial.py [--work DIR] [--json OUT] [--area NAME ...]

The package under test is whichever ``comirec`` the PYTHONPATH gives (so two builds can be
compared: the table in docs/reliability.md ran this against the commit before issue 9's fixes
and against main). Each case ends in one verdict:

    ok            the expected result (same as comirec.reference, or the documented one)
    clear error   an exception (or CLI exit 1/2) with a one-line message naming the argument or file
    unclear error an error, but a traceback, several lines, an internal exception type
                  (RuntimeError, EOFError, AttributeError, UnicodeError, ...) or no name
    wrong result  a result that differs from the reference/expected, a bad input accepted, or a
                  valid input refused
    crash         killed by a signal or aborted (SIGABRT, SIGBUS, SIGSEGV, a Rust panic)
    hang          ran past its timeout (or, for the hash-collision case, > 20x the random-id time)
    data lost     an output missing or half-written, or a dataset that a killed --overwrite or a
                  second writer left gone
    leak          temporary directories of dead writers left behind after a later command

A case that cannot run here (no tmpfs without root; a corruption of a file an old build does not
write) is printed as "not run" and left out of the table. A case counts as passed when it is "ok"
or "clear error" (for bad input the clear error is the expected outcome). Cases that an old
build has no API for are run all the same: what they do there (usually an error) is what they
did then.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

PY = sys.executable
VERDICTS = ("ok", "clear error", "unclear error", "wrong result", "crash", "hang", "data lost", "leak")
PASSED = ("ok", "clear error")
# exception types that are never a clear error, whatever the message
INTERNAL = ("RuntimeError", "EOFError", "AttributeError", "KeyError", "IndexError", "UnicodeEncodeError",
            "UnicodeDecodeError", "UnpicklingError", "TokenError", "AssertionError", "PanicException",
            "NotADirectoryError", "IsADirectoryError", "ZeroDivisionError", "SystemError")
ALLOWED = ("ValueError", "TypeError", "MemoryError", "OverflowError", "OSError")  # or subclasses


@dataclass
class Result:
    area: str
    name: str
    verdict: str
    detail: str = ""
    seconds: float = 0.0


@dataclass
class Ctx:
    work: Path
    fixtures: dict[str, Path] = field(default_factory=dict)
    timeout: float = 60.0


# -- running things ------------------------------------------------------------------------------

PRELUDE = r'''
import json, math, sys, warnings
import numpy as np
import comirec
from comirec import reference as R
inf, nan = math.inf, math.nan
warnings.simplefilter("ignore")

def _same(a, b):
    if isinstance(a, tuple) and len(a) == 2 and hasattr(a, "items"):
        ai, asc = (np.asarray(x) for x in a)
        bi, bsc = (np.asarray(x) for x in b)
        return (ai.shape == bi.shape and np.array_equal(ai, bi)
                and np.array_equal(asc.astype(np.float32).view(np.uint32), bsc.astype(np.float32).view(np.uint32)))
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return False
        for k in a:
            x, y = np.asarray(a[k], dtype=np.float64), np.asarray(b[k], dtype=np.float64)
            if x.shape != y.shape or not np.allclose(x, y, rtol=0, atol=1e-12, equal_nan=True):
                return False
        return True
    return a == b

def _outcome(thunk):
    try:
        return ("value", thunk())
    except BaseException as e:
        return ("raise", e)

def _report(got, want=None, check=None):
    out = {}
    kind, v = got
    if kind == "raise":
        out["exc"] = type(v).__name__
        out["mro"] = [c.__name__ for c in type(v).__mro__]
        out["msg"] = str(v)
    else:
        out["value"] = True
        if check is not None:
            out["check"] = check(v)
    if want is not None:
        wk, wv = want
        if wk == "raise":
            out["ref_msg"] = f"{type(wv).__name__}: {wv}"
        elif kind == "value":
            out["match"] = bool(_same(v, wv))
    print("@@RESULT " + json.dumps(out), flush=True)
'''


def run_python(code: str, timeout: float, cwd: Path) -> tuple[int | None, str, str, float]:
    t0 = time.perf_counter()
    try:
        p = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                           errors="backslashreplace")
        return p.returncode, p.stdout, p.stderr, time.perf_counter() - t0
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        return None, out, "", time.perf_counter() - t0


def cli(*argv: str, timeout: float = 120, cwd: Path | None = None) -> tuple[int | None, str, str]:
    try:
        p = subprocess.run([PY, "-m", "comirec.cli", *argv], capture_output=True, text=True, timeout=timeout, cwd=cwd,
                           errors="backslashreplace")
        return p.returncode, p.stdout, p.stderr
    except subprocess.TimeoutExpired:
        return None, "", ""


def crashed(rc: int | None, stderr: str) -> str | None:
    if rc is not None and rc < 0:
        return f"killed by {signal.Signals(-rc).name}"
    if rc in (134, 135, 139):
        return f"exit {rc} (abort/bus error/segfault)"
    if "panicked at" in stderr or "PanicException" in stderr:
        return "Rust panic"
    return None


def _printable(msg: str) -> bool:
    return all(ch.isprintable() for ch in msg) and "\ufffd" not in msg


def error_clarity(exc: str, mro: list[str], msg: str, names: tuple[str, ...]) -> tuple[str, str]:
    short = f"{exc}: {msg[:160]}"
    if exc in INTERNAL or not any(c in ALLOWED for c in mro):
        return "unclear error", f"internal exception type; {short}"
    if "\n" in msg.strip():
        return "unclear error", f"several lines; {short}"
    if not _printable(msg):
        return "unclear error", f"raw bytes in the message; {short!r}"
    if names and not any(n in msg for n in names):
        return "unclear error", f"does not name {' / '.join(names)}; {short}"
    return "clear error", short


def cli_clarity(rc: int | None, stderr: str, names: tuple[str, ...]) -> tuple[str, str]:
    lines = [x for x in stderr.strip().splitlines() if x.strip()]
    last = lines[-1] if lines else ""
    if "Traceback (most recent call last)" in stderr:
        return "unclear error", f"exit {rc}, traceback: {last[:160]}"
    if rc not in (1, 2):
        return "unclear error", f"exit {rc}: {last[:160]}"
    if not re.match(r"^comirec( [\w-]+)?: error: ", last):
        return "unclear error", f"exit {rc}, not one error line: {last[:160]}"
    if not _printable(last):
        return "unclear error", f"raw bytes in the message: {last[:160]!r}"
    if names and not any(n in last for n in names):
        return "unclear error", f"does not name {' / '.join(names)}: {last[:160]}"
    return "clear error", f"exit {rc}: {last[:160]}"


@dataclass
class Api:
    """A call in a fresh interpreter. ``expect``: "ref" (compare with ``ref``, or raise as it does),
    "error" (a clear error naming one of ``names``), "value" (``check`` returns None when the value is
    right, else a description), "either" (a right value or a clear error)."""

    area: str
    name: str
    setup: str
    call: str
    expect: str = "ref"
    ref: str | None = None
    names: tuple[str, ...] = ()
    check: str | None = None  # source of a function value -> None | str
    timeout: float | None = None
    fixtures: tuple[str, ...] = ()
    prepare: Callable[[Ctx], None] | None = None
    allow_error: bool = False  # "ref": a clear error is fine too (a documented refusal)

    def run(self, ctx: Ctx) -> Result:
        for f in self.fixtures:
            if f not in ctx.fixtures:
                return Result(self.area, self.name, "wrong result", f"fixture {f} could not be made with this build")
        if self.prepare:
            try:
                self.prepare(ctx)
            except Exception as exc:  # the corruption needs a field this build does not write
                return Result(self.area, self.name, "not run", f"not applicable to this build ({exc!r})")
        ref = self.ref if self.ref is not None else (self.call.replace("comirec.", "R.", 1) if self.expect == "ref" else None)
        paths = "".join(f"{k.upper()} = {str(v)!r}\n" for k, v in ctx.fixtures.items())
        code = (PRELUDE + paths + textwrap.dedent(self.setup) + "\n"
                + (f"_check = {self.check}\n" if self.check else "_check = None\n")
                + f"_report(_outcome(lambda: {self.call}), {f'_outcome(lambda: {ref})' if ref else 'None'}, _check)\n")
        rc, out, err, secs = run_python(code, self.timeout or ctx.timeout, ctx.work)
        return Result(self.area, self.name, *self.classify(rc, out, err), seconds=secs)

    def classify(self, rc: int | None, out: str, err: str) -> tuple[str, str]:
        if rc is None:
            return "hang", f"no result in {self.timeout or 'the timeout'} s"
        m = re.search(r"^@@RESULT (.*)$", out, re.M)
        why = crashed(rc, err)
        if why and not (m and rc == 0):  # a panic caught as an exception is judged by that exception
            return "crash", why + ": " + (err.strip().splitlines() or [""])[-1][:160]
        if not m:
            return "crash", f"exit {rc} without a result: {(err.strip().splitlines() or [''])[-1][:160]}"
        r = json.loads(m.group(1))
        if "exc" in r and why:
            return "unclear error", f"a Rust panic caught as {r['exc']}: {r['msg'][:120]} (backtrace on stderr)"
        if "exc" in r:
            names = self.names
            if not names and "ref_msg" in r:
                head = r["ref_msg"].split(": ", 1)[1].split(":", 1)[0]
                names = (head,) if re.fullmatch(r"\w+", head) else ()
            verdict, detail = error_clarity(r["exc"], r["mro"], r["msg"], names)
            if self.expect == "ref" and "ref_msg" not in r and not (self.allow_error and verdict == "clear error"):
                return "wrong result", f"raised where the reference returns: {detail}"
            if self.expect == "value":
                return "wrong result", f"refused a valid input: {detail}"
            return verdict, detail
        if self.expect == "error":
            return "wrong result", "accepted (a clear error was expected)" + (f": {r['check']}" if r.get("check") else "")
        if "ref_msg" in r:
            return "wrong result", f"accepted; the reference raises {r['ref_msg'][:140]}"
        if r.get("match") is False:
            return "wrong result", "differs from comirec.reference"
        check = r.get("check")
        if check:
            if isinstance(check, list):  # [verdict, detail]
                return check[0], check[1]
            return "wrong result", str(check)[:200]
        return "ok", ""



def missing_fixture(area: str, name: str, fixtures: tuple[str, ...], ctx: Ctx) -> Result | None:
    """A case whose fixture this build could not make counts as a wrong result."""
    for f in fixtures:
        if f not in ctx.fixtures:
            return Result(area, name, "wrong result", f"fixture {f} could not be made with this build")
    return None

@dataclass
class Cli:
    """``comirec ARGV`` in a fresh interpreter. ``expect``: "error" (a clear error naming one of
    ``names``), "either" (success, or a clear error). ``after`` (optional) inspects the outputs
    and returns (verdict, detail) to override a passing verdict (data lost, leak, wrong result)."""

    area: str
    name: str
    argv: Callable[..., list[str]]  # (ctx) -> argv
    expect: str = "error"
    names: Callable[..., tuple[str, ...]] = lambda ctx: ()
    prepare: Callable[[Ctx], object] | None = None
    after: Callable[[Ctx, int | None, str], tuple[str, str] | None] | None = None
    timeout: float = 180
    fixtures: tuple[str, ...] = ()

    def run(self, ctx: Ctx) -> Result:
        missing = missing_fixture(self.area, self.name, self.fixtures, ctx)
        if missing is not None:
            return missing
        t0 = time.perf_counter()
        if self.prepare:
            try:
                self.prepare(ctx)
            except Exception as exc:
                return Result(self.area, self.name, "not run", f"not applicable to this build ({exc!r})")
        argv = self.argv(ctx)
        rc, out, err = cli(*argv, timeout=self.timeout, cwd=ctx.work)
        secs = time.perf_counter() - t0
        if rc is None:
            return Result(self.area, self.name, "hang", f"no exit in {self.timeout} s", secs)
        why = crashed(rc, err)
        if why:
            return Result(self.area, self.name, "crash", f"{why}; stderr: {err.strip()[-300:]!r}", secs)
        if rc == 0:
            verdict, detail = ("ok", "") if self.expect == "either" else ("wrong result", "exit 0: bad input accepted")
        else:
            verdict, detail = cli_clarity(rc, err, self.names(ctx))
        if self.after:
            over = self.after(ctx, rc, err)
            if over and (verdict in PASSED or over[0] in ("data lost", "crash")):
                verdict, detail = over[0], (over[1] + (f" ({detail})" if detail else ""))
        return Result(self.area, self.name, verdict, detail, secs)


@dataclass
class Custom:
    area: str
    name: str
    fn: Callable[[Ctx], tuple[str, str]]
    fixtures: tuple[str, ...] = ()

    def run(self, ctx: Ctx) -> Result:
        missing = missing_fixture(self.area, self.name, self.fixtures, ctx)
        if missing is not None:
            return missing
        t0 = time.perf_counter()
        try:
            verdict, detail = self.fn(ctx)
        except subprocess.TimeoutExpired as e:
            verdict, detail = "hang", f"timeout: {' '.join(map(str, e.cmd))[-120:]}"
        return Result(self.area, self.name, verdict, detail, time.perf_counter() - t0)


# -- fixtures (made with the build under test) ----------------------------------------------------

SMALL = ["synth", "--users", "300", "--items", "120", "--categories", "6", "--mean-length", "8", "--max-length", "30"]
BIG = ["synth", "--users", "400000", "--items", "20000", "--categories", "50", "--mean-length", "12"]
TINY = ["--dim", "16", "--maxlen", "12", "--batch-size", "32", "--eval-batch-size", "256", "--threads", "1", "--no-progress"]
TRAIN = ["--model", "youtube-dnn", "--max-steps", "60", "--eval-every", "20", "--eval-users", "200", *TINY]


def make_fixtures(ctx: Ctx) -> None:
    w = ctx.work
    steps: list[tuple[str, list[str]]] = [
        ("ds", [*SMALL, "--seed", "1", "--out", str(w / "fx-ds")]),
        ("big1", [*BIG, "--seed", "1", "--out", str(w / "fx-big1")]),
        ("big2", [*BIG, "--seed", "2", "--out", str(w / "fx-big2")]),
    ]
    rng = random.Random(0)
    seq = w / "fx-seq.txt"
    seq.write_text("".join(f"u{u} " + " ".join(f"i{rng.randrange(400)}" for _ in range(rng.randrange(5, 30))) + "\n"
                           for u in range(6000)))
    ctx.fixtures["seq"] = seq
    steps.append(("prepared", ["prepare", "--format", "sequences", "--input", str(seq), "--out", str(w / "fx-prepared")]))
    steps.append(("run", ["train", "--data", str(w / "fx-ds"), "--out", str(w / "fx-run"), "--model", "youtube-dnn",
                          "--max-steps", "40", "--eval-every", "20", *TINY]))
    steps.append(("whole", ["train", "--data", str(w / "fx-prepared"), "--out", str(w / "fx-whole"), *TRAIN]))
    for key, argv in steps:
        shutil.rmtree(argv[argv.index("--out") + 1], ignore_errors=True)
        t0 = time.perf_counter()
        rc, _, err = cli(*argv, timeout=600)
        secs = time.perf_counter() - t0
        out = Path(argv[argv.index("--out") + 1])
        if rc == 0:
            ctx.fixtures[key] = out
            ctx.fixtures[f"{key}_seconds"] = secs  # type: ignore[assignment]
        print(f"fixture {key}: exit {rc} in {secs:.1f} s" + ("" if rc == 0 else f": {err.strip()[-300:]}"), file=sys.stderr)


# -- helpers for the cases ------------------------------------------------------------------------


def siblings(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.") and p.name != f".{out.name}.lock")


def same_dataset(a: Path, b: Path) -> bool:
    names = ("indptr", "items", "split", "item_freq", "item_cat", "user_raw", "item_raw", "cat_raw")
    try:
        return all((a / f"{n}.npy").read_bytes() == (b / f"{n}.npy").read_bytes() for n in names) and (a / "header.json").is_file()
    except OSError:
        return False


def dataset_state(out: Path, *refs: Path) -> str:
    """'absent', 'ref0'/'ref1' (complete and identical), or 'partial' (present but neither)."""
    if not out.exists():
        return "absent"
    for i, ref in enumerate(refs):
        if same_dataset(out, ref):
            return f"ref{i}"
    return "partial"


def killed_at(delay: float, argv: list[str], code: str | None = None) -> int:
    cmd = [PY, "-c", code, *argv] if code else [PY, "-m", "comirec.cli", *argv]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        p.wait(timeout=delay)
    except subprocess.TimeoutExpired:
        p.send_signal(signal.SIGKILL)
    return p.wait()


def copy(src: Path, dst: Path) -> Path:
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst


# -- aggregate ------------------------------------------------------------------------------------

AGG_SETUP = """
rng = np.random.default_rng(7)
def C(B, K, N, hi=20, dtype=np.int64, empty=0.2):
    r = np.random.default_rng([B, K, N, hi])  # the same batch each call (for the call and the reference)
    items = r.integers(0, hi, (B, K, N)).astype(dtype)
    items[r.random((B, K, N)) < empty] = -1
    scores = np.sort(r.standard_normal((B, K, N)).astype(np.float32), axis=2)[:, :, ::-1].copy()
    return items, scores
cats = rng.integers(0, 4, 20)
"""

ONE = "(np.ones((1,1,1),np.int64), np.ones((1,1,1),np.float32))"
EMPTY = "(np.zeros((0,1,1),np.int64), np.zeros((0,1,1),np.float32))"
SIZE_OK = ("lambda r: None if r.items.shape[1] <= 10**6 or (r.items[:, 1:] == -1).all() else "
           "'a huge output was allocated'")


def aggregate_cases() -> Iterator[Api]:
    a = "aggregate"

    def ref(name: str, call: str, setup: str = "", **kw: object) -> Api:
        return Api(a, name, AGG_SETUP + setup, call, **kw)  # type: ignore[arg-type]

    def err(name: str, call: str, names: tuple[str, ...], setup: str = "") -> Api:
        return Api(a, name, AGG_SETUP + setup, call, expect="error", names=names)

    yield ref("random batch, lam 0", "comirec.aggregate(C(3, 2, 4), None, 0.0, 5)")
    yield ref("random batch, lam 0.5 with cats", "comirec.aggregate(C(3, 2, 4), cats, 0.5, 5)")
    yield ref("lam inf", "comirec.aggregate(C(3, 3, 5), cats, inf, 6)")
    yield ref("lam 1e300", "comirec.aggregate(C(2, 3, 5), cats, 1e300, 6)")
    yield ref("all scores tied", "comirec.aggregate((np.array([[[5, 3, 9], [1, 3, 2]]]), np.zeros((1, 2, 3), np.float32)), cats, 0.3, 4)")
    yield ref("-0.0 and +0.0 scores", "comirec.aggregate((np.array([[[1, 2], [2, 1]]]), np.array([[[0.0, -0.0], [-0.0, -0.0]]], np.float32)), None, 0, 2)")
    yield ref("every slot empty", "comirec.aggregate((np.full((2, 2, 3), -1), np.zeros((2, 2, 3), np.float32)), cats, 0.5, 3)")
    yield ref("n beyond the candidates pads", "comirec.aggregate(C(2, 2, 2), cats, 0.5, 50)")
    yield ref("ids >= 2**32", "comirec.aggregate((np.array([[[2**40, 2**33 + 1, 5]]]), np.array([[[3, 2, 1]]], np.float32)), None, 0, 3)")
    yield ref("int32 ids", "comirec.aggregate(C(3, 2, 4, dtype=np.int32), cats, 0.5, 5)")
    yield ref("uint8 ids", "comirec.aggregate(C(3, 2, 4, dtype=np.int16), None, 0, 5)")
    yield ref("float64 scores", "comirec.aggregate((C(2, 2, 3)[0], C(2, 2, 3)[1].astype(np.float64)), cats, 0.5, 3)")
    yield ref("non-contiguous inputs", "comirec.aggregate((np.asfortranarray(C(3, 2, 4)[0]), C(3, 2, 8)[1][:, :, ::2]), cats, 0.5, 4)")
    yield ref("python lists", "comirec.aggregate(([[[1, 2], [3, -1]]], [[[0.5, 0.25], [0.75, 0.0]]]), cats, 0.5, 3)")
    yield ref("empty batch B=0", f"comirec.aggregate({EMPTY}, None, 0, 5)")
    yield ref("K=0 and N=0", "comirec.aggregate((np.zeros((2, 0, 3), np.int64), np.zeros((2, 0, 3), np.float32)), cats, 0.5, 3)")
    yield ref("NaN in an empty slot", "comirec.aggregate((np.array([[[1, -1]]]), np.array([[[1.0, np.nan]]], np.float32)), None, 0, 2)")
    yield ref("duplicate ids across interests", "comirec.aggregate((np.array([[[4, 4, 2], [2, 4, 7]]]), np.array([[[3, 2, 1], [9, 1, 0]]], np.float32)), cats, 0.5, 3)")
    yield ref("int64 min as an empty slot", "comirec.aggregate((np.array([[[-2**63, 3]]]), np.array([[[5, 1]]], np.float32)), None, 0, 2)")
    yield ref("lam 0 never reads a short cats", "comirec.aggregate(C(2, 2, 3), np.zeros(1, np.int64), 0.0, 3)")
    yield ref("negative padding category, item 0 absent", "comirec.aggregate((np.array([[[1, 2]]]), np.array([[[2, 1]]], np.float32)), np.array([-1, 0, 1]), 0.5, 2)")
    yield ref("long candidate lists (K=4, N=500)", "comirec.aggregate(C(2, 4, 500, hi=3000), np.arange(3000) % 7, 0.7, 30)")
    yield err("NaN score", "comirec.aggregate((np.array([[[1]]]), np.array([[[np.nan]]], np.float32)), None, 0, 1)", ("scores",))
    yield err("inf score", "comirec.aggregate((np.array([[[1, 2]]]), np.array([[[np.inf, 1]]], np.float32)), None, 0, 1)", ("scores",))
    yield err("shapes differ", "comirec.aggregate((np.ones((1, 2, 3), np.int64), np.ones((1, 2, 4), np.float32)), None, 0, 1)", ("scores", "items"))
    yield err("2-D items", "comirec.aggregate((np.ones((2, 3), np.int64), np.ones((2, 3), np.float32)), None, 0, 1)", ("items",))
    yield err("float ids", "comirec.aggregate((np.ones((1, 1, 2)), np.ones((1, 1, 2), np.float32)), None, 0, 1)", ("items",))
    yield err("string ids", "comirec.aggregate((np.array([[['a', 'b']]]), np.ones((1, 1, 2), np.float32)), None, 0, 1)", ("items",))
    yield err("ragged nested lists", "comirec.aggregate(([[[1, 2], [3]]], [[[1.0, 0.5], [0.2]]]), None, 0, 1)", ("items", "scores"))
    yield err("object scores", "comirec.aggregate((np.ones((1, 1, 1), np.int64), np.array([[[None]]], dtype=object)), None, 0, 1)", ("scores",))
    yield err("cands None", "comirec.aggregate(None, None, 0, 1)", ("cands",))
    yield err("lam negative", f"comirec.aggregate({ONE}, None, -0.5, 1)", ("lam",))
    yield err("lam NaN", f"comirec.aggregate({ONE}, np.zeros(2, np.int64), nan, 1)", ("lam",))
    yield err("lam a string", f"comirec.aggregate({ONE}, None, 'x', 1)", ("lam",))
    yield err("n = 0", f"comirec.aggregate({ONE}, None, 0, 0)", ("n",))
    yield err("n = -1", f"comirec.aggregate({ONE}, None, 0, -1)", ("n",))
    yield err("n = 2.5", f"comirec.aggregate({ONE}, None, 0, 2.5)", ("n",))
    yield err("n = '5'", f"comirec.aggregate({ONE}, None, 0, '5')", ("n",))
    yield err("n = 2**64", f"comirec.aggregate({ONE}, None, 0, 2**64)", ("n",))
    yield Api(a, "n = 10**12 (item 1)", "", f"comirec.aggregate({ONE}, None, 0, 10**12)", expect="either", names=("n",), check=SIZE_OK)
    yield Api(a, "n = 10**12 with cats, lam 0.5", "", f"comirec.aggregate({ONE}, np.zeros(2, np.int64), 0.5, 10**12)", expect="either", names=("n",), check=SIZE_OK)
    yield Api(a, "B = 1000, n = 10**9 (item 1)", "", "comirec.aggregate((np.ones((1000,1,1),np.int64), np.ones((1000,1,1),np.float32)), None, 0, 10**9)", expect="either", names=("n",), check=SIZE_OK)
    yield Api(a, "n = 2**62 (item 1)", "", f"comirec.aggregate({ONE}, None, 0, 2**62)", expect="either", names=("n",), check=SIZE_OK)
    yield Api(a, "n = 2**62, empty batch (item 9)", "", f"comirec.aggregate({EMPTY}, None, 0, 2**62)", expect="either", names=("n",), check="lambda r: None if r.items.shape[0] == 0 else 'rows'")
    yield Api(a, "n = 3e6, 2 candidates", "", "comirec.aggregate((np.array([[[4, 2]]]), np.array([[[0.5, 0.25]]], np.float32)), np.array([0, 0, 1, 0, 2]), 0.5, 3_000_000)",
              expect="value", check="lambda r: None if r.items[0, :2].tolist() == [4, 2] and (r.items[0, 2:] == -1).all() else 'wrong'")
    yield err("item beyond cats, n=1 (item 6)", "comirec.aggregate((np.array([[[1, 9]]]), np.array([[[2, 1]]], np.float32)), np.zeros(5, np.int64), 1.0, 1)", ("items", "cats"))
    yield err("item beyond cats, n=2 (item 6)", "comirec.aggregate((np.array([[[1, 9]]]), np.array([[[2, 1]]], np.float32)), np.zeros(5, np.int64), 1.0, 2)", ("items", "cats"))
    yield err("negative category of a candidate", "comirec.aggregate((np.array([[[1, 2]]]), np.array([[[2, 1]]], np.float32)), np.array([0, 0, -3]), 1.0, 1)", ("cats",))
    yield err("cats missing with lam > 0", f"comirec.aggregate({ONE}, None, 0.5, 1)", ("cats",))
    yield err("2-D cats", f"comirec.aggregate({ONE}, np.zeros((2, 2), np.int64), 0.5, 1)", ("cats",))
    yield err("float cats", f"comirec.aggregate({ONE}, np.zeros(2), 0.5, 1)", ("cats",))
    yield Api(a, "300 random batches vs reference", AGG_SETUP + """
def _many():
    bad = 0
    r = np.random.default_rng(11)
    for t in range(300):
        B, K, N = (int(x) for x in r.integers(0, 4, 3))
        items = r.integers(-1, 12, (B, K, N))
        scores = np.sort(r.choice(np.float32([-1, -0.0, 0, 0.5, 1, 2]), (B, K, N)), axis=2)[:, :, ::-1].copy()
        cats_ = r.integers(0, 3, 12)
        lam = float(r.choice([0, 0.1, 1, 5, inf]))
        n = int(r.integers(1, 8))
        g, w = _outcome(lambda: comirec.aggregate((items, scores), cats_, lam, n)), _outcome(lambda: R.aggregate((items, scores), cats_, lam, n))
        if g[0] != w[0] or (g[0] == "value" and not _same(g[1], w[1])):
            bad += 1
    return bad
""", "_many()", expect="value", check="lambda bad: None if bad == 0 else f'{bad} of 300 differ'")


# -- metrics --------------------------------------------------------------------------------------

MET_SETUP = """
rng = np.random.default_rng(3)
recs = rng.integers(0, 30, (6, 10))
tg = [rng.integers(0, 30, rng.integers(1, 6)) for _ in range(6)]
cats = rng.integers(0, 4, 30)
def csr(lists):
    return (np.concatenate([[0], np.cumsum([len(t) for t in lists])]).astype(np.int64), np.concatenate([np.asarray(t, np.int64) for t in lists] or [np.zeros(0, np.int64)]))
"""

COLLIDE = """
import time
def _ids(count):
    c = 0x9E3779B97F4A7C15
    inv = pow(c, -1, 2**64)
    out, j = [], 1
    while len(out) < count:
        x = j * inv % 2**64
        if x < 2**63:
            out.append(x)
        j += 1
    return np.array(out, dtype=np.int64)
def _ratio():
    count = 131072
    chosen, rand = _ids(count), np.random.default_rng(0).integers(0, 2**62, count)
    def cost(ids):
        t = []
        for _ in range(3):
            t0 = time.perf_counter(); comirec.metrics(np.array([[1]]), [ids], ks=(1,)); t.append(time.perf_counter() - t0)
        return sorted(t)[1]
    cost(rand)
    return cost(chosen) / cost(rand)
"""


def metrics_cases() -> Iterator[Api]:
    m = "metrics"

    def ref(name: str, call: str, ref: str | None = None, allow_error: bool = False) -> Api:
        return Api(m, name, MET_SETUP, call, ref=ref, allow_error=allow_error)

    def err(name: str, call: str, names: tuple[str, ...]) -> Api:
        return Api(m, name, MET_SETUP, call, expect="error", names=names)

    yield ref("random, standard", "comirec.metrics(recs, tg, ks=(5, 10))")
    yield ref("random, comirec protocol", "comirec.metrics(recs, tg, ks=(5, 10), protocol='comirec')")
    yield ref("with cats (diversity)", "comirec.metrics(recs, tg, cats, ks=(3, 10))")
    yield ref("per_user", "comirec.metrics(recs, tg, cats, ks=(5,), per_user=True)")
    yield ref("CSR targets", "comirec.metrics(recs, csr(tg), ks=(5, 10))")
    yield ref("an empty target list (item 7)", "comirec.metrics(recs[:2], [[], [4]], ks=(4,))")
    yield ref("an empty target list, comirec protocol", "comirec.metrics(recs[:2], [[], list(recs[1][:2])], ks=(4,), protocol='comirec')")
    yield ref("CSR with an empty user", "comirec.metrics(recs[:3], csr([tg[0], [], tg[2]]), ks=(5,))")
    yield ref("nobody has targets", "comirec.metrics(recs[:2], [[], []], ks=(4,), per_user=True)")
    yield ref("empty batch", "comirec.metrics(np.zeros((0, 5), np.int64), [], ks=(5,))")
    yield ref("-1 padding in recs", "comirec.metrics(np.where(recs > 20, -1, recs), tg, cats, ks=(10,))")
    yield ref("repeated recommendations", "comirec.metrics(np.repeat(recs[:, :3], 3, axis=1), tg, cats, ks=(9,), protocol='comirec')")
    yield ref("k beyond the list", "comirec.metrics(recs, tg, ks=(100,))", allow_error=True)
    yield ref("ks as one int", "comirec.metrics(recs, tg, ks=5)", "R.metrics(recs, tg, ks=(5,))")
    yield ref("repeated targets", "comirec.metrics(recs, [np.repeat(t, 3) for t in tg], ks=(5,), protocol='comirec')")
    yield ref("ids >= 2**32", "comirec.metrics(recs + 2**40, [t + 2**40 for t in tg], ks=(5,))")
    yield ref("negative target ids", "comirec.metrics(recs, [t - 10 for t in tg], ks=(5,))", allow_error=True)
    yield err("ks = (0,)", "comirec.metrics(recs, tg, ks=(0,))", ("ks",))
    yield err("ks = (-1,)", "comirec.metrics(recs, tg, ks=(-1,))", ("ks",))
    yield err("ks = ()", "comirec.metrics(recs, tg, ks=())", ("ks",))
    yield err("ks = (2.5,)", "comirec.metrics(recs, tg, ks=(2.5,))", ("ks",))
    yield err("unknown protocol", "comirec.metrics(recs, tg, protocol='foo')", ("protocol",))
    yield err("protocol with a lone surrogate (item 9)", "comirec.metrics(recs, tg, protocol='standard\\udcff')", ("protocol",))
    yield err("fewer target lists than users", "comirec.metrics(recs, tg[:3])", ("targets",))
    yield err("float target ids", "comirec.metrics(recs[:1], [[4.5]])", ("targets",))
    yield err("targets None", "comirec.metrics(recs, None)", ("targets",))
    yield err("recs None", "comirec.metrics(None, tg)", ("recs",))
    yield err("1-D recs", "comirec.metrics(recs[0], tg[:1])", ("recs",))
    yield err("float recs", "comirec.metrics(recs.astype(float), tg)", ("recs",))
    yield err("cats shorter than the ids", "comirec.metrics(recs, tg, cats[:5], ks=(5,))", ("recs", "cats"))
    yield err("negative category", "comirec.metrics(recs, tg, -np.ones(30, np.int64), ks=(5,))", ("cats",))
    yield err("CSR offsets decreasing", "comirec.metrics(recs[:2], (np.array([0, 3, 1]), np.arange(3)))", ("targets", "indptr"))
    yield err("CSR offsets of the wrong length", "comirec.metrics(recs[:2], (np.array([0, 1]), np.arange(3)))", ("targets", "indptr"))
    yield err("CSR offsets beyond the items", "comirec.metrics(recs[:2], (np.array([0, 1, 9]), np.arange(3)))", ("targets", "indptr"))
    yield Api(m, "ks = [1] * 10**5 on 10**6 users (item 1)", "",
              "comirec.metrics(np.ones((10**6, 1), np.int64), (np.arange(10**6 + 1), np.ones(10**6, np.int64)), ks=[1] * 10**5)",
              expect="either", names=("ks",), check="lambda r: None")
    yield Api(m, "131,072 colliding target ids (item 10)", COLLIDE, "_ratio()", expect="value", timeout=300,
              check="lambda r: None if r < 20 else ['hang', f'colliding ids take {r:.0f}x the time of random ones']")
    yield Api(m, "300 random cases vs reference", MET_SETUP + """
def _many():
    bad = 0
    r = np.random.default_rng(5)
    for t in range(300):
        B, n = int(r.integers(0, 5)), int(r.integers(1, 8))
        recs_ = r.integers(-1, 10, (B, n))
        tg_ = [r.integers(0, 10, r.integers(0, 5)).tolist() for _ in range(B)]
        cats_ = r.integers(0, 3, 10) if r.random() < 0.5 else None
        ks_ = tuple(int(k) for k in r.integers(1, n + 1, r.integers(1, 3)))
        proto = str(r.choice(["standard", "comirec"]))
        g = _outcome(lambda: comirec.metrics(recs_, tg_, cats_, ks_, proto, per_user=True))
        w = _outcome(lambda: R.metrics(recs_, tg_, cats_, ks_, proto, per_user=True))
        if g[0] != w[0] or (g[0] == "value" and not _same(g[1], w[1])):
            bad += 1
    return bad
""", "_many()", expect="value", check="lambda bad: None if bad == 0 else f'{bad} of 300 differ'")


# -- threads and fork ------------------------------------------------------------------------------

def concurrency_cases() -> Iterator[Api]:
    c = "threads/fork"
    yield Api(c, "8 threads, aggregate + metrics", AGG_SETUP + """
import threading
big = C(400, 4, 50, hi=500)
cb = rng.integers(0, 9, 500)
want = comirec.aggregate(big, cb, 0.5, 20)
tgt = [np.abs(t[:5]) for t in big[0][:, 0]]
wm = comirec.metrics(want.items, tgt, cb, ks=(5, 20))
def _threads():
    bad = []
    def work():
        for _ in range(10):
            got = comirec.aggregate(big, cb, 0.5, 20)
            gm = comirec.metrics(got.items, tgt, cb, ks=(5, 20))
            if not (_same(got, want) and _same(gm, wm)):
                bad.append(1)
    ts = [threading.Thread(target=work) for _ in range(8)]
    [t.start() for t in ts]; [t.join() for t in ts]
    return len(bad)
""", "_threads()", expect="value", check="lambda bad: None if bad == 0 else f'{bad} results differ'", timeout=180)
    yield Api(c, "fork after parallel work", AGG_SETUP + """
import os
big = C(4000, 4, 20, hi=500)
want = comirec.aggregate(big, None, 0, 20)
def _fork():
    pid = os.fork()
    if pid == 0:
        got = comirec.aggregate(big, None, 0, 20)
        os._exit(0 if _same(got, want) else 3)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
""", "_fork()", expect="value", check="lambda code: None if code == 0 else f'child exit {code}'", timeout=60)


# -- Recommender.recommend -------------------------------------------------------------------------

REC_SETUP = """
from comirec.serving import Recommender
rec = Recommender.load(RUN)
def _valid(n, hist=()):
    def check(r):
        items = np.asarray(r.items)
        if items.shape[-1] != n:
            return f"shape {items.shape}"
        flat = [i for i in items.reshape(-1, n)[0].tolist() if i is not None and i >= 0]
        if len(set(flat)) != len(flat):
            return "repeated items"
        return None
    return check
"""


def recommend_cases() -> Iterator[Api]:
    r = "recommend"

    def val(name: str, call: str, n: int = 10) -> Api:
        return Api(r, name, REC_SETUP, call, expect="value", check=f"_valid({n})", fixtures=("run",))

    def err(name: str, call: str, names: tuple[str, ...] = ("histories",)) -> Api:
        return Api(r, name, REC_SETUP, call, expect="error", names=names, fixtures=("run",))

    yield val("one history", "rec.recommend([1, 2, 3], n=10)")
    yield val("a batch of histories of different lengths", "rec.recommend([[1, 2, 3], [4], [5, 6]], n=10)")
    yield val("a 2-D numpy batch", "rec.recommend(np.array([[1, 2], [3, 4]]), n=10)")
    yield val("a history longer than maxlen", "rec.recommend(list(range(1, 100)), n=10)")
    yield val("lam 0.5", "rec.recommend([1, 2, 3], n=10, lam=0.5)")
    yield val("raw ids, one unknown", "rec.recommend([rec.item_raw[1], rec.item_raw[2], 'nope'], n=10, raw=True)")
    yield Api(r, "an empty history", REC_SETUP, "rec.recommend([], n=10)", expect="either", names=("histories",), check="_valid(10)", fixtures=("run",))
    yield err("a doubly nested ragged list (item 9)", "rec.recommend([[1, [2, 3]]], n=10)")
    yield err("a negative id", "rec.recommend([1, -5], n=10)")
    yield err("an id beyond the items", "rec.recommend([1, 10**6], n=10)")
    yield err("float ids", "rec.recommend([1.5, 2.0], n=10)")
    yield err("string ids without raw", "rec.recommend(['a', 'b'], n=10)")
    yield err("None", "rec.recommend(None, n=10)")
    yield err("n = 0", "rec.recommend([1, 2], n=0)", ("n",))
    yield err("n = -1", "rec.recommend([1, 2], n=-1)", ("n",))
    yield err("lam = -1", "rec.recommend([1, 2], n=5, lam=-1)", ("lam",))
    yield err("lam = NaN", "rec.recommend([1, 2], n=5, lam=nan)", ("lam",))
    yield Api(r, "n = 2**62, an empty batch (item 9)", REC_SETUP, "rec.recommend(np.zeros((0, 3), np.int64), n=2**62)",
              expect="either", names=("n",), check="lambda x: None", fixtures=("run",))
    yield Api(r, "n = 10**12", REC_SETUP, "rec.recommend([1, 2], n=10**12)", expect="either", names=("n",),
              check="lambda x: None", fixtures=("run",))
    yield Api(r, "load: no such run", "from comirec.serving import Recommender", "Recommender.load('nope-run')", expect="error", names=("nope-run",))
    yield Api(r, "load: faiss factory IVF4096,Flat on 120 items (item 9)", "from comirec.serving import Recommender",
              "Recommender.load(RUN, factory='IVF4096,Flat')", expect="error", names=("IVF4096", "factory", "index"), fixtures=("run",))
    yield Api(r, "load: unparsable factory", "from comirec.serving import Recommender",
              "Recommender.load(RUN, factory='Garbage!!')", expect="error", names=("Garbage", "factory", "index"), fixtures=("run",))


# -- prepare with malformed inputs -----------------------------------------------------------------

def prepare_cases() -> Iterator[Cli]:
    p = "prepare"

    def case(name: str, fmt: str, content: bytes | None, expect: str = "error", extra: tuple[str, ...] = (),
             names: tuple[str, ...] | None = None, suffix: str = ".txt") -> Cli:
        slug = re.sub(r"\W+", "-", name)[:40]

        def prepare(ctx: Ctx) -> None:
            if content is not None:
                (ctx.work / f"in-{slug}{suffix}").write_bytes(content)
            shutil.rmtree(ctx.work / f"out-{slug}", ignore_errors=True)

        def after(ctx: Ctx, rc: int | None, err: str) -> tuple[str, str] | None:
            out = ctx.work / f"out-{slug}"
            left = siblings(out)
            if rc != 0 and out.exists():
                return "data lost", f"a failed prepare left {out.name}"
            if left:
                return "leak", f"left {left}"
            if rc == 0:
                code = f"from comirec.data import load_prepared; load_prepared({str(out)!r})"
                if run_python(code, 60, ctx.work)[0] != 0:
                    return "data lost", "exit 0 but the output does not load"
            return None

        return Cli(p, name, lambda ctx: ["prepare", "--format", fmt, "--input", str(ctx.work / f"in-{slug}{suffix}"),
                                        "--out", str(ctx.work / f"out-{slug}"), *extra],
                   expect=expect, prepare=prepare, after=after,
                   names=lambda ctx: names if names is not None else (f"in-{slug}{suffix}",))

    good = "".join(f"u{u} " + " ".join(f"i{(u * 7 + j) % 50}" for j in range(8)) + "\n" for u in range(200)).encode()
    csv_good = b"user_id,item_id,timestamp\n" + b"".join(f"u{u},i{(u * 3 + j) % 40},{j}\n".encode() for u in range(150) for j in range(6))
    yield case("sequences: valid", "sequences", good, expect="either")
    yield case("sequences: empty file", "sequences", b"")
    yield case("sequences: binary garbage", "sequences", bytes(range(256)) * 40)
    yield case("sequences: NUL bytes in ids", "sequences", good.replace(b"i3 ", b"i\x003 "), expect="either")
    yield case("sequences: invalid UTF-8 ids", "sequences", good.replace(b"i3 ", b"i\xff\xfe3 "), expect="either")
    yield case("sequences: one very long line", "sequences", good + b"u999 " + b" ".join(b"i%d" % (j % 50) for j in range(200000)) + b"\n", expect="either")
    yield case("sequences: only user ids", "sequences", b"".join(b"u%d\n" % u for u in range(100)))
    yield case("sequences: CR line ends", "sequences", good.replace(b"\n", b"\r\n"), expect="either")
    yield case("sequences: bare CR line ends", "sequences", good.replace(b"\n", b"\r"), expect="either")
    yield case("sequences: UTF-16 text", "sequences", good.decode().encode("utf-16"), expect="either")
    yield case("sequences: gzip that is not gzip", "sequences", b"\x1f\x8b\x08garbage" * 10, suffix=".txt.gz")
    yield case("sequences: missing file", "sequences", None)
    yield case("sequences: everything filtered", "sequences", good, extra=("--min-item-count", "100000"), names=("--min-item-count", "in-sequences-everything-filtered", "empty", "filter"))
    yield case("csv: valid", "csv", csv_good, expect="either", suffix=".csv")
    yield case("csv: missing column", "csv", csv_good.replace(b"timestamp", b"when"), suffix=".csv", names=("timestamp",))
    yield case("csv: text in the time column", "csv", csv_good.replace(b",3\n", b",soon\n", 1), suffix=".csv")
    yield case("csv: date-times mixed with numbers", "csv", csv_good.replace(b",3\n", b",2020-01-01T00:00:00\n", 1), suffix=".csv")
    yield case("csv: a short row", "csv", csv_good.replace(b"u5,i15,0\n", b"u5,i15\n"), suffix=".csv")
    yield case("csv: garbage bytes in a row", "csv", csv_good.replace(b"u5,i15,0\n", b"u5,i15,\xff\x00\x1b[31m\n"), suffix=".csv")
    yield case("csv: header only", "csv", b"user_id,item_id,timestamp\n", suffix=".csv")
    yield case("csv: NaN time", "csv", csv_good.replace(b",3\n", b",nan\n", 1), suffix=".csv")
    yield case("parquet: not a parquet file", "parquet", b"PAR1 not really", suffix=".parquet")
    yield case("taobao: wrong field count", "taobao", b"1,2,3\n" * 50, suffix=".csv")
    yield case("movielens: garbage", "movielens", b"\x00\x01garbage::::\n" * 50, suffix=".dat")
    yield case("--categories: malformed", "sequences", good, extra=("--categories", "/dev/null/nope"), names=("/dev/null/nope", "--categories"))
    yield case("--split-ratio 1,1,-1", "sequences", good, extra=("--split-ratio", "1,1,-1"), names=("--split-ratio", "split_ratio"))
    yield case("--block-mb 0", "sequences", good, extra=("--block-mb", "0"), names=("--block-mb", "block_mb"))

    def out_is_file(ctx: Ctx) -> None:
        (ctx.work / "in-out-file.txt").write_bytes(good)
        (ctx.work / "a-file").write_text("x")

    yield Cli(p, "--out names an existing file (item 9)", lambda ctx: ["prepare", "--format", "sequences", "--input", str(ctx.work / "in-out-file.txt"),
              "--out", str(ctx.work / "a-file")], prepare=out_is_file, names=lambda ctx: ("a-file",),
              after=lambda ctx, rc, err: None if (ctx.work / "a-file").read_text() == "x" else ("data lost", "the file was replaced"))

    def existing(ctx: Ctx) -> None:
        copy(ctx.fixtures["ds"], ctx.work / "keep-ds")
        (ctx.work / "in-existing.txt").write_bytes(good)

    yield Cli(p, "--out exists, no --overwrite", lambda ctx: ["prepare", "--format", "sequences", "--input", str(ctx.work / "in-existing.txt"),
              "--out", str(ctx.work / "keep-ds")], prepare=existing, names=lambda ctx: ("keep-ds",), fixtures=("ds",),
              after=lambda ctx, rc, err: None if same_dataset(ctx.work / "keep-ds", ctx.fixtures["ds"]) else ("data lost", "the existing dataset changed"))


# -- corrupted datasets ----------------------------------------------------------------------------

def _npy_header(arr_dtype: str, shape: tuple[int, ...]) -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": arr_dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def corrupt_dataset_cases() -> Iterator[Api | Cli]:
    area = "corrupt datasets"
    import numpy as np

    def make(slug: str, edit: Callable[[Path], None]) -> Callable[[Ctx], None]:
        def prepare(ctx: Ctx) -> None:
            d = copy(ctx.fixtures["ds"], ctx.work / f"bad-{slug}")
            edit(d)
        return prepare

    def values(name: str, fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[Path], None]:
        def edit(d: Path) -> None:
            a = np.load(d / f"{name}.npy")
            np.save(d / f"{name}.npy", fn(a.copy()))
        return edit

    def setv(i: int, v: int) -> Callable[[np.ndarray], np.ndarray]:
        def f(a: np.ndarray) -> np.ndarray:
            a[i] = v
            return a
        return f

    def raw(name: str, data: bytes | Callable[[bytes], bytes]) -> Callable[[Path], None]:
        def edit(d: Path) -> None:
            p = d / name
            p.write_bytes(data(p.read_bytes()) if callable(data) else data)
        return edit

    def header(fn: Callable[[dict], object]) -> Callable[[Path], None]:
        def edit(d: Path) -> None:
            h = json.loads((d / "header.json").read_text())
            (d / "header.json").write_text(json.dumps(fn(h)))
        return edit

    def remove(name: str) -> Callable[[Path], None]:
        return lambda d: (d / name).unlink()

    def headerset(key_path: str, v: object) -> Callable[[dict], object]:
        def f(h: dict) -> dict:
            node = h
            keys = key_path.split(".")
            for k in keys[:-1]:
                node = node[k]
            node[keys[-1]] = v
            return h
        return f

    corruptions: list[tuple[str, Callable[[Path], None], tuple[str, ...]]] = [
        ("items.npy: an id beyond n_items (item 8)", values("items", setv(0, 10**6)), ("items.npy",)),
        ("items.npy: a negative id (item 8)", values("items", setv(3, -7)), ("items.npy",)),
        ("items.npy: a zero id (item 8)", values("items", setv(5, 0)), ("items.npy",)),
        ("items.npy: truncated", raw("items.npy", lambda b: b[: len(b) // 2]), ("items.npy",)),
        ("items.npy: 0 bytes (item 9)", raw("items.npy", b""), ("items.npy",)),
        ("items.npy: garbage (item 9)", raw("items.npy", bytes(range(256)) * 8), ("items.npy",)),
        ("items.npy: garbled header", raw("items.npy", lambda b: b[:10] + b"{'descr': '<i8', 'fortran_order': False, 'shape': (9\x00\x00" + b[60:]), ("items.npy",)),
        ("items.npy: header claims more than the file (item 9)", raw("items.npy", lambda b: _npy_header("<i4", (10**7,)) + b[128:]), ("items.npy",)),
        ("items.npy: float dtype", values("items", lambda a: a.astype(np.float64)), ("items.npy",)),
        ("items.npy: 2-D", values("items", lambda a: a[: len(a) // 2 * 2].reshape(-1, 2)), ("items.npy",)),
        ("items.npy: object array", raw("items.npy", lambda b: _npy_header("|O", (3,)) + b"\x80\x04N."), ("items.npy",)),
        ("items.npy: missing", remove("items.npy"), ("items.npy",)),
        ("indptr.npy: decreasing", values("indptr", setv(2, 0)), ("indptr",)),
        ("indptr.npy: beyond items", values("indptr", setv(-1, 10**9)), ("indptr",)),
        ("split.npy: unknown code", values("split", setv(0, 9)), ("split.npy",)),
        ("item_cat.npy: wrong length", values("item_cat", lambda a: a[:3]), ("item_cat",)),
        ("item_cat.npy: category beyond cat_raw", values("item_cat", setv(1, 10**5)), ("item_cat.npy",)),
        ("header.json: a JSON list (item 9)", raw("header.json", b"[1, 2, 3]"), ("header.json",)),
        ("header.json: not JSON", raw("header.json", b"{\xff\xfe garbage"), ("header.json",)),
        ("header.json: 0 bytes", raw("header.json", b""), ("header.json",)),
        ("header.json: missing", remove("header.json"), ("header.json", "bad-header-json-missing")),
        ("header.json: format_version 99", header(headerset("format_version", 99)), ("header.json",)),
        ("header.json: format_version missing", header(lambda h: {k: v for k, v in h.items() if k != "format_version"}), ("header.json",)),
    ]
    for name, edit, names in corruptions:
        slug = re.sub(r"\W+", "-", name)[:40]
        yield Api(area, f"load_prepared: {name}", "from comirec.data import load_prepared\nimport pathlib",
                  f"load_prepared(pathlib.Path({str('bad-' + slug)!r}))", expect="error", names=names, fixtures=("ds",),
                  prepare=make(slug, edit))
    # the symptom the issue saw: train on a corrupt dataset (a torch IndexError)
    for name, edit, names in corruptions[:3]:
        slug = "train-" + re.sub(r"\W+", "-", name)[:34]
        yield Cli(area, f"train: {name}", lambda ctx, slug=slug: ["train", "--data", str(ctx.work / f"bad-{slug}"), "--out", str(ctx.work / f"run-{slug}"),
                  "--model", "youtube-dnn", "--max-steps", "20", "--eval-every", "10", *TINY], prepare=make(slug, edit),
                  names=lambda ctx, names=names: names, fixtures=("ds",))


# -- corrupted run directories ---------------------------------------------------------------------

def _n_items(cfg: dict, n: int) -> dict:
    cfg["dataset"]["n_items"] = n
    return cfg


def _no_checkpoints(run: Path) -> None:
    for name in ("best.pt", "last.pt"):
        (run / name).unlink(missing_ok=True)


def corrupt_run_cases() -> Iterator[Cli | Api]:
    area = "corrupt runs"

    def make(slug: str, edit: Callable[[Path], object]) -> Callable[[Ctx], None]:
        def prepare(ctx: Ctx) -> None:
            edit(copy(ctx.fixtures["run"], ctx.work / f"badrun-{slug}"))
        return prepare

    def raw(name: str, data: bytes | Callable[[bytes], bytes]) -> Callable[[Path], None]:
        def edit(d: Path) -> None:
            p = d / name
            p.write_bytes(data(p.read_bytes()) if callable(data) else data)
        return edit

    def both(data: bytes | Callable[[bytes], bytes]) -> Callable[[Path], None]:
        def edit(d: Path) -> None:
            for n in ("best.pt", "last.pt"):
                if (d / n).exists():
                    raw(n, data)(d)
        return edit

    cases: list[tuple[str, Callable[[Path], object], tuple[str, ...]]] = [
        ("best.pt and last.pt truncated (item 9)", both(lambda b: b[: len(b) // 2]), (".pt",)),
        ("best.pt and last.pt 0 bytes (item 9)", both(b""), (".pt",)),
        ("best.pt and last.pt garbage (item 9)", both(bytes(range(256)) * 16), (".pt",)),
        ("best.pt and last.pt a pickle (item 9)", both(b"\x80\x04\x95\x00cos\nsystem\n."), (".pt",)),
        ("config.json a JSON list", raw("config.json", b"[]"), ("config.json",)),
        ("config.json not JSON", raw("config.json", b"{{\xff"), ("config.json",)),
        ("config.json: unknown model", raw("config.json", lambda b: b.replace(b"youtube-dnn", b"nope-model")), ("config.json", "nope-model")),
        ("config.json missing", lambda d: (d / "config.json").unlink(), ("config.json",)),
        ("config.json: n_items changed", raw("config.json", lambda b: json.dumps(_n_items(json.loads(b), 7)).encode()), ("config.json", ".pt", "n_items")),
        ("no checkpoint at all", _no_checkpoints, ("best.pt", "checkpoint")),
    ]
    for name, edit, names in cases:
        slug = re.sub(r"\W+", "-", name)[:40]
        yield Cli(area, f"evaluate: {name}", lambda ctx, slug=slug: ["evaluate", "--run", str(ctx.work / f"badrun-{slug}"), "--device", "cpu"],
                  prepare=make(slug, edit), names=lambda ctx, names=names: names, fixtures=("run",))
    yield Api(area, "Recommender.load: items.npz garbage", "from comirec.serving import Recommender",
              "Recommender.load('badrun-items-npz')", expect="error", names=("items.npz",), fixtures=("run",),
              prepare=make("items-npz", raw("items.npz", b"PK\x03\x04garbage")))
    yield Api(area, "Recommender.load: best.pt truncated", "from comirec.serving import Recommender",
              "Recommender.load('badrun-best-trunc')", expect="error", names=("best.pt", "last.pt"), fixtures=("run",),
              prepare=make("best-trunc", both(lambda b: b[: len(b) // 3])))
    yield Cli(area, "evaluate: --index IVF4096,Flat on 120 items (item 9)",
              lambda ctx: ["evaluate", "--run", str(ctx.fixtures["run"]), "--device", "cpu", "--index", "IVF4096,Flat"],
              names=lambda ctx: ("--index", "IVF4096"), fixtures=("run",))
    yield Cli(area, "train: --out names an existing file (item 9)",
              lambda ctx: ["train", "--data", str(ctx.fixtures["ds"]), "--out", str(ctx.work / "a-train-file"), "--model", "youtube-dnn", *TINY],
              prepare=lambda ctx: (ctx.work / "a-train-file").write_text("x"), names=lambda ctx: ("a-train-file",), fixtures=("ds",),
              after=lambda ctx, rc, err: None if (ctx.work / "a-train-file").read_text() == "x" else ("data lost", "the file was replaced"))


# -- kill -9, resume --------------------------------------------------------------------------------

KILL_BETWEEN_RENAMES = r"""
import os, signal, sys
from pathlib import Path
out = Path(sys.argv[sys.argv.index("--out") + 1]).absolute()
def hook(real):
    def rename(src, dst, *a, **kw):
        if Path(dst).absolute() == out and Path(src).name.startswith("."):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(src, dst, *a, **kw)
    return rename
os.rename, os.replace = hook(os.rename), hook(os.replace)
try:
    import comirec.data.prepared as p
    if hasattr(p, "rename_noreplace"):
        p.rename_noreplace = hook(p.rename_noreplace)
except ImportError:
    pass
from comirec.cli import main
sys.exit(main(sys.argv[1:]))
"""


KILL_AT_FIRST_FILE = r"""
import os, signal, sys, threading, time
from pathlib import Path
out = Path(sys.argv[sys.argv.index("--out") + 1]).absolute()
def watch():  # the first file in the temporary directory: mid-write, the output not there yet
    while True:
        for d in out.parent.glob(f".{out.name}.tmp*"):
            if d.is_dir() and any(d.iterdir()):
                os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.0005)
threading.Thread(target=watch, daemon=True).start()
from comirec.cli import main
sys.exit(main(sys.argv[1:]))
"""


def kill_cases() -> Iterator[Custom]:
    area = "kill -9"
    rng = random.Random(9)

    def after_kill(out: Path, argv: list[str], ref: Path) -> tuple[str, str]:
        """After a kill -9 of ``argv``: the output is absent or complete, a rerun with --overwrite
        rebuilds ``ref`` exactly, and no temporary directory is left beside ``out``."""
        state = dataset_state(out, ref)
        if state == "partial":
            return "data lost", "half-written output at --out"
        rc, _, err = cli(*argv, "--overwrite", timeout=300)
        if rc != 0 or dataset_state(out, ref) != "ref0":
            return "data lost", f"the rerun failed: exit {rc} {err.strip()[-160:]}"
        left = siblings(out)
        return ("leak", f"after the rerun: {left}") if left else ("ok", f"killed output {state}")

    def synth_kill(i: int, delay_frac: float) -> Callable[[Ctx], tuple[str, str]]:
        def fn(ctx: Ctx) -> tuple[str, str]:
            out = ctx.work / f"kill-synth{i}"
            killed_at(0.3 + delay_frac * ctx.fixtures["big1_seconds"], [*BIG, "--seed", "1", "--out", str(out)])  # type: ignore[operator]
            return after_kill(out, [*BIG, "--seed", "1", "--out", str(out)], ctx.fixtures["big1"])
        return fn

    def prepare_kill(i: int, delay_frac: float) -> Callable[[Ctx], tuple[str, str]]:
        def fn(ctx: Ctx) -> tuple[str, str]:
            out = ctx.work / f"kill-prep{i}"
            argv = ["prepare", "--format", "sequences", "--input", str(ctx.fixtures["seq"]), "--out", str(out)]
            killed_at(0.3 + delay_frac * ctx.fixtures["prepared_seconds"], argv)  # type: ignore[operator]
            return after_kill(out, argv, ctx.fixtures["prepared"])
        return fn

    def overwrite_kill(i: int, delay_frac: float) -> Callable[[Ctx], tuple[str, str]]:
        def fn(ctx: Ctx) -> tuple[str, str]:
            out = copy(ctx.fixtures["big1"], ctx.work / f"kill-ow{i}")
            killed_at(0.3 + delay_frac * ctx.fixtures["big1_seconds"], [*BIG, "--seed", "2", "--out", str(out), "--overwrite"])  # type: ignore[operator]
            state = dataset_state(out, ctx.fixtures["big1"], ctx.fixtures["big2"])
            if state in ("absent", "partial"):
                # the old data may survive only in a sibling: does a later writer (of other data,
                # without --overwrite) give it back instead of writing over its place?
                rc, _, err = cli(*BIG, "--seed", "2", "--out", str(out), timeout=300)
                if dataset_state(out, ctx.fixtures["big1"]) != "ref0":
                    return "data lost", f"killed output {state}; a later command: exit {rc} {err.strip()[-120:]}"
            rc, _, err = cli(*BIG, "--seed", "2", "--out", str(out), "--overwrite", timeout=300)
            if rc != 0 or dataset_state(out, ctx.fixtures["big1"], ctx.fixtures["big2"]) != "ref1":
                return "data lost", f"the rerun failed: exit {rc} {err.strip()[-160:]}"
            left = siblings(out)
            return ("leak", f"after the rerun: {left}") if left else ("ok", f"killed output {state}")
        return fn

    def between_renames(ctx: Ctx) -> tuple[str, str]:
        out = copy(ctx.fixtures["big1"], ctx.work / "kill-between")
        rc: int | None = killed_at(600, [*BIG, "--seed", "2", "--out", str(out), "--overwrite"], code=KILL_BETWEEN_RENAMES)
        if rc != -signal.SIGKILL:
            return "wrong result", f"the hook did not fire (exit {rc})"
        # any later writer of the same --out (of other data, without --overwrite)
        rc, _, err = cli(*BIG, "--seed", "2", "--out", str(out), timeout=300)
        if dataset_state(out, ctx.fixtures["big1"]) != "ref0":
            return "data lost", f"the old dataset is only in {siblings(out)}; a later command: exit {rc} {err.strip()[-120:]}"
        left = siblings(out)
        return ("leak", f"left {left}") if left else ("ok", " / ".join(err.strip().splitlines())[-200:])

    def at_first_file(kind: str) -> Callable[[Ctx], tuple[str, str]]:
        def fn(ctx: Ctx) -> tuple[str, str]:
            out = ctx.work / f"kill-first-file-{kind}"
            ref = ctx.fixtures["big1"] if kind == "synth" else ctx.fixtures["prepared"]
            argv = ([*BIG, "--seed", "1", "--out", str(out)] if kind == "synth"
                    else ["prepare", "--format", "sequences", "--input", str(ctx.fixtures["seq"]), "--out", str(out)])
            rc: int | None = killed_at(600, argv, code=KILL_AT_FIRST_FILE)
            state = dataset_state(out, ref)
            if rc != -signal.SIGKILL:
                return "ok", f"no temporary file seen before the output was complete (exit {rc}); output {state}"
            if state == "partial":
                return "data lost", "half-written output at --out"
            before = siblings(out)
            rc, _, err = cli(*argv, timeout=300)
            if rc != 0 or dataset_state(out, ref) != "ref0":
                return "data lost", f"the rerun failed: exit {rc} {err.strip()[-160:]}"
            left = siblings(out)
            return ("leak", f"{before} before, {left} after the rerun") if left else ("ok", f"killed output {state}, {len(before)} temporary left then removed")
        return fn

    yield Custom(area, "synth killed at its first temporary file (mid-write)", at_first_file("synth"), fixtures=("big1",))
    yield Custom(area, "prepare killed at its first temporary file (mid-write)", at_first_file("prepare"), fixtures=("prepared",))
    for i in range(4):
        yield Custom(area, f"synth killed at random point {i + 1}", synth_kill(i, rng.uniform(0, 1.1)), fixtures=("big1",))
    for i in range(3):
        yield Custom(area, f"prepare killed at random point {i + 1}", prepare_kill(i, rng.uniform(0, 1.1)), fixtures=("prepared",))
    for i in range(3):
        yield Custom(area, f"synth --overwrite killed at random point {i + 1}", overwrite_kill(i, rng.uniform(0, 1.1)), fixtures=("big1", "big2"))
    yield Custom(area, "--overwrite killed between its two renames (item 5)", between_renames, fixtures=("big1", "big2"))

    def stale_temps(ctx: Ctx) -> tuple[str, str]:
        out = ctx.work / "stale"
        for i in range(5):
            killed_at(0.3 + (0.2 + 0.15 * i) * ctx.fixtures["big1_seconds"], [*BIG, "--seed", "1", "--out", str(out)])  # type: ignore[operator]
            if out.exists():
                shutil.rmtree(out)
        before = siblings(out)
        rc, _, err = cli(*BIG, "--seed", "1", "--out", str(out), timeout=300)
        left = siblings(out)
        if rc != 0:
            return "unclear error", err.strip()[-160:]
        return ("leak", f"{len(before)} temporary directories before, {left} after a later command") if left else ("ok", f"{len(before)} removed")

    yield Custom(area, "5 killed synth runs, then a later one (item 5)", stale_temps, fixtures=("big1",))

    def resume(sig: int, frac: float) -> Callable[[Ctx], tuple[str, str]]:
        def fn(ctx: Ctx) -> tuple[str, str]:
            run = ctx.work / f"resume-{sig}-{frac}"
            data = str(ctx.fixtures["prepared"])
            p = subprocess.Popen([PY, "-m", "comirec.cli", "train", "--data", data, "--out", str(run), *TRAIN],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                p.wait(timeout=frac * ctx.fixtures["whole_seconds"])  # type: ignore[operator]
            except subprocess.TimeoutExpired:
                p.send_signal(sig)
            p.wait()
            again = ["--resume"] if (run / "config.json").is_file() else TRAIN
            rc, _, err = cli("train", "--data", data, "--out", str(run), *again, timeout=240)
            if rc is None:
                return "wrong result", "the resumed run ran past the stored --max-steps 60 (stopped at the timeout)"
            if rc != 0:
                return "unclear error", f"resume: exit {rc}: {err.strip()[-160:]}"
            check = ("import torch, sys\n"
                     "a = torch.load(sys.argv[1], weights_only=True); b = torch.load(sys.argv[2], weights_only=True)\n"
                     "same = a['step'] == b['step'] and all(torch.equal(a['model'][k], b['model'][k]) for k in b['model'])\n"
                     "print(a['step'], b['step'], same)")
            r = subprocess.run([PY, "-c", check, str(run / "last.pt"), str(ctx.fixtures["whole"] / "last.pt")],
                               capture_output=True, text=True, timeout=120)
            got = r.stdout.split()
            if r.returncode != 0 or len(got) != 3:
                return "data lost", f"last.pt unreadable: {r.stderr.strip()[-160:]}"
            if got[2] != "True":
                return "wrong result", f"resumed to step {got[0]} (uninterrupted: {got[1]}), weights {'equal' if got[2] == 'True' else 'differ'}"
            return "ok", "bit-identical to the uninterrupted run"
        return fn

    area_r = "resume"
    yield Custom(area_r, "train killed (-9) then --resume (item 3)", resume(signal.SIGKILL, 0.6), fixtures=("prepared", "whole"))
    yield Custom(area_r, "train interrupted (Ctrl-C) then --resume (item 3)", resume(signal.SIGINT, 0.6), fixtures=("prepared", "whole"))


# -- two writers, full disk -------------------------------------------------------------------------

def writer_cases() -> Iterator[Custom]:
    area = "two writers"

    def race(kind: str) -> Callable[[Ctx], tuple[str, str]]:
        def fn(ctx: Ctx) -> tuple[str, str]:
            out = ctx.work / f"race-{kind}"
            if kind == "synth":
                argv = [*BIG, "--seed", "1", "--out", str(out)]
            elif kind == "prepare":
                argv = ["prepare", "--format", "sequences", "--input", str(ctx.fixtures["seq"]), "--out", str(out)]
            else:
                argv = ["train", "--data", str(ctx.fixtures["ds"]), "--out", str(out), "--model", "youtube-dnn", "--max-steps", "40",
                        "--eval-every", "20", *TINY]
            procs = [subprocess.Popen([PY, "-m", "comirec.cli", *argv], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                     for _ in range(2)]
            errs = [p.communicate(timeout=400)[1] for p in procs]
            codes = [p.returncode for p in procs]
            for c, e in zip(codes, errs):
                why = crashed(c, e)
                if why:
                    return "crash", why
            if codes == [0, 0]:
                return "data lost", "both exited 0 (each says it wrote the output; one result is gone)"
            if 0 not in codes:
                return "wrong result", f"both failed: {codes}"
            loser = errs[codes.index(next(c for c in codes if c != 0))]
            verdict, detail = cli_clarity(next(c for c in codes if c != 0), loser, (out.name,))
            if kind != "train" and dataset_state(out, ctx.fixtures["big1"] if kind == "synth" else ctx.fixtures["prepared"]) != "ref0":
                return "data lost", "the winner's output is not complete"
            left = siblings(out)
            if left:
                return "leak", f"left {left}"
            return verdict, "the second writer: " + detail
        return fn

    yield Custom(area, "two synth --out race (item 4)", race("synth"), fixtures=("big1",))
    yield Custom(area, "two prepare --out race", race("prepare"), fixtures=("prepared",))
    yield Custom(area, "two train --out race (item 4)", race("train"), fixtures=("ds",))


def disk_cases() -> Iterator[Custom]:
    area = "full disk"

    def tmpfs(ctx: Ctx, name: str) -> Path | None:
        mnt = ctx.work / name
        mnt.mkdir(exist_ok=True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5m", "tmpfs", str(mnt)], capture_output=True, text=True)
        return mnt if r.returncode == 0 else None

    def umount(mnt: Path) -> None:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)

    def disk(kind: str) -> Callable[[Ctx], tuple[str, str]]:
        def fn(ctx: Ctx) -> tuple[str, str]:
            mnt = tmpfs(ctx, f"tmpfs-{kind}")
            if mnt is None:
                return "not run", "cannot mount a tmpfs here (needs Linux and root)"
            try:
                if kind == "synth":
                    out = mnt / "X"
                    argv = ["synth", "--users", "200000", "--items", "20000", "--categories", "50", "--out", str(out)]
                else:
                    with open(mnt / "ballast", "wb") as f:
                        f.write(b"\0" * (5 * 2**20 - 100 * 2**10))
                    out = mnt / "out"
                    argv = (["prepare", "--format", "sequences", "--input", str(ctx.fixtures["seq"]), "--out", str(out)] if kind == "prepare"
                            else ["train", "--data", str(ctx.fixtures["prepared"]), "--out", str(out), "--model", "youtube-dnn", "--dim", "64",
                                  "--max-steps", "4", "--eval-every", "2", "--batch-size", "16", "--threads", "1", "--no-progress"])
                rc, _, err = cli(*argv, timeout=300)
                why = crashed(rc, err)
                if why:
                    return "crash", why
                if rc == 0:
                    return "wrong result", "exit 0 on a full disk"
                verdict, detail = cli_clarity(rc, err, ("no space left",))
                left = sorted(set(os.listdir(mnt)) - {"ballast"})
                if kind == "train":
                    left = [x for x in left if x != "out"] + ([f"out/{p.name}" for p in out.glob("*.tmp")] if out.exists() else [])
                if left and verdict in PASSED:
                    return "leak", f"left {left} on the full disk ({detail})"
                return verdict, detail
            finally:
                umount(mnt)
        return fn

    yield Custom(area, "synth on a 5 MB tmpfs (item 2)", disk("synth"))
    yield Custom(area, "prepare on a full 5 MB tmpfs (item 2)", disk("prepare"), fixtures=("prepared",))
    yield Custom(area, "train on a full 5 MB tmpfs (item 2)", disk("train"), fixtures=("prepared",))


# -- driver -----------------------------------------------------------------------------------------

AREAS: dict[str, Callable[[], Iterator[Api | Cli | Custom]]] = {
    "aggregate": aggregate_cases,
    "metrics": metrics_cases,
    "threads/fork": concurrency_cases,
    "recommend": recommend_cases,
    "prepare": prepare_cases,
    "corrupt datasets": corrupt_dataset_cases,
    "corrupt runs": corrupt_run_cases,
    "kill -9": kill_cases,
    "two writers": writer_cases,
    "full disk": disk_cases,
}


def table(results: list[Result]) -> str:
    cols = ["tried", *VERDICTS]
    lines = ["| area | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    areas = list(dict.fromkeys(r.area for r in results))
    total: Counter[str] = Counter()
    for area in areas:
        c = Counter(r.verdict for r in results if r.area == area)
        c["tried"] = sum(1 for r in results if r.area == area)
        total.update(c)
        lines.append(f"| {area} | " + " | ".join(str(c[k]) for k in cols) + " |")
    lines.append("| **all** | " + " | ".join(f"**{total[k]}**" for k in cols) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, help="scratch directory, emptied first and kept (default: a new temporary one, removed at the end)")
    ap.add_argument("--json", type=Path, help="write every case's verdict here")
    ap.add_argument("--area", action="append", choices=list(AREAS), help="only these areas (repeatable)")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per API case (default 60)")
    args = ap.parse_args()
    import comirec

    print(f"comirec under test: {comirec.__file__}", file=sys.stderr)
    work = args.work or Path(tempfile.mkdtemp(prefix="comirec-adversarial-"))
    if args.work is not None and work.exists():
        for mnt in work.glob("tmpfs-*"):
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(work=work.absolute(), timeout=args.timeout)
    results: list[Result] = []
    try:
        make_fixtures(ctx)
        for area in args.area or list(AREAS):
            for case in AREAS[area]():
                res = case.run(ctx)
                if res.verdict != "not run":  # left out of the table (printed below)
                    results.append(res)
                print(f"[{res.verdict:>13}] {res.area}: {res.name} ({res.seconds:.1f} s) {res.detail}", file=sys.stderr)
    finally:
        if args.work is None:
            for mnt in work.glob("tmpfs-*"):
                subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps({"comirec": comirec.__file__, "date": time.strftime("%Y-%m-%d"),
                                         "cases": [r.__dict__ for r in results]}, indent=1) + "\n")
    print(table(results))
    failed = [r for r in results if r.verdict not in PASSED]
    print(f"\n{len(results)} cases, {len(failed)} not ok or a clear error")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
