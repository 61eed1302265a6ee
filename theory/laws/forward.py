"""The forward (Ornstein-Uhlenbeck) process of the paper, Sec. 2, and the parametrisations it links.

    dX_t = -X_t / 2 dt + dW_t,    X_t = alpha_t X_0 + sigma_t Z,    Z ~ N(0, I),

    alpha_t = exp(-t / 2),        sigma_t^2 = 1 - exp(-t).

``sigma2`` uses ``expm1`` so that it keeps full relative precision at small t (``1 - exp(-1e-6)`` in
floating point loses ten digits; ``-expm1(-1e-6)`` loses none).

This module is the one owner of alpha_t and sigma_t, and of the conversions between the three ways a
network can describe the noised law at time t (Tweedie's formula, E[Z | X_t] = -sigma_t grad log p_t):

    score      s(x, t) = grad log p_t(x)
    noise      eps(x, t) = E[Z | X_t = x]        = -sigma_t s
    denoiser   D(x, t)   = E[X_0 | X_t = x]      = (x + sigma_t^2 s) / alpha_t

Time arguments. Public functions take ``t`` as a number, a tensor of shape ``()`` or of a leading prefix of
the other argument's shape (``(B,)`` against ``(B, d)`` or ``(B, C, H, W)``, ``(E, B)`` against
``(E, B, d)``), or the ``TimeCoefficients`` that ``coefficients`` returned: ``t`` is validated once, where
it enters, and a caller that reuses one t many times passes the coefficients on instead of re-checking.
"""

from __future__ import annotations

from typing import Callable, NamedTuple, Union

import torch

from .._validate import (TimeLike, check_array, check_callable, check_generator, check_number,
                         check_output, check_result, check_time)

#: a score function s(x, t): a (B, ...) batch and a (B,) (or scalar) time tensor -> the (B, ...) score
ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class TimeCoefficients(NamedTuple):
    """A validated time tensor ``t`` with alpha_t and sigma_t^2 of its shape (or, where a law prepared
    them, as ``(B, 1)`` columns)."""

    t: torch.Tensor
    alpha: torch.Tensor
    sigma2: torch.Tensor

    @property
    def sigma(self) -> torch.Tensor:
        return torch.sqrt(self.sigma2)


Times = Union[TimeLike, TimeCoefficients]


def coefficients(t: TimeLike, *, batch: int | None = None, allow_zero: bool = True, dtype=None,
                 device=None) -> TimeCoefficients:
    """Validate ``t`` once (``theory._validate.check_time``) and return it with alpha_t = exp(-t/2) and
    sigma_t^2 = -expm1(-t). With ``batch``, t must be a scalar or ``(batch,)``; without, any shape is
    elementwise. A tensor keeps its device and floating dtype unless ``dtype``/``device`` are given (a
    tensor on another ``device`` is an error); a number becomes a float64 tensor. Exact (finite) for every
    t >= 0 down to the smallest positive float64, 5e-324 (sigma_t^2 = t there)."""
    if isinstance(t, torch.Tensor) and dtype is None:
        dtype = t.dtype if t.is_floating_point() else None
    if isinstance(t, torch.Tensor) and device is None:
        device = t.device
    tt = check_time(t, batch=batch, allow_zero=allow_zero, any_shape=batch is None, dtype=dtype or torch.float64,
                    device=device)
    return TimeCoefficients(tt, torch.exp(-0.5 * tt), -torch.expm1(-tt))


def _coefficients(t: Times, like: torch.Tensor | None = None, allow_zero: bool = True) -> TimeCoefficients:
    """``t`` as TimeCoefficients: passed through if it already is (checked where it was made), else
    validated (a tensor keeps its dtype and must be on ``like``'s device, a number takes ``like``'s dtype
    and device)."""
    if isinstance(t, TimeCoefficients):
        return t
    if like is None:
        return coefficients(t, allow_zero=allow_zero)
    if isinstance(t, torch.Tensor):
        return coefficients(t, allow_zero=allow_zero, device=like.device)
    return coefficients(t, allow_zero=allow_zero, dtype=like.dtype, device=like.device)


def alpha(t: Times) -> torch.Tensor:
    """alpha_t = exp(-t/2): the signal coefficient of X_t = alpha_t X_0 + sigma_t Z (t >= 0, any shape;
    finite for every valid t)."""
    return _coefficients(t).alpha


def sigma2(t: Times) -> torch.Tensor:
    """sigma_t^2 = 1 - exp(-t), computed as -expm1(-t) (accurate to full relative precision as t -> 0:
    sigma2(5e-324) = 5e-324)."""
    return _coefficients(t).sigma2


def sigma(t: Times) -> torch.Tensor:
    """sigma_t = sqrt(1 - exp(-t)) (finite for every t >= 0)."""
    return _coefficients(t).sigma


def _column(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a coefficient whose shape is a leading prefix of ``like``'s (a scalar, ``(B,)``,
    ``(E, B)``) against ``like``, in ``like``'s dtype."""
    if v.ndim == 0:
        return v.to(like.dtype)
    if v.ndim > like.ndim or tuple(v.shape) != tuple(like.shape[:v.ndim]):
        raise ValueError(f"t must be a scalar or have shape {tuple(like.shape[:v.ndim])} (a leading prefix "
                         f"of {tuple(like.shape)}), got {tuple(v.shape)}")
    return v.to(like.dtype).reshape(*v.shape, *([1] * (like.ndim - v.ndim)))


def _pair(a, name_a: str, b, name_b: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Two ``(B, ...)`` batches of one shape (e.g. a denoised estimate and the point it belongs to)."""
    ta = check_array(a, name_a, min_ndim=2)
    tb = check_array(b, name_b, min_ndim=2, device=ta.device)
    if ta.shape != tb.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape (B, ...), got {tuple(ta.shape)} and "
                         f"{tuple(tb.shape)}")
    return ta, tb


def _add_noise(x0: torch.Tensor, t: Times, noise: torch.Tensor) -> torch.Tensor:
    """alpha_t x0 + sigma_t noise for checked tensors (t is validated unless it is TimeCoefficients)."""
    tc = _coefficients(t, x0)
    return _column(tc.alpha, x0) * x0 + _column(tc.sigma, x0) * noise


def add_noise(x0, t: Times, noise=None, *, generator: torch.Generator | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw X_t = alpha_t x0 + sigma_t z; returns ``(x_t, z)``. ``x0``: a ``(B, ...)`` batch (a tensor,
    array or nested list; integers become float64). ``t`` is a scalar or of a leading prefix of x0's shape
    (t >= 0: t = 0 returns x0 exactly; finite for every t); pass ``noise`` (x0's shape) to reuse the same z
    (common random numbers), else it is drawn from ``generator``."""
    x0 = check_array(x0, "x0", min_ndim=2)
    tc = _coefficients(t, x0)
    if noise is None:
        check_generator(generator, "generator", x0.device)
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    else:
        noise = check_array(noise, "noise", device=x0.device, nonempty=False)
        if noise.shape != x0.shape:
            raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
    return _add_noise(x0, tc, noise), noise


def _dsm_target(x_t: torch.Tensor, x0: torch.Tensor, tc: TimeCoefficients) -> torch.Tensor:
    return -(x_t - _column(tc.alpha, x0) * x0) / _column(tc.sigma2, x0)


def dsm_target(x_t, x0, t: Times) -> torch.Tensor:
    """The denoising-score-matching regression target grad log N(x_t; alpha_t x0, sigma_t^2 I)
    = -(x_t - alpha_t x0) / sigma_t^2 (= -z / sigma_t for x_t = alpha_t x0 + sigma_t z). t > 0; it grows
    like 1/sigma_t^2, so where float64 overflows (t below ~1e-300 at unit scale) a ValueError names t.
    ``x0`` has x_t's shape (B, ...), or (1, ...) for one point against the batch."""
    x_t = check_array(x_t, "x_t", min_ndim=2)
    x0 = check_array(x0, "x0", min_ndim=2, device=x_t.device)
    if x0.shape[1:] != x_t.shape[1:] or x0.shape[0] not in (1, x_t.shape[0]):
        raise ValueError(f"x0 must have the shape of x_t {tuple(x_t.shape)} (or (1, ...) for one point), got "
                         f"{tuple(x0.shape)}")
    tc = _coefficients(t, x0, allow_zero=False)
    return check_result(_dsm_target(x_t, x0, tc), "dsm_target", tc.t, x_t)


def _check_noise_resolved(target: torch.Tensor, x0: torch.Tensor, tc: TimeCoefficients, noise: torch.Tensor) -> None:
    """At tiny t, sigma_t z is absorbed by alpha_t x0 when X_t is formed (t = 1e-320: X_t = alpha_t x0
    exactly), so the DSM target -(X_t - alpha_t x0)/sigma_t^2 loses the noise and the loss is finite but
    wrong. Refuse t where the recovered noise -sigma_t target misses z by more than sqrt(eps) (relative):
    in float64 that is t below ~1e-14 |x0|^2."""
    err = (target * _column(tc.sigma, x0) + noise).abs().amax()
    tol = torch.finfo(x0.dtype).eps ** 0.5 * (1.0 + noise.abs().amax())
    if bool(err > tol):
        raise ValueError(f"t = {float(tc.t.min()):.3g} is too small for the DSM loss in {str(x0.dtype)[6:]}: sigma_t z "
                         f"is lost against alpha_t x0 (|x0| up to {float(x0.abs().max()):.3g}) when X_t is formed; "
                         f"use a larger t")


def _dsm_loss(score: ScoreFn, x0: torch.Tensor, tc: TimeCoefficients, noise: torch.Tensor,
              name: str = "score") -> torch.Tensor:
    """The per-sample DSM loss for checked tensors; the score's output is checked (shape, finite), and t
    must leave the noise resolved in X_t (``_check_noise_resolved``)."""
    x_t = _add_noise(x0, tc, noise)
    target = _dsm_target(x_t, x0, tc)
    _check_noise_resolved(target, x0, tc, noise)
    s = check_output(score(x_t, tc.t), name, x_t.shape)
    return (target - s).pow(2).sum(dim=-1)


def dsm_loss(score: ScoreFn, x0, t: Times, noise) -> torch.Tensor:
    """Per-sample DSM loss for one draw of the forward noise (Sec. 3, the loss l_t of Prop. 4.1):

        | -(X_t - alpha_t x0) / sigma_t^2 - s(X_t, t) |^2,   X_t = alpha_t x0 + sigma_t z.

    ``score(x, t)`` takes ``(B, d)`` points and the time tensor and must return a finite ``(B, d)`` tensor
    (else a ValueError names ``score``); ``noise`` is the ``(B, d)`` draw of z (pass the same draw to
    compare several score functions with common random numbers; None draws one). Averaging over
    independent draws of ``noise`` gives l_t(x0, s) = E_z |...|^2. Returns ``(B,)``. t > 0; below t ~
    1e-14 |x0|^2 (float64) sigma_t z is lost against alpha_t x0 in X_t and the loss would be wrong, and
    below ~1e-150 it overflows: there a ValueError names t.
    """
    check_callable(score, "score")
    x0 = check_array(x0, "x0")
    if x0.ndim != 2:
        raise ValueError(f"x0 must have shape (B, d), got {tuple(x0.shape)}")
    tc = _coefficients(t, x0, allow_zero=False)
    if noise is None:
        noise = torch.randn(x0.shape, dtype=x0.dtype, device=x0.device)
    noise = check_array(noise, "noise", device=x0.device)
    if noise.shape != x0.shape:
        raise ValueError(f"noise must have the shape of x0 {tuple(x0.shape)}, got {tuple(noise.shape)}")
    return check_result(_dsm_loss(score, x0, tc, noise), "dsm_loss", tc.t)


def marginal_variance(t: Times, data_variance: float) -> torch.Tensor:
    """Var X_t per coordinate for data of per-coordinate variance v >= 0: alpha_t^2 v + sigma_t^2, with
    alpha_t^2 = exp(-t) evaluated directly (the scale that networks divide their input by). Finite for
    every t >= 0."""
    tc = _coefficients(t)
    v = check_number(data_variance, "data_variance", low=0.0)
    return _marginal_variance(tc, v)


def _marginal_variance(tc: TimeCoefficients, v: float) -> torch.Tensor:
    return torch.exp(-tc.t) * v + tc.sigma2


# ---------------------------------------------------------------------------------- parametrisations
# Each public conversion checks its tensors (floating, finite, of one shape) and t, and its result
# (the divisions by sigma_t overflow only where float64 cannot hold the answer: a ValueError names t).
# The underscored kernels are for callers that checked already (networks, samplers, trainers).
def _score_from_eps(eps: torch.Tensor, tc: TimeCoefficients) -> torch.Tensor:
    return -eps / _column(tc.sigma, eps)


def _eps_from_denoiser(denoised: torch.Tensor, x: torch.Tensor, tc: TimeCoefficients) -> torch.Tensor:
    return (x - _column(tc.alpha, x) * denoised) / _column(tc.sigma, x)


def _score_from_denoiser(denoised: torch.Tensor, x: torch.Tensor, tc: TimeCoefficients) -> torch.Tensor:
    return (_column(tc.alpha, x) * denoised - x) / _column(tc.sigma2, x)


def _denoiser_from_score(score: torch.Tensor, x: torch.Tensor, tc: TimeCoefficients) -> torch.Tensor:
    return (x + _column(tc.sigma2, x) * score) / _column(tc.alpha, x)


def score_from_eps(eps, t: Times) -> torch.Tensor:
    """s = -eps / sigma_t (the score of a noise predictor). t > 0; finite wherever |eps| / sigma_t fits
    float64 (every t >= 5e-324 for |eps| < 1e146), else a ValueError names t."""
    eps = check_array(eps, "eps", min_ndim=1)
    tc = _coefficients(t, eps, allow_zero=False)
    return check_result(_score_from_eps(eps, tc), "score_from_eps", tc.t)


def eps_from_score(score, t: Times) -> torch.Tensor:
    """eps = -sigma_t s (the noise prediction of a score; sigma_t s is the normalised score, O(1) at every t).
    Finite for every t >= 0."""
    score = check_array(score, "score", min_ndim=1)
    tc = _coefficients(t, score)
    return check_result(-_column(tc.sigma, score) * score, "eps_from_score", tc.t)


def score_from_denoiser(denoised, x, t: Times) -> torch.Tensor:
    """s = (alpha_t D - x) / sigma_t^2 (Tweedie: the score of a denoiser D(x) = E[X_0 | X_t = x]). t > 0;
    it grows like 1/sigma_t^2: where float64 overflows (t below ~1e-300 at unit scale) a ValueError names t."""
    denoised, x = _pair(denoised, "denoised", x, "x")
    tc = _coefficients(t, x, allow_zero=False)
    return check_result(_score_from_denoiser(denoised, x, tc), "score_from_denoiser", tc.t, x)


def denoiser_from_score(score, x, t: Times) -> torch.Tensor:
    """D = (x + sigma_t^2 s) / alpha_t (Tweedie's denoised estimate E[X_0 | X_t = x]). Finite for every
    t >= 0 (where alpha_t = exp(-t/2) > 0 in float64: t < 1490)."""
    score, x = _pair(score, "score", x, "x")
    tc = _coefficients(t, x)
    return check_result(_denoiser_from_score(score, x, tc), "denoiser_from_score", tc.t, x)


def eps_from_denoiser(denoised, x, t: Times) -> torch.Tensor:
    """eps = (x - alpha_t D) / sigma_t (= -sigma_t s for the score s of D). t > 0; finite wherever
    |x - alpha_t D| / sigma_t fits float64, else a ValueError names t."""
    denoised, x = _pair(denoised, "denoised", x, "x")
    tc = _coefficients(t, x, allow_zero=False)
    return check_result(_eps_from_denoiser(denoised, x, tc), "eps_from_denoiser", tc.t, x)
