"""The statistical separation of Sec. 4: the Loss-Gap, its Fisher-divergence identity (Prop. 4.1) and
the right-hand side of its lower bound (Thm 4.3), estimated by Monte Carlo.

For a training set D = {x_1, ..., x_n} and a time t > 0, the per-sample denoising-score-matching loss of
a score function s is

    l_t(x_i, s) = E_z | -(X_t - alpha_t x_i) / sigma_t^2 - s(X_t, t) |^2,   X_t = alpha_t x_i + sigma_t z,

and the Loss-Gap compares the true score grad log p_t with the empirical score grad log p^_t:

    Loss-Gap_t = (1/n) sum_i [ l_t(x_i, grad log p_t) - l_t(x_i, grad log p^_t) ].

Prop. 4.1 (exact, for every fixed D): Loss-Gap_t = Fisher(P^_t, P_t) = E_{X ~ P^_t} |grad log p^_t(X) - grad log p_t(X)|^2.

Derivation. Write g = -(X_t - alpha_t x_i)/sigma_t^2 (the DSM target), s = grad log p_t, s^ = grad log p^_t.
Per draw, |g - s|^2 - |g - s^|^2 = |s|^2 - |s^|^2 - 2 g.(s - s^). With i uniform on {1..n} and z ~ N(0, I)
the pair (i, X_t) has X_t ~ P^_t, and E[g | X_t = x] = s^(x): indeed

    E[g | X_t = x] = sum_i w_i(x) (-(x - alpha_t x_i)/sigma_t^2) = sum_i w_i(x) grad log N(x; alpha_t x_i, sigma_t^2 I)
                   = grad log (1/n) sum_i N(x; alpha_t x_i, sigma_t^2 I) = s^(x),

with w_i(x) the posterior P(i | X_t = x). Since s and s^ are functions of X_t alone, the tower rule gives

    Loss-Gap_t = E[|s|^2 - |s^|^2 - 2 s^.(s - s^)] = E_{P^_t} |s - s^|^2,

so the identity holds exactly for the fixed D (it needs no expectation over D). A Monte-Carlo estimate of
either side is unbiased for the same number; the two estimators differ only by the zero-mean term
-2 (g - s^).(s - s^), which is why the Fisher form has the smaller variance.

Common random numbers: each loss is ~ d / sigma_t^2 at small t while the gap can be much smaller, so the
two losses are evaluated at the same (x_i, z) and the standard error is taken from the per-draw
differences.

Integration by parts (``loss_gap_terms``). With J(Q) = E_Q |grad log q|^2 = -E_Q Delta log q the Fisher
information (Gaussian tails: no boundary terms), expand the Fisher form and integrate the cross term by parts,
E_{P^_t}[s^.s] = int grad p^_t . s = -E_{P^_t}[Delta log p_t]:

    Loss-Gap_t = E_{P^_t} |s^|^2 - 2 E_{P^_t}[s^.s] + E_{P^_t}|s|^2
               = E_{P^_t} [ -Delta log p^_t + 2 Delta log p_t + |s|^2 ]            (for every fixed D),

and -Delta log p^_t = d/sigma_t^2 - (alpha_t^2/sigma_t^4) tr Cov[X_0 | X_t] is d/sigma_t^2 up to the posterior
spread, so this form has per-draw values of size J(P_0), not d/sigma_t^2, at small t: it resolves the O(1)
terms of the gap that the Fisher form (per-draw values ~ |z|^2/sigma_t^2) cannot. Where many points share a
noise ball the Fisher form is the quieter one; ``loss_gap_terms`` evaluates both on the same draws and
combines them with the variance-minimising weight.

The expected Loss-Gap (over training sets D of n iid points of P_0). Since E_D p^_t = p_t, the last two terms
average to E_{P_t}[2 Delta log p_t + |s|^2] = -2 J(P_t) + J(P_t), so, exactly for every t > 0,

    E_D[Loss-Gap_t] = E_D[J(P^_t)] - J(P_t),

and since Fisher information does not increase under convolution, J(P^_t) = J(P^_0 * N(0, sigma_t^2 I))
<= J(N(0, sigma_t^2 I)) = d/sigma_t^2 (``memorization_level``), with equality for n = 1:

    E_D[Loss-Gap_t] <= d/sigma_t^2 - J(P_t) < d/sigma_t^2,    = d/sigma_t^2 - J(P_t) for n = 1;

for one Gaussian N(mu, Sigma), J(P_t) = tr C_t^{-1} with C_t = alpha_t^2 Sigma + sigma_t^2 I
(``gaussian_fisher_information``). The small-t expansion of E_D[J(P^_t)] is in ``theory.estimators.small_t``.
"""

from __future__ import annotations

from typing import Iterator, NamedTuple

import torch

from ..laws import forward
from .._validate import (TimeLike, check_array, check_generator, check_number, check_output,
                         check_positive_int, check_result, check_spd)
from ..laws.empirical import as_empirical, as_points
from .estimate import Estimate, RunningCovariance, RunningMoments
from ..laws.law import NoisedLaw, ScoreLike, score_function

DEFAULT_BATCH = 1024


def scalar_time(t: TimeLike, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """``t`` validated as one positive time, a ``()`` tensor (the estimators' entry check). The estimators
    of this module are finite wherever their laws are (theory._validate, "Small t"): at t where a DSM loss
    (~ d / sigma_t^2) or a score overflows float64 they raise a one-line ValueError naming t."""
    tt = forward.coefficients(t, allow_zero=False, dtype=dtype, device=device).t
    if tt.ndim != 0:
        raise ValueError(f"t must be a scalar time, got shape {tuple(tt.shape)}")
    return tt


def _check_dim(score, name: str, d: int) -> None:
    """A law given as ``score`` must live in the data's dimension d."""
    if isinstance(score, NoisedLaw) and score.dim != d:
        raise ValueError(f"{name} is a law on R^{score.dim}, but the data live in R^{d}")


def _draw_count(n_draws, n: int) -> int:
    """The number of Monte-Carlo draws (``n_draws``, or the n training points once): at least 2, since the
    estimate reports a standard error."""
    if n_draws is None:
        if n < 2:
            raise ValueError(f"n_draws must be given (>= 2): data has {n} point, and a standard error needs at "
                             f"least two draws")
        return n
    return check_positive_int(n_draws, "n_draws", minimum=2)


def _dsm_draws(x: torch.Tensor, n_draws: int | None, batch_size: int,
               generator: torch.Generator | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of (x0, z): every training point once (``n_draws=None``), or ``n_draws`` indices drawn
    uniformly with replacement; z ~ N(0, I) from ``generator``."""
    n = x.shape[0]
    total = n if n_draws is None else n_draws
    for b0 in range(0, total, batch_size):
        b = min(batch_size, total - b0)
        if n_draws is None:
            x0 = x[b0:b0 + b]
        else:
            x0 = x[torch.randint(n, (b,), generator=generator, device=x.device)]
        z = torch.randn(x0.shape, generator=generator, dtype=x.dtype, device=x.device)
        yield x0, z


def dsm_loss_estimate(score: ScoreLike, data, t: float, *, baseline: ScoreLike | None = None,
                      n_draws: int | None = None, generator: torch.Generator | None = None,
                      batch_size: int = DEFAULT_BATCH) -> Estimate:
    """Monte-Carlo estimate of the empirical DSM loss (Sec. 3, the loss of Prop. 4.1)

        L_t(s) = (1/n) sum_i l_t(x_i, s),   l_t(x_i, s) = E_z | -(X_t - alpha_t x_i)/sigma_t^2 - s(X_t, t) |^2,

    or, with ``baseline`` = s_b, of the difference L_t(s) - L_t(s_b) with common random numbers (the same
    x_i and z for both scores; the standard error is that of the per-draw differences).

    ``score``/``baseline``: a ``NoisedLaw`` (its ``score`` is used) or a callable ``score(x, t)`` returning
    finite ``(B, d)`` values (checked at every batch). ``data``: the training set (n, d) or an
    ``EmpiricalLaw``. ``n_draws=None``: each training point once with one draw of z (stratified over i;
    needs n >= 2); an integer >= 2: that many pairs (i uniform, z).
    """
    x = as_points(data)
    tc = forward.coefficients(scalar_time(t, dtype=x.dtype, device=x.device))
    s_fn = score_function(score, "score")
    b_fn = score_function(baseline, "baseline") if baseline is not None else None
    _check_dim(score, "score", x.shape[1])
    _check_dim(baseline, "baseline", x.shape[1])
    draws = _draw_count(n_draws, x.shape[0])
    check_positive_int(batch_size, "batch_size")
    check_generator(generator, "generator", x.device)
    acc = RunningMoments()
    for x0, z in _dsm_draws(x, None if n_draws is None else draws, batch_size, generator):
        value = forward._dsm_loss(s_fn, x0, tc, z, "score")
        if b_fn is not None:
            value = value - forward._dsm_loss(b_fn, x0, tc, z, "baseline")
        acc.update(check_result(value, "the DSM loss", tc.t))
    return acc.estimate()


def loss_gap(truth: ScoreLike, data, t: float, *, n_draws: int | None = None,
             generator: torch.Generator | None = None, batch_size: int = DEFAULT_BATCH) -> Estimate:
    """Monte-Carlo Loss-Gap_t = (1/n) sum_i [l_t(x_i, grad log p_t) - l_t(x_i, grad log p^_t)] (Prop. 4.1),
    the DSM loss of the true score minus that of the empirical score of ``data``, with common random
    numbers. ``truth``: the true law P (a ``NoisedLaw``) or its score function. Equals
    ``fisher_divergence(P^, P, t)`` in expectation over the Monte Carlo for every fixed training set
    (see the module docstring for the derivation)."""
    empirical = as_empirical(data)
    _check_dim(truth, "truth", empirical.dim)
    return dsm_loss_estimate(truth, empirical, t, baseline=empirical, n_draws=n_draws, generator=generator,
                             batch_size=batch_size)


def fisher_divergence(p: NoisedLaw, q: ScoreLike, t: float, n_draws: int, *, under: NoisedLaw | None = None,
                      generator: torch.Generator | None = None, batch_size: int = DEFAULT_BATCH) -> Estimate:
    """Monte-Carlo Fisher divergence of the noised laws at time t,

        Fisher_under(P_t, Q_t) = E_{X ~ under_t} | grad log p_t(X) - grad log q_t(X) |^2,

    with X drawn from ``under`` (default ``p``; pass ``under=q`` for the expectation under the other law).
    Prop. 4.1 uses p = P^_t (the empirical law), q = P_t (the truth), under = P^_t. ``q`` may also be a
    plain score function when ``under`` is not it (its output is checked: finite, (B, d)). n_draws >= 2."""
    if not isinstance(p, NoisedLaw):
        raise ValueError(f"p must be a NoisedLaw, got {type(p).__name__}")
    under = p if under is None else under
    if not isinstance(under, NoisedLaw):
        raise ValueError(f"under must be a NoisedLaw, got {type(under).__name__}")
    q_fn = score_function(q, "q")
    _check_dim(under, "under", p.dim)
    _check_dim(q, "q", p.dim)
    tt = scalar_time(t, dtype=under.dtype, device=under.device)
    n_draws = check_positive_int(n_draws, "n_draws", minimum=2)
    check_positive_int(batch_size, "batch_size")
    check_generator(generator, "generator", under.device)
    acc = RunningMoments()
    for b0 in range(0, n_draws, batch_size):
        x = under.sample(min(batch_size, n_draws - b0), tt, generator)
        acc.update(check_result((p.score(x, tt) - check_output(q_fn(x, tt), "q", x.shape)).pow(2).sum(dim=-1),
                                "the Fisher divergence", tt))
    return acc.estimate()


class LossGapTerms(NamedTuple):
    """The Loss-Gap of one training set and its parts, all from the same draws X ~ P^_t (``loss_gap_terms``).

    loss_gap: the minimum-variance combination of the two unbiased forms below;
    fisher_form: E |s^ - s|^2 (Prop. 4.1); by_parts: E[-Delta log p^_t + 2 Delta log p_t + |s|^2];
    fisher_empirical: J(P^_t) = -E Delta log p^_t; fisher_form_excess: fisher_form - fisher_empirical (its
    expectation over training sets is -J(P_t): the expected identity, checked without integration by parts)."""

    loss_gap: Estimate
    fisher_form: Estimate
    by_parts: Estimate
    fisher_empirical: Estimate
    fisher_form_excess: Estimate


def loss_gap_terms(truth: NoisedLaw, data, t: float, n_draws: int, *, generator: torch.Generator | None = None,
                   batch_size: int = DEFAULT_BATCH) -> LossGapTerms:
    """Loss-Gap_t of the training set ``data`` against the true law ``truth``, by Monte Carlo under P^_t in two
    exact forms (see the module docstring): the Fisher form E|s^ - s|^2 and the integration-by-parts form
    E[-Delta log p^_t + 2 Delta log p_t + |s|^2], evaluated on the same ``n_draws`` draws and combined with
    the variance-minimising weight (``RunningCovariance.combined``); also J(P^_t) = -E Delta log p^_t. At
    small t the by-parts form is orders of magnitude quieter (its per-draw values are O(J(P_0)) instead of
    ~ d/sigma_t^2), where many points share a noise ball the Fisher form is; the combination takes the better
    of the two (and more)."""
    if not isinstance(truth, NoisedLaw):
        raise ValueError(f"truth must be a NoisedLaw, got {type(truth).__name__}")
    empirical = as_empirical(data)
    tt = scalar_time(t, dtype=empirical.dtype, device=empirical.device)
    check_positive_int(n_draws, "n_draws")
    check_positive_int(batch_size, "batch_size")
    acc = RunningCovariance(3)
    for b0 in range(0, n_draws, batch_size):
        x = empirical.sample(min(batch_size, n_draws - b0), tt, generator)
        s_hat, lap_hat = empirical.score_and_laplacian(x, tt)
        s, lap = truth.score_and_laplacian(x, tt)
        fisher_form = (s_hat - s).pow(2).sum(-1)
        by_parts = -lap_hat + 2 * lap + s.pow(2).sum(-1)
        acc.update(torch.stack([fisher_form, by_parts, -lap_hat], dim=1))
    return LossGapTerms(acc.combined(0, 1), acc.column(0), acc.column(1), acc.column(2),
                        acc.estimate([1.0, 0.0, -1.0]))


def fisher_information(law: NoisedLaw, t: float, n_draws: int, *, generator: torch.Generator | None = None,
                       batch_size: int = DEFAULT_BATCH) -> Estimate:
    """Monte-Carlo Fisher information of the noised law, J(P_t) = E_{P_t} |grad log p_t|^2 = -E_{P_t} Delta log p_t
    (integration by parts), from the Laplacian form: exact (zero variance) for one Gaussian, where
    -Delta log p_t = tr C_t^{-1}; for the empirical law -Delta log p^_t = d/sigma_t^2 - (alpha_t^2/sigma_t^4) tr
    Cov[X_0 | X_t], so its values are d/sigma_t^2 up to the posterior spread. ``t`` >= 0 for a law with a
    density at 0 (a mixture: J(P_0)), > 0 otherwise."""
    if not isinstance(law, NoisedLaw):
        raise ValueError(f"law must be a NoisedLaw, got {type(law).__name__}")
    tt = forward.coefficients(t, allow_zero=law.has_density_at_zero, dtype=law.dtype, device=law.device).t
    if tt.ndim != 0:
        raise ValueError(f"t must be a scalar time, got shape {tuple(tt.shape)}")
    check_positive_int(n_draws, "n_draws")
    check_positive_int(batch_size, "batch_size")
    acc = RunningMoments()
    for b0 in range(0, n_draws, batch_size):
        x = law.sample(min(batch_size, n_draws - b0), tt, generator)
        acc.update(-law.laplacian(x, tt))
    return acc.estimate()


def memorization_level(dim: int, t) -> torch.Tensor:
    """d / sigma_t^2: the Fisher information of one noised atom N(alpha_t x_i, sigma_t^2 I), hence the upper
    bound of J(P^_t) for every training set and of E_D[Loss-Gap_t] + J(P_t) (module docstring)."""
    d = check_positive_int(dim, "dim")
    return d / forward.coefficients(t, allow_zero=False).sigma2


def gaussian_fisher_information(covariance, t) -> torch.Tensor:
    """J(P_t) = tr C_t^{-1}, C_t = alpha_t^2 Sigma + sigma_t^2 I, for P_0 = N(mu, Sigma) (t >= 0; t = 0 gives
    tr Sigma^{-1}). With n = 1, E_D[Loss-Gap_t] = d/sigma_t^2 - tr C_t^{-1} exactly (module docstring)."""
    cov = check_array(covariance, "covariance", ("d", "d"))
    if cov.shape[0] != cov.shape[1]:
        raise ValueError(f"covariance must have shape (d, d), got {tuple(cov.shape)}")
    cov = check_spd(cov, "covariance")
    tc = forward.coefficients(t, allow_zero=True, dtype=cov.dtype, device=cov.device)
    if tc.t.ndim != 0:
        raise ValueError(f"t must be a scalar time, got shape {tuple(tc.t.shape)}")
    eig = torch.linalg.eigvalsh(0.5 * (cov + cov.T))
    return (1.0 / (tc.alpha ** 2 * eig + tc.sigma2)).sum()


def gaussian_fisher_divergence(mean_p, cov_p, mean_q, cov_q) -> torch.Tensor:
    """Closed-form Fisher divergence between two Gaussians under the first, P = N(m_p, S_p), Q = N(m_q, S_q):

        E_P |grad log p - grad log q|^2 = tr(S_p^-1) - 2 tr(S_q^-1) + tr(S_q^-2 S_p) + |S_q^-1 (m_p - m_q)|^2.

    (grad log p - grad log q = -(S_p^-1 - S_q^-1)(x - m_p) + S_q^-1 (m_p - m_q); the cross term vanishes since
    E(x - m_p) = 0 and E (x - m_p)(x - m_p)^T = S_p.) For n = 1, P^_t = N(alpha_t x_1, sigma_t^2 I) and a one-component
    P_t = N(alpha_t mu, alpha_t^2 Sigma + sigma_t^2 I) give the Loss-Gap of a single training point exactly.
    Means (d,) and covariances (d, d) (tensors, arrays or lists; finite; covariances symmetric positive
    definite) in mean_p's floating dtype."""
    m_p = check_array(mean_p, "mean_p", ("d",))
    dtype, device = m_p.dtype, m_p.device
    d = m_p.shape[0]
    m_q = check_array(mean_q, "mean_q", (d,), dtype=dtype, device=device)
    s_p = check_spd(check_array(cov_p, "cov_p", (d, d), dtype=dtype, device=device), "cov_p")
    s_q = check_spd(check_array(cov_q, "cov_q", (d, d), dtype=dtype, device=device), "cov_q")
    inv_p = torch.linalg.inv(s_p)
    inv_q = torch.linalg.inv(s_q)
    shift = inv_q @ (m_p - m_q)
    value = torch.trace(inv_p) - 2 * torch.trace(inv_q) + torch.trace(inv_q @ inv_q @ s_p) + shift @ shift
    return check_result(value, "gaussian_fisher_divergence")


def _covariances_at_zero(law: NoisedLaw) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(law, NoisedLaw):
        raise ValueError(f"law must be a NoisedLaw, got {type(law).__name__}")
    comp = law.components(0.0)
    return comp.weights, comp.factors @ comp.factors.transpose(-2, -1)


def mean_precision_trace(law: NoisedLaw) -> float:
    """sum_k pi_k tr Sigma_k^{-1}: the tr Sigma^{-1} of the dimensionally consistent reading of Thm 4.3, and
    J(P_0) of a well-separated mixture (J(P_0) = sum_k pi_k tr Sigma_k^{-1} - E tr Cov_r[g_k]: lower where
    components overlap). A law with point masses (the empirical law) raises."""
    weights, covs = _covariances_at_zero(law)
    eig = torch.linalg.eigvalsh(covs)
    if not bool((eig > 0).all()):
        raise ValueError("the law has singular components (point masses): tr Sigma^-1 is infinite")
    return float(weights @ (1.0 / eig).sum(-1))


def min_covariance_eigenvalue(law: NoisedLaw) -> float:
    """min_k lambda_min(Sigma_k): the narrowest direction of any component of P_0 (0 for the empirical law)."""
    _, covs = _covariances_at_zero(law)
    return float(torch.linalg.eigvalsh(covs).min())


def mean_covariance_trace(law: NoisedLaw) -> float:
    """The tr Sigma of Thm 4.3 for a mixture: the weight-averaged trace sum_k pi_k tr Sigma_k of the
    component covariances of P_0 (equal to tr Sigma_k when all components share one trace, as in
    paper_mixture), from the law's components: tr Sigma_k = |F_k|_F^2. An empirical law gives 0."""
    if not isinstance(law, NoisedLaw):
        raise ValueError(f"law must be a NoisedLaw, got {type(law).__name__}")
    comp = law.components(0.0)
    return float(comp.weights @ comp.factors.pow(2).sum((-2, -1)))


def loss_gap_lower_bound(dim: int, t, trace: float) -> torch.Tensor:
    """The order of the lower bound of Thm 4.3 as written, without its constant:

        E_D[Loss-Gap_t] = Omega( d / sigma_t^2 + tr Sigma ),

    for a K-component Gaussian mixture with Delta_min = Theta(sqrt d), log n = O(d) and t in a small-t
    interval. ``trace`` is tr Sigma, taken as the weight-averaged component trace sum_k pi_k tr Sigma_k
    (``mean_covariance_trace``). The theorem's constant is not known explicitly, so what is checkable is
    that the ratio Loss-Gap_t / (d / sigma_t^2 + tr Sigma) stays bounded below over the stated regime.
    Units: the Loss-Gap and d/sigma_t^2 are squared scores (1/length^2), tr Sigma is a length^2; since
    E_D[Loss-Gap_t] < d/sigma_t^2 (module docstring), the ratio is below 1/(1 + sigma_t^2 tr Sigma / d) and
    no constant uniform in Sigma exists once tr Sigma >> d/sigma_t^2 (compare
    ``loss_gap_lower_bound_consistent``). ``t``: a number or a tensor (> 0); returns a tensor of its shape,
    finite for t >= ~1e-307 (below, where d / sigma_t^2 overflows float64, a ValueError names t).
    ``trace``: a finite number >= 0."""
    d = check_positive_int(dim, "dim")
    trace = check_number(trace, "trace", low=0.0)
    tc = forward.coefficients(t, allow_zero=False)
    return check_result(d / tc.sigma2 + trace, "loss_gap_lower_bound", tc.t)


def loss_gap_lower_bound_consistent(dim: int, t, trace_inverse: float) -> torch.Tensor:
    """The dimensionally consistent reading of Thm 4.3's bound, d / sigma_t^2 + tr Sigma^{-1} (both terms
    squared scores; ``trace_inverse`` = sum_k pi_k tr Sigma_k^{-1}, ``mean_precision_trace``). Where
    sigma_t^2 << lambda_min(Sigma) and sigma_t << alpha_t x the spacing of the training points,
    E_D[Loss-Gap_t] ~ d/sigma_t^2 - J(P_0) (``theory.estimators.small_t``), so the ratio is about
    (d/sigma_t^2 - tr Sigma^{-1}) / (d/sigma_t^2 + tr Sigma^{-1}); it falls to ~ 1/(1 + sigma_t^2/lambda)^2
    (n = 1, Sigma = lambda I) where the components are narrower than the noise. ``t`` as in
    ``loss_gap_lower_bound``; ``trace_inverse``: a finite number >= 0."""
    d = check_positive_int(dim, "dim")
    trace_inverse = check_number(trace_inverse, "trace_inverse", low=0.0)
    tc = forward.coefficients(t, allow_zero=False)
    return check_result(d / tc.sigma2 + trace_inverse, "loss_gap_lower_bound_consistent", tc.t)
