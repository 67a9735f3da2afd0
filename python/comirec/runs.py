"""The run directory: its layout, and reading and writing it.

A run directory (``comirec train --out``) holds::

    config.json    model + training config, and the dataset's identity (path, sizes)
    items.npz      item raw ids and categories (so serving needs no dataset)
    best.pt        the best model by validation Recall@50
    last.pt        model + optimizer + counters, for --resume (also written on Ctrl-C)
    log.jsonl      one JSON line per validation (and a last line for the end of training)
    metrics.json   final valid/test metrics of the best model, both protocols

Every file is written through ``NAME.tmp`` and a rename (``atomic_write``), and ``config.json``
last, so a directory with a ``config.json`` is a created run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from .config import ModelConfig
from .models import build_model

if TYPE_CHECKING:
    from .data.prepared import PreparedDataset
    from .device import Device
    from .models.base import InterestModel


CONFIG = "config.json"


ITEMS = "items.npz"


BEST = "best.pt"


LAST = "last.pt"


LOG = "log.jsonl"


METRICS = "metrics.json"


def dataset_identity(ds: PreparedDataset) -> dict[str, Any]:
    header = dict(getattr(ds, "header", {}) or {})
    return {
        "path": str(Path(ds.path).resolve()),
        "name": header.get("name"),
        "synthetic": bool(header.get("synthetic", False)),
        "n_users": int(ds.n_users),
        "n_items": int(ds.n_items),
        "n_cats": int(ds.n_cats),
        "n_interactions": int(ds.n_interactions),
    }


def check_same_items(run_items: int, ds: PreparedDataset, what: str) -> None:
    if int(ds.n_items) != int(run_items):
        raise ValueError(
            f"{what}: the checkpoint was trained on {run_items} items but dataset {ds.path} has {ds.n_items}: "
            "a checkpoint only works with the dataset it was trained on"
        )


def atomic_write(path: Path, write: Callable[[Any], None], mode: str = "wb") -> None:
    """Write ``path`` through ``path.tmp`` then rename; a failure (a full disk) removes the
    temporary file and raises a WriteError naming ``path``."""
    import errno

    from .data._writing import _disk_full, write_error

    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise write_error(exc, path) from None
        if isinstance(exc, RuntimeError):  # torch's writer wraps the OSError, or loses it
            cause = _os_error_of(exc)
            if cause is not None:
                raise write_error(cause, path) from None
            if _disk_full(path):
                raise write_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), path) from None
        raise


def _os_error_of(exc: BaseException) -> OSError | None:
    """The OSError behind ``exc`` (torch's writer wraps it in a RuntimeError), if any."""
    seen: BaseException | None = exc
    for _ in range(20):
        if seen is None:
            break
        if isinstance(seen, OSError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    atomic_write(path, lambda f: torch.save(obj, f))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda f: f.write(text), mode="w")


def write_items(run: Path, ds: PreparedDataset) -> None:
    raw = np.asarray(ds.item_raw)
    if raw.dtype == object:
        raw = raw.astype(str)
    cat = np.asarray(ds.item_cat, dtype=np.int32)
    atomic_write(run / ITEMS, lambda f: np.savez(f, item_raw=raw, item_cat=cat))


def load_run_config(run: Path) -> dict[str, Any]:
    run = Path(run)
    path = run / CONFIG
    if not run.is_dir():
        raise FileNotFoundError(f"run directory {run} does not exist")
    if not path.is_file():
        inside = runs_under(run)
        if inside:  # e.g. the --out of comirec reproduce: its runs are in runs/<model>
            more = f" and {len(inside) - 10} more" if len(inside) > 10 else ""
            raise ValueError(f"{run} is not a comirec run directory (no {CONFIG}), but holds runs: "
                             + ", ".join(map(str, inside[:10])) + more + "; pass one of them to --run")
        raise ValueError(f"{run} is not a comirec run directory (no {CONFIG}; create one with comirec train)")
    try:
        cfg = json.loads(path.read_bytes())
    except ValueError as exc:  # also undecodable bytes
        raise ValueError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(cfg, dict) or not all(isinstance(cfg.get(k), dict) for k in ("model", "train", "dataset")):
        raise ValueError(f"{path}: expected a JSON object with 'model', 'train' and 'dataset' objects (written by comirec train)")
    return cfg


def runs_under(path: Path, depth: int = 2) -> list[Path]:
    """The run directories (holding config.json) below ``path``, at most ``depth`` levels down, sorted."""
    found: list[Path] = []
    level = [path]
    for _ in range(depth):
        level = sorted(p for d in level for p in _subdirs(d))
        found += [p for p in level if (p / CONFIG).is_file()]
    return sorted(found)


def _subdirs(path: Path) -> list[Path]:
    try:
        return [p for p in path.iterdir() if p.is_dir()]
    except OSError:
        return []


def load_model(run: Path | str, device: Device = "cpu") -> tuple[InterestModel, dict[str, Any]]:
    """The run's best model (its last checkpoint if no validation happened yet), in eval mode."""
    run = Path(run)
    cfg = load_run_config(run)
    model_cfg = ModelConfig.from_stored(cfg["model"])
    model = build_model(model_cfg, int(cfg["dataset"]["n_items"]))
    for name in (BEST, LAST):
        if (run / name).is_file():
            state = load_checkpoint(run / name)
            try:
                model.load_state_dict(state["model"] if isinstance(state, dict) and "optimizer" in state else state)
            except (RuntimeError, TypeError, KeyError, AttributeError) as exc:
                reason = " ".join(str(exc).split())[:200]
                raise ValueError(f"{run / name}: does not hold this run's {model_cfg.model} weights ({reason})") from None
            break
    else:
        raise ValueError(f"{run} has no checkpoint ({BEST} or {LAST}): its training never reached a save")
    model.to(device).eval()
    return model, cfg


def load_checkpoint(path: Path) -> Any:
    """``torch.load`` of a checkpoint; a corrupt or truncated file is a ValueError naming it."""
    import pickle
    import zipfile

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, KeyError, IndexError, OSError) as exc:
        if isinstance(exc, (FileNotFoundError, PermissionError)):
            raise
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ValueError(f"{path}: not a readable comirec checkpoint (corrupt or truncated: {reason})") from None
