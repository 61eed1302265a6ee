"""Samplers: the reverse-time SDE and the probability-flow ODE of the forward OU process, from T down
to t0, for any score function and any sample shape (vectors or images).

Forward:   dX = -X/2 dt + dW.   With tau = T - t, the reverse process Y_tau = X_{T - tau} solves
reverse SDE:  dY = [Y/2 + s(Y, T - tau)] dtau + dW,
PF ODE:       dY = [Y/2 + s(Y, T - tau)/2] dtau       (same marginals as the SDE).

Both are integrated by an exponential integrator that solves the linear part exactly and holds the score
constant over a step of length h (stable for any step size):

    SDE:  y <- e^{h/2} y + 2 (e^{h/2} - 1) s + sqrt(e^h - 1) z
    ODE:  y <- e^{h/2} y + (e^{h/2} - 1) s,  with a Heun (trapezoidal) correction of the score term.

``score_fn(x, t)`` receives the batch and a (B,) tensor of times. Times follow a geometric grid by
default (steps concentrate at small t, where the score changes fastest). ``tweedie_denoise`` is the
optional last step from X_{t0} to Tweedie's E[X_0 | X_{t0}] = (x + sigma_t0^2 s) / alpha_t0.
"""

from __future__ import annotations

import math

import torch

from .._validate import check_positive_int
from ..laws import forward
from ..laws.forward import ScoreFn


def time_grid(T: float, t0: float, steps: int, *, schedule: str = "geometric", dtype=torch.float64,
              device=None) -> torch.Tensor:
    """Decreasing times T = t_0 > t_1 > ... > t_steps = t0 (``geometric`` or ``uniform`` spacing)."""
    check_positive_int(steps, "steps")
    if not (0 < t0 < T and math.isfinite(T)):
        raise ValueError(f"need 0 < t0 < T < inf, got t0={t0}, T={T}")
    if schedule == "geometric":
        return torch.logspace(math.log10(T), math.log10(t0), steps + 1, dtype=dtype, device=device)
    if schedule == "uniform":
        return torch.linspace(T, t0, steps + 1, dtype=dtype, device=device)
    raise ValueError(f"schedule must be 'geometric' or 'uniform', got {schedule!r}")


def prior_sample(shape: tuple, *, generator: torch.Generator | None = None, dtype=torch.float64,
                 device=None) -> torch.Tensor:
    """Draws of N(0, I), the forward process's limit, used as X_T."""
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)


def _times(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.to(x.dtype).expand(x.shape[0])


@torch.no_grad()
def reverse_sde(score_fn: ScoreFn, x_T: torch.Tensor, *, T: float = 10.0, t0: float = 1e-3, steps: int = 200,
                schedule: str = "geometric", generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample by the reverse-time SDE from X_T = ``x_T`` (draws of N(0, I)) down to t0 (exponential
    integrator, module docstring). Returns X_{t0}, the shape of ``x_T``."""
    grid = time_grid(T, t0, steps, schedule=schedule, device=x_T.device)
    y = x_T.clone()
    for k in range(steps):
        h = float(grid[k] - grid[k + 1])
        s = score_fn(y, _times(grid[k], y))
        z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        y = math.exp(h / 2) * y + 2 * math.expm1(h / 2) * s + math.sqrt(math.expm1(h)) * z
    return y


@torch.no_grad()
def probability_flow(score_fn: ScoreFn, x_T: torch.Tensor, *, T: float = 10.0, t0: float = 1e-3,
                     steps: int = 100, schedule: str = "geometric") -> torch.Tensor:
    """Deterministic sampling by the probability-flow ODE from ``x_T`` down to t0 (exponential
    integrator with a Heun correction: two score evaluations a step, second order). Returns X_{t0}."""
    grid = time_grid(T, t0, steps, schedule=schedule, device=x_T.device)
    y = x_T.clone()
    for k in range(steps):
        h = float(grid[k] - grid[k + 1])
        grow, gain = math.exp(h / 2), math.expm1(h / 2)
        s = score_fn(y, _times(grid[k], y))
        y_euler = grow * y + gain * s
        s_next = score_fn(y_euler, _times(grid[k + 1], y))
        y = grow * y + gain * 0.5 * (s + s_next)
    return y


@torch.no_grad()
def tweedie_denoise(score_fn: ScoreFn, x: torch.Tensor, t: float) -> torch.Tensor:
    """One Tweedie step at time t: E[X_0 | X_t = x] ~ (x + sigma_t^2 s(x, t)) / alpha_t
    (``theory.laws.forward.denoiser_from_score``; coefficients in float64, then in the dtype of ``x``)."""
    tc = forward.coefficients(t, allow_zero=False)
    tt = torch.full((x.shape[0],), float(tc.t), dtype=x.dtype, device=x.device)
    return forward.denoiser_from_score(score_fn(x, tt), x, tc)
