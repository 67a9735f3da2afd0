"""comirec: controllable multi-interest sequential recommendation (Cen et al., KDD 2020).

The public API. Heavy dependencies (torch, faiss, pyarrow) are imported lazily by the
submodules that need them, never at ``import comirec``.
"""

from __future__ import annotations

__version__ = "0.1.0"


# -- serving (issue 4): imported on first use, since it needs torch and faiss --
def __getattr__(name: str) -> object:
    if name in ("Recommender", "Recommendations", "UnknownItemWarning"):
        from comirec import serving

        return getattr(serving, name)
    raise AttributeError(f"module 'comirec' has no attribute {name!r}")
