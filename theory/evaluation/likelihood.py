"""Generalisation measures of a learned score, computed exactly because the true law is known.

(a) ``ode_log_likelihood``: the model's log-density of points by the probability-flow ODE with the
    exact divergence. Forward PF ODE: dx/dt = f(x, t) = -x/2 - s(x, t)/2, and along its solution
    d/dt log p_t(x_t) = -div f = d/2 + div s / 2. Integrating from t0 to T,

        log p^theta_{t0}(x) = log N(x_T; 0, I) - int_{t0}^{T} (d/2 + div s(x_t, t)/2) dt,   x_{t0} = x.

    What we compute: the model's density at time t0 of the given points themselves (no noising, no
    correction); its true counterpart is the closed form log p_{t0}(x) of the mixture, and the prior
    N(0, I) stands for p_T (error O(alpha_T |E X_0|) = O(e^{-T/2}): 3e-3 nats at T = 12, 1e-4 at T = 20 for the test Gaussian). Heun steps on a geometric time grid, the
    divergence by d exact backward passes (d <= 64), float64.
(b) the true log-density of generated samples: ``GaussianMixture.log_prob(samples, 0)`` (no helper
    needed).
(c) ``memorization_index``: at time t, under X ~ P^_t (noised training points),
        A(t) = E|s_net - grad log p^_t|^2,  B(t) = E|s_net - grad log p_t|^2,  index = B / (A + B),
    so index -> 1 when the net sits on the empirical score (memorizes), -> 0 on the true score.
(d) ``index_crossover``: the crossover time t* of the profile D(t) = B(t) - A(t) over a grid of times:
    the smallest t from which the net is significantly closer to the empirical than to the true score.
"""

from __future__ import annotations

import math

import torch

from .._validate import (call_with_context, check_array, check_callable, check_generator, check_output,
                         check_positive_int)
from ..estimators.estimate import Estimate, Interval, RunningMoments, normal_quantile
from ..estimators.lossgap import scalar_time
from ..laws import forward
from ..laws.forward import ScoreFn
from ..laws.law import NoisedLaw
from .samplers import time_grid


def exact_divergence(fn: ScoreFn, x, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(fn(x, t), div_x fn(x, t)) for a field whose row b depends on x[b] only: trace of the Jacobian
    by d backward passes (exact, no Hutchinson noise). Returns ((B, d), (B,)). ``x``: (B, d) (a tensor,
    array or list; finite); ``fn`` must return finite (B, d) values (an output that does not depend on x
    has divergence 0)."""
    check_callable(fn, "fn")
    x = check_array(x, "x", ("B", "d"))
    return _divergence(fn, x, t, "fn")


def _divergence(fn: ScoreFn, x: torch.Tensor, t: torch.Tensor, name: str, where="") -> tuple[torch.Tensor, torch.Tensor]:
    with torch.enable_grad():
        xr = x.detach().requires_grad_(True)
        out = check_output(call_with_context(fn, name, where, xr, t), name, x.shape, where=where)
        div = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        if out.requires_grad:
            for i in range(x.shape[1]):
                (g,) = torch.autograd.grad(out[:, i].sum(), xr, retain_graph=i < x.shape[1] - 1, allow_unused=True)
                if g is not None:
                    div = div + g[:, i].to(x.dtype)
    return out.detach().to(x.dtype), div


def ode_log_likelihood(score_fn: ScoreFn, x: torch.Tensor, *, t0: float = 1e-3, T: float = 10.0,
                       steps: int = 100) -> torch.Tensor:
    """log p^theta_{t0}(x) by the forward probability-flow ODE with the exact divergence (module
    docstring, (a)); Heun's method on a geometric grid from t0 to T. Returns (B,), float64. ``x``: (B, d)
    (a tensor, array or list; finite); ``score_fn`` must return finite (B, d) values at every step (else a
    one-line error names the step and time)."""
    check_callable(score_fn, "score_fn")
    x = check_array(x, "x", ("B", "d"))
    grid = time_grid(T, t0, steps, device=x.device).flip(0)          # increasing t0 .. T
    y = x.to(torch.float64)
    d = y.shape[1]
    integral = torch.zeros(y.shape[0], dtype=torch.float64, device=x.device)

    def rates(y, t, k):
        s, div = _divergence(score_fn, y, t.expand(y.shape[0]), "score_fn",
                             where=lambda: f"at step {k} (t = {float(t):.4g})")
        return -0.5 * y - 0.5 * s, 0.5 * d + 0.5 * div

    for k in range(steps):
        h = grid[k + 1] - grid[k]
        f1, g1 = rates(y, grid[k], k)
        f2, g2 = rates(y + h * f1, grid[k + 1], k)
        y = y + 0.5 * h * (f1 + f2)
        integral = integral + 0.5 * h * (g1 + g2)
    prior = -0.5 * y.pow(2).sum(1) - 0.5 * d * math.log(2 * math.pi)
    return prior - integral


def memorization_index(score_fn: ScoreFn, empirical, truth, t: float, m: int,
                       generator: torch.Generator | None = None, batch: int = 1024) -> dict:
    """A(t), B(t) (each an Estimate, scaled by sigma_t^2 so they are O(1)), their paired difference
    D(t) = B(t) - A(t) (an Estimate over the same draws: D > 0 means closer to the empirical score) and
    index = B / (A + B), at time t under X ~ P^_t (module docstring, (c)). ``empirical`` and ``truth``:
    laws of one dimension; t > 0 a scalar; m >= 2 draws (for the standard errors); ``score_fn`` must
    return finite (b, d) values."""
    check_callable(score_fn, "score_fn")
    for law, name in ((empirical, "empirical"), (truth, "truth")):
        if not isinstance(law, NoisedLaw):
            raise ValueError(f"{name} must be a NoisedLaw, got {type(law).__name__}")
    if truth.dim != empirical.dim:
        raise ValueError(f"truth is a law on R^{truth.dim}, empirical on R^{empirical.dim}")
    t = float(scalar_time(t))
    m = check_positive_int(m, "m", minimum=2)
    batch = check_positive_int(batch, "batch")
    check_generator(generator, "generator", empirical.device)
    s2 = float(forward.sigma2(t))
    acc_a, acc_b, acc_d = RunningMoments(), RunningMoments(), RunningMoments()
    done = 0
    while done < m:
        b = min(batch, m - done)
        x = empirical.sample(b, t, generator)
        tt = torch.full((b,), t, dtype=x.dtype, device=x.device)
        with torch.no_grad():
            s = check_output(call_with_context(score_fn, "score_fn", "", x, tt), "score_fn", x.shape)
        a_ = s2 * (s - empirical.score(x, t)).pow(2).sum(1)
        b_ = s2 * (s - truth.score(x, t)).pow(2).sum(1)
        acc_a.update(a_)
        acc_b.update(b_)
        acc_d.update(b_ - a_)
        done += b
    a, bb = acc_a.estimate(), acc_b.estimate()
    return {"to_empirical": a, "to_true": bb, "difference": acc_d.estimate(),
            "index": bb.mean / max(a.mean + bb.mean, 1e-300)}


def index_crossover(times, difference: list[Estimate], level: float = 0.95) -> Interval:
    """The crossover time t* of a memorization-index profile, with its bracket.

    ``times``: increasing grid t_1 < ... < t_m; ``difference``: D(t_i) = B(t_i) - A(t_i) with standard
    errors s_i (``memorization_index``'s "difference": distance to the true score minus distance to the
    empirical score, so D > 0 means the net is closer to the empirical score). With z the normal quantile
    of ``level`` (1.96 at 95%), time i is *empirical* if D_i > z s_i and *true* if D_i < -z s_i.

    * t* is the smallest time from which the net follows the empirical score: i* = the first empirical
      index. None: t* = +inf with bracket [t_m, inf) (never significantly closer to the empirical score).
    * bracket [lo, hi] = [t_j, t_i*], j the last *true* index below i* (lo = 0 if there is none: t* is
      censored at the grid floor, t* <= t_i*). The times in between are undecided at ``level``.
    * estimate: the zero of D interpolated linearly in log t between the last grid time below i* with
      D_k <= 0 and the next one; t_1 if D > 0 at every time up to i* (then lo = 0).

    Returns an ``Interval`` (estimate, lo, hi, level, "grid_bracket")."""
    t = [float(v) for v in times]
    if len(t) != len(difference) or len(t) < 2 or any(b <= a for a, b in zip(t, t[1:])) or t[0] <= 0:
        raise ValueError("need >= 2 increasing positive times, one difference Estimate per time")
    z = normal_quantile(level)
    d = [float(e.mean) for e in difference]
    s = [float(e.stderr) for e in difference]
    emp = [di > z * si for di, si in zip(d, s)]
    if not any(emp):
        return Interval(math.inf, t[-1], math.inf, level, "grid_bracket")
    i = emp.index(True)
    true_below = [j for j in range(i) if d[j] < -z * s[j]]
    lo = t[true_below[-1]] if true_below else 0.0
    nonpos = [k for k in range(i) if d[k] <= 0]
    if not nonpos:
        return Interval(t[0], lo, t[i], level, "grid_bracket")
    k = nonpos[-1]
    frac = -d[k] / (d[k + 1] - d[k])          # d[k] <= 0 < d[k + 1]
    est = math.exp(math.log(t[k]) + frac * (math.log(t[k + 1]) - math.log(t[k])))
    return Interval(est, lo, t[i], level, "grid_bracket")
