"""A time-conditioned score network for vectors, as an ensemble of E independent members.

Architecture (memsep's choice; the paper publishes none): a residual MLP

    u      = log t,   e(t) = [sin(w_k u), cos(w_k u)]_{k=1..F}     (fixed geometric frequencies w_k)
    x_in   = x / sqrt(alpha_t^2 v + sigma_t^2)                      (v = the data's per-coordinate variance:
                                                                      the input keeps unit scale at every t)
    h_0    = W_in [x_in, e(t)] + b_in
    h_l    = h_{l-1} + W_l2 silu(W_l1 silu(h_{l-1}) + b_l1) + b_l2,   l = 1..depth
    eps^   = W_out silu(h_depth) + b_out                            (W_out, b_out start at zero)

The network predicts the noise eps of X_t = alpha_t X_0 + sigma_t eps; its score is
s(x, t) = -eps^(x, t) / sigma_t, which is the minimiser of the paper's DSM loss when eps^ minimises
E|eps^ - eps|^2 (see ``theory.training.dsm``). Every layer is a ``theory.networks.ensemble.StackedLinear``, so E nets
of one shape (seeds, weight decays, training sets) run as one batched model.

Exact size, for input dimension d, width w, depth D (residual blocks) and F frequencies:

    P(d, w, D, F) = (d + 2F) w + w  +  D (2 w^2 + 2 w)  +  w d + d.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from .._validate import as_time, check_dtype, check_int, check_number, check_positive_int, check_tensor
from ..laws import forward
from .ensemble import StackedLinear, member_generators, parameters_per_member

DEFAULT_FREQUENCIES = 8
DEFAULT_DEPTH = 2


def score_net_parameter_count(dim: int, width: int, depth: int = DEFAULT_DEPTH,
                    frequencies: int = DEFAULT_FREQUENCIES) -> int:
    """Exact number of trainable parameters of one member:
    P = (d + 2F) w + w + D (2 w^2 + 2 w) + w d + d (module docstring)."""
    d, w = check_positive_int(dim, "dim"), check_positive_int(width, "width")
    D, nf = check_positive_int(depth, "depth"), check_positive_int(frequencies, "frequencies")
    return (d + 2 * nf) * w + w + D * (2 * w * w + 2 * w) + w * d + d


def width_for_budget(dim: int, budget: int, depth: int = DEFAULT_DEPTH,
                     frequencies: int = DEFAULT_FREQUENCIES) -> int:
    """The width w >= 1 whose exact count P(d, w, D, F) is closest to ``budget`` (solves the quadratic
    2 D w^2 + (2d + 2F + 1 + 2D) w + d = budget, then checks the neighbouring integers)."""
    check_positive_int(budget, "budget")
    dim, depth = check_positive_int(dim, "dim"), check_positive_int(depth, "depth")
    frequencies = check_positive_int(frequencies, "frequencies")
    a = 2 * depth
    b = 2 * dim + 2 * frequencies + 1 + 2 * depth
    c = dim - budget
    root = (-b + math.sqrt(b * b - 4 * a * c)) / (2 * a)
    candidates = {max(1, int(math.floor(root)) + k) for k in (-1, 0, 1, 2)}
    return min(candidates, key=lambda w: (abs(score_net_parameter_count(dim, w, depth, frequencies) - budget), w))


class ScoreNet(nn.Module):
    """An ensemble of E residual-MLP noise predictors (module docstring), member e initialised from
    ``seeds[e]``.

    ``forward(x, t)``: x of shape (E, B, d), t of shape (B,), (E, B) or a scalar; returns eps^ (E, B, d).
    ``score(x, t)`` = -eps^ / sigma_t.  ``data_variance`` is v in the input scaling.
    """

    def __init__(self, dim: int, width: int, depth: int = DEFAULT_DEPTH, *, seeds: Sequence[int] = (0,),
                 frequencies: int = DEFAULT_FREQUENCIES, data_variance: float = 1.0, dtype=torch.float32):
        super().__init__()
        self.dim, self.width = check_positive_int(dim, "dim"), check_positive_int(width, "width")
        self.depth = check_positive_int(depth, "depth")
        self.frequencies = check_positive_int(frequencies, "frequencies")
        self.data_variance = check_number(data_variance, "data_variance", low=0.0, low_open=True)
        check_dtype(dtype)
        self.seeds = tuple(check_int(s, "seeds") for s in seeds)
        gens = member_generators(self.seeds)
        self.members = len(gens)
        self.register_buffer("omega", torch.logspace(math.log10(0.1), math.log10(10.0), frequencies,
                                                     dtype=dtype))
        self.inp = StackedLinear(dim + 2 * frequencies, width, gens, dtype=dtype)
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            self.blocks.append(nn.ModuleList([StackedLinear(width, width, gens, dtype=dtype),
                                              StackedLinear(width, width, gens, dtype=dtype)]))
        self.out = StackedLinear(width, dim, gens, scale=0.0, dtype=dtype)

    @property
    def parameters_per_member(self) -> int:
        return parameters_per_member(self)

    def _times(self, t, B: int, like: torch.Tensor) -> torch.Tensor:
        t = as_time(t, "t", dtype=like.dtype, device=like.device)
        if t.ndim == 0:
            t = t.expand(B)
        if t.ndim == 1:
            if t.shape[0] != B:
                raise ValueError(f"t must have shape ({B},) or ({self.members}, {B}), got {tuple(t.shape)}")
            t = t.expand(self.members, B)
        if t.shape != (self.members, B):
            raise ValueError(f"t must have shape ({B},) or ({self.members}, {B}), got {tuple(t.shape)}")
        return t

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        return self._eps(x, self._coefficients(x, t))

    def _coefficients(self, x: torch.Tensor, t) -> forward.TimeCoefficients:
        check_tensor(x, "x", shape_text=f"({self.members}, B, {self.dim})")
        if x.ndim != 3 or x.shape[0] != self.members or x.shape[2] != self.dim:
            raise ValueError(f"x must have shape ({self.members}, B, {self.dim}), got {tuple(x.shape)}")
        return forward.coefficients(self._times(t, x.shape[1], x), allow_zero=False)

    def _eps(self, x: torch.Tensor, tc: forward.TimeCoefficients) -> torch.Tensor:
        x_in = x * torch.rsqrt(forward._marginal_variance(tc, self.data_variance))[..., None]
        phase = torch.log(tc.t)[..., None] * self.omega
        h = self.inp(torch.cat([x_in, torch.sin(phase), torch.cos(phase)], dim=-1))
        for first, second in self.blocks:
            h = h + second(F.silu(first(F.silu(h))))
        return self.out(F.silu(h))

    def score(self, x: torch.Tensor, t) -> torch.Tensor:
        """s(x, t) = -eps^(x, t) / sigma_t, (E, B, d) (t > 0)."""
        tc = self._coefficients(x, t)
        return forward._score_from_eps(self._eps(x, tc), tc)

    def member(self, e: int) -> "ScoreNet":
        """A one-member ``ScoreNet`` holding a copy of member e's weights (same architecture, seed and input
        scaling): evaluating it costs 1/E of the ensemble, and its outputs equal member e's (to round-off)."""
        if not 0 <= int(e) < self.members:
            raise ValueError(f"member index must be in [0, {self.members}), got {e}")
        param = next(self.parameters())
        one = ScoreNet(self.dim, self.width, self.depth, seeds=[self.seeds[e]], frequencies=self.frequencies,
                       data_variance=self.data_variance, dtype=param.dtype).to(param.device)
        with torch.no_grad():
            for (name, mine), (_, theirs) in zip(self.named_parameters(), one.named_parameters()):
                theirs.copy_(mine[e:e + 1])
        one.train(self.training)
        return one

    def flat_score(self, *, dtype=torch.float64):
        """``score_fn(x, t)`` on the members' batches laid end to end: x of shape (E * B, d) (rows
        e*B .. (e+1)*B - 1 belong to member e), t a scalar or (E * B,); returns (E * B, d) in ``dtype``.
        This is the signature ``theory.evaluation.samplers`` and ``theory.evaluation.likelihood`` take, so one call samples
        (or evaluates) every member at once. Each output row depends on its own input row only, and the
        function is differentiable in x (for exact divergences)."""
        param = next(self.parameters())
        E = self.members

        def score_fn(x: torch.Tensor, t) -> torch.Tensor:
            check_tensor(x, "x", shape_text=f"(E * B, {self.dim})")
            if x.ndim != 2 or x.shape[0] % E != 0:
                raise ValueError(f"x must have shape (E * B, {self.dim}) with E = {E}, got {tuple(x.shape)}")
            B = x.shape[0] // E
            t = as_time(t, "t", dtype=param.dtype, device=x.device)
            t = t.expand(E * B) if t.ndim == 0 else t.to(param.dtype)
            out = self.score(x.to(param.dtype).reshape(E, B, self.dim), t.reshape(E, B))
            return out.reshape(E * B, self.dim).to(dtype)

        return score_fn


def build_score_net(dim: int, budget: int, *, depth: int = DEFAULT_DEPTH, seeds: Sequence[int] = (0,),
                    frequencies: int = DEFAULT_FREQUENCIES, data_variance: float = 1.0,
                    dtype=torch.float32, device=None) -> tuple[ScoreNet, int]:
    """A ``ScoreNet`` whose per-member size is as close as possible to ``budget`` parameters, and its
    exact count (equal to ``score_net_parameter_count`` and to the module's own tally)."""
    width = width_for_budget(dim, budget, depth, frequencies)
    net = ScoreNet(dim, width, depth, seeds=seeds, frequencies=frequencies, data_variance=data_variance,
                   dtype=dtype)
    if device is not None:
        net = net.to(device)
    return net, net.parameters_per_member
