"""Capsule routing models: MIND's B2I routing and ComiRec-DR's CapsNet routing.

Both follow the authors' ``CapsuleNetwork``: prediction vectors ê_{j|i} (eq. 1), routing softmax over
the K interests (eq. 3) with padded positions' couplings zeroed, squash (eq. 4), three iterations
where the first ones see stop-gradient copies of ê (so only the last pass trains the bilinear map),
and routing logits that never carry a gradient. Everything is batched over B, K and positions.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from . import check_size
from .base import InterestModel, check_align, dense, right_align


def squash(s: torch.Tensor) -> torch.Tensor:
    """Eq. 4 on the last axis: short vectors shrink to ~0, long ones to just below unit length."""
    n2 = (s * s).sum(-1, keepdim=True)
    return s * (n2 / (1.0 + n2) / torch.sqrt(n2 + 1e-9))


def dynamic_routing(hat: torch.Tensor, mask: torch.Tensor, logits: torch.Tensor, iters: int) -> torch.Tensor:
    """Algorithm 1, batched.

    hat: (B, K, T, d) prediction vectors (an expanded view is fine); mask: (B, T) 0/1;
    logits: (B, K, T) initial routing logits b. Returns the (B, K, d) interest capsules.
    """
    if iters < 1:
        raise ValueError(f"routing iterations must be >= 1, got {iters}")
    hat_iter = hat.detach()
    m = mask.unsqueeze(1)
    b = logits.detach()
    # Products and sums rather than einsum: einsum lowers these to many tiny (1 x T) @ (T x d)
    # matrix products and copies ``hat`` into their layout, slower on CPU than streaming it.
    for it in range(iters):
        c = (torch.softmax(b, dim=1) * m).unsqueeze(-1)  # coupling of each position over the K interests
        if it < iters - 1:
            v = squash((c * hat_iter).sum(2))
            b = b + (hat_iter * v.unsqueeze(2)).sum(-1)
        else:
            v = squash((c * hat).sum(2))
    return v


def fixed_routing_logits(n_interests: int, maxlen: int) -> torch.Tensor:
    """The eval-mode draw for models whose interests share one map: truncated N(0, 1), (K, maxlen)."""
    return nn.init.trunc_normal_(torch.empty(n_interests, maxlen), std=1.0, a=-2.0, b=2.0)


def random_routing_logits(training: bool, fixed: torch.Tensor, B: int, T: int, like: torch.Tensor, from_end: bool = False,
                          rows: tuple[int, int] | None = None) -> torch.Tensor:
    """Initial routing logits (B, K, T) for a map shared by the interests (the authors' MIND and
    ``bilinear_type=0``): without them all K capsules would be identical. In training a fresh truncated N(0, 1) draw per batch (torch's global generator, so a
    seed fixes it); in eval the ``fixed`` draw made at construction, so that recommendations are
    deterministic, indexed from the last position when ``from_end`` (right-aligned windows).
    ``like``: a tensor with the device and dtype wanted. ``rows = (start, total)``: the batch is
    rows ``start..start+B`` of a global batch of ``total`` rows split over training processes:
    the global draw is made and these rows are taken, so P processes draw what one does."""
    K = fixed.shape[0]
    if training:
        start, total = rows if rows is not None else (0, B)
        draw = nn.init.trunc_normal_(torch.empty(total, K, T, device=like.device, dtype=like.dtype), std=1.0, a=-2.0, b=2.0)
        return draw if rows is None else draw[start : start + B]
    window = fixed[:, fixed.shape[1] - T :] if from_end else fixed[:, :T]
    return window.unsqueeze(0).expand(B, -1, -1).to(like.dtype)


DR_MAPS = ("position", "interest", "shared")
DR_INITS = ("normal", "glorot")


class ComiRecDR(InterestModel):
    """ComiRec-DR: CapsNet routing from the history to K interest capsules.

    ``dr_map`` chooses the bilinear maps ê_{j|i} = W e_i (the authors' ``bilinear_type``):
    ``"position"`` (type 2, the authors' ComiRec-DR) a separate d x d map per (position, interest),
    ``"interest"`` (type 1) one d x d map per interest shared by all positions, ``"shared"``
    (type 0) one map for all, with routing logits drawn from a truncated N(0, 1) to break the
    symmetry as the authors do for that type (fresh per batch in training, a fixed draw in eval).
    ``dr_init``: ``"normal"`` is the authors' N(0, 1); ``"glorot"`` is TF's default
    (glorot-uniform over d -> K*d). ``align="right"`` places the most recent item at the last
    position before the per-position maps (the authors' windows are left-aligned, so with
    short histories the most recent item sits at a varying position).
    """

    name = "comirec-dr"

    def __init__(
        self,
        n_items: int,
        dim: int = 64,
        n_interests: int = 4,
        maxlen: int = 20,
        routing_iters: int = 3,
        dr_map: str = "shared",
        dr_init: str = "normal",
        align: str = "left",
    ) -> None:
        super().__init__(n_items, dim, n_interests)
        if dr_map not in DR_MAPS:
            raise ValueError(f"dr_map must be one of {', '.join(DR_MAPS)}, got {dr_map!r}")
        if dr_init not in DR_INITS:
            raise ValueError(f"dr_init must be one of {', '.join(DR_INITS)}, got {dr_init!r}")
        check_align(align)
        self.maxlen = check_size("maxlen", maxlen)
        self.routing_iters = check_size("routing_iters", routing_iters)
        self.dr_map = dr_map
        self.align = align
        positions = self.maxlen if dr_map == "position" else 1
        out = dim if dr_map == "shared" else n_interests * dim
        # W[t] maps position t's item embedding to K prediction vectors at once: (T', d, K*d).
        w = torch.empty(positions, dim, out)
        if dr_init == "normal":
            nn.init.normal_(w)
        else:
            bound = math.sqrt(6.0 / (dim + out))
            nn.init.uniform_(w, -bound, bound)
        self.bilinear = nn.Parameter(w)
        if dr_map == "shared":
            self.register_buffer("eval_logits", fixed_routing_logits(n_interests, self.maxlen))

    def encode(self, his: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T = mask.shape
        if T > self.maxlen:
            raise ValueError(f"history has {T} positions but the model was built with maxlen={self.maxlen}")
        if self.align == "right":
            his, mask = right_align(his, mask)
        K, d = self.n_interests, self.dim
        if self.dr_map == "position":
            # One batched matmul over positions: (T, B, d) @ (T, d, K*d) -> (T, B, K*d).
            # Right-aligned windows index the maps from the end: the most recent item always uses
            # map maxlen-1, whatever the number of columns T.
            maps = self.bilinear[self.maxlen - T :] if self.align == "right" else self.bilinear[:T]
            hat = torch.bmm(his.transpose(0, 1), maps)
            hat = hat.view(T, B, K, d).permute(1, 2, 0, 3)  # (B, K, T, d)
        elif self.dr_map == "interest":
            hat = (his @ self.bilinear[0]).view(B, T, K, d).permute(0, 2, 1, 3)
        else:
            hat = (his @ self.bilinear[0]).unsqueeze(1).expand(B, K, T, d)
        if self.dr_map == "shared":
            fixed: torch.Tensor = self.eval_logits  # type: ignore[assignment]
            logits = random_routing_logits(self.training, fixed, B, T, his, from_end=self.align == "right", rows=self.batch_rows)
        else:
            logits = torch.zeros(B, K, T, device=his.device, dtype=his.dtype)
        return dynamic_routing(hat, mask, logits, self.routing_iters)


class MIND(InterestModel):
    """MIND's B2I routing as in the authors' code: one shared bilinear map for all interests,
    routing logits drawn from a truncated N(0, 1) (the shared map would otherwise make all K
    capsules identical), and a ReLU projection of the capsules (the authors' Books setting).

    In training the logits are drawn afresh for every batch (torch's global generator, so a seed
    fixes them); in eval mode a fixed draw made at construction is used so that recommendations
    are deterministic.
    """

    name = "mind"

    def __init__(self, n_items: int, dim: int = 64, n_interests: int = 4, maxlen: int = 20, routing_iters: int = 3, mind_relu: bool = True) -> None:
        super().__init__(n_items, dim, n_interests)
        self.maxlen = check_size("maxlen", maxlen)
        self.routing_iters = check_size("routing_iters", routing_iters)
        self.bilinear = dense(dim, dim)
        # tf.layers.dense(bias_initializer=None) leaves the bias on TF's default glorot initialiser.
        bound = math.sqrt(6.0 / (2 * dim))
        nn.init.uniform_(self.bilinear.bias, -bound, bound)
        self.proj = dense(dim, dim) if mind_relu else None
        self.register_buffer("eval_logits", fixed_routing_logits(n_interests, self.maxlen))

    def encode(self, his: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        B, T = mask.shape
        if T > self.maxlen:
            raise ValueError(f"history has {T} positions but the model was built with maxlen={self.maxlen}")
        hat = self.bilinear(his).unsqueeze(1).expand(B, self.n_interests, T, self.dim)
        fixed: torch.Tensor = self.eval_logits  # type: ignore[assignment]
        logits = random_routing_logits(self.training, fixed, B, T, his, rows=self.batch_rows)
        caps = dynamic_routing(hat, mask, logits, self.routing_iters)
        if self.proj is not None:
            caps = torch.relu(self.proj(caps))
        return caps
