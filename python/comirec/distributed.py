"""Data-parallel training with torch.distributed, started by torchrun.

``torchrun --nproc-per-node P -m comirec train ...`` (or ``comirec train --nproc-per-node P``,
which starts torchrun for you) runs P copies of the training loop, one per rank:

- gloo on CPU, NCCL on CUDA (each rank on ``cuda:LOCAL_RANK``);
- ``--batch-size`` is the global batch: batch ``s`` is the one a single process draws at step
  ``s`` (the Rust sampler's pure function of (seed, step)), and rank ``r`` of ``P`` trains on its
  rows ``[r·B/P, (r+1)·B/P)`` — disjoint, and together the whole batch;
- the sampled-softmax negatives of step ``s`` come from a generator seeded with (seed, step), so
  every rank draws the same ids without communicating (what all-gathering them would give): the
  loss of the P ranks together is the single-process loss of the global batch;
- the model's parameters (item table included, dense gradients) are under
  ``DistributedDataParallel``, which averages the gradients of the P ranks' mean losses: the
  gradient of the global batch's mean loss;
- rank 0 validates, checkpoints and writes the run directory; the others wait. ``last.pt`` and
  ``best.pt`` hold the plain model (no ``module.`` prefix), so a run written by P ranks resumes
  with any other P (the global batch does not change) and loads in ``Recommender.load``.

The run directory must be on a file system every rank sees (one machine, or a shared one).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from typing import TYPE_CHECKING, Any, Callable, TypeVar

if TYPE_CHECKING:
    import torch

T = TypeVar("T")

#: The stop reasons a rank may raise, ordered: the all-reduced maximum is the one every rank takes.
STOP_REASONS: tuple[str | None, ...] = (None, "max_minutes", "interrupted")


@dataclasses.dataclass(frozen=True)
class World:
    """This process's place among the training processes (one process: rank 0 of 1)."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one that validates, checkpoints and writes the run directory."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def rows(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of ``batch_size`` rows."""
        per = batch_size // self.size
        return slice(self.rank * per, (self.rank + 1) * per)


def _env_int(name: str, default: int) -> int:
    text = os.environ.get(name)
    if text is None:
        return default
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"environment variable {name}: expected an integer (set by torchrun), got {text!r}") from None


def world_from_env() -> World:
    """The world torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``LOCAL_WORLD_SIZE``); one process when they are absent."""
    size = _env_int("WORLD_SIZE", 1)
    world = World(rank=_env_int("RANK", 0), size=size, local_rank=_env_int("LOCAL_RANK", 0),
                  local_size=_env_int("LOCAL_WORLD_SIZE", size))
    if world.size < 1 or not 0 <= world.rank < world.size or not 0 <= world.local_rank < world.local_size:
        raise ValueError(f"torchrun environment: inconsistent RANK/WORLD_SIZE/LOCAL_RANK/LOCAL_WORLD_SIZE: {world}")
    return world


def check_batch(world: World, batch_size: int) -> None:
    if batch_size % world.size:
        raise ValueError(f"batch_size: expected a multiple of the number of training processes ({world.size}): "
                         f"each trains on batch_size / {world.size} rows of the global batch; got {batch_size}")


def rank_device(world: World, device: torch.device) -> torch.device:
    """The device of this rank: ``cuda:LOCAL_RANK`` when training on CUDA, else ``device``."""
    import torch

    if device.type == "cuda" and world.distributed:
        if torch.cuda.device_count() < world.local_size:
            raise ValueError(f"--nproc-per-node {world.local_size}: only {torch.cuda.device_count()} CUDA device(s) on this machine")
        torch.cuda.set_device(world.local_rank)
        return torch.device("cuda", world.local_rank)
    return device


def init(world: World, device: torch.device, always: bool = False) -> bool:
    """Join the process group (gloo on CPU, NCCL on CUDA) unless one process trains (and not
    ``always``: TorchRec needs a group even for one process, which then gets a group of its own on
    a free local port) or the group exists already; True when this call created it (and
    :func:`shutdown` should end it)."""
    import torch.distributed as dist

    if not (world.distributed or always) or dist.is_initialized():
        return False
    backend = "nccl" if device.type == "cuda" else "gloo"
    # Ranks other than 0 wait while rank 0 validates and writes checkpoints: a long timeout.
    timeout = datetime.timedelta(hours=4)
    if world.distributed or "MASTER_ADDR" in os.environ:
        dist.init_process_group(backend, timeout=timeout)
    else:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1, timeout=timeout)
    return True


def shutdown() -> None:
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def broadcast(world: World, value: T) -> T:
    """Rank 0's ``value`` on every rank (any picklable object)."""
    if not world.distributed:
        return value
    import torch.distributed as dist

    box = [value if world.main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]  # type: ignore[return-value]


def from_main(world: World, compute: Callable[[], T]) -> T:
    """``compute()`` on rank 0, its result (or its exception, re-raised) on every rank: rank 0's
    errors reach the others instead of leaving them waiting."""
    if not world.distributed:
        return compute()
    result: tuple[bool, Any] = (True, None)  # (ok, value or exception)
    if world.main:
        try:
            result = (True, compute())
        except Exception as exc:  # re-raised on every rank below
            result = (False, exc)
    ok, value = broadcast(world, result)
    if not ok:
        raise value
    return value  # type: ignore[no-any-return]


def stop_reason(world: World, local: str | None, device: torch.device) -> str | None:
    """The stop reason of any rank (``STOP_REASONS`` order decides between two): every rank stops
    at the same step for the same reason."""
    if not world.distributed:
        return local
    import torch
    import torch.distributed as dist

    flag = torch.tensor([STOP_REASONS.index(local)], dtype=torch.int64, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX)
    return STOP_REASONS[int(flag.item())]


def barrier(world: World) -> None:
    if world.distributed:
        import torch.distributed as dist

        dist.barrier()


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """The command that runs ``comirec <argv>`` as ``nproc`` ranks on this machine (torchrun,
    standalone rendezvous on a free port)."""
    import sys

    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "comirec", *argv]
