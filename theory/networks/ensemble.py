"""Ensembles of E independent networks of one shape, trained as one model by batched matmuls.

``StackedLinear`` holds E weight matrices as one (E, in, out) tensor and applies them with ``baddbmm``
to an (E, B, in) input: E small networks cost one kernel launch per layer instead of E. Members share no
parameter, and a loss that is a *sum* of per-member losses gives each member exactly the gradient it
would get alone; element-wise optimisers (SGD, Adam, AdamW with weight decay) then keep them independent,
so an ensemble of E nets equals E separate trainings (to round-off), which the tests check.

Member e draws its initial weights from its own generator ``generators[e]``, in layer order, so a
member's initialisation depends only on its seed, not on the ensemble it sits in.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .._validate import check_int


def per_member(value, members: int, name: str) -> list:
    """``value`` broadcast to one entry per ensemble member: a list, tuple or 1-D tensor must have
    ``members`` entries; anything else (a number, a law) is repeated."""
    if isinstance(value, torch.Tensor) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (list, tuple)) or isinstance(value, torch.Tensor):
        if isinstance(value, torch.Tensor) and value.ndim != 1 or len(value) != members:
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else (len(value),)
            raise ValueError(f"{name} must be a scalar or have shape ({members},) (one entry per member), "
                             f"got {shape}")
        return [v.item() if isinstance(v, torch.Tensor) else v for v in value]
    return [value] * members


def member_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU generator per ensemble member, seeded with ``seeds[e]``."""
    if len(seeds) == 0:
        raise ValueError("seeds must name at least one ensemble member")
    return [torch.Generator().manual_seed(check_int(s, "seeds")) for s in seeds]


class StackedLinear(nn.Module):
    """E independent affine maps R^in -> R^out: y[e] = x[e] @ W[e] + b[e], for x of shape (E, B, in).

    Initialisation per member, as ``torch.nn.Linear``: W, b ~ U(-1/sqrt(in), 1/sqrt(in)) (``scale``
    multiplies the bound; ``scale=0`` gives zeros, e.g. for a zero-initialised output layer).
    """

    def __init__(self, in_features: int, out_features: int, generators: Sequence[torch.Generator], *,
                 scale: float = 1.0, bias: bool = True, dtype=torch.float32):
        super().__init__()
        self.in_features, self.out_features, self.members = in_features, out_features, len(generators)
        bound = scale / math.sqrt(in_features)
        w = torch.stack([(torch.rand(in_features, out_features, generator=g, dtype=torch.float64) * 2 - 1) * bound
                         for g in generators])
        self.weight = nn.Parameter(w.to(dtype))
        if bias:
            b = torch.stack([(torch.rand(1, out_features, generator=g, dtype=torch.float64) * 2 - 1) * bound
                             for g in generators])
            self.bias = nn.Parameter(b.to(dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[0] != self.members or x.shape[2] != self.in_features:
            raise ValueError(f"input must have shape ({self.members}, B, {self.in_features}), got {tuple(x.shape)}")
        if self.bias is None:
            return torch.bmm(x, self.weight)
        return torch.baddbmm(self.bias, x, self.weight)

    def extra_repr(self) -> str:
        return f"members={self.members}, in={self.in_features}, out={self.out_features}"


def parameters_per_member(module: nn.Module) -> int:
    """Number of scalar parameters of one member of a stacked ensemble (every parameter has the member
    axis first)."""
    total = 0
    for p in module.parameters():
        total += p[0].numel()
    return total


def nonzero_parameters_per_member(module: nn.Module, atol: float = 0.0) -> torch.Tensor:
    """Number of parameters with |value| > atol, for each member, (E,) int64 on the CPU (zero padding
    of a masked member is never counted)."""
    counts = None
    for p in module.parameters():
        c = (p.detach().abs() > atol).reshape(p.shape[0], -1).sum(1).cpu()
        counts = c if counts is None else counts + c
    return counts
