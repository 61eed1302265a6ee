"""The expected Loss-Gap at small t: the memorization plateau d/sigma_t^2 - J(P_t) and what collisions of
training points take off it (Sec. 4, the regime of Thm 4.3).

Setting: D = {x_1, ..., x_n} iid from P_0 with a density p_0, P^_t = (1/n) sum_i N(alpha_t x_i, sigma_t^2 I).
By ``theory.estimators.lossgap`` (module docstring), exactly for every t > 0,

    E_D[Loss-Gap_t] = E_D[J(P^_t)] - J(P_t),    J(P^_t) = d/sigma_t^2 - (alpha_t^2/sigma_t^4) E_{P^_t} tr Cov[X_0 | X_t],

so everything below is about the deficit d/sigma_t^2 - J(P^_t) >= 0, the posterior spread between atoms.

Two atoms. Let x_1, x_2 be at distance delta and u = alpha_t delta / sigma_t their distance in noise units.
Along the unit vector e from x_2 to x_1, with xi = <X_t - alpha_t (x_1 + x_2)/2, e> / sigma_t, the posterior
weight of x_1 is w = sigmoid(u xi), and xi ~ (1/2) N(u/2, 1) + (1/2) N(-u/2, 1); tr Cov = w (1 - w) delta^2, so

    J(P^_t) = d/sigma_t^2 - (u^2/sigma_t^2) g(u),
    g(u) = E[w (1 - w)] = int phi(xi - u/2) sigmoid(u xi) sigmoid(-u xi) d xi        (``two_point_overlap``),

with g(0) = 1/4 and g(u) ~ sqrt(pi/8) exp(-u^2/8) / u as u -> infinity (the overlap of the two atoms).

n atoms. A pair closer than a few sigma_t/alpha_t and far from the rest carries mass 2/n of P^_t and loses
(2/n)(u^2/sigma_t^2) g(u). Summing over the n(n-1)/2 pairs and averaging over D (x_1 - x_2 has density
rho(v) = int p_0(y) p_0(y + v) dy, rho(0) = int p_0^2, ``collision_density``):

    E_D[d/sigma_t^2 - J(P^_t)] = (n - 1) E_{x_1, x_2}[(u^2/sigma_t^2) g(u)] + (three or more atoms within reach)
                               = (n - 1) rho(0) (sigma_t/alpha_t)^d sigma_t^-2 int_{R^d} |w|^2 g(|w|) dw (1 + O(sigma_t^2))
                               = (n - 1) c_d rho(0) sigma_t^(d-2) / alpha_t^d,
    c_d = S_{d-1} int_0^inf u^(d+1) g(u) du,   S_{d-1} = 2 pi^(d/2) / Gamma(d/2)      (``pair_collision_constant``);

the first line is exact for n = 2 at every t (``expected_pair_deficit``). Three atoms within reach have
probability ~ n^3 sigma_t^(2d) and cost ~ 1/(n sigma_t^2): O(n^2 sigma_t^(2d-2)). Hence, as t -> 0 at fixed n,

    E_D[Loss-Gap_t] = d/sigma_t^2 - (n - 1) c_d rho(0) sigma_t^(d-2)/alpha_t^d - J(P_0) + o(1)    (d >= 2),
    E_D[Loss-Gap_t] = 1/sigma_t^2 - (n - 1) c_1 rho(0) / (alpha_t sigma_t) + O(1)                   (d = 1)

(``small_t_loss_gap``). The collision term is of order 1/sigma_t in d = 1, where it dominates J(P_0), of
order one in d = 2 (c_2 = 27.8), and o(1) for d >= 3, where the limit is d/sigma_t^2 - J(P_0) as the naive
argument says; but c_d grows very fast (c_3 = 191, c_4 = 1.19e3, c_8 = 1.2e6), because two atoms interact out
to u ~ 2 sqrt(d) where the volume is, so at moderate sigma_t the term matters in any d. For one fixed set of
distinct points the deficit is exponentially small, O(exp(-min u_ij^2 / 8)); it is the average over training
sets, which contains close pairs, that makes it algebraic in sigma_t.

The expansion holds while collisions are rare, (n - 1) c_d rho(0) (sigma_t/alpha_t)^d << d; E_D[Loss-Gap_t]
leaves its plateau d/sigma_t^2 - J(P_t) when n ~ sigma_t^-d (``first_order_crossover``): the crossover
sigma* ~ n^(-1/d) behind the paper's "rate like n^(-1/d)".
"""

from __future__ import annotations

import math

import torch

from .._validate import as_tensor, check_positive_int
from ..laws import forward
from ..laws.law import NoisedLaw
from .estimate import Estimate, RunningMoments
from .lossgap import memorization_level
from .quadrature import gauss_legendre_rule

# rules for g(u): in xi for u <= 1 (integrand smooth on the unit scale), in y = u xi for u > 1
_XI_RULE = tuple(torch.as_tensor(v, dtype=torch.float64) for v in gauss_legendre_rule(-12.5, 13.0, 26, 10))
_Y_RULE = tuple(torch.as_tensor(v, dtype=torch.float64) for v in gauss_legendre_rule(-40.0, 80.0, 120, 8))
_U_MAX = 75.0
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _log_sigmoid_product(a: torch.Tensor) -> torch.Tensor:
    """log[sigmoid(a) sigmoid(-a)] = -|a| - 2 log(1 + e^-|a|), stable for every a."""
    b = a.abs()
    return -b - 2 * torch.log1p(torch.exp(-b))


def _overlap_by_quadrature(u: torch.Tensor) -> torch.Tensor:
    """g(u) for a 1-D float64 tensor by composite Gauss-Legendre in log space (the xi form for u <= 1, the y
    form for u > 1, each smooth on the unit scale); 0 beyond U_MAX (g < 1e-300)."""
    out = torch.zeros_like(u)
    small, large = u <= 1.0, (u > 1.0) & (u <= _U_MAX)
    if bool(small.any()):
        xi, w = _XI_RULE
        us = u[small, None]
        log_f = torch.log(w) - 0.5 * (xi - us / 2) ** 2 - _LOG_SQRT_2PI + _log_sigmoid_product(us * xi)
        out[small] = torch.exp(torch.logsumexp(log_f, dim=1))
    if bool(large.any()):
        y, w = _Y_RULE
        ul = u[large, None]
        log_f = (torch.log(w) - 0.5 * (y / ul - ul / 2) ** 2 - _LOG_SQRT_2PI + _log_sigmoid_product(y)
                 - torch.log(ul))
        out[large] = torch.exp(torch.logsumexp(log_f, dim=1))
    return out


_SPLINE = None


def _log_overlap_spline():
    """A cubic spline of log g on [0, U_MAX] (knots every 0.02, values by ``_overlap_by_quadrature``), made once."""
    global _SPLINE
    if _SPLINE is None:
        from scipy.interpolate import CubicSpline

        knots = torch.linspace(0.0, _U_MAX, int(_U_MAX / 0.02) + 1, dtype=torch.float64)
        _SPLINE = CubicSpline(knots.numpy(), torch.log(_overlap_by_quadrature(knots)).numpy())
    return _SPLINE


def two_point_overlap(u) -> torch.Tensor:
    """g(u) = E[w (1 - w)] for two noised atoms at distance u (in units of sigma_t / alpha_t), the posterior
    weight w = sigmoid(u xi), xi ~ N(u/2, 1) (module docstring):

        g(u) = int phi(xi - u/2) sigmoid(u xi) sigmoid(-u xi) d xi = (1/u) int phi(y/u - u/2) sigmoid(y) sigmoid(-y) dy.

    Evaluated as a cubic spline of log g through knots 0.02 apart, each knot by composite Gauss-Legendre in
    log space (the first form for u <= 1, the second for u > 1, both smooth on the unit scale): ~1e-10
    relative for every u in [0, 75]; 0 beyond (g < 1e-300). ``u``: a number or a tensor (>= 0); returns
    float64 of its shape."""
    u = as_tensor(u, "u", dtype=torch.float64)
    if not bool((u >= 0).all()) or not bool(torch.isfinite(u).all()):
        raise ValueError("u must be finite and non-negative")
    flat = u.reshape(-1)
    out = torch.zeros_like(flat)
    inside = flat <= _U_MAX
    if bool(inside.any()):
        values = _log_overlap_spline()(flat[inside].cpu().numpy())
        out[inside] = torch.exp(torch.as_tensor(values, dtype=torch.float64, device=flat.device))
    return out.reshape(u.shape)


def pair_collision_constant(dim: int) -> float:
    """c_d = S_{d-1} int_0^inf u^(d+1) g(u) du, S_{d-1} = 2 pi^(d/2) / Gamma(d/2): the expected deficit
    d/sigma_t^2 - J(P^_t) per extra training point is c_d rho(0) sigma_t^(d-2) / alpha_t^d at small t
    (module docstring). c_1 = 3.066, c_2 = 27.76, c_3 = 191.5, c_8 = 1.20e6 (composite Gauss-Legendre on
    [0, 2 sqrt(d) + 40] in log space)."""
    d = check_positive_int(dim, "dim")
    nodes, weights = gauss_legendre_rule(0.0, 2 * math.sqrt(d) + 40.0, 4 * int(2 * math.sqrt(d) + 40), 10)
    u = torch.as_tensor(nodes, dtype=torch.float64)
    log_terms = torch.log(torch.as_tensor(weights, dtype=torch.float64)) + (d + 1) * torch.log(u) \
        + torch.log(two_point_overlap(u))
    log_sphere = math.log(2.0) + 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d)
    return math.exp(log_sphere + float(torch.logsumexp(log_terms, 0)))


def collision_density(law: NoisedLaw) -> float:
    """rho(0) = int p_0(x)^2 dx = E_{x_1, x_2 iid P_0} [density of x_1 - x_2 at 0]: the rate at which two training
    points collide. For a mixture P_0 = sum_k pi_k N(mu_k, Sigma_k) it is the closed form
    sum_{j,k} pi_j pi_k N(mu_j - mu_k; 0, Sigma_j + Sigma_k); laws with point masses (the empirical law) raise."""
    if not isinstance(law, NoisedLaw):
        raise ValueError(f"law must be a NoisedLaw, got {type(law).__name__}")
    w, m, f = law.components(0.0)
    cov = f @ f.transpose(-2, -1)
    pair_cov = cov[:, None] + cov[None, :]                               # (K, K, d, d)
    if not bool((torch.linalg.eigvalsh(pair_cov) > 0).all()):
        raise ValueError("the law has point masses: int p_0^2 is infinite")
    diff = m[:, None, :] - m[None, :, :]
    chol = torch.linalg.cholesky(pair_cov)
    sol = torch.linalg.solve_triangular(chol, diff[..., None], upper=False)[..., 0]
    d = m.shape[1]
    log_norm = (-0.5 * sol.pow(2).sum(-1) - torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
                - d * _LOG_SQRT_2PI)
    log_w = torch.log(w)
    return float(torch.exp(torch.logsumexp((log_w[:, None] + log_w[None, :] + log_norm).reshape(-1), 0)))


def expected_pair_deficit(law: NoisedLaw, t: float, n_pairs: int, *, generator: torch.Generator | None = None,
                          batch_size: int = 4096) -> Estimate:
    """E_{x_1, x_2 iid P_0}[(u^2/sigma_t^2) g(u)], u = alpha_t |x_1 - x_2| / sigma_t, by Monte Carlo over pairs:
    exactly d/sigma_t^2 - E_D[J(P^_t)] for n = 2 at every t, and the deficit per extra point of the pair
    (first-order) expansion for any n (module docstring); its small-t limit is c_d rho(0) sigma_t^(d-2)/alpha_t^d."""
    if not isinstance(law, NoisedLaw):
        raise ValueError(f"law must be a NoisedLaw, got {type(law).__name__}")
    tc = forward.coefficients(t, allow_zero=False)
    if tc.t.ndim != 0:
        raise ValueError(f"t must be a scalar time, got shape {tuple(tc.t.shape)}")
    check_positive_int(n_pairs, "n_pairs")
    a, s2 = float(tc.alpha), float(tc.sigma2)
    acc = RunningMoments()
    for b0 in range(0, n_pairs, batch_size):
        b = min(batch_size, n_pairs - b0)
        delta = (law.sample(b, 0.0, generator) - law.sample(b, 0.0, generator)).norm(dim=1).to(torch.float64).cpu()
        u = a * delta / math.sqrt(s2)
        value = torch.zeros_like(u)
        near = u <= 40.0          # beyond, u^2 g(u) < 1e-85: skipped (the common case at small t)
        value[near] = u[near] ** 2 / s2 * two_point_overlap(u[near])
        acc.update(value)
    return acc.estimate()


def collision_term(dim: int, n: int, t, collision_density: float) -> torch.Tensor:
    """(n - 1) c_d rho(0) sigma_t^(d-2) / alpha_t^d: the small-t expected deficit d/sigma_t^2 - E_D[J(P^_t)] from
    pairs of training points (module docstring). ``t``: a number or a tensor (> 0)."""
    d = check_positive_int(dim, "dim")
    n = check_positive_int(n, "n")
    rho = float(collision_density)
    if not (rho >= 0 and math.isfinite(rho)):
        raise ValueError(f"collision_density must be finite and non-negative, got {collision_density}")
    tc = forward.coefficients(t, allow_zero=False)
    return (n - 1) * pair_collision_constant(d) * rho * tc.sigma2 ** (0.5 * d - 1) / tc.alpha ** d


def small_t_loss_gap(dim: int, n: int, t, *, fisher_true: float, collision_density: float) -> torch.Tensor:
    """The leading terms of E_D[Loss-Gap_t] as t -> 0 at fixed n (module docstring):

        d/sigma_t^2 - (n - 1) c_d rho(0) sigma_t^(d-2)/alpha_t^d - J,

    with ``fisher_true`` = J the Fisher information of the true law (J(P_0) for the limit itself; J(P_t) makes
    the last term exact, E_D[Loss-Gap_t] = E_D[J(P^_t)] - J(P_t)) and ``collision_density`` = int p_0^2. Error
    o(1) for d >= 2 (O(t) from J, O(sigma_t^d) from the pair term, O(n^2 sigma_t^(2d-2)) from triples); O(1) in
    d = 1, where the collision term ~ 1/sigma_t is the first correction to 1/sigma_t^2."""
    return (memorization_level(dim, t) - collision_term(dim, n, t, collision_density) - float(fisher_true))


def first_order_crossover(dim: int, t, *, fisher_true: float, pair_deficit: float, fraction: float = 0.5) -> float:
    """The n at which the pair (first-order) expansion alone brings E_D[Loss-Gap_t] down to ``fraction`` of its
    plateau d/sigma_t^2 - J: n = 1 + (1 - fraction)(d/sigma_t^2 - J) / pair_deficit, with ``pair_deficit`` the
    deficit per extra point (``expected_pair_deficit``, or c_d rho(0) sigma_t^(d-2)/alpha_t^d at small t, which
    makes n ~ sigma_t^-d). A guide, not the crossover itself: near it, three and more atoms interact."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    if not pair_deficit > 0:
        raise ValueError(f"pair_deficit must be positive, got {pair_deficit}")
    plateau = float(memorization_level(dim, t)) - float(fisher_true)
    return 1.0 + (1.0 - fraction) * plateau / float(pair_deficit)
