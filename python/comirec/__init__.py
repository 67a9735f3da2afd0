"""comirec: controllable multi-interest sequential recommendation (Cen et al., KDD 2020).

The public API. Heavy dependencies (torch, faiss, pyarrow) are imported lazily by the
submodules that need them, never at ``import comirec``.

Serving core (Rust, see :mod:`comirec.core`):

- :func:`aggregate` merges per-interest candidates into one top-n list, trading accuracy for
  category diversity with ``lam`` (Algorithm 2 of the paper).
- :func:`metrics` computes Recall / NDCG / HitRate / Diversity at several cut-offs in one pass.
"""

from __future__ import annotations

from comirec.core import Candidates, aggregate, from_search, metrics, metrics_to_ranx

__version__ = "0.1.0"

__all__ = ["Candidates", "aggregate", "from_search", "metrics", "metrics_to_ranx", "__version__"]


# -- serving: imported on first use, since it needs torch and faiss --
def __getattr__(name: str) -> object:
    if name in ("Recommender", "Recommendations", "UnknownItemWarning"):
        from comirec import serving

        return getattr(serving, name)
    raise AttributeError(f"module 'comirec' has no attribute {name!r}")
