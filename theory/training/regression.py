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

Members that share a law, a time and a data seed share one stream of training points: it is drawn and its
scores are computed once per block (and, with a ``cache`` passed to several calls, once for all of them),
which is exact (the same seed gives the same points) and removes the cost of the targets, O(steps B n) for
an empirical law of n points, from every member but the first.

Because every training batch is fresh, the loss of a step is an unbiased estimate of the member's population
error before that step; ``FitResult.error_curve`` reports it, in ``curve_points`` equal windows of steps, as a
relative error (window-mean loss over the window-mean |sigma_t s|^2 of the same batches). With the cosine
schedule the curve flattens at the end by construction (the rate goes to 0); convergence in the step budget
is shown by runs with different ``steps``, each with its own schedule.

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
# Hidden activations (members x points x width) held at once by ``relative_error``: 2^26 float32 numbers is
# 256 MiB per layer. A wide ensemble (63 members of width 4096) at 4096 points per chunk held 4 GiB per layer
# and was killed for memory on a 24 GiB machine; the chunk shrinks instead (results are unchanged: each
# point's error is computed alone).
EVAL_ACTIVATIONS = 2 ** 26


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
    curve_points: int = 8

    def __post_init__(self):
        if self.parameterisation not in PARAMETERISATIONS:
            raise ValueError(f"parameterisation must be one of {PARAMETERISATIONS}, got {self.parameterisation!r}")
        for name in ("steps", "batch_size", "block_steps", "curve_points"):
            check_positive_int(getattr(self, name), name)
        check_positive_int(self.eval_points, "eval_points", minimum=2)      # for the standard error
        check_number(self.lr, "lr", low=0.0, low_open=True)
        check_number(self.weight_decay, "weight_decay", low=0.0)
        check_positive_int(self.warmup, "warmup", minimum=0)


@dataclass
class FitResult:
    """Per member: the relative L2 error estimate, the final training loss (mean of the last 10%), and the
    relative training error in ``curve_points`` equal windows of steps (``error_curve``, a list per member;
    windows are ``curve_steps`` long, the last one shorter when the steps do not divide)."""

    rel_error: list
    final_loss: list
    error_curve: list
    curve_steps: int


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
              config: RegressionConfig, data_seeds: Sequence[int], cache: dict | None = None) -> FitResult:
    """Train every member of ``net`` (in place) to sigma_t * score of its law at its t, then measure its
    relative L2 error E|s_net - s|^2 / E|s|^2 on ``eval_points`` fresh points.

    ``laws`` and ``t`` are shared or one per member; member e's training points come from
    ``Generator().manual_seed(data_seeds[e])`` and its evaluation points from seed
    ``data_seeds[e] + 1_000_003``, so a member's run depends only on its own seeds, law, t and width.
    Members with the same law object, t and data seed share one stream (drawn once). ``cache``: a dict
    the caller keeps to reuse the streams (training blocks and evaluation points) over several calls with
    the same ``batch_size`` and ``block_steps`` (it holds O(steps B d) numbers per stream).
    """
    E = net.members
    if not isinstance(config, RegressionConfig):
        raise TypeError(f"config must be a RegressionConfig, got {type(config).__name__}")
    laws, times = _member_laws(net, laws, t)
    data_seeds = _seeds(data_seeds, E, "data_seeds")
    param = next(net.parameters())
    dtype, device = param.dtype, param.device
    cache = {} if cache is None else cache
    streams = [(id(laws[e]), times[e], int(data_seeds[e])) for e in range(E)]
    owners = {}
    for e, key in enumerate(streams):
        owners.setdefault(key, e)
    t_in = torch.tensor(times, dtype=dtype, device=device)[:, None] if net.time_input else None
    tc = forward.coefficients(torch.tensor(times, dtype=torch.float64, device=device))

    opt = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: learning_rate(k, lr=1.0, steps=config.steps,
                                                                            warmup=config.warmup, final_fraction=0.0))
    B = config.batch_size
    tail = max(1, config.steps // 10)
    tail_sums = torch.zeros(E, dtype=torch.float64)
    window = -(-config.steps // config.curve_points)
    windows = -(-config.steps // window)
    curve_loss = torch.zeros(E, windows, dtype=torch.float64)
    curve_norm = torch.zeros(E, windows, dtype=torch.float64)
    for start in range(0, config.steps, config.block_steps):
        k = min(config.block_steps, config.steps - start)
        blocks = {key: _training_block(cache, key, laws[e], times[e], start, k, B, config.block_steps)
                  for key, e in owners.items()}
        xs = torch.stack([blocks[key][0] for key in streams]).to(dtype=dtype, device=device).reshape(E, k, B, -1)
        ys = torch.stack([blocks[key][1] for key in streams]).to(dtype=dtype, device=device).reshape(E, k, B, -1)
        norms = ys.detach().to(torch.float64).pow(2).sum(-1).mean(-1).cpu()              # (E, k)
        for j in range(k):
            out = normalised_output(net(xs[:, j], None if t_in is None else t_in.expand(E, B)), xs[:, j],
                                    tc, config.parameterisation)
            member_loss = (out - ys[:, j]).pow(2).sum(-1).mean(-1)       # (E,)
            opt.zero_grad(set_to_none=True)
            member_loss.sum().backward()
            opt.step()
            sched.step()
            loss64 = member_loss.detach().to(torch.float64).cpu()
            w = (start + j) // window
            curve_loss[:, w] += loss64
            curve_norm[:, w] += norms[:, j]
            if start + j >= config.steps - tail:
                tail_sums += loss64
    final_loss = (tail_sums / tail).tolist()
    curve = (curve_loss / curve_norm).tolist()
    errors = relative_error(net, laws, times, config.eval_points, [int(s) + 1_000_003 for s in data_seeds],
                            parameterisation=config.parameterisation, cache=cache)
    return FitResult(errors, final_loss, curve, window)


def _training_block(cache: dict, key: tuple, law: NoisedLaw, t: float, start: int, k: int, B: int,
                    block_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The training points of steps start..start+k of one stream (law, t, seed) and their normalised
    scores, drawn from the stream's generator in block order (cached: each block is drawn once)."""
    entry = cache.setdefault(("train", B, block_steps) + key, {"law": law, "generator": None, "blocks": {}})
    if entry["law"] is not law:
        raise RuntimeError("a cached stream belongs to another law object (keep the laws alive with the cache)")
    if start not in entry["blocks"]:
        if entry["generator"] is None:
            entry["generator"] = torch.Generator(device=law.device).manual_seed(key[2])
        if entry["blocks"] and max(entry["blocks"]) + block_steps != start:
            raise RuntimeError("training blocks of a cached stream must be drawn in order")
        entry["blocks"][start] = normalised_targets(law, t, k * B, entry["generator"])
    return entry["blocks"][start]


@torch.no_grad()
def relative_error(net: ReLUMLP, laws: NoisedLaw | Sequence[NoisedLaw], t: float | Sequence[float],
                   m: int, eval_seeds: Sequence[int], chunk: int = 4096,
                   parameterisation: str = "denoiser", cache: dict | None = None) -> list[Estimate]:
    """Relative L2 error R_e = E|f_e/sigma_t - s|^2 / E|s|^2 of each member on m points X ~ P_t of its
    law (from ``Generator().manual_seed(eval_seeds[e])``), as Estimates with delta-method stderr. Members
    with the same law object, t and seed share their points (drawn once; kept in ``cache`` if given)."""
    E = net.members
    laws, times = _member_laws(net, laws, t)
    eval_seeds = _seeds(eval_seeds, E, "eval_seeds")
    m = check_positive_int(m, "m", minimum=2)
    chunk = check_positive_int(chunk, "chunk")
    check_choice(parameterisation, "parameterisation", PARAMETERISATIONS)
    param = next(net.parameters())
    cache = {} if cache is None else cache
    pairs = []
    for e in range(E):
        key = ("eval", m, id(laws[e]), times[e], int(eval_seeds[e]))
        if key not in cache:
            g = torch.Generator(device=laws[e].device).manual_seed(int(eval_seeds[e]))
            cache[key] = (laws[e], normalised_targets(laws[e], times[e], m, g))
        if cache[key][0] is not laws[e]:
            raise RuntimeError("cached evaluation points belong to another law object")
        pairs.append(cache[key][1])
    x = torch.stack([p[0] for p in pairs]).to(dtype=param.dtype, device=param.device)     # (E, m, d)
    y = torch.stack([p[1].to(torch.float64).cpu() for p in pairs])                        # (E, m, d)
    t_in = torch.tensor(times, dtype=param.dtype, device=param.device)[:, None] if net.time_input else None
    tc = forward.coefficients(torch.tensor(times, dtype=torch.float64, device=param.device))
    sq_err = torch.empty(E, m, dtype=torch.float64)
    chunk = max(1, min(chunk, EVAL_ACTIVATIONS // (E * getattr(net, "max_width", 1))))
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
