"""Regression of a ReLU network onto a known score at a fixed time t (Sec. 5, Thm 5.1 read empirically).

Each member e of a ``ReLUMLP`` ensemble is fitted to the score of its own law (the true law, a
``GaussianMixture``, or the empirical law of a training set, an ``EmpiricalLaw``) at its own time t_e, on
fresh points X ~ P_{t_e} drawn every step from its own generator. The loss compares normalised scores,
sigma_t s, which are O(1) at every t (for the empirical law at small t, -(x - alpha_t x_i)/sigma_t = -z
near training point i):

    loss_e = mean_batch | sigma_t s_net,e(x) - sigma_t grad log p_t(x) |^2,     loss = sum_e loss_e,

where s_net is read from the raw output f either as a score (sigma_t s_net = f) or, by default, as a
denoiser (s_net = (alpha_t f - x)/sigma_t^2, see ``normalised_output``).

minimised by Adam(W) with the warm-up + cosine learning-rate schedule of ``theory.training.schedule``
(decaying to 0). The loss is a sum of per-member losses and the
optimiser is element-wise, so each member trains exactly as it would alone (to round-off).

The accuracy is the relative L2 error on fresh points from the same law,

    R = E |s_net - s|^2 / E |s|^2      (s_net = f / sigma_t; the sigma_t cancels),

with a delta-method standard error: the samples v_i = R^ + (a_i - R^ b_i) / mean(b), a_i = |f - sigma s|^2,
b_i = |sigma s|^2, have mean exactly R^ and standard error that of the ratio estimator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .._validate import check_choice, check_int, check_number, check_positive_int
from ..laws import forward
from ..estimators.estimate import Estimate, RunningMoments
from ..laws.law import NoisedLaw
from ..networks.ensemble import per_member
from ..networks.relu_mlp import ReLUMLP
from .schedule import learning_rate


PARAMETERISATIONS = ("score", "denoiser")


def normalised_output(out: torch.Tensor, x: torch.Tensor, t: torch.Tensor, parameterisation: str) -> torch.Tensor:
    """The network's normalised score sigma_t s_net(x) = -eps from its raw output f:

        "score":     sigma_t s_net = f;
        "denoiser":  f estimates E[X_0 | X_t = x], so sigma_t s_net = -eps = (alpha_t f - x) / sigma_t
                     (``theory.laws.forward.eps_from_denoiser``).

    The denoiser form hard-wires the linear part -x/sigma_t^2 of the score (a skip connection); the net
    then learns the O(1) posterior mean, and it must resolve the score to the same accuracy. ``t`` is a
    leading prefix of ``out``'s shape (e.g. one time per member, (E,), against (E, B, d))."""
    if parameterisation == "score":
        return out
    if parameterisation == "denoiser":
        return -forward._eps_from_denoiser(out, x, forward._coefficients(t, x))
    raise ValueError(f"parameterisation must be one of {PARAMETERISATIONS}, got {parameterisation!r}")


@dataclass(frozen=True)
class RegressionConfig:
    """Training protocol. ``block_steps`` steps' worth of points are drawn (and their scores computed)
    at once per member, which changes the data stream, so it is part of the protocol."""

    steps: int = 2000
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 0.0
    warmup: int = 50
    block_steps: int = 100
    eval_points: int = 4096
    parameterisation: str = "denoiser"

    def __post_init__(self):
        if self.parameterisation not in PARAMETERISATIONS:
            raise ValueError(f"parameterisation must be one of {PARAMETERISATIONS}, got {self.parameterisation!r}")
        for name in ("steps", "batch_size", "block_steps"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.eval_points, "eval_points", minimum=2)      # for the standard error
        check_number(self.lr, "lr", low=0.0, low_open=True)
        check_number(self.weight_decay, "weight_decay", low=0.0)
        check_positive_int(self.warmup, "warmup", minimum=0)


@dataclass
class FitResult:
    """Per member: the relative L2 error estimate, and the final training loss (mean of the last 10%)."""

    rel_error: list
    final_loss: list


def normalised_targets(law: NoisedLaw, t: float, m: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """m points X ~ P_t of ``law`` and their normalised scores sigma_t grad log p_t(X), both (m, d)."""
    x = law.sample(m, t, generator)
    return x, float(forward.sigma(t)) * law.score(x, t)


def _member_laws(net: ReLUMLP, laws, t) -> tuple[list, list]:
    """One law (a NoisedLaw of the net's dimension) and one time t > 0 (a finite number) per member."""
    laws = per_member(laws, net.members, "laws")
    for law in laws:
        if not isinstance(law, NoisedLaw):
            raise ValueError(f"laws must be NoisedLaws (one, or one per member), got {type(law).__name__}")
        if law.dim != net.dim:
            raise ValueError(f"laws must live in dimension {net.dim}, got {law.dim}")
    times = [check_number(v, "t", low=0.0, low_open=True) for v in per_member(t, net.members, "t")]
    return laws, times


def _seeds(seeds, members: int, name: str) -> list[int]:
    if isinstance(seeds, (str, bytes)) or not hasattr(seeds, "__len__") or len(seeds) != members:
        n = len(seeds) if hasattr(seeds, "__len__") else seeds
        raise ValueError(f"{name} must have one seed per member ({members}), got {n!r}")
    return [check_int(s, name) for s in seeds]


def fit_score(net: ReLUMLP, laws: NoisedLaw | Sequence[NoisedLaw], t: float | Sequence[float],
              config: RegressionConfig, data_seeds: Sequence[int]) -> FitResult:
    """Train every member of ``net`` (in place) to sigma_t * score of its law at its t, then measure its
    relative L2 error E|s_net - s|^2 / E|s|^2 on ``eval_points`` fresh points.

    ``laws`` and ``t`` are shared or one per member; member e's training points come from
    ``Generator().manual_seed(data_seeds[e])`` and its evaluation points from seed
    ``data_seeds[e] + 1_000_003``, so a member's run depends only on its own seeds, law, t and width.
    """
    E = net.members
    if not isinstance(config, RegressionConfig):
        raise TypeError(f"config must be a RegressionConfig, got {type(config).__name__}")
    laws, times = _member_laws(net, laws, t)
    data_seeds = _seeds(data_seeds, E, "data_seeds")
    param = next(net.parameters())
    dtype, device = param.dtype, param.device
    gens = [torch.Generator(device=laws[e].device).manual_seed(int(data_seeds[e])) for e in range(E)]
    t_in = torch.tensor(times, dtype=dtype, device=device)[:, None] if net.time_input else None
    tc = forward.coefficients(torch.tensor(times, dtype=torch.float64, device=device))

    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: learning_rate(k, lr=1.0, steps=config.steps,
                                                                            warmup=config.warmup, final_fraction=0.0))
    B = config.batch_size
    tail = max(1, config.steps // 10)
    tail_sums = torch.zeros(E, dtype=torch.float64)
    for start in range(0, config.steps, config.block_steps):
        k = min(config.block_steps, config.steps - start)
        blocks = [normalised_targets(laws[e], times[e], k * B, gens[e]) for e in range(E)]
        xs = torch.stack([b[0] for b in blocks]).to(dtype=dtype, device=device).reshape(E, k, B, -1)
        ys = torch.stack([b[1] for b in blocks]).to(dtype=dtype, device=device).reshape(E, k, B, -1)
        for j in range(k):
            out = normalised_output(net(xs[:, j], None if t_in is None else t_in.expand(E, B)), xs[:, j],
                                    tc, config.parameterisation)
            member_loss = (out - ys[:, j]).pow(2).sum(-1).mean(-1)       # (E,)
            opt.zero_grad(set_to_none=True)
            member_loss.sum().backward()
            opt.step()
            sched.step()
            if start + j >= config.steps - tail:
                tail_sums += member_loss.detach().to(torch.float64).cpu()
    final_loss = (tail_sums / tail).tolist()
    return FitResult(relative_error(net, laws, times, config.eval_points,
                                    [int(s) + 1_000_003 for s in data_seeds],
                                    parameterisation=config.parameterisation), final_loss)


@torch.no_grad()
def relative_error(net: ReLUMLP, laws: NoisedLaw | Sequence[NoisedLaw], t: float | Sequence[float],
                   m: int, eval_seeds: Sequence[int], chunk: int = 4096,
                   parameterisation: str = "denoiser") -> list[Estimate]:
    """Relative L2 error R_e = E|f_e/sigma_t - s|^2 / E|s|^2 of each member on m points X ~ P_t of its
    law (from ``Generator().manual_seed(eval_seeds[e])``), as Estimates with delta-method stderr."""
    E = net.members
    laws, times = _member_laws(net, laws, t)
    eval_seeds = _seeds(eval_seeds, E, "eval_seeds")
    m = check_positive_int(m, "m", minimum=2)
    chunk = check_positive_int(chunk, "chunk")
    check_choice(parameterisation, "parameterisation", PARAMETERISATIONS)
    param = next(net.parameters())
    pairs = [normalised_targets(laws[e], times[e], m,
                                torch.Generator(device=laws[e].device).manual_seed(int(eval_seeds[e])))
             for e in range(E)]
    x = torch.stack([p[0] for p in pairs]).to(dtype=param.dtype, device=param.device)     # (E, m, d)
    y = torch.stack([p[1].to(torch.float64).cpu() for p in pairs])                        # (E, m, d)
    t_in = torch.tensor(times, dtype=param.dtype, device=param.device)[:, None] if net.time_input else None
    tc = forward.coefficients(torch.tensor(times, dtype=torch.float64, device=param.device))
    sq_err = torch.empty(E, m, dtype=torch.float64)
    for c0 in range(0, m, chunk):
        c1 = min(m, c0 + chunk)
        raw = net(x[:, c0:c1], None if t_in is None else t_in.expand(E, c1 - c0))
        f = normalised_output(raw, x[:, c0:c1], tc, parameterisation).to(torch.float64).cpu()
        sq_err[:, c0:c1] = (f - y[:, c0:c1]).pow(2).sum(-1)
    sq_norm = y.pow(2).sum(-1)
    results = []
    for e in range(E):
        a, b = sq_err[e], sq_norm[e]
        ratio = float(a.sum() / b.sum())
        results.append(RunningMoments().update(ratio + (a - ratio * b) / b.mean()).estimate())
    return results
