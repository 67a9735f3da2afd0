"""Where and how torch computes: the device (``--device``) and the CPU threads (``--threads``)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Union

if TYPE_CHECKING:
    import torch

#: Where a model runs: a torch.device, or its name ("cpu", "cuda:0").
Device = Union["torch.device", str]


def resolve_device(spec: str) -> torch.device:
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {spec!r} requested but CUDA is not available (use --device cpu or auto)")
        return torch.device(spec)
    raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {spec!r}")


def as_torch_device(device: Device) -> torch.device:
    """``device`` as a torch.device (a name such as ``"cuda:0"`` is parsed)."""
    import torch

    return device if isinstance(device, torch.device) else torch.device(device)


def auto_threads() -> int:
    """CPU threads for training when none are given: 1 on machines of up to 2 cores or when the
    other cores are already busy (1-minute load average, read once before training starts),
    else torch's default (one per core). The models are small: torch's OpenMP threads spend
    much of a step waiting for each other, and when another process takes a core they
    spin-wait, so 2 threads on a shared 2-core machine can be several times slower than 1
    (benches/README.md); on an idle one 2 threads are ~1.6x faster (pass --threads 2)."""
    import torch

    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:  # not available on this platform
        load = 0.0
    return 1 if cores <= 2 or load > cores - 1 else torch.get_num_threads()
