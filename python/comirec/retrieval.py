"""Top-N inner-product retrieval per interest over the real items (ids 1..n_items, never 0).

A small index abstraction over ``faiss.index_factory``: ``"Flat"`` (exact, the default), or any
factory string (``"IVF4096,Flat"``, ``"HNSW32"``, ...) for catalogues in the millions. On CUDA the
faiss GPU index is used when faiss was built with GPU support; otherwise a chunked torch
matmul + topk runs on the GPU (also selectable on CPU with ``backend="torch"``).

``search`` returns ``(items, scores)`` of shape (B, K, N): each row sorted by score descending,
item ids in 1..n_items, missing slots item -1 with score -inf. Errors are raised, never swallowed.

Faiss is an optional dependency: ``pip install 'comirec[cpu]'`` (faiss-cpu) or
``'comirec[gpu]'`` (faiss-gpu, CUDA 12). Without it the exact index runs on torch (CPU or CUDA);
approximate factories need faiss and say which extra to install. ``ItemIndex.backend`` says
which path serves the queries: ``"faiss-gpu"``, ``"faiss-cpu"``, ``"torch-cuda"`` or ``"torch-cpu"``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

BACKENDS = ("auto", "faiss", "torch")
#: the values of ``ItemIndex.backend``: what actually serves the queries
RESOLVED_BACKENDS = ("faiss-gpu", "faiss-cpu", "torch-cuda", "torch-cpu")
FAISS_MISSING = "faiss is not installed: pip install 'comirec[cpu]' (faiss-cpu) or 'comirec[gpu]' (faiss-gpu, CUDA 12)"


class Retrieved(NamedTuple):
    items: np.ndarray  # (B, K, N) int64, -1 = empty slot
    scores: np.ndarray  # (B, K, N) float32, -inf on empty slots


def _faiss_has_gpu(faiss: Any) -> bool:
    return hasattr(faiss, "StandardGpuResources") and int(getattr(faiss, "get_num_gpus", lambda: 0)()) > 0


def _import_faiss(required: bool, why: str = "") -> Any:
    """The faiss module, or None when it is missing and not ``required`` (then torch serves)."""
    try:
        import faiss
    except ImportError:
        if required:
            raise ImportError(FAISS_MISSING + (f" ({why})" if why else "")) from None
        return None
    return faiss


def resolve_backend(factory: str = "Flat", device: str = "cpu", backend: str = "auto") -> str:
    """Which of :data:`RESOLVED_BACKENDS` an :class:`ItemIndex` with these arguments uses.

    ``"auto"``: faiss (on the GPU when faiss has GPU support and the index is not HNSW);
    the exact ``"Flat"`` index on CUDA without a GPU faiss, or anywhere without faiss, runs on torch.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not isinstance(factory, str) or not factory.strip():
        raise ValueError(f"factory: expected a faiss index factory string such as 'Flat', 'IVF4096,Flat' or 'HNSW32', got {factory!r}")
    on_cuda = str(device).startswith("cuda")
    torch_name = "torch-cuda" if on_cuda else "torch-cpu"
    if backend == "torch":
        if factory != "Flat":
            raise ValueError(f"the torch backend is exact only (factory 'Flat'), got factory {factory!r}")
        return torch_name
    faiss = _import_faiss(required=backend == "faiss" or factory != "Flat", why=f"index factory {factory!r}")
    if faiss is None:
        return torch_name
    gpu = on_cuda and _faiss_has_gpu(faiss)
    if backend == "auto" and on_cuda and factory == "Flat" and not gpu:
        return torch_name
    return "faiss-gpu" if gpu and "HNSW" not in factory else "faiss-cpu"


#: The dimension ``check_factory`` parses a factory string with when the items' is not known yet:
#: a multiple of every usual PQ subquantizer count (8, 16, 32, 64, 96, ...), so that e.g.
#: ``IVF4096,PQ32`` is not refused before the model's d is known (d = 8 refused it).
_PARSE_DIM = 6720


def check_factory(factory: str, arg: str = "factory", dim: int = _PARSE_DIM) -> None:
    """Raise ``ValueError`` (one line, starting with ``arg``) when faiss cannot parse ``factory``
    for vectors of dimension ``dim``; no-op for ``"Flat"`` (which needs no faiss)."""
    if factory == "Flat":
        return
    faiss = _import_faiss(required=True, why=f"index factory {factory!r}")
    try:
        faiss.index_factory(int(dim), factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1].rpartition(": ")[2] if str(exc).strip() else "rejected"
        raise ValueError(
            f"{arg}: faiss cannot build the index {factory!r} ({reason}); expected a faiss index factory "
            "string such as 'Flat', 'IVF4096,Flat' or 'HNSW32'"
        ) from None


class ItemIndex:
    """Inner-product index over item vectors 1..n_items.

    ``vectors``: (n_items, d) array-like (numpy or torch), row r = item r + 1.
    ``factory``: a faiss index factory string; ``"Flat"`` is exact (an unparsable one: ValueError).
    ``device``: ``"cpu"`` or a CUDA device; ``backend``: ``"auto"`` (see :func:`resolve_backend`),
    ``"faiss"`` or ``"torch"`` (exact only). After construction ``self.backend`` is the path that
    serves the queries, one of :data:`RESOLVED_BACKENDS`.
    ``nprobe``: for IVF indexes, the number of lists searched (ignored by other indexes).
    ``ef_search``: for HNSW indexes, the search-time beam width (faiss's default 16 when None).
    ``chunk_bytes``: the torch path scores queries against all items in blocks of at most this many
    bytes (default :func:`default_chunk_bytes`: 256 MiB on the CPU, up to 2 GiB on CUDA).
    """

    def __init__(
        self,
        vectors: Any,
        factory: str = "Flat",
        device: str = "cpu",
        backend: str = "auto",
        nprobe: int = 16,
        chunk_bytes: int | None = None,
        ef_search: int | None = None,
    ) -> None:
        for name, value in (("nprobe", nprobe), ("ef_search", ef_search)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1):
                raise ValueError(f"{name}: expected an integer >= 1, got {value!r}")
        self.device = str(device)
        self.backend = resolve_backend(factory, self.device, backend)
        if self.backend.startswith("torch") and ef_search is not None:
            raise ValueError("ef_search: only HNSW indexes have efSearch; the exact torch index has none")
        self.factory = factory
        self.nprobe = int(nprobe)
        self.ef_search = None if ef_search is None else int(ef_search)
        if chunk_bytes is not None and (isinstance(chunk_bytes, bool) or not isinstance(chunk_bytes, (int, np.integer)) or chunk_bytes < 1):
            raise ValueError(f"chunk_bytes: expected an integer >= 1 (bytes of one block of scores), got {chunk_bytes!r}")
        self.chunk_bytes = None if chunk_bytes is None else int(chunk_bytes)  # None: chosen per search, for the device
        if self.backend.startswith("torch"):
            self._init_torch(vectors)
        else:
            self._init_faiss(vectors, factory, self.backend == "faiss-gpu")

    def describe(self) -> dict[str, Any]:
        """The retrieval settings, as logged and stored in a run's metrics.json."""
        return {"backend": self.backend, "factory": self.factory, "nprobe": self.nprobe, "ef_search": self.ef_search}

    def _init_torch(self, vectors: Any) -> None:
        import torch

        t = torch.as_tensor(vectors).detach().to(self.device, torch.float32)
        if t.ndim != 2 or t.shape[0] < 1:
            raise ValueError(f"vectors must be a non-empty 2-D (n_items, d) array, got shape {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError("vectors contain NaN or infinite values")
        self._torch_vectors = t
        self.n_items, self.dim = int(t.shape[0]), int(t.shape[1])

    def _init_faiss(self, vectors: Any, factory: str, to_gpu: bool) -> None:
        faiss = _import_faiss(required=True)
        check_factory(factory)
        v = _to_numpy(vectors)
        if v.ndim != 2 or v.shape[0] < 1:
            raise ValueError(f"vectors must be a non-empty 2-D (n_items, d) array, got shape {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError("vectors contain NaN or infinite values")
        self.n_items, self.dim = int(v.shape[0]), int(v.shape[1])
        try:
            index = faiss.index_factory(self.dim, factory, faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as exc:  # parsable, but not for this dimension (e.g. PQ16 with d = 8)
            raise ValueError(f"factory: faiss cannot build {factory!r} for d = {self.dim}: {_faiss_reason(exc)}") from None
        try:
            if not index.is_trained:
                index.train(v)
            index.add(v)
        except RuntimeError as exc:  # faiss reports a bad training set this way
            raise ValueError(f"factory: faiss cannot build {factory!r} for {self.n_items} items of dimension {self.dim}: "
                             f"{_faiss_reason(exc)} (expected a faiss index_factory string such as 'Flat', 'HNSW32' or 'IVF64,Flat')") from None
        self._finish_faiss(index, to_gpu)

    def _finish_faiss(self, index: Any, to_gpu: bool) -> None:
        """Search parameters, then the GPU when asked: the last steps of building an index, and
        all of unpickling one."""
        faiss = _import_faiss(required=True)
        factory = self.factory
        params = faiss.ParameterSpace()
        try:
            params.set_index_parameter(index, "nprobe", self.nprobe)
        except RuntimeError:
            pass  # not an IVF index: nprobe does not apply
        if self.ef_search is not None:
            try:
                params.set_index_parameter(index, "efSearch", self.ef_search)
            except RuntimeError:
                raise ValueError(f"ef_search: only HNSW indexes have efSearch, got factory {factory!r}") from None
        # The faiss GPU index when faiss has one (it has no GPU HNSW); otherwise the index stays
        # on the CPU, whatever the queries' device.
        if to_gpu:
            self._gpu_res = faiss.StandardGpuResources()
            dev = int(self.device.split(":")[1]) if ":" in self.device else 0
            index = faiss.index_cpu_to_gpu(self._gpu_res, dev, index)
            if hasattr(index, "nprobe"):
                index.nprobe = self.nprobe
        self._index = index

    # -- pickling: a trained index (IVF, PQ, HNSW) travels as faiss's serialised bytes, so that every
    # worker searches the same index (k-means run again elsewhere, e.g. with another thread count,
    # gives other lists); an exact torch index as its vectors.

    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if k not in ("_index", "_gpu_res", "_torch_vectors")}
        if self.backend.startswith("torch"):
            state["_vectors"] = self._torch_vectors.detach().cpu().numpy()
        else:
            faiss = _import_faiss(required=True)
            cpu = faiss.index_gpu_to_cpu(self._index) if self.backend == "faiss-gpu" else self._index
            state["_faiss_bytes"] = faiss.serialize_index(cpu)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        vectors, data = state.pop("_vectors", None), state.pop("_faiss_bytes", None)
        self.__dict__.update(state)
        gpu = self.device.startswith("cuda") and cuda_available()
        if not gpu:  # a worker without a GPU serves on its CPU
            self.device = "cpu"
            self.backend = self.backend.replace("cuda", "cpu").replace("faiss-gpu", "faiss-cpu")
        if vectors is not None:
            self._init_torch(vectors)
        else:
            faiss = _import_faiss(required=True)
            self._finish_faiss(faiss.deserialize_index(data), self.backend == "faiss-gpu")

    @property
    def can_exclude(self) -> bool:
        """Whether :meth:`search` takes ``exclude`` (the torch path: masked before its top-n)."""
        return self.backend.startswith("torch")

    def search(self, queries: Any, n: int, exclude: tuple[np.ndarray, np.ndarray] | None = None) -> Retrieved:
        """Top-``n`` items per query vector. ``queries``: (B, K, d) or (B, d) (then K = 1).

        ``exclude`` (torch path only, see :attr:`can_exclude`): ``(rows, items)``, int arrays of
        equal length; item ``items[j]`` (an id in 1..n_items) is left out of every interest of
        query row ``rows[j]`` (in 0..B-1). Each row then holds its first ``n`` items that are not
        excluded, ``-1``/``-inf`` when fewer remain: what a deeper search with the excluded items
        taken out gives, without searching deeper."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n (items per interest) must be an integer >= 1, got {n!r}")
        n = int(n)
        if exclude is not None and not self.can_exclude:
            raise ValueError(f"exclude: the {self.backend} index cannot leave items out (only the torch path can); "
                             "expected exclude=None, or backend='torch'")
        if self.backend.startswith("torch"):
            return self._search_torch(queries, n, exclude)
        q = _to_numpy(queries)
        if q.ndim == 2:
            q = q[:, None, :]
        if q.ndim != 3 or q.shape[2] != self.dim:
            raise ValueError(f"queries must have shape (B, K, {self.dim}) or (B, {self.dim}), got {q.shape}")
        B, K, _ = q.shape
        if B * K == 0:
            return Retrieved(np.empty((B, K, n), np.int64), np.empty((B, K, n), np.float32))
        if not np.isfinite(q).all():
            raise ValueError("queries contain NaN or infinite values")
        scores, labels = self._index.search(np.ascontiguousarray(q.reshape(B * K, self.dim)), n)
        items = labels.astype(np.int64, copy=False)
        missing = items < 0
        items = np.where(missing, -1, items + 1)
        scores = np.where(missing, np.float32(-np.inf), scores).astype(np.float32, copy=False)
        return Retrieved(items.reshape(B, K, n), scores.reshape(B, K, n))

    def _search_torch(self, queries: Any, n: int, exclude: tuple[np.ndarray, np.ndarray] | None = None) -> Retrieved:
        import torch

        if isinstance(queries, np.ndarray) and not queries.flags.writeable:
            queries = queries.copy()  # e.g. a view of an Arrow buffer: torch warns on read-only arrays
        q = torch.as_tensor(queries).detach().to(self._torch_vectors.device, torch.float32)
        if q.ndim == 2:
            q = q[:, None, :]
        if q.ndim != 3 or q.shape[2] != self.dim:
            raise ValueError(f"queries must have shape (B, K, {self.dim}) or (B, {self.dim}), got {tuple(q.shape)}")
        B, K, _ = q.shape
        if not bool(torch.isfinite(q).all()):
            raise ValueError("queries contain NaN or infinite values")
        flat = q.reshape(B * K, self.dim)
        take = min(n, self.n_items)
        items = np.full((B * K, n), -1, np.int64)
        scores = np.full((B * K, n), -np.inf, np.float32)
        chunk = default_chunk_bytes(self.device) if self.chunk_bytes is None else self.chunk_bytes
        rows = max(1, chunk // (4 * self.n_items))  # bound the (rows, n_items) score block
        ex_rows, ex_cols = self._exclusions(exclude, B, K)
        for lo in range(0, B * K, rows):
            s = flat[lo : lo + rows] @ self._torch_vectors.T
            if ex_rows.size:
                a, b = np.searchsorted(ex_rows, (lo, lo + rows))
                if b > a:
                    s[torch.as_tensor(ex_rows[a:b] - lo, device=s.device), torch.as_tensor(ex_cols[a:b], device=s.device)] = -torch.inf
            top_s, top_i = torch.topk(s, take, dim=1, largest=True, sorted=True)
            items[lo : lo + rows, :take] = top_i.cpu().numpy() + 1
            scores[lo : lo + rows, :take] = top_s.cpu().numpy()
        if ex_rows.size:  # a row with fewer than n items left: the excluded ones came last, at -inf
            items[np.isneginf(scores)] = -1
        return Retrieved(items.reshape(B, K, n), scores.reshape(B, K, n))

    def _exclusions(self, exclude: tuple[np.ndarray, np.ndarray] | None, B: int, K: int) -> tuple[np.ndarray, np.ndarray]:
        """``exclude`` as (flat query row, item column) pairs sorted by row: user b's pairs
        repeated for its K rows b*K .. b*K+K-1."""
        if exclude is None:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        try:
            rows, ids = (np.asarray(a) for a in exclude)
        except (TypeError, ValueError):
            raise TypeError("exclude: expected a pair (rows, items) of integer arrays") from None
        if rows.shape != ids.shape or rows.ndim != 1 or not all(np.issubdtype(a.dtype, np.integer) for a in (rows, ids) if a.size):
            raise ValueError(f"exclude: expected two 1-D integer arrays of equal length, got shapes {rows.shape} and {ids.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= B):
            raise ValueError(f"exclude: rows must be query rows in 0..{B - 1}, got {rows.min()}..{rows.max()}")
        if ids.size and (ids.min() < 1 or ids.max() > self.n_items):
            raise ValueError(f"exclude: items must be item ids in 1..{self.n_items}, got {ids.min()}..{ids.max()}")
        flat_rows = (rows.astype(np.int64)[:, None] * K + np.arange(K)).ravel()
        cols = np.repeat(ids.astype(np.int64) - 1, K)
        order = np.argsort(flat_rows, kind="stable")
        return flat_rows[order], cols[order]


def default_chunk_bytes(device: str) -> int:
    """The torch search's block of scores: 256 MiB on the CPU; on CUDA 2 GiB, or a quarter of the
    device's free memory when that is less. Larger blocks mean fewer matmul + topk launches: on an
    H200 with 1M items, 4,096 users x 4 interests took 0.369 s with 256 MiB blocks and 0.255 s
    with 2 GiB (the same lists; docs/scaling.md, section 4)."""
    if not str(device).startswith("cuda"):
        return 256 << 20
    import torch

    free, _ = torch.cuda.mem_get_info(torch.device(device))
    return int(max(256 << 20, min(2 << 30, free // 4)))


def cuda_available() -> bool:
    """Whether torch sees a CUDA device (where an unpickled index or Recommender may use one)."""
    import torch

    return bool(torch.cuda.is_available())


def _faiss_reason(exc: BaseException) -> str:
    """The useful part of a faiss error (its messages start with a C++ function and file)."""
    import re

    text = " ".join(str(exc).split())
    text = re.sub(r"^Error in .*? at \S+:\d+: ", "", text)
    text = re.sub(r"^Error: '.*?' failed: ", "", text)
    return text[:300]


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor, on any device
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
        raise TypeError(f"expected a numeric array, got dtype {a.dtype}")
    return np.ascontiguousarray(a, dtype=np.float32)
