"""Deterministic values of the Loss-Gap, DSM losses and Fisher divergences in d = 1 and d = 2, by
quadrature, to check the Monte-Carlo estimators of ``theory.estimators.lossgap`` independently.

Every noised law here is a finite Gaussian mixture, P_t = sum_j w_j N(c_j, F_j F_j^T) (``law.components(t)``):
the empirical law has c_j = alpha_t x_j, F_j = sigma_t I, w_j = 1/n; a Gaussian mixture has
c_k = alpha_t mu_k, F_k = U_k diag(alpha_t^2 lambda_k + sigma_t^2)^(1/2), w_k = pi_k. So

    E_{X ~ P_t} f(X) = sum_j w_j  int_{R^d} phi_d(u) f(c_j + F_j u) du,

and each component's integral is taken in its own standardised coordinates u, where the integrand is
smooth on the unit scale however peaked the component is (at t = 1e-3 the atoms of P^_t have width
sigma_t ~ 0.03). The u-integral is a tensor-product composite Gauss-Legendre rule (nodes from
scipy.special.roots_legendre) on the box [-L, L]^d, L = ``half_width`` (phi(10) ~ 8e-23, so L = 10 loses
nothing in double precision). The points are evaluated in chunks, so memory stays bounded.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from scipy.special import roots_legendre

from ..laws import forward
from .._validate import check_array, check_callable, check_number, check_output, check_positive_int, check_result
from ..laws.empirical import EmpiricalLaw, as_empirical, as_points
from ..laws.law import NoisedLaw, ScoreLike, score_function
from .lossgap import scalar_time

MAX_DIM = 2
DEFAULT_HALF_WIDTH = 10.0
DEFAULT_PANELS = {1: 80, 2: 16}   # per dimension: converged to ~1e-11 relative in the tests' cases
DEFAULT_ORDER = 10
CHUNK = 2 ** 16

Integrand = Callable[[torch.Tensor, int], torch.Tensor]


def gauss_legendre_rule(a: float, b: float, panels: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights on [a, b] (``panels`` equal panels, ``order`` nodes each):
    exact for piecewise polynomials of degree 2 order - 1 on the panels."""
    nodes, weights = roots_legendre(order)
    edges = np.linspace(a, b, panels + 1)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[:-1] + edges[1:])
    return (mid[:, None] + half[:, None] * nodes).ravel(), (half[:, None] * weights).ravel()


def _rule(half_width: float, panels: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """Composite Gauss-Legendre nodes and weights on [-L, L]."""
    return gauss_legendre_rule(-half_width, half_width, panels, order)


def gaussian_mixture_expectation(integrand: Integrand, weights: torch.Tensor, centres: torch.Tensor,
                                 factors: torch.Tensor, *, half_width: float = DEFAULT_HALF_WIDTH,
                                 panels: int | None = None, order: int = DEFAULT_ORDER) -> float:
    """sum_j w_j int phi_d(u) f_j(c_j + F_j u) du by tensor-product composite Gauss-Legendre on [-L, L]^d
    (d <= 2; ``panels`` defaults to 80 in d = 1 and 16 in d = 2, ``order`` to 10 nodes per panel). ``integrand(x, j)`` returns the (B,) values of f_j at the points x (B, d); the component
    index lets the integrand depend on the component (e.g. the DSM target of training point j); its values
    must be finite (checked). ``weights``, ``centres``, ``factors``: tensors, arrays or lists (finite), in
    the floating dtype of ``centres``."""
    check_callable(integrand, "integrand")
    centres = check_array(centres, "centres", ("J", "d"))
    J, d = centres.shape
    if d > MAX_DIM:
        raise ValueError(f"quadrature is for d <= {MAX_DIM}; got centres of dimension {d}")
    weights = check_array(weights, "weights", (J,), dtype=centres.dtype, device=centres.device)
    factors = check_array(factors, "factors", (J, d, d), dtype=centres.dtype, device=centres.device)
    half_width = check_number(half_width, "half_width", low=0.0, low_open=True)
    panels = DEFAULT_PANELS[d] if panels is None else check_positive_int(panels, "panels")
    check_positive_int(order, "order")
    nodes_1d, weights_1d = _rule(half_width, panels, order)
    grids = np.meshgrid(*([nodes_1d] * d), indexing="ij")
    u = torch.as_tensor(np.stack([g.ravel() for g in grids], axis=1), dtype=centres.dtype, device=centres.device)
    wq = weights_1d
    for _ in range(d - 1):
        wq = np.multiply.outer(wq, weights_1d).ravel()   # matches the "ij" ravel of the meshgrid
    log_phi = -0.5 * u.pow(2).sum(1) - 0.5 * d * math.log(2 * math.pi)
    wq = torch.as_tensor(wq, dtype=centres.dtype, device=centres.device) * torch.exp(log_phi)
    total = torch.zeros((), dtype=torch.float64, device=centres.device)
    for j in range(J):
        part = torch.zeros((), dtype=torch.float64, device=centres.device)
        for b0 in range(0, u.shape[0], CHUNK):
            x = centres[j] + u[b0:b0 + CHUNK] @ factors[j].T
            values = check_output(integrand(x, j), "integrand", (x.shape[0],))
            part = part + (wq[b0:b0 + CHUNK] * values).sum().to(torch.float64)
        total = total + weights[j].to(torch.float64) * part
    return float(total)


def fisher_divergence_quadrature(p: NoisedLaw, q: ScoreLike, t: float, *, under: NoisedLaw | None = None,
                                 **rule) -> float:
    """Fisher_under(P_t, Q_t) = E_{X ~ under_t} |grad log p_t(X) - grad log q_t(X)|^2 by quadrature over
    the components of ``under`` (default ``p``; any law in d <= 2). The deterministic counterpart of
    ``theory.estimators.lossgap.fisher_divergence``; ``rule``: half_width, panels, order."""
    if not isinstance(p, NoisedLaw):
        raise ValueError(f"p must be a NoisedLaw, got {type(p).__name__}")
    under = p if under is None else under
    if not isinstance(under, NoisedLaw):
        raise ValueError(f"under must be a NoisedLaw, got {type(under).__name__}")
    q_fn = score_function(q, "q")
    tt = scalar_time(t, dtype=under.dtype, device=under.device)
    w, c, f = under.components(tt)

    def integrand(x: torch.Tensor, j: int) -> torch.Tensor:
        diff = p.score(x, tt) - check_output(q_fn(x, tt), "q", x.shape)
        return check_result(diff.pow(2).sum(-1), "the Fisher divergence", tt)

    return gaussian_mixture_expectation(integrand, w, c, f, **rule)


def dsm_loss_quadrature(score: ScoreLike, data, t: float, *, baseline: ScoreLike | None = None, **rule) -> float:
    """The empirical DSM loss L_t(s) = (1/n) sum_i E_z |-(X_t - alpha_t x_i)/sigma_t^2 - s(X_t)|^2 (or the
    difference L_t(s) - L_t(baseline)) by quadrature over z for each training point, d <= 2: the
    deterministic counterpart of ``theory.estimators.lossgap.dsm_loss_estimate``."""
    x = as_points(data)
    s_fn = score_function(score, "score")
    b_fn = score_function(baseline, "baseline") if baseline is not None else None
    tc = forward.coefficients(scalar_time(t, dtype=x.dtype, device=x.device))
    w, c, f = EmpiricalLaw(x).components(tc.t)

    def integrand(xt: torch.Tensor, j: int) -> torch.Tensor:
        target = forward._dsm_target(xt, x[j:j + 1], tc)
        value = (target - check_output(s_fn(xt, tc.t), "score", xt.shape)).pow(2).sum(-1)
        if b_fn is not None:
            value = value - (target - check_output(b_fn(xt, tc.t), "baseline", xt.shape)).pow(2).sum(-1)
        return check_result(value, "the DSM loss", tc.t)

    return gaussian_mixture_expectation(integrand, w, c, f, **rule)


def loss_gap_quadrature(truth: ScoreLike, data, t: float, **rule) -> float:
    """Loss-Gap_t = L_t(grad log p_t) - L_t(grad log p^_t) (Prop. 4.1) by quadrature, d <= 2: computed as a
    difference of DSM losses, independently of the Fisher-divergence form it equals."""
    empirical = as_empirical(data)
    return dsm_loss_quadrature(truth, empirical, t, baseline=empirical, **rule)
