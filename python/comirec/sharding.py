"""``comirec train --embedding-sharding torchrec``: the item table sharded row-wise over the ranks
by TorchRec, the rest of the model data-parallel (DistributedDataParallel).

Each rank keeps ``1/P`` of the table's rows and of their optimizer state. A step looks up the
batch's rows (history, target and the shared negatives) through TorchRec's all-to-all; the
backward pass sends each row's gradient to the rank that owns it, where TorchRec's fused kernel
(FBGEMM's table-batched embedding) applies the optimizer at once. TorchRec's all-to-all divides
the gradients it sends back by P (its default, ``set_gradient_division``), so that the owner
receives the gradient of the global batch's mean loss, as DistributedDataParallel averages the
dense parameters': P ranks train as one process with the whole batch (tests/test_torchrec.py
checks it to float tolerance).

The table's optimizer is FBGEMM's: **row-wise Adagrad** (``EXACT_ROWWISE_ADAGRAD``, one
accumulator per row, the usual optimizer of sharded recommendation tables). FBGEMM's CPU kernels
have no Adam (fbgemm-gpu: "Optimizer adam is not supported in CPU mode"), and TorchRec 1.9 shards
a table model-parallel only with fused kernels (its dense kernel is data-parallel only), so the
paper's Adam cannot drive a TorchRec-sharded table on CPU. ``--table-lr`` is that optimizer's
learning rate; the other parameters keep Adam at ``--lr``.

Validation and checkpoints see the whole table: before each, every rank sends its rows and their
optimizer state to rank 0 (a gather), which validates the plain model and writes ``last.pt`` /
``best.pt`` with the whole table, so a run resumes with any number of ranks (the rows are
re-split by the new plan) and loads in ``Recommender.load`` like any other.

Installing: TorchRec 1.9.2 declares a dependency on fbgemm-gpu (the CUDA build), while with
torch 2.15 on CPU only ``fbgemm-gpu-nightly-cpu`` 2026.10.16 loads (the released
``fbgemm-gpu-cpu`` 1.9.0 fails with an undefined symbol); so install them without dependencies
(README, "Scaling out")::

    pip install --no-deps torchrec==1.9.2 fbgemm-gpu-nightly-cpu==2026.10.16
    pip install tensordict pyvers pyre-extensions torchmetrics
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import TYPE_CHECKING, Any, Iterator

from . import distributed

if TYPE_CHECKING:
    import torch

    from .models.base import InterestModel

#: The table's name inside TorchRec ("items" would clash with ModuleDict.items).
TABLE = "item_table"
#: The one feature looked up in it.
FEATURE = "item"
#: The optimizer state FBGEMM keeps per row for row-wise Adagrad.
STATE = f"{TABLE}.momentum1"

INSTALL = ("pip install --no-deps torchrec==1.9.2 fbgemm-gpu-nightly-cpu==2026.10.16 && "
           "pip install tensordict pyvers pyre-extensions torchmetrics")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """TorchRec and FBGEMM warn on import (modules FBGEMM's CPU build lacks), the planner logs
    advice at WARNING, torch.fx logs a notice when TorchRec asks whether it is tracing, and
    ShardedTensor (how TorchRec 1.9 holds shards) says it is deprecated: none of it is the user's
    to act on."""
    # torch.fx: TorchRec asks is_fx_tracing() on every lookup, and torch logs a notice about that API
    loggers = [logging.getLogger(name) for name in ("torchrec", "torch.fx._symbolic_trace")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            for category in (DeprecationWarning, FutureWarning, UserWarning):
                warnings.simplefilter("ignore", category)
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def _import_torchrec() -> Any:
    """torchrec, with FBGEMM's operators loaded; an ImportError saying what to install."""
    try:
        with _quiet():
            import torchrec
            from fbgemm_gpu.split_embedding_configs import EmbOptimType  # noqa: F401  (loads fbgemm's operators)
    except (ImportError, OSError) as exc:
        raise ImportError(f"--embedding-sharding torchrec needs TorchRec and FBGEMM ({INSTALL}); import failed: {exc}") from None
    return torchrec


class ShardedItems:
    """The item table of ``model`` sharded row-wise over the ranks of ``world`` (see the module's
    doc). Every rank must call each method (they are collective), in the same order."""

    def __init__(self, model: InterestModel, world: distributed.World, device: torch.device, lr: float) -> None:
        _import_torchrec()
        with _quiet():
            self._build(model, world, device, lr)

    def _build(self, model: InterestModel, world: distributed.World, device: torch.device, lr: float) -> None:
        import torch
        import torch.distributed as dist
        from fbgemm_gpu.split_embedding_configs import EmbOptimType
        from torchrec import EmbeddingCollection, EmbeddingConfig
        from torchrec.distributed import DistributedModelParallel
        from torchrec.distributed.embedding import EmbeddingCollectionSharder
        from torchrec.distributed.planner import EmbeddingShardingPlanner, Topology
        from torchrec.distributed.planner.types import ParameterConstraints
        from torchrec.distributed.types import ShardingType

        self.world, self.device = world, device
        rows, dim = model.item_emb.weight.shape
        self.rows = int(rows)
        tables = [EmbeddingConfig(name=TABLE, embedding_dim=int(dim), num_embeddings=self.rows, feature_names=[FEATURE])]
        collection = EmbeddingCollection(tables=tables, device=torch.device("meta"))
        sharder = EmbeddingCollectionSharder(fused_params={"optimizer": EmbOptimType.EXACT_ROWWISE_ADAGRAD, "learning_rate": lr, "eps": 1e-8})
        topology = Topology(world_size=world.size, compute_device=device.type, local_world_size=world.local_size)
        planner = EmbeddingShardingPlanner(topology=topology,
                                           constraints={TABLE: ParameterConstraints(sharding_types=[ShardingType.ROW_WISE.value])})
        group = dist.GroupMember.WORLD
        assert group is not None
        plan = planner.collective_plan(collection, [sharder], group)
        self.module = DistributedModelParallel(collection, device=device, plan=plan, sharders=[sharder], init_data_parallel=False)
        # start from rank 0's initial table (the model's initialiser ran on every rank with one seed)
        weight = model.item_emb.weight.detach().clone()
        dist.broadcast(weight, 0)
        self.load(weight, None)
        model.item_emb.weight.requires_grad_(False)  # the sharded copy is the one that learns

    # -- the shards -------------------------------------------------------------------------

    def _shards(self) -> tuple[Any, Any]:
        """The ShardedTensors of the table's weight and of its per-row optimizer state."""
        (weight,) = self.module.state_dict().values()
        (state,) = (t for per_param in self.module.fused_optimizer.state_dict()["state"].values()
                    for name, t in per_param.items() if name == STATE)
        return weight, state

    def lookup(self, ids: torch.Tensor) -> torch.Tensor:
        """The table's rows for ``ids`` (1-D); on the way back their gradients reach the rows'
        owners divided by P (TorchRec's gradient division, which must be on: its default)."""
        import torch
        from torchrec import KeyedJaggedTensor
        from torchrec.distributed.comm_ops import get_gradient_division

        if self.world.size > 1 and not get_gradient_division():
            raise RuntimeError("torchrec.distributed.comm_ops.set_gradient_division(False) was called in this process: "
                               "--embedding-sharding torchrec needs TorchRec's gradient division (its default) so that "
                               "P ranks train as one process")
        lengths = torch.tensor([ids.numel()], dtype=torch.int32, device=ids.device)
        with _quiet():
            kjt = KeyedJaggedTensor(keys=[FEATURE], values=ids, lengths=lengths)
            rows: torch.Tensor = self.module(kjt)[FEATURE].values()
        return rows

    def gather(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The whole table and its per-row optimizer state, on rank 0 (None on the others: only
        rank 0 validates and writes checkpoints, so no other rank holds the whole table)."""
        with _quiet():
            weight, state = (self._gather_one(t) for t in self._shards())
        if weight is None or state is None:
            return None
        return weight, state.reshape(-1)

    def _gather_one(self, sharded: Any) -> torch.Tensor | None:
        import torch
        import torch.distributed as dist

        metas = sorted(sharded.metadata().shards_metadata, key=lambda m: m.shard_offsets[0])
        width = list(metas[0].shard_sizes[1:])
        most = max(m.shard_sizes[0] for m in metas)
        local = torch.zeros([most, *width], dtype=sharded.dtype, device=self.device)
        for s in sharded.local_shards():
            local[: s.tensor.shape[0]] = s.tensor.reshape(s.tensor.shape[0], *width)
        parts = [torch.empty_like(local) for _ in range(self.world.size)] if self.world.main else None
        dist.gather(local, parts, dst=0)
        if parts is None:
            return None
        by_rank = {m.placement.rank(): m for m in metas}
        pieces = [parts[r][: by_rank[r].shard_sizes[0]] for r in sorted(by_rank, key=lambda r: by_rank[r].shard_offsets[0])]
        return torch.cat(pieces).cpu()

    def load(self, weight: torch.Tensor, state: torch.Tensor | None) -> None:
        """Set this rank's rows of the table (and of the optimizer state, when given) from the
        whole ``weight`` (rows, d) and ``state`` (rows,)."""
        import torch

        if tuple(weight.shape[:1]) != (self.rows,):
            raise ValueError(f"item table: expected {self.rows} rows, got {tuple(weight.shape)}")
        with torch.no_grad(), _quiet():
            for t, source in zip(self._shards(), (weight, state)):
                if source is None:
                    continue
                for s in t.local_shards():
                    start, n = s.metadata.shard_offsets[0], s.metadata.shard_sizes[0]
                    s.tensor.copy_(source[start : start + n].reshape(s.tensor.shape).to(s.tensor.device, s.tensor.dtype))
