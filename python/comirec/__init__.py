"""comirec: controllable multi-interest sequential recommendation (Cen et al., KDD 2020).

The public API. Heavy dependencies (torch, faiss, pyarrow) are imported lazily by the
submodules that need them, never at ``import comirec``.
"""

from __future__ import annotations

__version__ = "0.1.0"
