"""Top-N inner-product retrieval per interest over the real items (ids 1..n_items, never 0).

A small index abstraction over ``faiss.index_factory``: ``"Flat"`` (exact, the default), or any
factory string (``"IVF4096,Flat"``, ``"HNSW32"``, ...) for catalogues in the millions. On CUDA the
faiss GPU index is used when faiss was built with GPU support; otherwise a chunked torch
matmul + topk runs on the GPU (also selectable on CPU with ``backend="torch"``).

``search`` returns ``(items, scores)`` of shape (B, K, N): each row sorted by score descending,
item ids in 1..n_items, missing slots item -1 with score -inf. Errors are raised, never swallowed.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

BACKENDS = ("auto", "faiss", "torch")


class Retrieved(NamedTuple):
    items: np.ndarray  # (B, K, N) int64, -1 = empty slot
    scores: np.ndarray  # (B, K, N) float32, -inf on empty slots


def _faiss_has_gpu(faiss: Any) -> bool:
    return hasattr(faiss, "StandardGpuResources") and int(getattr(faiss, "get_num_gpus", lambda: 0)()) > 0


class ItemIndex:
    """Inner-product index over item vectors 1..n_items.

    ``vectors``: (n_items, d) array-like (numpy or torch), row r = item r + 1.
    ``factory``: a faiss index factory string; ``"Flat"`` is exact.
    ``device``: ``"cpu"`` or a CUDA device; ``backend``: ``"auto"`` (faiss, except for the exact
    index on CUDA when faiss has no GPU support: then torch), ``"faiss"`` or ``"torch"`` (exact only).
    ``nprobe``: for IVF indexes, the number of lists searched.
    """

    def __init__(
        self,
        vectors: Any,
        factory: str = "Flat",
        device: str = "cpu",
        backend: str = "auto",
        nprobe: int = 16,
        chunk_bytes: int = 256 << 20,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.device = str(device)
        on_cuda = self.device.startswith("cuda")
        if backend == "auto":
            backend = "faiss"
            if on_cuda and factory == "Flat":
                import faiss

                backend = "faiss" if _faiss_has_gpu(faiss) else "torch"
        if backend == "torch" and factory != "Flat":
            raise ValueError(f"the torch backend is exact only (factory 'Flat'), got factory {factory!r}")
        self.backend = backend
        self.factory = factory
        self.chunk_bytes = int(chunk_bytes)
        if backend == "torch":
            self._init_torch(vectors)
        else:
            self._init_faiss(vectors, factory, on_cuda, nprobe)

    def _init_torch(self, vectors: Any) -> None:
        import torch

        t = torch.as_tensor(vectors).detach().to(self.device, torch.float32)
        if t.ndim != 2 or t.shape[0] < 1:
            raise ValueError(f"vectors must be a non-empty 2-D (n_items, d) array, got shape {tuple(t.shape)}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError("vectors contain NaN or infinite values")
        self._torch_vectors = t
        self.n_items, self.dim = int(t.shape[0]), int(t.shape[1])

    def _init_faiss(self, vectors: Any, factory: str, on_cuda: bool, nprobe: int) -> None:
        import faiss

        v = _to_numpy(vectors)
        if v.ndim != 2 or v.shape[0] < 1:
            raise ValueError(f"vectors must be a non-empty 2-D (n_items, d) array, got shape {v.shape}")
        if not np.isfinite(v).all():
            raise ValueError("vectors contain NaN or infinite values")
        self.n_items, self.dim = int(v.shape[0]), int(v.shape[1])
        try:
            index = faiss.index_factory(self.dim, factory, faiss.METRIC_INNER_PRODUCT)
            if not index.is_trained:
                index.train(v)
            index.add(v)
        except RuntimeError as exc:  # faiss reports a bad factory string or training set this way
            raise ValueError(f"index: faiss cannot build {factory!r} for {self.n_items} items of dimension {self.dim}: "
                             f"{_faiss_reason(exc)} (expected a faiss index_factory string such as 'Flat', 'HNSW32' or 'IVF64,Flat')") from None
        if hasattr(index, "nprobe"):
            index.nprobe = int(nprobe)
        # The faiss GPU index when faiss has one (it has no GPU HNSW); otherwise the index stays
        # on the CPU, whatever the queries' device.
        if on_cuda and _faiss_has_gpu(faiss) and "HNSW" not in factory:
            self._gpu_res = faiss.StandardGpuResources()
            dev = int(self.device.split(":")[1]) if ":" in self.device else 0
            index = faiss.index_cpu_to_gpu(self._gpu_res, dev, index)
        self._index = index

    def search(self, queries: Any, n: int) -> Retrieved:
        """Top-``n`` items per query vector. ``queries``: (B, K, d) or (B, d) (then K = 1)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n (items per interest) must be an integer >= 1, got {n!r}")
        n = int(n)
        if self.backend == "torch":
            return self._search_torch(queries, n)
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

    def _search_torch(self, queries: Any, n: int) -> Retrieved:
        import torch

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
        rows = max(1, self.chunk_bytes // (4 * self.n_items))  # bound the (rows, n_items) score block
        for lo in range(0, B * K, rows):
            s = flat[lo : lo + rows] @ self._torch_vectors.T
            top_s, top_i = torch.topk(s, take, dim=1, largest=True, sorted=True)
            items[lo : lo + rows, :take] = top_i.cpu().numpy() + 1
            scores[lo : lo + rows, :take] = top_s.cpu().numpy()
        return Retrieved(items.reshape(B, K, n), scores.reshape(B, K, n))


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
