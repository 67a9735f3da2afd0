"""Training throughput on CPU: samples/s of one training step per model.

Inputs are Beauty-sized (22,363 users, 12,101 items, batch 128, maxlen 20, d = 64, K = 4) random
CSR sequences with Zipf item popularity; each step draws its batch with the data layer's sampler,
so the data path is inside the measurement (``test_sampler_batch`` times it alone).

Baseline ("naive"): the same models written the way a straightforward PyTorch port does it —
the DR bilinear map as a broadcast multiply-and-sum over a (B, T, K*d, d) tensor, a full
softmax over the catalogue, and torch's default (per-tensor) Adam — on the same batches.

Run with timing: ``python -m pytest benches/bench_training.py --benchmark-enable``; in CI the
benchmarks run once as tests (``--benchmark-disable``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from comirec.data import TrainSampler  # noqa: E402
from comirec.losses import SampledSoftmaxLoss  # noqa: E402
from comirec.config import ModelConfig, TrainConfig  # noqa: E402
from comirec.models import build_model, dynamic_routing  # noqa: E402
from comirec.training import batch_ids, batch_loss, gather_rows, loss_from_rows, make_optimizer  # noqa: E402

N_USERS, N_ITEMS, BATCH, MAXLEN = 22_363, 12_101, 128, 20
MODELS = ["youtube-dnn", "gru4rec", "mind", "comirec-dr", "comirec-sa"]


@pytest.fixture(scope="module")
def sampler() -> TrainSampler:
    rng = np.random.default_rng(0)
    lengths = 5 + rng.geometric(1 / 5, N_USERS)
    indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ranks = np.floor(np.exp(rng.random(indptr[-1]) * math.log(N_ITEMS + 1))).astype(np.int64)
    items = np.clip(ranks, 1, N_ITEMS).astype(np.int32)
    return TrainSampler(indptr, items, batch_size=BATCH, maxlen=MAXLEN, min_hist=4, seed=0)


class OurStep:
    """One step of comirec's training loop (batch_loss + fused Adam), on sampler batches."""

    def __init__(self, name: str, sampler: TrainSampler) -> None:
        torch.manual_seed(0)
        self.model = build_model(ModelConfig(model=name, dr_map="position"), N_ITEMS).train()  # the authors' DR: what NaiveStep reimplements
        self.opt = make_optimizer(self.model, 1e-3, "cpu")
        self.loss_fn = SampledSoftmaxLoss(N_ITEMS, 10 * BATCH)
        self.sampler, self.step_no = sampler, 0

    def __call__(self) -> float:
        b = self.sampler.batch(self.step_no)
        rng = np.random.default_rng(self.step_no)
        self.step_no += 1
        loss = self.loss(b, rng)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def loss(self, b, rng: np.random.Generator) -> torch.Tensor:  # type: ignore[no-untyped-def]
        return batch_loss(self.model, self.loss_fn, torch.from_numpy(b.history), torch.from_numpy(b.mask), torch.from_numpy(b.target), rng)


class NaiveStep(OurStep):
    """The baseline: broadcast bilinear map for DR, full softmax, per-tensor Adam."""

    def __init__(self, name: str, sampler: TrainSampler) -> None:
        super().__init__(name, sampler)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3, foreach=False)

    def interests(self, h: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        model = self.model
        if model.name != "comirec-dr":
            return model.interests(h, m)
        his = model.embed_history(h, m)  # (B, T, d)
        w = model.bilinear.permute(0, 2, 1)  # (T, K*d, d)
        hat = (w.unsqueeze(0) * his.unsqueeze(2)).sum(3)  # materialises (B, T, K*d, d)
        hat = hat.view(h.shape[0], MAXLEN, model.n_interests, model.dim).transpose(1, 2)
        return dynamic_routing(hat, m, torch.zeros(h.shape[0], model.n_interests, MAXLEN), 3)

    def __call__(self) -> float:
        b = self.sampler.batch(self.step_no)
        self.step_no += 1
        h, m, t = torch.from_numpy(b.history), torch.from_numpy(b.mask), torch.from_numpy(b.target)
        v = self.interests(h, m)
        tv = self.model.item_emb(t)
        user = v[torch.arange(len(t)), torch.einsum("bkd,bd->bk", v, tv).argmax(1)]
        loss = torch.nn.functional.cross_entropy(user @ self.model.item_emb.weight.T, t)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return float(loss.detach())


def _run(benchmark, step: OurStep, name: str, contender: str) -> None:  # type: ignore[no-untyped-def]
    for _ in range(3):
        step()  # warm-up
    # Group and extra_info follow benches/report.py's layout ("users" = samples per call).
    benchmark.group = f"train-step {name} B={BATCH}"
    benchmark.extra_info.update(contender=contender, users=BATCH, threads=torch.get_num_threads())
    loss = benchmark.pedantic(step, rounds=30, iterations=1, warmup_rounds=0)
    assert math.isfinite(loss) and loss > 0


@pytest.mark.parametrize("name", MODELS)
def test_train_step(benchmark, sampler: TrainSampler, name: str) -> None:  # type: ignore[no-untyped-def]
    _run(benchmark, OurStep(name, sampler), name, "comirec")


@pytest.mark.parametrize("name", ["youtube-dnn", "comirec-dr", "comirec-sa"])
def test_train_step_naive(benchmark, sampler: TrainSampler, name: str) -> None:  # type: ignore[no-untyped-def]
    _run(benchmark, NaiveStep(name, sampler), name, "naive")


LARGE_ITEMS = 1_000_000  # a catalogue where the dense Adam step over every row dominates


class LargeCatalogueStep(OurStep):
    """One ComiRec-SA step over a 1M-item table: the default dense (fused) Adam,
    ``--sparse-items`` (sparse gradient of the gathered rows, SparseAdam on the table), or
    ``--embedding-sharding torchrec`` with one rank (the table in TorchRec's row-wise sharding, its
    rows looked up through TorchRec and trained by FBGEMM's fused row-wise Adagrad in the backward
    pass; Adam on the rest), on the same sampler batches (ids folded into the larger catalogue)."""

    def __init__(self, sampler: TrainSampler, contender: str) -> None:
        torch.manual_seed(0)
        self.model = build_model(ModelConfig(model="comirec-sa"), LARGE_ITEMS).train()
        self.table = None
        if contender == "torchrec":
            from comirec import distributed
            from comirec.sharding import ShardedItems

            distributed.init(distributed.World(), torch.device("cpu"), always=True)  # a group of one
            table_lr = TrainConfig.__dataclass_fields__["table_lr"].default
            self.table = ShardedItems(self.model, distributed.World(), torch.device("cpu"), table_lr)
        self.sparse = contender == "sparse-items"
        self.opt = make_optimizer(self.model, 1e-3, "cpu", sparse_items=self.sparse)
        self.loss_fn = SampledSoftmaxLoss(LARGE_ITEMS, 10 * BATCH)
        self.sampler, self.step_no = sampler, 0

    def loss(self, b, rng: np.random.Generator) -> torch.Tensor:  # type: ignore[no-untyped-def]
        # spread the Beauty-sized ids over the large catalogue (0 stays padding)
        spread = lambda a: torch.from_numpy(a.astype(np.int64) * (LARGE_ITEMS // N_ITEMS))  # noqa: E731
        h, m, t = spread(b.history), torch.from_numpy(b.mask), spread(b.target)
        if self.table is not None:
            ids, neg = batch_ids(self.loss_fn, h, t, rng)
            return loss_from_rows(self.model, self.loss_fn, self.table.lookup(ids), neg, m, t, "max")
        rows, neg = gather_rows(self.model, self.loss_fn, h, t, rng, sparse=self.sparse)
        return loss_from_rows(self.model, self.loss_fn, rows, neg, m, t, "max")


def _torchrec_skip() -> str | None:
    try:
        from comirec.sharding import _import_torchrec

        _import_torchrec()
    except ImportError as exc:
        return f"TorchRec/FBGEMM not importable ({exc}); .ci/run installs them"
    return None


@pytest.mark.parametrize("contender", ["dense-adam", "sparse-items", "torchrec"])
def test_train_step_large_catalogue(benchmark, sampler: TrainSampler, contender: str) -> None:  # type: ignore[no-untyped-def]
    if contender == "torchrec" and (why := _torchrec_skip()):
        pytest.skip(why)
    step = LargeCatalogueStep(sampler, contender)
    try:
        for _ in range(3):
            step()
        benchmark.group = f"train-step comirec-sa {LARGE_ITEMS:,} items B={BATCH}"
        benchmark.extra_info.update(contender=contender, users=BATCH, threads=torch.get_num_threads())
        loss = benchmark.pedantic(step, rounds=15, iterations=1, warmup_rounds=0)
        assert math.isfinite(loss) and loss > 0
    finally:
        if step.table is not None:
            from comirec import distributed

            distributed.shutdown()


def test_sampler_batch(benchmark, sampler: TrainSampler) -> None:  # type: ignore[no-untyped-def]
    benchmark.group = f"train-sampler B={BATCH}"
    benchmark.extra_info.update(contender="sampler", users=BATCH)
    counter = iter(range(10**9))
    batch = benchmark(lambda: sampler.batch(next(counter)))
    assert batch.history.shape == (BATCH, MAXLEN) and (batch.target > 0).all()
