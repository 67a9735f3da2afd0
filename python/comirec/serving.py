"""Serving: ``Recommender.load(run_dir).recommend(histories, n=50, lam=0.0)``.

A run directory is self-contained for serving: the model config, the best checkpoint, and the
items' raw ids and categories (``items.npz``); the dataset is not needed.
"""

from __future__ import annotations

import logging
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from .data._text import escape_unprintable
from .data.sampler import recent_windows

if TYPE_CHECKING:
    from .device import Device

log = logging.getLogger(__name__)


class UnknownItemWarning(UserWarning):
    """Raw item ids that the model never saw were dropped from the histories."""


class Recommendations(NamedTuple):
    items: np.ndarray  # (B, n) or (n,): internal ids (int64, -1 = empty), or raw ids when raw=True
    scores: np.ndarray  # same shape, float32 f(u, i) (-inf on empty slots, NaN for a cold history)


class Embedded(NamedTuple):
    """What :meth:`Recommender.embed` computes for a batch of histories (numpy only, picklable)."""

    interests: np.ndarray  # (B, K, d) float32
    seen_ids: np.ndarray  # int64 internal ids of the items to exclude ...
    seen_owner: np.ndarray  # ... and the row each belongs to (empty: exclude nothing)
    cold: np.ndarray  # (B,) bool: no known item (the popular fallback)
    single: bool  # one history was given (results are 1-D)


class Recommender:
    """A trained model ready to recommend: interests -> retrieval -> aggregation.

    ``factory``/``nprobe``/``ef_search`` choose the retrieval index (see
    :class:`comirec.retrieval.ItemIndex`); ``self.index.backend`` says which path serves it
    ("faiss-gpu", "faiss-cpu", "torch-cuda" or "torch-cpu"), logged at INFO on the
    ``comirec.serving`` logger."""

    def __init__(self, model: Any, config: dict[str, Any], item_raw: np.ndarray, item_cat: np.ndarray,
                 device: Device = "cpu", factory: str = "Flat", nprobe: int = 16, ef_search: int | None = None,
                 index: bool = True) -> None:
        from .interests import build_index

        self.model = model.eval()
        self.config = config
        self.maxlen = int(config["model"]["maxlen"])
        self.n_items = int(model.n_items)
        self.item_raw = item_raw
        self.item_cat = item_cat
        self.device = device
        self._index_args = (factory, nprobe, ef_search, index)
        self.index = build_index(model, device, factory, nprobe, ef_search) if index else None
        if self.index is not None:
            log.info("retrieval: %s", ", ".join(f"{k} {v}" for k, v in self.index.describe().items()))
        self._raw_order: np.ndarray | None = None

    @classmethod
    def load(cls, run_dir: str | Path, device: str = "cpu", factory: str = "Flat", nprobe: int = 16,
             ef_search: int | None = None, index: bool = True) -> "Recommender":
        """Load a run directory. An unparsable ``factory`` raises ``ValueError`` before the model loads.
        ``index=False``: no item index is built (a worker that only runs :meth:`embed`)."""
        from .retrieval import check_factory
        from .runs import ITEMS, load_model
        from .device import resolve_device

        check_factory(factory)

        run = Path(run_dir)
        dev = resolve_device(device)
        model, config = load_model(run, dev)
        if not (run / ITEMS).is_file():
            raise ValueError(f"{run} has no {ITEMS}: not a complete comirec run directory")
        try:
            with open(run / ITEMS, "rb") as fh, np.load(fh, allow_pickle=False) as z:  # closed however np.load fails
                item_raw, item_cat = z["item_raw"], z["item_cat"]
        except (ValueError, OSError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            reason = escape_unprintable(str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__)
            raise ValueError(f"{run / ITEMS}: not a valid item table ({reason}); the run directory is corrupt") from None
        if item_cat.shape[0] != model.n_items + 1:
            raise ValueError(f"{run / ITEMS} describes {item_cat.shape[0] - 1} items but the checkpoint has {model.n_items}")
        return cls(model, config, item_raw, item_cat, dev, factory, nprobe, ef_search, index)

    # -- pickling: Ray and Spark ship a Recommender to their workers -----------------------------

    def __getstate__(self) -> dict[str, Any]:
        """The model's config and weights, the item tables and the index settings. An exact index
        is rebuilt where the Recommender is unpickled; a trained one (IVF, PQ, HNSW) travels as it
        is (:class:`~comirec.retrieval.ItemIndex` pickles faiss's bytes), so that every worker
        searches the index this process built: k-means run again elsewhere gives other lists."""
        state = {k: v.detach().cpu() for k, v in self.model.state_dict().items()}
        trained = self.index if self.index is not None and self.index.factory != "Flat" else None
        return {"config": self.config, "state": state, "item_raw": self.item_raw, "item_cat": self.item_cat,
                "device": str(self.device), "index_args": self._index_args, "index": trained}

    def __setstate__(self, saved: dict[str, Any]) -> None:
        from .config import ModelConfig
        from .device import resolve_device
        from .models import build_model
        from .retrieval import cuda_available

        config = saved["config"]
        model = build_model(ModelConfig.from_stored(config["model"]), int(config["dataset"]["n_items"]))
        model.load_state_dict(saved["state"])
        device = saved["device"]
        if device.startswith("cuda") and not cuda_available():
            device = "cpu"  # a worker without a GPU serves on its CPU
        dev = resolve_device(device)
        factory, nprobe, ef_search, index = saved["index_args"]
        trained = saved.get("index")
        self.__init__(model.to(dev), config, saved["item_raw"], saved["item_cat"], dev, factory, nprobe, ef_search,  # type: ignore[misc]
                      index and trained is None)
        if trained is not None:
            self.index, self._index_args = trained, (factory, nprobe, ef_search, index)

    # -- id handling ------------------------------------------------------------------------

    def raw_to_internal(self, raw: Any) -> np.ndarray:
        """Internal ids of raw item ids; 0 where a raw id is unknown."""
        if self._raw_order is None:
            self._raw_order = np.argsort(self.item_raw[1:], kind="stable")
        keys = np.asarray(raw)
        if keys.size == 0:
            return np.zeros(0, np.int64)
        table = self.item_raw[1:]
        try:
            pos = np.searchsorted(table, keys, sorter=self._raw_order)
        except TypeError:
            raise TypeError(f"histories: raw ids of type {keys.dtype} cannot be compared with the run's raw ids ({table.dtype})") from None
        pos = np.minimum(pos, table.shape[0] - 1)
        cand = self._raw_order[pos]
        found = table[cand] == keys
        return np.where(found, cand + 1, 0).astype(np.int64)

    def _flatten(self, histories: Any) -> tuple[np.ndarray, np.ndarray, bool]:
        """One history or a batch of them as (all ids back to back, each history's length,
        whether one history was given)."""
        single = _is_single(histories)
        seqs = [histories] if single else list(histories)
        arrays = [_as_flat(s, i, single) for i, s in enumerate(seqs)]
        lengths = np.array([a.shape[0] for a in arrays], dtype=np.int64)
        parts = [a for a in arrays if a.shape[0]]  # an empty list would come back float64
        flat = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        return flat, lengths, single

    def _windows(self, flat: np.ndarray, lengths: np.ndarray, raw: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Histories given back to back (``flat``, with each one's length) -> the left-aligned
        (B, maxlen) windows of their most recent known items and their mask, and every known item
        as ``(ids, owner row)``."""
        if raw:
            ids = self.raw_to_internal(flat)
            unknown = int((ids == 0).sum())
            if unknown:
                warnings.warn(f"{unknown} unknown raw item id(s) ignored", UnknownItemWarning, stacklevel=3)
        else:
            ids = _as_ids(flat, self.n_items)
        # Drop unknown / padding ids; the windows (each history's last maxlen items) are the
        # sampler's, as in training and evaluation.
        B = lengths.shape[0]
        owner = np.repeat(np.arange(B), lengths)
        keep = ids > 0
        ids, owner = ids[keep], owner[keep]
        indptr = np.zeros(B + 1, np.int64)
        np.cumsum(np.bincount(owner, minlength=B), out=indptr[1:])
        hist, mask = recent_windows(indptr, ids, self.maxlen)
        return hist, mask, ids, owner

    # -- recommending -----------------------------------------------------------------------

    def recommend(self, histories: Any, n: int = 50, lam: float = 0.0, raw: bool = False,
                  exclude_seen: bool = True) -> Recommendations:
        """Top-``n`` items for one history (a sequence of item ids, oldest first) or a batch
        of them. ``raw=True``: histories hold raw item ids (unknown ones are ignored with an
        :class:`UnknownItemWarning`) and raw ids come back (``None`` in empty slots).

        ``exclude_seen=True`` (the default) leaves out the items of the user's history (all of
        it, not only the last ``maxlen``): each interest retrieves ``n`` + the history's distinct
        items, the seen ones are removed before the aggregation, so ``n`` unseen items come back
        whenever the catalogue has them. ``exclude_seen=False`` returns what the paper's
        evaluation scores (:func:`comirec.evaluation.evaluate_model` never filters).

        A history with no known item (empty, or only unknown raw ids) has no interests to
        compute: it gets the ``n`` most popular items (ids are ranked by frequency, so ids
        1..n), with NaN scores to mark the fallback, whatever ``lam``. ``recommend([])`` is one
        empty history (1-D results); ``recommend([[]])`` a batch of one."""
        return self.rank(self.embed(histories, raw=raw, exclude_seen=exclude_seen), n=n, lam=lam, raw=raw)

    # The two stages of recommend: embed (the model) and rank (the item index). The batch
    # pipeline (comirec.recommend) runs them in separate workers: Embedded holds numpy arrays.

    def embed(self, histories: Any, raw: bool = False, exclude_seen: bool = True) -> Embedded:
        """Stage 1 of :meth:`recommend`: the histories' interests, the items to exclude (all of each
        history's known items, unless ``exclude_seen=False``) and the cold rows (no known item)."""
        flat, lengths, single = self._flatten(histories)
        return self.embed_flat(flat, lengths, raw=raw, exclude_seen=exclude_seen)._replace(single=single)

    def embed_flat(self, values: np.ndarray, lengths: np.ndarray, raw: bool = False, exclude_seen: bool = True) -> Embedded:
        """:meth:`embed` for a batch given back to back: ``values`` holds the histories' ids one
        after the other, ``lengths`` each history's count (a list column's values and lengths,
        as the batch pipeline has them: no per-history arrays)."""
        from .interests import compute_interests

        hist, mask, ids, owner = self._windows(np.asarray(values), np.asarray(lengths, np.int64), raw)
        interests = compute_interests(self.model, hist, mask, self.device).cpu().numpy()
        if not exclude_seen:
            ids, owner = ids[:0], owner[:0]
        cold = mask[:, 0] == 0  # histories are left-aligned: no first item, no item at all
        return Embedded(interests, ids.astype(np.int64, copy=False), owner.astype(np.int64, copy=False), cold, False)

    def rank(self, emb: Embedded, n: int = 50, lam: float = 0.0, raw: bool = False) -> Recommendations:
        """Stage 2 of :meth:`recommend`: retrieval per interest, deep enough that ``n`` unseen
        items remain; each interest's first ``n`` unseen items are aggregated with ``lam`` (so a
        history's result does not depend on the other histories of the batch); the popular
        fallback for cold rows; raw ids when ``raw``."""
        from .core import aggregate, check_lams, check_ns

        (n,) = check_ns([n])
        (lam,) = check_lams([lam])
        if self.index is None:
            raise ValueError("this Recommender was loaded with index=False: it embeds histories only")
        B = emb.cold.shape[0]
        seen_keys = None
        if emb.seen_ids.size and self.index.can_exclude:
            # The torch search masks each user's seen items before its top-n: the same pool as
            # below (each interest's first n unseen items) without searching deeper.
            cands = self.index.search(emb.interests, n, exclude=(emb.seen_owner, emb.seen_ids))
        else:
            extra = 0
            if emb.seen_ids.size:
                seen_keys = np.unique(emb.seen_owner * (self.n_items + 1) + emb.seen_ids)  # (user, item) pairs
                extra = int(np.bincount(seen_keys // (self.n_items + 1)).max())
            cands = self.index.search(emb.interests, n + extra)
        if seen_keys is not None:
            keys = np.arange(B)[:, None, None] * (self.n_items + 1) + cands.items
            # Membership by binary search in the sorted unique keys: the same answer as np.isin,
            # 3-7x faster on 4,096 users x 4 x 209 candidates (isin sorts both arrays each call).
            pos = np.searchsorted(seen_keys, keys)
            pos[pos == seen_keys.size] = 0
            hit = (seen_keys[pos] == keys) & (cands.items > 0)
            # Each interest's first n unseen candidates (a stable sort moves the seen ones last):
            # the pool the aggregation sees is the same whatever the other histories of the batch.
            order = np.argsort(hit, axis=2, kind="stable")[:, :, :n]
            gone = np.take_along_axis(hit, order, 2)
            items = np.where(gone, -1, np.take_along_axis(cands.items, order, 2))
            cands = type(cands)(items, np.where(gone, np.float32(-np.inf), np.take_along_axis(cands.scores, order, 2)))
        recs = aggregate(cands, self.item_cat, lam=lam, n=n)
        items, scores = np.asarray(recs.items), np.asarray(recs.scores)
        cold = emb.cold
        if cold.any():
            top = min(n, self.n_items)
            items, scores = items.copy(), scores.copy()
            items[cold] = -1
            items[cold, :top] = np.arange(1, top + 1)
            scores[cold] = np.float32(np.nan)
            scores[cold, top:] = -np.inf
        if raw:
            out = self.item_raw[np.maximum(items, 0)].astype(object)
            out[items < 0] = None
            items = out
        if emb.single:
            return Recommendations(items[0], scores[0])
        return Recommendations(items, scores)


def _is_single(histories: Any) -> bool:
    if isinstance(histories, np.ndarray):
        if histories.ndim not in (1, 2):
            raise ValueError(f"histories must be one sequence or a batch of sequences, got an array of shape {histories.shape}")
        return histories.ndim == 1 and histories.dtype != object
    if isinstance(histories, (str, bytes)):
        raise TypeError("histories must be a sequence of item ids (or of sequences), not a string")
    try:
        seq = list(histories) if not isinstance(histories, list) else histories
    except TypeError:
        raise TypeError(f"histories: expected a sequence of item ids or a batch of sequences, got {type(histories).__name__}") from None
    if not seq:  # one empty history (the popular fallback); a batch of one is [[]]
        return True
    try:
        return np.ndim(seq[0]) == 0
    except ValueError:  # a ragged first element: a batch, whose _as_flat names the bad history
        return False


def _as_flat(seq: Any, i: int, single: bool) -> np.ndarray:
    """One history as a 1-D array; a nested or ragged one is a ValueError naming it."""
    where = "histories" if single else f"histories[{i}]"
    if isinstance(seq, (str, bytes)) and not single:
        raise TypeError(f"{where}: expected a sequence of item ids, not a string")
    try:
        a = np.asarray(seq)
    except (ValueError, TypeError):
        raise ValueError(f"{where}: expected a flat sequence of item ids, got a nested or ragged list") from None
    if a.ndim != 1:
        raise ValueError(f"{where}: expected a flat sequence of item ids, got {'a single value' if a.ndim == 0 else f'an array of shape {a.shape}'}")
    return a


def _as_ids(seq: Any, n_items: int) -> np.ndarray:
    ids = np.asarray(seq)
    if ids.size == 0:
        return np.zeros(0, np.int64)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"histories: internal item ids must be integers, got {ids.dtype} (pass raw=True for raw ids)")
    ids = ids.astype(np.int64).ravel()
    if ids.min() < 0 or ids.max() > n_items:  # 0 is padding (dropped)
        raise ValueError(f"histories: item ids must be in 1..{n_items} (internal ids, 0 = padding; pass raw=True for raw ids), got values in [{ids.min()}, {ids.max()}]")
    return ids
