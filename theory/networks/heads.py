"""Attention-head masking and Algorithm 1 of the paper (small-t head importance, prune the least important).

A head mask is a (depth, heads) tensor of gates (1 keeps a head, 0 removes it) written into the
``head_gate`` buffers of the model's attention layers (theory.networks.dit.GatedAttention); ``masked_heads`` switches
a mask on for the duration of a ``with`` block and restores the previous gates exactly.

Importance (ablation score) of head (l, h), with common random numbers for both terms:

    I_{l,h} = E_{x0 ~ train, u ~ Beta(a, b), t = t(u), z ~ N(0, I)} [ l(x0, t, z; mask without (l, h)) - l(x0, t, z) ],

l the denoising loss of theory.training.image (sigma_t^2-weighted DSM), t(u) the normalised-time map
to [t0, T]; Beta(0.8, 2) piles its mass near u = 0, i.e. small t, where memorization lives. Each I_{l,h}
comes with its standard error over the per-sample differences. The time law is an argument: ``TIME_LAWS``
names the paper's small-t law Beta(0.8, 2) and two ablations, uniform Beta(1, 1) and large-t Beta(2, 0.8)
(the mirror image of the small-t law). ``importance_gap`` says how well the pruning boundary is resolved:
the gap between the last pruned and the first kept head in standard errors. The optional first-order Taylor score is
-dL/dg_{l,h} at g = 1 (the linearised change of the same loss when the gate goes from 1 to 0).
Algorithm 1 removes the round(ratio * #heads) heads of least importance; random pruning removes as many
heads drawn uniformly without replacement.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch
from torch import nn

from .._validate import (as_tensor, check_choice, check_finite, check_generator, check_number, check_positive_int)
from ..estimators.estimate import RunningMoments
from ..training.image import _check_images, _denoising_loss, normalised_times


TIME_LAWS = {"small": (0.8, 2.0), "uniform": (1.0, 1.0), "large": (2.0, 0.8)}
"""Beta(a, b) laws of the normalised time u for the importance: the paper's small t, and two ablations."""


def gate_buffers(model: nn.Module) -> list[torch.Tensor]:
    """The ``head_gate`` buffers of the model's attention layers, in module order (one per layer)."""
    gates = [m.head_gate for m in model.modules() if isinstance(getattr(m, "head_gate", None), torch.Tensor)]
    if not gates:
        raise ValueError("model has no attention layer with a head_gate buffer")
    return gates


def get_head_mask(model: nn.Module) -> torch.Tensor:
    """The current gates as a (depth, heads) tensor (a copy)."""
    return torch.stack([g.detach().clone() for g in gate_buffers(model)])


def set_head_mask(model: nn.Module, mask: torch.Tensor) -> None:
    """Write a (depth, heads) mask into the gates (permanently; see ``masked_heads`` for a temporary one).
    ``mask``: a tensor, array or list of finite gates (1 keeps a head, 0 removes it)."""
    gates = gate_buffers(model)
    shape = (len(gates), gates[0].numel())
    mask = check_finite(as_tensor(mask, "mask"), "mask")
    if tuple(mask.shape) != shape:
        raise ValueError(f"mask must have shape {shape}, got {tuple(mask.shape)}")
    with torch.no_grad():
        for g, row in zip(gates, mask):
            g.copy_(row.to(g))


@contextlib.contextmanager
def masked_heads(model: nn.Module, mask: torch.Tensor):
    """``with masked_heads(model, mask): ...`` runs the block with ``mask`` multiplied into the current
    gates (so an already-pruned head stays pruned) and restores the previous gates exactly afterwards."""
    saved = get_head_mask(model)
    mask = check_finite(as_tensor(mask, "mask"), "mask")
    try:
        set_head_mask(model, saved * mask.to(saved))
        yield model
    finally:
        set_head_mask(model, saved)


def single_head_mask(shape: tuple[int, int], layer: int, head: int, *, device=None) -> torch.Tensor:
    """All ones except a 0 at (layer, head)."""
    mask = torch.ones(shape, device=device)
    mask[layer, head] = 0.0
    return mask


class HeadImportance(NamedTuple):
    """Per-head importance (depth, heads): mean, its standard error, and the number of samples per head.
    ``stderr`` is None when n < 2 (``method="taylor"`` with ``draws=1``: one draw has no standard error)."""

    mean: torch.Tensor
    stderr: torch.Tensor | None
    n: int


def head_importance(model: nn.Module, images: torch.Tensor, *, draws: int, batch_size: int, t0: float,
                    T: float, generator: torch.Generator, beta: tuple = (0.8, 2.0), schedule: str = "vp",
                    method: str = "ablation") -> HeadImportance:
    """Algorithm 1's score of every attention head (module docstring), averaged over ``draws`` batches of
    ``batch_size`` training images (drawn with replacement), each with its own t ~ t(Beta(a, b)) and noise,
    the same for every head (common random numbers). ``method``: ``ablation`` (exact loss increase when
    the head is masked, one forward per head) or ``taylor`` (first-order, -dL/dg, one backward per batch;
    its standard error is over batches). Heads already masked score 0. ``images`` (N, C, H, W) float and
    finite; ``generator`` a torch.Generator."""
    check_choice(method, "method", ("ablation", "taylor"))
    draws, batch_size = check_positive_int(draws, "draws"), check_positive_int(batch_size, "batch_size")
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    device = next(model.parameters()).device
    images = _check_images(images).to(device)
    base_mask = get_head_mask(model)
    L, H = base_mask.shape
    moments = [[RunningMoments() for _ in range(H)] for _ in range(L)]
    was_training = model.training
    model.eval()
    try:
        for _ in range(draws):
            idx = torch.randint(images.shape[0], (batch_size,), generator=generator, device=generator.device)
            x0 = images[idx.to(device)]
            t = normalised_times(batch_size, t0, T, generator, beta=beta, schedule=schedule, device=device)
            noise = torch.randn(x0.shape, generator=generator, device=generator.device, dtype=x0.dtype).to(device)
            if method == "ablation":
                with torch.no_grad():
                    base = _denoising_loss(model, x0, t, noise).double()
                    for l in range(L):
                        for h in range(H):
                            if base_mask[l, h] == 0:
                                moments[l][h].update(torch.zeros(1))
                                continue
                            with masked_heads(model, single_head_mask((L, H), l, h, device=device)):
                                masked = _denoising_loss(model, x0, t, noise).double()
                            moments[l][h].update(masked - base)
            else:
                gates = gate_buffers(model)
                for g in gates:
                    g.requires_grad_(True)
                try:
                    loss = _denoising_loss(model, x0, t, noise).mean()
                    grads = torch.autograd.grad(loss, gates)
                finally:
                    for g in gates:
                        g.requires_grad_(False)
                for l in range(L):
                    for h in range(H):
                        moments[l][h].update(-grads[l][h].double() * base_mask[l, h].double())
    finally:
        model.train(was_training)
    n = moments[0][0].n
    mean = torch.tensor([[m.mean for m in row] for row in moments], dtype=torch.float64)
    if n < 2:
        return HeadImportance(mean, None, n)
    stderr = torch.tensor([[m.estimate().stderr for m in row] for row in moments], dtype=torch.float64)
    return HeadImportance(mean, stderr, n)


def pruned_count(total: int, ratio: float) -> int:
    """Number of heads to remove: round(ratio * total) (at least 0, at most total)."""
    ratio = check_number(ratio, "ratio", low=0.0, high=1.0)
    return int(round(ratio * total))


def prune_mask(importance: torch.Tensor, ratio: float, *, which: str = "least",
               keep: torch.Tensor | None = None) -> torch.Tensor:
    """Algorithm 1's mask: zeros at the round(ratio * #heads) heads of least (``which='least'``, the
    paper) or most (``'most'``, an ablation) importance, ties broken by position. Heads with ``keep == 0``
    (already pruned) are never counted among the candidates."""
    check_choice(which, "which", ("least", "most"))
    importance = check_finite(as_tensor(importance, "importance"), "importance")
    flat = importance.reshape(-1).to(torch.float64)
    if keep is not None:
        keep = check_finite(as_tensor(keep, "keep", device=flat.device), "keep")
        if keep.numel() != flat.numel():
            raise ValueError(f"keep must have the shape of importance {tuple(importance.shape)}, got {tuple(keep.shape)}")
    live = torch.ones_like(flat, dtype=torch.bool) if keep is None else keep.reshape(-1).to(flat.device) != 0
    count = pruned_count(int(live.sum()), ratio)
    key = torch.where(live, flat if which == "least" else -flat, torch.full_like(flat, torch.inf))
    order = torch.sort(key, stable=True).indices
    mask = torch.ones_like(flat) if keep is None else keep.reshape(-1).to(flat)
    mask[order[:count]] = 0.0
    return mask.reshape(importance.shape).to(torch.float32)


def importance_gap(importance: HeadImportance, ratio: float, *, which: str = "least") -> float:
    """How clearly the pruning boundary of ``prune_mask(importance.mean, ratio, which=which)`` is resolved:
    with the heads ordered as the mask orders them (ascending importance for ``least``, descending for
    ``most``) and c = round(ratio * #heads) of them pruned,

        z = |I_(c+1) - I_(c)| / sqrt(se_(c)^2 + se_(c+1)^2),

    the gap between the last pruned and the first kept head in standard errors (the two estimates treated
    as independent: conservative when common random numbers correlate them positively). z < 2 means the
    data cannot tell which of the two heads is less important, so the mask is partly a draw. ``inf`` when
    nothing or everything is pruned (no boundary) or both standard errors are 0 with distinct values."""
    if which not in ("least", "most"):
        raise ValueError(f"which must be 'least' or 'most', got {which!r}")
    mean, se = importance.mean.reshape(-1).double(), importance.stderr.reshape(-1).double()
    count = pruned_count(mean.numel(), ratio)
    if count == 0 or count == mean.numel():
        return float("inf")
    order = torch.sort(mean if which == "least" else -mean, stable=True).indices
    last, first = order[count - 1], order[count]
    gap = float((mean[first] - mean[last]).abs())
    scale = float(torch.sqrt(se[last] ** 2 + se[first] ** 2))
    if scale == 0.0:
        return float("inf") if gap > 0 else 0.0
    return gap / scale


def random_prune_mask(shape: tuple[int, int], ratio: float, generator: torch.Generator) -> torch.Tensor:
    """Random pruning baseline: zeros at round(ratio * #heads) heads drawn uniformly without replacement."""
    shape = tuple(check_positive_int(s, "shape") for s in shape)
    if len(shape) != 2:
        raise ValueError(f"shape must be (depth, heads), got {shape}")
    check_generator(generator, "generator", "cpu")
    total = shape[0] * shape[1]
    mask = torch.ones(total)
    mask[torch.randperm(total, generator=generator)[:pruned_count(total, ratio)]] = 0.0
    return mask.reshape(shape)
