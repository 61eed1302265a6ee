"""Lipschitz constants of scores (Sec. 5, the smoothness discussion behind Thm 5.1).

The Lipschitz constant of x -> grad log p_t(x) is sup_x ||grad^2 log p_t(x)||_2. We measure it as the
largest Hessian spectral norm over a cloud of points, and compare it with two closed forms:

* a Gaussian N(mu, Sigma): grad^2 log p_t = -(alpha_t^2 Sigma + sigma_t^2 I)^{-1} everywhere, so
  Lip = 1 / (sigma_t^2 + alpha_t^2 lambda_min(Sigma))   -- bounded by 1/lambda_min as t -> 0;

* the empirical law: at the noised midpoint x = alpha_t (x_i + x_j)/2 of the closest pair (distance
  delta), with u = (x_i - x_j)/delta and w_i, w_j the posterior masses of the two atoms there,
  u^T H u = -1/sigma_t^2 + alpha_t^2/sigma_t^4 Var_w(<u, X_0>)
          >= -1/sigma_t^2 + alpha_t^2 delta^2 w_i w_j / ((w_i + w_j) sigma_t^4)
  (law of total variance, keeping only the two-atom group), hence
  Lip >= alpha_t^2 delta^2 w_i w_j / ((w_i + w_j) sigma_t^4) - 1/sigma_t^2, valid at every t.
  As t -> 0 the pair takes all the posterior mass (w_i = w_j -> 1/2: any third point is at least
  (sqrt 3 / 2) delta from the midpoint), giving the paper's order
  Lip >= alpha_t^2 delta^2 / (4 sigma_t^4) - 1/sigma_t^2 ~ delta^2 / (4 sigma_t^4).
  The same argument holds for any pair, so the largest bound over all nearest-neighbour pairs is also
  rigorous, and sharper: the measured constant is set by the widest pair that still owns its midpoint.
"""

from __future__ import annotations

import torch

from ..laws import forward
from .._validate import (TimeLike, check_array, check_choice, check_flag, check_points, check_positive_int,
                         check_result, check_spd, check_symmetric)
from ..laws.empirical import EmpiricalLaw, as_points
from ..laws.law import NoisedLaw
from ..evaluation.neighbours import nearest_neighbours


def spectral_norm(matrices) -> torch.Tensor:
    """||H||_2 = max |eigenvalue| of each symmetric matrix in a (B, d, d) batch (finite, symmetric to
    round-off; a tensor, array or list), (B,)."""
    m = check_array(matrices, "matrices", ("B", "d", "d"), nonempty=True)
    if m.shape[1] != m.shape[2]:
        raise ValueError(f"matrices must have shape (B, d, d), got {tuple(m.shape)}")
    return _spectral_norm(check_symmetric(m, "matrices"))


def _spectral_norm(matrices: torch.Tensor) -> torch.Tensor:
    return torch.linalg.eigvalsh(matrices).abs().amax(dim=-1)


def local_lipschitz(law: NoisedLaw, x, t: TimeLike, *, batch_size: int = 1024) -> torch.Tensor:
    """The score's local Lipschitz constant ||grad^2 log p_t(x)||_2 at each point, (B,), in batches. ``x``
    (B, d) and ``t`` (a number or (B,)) as for ``law.hessian`` (finite where it is)."""
    if not isinstance(law, NoisedLaw):
        raise ValueError(f"law must be a NoisedLaw, got {type(law).__name__}")
    batch_size = check_positive_int(batch_size, "batch_size")
    x = check_points(x, "x", law.dim, dtype=law.dtype, device=law.device)
    tt = forward.coefficients(t, batch=x.shape[0], allow_zero=law.has_density_at_zero, dtype=law.dtype,
                              device=law.device).t
    parts = []
    for b0 in range(0, x.shape[0], batch_size):
        tb = tt[b0:b0 + batch_size] if tt.ndim == 1 else tt
        parts.append(_spectral_norm(law.hessian(x[b0:b0 + batch_size], tb)))
    return torch.cat(parts)


def distinct_points(data: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct rows of ``data`` and their multiplicities."""
    return torch.unique(data, dim=0, return_counts=True)


def nearest_pair(data) -> tuple[float, int, int]:
    """(delta, i, j): the smallest distance between two *distinct* points of ``data`` (n, d) and the
    indices of such a pair (exact duplicates are not a pair: they are one atom of larger weight)."""
    data = as_points(data, "data")
    atoms, _ = distinct_points(data)
    if atoms.shape[0] < 2:
        raise ValueError("data must contain at least two distinct points")
    dist, idx = nearest_neighbours(atoms, atoms, k=1, exclude_self=True)
    a = int(torch.argmin(dist[:, 0]))
    b = int(idx[a, 0])
    i = int((data == atoms[a]).all(dim=1).nonzero()[0])
    j = int((data == atoms[b]).all(dim=1).nonzero()[0])
    return float(dist[a, 0]), i, j


def neighbour_pairs(data) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(atoms, counts, pairs): the distinct points of ``data`` with their multiplicities, and every pair
    (i, j), i < j, of an atom and its nearest distinct neighbour (each pair once), as rows of ``pairs``."""
    data = as_points(data, "data")
    atoms, counts = distinct_points(data)
    if atoms.shape[0] < 2:
        raise ValueError("data must contain at least two distinct points")
    _, idx = nearest_neighbours(atoms, atoms, k=1, exclude_self=True)
    pairs = torch.sort(torch.stack([torch.arange(atoms.shape[0], device=atoms.device), idx[:, 0]], 1), 1)[0]
    return atoms, counts, torch.unique(pairs, dim=0)


def neighbour_midpoints(data) -> torch.Tensor:
    """Midpoints (x_i + x_j)/2 of every distinct point and its nearest distinct neighbour (each pair
    once): where the empirical score is steepest at small t."""
    atoms, _, pairs = neighbour_pairs(data)
    return 0.5 * (atoms[pairs[:, 0]] + atoms[pairs[:, 1]])


def lipschitz_cloud(data, t: float, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Points near the data at which to look for the largest Hessian: m draws from P^_t and the noised
    nearest-neighbour midpoints alpha_t (x_i + x_j)/2 (t > 0 a scalar, m >= 1)."""
    law = EmpiricalLaw(as_points(data, "data"))
    tc = forward.coefficients(t, allow_zero=False, dtype=law.dtype, device=law.device)
    if tc.t.ndim != 0:
        raise ValueError(f"t must be a scalar, got shape {tuple(tc.t.shape)}")
    check_positive_int(m, "m")
    mids = tc.alpha * neighbour_midpoints(law.samples)
    return torch.cat([law.sample(m, tc.t, generator), mids])


def empirical_lipschitz_lower_bound(data, t: TimeLike, *, exact: bool = True,
                                    pairs: str = "closest") -> torch.Tensor:
    """Lower bound on the Lipschitz constant of the empirical score (module docstring):

    exact=True:  alpha_t^2 delta_ij^2 w_i w_j / ((w_i + w_j) sigma_t^4) - 1/sigma_t^2, with the
                 posterior masses w_i, w_j of a pair's atoms at their noised midpoint; a rigorous bound
                 at every t for *every* pair. ``pairs="closest"`` uses the closest pair (the paper's
                 min_{i != j} |x_i - x_j|); ``pairs="neighbours"`` takes the largest bound over all
                 nearest-neighbour pairs, which is sharper (a wider pair has a larger delta^2 as long as
                 it keeps the posterior mass at its midpoint);
    exact=False: alpha_t^2 delta^2 / (4 sigma_t^4) - 1/sigma_t^2 for the closest pair, the small-t
                 limit (the paper's sigma_t^-4 min |x_i - x_j|^2 order); not a bound at large t.

    ``t`` may be a number or a 1-D tensor of times; returns a tensor of the same shape. The posterior
    masses are computed from streamed log-densities, so memory stays O(#pairs + n) per time. The bound
    grows like 1/sigma_t^4: finite for t down to ~1e-150 at unit scale; below, where float64 overflows,
    a ValueError names t.
    """
    check_choice(pairs, "pairs", ("closest", "neighbours"))
    exact = check_flag(exact, "exact")
    law = EmpiricalLaw(as_points(data, "data"))
    tc = forward.coefficients(t, allow_zero=False, dtype=law.dtype, device=law.device)
    atoms, counts, nn_pairs = neighbour_pairs(law.samples)
    gaps = (atoms[nn_pairs[:, 0]] - atoms[nn_pairs[:, 1]]).norm(dim=1)
    if pairs == "closest" or not exact:
        keep = torch.argmin(gaps).reshape(1)
        nn_pairs, gaps = nn_pairs[keep], gaps[keep]
    if not exact:
        a, s2 = tc.alpha, tc.sigma2
        return check_result(a ** 2 * gaps[0] ** 2 / (4 * s2 ** 2) - 1 / s2, "empirical_lipschitz_lower_bound", tc.t)
    i, j = nn_pairs[:, 0], nn_pairs[:, 1]
    mid = 0.5 * (atoms[i] + atoms[j])
    log_mass = torch.log(counts.to(law.dtype) / law.n)
    out = []
    for ts, a, s2 in zip(tc.t.reshape(-1), tc.alpha.reshape(-1), tc.sigma2.reshape(-1)):
        x = a * mid
        log_px = law.log_prob(x, ts)
        # log w_k(x) = log N(x; a x_k, s2 I) + log(c_k / n) - log p^_t(x); both atoms sit at distance
        # a delta / 2 from the noised midpoint
        log_kernel = -(a * gaps) ** 2 / (8 * s2) - 0.5 * law.dim * torch.log(2 * torch.pi * s2)
        log_wi = log_kernel + log_mass[i] - log_px
        log_wj = log_kernel + log_mass[j] - log_px
        harmonic = torch.exp(log_wi + log_wj - torch.logaddexp(log_wi, log_wj))  # w_i w_j / (w_i + w_j)
        out.append((a ** 2 * gaps ** 2 * harmonic / s2 ** 2 - 1 / s2).max())
    return check_result(torch.stack(out).reshape(tc.t.shape), "empirical_lipschitz_lower_bound", tc.t)


def gaussian_lipschitz(covariance, t: TimeLike) -> torch.Tensor:
    """Exact Lipschitz constant of the score of N(mu, Sigma) noised to t:
    1 / (sigma_t^2 + alpha_t^2 lambda_min(Sigma)) (finite for every t >= 0)."""
    cov = check_array(covariance, "covariance", finite=False)
    if cov.ndim != 2 or cov.shape[0] != cov.shape[1]:
        raise ValueError(f"covariance must have shape (d, d), got {tuple(cov.shape)}")
    check_spd(cov, "covariance")
    tc = forward.coefficients(t, allow_zero=True, dtype=cov.dtype, device=cov.device)
    lam_min = torch.linalg.eigvalsh(0.5 * (cov + cov.T))[0]
    return 1.0 / (tc.sigma2 + tc.alpha ** 2 * lam_min)
