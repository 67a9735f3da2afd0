"""Training losses: sampled softmax as the authors' TF default computes it, and full softmax.

``tf.nn.sampled_softmax_loss`` with its defaults, which the authors use with
``num_sampled = 10 x batch``, does the following, and so does :class:`SampledSoftmaxLoss`:

- one set of negatives per batch, shared by all rows, drawn from a log-uniform (Zipf)
  distribution over frequency-ranked ids, *without* replacement (``unique=True``: draws are
  repeated until ``num_sampled`` distinct ids came up; ``num_tries`` counts all draws);
- logQ correction: every logit (true and sampled) minus log of its expected count,
  ``Q(c) = 1 - (1 - p(c))^num_tries``;
- accidental hits (a negative equal to the row's own target) removed from that row.

Our ids are 1..n_items ranked by descending frequency (0 = padding), so item ``i`` has
``p(i) = log(1 + 1/i) / log(n_items + 1)``: the authors' sampler with the padding id left out
(theirs also draws id 0, a wasted negative).
"""

from __future__ import annotations

import math
from typing import NamedTuple, overload

import numpy as np
import numpy.typing as npt

import torch
import torch.nn.functional as F


class LogUniformSampler:
    """Zipf sampler over ids 1..n_items: P(i) = log(1 + 1/i) / log(n_items + 1).

    Draws run in numpy on the CPU with a caller-given ``numpy.random.Generator``: a few
    thousand scalars per step are cheaper there than as a chain of small (multi-threaded)
    torch kernels, and the training loop seeds one generator per step for exact resumes."""

    def __init__(self, n_items: int) -> None:
        if n_items < 1:
            raise ValueError(f"n_items must be >= 1, got {n_items}")
        self.n_items = int(n_items)
        self._log_range = math.log(self.n_items + 1)

    @overload
    def prob(self, ids: torch.Tensor) -> torch.Tensor: ...
    @overload
    def prob(self, ids: npt.ArrayLike) -> npt.NDArray[np.float64]: ...

    def prob(self, ids: torch.Tensor | npt.ArrayLike) -> torch.Tensor | npt.NDArray[np.float64]:
        """P(id) for a numpy array or a torch tensor of ids (float64)."""
        if isinstance(ids, torch.Tensor):
            return torch.log1p(1.0 / ids.to(torch.float64)) / self._log_range
        return np.log1p(1.0 / np.asarray(ids, dtype=np.float64)) / self._log_range

    @overload
    def log_expected_count(self, ids: torch.Tensor, num_tries: int) -> torch.Tensor: ...
    @overload
    def log_expected_count(self, ids: npt.ArrayLike, num_tries: int) -> npt.NDArray[np.float64]: ...

    def log_expected_count(self, ids: torch.Tensor | npt.ArrayLike, num_tries: int) -> torch.Tensor | npt.NDArray[np.float64]:
        """log Q(i) for a unique sample after ``num_tries`` draws: log(1 - (1 - p)^num_tries)."""
        p = self.prob(ids)
        if isinstance(p, torch.Tensor):
            return torch.log(-torch.expm1(num_tries * torch.log1p(-p)))
        return np.asarray(np.log(-np.expm1(num_tries * np.log1p(-p))), dtype=np.float64)

    def draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws (with replacement), int64 in [1, n_items]."""
        ids = np.floor(np.exp(rng.random(n) * self._log_range)).astype(np.int64)  # inverse CDF
        return np.clip(ids, 1, self.n_items, out=ids)

    def sample_unique(self, num_sampled: int, rng: np.random.Generator) -> tuple[np.ndarray, int]:
        """``num_sampled`` distinct ids in the order they first came up, and the number of draws
        that took (TF's ``num_tries``). Draws come in growing blocks; the first occurrence of each
        distinct id decides where the sequence of draws stops."""
        if not 1 <= num_sampled < self.n_items:
            raise ValueError(f"num_sampled must be in [1, n_items={self.n_items}), got {num_sampled}")
        # Zipf draws repeat a lot (~2.3 draws per distinct id at 10% of a catalogue): start with
        # enough that one block usually suffices.
        draws = self.draw(3 * num_sampled + 64, rng)
        while True:
            uniq, first = np.unique(draws, return_index=True)
            if uniq.size >= num_sampled:
                break
            draws = np.concatenate([draws, self.draw(draws.size, rng)])
        order = np.argsort(first, kind="stable")[:num_sampled]
        return uniq[order], int(first[order[-1]]) + 1


def sampled_softmax_from_logits(
    true_logit: torch.Tensor,
    sampled_logits: torch.Tensor,
    log_q_true: torch.Tensor,
    log_q_sampled: torch.Tensor,
    hits: torch.Tensor | None,
) -> torch.Tensor:
    """Mean over rows of -log softmax([true - logQ_true, sampled - logQ_sampled])[0], with the
    sampled entries where ``hits`` is True excluded. Shapes: (B,), (B, S), (B,), (S,), (B, S)."""
    s = sampled_logits - log_q_sampled.to(sampled_logits.dtype)
    if hits is not None:
        s = s.masked_fill(hits, torch.finfo(s.dtype).min)
    t = (true_logit - log_q_true.to(true_logit.dtype)).unsqueeze(1)
    logits = torch.cat([t, s], dim=1)
    return (torch.logsumexp(logits, dim=1) - logits[:, 0]).mean()


class Negatives(NamedTuple):
    """One batch's shared negatives: distinct ids (a tensor on the training device), the number
    of draws that produced them, and their log expected counts (float32 tensor)."""

    ids: torch.Tensor
    num_tries: int
    log_q: torch.Tensor


class SampledSoftmaxLoss:
    """Sampled softmax over the item table (see the module docstring). Row 0 (padding) is never a
    class. When ``num_sampled`` would cover the catalogue, ``exact`` is True: the caller computes
    :func:`full_softmax_loss` instead (exact, and cheaper there).

    One path, the training loop's (``comirec.training.batch_loss``): draw the negatives
    (:meth:`draw`), fetch their rows together with the history and target rows in one gather of
    the item table, then :meth:`loss`. The loss holds no parameters.
    """

    def __init__(self, n_items: int, num_sampled: int, remove_accidental_hits: bool = True) -> None:
        if num_sampled < 1:
            raise ValueError(f"num_sampled must be >= 1, got {num_sampled}")
        self.n_items = int(n_items)
        self.num_sampled = int(num_sampled)
        self.remove_accidental_hits = remove_accidental_hits
        self.sampler = LogUniformSampler(n_items)
        self.exact = self.num_sampled >= self.n_items

    def draw(self, rng: np.random.Generator, device: torch.device | str = "cpu") -> Negatives:
        ids, tries = self.sampler.sample_unique(self.num_sampled, rng)
        log_q = self.sampler.log_expected_count(ids, tries).astype(np.float32)
        return Negatives(torch.from_numpy(ids).to(device), tries, torch.from_numpy(log_q).to(device))

    def loss(
        self, user: torch.Tensor, target: torch.Tensor, target_vec: torch.Tensor, neg: Negatives, neg_vec: torch.Tensor
    ) -> torch.Tensor:
        """user (B, d), target (B,) ids, target_vec (B, d), neg_vec (S, d) rows of ``neg.ids``.

        ``user`` may also be (B, K, d), K interests: each item's logit is then its best inner
        product over the K interests (the "max" readout, the score evaluation merges by)."""
        log_q_true = self.sampler.log_expected_count(target, neg.num_tries)
        if user.ndim == 3:
            true_logit = torch.einsum("bkd,bd->bk", user, target_vec).amax(1)
            sampled_logits = torch.einsum("bkd,sd->bks", user, neg_vec).amax(1)
        else:
            true_logit = (user * target_vec).sum(-1)
            sampled_logits = user @ neg_vec.T
        hits = (neg.ids.unsqueeze(0) == target.unsqueeze(1)) if self.remove_accidental_hits else None
        return sampled_softmax_from_logits(true_logit, sampled_logits, log_q_true, neg.log_q, hits)


def full_softmax_loss(user: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Eq. 9-10 exactly: softmax over all real items 1..n_items (row 0 of ``weight`` excluded).
    A (B, K, d) ``user`` scores each item by its best interest (the "max" readout)."""
    logits = torch.einsum("bkd,nd->bkn", user, weight[1:]).amax(1) if user.ndim == 3 else user @ weight[1:].T
    return F.cross_entropy(logits, target - 1)


def make_loss(kind: str, n_items: int, num_sampled: int) -> SampledSoftmaxLoss:
    """``sampled``: ``num_sampled`` shared negatives per batch; ``full``: every item (``exact``)."""
    if kind == "sampled":
        return SampledSoftmaxLoss(n_items, num_sampled)
    if kind == "full":
        return SampledSoftmaxLoss(n_items, n_items)
    raise ValueError(f"unknown loss {kind!r}: expected 'sampled' or 'full'")
