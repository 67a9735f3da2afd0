"""Batch recommendation: histories in, Parquet shards of top-n lists out.

    comirec recommend --run RUN --users users.parquet --out recs/ --lam 0.1 --n 50

The stages, each a picklable callable on a ``pyarrow.Table`` batch, so that the same code runs as
a plain in-process loop or as a Ray Data pipeline (``map_batches`` with actor pools):

1. read: Parquet with columns ``user_id`` and ``history`` (a list of raw item ids, oldest first),
   streamed in batches; or a prepared dataset's split (``--data DIR --split test``: each user's
   history is the evaluation protocol's, the first 80% of the sequence, in raw ids);
2. :class:`EmbedStage` (holds the model; a GPU actor when one is there): the last ``maxlen`` known
   items of each history -> K interests; the items to exclude (the history's);
3. :class:`RankStage` (holds the item index): top-(n + seen) per interest, the seen items removed,
   ``comirec.aggregate`` with λ, raw ids: columns ``user_id``, ``items``, ``scores``;
4. write: Parquet shards into a temporary sibling of ``--out``, renamed into place at the end
   (``--out`` is either complete or absent).

Both stages are :meth:`comirec.serving.Recommender.embed` and :meth:`~comirec.serving.Recommender.rank`
(what ``Recommender.recommend`` runs), so a batch recommendation equals ``recommend(histories,
raw=True)`` user by user. One row per input user, in input order within each shard.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

if TYPE_CHECKING:
    import pyarrow as pa

    from .config import RecommendConfig
    from .serving import Recommender

USER_ID, HISTORY, ITEMS, SCORES = "user_id", "history", "items", "scores"
# Between the stages (per row, since Ray may re-batch rows between them): the K·d interests, the
# internal ids to exclude, the cold flag.
_INTERESTS, _SEEN, _COLD = "_interests", "_seen", "_cold"


def _flat_list(col: Any) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (offsets from 0, flat values) numpy arrays; null lists count as empty."""
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    if arr.null_count:
        arr = pc.fill_null(arr, pa.scalar([], type=arr.type))
    if pa.types.is_large_list(arr.type):
        arr = arr.cast(pa.list_(arr.type.value_type))
    offsets = arr.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    values = arr.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0])).to_numpy(zero_copy_only=False)
    return offsets - offsets[0], values


def _list_array(offsets: np.ndarray, values: Any, value_type: Any = None) -> Any:
    import pyarrow as pa

    return pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), pa.array(values, value_type))


class EmbedStage:
    """Stage 2: the model. Takes ``user_id`` + ``history`` (raw item ids, oldest first); returns
    ``user_id`` with each row's interests, items to exclude and cold flag."""

    def __init__(self, run: str, device: str = "cpu", threads: int = 0, exclude_seen: bool = True) -> None:
        import torch

        from .serving import Recommender

        if threads:
            torch.set_num_threads(threads)
        self.rec = Recommender.load(run, device=device, index=False)
        self.exclude_seen = exclude_seen

    def __call__(self, table: pa.Table) -> pa.Table:
        import warnings

        import pyarrow as pa

        from .serving import UnknownItemWarning

        b = table.num_rows
        offsets, values = _flat_list(table.column(HISTORY))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UnknownItemWarning)  # unknown items are dropped, as in recommend
            emb = self.rec.embed_flat(values, np.diff(offsets), raw=True, exclude_seen=self.exclude_seen)
        interests = emb.interests
        kd = interests.shape[1] * interests.shape[2]
        seen_offsets = np.zeros(b + 1, np.int64)
        np.cumsum(np.bincount(emb.seen_owner, minlength=b)[:b], out=seen_offsets[1:])
        return pa.table({
            USER_ID: table.column(USER_ID),
            _INTERESTS: pa.FixedSizeListArray.from_arrays(pa.array(interests.reshape(-1), pa.float32()), kd),
            _SEEN: _list_array(seen_offsets, emb.seen_ids, pa.int64()),
            _COLD: pa.array(emb.cold, pa.bool_()),
        })


class RankStage:
    """Stage 3: the item index. Takes :class:`EmbedStage`'s rows; returns ``user_id``, ``items``
    (raw ids, best first; a list shorter than ``n`` only when the catalogue runs out) and
    ``scores`` (float32 f(u, i); NaN for a cold user's popular fallback)."""

    def __init__(self, run: str | None = None, n: int = 50, lam: float = 0.0, factory: str = "Flat", nprobe: int = 16,
                 ef_search: int | None = None, device: str = "cpu", threads: int = 0, rec: Recommender | None = None) -> None:
        """Load ``run`` and build its index here, or take ``rec`` (its index built where it was
        made: the Ray pipeline builds it once, in the driver, for every actor)."""
        from .serving import Recommender

        if threads:
            _set_search_threads(threads)
        if rec is None:
            if run is None:
                raise ValueError("RankStage: expected a run directory or a Recommender")
            rec = Recommender.load(run, device=device, factory=factory, nprobe=nprobe, ef_search=ef_search)
        self.rec = rec
        self.n, self.lam = n, lam
        self.d = int(self.rec.model.dim)

    def __call__(self, table: pa.Table) -> pa.Table:
        import pyarrow as pa

        from .serving import Embedded

        b = table.num_rows
        flat = table.column(_INTERESTS).combine_chunks().flatten().to_numpy(zero_copy_only=False)
        interests = np.ascontiguousarray(flat, np.float32).reshape(b, -1, self.d)
        seen_offsets, seen_ids = _flat_list(table.column(_SEEN))
        owner = np.repeat(np.arange(b), np.diff(seen_offsets))
        cold = table.column(_COLD).to_numpy(zero_copy_only=False).astype(bool)
        recs = self.rec.rank(Embedded(interests, seen_ids.astype(np.int64), owner, cold, False), n=self.n, lam=self.lam)
        items = np.asarray(recs.items)
        keep = items > 0
        offsets = np.zeros(b + 1, np.int64)
        np.cumsum(keep.sum(1), out=offsets[1:])
        raw = self.rec.item_raw[items[keep]]
        return pa.table({
            USER_ID: table.column(USER_ID),
            ITEMS: _list_array(offsets, raw.tolist() if raw.dtype.kind == "U" else raw),
            SCORES: _list_array(offsets, np.asarray(recs.scores)[keep], pa.float32()),
        })


def _set_search_threads(threads: int) -> None:
    try:
        import faiss

        faiss.omp_set_num_threads(threads)
    except ImportError:
        pass
    import torch

    torch.set_num_threads(threads)


# -- reading ---------------------------------------------------------------------------------------


def _check_users_schema(schema: Any, where: str) -> None:
    import pyarrow as pa

    names = set(schema.names)
    if USER_ID not in names or HISTORY not in names:
        raise ValueError(f"{where}: expected columns {USER_ID!r} and {HISTORY!r} (a list of item ids, oldest first), "
                         f"got {', '.join(schema.names) or 'none'}")
    t = schema.field(HISTORY).type
    if not (pa.types.is_list(t) or pa.types.is_large_list(t)):
        raise ValueError(f"{where}: column {HISTORY!r} must be a list of item ids, got type {t}")


def read_users(path: str, batch_size: int) -> Iterator[pa.Table]:
    """Batches of ``user_id`` + ``history`` from a Parquet file or a directory of them, streamed."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"--users {p} does not exist; expected a Parquet file (or directory) with columns "
                                f"{USER_ID} and {HISTORY}")
    try:
        dataset = pads.dataset(str(p), format="parquet")
    except (pa.ArrowInvalid, OSError) as exc:
        raise ValueError(f"--users {p}: not a Parquet file or directory ({' '.join(str(exc).split())[:200]})") from None
    _check_users_schema(dataset.schema, f"--users {p}")
    for batch in dataset.to_batches(columns=[USER_ID, HISTORY], batch_size=batch_size):
        if batch.num_rows:
            yield pa.Table.from_batches([batch])


def read_split(data: str, split: str, batch_size: int) -> Iterator[pa.Table]:
    """Batches of a prepared dataset's ``split`` users, with the evaluation protocol's histories
    (the first ``floor(0.8 · len)`` items), as raw ids."""
    import pyarrow as pa

    from .data import load_prepared
    from .data.sampler import eval_cut

    ds = load_prepared(data)
    users = ds.users(split)
    for a in range(0, len(users), batch_size):
        u = users[a : a + batch_size]
        start, end = ds.indptr[u], ds.indptr[u + 1]
        k = eval_cut(end - start)
        offsets = np.zeros(len(u) + 1, np.int64)
        np.cumsum(k, out=offsets[1:])
        idx = np.repeat(start - offsets[:-1], k) + np.arange(offsets[-1])
        raw_items = ds.item_raw[ds.items[idx]]
        raw_users = ds.user_raw[u]
        yield pa.table({USER_ID: pa.array(raw_users.tolist() if raw_users.dtype.kind == "U" else raw_users),
                        HISTORY: _list_array(offsets, raw_items.tolist() if raw_items.dtype.kind == "U" else raw_items)})


# -- the pipeline ----------------------------------------------------------------------------------


def _engine(cfg: RecommendConfig) -> str:
    if cfg.engine != "auto":
        return cfg.engine
    try:
        import ray  # noqa: F401
    except ImportError:
        return "local"
    return "ray"


def recommend(cfg: RecommendConfig, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """Run the batch recommendation ``cfg`` describes; returns its summary (also written to
    ``OUT/_summary.json``: users, shards, seconds, users/s, and per stage where the engine tells)."""
    import json

    from .data._writing import OutputLock, rename_noreplace, tmp_prefix, write_error
    from .retrieval import check_factory
    from .runs import load_run_config

    check_factory(cfg.index, arg="--index")
    load_run_config(Path(cfg.run))  # a run directory, or a clear error before any work
    out = Path(cfg.out)
    if out.exists():
        raise FileExistsError(f"--out {out} already exists; expected a new directory for the Parquet shards")
    engine = _engine(cfg)
    if cfg.data is not None:
        _check_items(cfg)
    with OutputLock(out):
        try:
            tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix(out), dir=out.parent if str(out.parent) else "."))
        except OSError as exc:
            raise write_error(exc, out) from None
        try:
            t0 = time.perf_counter()
            summary = _run_ray(cfg, tmp, log) if engine == "ray" else _run_local(cfg, tmp, log)
            summary.update(engine=engine, seconds=round(time.perf_counter() - t0, 3), n=cfg.n, lam=cfg.lam, index=cfg.index)
            summary["users_per_s"] = round(summary["users"] / max(summary["seconds"], 1e-9), 1)
            (tmp / "_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
            rename_noreplace(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return summary


def _check_items(cfg: RecommendConfig) -> None:
    from .data import load_prepared
    from .runs import check_same_items, load_run_config

    stored = load_run_config(Path(cfg.run))
    check_same_items(stored["dataset"]["n_items"], load_prepared(str(cfg.data)), f"--data {cfg.data}")


def _batches(cfg: RecommendConfig) -> Iterator[pa.Table]:
    if cfg.users is not None:
        return read_users(cfg.users, cfg.batch_size)
    return read_split(str(cfg.data), cfg.split, cfg.batch_size)


def _device(cfg: RecommendConfig) -> str:
    from .device import resolve_device

    return str(resolve_device(cfg.device))


def _run_local(cfg: RecommendConfig, tmp: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """The stages in this process, one batch at a time (streaming: memory holds one batch)."""
    import pyarrow.parquet as pq

    device = _device(cfg)
    times = dict.fromkeys(("read", "embed", "rank", "write"), 0.0)
    t = time.perf_counter()
    embed = EmbedStage(cfg.run, device=device, threads=cfg.threads, exclude_seen=cfg.exclude_seen)
    rank = RankStage(cfg.run, n=cfg.n, lam=cfg.lam, factory=cfg.index, nprobe=cfg.nprobe, ef_search=cfg.ef_search,
                     device=device, threads=cfg.threads)
    setup = time.perf_counter() - t
    users = shards = 0
    batches = _batches(cfg)
    while True:
        t = time.perf_counter()
        table = next(batches, None)
        times["read"] += time.perf_counter() - t
        if table is None:
            break
        t = time.perf_counter()
        emb = embed(table)
        times["embed"] += time.perf_counter() - t
        t = time.perf_counter()
        recs = rank(emb)
        times["rank"] += time.perf_counter() - t
        t = time.perf_counter()
        pq.write_table(recs, tmp / f"part-{shards:05d}.parquet")
        times["write"] += time.perf_counter() - t
        users += table.num_rows
        shards += 1
        log(f"{users} users")
    return {"users": users, "shards": shards, "setup_seconds": round(setup, 3),
            "stage_seconds": {k: round(v, 3) for k, v in times.items()}, "workers": 1}


def _run_ray(cfg: RecommendConfig, tmp: Path, log: Callable[[str], None]) -> dict[str, Any]:
    """The stages as a Ray Data pipeline: read -> EmbedStage actors -> RankStage actors -> Parquet."""
    try:
        import ray
    except ImportError:
        raise ImportError("--engine ray needs Ray: pip install 'comirec[scale]' (or pip install 'ray[data]')") from None

    started = False
    if not ray.is_initialized():
        if cfg.address:
            ray.init(address=cfg.address, log_to_driver=False)
        else:  # an embedded local Ray on this machine's cores
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        started = True
    try:
        resources: dict[str, float] = getattr(ray, "cluster_resources")()  # untyped in Ray
        cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
        workers = cfg.workers or max(1, cpus // 2)
        threads = cfg.threads or max(1, cpus // (2 * workers))
        # Both stages' actors must fit at once beside a read or write task (one CPU each, Ray's
        # default; else a stage never starts): every actor asks for its share of the rest.
        cpu_each = min(float(threads), max(cpus - 1, 0.5) / (2 * workers))
        pool = ray.data.ActorPoolStrategy(size=workers)
        if cfg.users is not None:
            ds = ray.data.read_parquet(cfg.users).select_columns([USER_ID, HISTORY])
        else:
            ds = ray.data.from_arrow(list(_batches(cfg)))
        # Ray runs one task per block: a single Parquet file is one block, which would leave all
        # actors but one idle. A few blocks per actor (order kept) let every actor work.
        ds = ds.repartition(4 * workers, shuffle=False)
        embed_gpu = (gpus > 0 and cfg.device in ("auto", "cuda")) or cfg.device.startswith("cuda:")
        ds = ds.map_batches(EmbedStage, fn_constructor_kwargs={"run": str(Path(cfg.run).resolve()), "device": "cuda" if embed_gpu else "cpu",
                                                               "threads": threads, "exclude_seen": cfg.exclude_seen},
                            batch_size=cfg.batch_size, batch_format="pyarrow", compute=pool,
                            num_gpus=(1 / workers if embed_gpu else 0), num_cpus=cpu_each)
        # The item index is built here, once, and shipped to every RankStage actor: a trained index
        # (IVF, PQ, HNSW) rebuilt in each actor would differ with the actor's thread count, and
        # so would its lists from those of --engine local (which builds it as this does).
        if cfg.threads:
            _set_search_threads(cfg.threads)
        from .serving import Recommender

        ranker = Recommender.load(cfg.run, device="cpu", factory=cfg.index, nprobe=cfg.nprobe, ef_search=cfg.ef_search)
        ds = ds.map_batches(RankStage, fn_constructor_kwargs={"rec": ranker, "n": cfg.n, "lam": cfg.lam, "threads": threads},
                            batch_size=cfg.batch_size, batch_format="pyarrow", compute=pool, num_cpus=cpu_each)
        ds.write_parquet(str(tmp))
        stats = ds.stats()
        users = sum(pq_rows(f) for f in tmp.glob("*.parquet"))
        (tmp / "_ray_stats.txt").write_text(stats + "\n")
        return {"users": users, "shards": len(list(tmp.glob("*.parquet"))), "workers": workers, "threads_per_worker": threads,
                "ray_cpus": cpus, "ray_gpus": gpus, "stage_seconds": ray_stage_seconds(stats)}
    finally:
        if started:
            ray.shutdown()


def ray_stage_seconds(stats: str) -> dict[str, float]:
    """Per operator of a Ray Data run, the wall-clock seconds from its first task to its last
    (``Dataset.stats()``'s "Operator N NAME: ... in X s" lines; the stages overlap as they stream):
    {"embed": ..., "rank": ..., "write": ...} and the other operators under Ray's names."""
    import re

    names = {"MapBatches(EmbedStage)": "embed", "MapBatches(RankStage)": "rank", "Write": "write"}
    out: dict[str, float] = {}
    for name, seconds in re.findall(r"^Operator \d+ (\S+): .*? in ([0-9.]+)s\s*$", stats, flags=re.M):
        out[names.get(name, name)] = float(seconds)
    return out


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)
