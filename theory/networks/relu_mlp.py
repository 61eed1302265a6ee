"""ReLU multilayer perceptrons F(W, L) as batched ensembles, with exact parameter counts (Sec. 5, Thm 5.1).

The class F(W, L, N) of the paper: networks of L affine maps with ReLU between them, every hidden layer of
width at most W, and at most N nonzero parameters. Here a net has ``depth`` hidden ReLU layers (so L =
depth + 1 affine maps):

    h_0 = input,   h_l = relu(A_l h_{l-1} + b_l)  (l = 1..depth, width W),   f = A_{L} h_depth + b_{L}.

The input is x in R^d, or (x, t) in R^{d+1} for a time-conditioned score network (t appended as a
feature column). The exact number of parameters of one net is

    N(d_in, W, L, d_out) = (d_in + 1) W + (depth - 1)(W + 1) W + (W + 1) d_out.

``ReLUMLP`` holds E member nets as one model built on ``theory.networks.ensemble.StackedLinear`` (one batched
matmul per layer for all members). Members may have *different* widths: a member of width w < W_max is
stored zero-padded to W_max and its padded hidden units are multiplied by a fixed 0/1 mask, so they output
exactly zero and receive exactly zero gradient; the member then computes, to round-off, the width-w net it
would be on its own (same initial weights, drawn from its own generator at its own shape). This lets one
ensemble train seeds x widths at once.
"""

from __future__ import annotations

import math
import numbers
from typing import Sequence

import torch
from torch import nn

from .._validate import as_time, check_dtype, check_int, check_number, check_positive_int, check_tensor
from .ensemble import StackedLinear, member_generators, nonzero_parameters_per_member


def relu_mlp_parameter_count(in_features: int, width: int, depth: int, out_features: int) -> int:
    """Exact number of scalar parameters (weights and biases) of one ReLU MLP with ``depth`` hidden
    layers of width ``width``: (d_in + 1) W + (depth - 1)(W + 1) W + (W + 1) d_out."""
    for value, name in [(in_features, "in_features"), (width, "width"), (depth, "depth"),
                        (out_features, "out_features")]:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(parameter_polynomial(in_features, width, depth, out_features))


def parameter_polynomial(in_features: int, width: float, depth: int, out_features: int) -> float:
    """The count of ``relu_mlp_parameter_count`` as a polynomial in the width, (d_in + 1) W + (depth - 1)(W + 1) W +
    (W + 1) d_out, at a real W (for the size of an interpolated width such as W*)."""
    return (in_features + 1) * width + (depth - 1) * (width + 1) * width + (width + 1) * out_features


def _uniform(shape, bound: float, generator: torch.Generator) -> torch.Tensor:
    """U(-bound, bound) in float64 from ``generator`` (the init of ``StackedLinear`` / ``nn.Linear``)."""
    return (torch.rand(*shape, generator=generator, dtype=torch.float64) * 2 - 1) * bound


class ReLUMLP(nn.Module):
    """E ReLU MLPs R^{d_in} -> R^{d_out} with ``depth`` hidden layers, member e of width ``widths[e]``.

    Parameters
    ----------
    dim : d, the dimension of x (and of the output).
    widths : one int (every member) or a sequence of E ints (member e's hidden width).
    depth : number of hidden ReLU layers (L = depth + 1 affine maps).
    seeds : E seeds; member e's initial weights are drawn from ``torch.Generator().manual_seed(seeds[e])``
        layer by layer (weight then bias), U(-1/sqrt(fan_in), 1/sqrt(fan_in)) at its own width.
    time_input : if True the input is (x, t) (t appended as one feature column), else x.
    out_scale : multiplies the output layer's initial bound (0 gives a zero-initialised output).
    """

    def __init__(self, dim: int, widths: int | Sequence[int], depth: int, seeds: Sequence[int], *,
                 time_input: bool = False, out_scale: float = 1.0, dtype: torch.dtype = torch.float32,
                 device=None):
        super().__init__()
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ValueError(f"dim must be a positive integer, got {dim!r}")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth <= 0:
            raise ValueError(f"depth must be a positive integer, got {depth!r}")
        seeds = [check_int(s, "seeds") for s in seeds]
        if not seeds:
            raise ValueError("seeds must name at least one ensemble member")
        if isinstance(widths, (str, bytes)) or not (isinstance(widths, numbers.Integral) or hasattr(widths, "__len__")):
            raise ValueError(f"widths must be a positive int or {len(seeds)} positive ints (one per seed), "
                             f"got {widths!r}")
        widths = [widths] * len(seeds) if isinstance(widths, numbers.Integral) else list(widths)
        widths = [check_positive_int(w, "widths") for w in widths]
        out_scale = check_number(out_scale, "out_scale", low=0.0)
        check_dtype(dtype)
        if len(widths) != len(seeds) or any(w <= 0 for w in widths):
            raise ValueError(f"widths must be a positive int or {len(seeds)} positive ints (one per seed), "
                             f"got {widths}")
        self.dim, self.depth, self.time_input = dim, depth, time_input
        self.in_features = dim + (1 if time_input else 0)
        self.widths, self.seeds, self.members = widths, seeds, len(seeds)
        self.max_width = max(widths)
        sizes = [self.in_features] + [self.max_width] * depth + [dim]
        dummy = member_generators([0] * self.members)  # StackedLinear's own draws are overwritten below
        self.layers = nn.ModuleList(
            StackedLinear(sizes[i], sizes[i + 1], dummy, dtype=torch.float64) for i in range(depth + 1))
        mask = torch.zeros(self.members, 1, self.max_width, dtype=torch.float64)
        for e, w in enumerate(widths):
            mask[e, 0, :w] = 1.0
        self.register_buffer("mask", mask)
        with torch.no_grad():
            for e, (w, g) in enumerate(zip(widths, member_generators(seeds))):
                own = [self.in_features] + [w] * depth + [dim]
                for i, layer in enumerate(self.layers):
                    fan_in, fan_out = own[i], own[i + 1]
                    bound = (out_scale if i == depth else 1.0) / math.sqrt(fan_in)
                    layer.weight[e].zero_()
                    layer.bias[e].zero_()
                    layer.weight[e, :fan_in, :fan_out] = _uniform((fan_in, fan_out), bound, g)
                    layer.bias[e, :, :fan_out] = _uniform((1, fan_out), bound, g)
        self.to(dtype=dtype, device=device)

    def forward(self, x: torch.Tensor, t: torch.Tensor | float | None = None) -> torch.Tensor:
        """f_e(x) (or f_e(x, t)) for every member: x is (B, d) (shared by all members) or (E, B, d);
        t (time-conditioned nets only) is a number, (B,) or (E, B). Returns (E, B, d)."""
        check_tensor(x, "x", shape_text=f"(B, {self.dim}) or ({self.members}, B, {self.dim})")
        if x.ndim == 2:
            x = x.unsqueeze(0).expand(self.members, -1, -1)
        if x.ndim != 3 or x.shape[0] != self.members or x.shape[2] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}) or ({self.members}, B, {self.dim}), "
                             f"got {tuple(x.shape)}")
        if self.time_input:
            if t is None:
                raise ValueError("t is required: this network takes (x, t)")
            tt = as_time(t, "t", dtype=x.dtype, device=x.device)
            tt = tt.expand(x.shape[:2]) if tt.ndim < 2 else tt
            if tt.shape != x.shape[:2]:
                raise ValueError(f"t must be a number, (B,) or (E, B), got shape {tuple(tt.shape)}")
            x = torch.cat([x, tt.unsqueeze(-1)], dim=-1)
        elif t is not None:
            raise ValueError("t given to a network built without time_input")
        h = x
        for layer in self.layers[:-1]:
            h = torch.relu(layer(h)) * self.mask.to(h.dtype)
        return self.layers[-1](h)

    def parameter_counts(self) -> list[int]:
        """Exact parameter count of each member at its own width (``relu_mlp_parameter_count``)."""
        return [relu_mlp_parameter_count(self.in_features, w, self.depth, self.dim) for w in self.widths]

    def nonzero_parameter_counts(self, atol: float = 0.0) -> torch.Tensor:
        """Number of parameters with |value| > atol of each member, (E,) (padding is exactly zero and
        never counted; ``theory.networks.ensemble.nonzero_parameters_per_member``)."""
        return nonzero_parameters_per_member(self, atol)

    def member(self, e: int) -> "ReLUMLP":
        """A one-member copy of member e at its own width (unpadded), sharing nothing with this one."""
        if not 0 <= e < self.members:
            raise ValueError(f"e must be in [0, {self.members}), got {e}")
        w = self.widths[e]
        p = next(self.parameters())
        single = ReLUMLP(self.dim, [w], self.depth, [self.seeds[e]], time_input=self.time_input,
                         dtype=p.dtype, device=p.device)
        with torch.no_grad():
            for src, dst in zip(self.layers, single.layers):
                dst.weight[0] = src.weight[e, :dst.in_features, :dst.out_features]
                dst.bias[0] = src.bias[e, :, :dst.out_features]
        return single

    def extra_repr(self) -> str:
        return f"members={self.members}, dim={self.dim}, widths={self.widths}, depth={self.depth}, " \
               f"time_input={self.time_input}"
