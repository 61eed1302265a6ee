"""The expected Loss-Gap (theory.estimators.lossgap, theory.estimators.small_t): the exact identity
E_D[Loss-Gap_t] = E_D[J(P^_t)] - J(P_t), the n = 1 closed form, the Laplacian (integration-by-parts) forms,
the two-atom closed form and the small-t pair-collision expansion, each against an independent computation
(quadrature, scipy, autograd, Monte Carlo over training sets) with the tolerance stated in the test."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate

import theory
from theory import lossgap, quadrature, small_t
from theory.estimators.estimate import RunningCovariance

pytestmark = pytest.mark.usefixtures("one_thread")
N_SE = 4.0


def _gaussian(d, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(d, d, generator=g, dtype=torch.float64)
    cov = scale * (a @ a.T / d + 0.5 * torch.eye(d, dtype=torch.float64))
    return theory.GaussianMixture.gaussian(torch.randn(d, generator=g, dtype=torch.float64), cov)


def _zero_score(x, t):
    return torch.zeros_like(x)


def _over_datasets(truth, n, t, m, draws, seed):
    """Per training set D (m of them, n points each): the LossGapTerms of ``lossgap.loss_gap_terms``."""
    g = torch.Generator().manual_seed(seed)
    return [lossgap.loss_gap_terms(truth, truth.sample(n, 0.0, g), t, draws, generator=g) for _ in range(m)]


def _mean_se(values):
    v = np.asarray(values, float)
    return float(v.mean()), float(v.std(ddof=1) / math.sqrt(v.size))


# --------------------------------------------------------------------------------------------- laws
@pytest.mark.parametrize("which", ["mixture", "empirical"])
def test_laplacian_is_the_trace_of_the_autograd_hessian(which, autograd_score_hessian):
    truth = theory.paper_mixture(3, 3, separation=1.0, trace=2.0, anisotropy=3.0, seed=2)
    law = truth if which == "mixture" else theory.EmpiricalLaw(truth.sample(40, 0.0, torch.Generator().manual_seed(1)))
    x = truth.sample(12, 0.2, torch.Generator().manual_seed(3))
    for t in (1e-2, 0.5, torch.linspace(0.01, 1.0, 12, dtype=torch.float64)):
        score, lap = law.score_and_laplacian(x, t)
        ref_score, ref_hess = autograd_score_hessian(law, x, t)
        assert torch.allclose(score, ref_score, rtol=1e-10, atol=1e-10)
        ref = torch.diagonal(ref_hess, dim1=-2, dim2=-1).sum(-1)
        assert torch.allclose(lap, ref, rtol=1e-9, atol=1e-9 * float(ref.abs().max()))
        assert torch.equal(law.laplacian(x, t), lap)


def test_empirical_laplacian_does_not_depend_on_the_tile_size():
    data = torch.randn(300, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 5.0
    x = data[:50] + 0.01 * torch.randn(50, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    big = theory.EmpiricalLaw(data).laplacian(x, 1e-3)
    small = theory.EmpiricalLaw(data, tile_size=37).laplacian(x, 1e-3)
    assert torch.allclose(big, small, rtol=1e-10, atol=1e-6)
    # the posterior spread is >= 0: -Delta log p^_t <= d / sigma_t^2 at every point
    assert bool((-big <= 4 / theory.sigma2(1e-3) * (1 + 1e-12)).all())


def test_running_covariance_matches_numpy_and_the_batching():
    rng = np.random.default_rng(0)
    v = rng.normal(size=(1000, 3)) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 2.0]]) + 1e6
    acc = RunningCovariance(3)
    for chunk in np.array_split(v, 7):
        acc.update(torch.as_tensor(chunk))
    w = np.array([1.0, -2.0, 0.5])
    est = acc.estimate(w)
    assert est.mean == pytest.approx(float((v @ w).mean()), rel=1e-12)
    assert est.stderr == pytest.approx(float((v @ w).std(ddof=1) / math.sqrt(1000)), rel=1e-9)
    # the control-variate combination of two columns has the smallest variance of all a v_0 + (1 - a) v_1
    best = acc.combined(0, 1)
    grid = [acc.estimate([a, 1 - a, 0]).stderr for a in np.linspace(-2, 3, 101)]
    assert best.stderr <= min(grid) * (1 + 1e-9)


# --------------------------------------------------------------------------------------------- Fisher information
def test_fisher_information_closed_form_and_quadrature():
    gauss = _gaussian(3)
    for t in (0.0, 1e-3, 0.3):
        est = lossgap.fisher_information(gauss, t, 200, generator=torch.Generator().manual_seed(0))
        exact = float(lossgap.gaussian_fisher_information(gauss.covariances[0], t))
        assert est.mean == pytest.approx(exact, rel=1e-12) and est.stderr < 1e-9 * exact   # -Delta log p is constant
    exact0 = float(torch.trace(torch.linalg.inv(gauss.covariances[0])))
    assert float(lossgap.gaussian_fisher_information(gauss.covariances[0], 0.0)) == pytest.approx(exact0, rel=1e-12)
    # a mixture and an empirical law in d = 2: -E Delta log p against E |grad log p|^2 by quadrature
    mix = theory.paper_mixture(3, 2, separation=0.7, trace=1.0, anisotropy=2.0, seed=3)
    emp = theory.EmpiricalLaw(mix.sample(6, 0.0, torch.Generator().manual_seed(4)))
    for law, t in ((mix, 0.0), (mix, 0.2), (emp, 0.01), (emp, 0.5)):
        exact = quadrature.fisher_divergence_quadrature(law, _zero_score, t) if t > 0 else None
        if exact is None:      # t = 0: quadrature of the law at a tiny t instead (J is continuous in t)
            exact = quadrature.fisher_divergence_quadrature(law, _zero_score, 1e-9)
        est = lossgap.fisher_information(law, t, 20000, generator=torch.Generator().manual_seed(5))
        assert abs(est.mean - exact) <= N_SE * est.stderr + 1e-6 * exact, (law, t, est, exact)


def test_fisher_information_of_an_empirical_law_is_below_one_atoms():
    """J(P^_t) <= d / sigma_t^2 (Fisher information does not increase under convolution), by quadrature of
    E|grad log p^_t|^2, which does not use the Laplacian form; equality for one point."""
    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 5):
        for t in (1e-3, 0.1, 2.0):
            emp = theory.EmpiricalLaw(torch.randn(n, 1, generator=g, dtype=torch.float64) * 0.1)
            j = quadrature.fisher_divergence_quadrature(emp, _zero_score, t)
            level = float(lossgap.memorization_level(1, t))
            if n == 1:
                assert j == pytest.approx(level, rel=1e-9)
            else:
                assert j < level * (1 - 1e-6)


# --------------------------------------------------------------------------------------------- two atoms
def test_two_point_overlap_against_scipy():
    def reference(u):
        def f(x):   # phi(x - u/2) sigmoid(ux) sigmoid(-ux), written with e^-|ux| to stay finite
            e = math.exp(-abs(u * x))
            return math.exp(-0.5 * (x - u / 2) ** 2) / math.sqrt(2 * math.pi) * e / (1 + e) ** 2
        return integrate.quad(f, -40, 40, points=[0, u / 2], epsabs=0, epsrel=1e-13, limit=500)[0]

    us = [0.0, 1e-3, 0.3, 0.999, 1.0, 1.001, 2.0, 5.0, 10.0, 20.0]
    g = small_t.two_point_overlap(torch.tensor(us, dtype=torch.float64))
    for u, v in zip(us, g.tolist()):
        assert v == pytest.approx(reference(u), rel=1e-9), u
    assert float(small_t.two_point_overlap(0.0)) == pytest.approx(0.25, rel=1e-12)
    big = torch.tensor([40.0, 60.0], dtype=torch.float64)    # g ~ sqrt(pi/8) exp(-u^2/8)/u (1 + O(1/u^2))
    ratio = small_t.two_point_overlap(big) / (math.sqrt(math.pi / 8) * torch.exp(-big ** 2 / 8) / big)
    assert torch.allclose(ratio, torch.ones(2, dtype=torch.float64), atol=5e-3)
    assert bool((torch.diff(small_t.two_point_overlap(torch.linspace(0, 15, 200, dtype=torch.float64))) < 0).all())


@pytest.mark.parametrize("d", [1, 2])
def test_two_atoms_fisher_information_closed_form(d):
    """n = 2 at distance delta: J(P^_t) = d/sigma_t^2 - (u^2/sigma_t^2) g(u), u = alpha_t delta/sigma_t, against
    deterministic quadrature of E|grad log p^_t|^2."""
    for t, delta in ((1e-3, 0.05), (1e-2, 0.3), (0.5, 1.0), (0.5, 3.0)):
        pts = torch.zeros(2, d, dtype=torch.float64)
        pts[1, 0] = delta
        emp = theory.EmpiricalLaw(pts + 0.3)
        a, s2 = float(theory.alpha(t)), float(theory.sigma2(t))
        u = a * delta / math.sqrt(s2)
        closed = d / s2 - u * u / s2 * float(small_t.two_point_overlap(u))
        assert quadrature.fisher_divergence_quadrature(emp, _zero_score, t) == pytest.approx(closed, rel=1e-9)


def test_pair_collision_constant_and_density():
    # c_1 by scipy from the definition (an independent integrator)
    c1 = 2 * integrate.quad(lambda u: u ** 2 * float(small_t.two_point_overlap(u)), 0, 60, limit=400)[0]
    assert small_t.pair_collision_constant(1) == pytest.approx(c1, rel=1e-8)
    # int p_0^2 of a mixture: against E_{P_0}[p_0(X)] by Monte Carlo and quadrature in d = 2
    mix = theory.paper_mixture(3, 2, separation=1.0, trace=1.0, anisotropy=2.0, seed=1)
    rho = small_t.collision_density(mix)
    w, m, f = mix.components(0.0)
    quad = quadrature.gaussian_mixture_expectation(lambda x, j: torch.exp(mix.log_prob(x, 0.0)), w, m, f)
    assert rho == pytest.approx(quad, rel=1e-9)
    x = mix.sample(100_000, 0.0, torch.Generator().manual_seed(0))
    v = torch.exp(mix.log_prob(x, 0.0))
    assert abs(float(v.mean()) - rho) < N_SE * float(v.std()) / math.sqrt(v.numel())
    with pytest.raises(ValueError, match="point masses"):
        small_t.collision_density(theory.EmpiricalLaw(x[:5]))


def test_expected_pair_deficit_tends_to_the_collision_constant():
    """E_{x1,x2}[(u^2/sigma_t^2) g(u)] -> c_d rho(0) sigma_t^(d-2)/alpha_t^d as t -> 0 (relative error O(sigma_t^2),
    here < 1%), within 4 Monte-Carlo standard errors."""
    for d, t in ((1, 1e-3), (2, 1e-3), (3, 1e-3)):
        gauss = _gaussian(d, seed=d)
        est = small_t.expected_pair_deficit(gauss, t, 100_000, generator=torch.Generator().manual_seed(d))
        limit = float(small_t.collision_term(d, 2, t, small_t.collision_density(gauss)))
        assert abs(est.mean - limit) <= N_SE * est.stderr + 0.01 * limit, (d, est, limit)


# --------------------------------------------------------------------------------------------- one training set
@pytest.mark.parametrize("d", [1, 2])
def test_loss_gap_terms_against_quadrature(d):
    """Both forms (Fisher and by parts) and their combination are unbiased for the Loss-Gap of a fixed training
    set (4 standard errors); by parts is far quieter at small t, Fisher where points share a noise ball."""
    truth = theory.paper_mixture(3, d, separation=2.0, trace=0.5 * d, seed=1)
    emp = theory.EmpiricalLaw(truth.sample(6, 0.0, torch.Generator().manual_seed(2)))
    for i, t in enumerate((1e-3, 0.1, 2.0)):
        exact = quadrature.loss_gap_quadrature(truth, emp, t)
        r = lossgap.loss_gap_terms(truth, emp, t, 3000, generator=torch.Generator().manual_seed(10 + i))
        for est in (r.loss_gap, r.fisher_form, r.by_parts):
            assert abs(est.mean - exact) <= N_SE * est.stderr + 1e-9 * exact, (t, est, exact)
        assert r.loss_gap.stderr <= min(r.fisher_form.stderr, r.by_parts.stderr) * (1 + 1e-6)
        # J(P^_t): at t = 1e-3 the atoms' overlap (a deficit of 2.5e-6 relative) lies where no draw falls, so
        # the Monte-Carlo standard error (1e-9 relative) does not cover it: tolerance 1e-5 relative
        j = quadrature.fisher_divergence_quadrature(emp, _zero_score, t)
        assert abs(r.fisher_empirical.mean - j) <= N_SE * r.fisher_empirical.stderr + 1e-5 * j
        if t == 1e-3:
            assert r.by_parts.stderr < 0.01 * r.fisher_form.stderr


# --------------------------------------------------------------------------------------------- over training sets
def test_expected_identity_and_single_point_closed_form():
    """E_D[Loss-Gap_t] = E_D[J(P^_t)] - J(P_t): the Fisher form (no integration by parts) against the Laplacian
    form of J(P^_t) and the exact J(P_t) of a Gaussian, over 200 training sets of n = 5; and for n = 1,
    E_D[Loss-Gap_t] = d/sigma_t^2 - tr C_t^{-1}. Tolerance: 4 standard errors over training sets."""
    gauss = _gaussian(2, seed=7)
    for t in (0.05, 0.5):
        jt = float(lossgap.gaussian_fisher_information(gauss.covariances[0], t))
        terms = _over_datasets(gauss, 5, t, 200, 128, seed=int(100 * t))
        mean, se = _mean_se([r.fisher_form_excess.mean for r in terms])
        assert abs(mean + jt) <= N_SE * se, (t, mean, se, -jt)
        one = _over_datasets(gauss, 1, t, 200, 64, seed=int(1000 * t))
        mean, se = _mean_se([r.fisher_form.mean for r in one])
        closed = float(lossgap.memorization_level(2, t)) - jt
        assert abs(mean - closed) <= N_SE * se, (t, mean, se, closed)


@pytest.mark.parametrize("d, n, t, draws, m", [(1, 8, 1e-4, 16, 600), (2, 8, 1e-3, 16, 600), (3, 8, 3e-3, 16, 600)])
def test_small_t_limit_against_monte_carlo(d, n, t, draws, m):
    """E_D[Loss-Gap_t] (Monte Carlo over m training sets, integration-by-parts form) against the small-t
    expansion d/sigma_t^2 - (n-1) c_d rho(0) sigma_t^(d-2)/alpha_t^d - J(P_t). Tolerance: 4 standard errors plus
    the expansion's own error (d = 1: O(1) terms, allowed 2 (n^2 sigma_t^0 triples and J(P_0) ~ 1); d >= 2: 3%
    of the collision term, its O(sigma_t^2) and triple-collision corrections). In d = 2 the collision term is
    of order one and the naive limit d/sigma_t^2 - J(P_0) is rejected."""
    gauss = _gaussian(d, seed=d)
    jt = float(lossgap.gaussian_fisher_information(gauss.covariances[0], t))
    rho = small_t.collision_density(gauss)
    predicted = float(small_t.small_t_loss_gap(d, n, t, fisher_true=jt, collision_density=rho))
    collision = float(small_t.collision_term(d, n, t, rho))
    mean, se = _mean_se([r.loss_gap.mean for r in _over_datasets(gauss, n, t, m, draws, seed=d)])
    allowance = 2.0 if d == 1 else 0.03 * collision
    assert abs(mean - predicted) <= N_SE * se + allowance, (mean, se, predicted, collision)
    naive = float(lossgap.memorization_level(d, t)) - float(lossgap.gaussian_fisher_information(gauss.covariances[0], 0.0))
    if d <= 2:
        assert naive - mean > N_SE * se + allowance, (mean, se, naive)


def test_small_t_helpers_are_consistent():
    t, d, n = 1e-2, 3, 10
    rho, j = 0.02, 2.5
    lead = float(small_t.small_t_loss_gap(d, n, t, fisher_true=j, collision_density=rho))
    assert lead == pytest.approx(d / float(theory.sigma2(t)) - float(small_t.collision_term(d, n, t, rho)) - j, rel=1e-14)
    per_point = float(small_t.collision_term(d, 2, t, rho))
    n_star = small_t.first_order_crossover(d, t, fisher_true=j, pair_deficit=per_point, fraction=0.5)
    plateau = d / float(theory.sigma2(t)) - j
    assert (n_star - 1) * per_point == pytest.approx(0.5 * plateau, rel=1e-12)
    # n* ~ sigma_t^-d at small t
    ns = [small_t.first_order_crossover(d, s, fisher_true=j, pair_deficit=float(small_t.collision_term(d, 2, s, rho)))
          for s in (1e-4, 1e-3)]
    assert math.log(ns[1] / ns[0]) / math.log(math.sqrt(float(theory.sigma2(1e-3)) / float(theory.sigma2(1e-4)))) \
        == pytest.approx(-d, abs=0.01)
    mix = theory.paper_mixture(2, 3, separation=2.0, trace=1.5, anisotropy=3.0, seed=0)
    inv = float(sum(torch.trace(torch.linalg.inv(c)) for c in mix.covariances) / 2)
    assert lossgap.mean_precision_trace(mix) == pytest.approx(inv, rel=1e-10)
    assert lossgap.min_covariance_eigenvalue(mix) == pytest.approx(float(torch.linalg.eigvalsh(mix.covariances).min()))
    assert float(lossgap.loss_gap_lower_bound_consistent(3, t, inv)) == pytest.approx(3 / float(theory.sigma2(t)) + inv)
