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

from .._validate import (call_with_context, check_array, check_callable, check_choice, check_generator,
                         check_output, check_positive_int, check_time_span)
from ..laws import forward
from ..laws.forward import ScoreFn

SCHEDULES = ("geometric", "uniform")


def time_grid(T: float, t0: float, steps: int, *, schedule: str = "geometric", dtype=torch.float64,
              device=None) -> torch.Tensor:
    """Decreasing times T = t_0 > t_1 > ... > t_steps = t0 (``geometric`` or ``uniform`` spacing);
    0 < t0 < T < inf, real numbers (not booleans), steps a positive integer."""
    steps = check_positive_int(steps, "steps")
    t0, T = check_time_span(t0, T)
    check_choice(schedule, "schedule", SCHEDULES)
    if schedule == "geometric":
        return torch.logspace(math.log10(T), math.log10(t0), steps + 1, dtype=dtype, device=device)
    return torch.linspace(T, t0, steps + 1, dtype=dtype, device=device)


def prior_sample(shape: tuple, *, generator: torch.Generator | None = None, dtype=torch.float64,
                 device=None) -> torch.Tensor:
    """Draws of N(0, I), the forward process's limit, used as X_T; ``shape`` a tuple of positive ints."""
    dims = (shape,) if isinstance(shape, int) and not isinstance(shape, bool) else shape
    if not isinstance(dims, (tuple, list, torch.Size)) or not dims:
        raise TypeError(f"shape must be a tuple of positive integers such as (B, d), got {shape!r}")
    dims = tuple(check_positive_int(s, "shape") for s in dims)
    check_generator(generator, "generator", device or "cpu")
    return torch.randn(dims, generator=generator, dtype=dtype, device=device)


def _times(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.to(x.dtype).expand(x.shape[0])


def _start(score_fn, x_T, name: str = "x_T") -> torch.Tensor:
    """The checked start of an integrator: ``score_fn`` callable; ``x_T`` a (B, ...) batch (tensor, array or
    list; non-empty, finite), integers converted to float64 (never truncated)."""
    check_callable(score_fn, "score_fn")
    return check_array(x_T, name, min_ndim=2)


def _score(score_fn: ScoreFn, y: torch.Tensor, t: torch.Tensor, step: int) -> torch.Tensor:
    """score_fn(y, t) checked: a finite tensor of y's shape and dtype; the message says at which step and
    time it was not (and a ValueError / TypeError raised by score_fn itself gets the same context)."""
    where = lambda: f"at step {step} (t = {float(t.reshape(-1)[0]):.4g})"  # noqa: E731 - only on error
    return check_output(call_with_context(score_fn, "score_fn", where, y, t), "score_fn", y.shape, dtype=y.dtype,
                        where=where)


@torch.no_grad()
def reverse_sde(score_fn: ScoreFn, x_T, *, T: float = 10.0, t0: float = 1e-3, steps: int = 200,
                schedule: str = "geometric", generator: torch.Generator | None = None) -> torch.Tensor:
    """Sample by the reverse-time SDE from X_T = ``x_T`` (draws of N(0, I); a (B, ...) tensor, array or
    list, finite; integers become float64) down to t0 (exponential integrator, module docstring). Returns
    X_{t0}, the shape and dtype of ``x_T``. ``score_fn`` must return finite values of x's shape and dtype
    at every step (else a one-line error names the step and time)."""
    x_T = _start(score_fn, x_T)
    check_generator(generator, "generator", x_T.device)
    grid = time_grid(T, t0, steps, schedule=schedule, device=x_T.device)
    y = x_T.clone()
    for k in range(steps):
        h = float(grid[k] - grid[k + 1])
        s = _score(score_fn, y, _times(grid[k], y), k)
        z = torch.randn(y.shape, generator=generator, dtype=y.dtype, device=y.device)
        y = math.exp(h / 2) * y + 2 * math.expm1(h / 2) * s + math.sqrt(math.expm1(h)) * z
    return y


@torch.no_grad()
def probability_flow(score_fn: ScoreFn, x_T, *, T: float = 10.0, t0: float = 1e-3,
                     steps: int = 100, schedule: str = "geometric") -> torch.Tensor:
    """Deterministic sampling by the probability-flow ODE from ``x_T`` down to t0 (exponential
    integrator with a Heun correction: two score evaluations a step, second order). Returns X_{t0}.
    ``x_T`` and ``score_fn`` are checked as in ``reverse_sde``."""
    x_T = _start(score_fn, x_T)
    grid = time_grid(T, t0, steps, schedule=schedule, device=x_T.device)
    y = x_T.clone()
    for k in range(steps):
        h = float(grid[k] - grid[k + 1])
        grow, gain = math.exp(h / 2), math.expm1(h / 2)
        s = _score(score_fn, y, _times(grid[k], y), k)
        y_euler = grow * y + gain * s
        s_next = _score(score_fn, y_euler, _times(grid[k + 1], y), k)
        y = grow * y + gain * 0.5 * (s + s_next)
    return y


@torch.no_grad()
def tweedie_denoise(score_fn: ScoreFn, x, t) -> torch.Tensor:
    """One Tweedie step at time t > 0 (a scalar, or one time per row of x): E[X_0 | X_t = x] ~
    (x + sigma_t^2 s(x, t)) / alpha_t (``theory.laws.forward.denoiser_from_score``; coefficients in
    float64, then in the dtype of ``x``). ``x``: a (B, ...) batch as in ``reverse_sde``; ``score_fn`` must
    return finite values of x's shape and dtype."""
    x = _start(score_fn, x, "x")
    tc = forward.coefficients(t, allow_zero=False, device=x.device)
    if tc.t.ndim > 1 or (tc.t.ndim == 1 and tc.t.shape[0] != x.shape[0]):
        raise ValueError(f"t must be a scalar or have shape ({x.shape[0]},), got {tuple(tc.t.shape)}")
    if tc.t.ndim == 0:
        tt = torch.full((x.shape[0],), float(tc.t), dtype=x.dtype, device=x.device)
    else:
        tt = tc.t.to(x.dtype)
    s = check_output(call_with_context(score_fn, "score_fn", "", x, tt), "score_fn", x.shape, dtype=x.dtype)
    return forward._denoiser_from_score(s, x, tc)
