"""Loss-Gap, DSM loss and Fisher divergence estimators (theory.estimators.lossgap) against quadrature (theory.estimators.quadrature),
closed forms and exact identities (Prop. 4.1)."""

import math

import numpy as np
import pytest
import torch
from scipy import integrate

import theory
from theory import lossgap, quadrature

TIMES = (1e-3, 1e-1, 1.0)
N_SE = 4.0


def _setup(d: int, n: int = 4, seed: int = 1):
    truth = theory.paper_mixture(3, d, separation=2.0, trace=0.5 * d, anisotropy=3.0 if d > 1 else 1.0, seed=seed)
    data = truth.sample(n, 0.0, torch.Generator().manual_seed(100 + seed))
    return truth, theory.EmpiricalLaw(data)


def _within(est, exact, k=N_SE):
    assert est.stderr > 0
    assert abs(est.mean - exact) <= k * est.stderr, f"{est} vs {exact}: {(est.mean - exact) / est.stderr:.2f} SE"


@pytest.mark.parametrize("d", [1, 2])
def test_monte_carlo_matches_quadrature(d):
    truth, emp = _setup(d)
    for i, t in enumerate(TIMES):
        gen = torch.Generator().manual_seed(7 + i)
        fisher_q = quadrature.fisher_divergence_quadrature(emp, truth, t)
        gap_q = quadrature.loss_gap_quadrature(truth, emp, t)
        # Prop. 4.1 holds exactly for the fixed data set: two independent quadratures agree to round-off
        assert gap_q == pytest.approx(fisher_q, rel=1e-8)
        _within(lossgap.fisher_divergence(emp, truth, t, 4000, generator=gen), fisher_q)
        _within(lossgap.loss_gap(truth, emp, t, n_draws=4000, generator=gen), gap_q)
        if d > 1:
            continue
        # the Fisher divergence under the other law (the truth) is a different number, also matched
        under_truth = quadrature.fisher_divergence_quadrature(emp, truth, t, under=truth)
        assert not math.isclose(under_truth, fisher_q, rel_tol=0.05)
        _within(lossgap.fisher_divergence(emp, truth, t, 4000, under=truth, generator=gen), under_truth)


def test_dsm_loss_alone_matches_quadrature():
    truth, emp = _setup(1)
    t = 0.1
    exact = quadrature.dsm_loss_quadrature(truth, emp, t)
    est = lossgap.dsm_loss_estimate(truth, emp, t, n_draws=4000, generator=torch.Generator().manual_seed(3))
    _within(est, exact)
    # a loss is d/sigma_t^2-sized; the gap is the small difference of two of them
    assert exact > quadrature.loss_gap_quadrature(truth, emp, t)


def test_gauss_legendre_agrees_with_adaptive_quad_in_1d():
    truth, emp = _setup(1, n=3)
    t = 1e-2
    tt = torch.tensor(t, dtype=torch.float64)

    def density_times_gap(x):
        xs = torch.tensor([[x]], dtype=torch.float64)
        diff = (emp.score(xs, tt) - truth.score(xs, tt)).pow(2).sum()
        return float(torch.exp(emp.log_prob(xs, tt)) * diff)

    centres = sorted(float(v) for v in emp.samples[:, 0] * theory.alpha(t))
    s = float(theory.sigma(t))
    breaks = sorted(set([c + k * s for c in centres for k in (-12, -3, 0, 3, 12)]))
    value = sum(integrate.quad(density_times_gap, a, b, limit=200, epsabs=0, epsrel=1e-11)[0]
                for a, b in zip(breaks[:-1], breaks[1:]))
    assert quadrature.fisher_divergence_quadrature(emp, truth, t) == pytest.approx(value, rel=1e-8)


def test_empirical_against_itself_is_exactly_zero():
    truth, emp = _setup(2, n=6)
    # (t loops below are cheap: a few hundred draws of a 6-point law)
    gen = torch.Generator().manual_seed(0)
    for t in TIMES:
        est = lossgap.dsm_loss_estimate(emp, emp, t, baseline=emp, n_draws=500, generator=gen)
        assert est.mean == 0.0 and est.stderr == 0.0
        assert lossgap.loss_gap(emp, emp, t, n_draws=200, generator=gen).mean == 0.0
        for law in (emp, truth):
            f = lossgap.fisher_divergence(law, law, t, 300, generator=gen)
            assert f.mean == 0.0 and f.stderr == 0.0
    assert quadrature.fisher_divergence_quadrature(truth, truth, 0.1) == 0.0


@pytest.mark.parametrize("d", [1, 2, 5])
def test_single_training_point_closed_form(d):
    """n = 1: P^_t = N(alpha_t x_1, sigma_t^2 I) against a Gaussian P_t = N(alpha_t mu, alpha_t^2 Sigma + sigma_t^2 I)."""
    g = torch.Generator().manual_seed(d)
    a_mat = torch.randn(d, d, generator=g, dtype=torch.float64)
    cov = a_mat @ a_mat.T / d + 0.3 * torch.eye(d, dtype=torch.float64)
    mu = torch.randn(d, generator=g, dtype=torch.float64)
    truth = theory.GaussianMixture.gaussian(mu, cov)
    x1 = torch.randn(1, d, generator=g, dtype=torch.float64) + 1.0
    emp = theory.EmpiricalLaw(x1)
    eye = torch.eye(d, dtype=torch.float64)
    for i, t in enumerate(TIMES):
        a, s2 = float(theory.alpha(t)), float(theory.sigma2(t))
        exact = float(lossgap.gaussian_fisher_divergence(a * x1[0], s2 * eye, a * mu, a * a * cov + s2 * eye))
        gen = torch.Generator().manual_seed(50 + i)
        _within(lossgap.fisher_divergence(emp, truth, t, 3000, generator=gen), exact)
        _within(lossgap.loss_gap(truth, emp, t, n_draws=3000, generator=gen), exact)
        if d <= 2:
            assert quadrature.fisher_divergence_quadrature(emp, truth, t) == pytest.approx(exact, rel=1e-9)
            assert quadrature.loss_gap_quadrature(truth, emp, t) == pytest.approx(exact, rel=1e-9)


def test_gaussian_fisher_closed_form_against_quadrature_both_ways():
    """The formula with general covariances on both sides (under P and under Q), d = 2."""
    p = theory.GaussianMixture.gaussian([0.3, -0.2], [[1.0, 0.4], [0.4, 0.7]])
    q = theory.GaussianMixture.gaussian([-0.5, 0.1], [[0.5, -0.1], [-0.1, 1.3]])
    t = 0.2
    mp, cp = p.moments(t)
    mq, cq = q.moments(t)
    assert quadrature.fisher_divergence_quadrature(p, q, t) == pytest.approx(
        float(lossgap.gaussian_fisher_divergence(mp, cp, mq, cq)), rel=1e-10)
    assert quadrature.fisher_divergence_quadrature(p, q, t, under=q) == pytest.approx(
        float(lossgap.gaussian_fisher_divergence(mq, cq, mp, cp)), rel=1e-10)
    assert float(lossgap.gaussian_fisher_divergence(mp, cp, mp, cp)) == pytest.approx(0.0, abs=1e-12)


def test_common_random_numbers_shrink_the_error():
    """The stderr of the Loss-Gap (per-draw differences) is far below that of either loss at small t."""
    truth, emp = _setup(2, n=8)
    t = 1e-3
    gen = torch.Generator().manual_seed(4)
    gap = lossgap.loss_gap(truth, emp, t, n_draws=2000, generator=gen)
    loss_true = lossgap.dsm_loss_estimate(truth, emp, t, n_draws=2000, generator=gen)
    loss_emp = lossgap.dsm_loss_estimate(emp, emp, t, n_draws=2000, generator=gen)
    assert gap.stderr < 0.1 * math.hypot(loss_true.stderr, loss_emp.stderr) or loss_emp.mean < 0.1 * loss_true.mean


def test_every_point_once_matches_quadrature():
    truth, emp = _setup(1, n=300, seed=2)
    t = 0.05
    est = lossgap.loss_gap(truth, emp, t, generator=torch.Generator().manual_seed(9))
    assert est.n == 300
    other = lossgap.fisher_divergence(emp, truth, t, 3000, generator=torch.Generator().manual_seed(10))
    _within(est - other, 0.0)


def test_theorem_4_3_right_hand_side():
    truth = theory.paper_mixture(4, 6, separation=2.0, trace=3.0, seed=0)
    assert lossgap.mean_covariance_trace(truth) == pytest.approx(3.0)
    t = torch.tensor([1e-4, 1e-1, 2.0], dtype=torch.float64)
    rhs = lossgap.loss_gap_lower_bound(6, t, 3.0)
    np.testing.assert_allclose(rhs.numpy(), (6 / (1 - np.exp(-t.numpy())) + 3.0), rtol=1e-12)
    # small-t: d / sigma_t^2 ~ d / t
    assert float(lossgap.loss_gap_lower_bound(6, 1e-8, 3.0)) == pytest.approx(6e8, rel=1e-6)


def test_bad_input_names_the_argument():
    truth, emp = _setup(1)
    with pytest.raises(ValueError, match="t must"):
        lossgap.loss_gap(truth, emp, 0.0)
    with pytest.raises(ValueError, match="n_draws"):
        lossgap.fisher_divergence(emp, truth, 0.1, 0)
    with pytest.raises(ValueError, match="data"):
        lossgap.loss_gap(truth, torch.zeros(3), 0.1)
    with pytest.raises(ValueError, match="baseline"):
        lossgap.dsm_loss_estimate(truth, emp, 0.1, baseline=3)
    with pytest.raises(ValueError, match="dim"):
        lossgap.loss_gap_lower_bound(0, 0.1, 1.0)
    with pytest.raises(ValueError, match="d <= 2"):
        quadrature.fisher_divergence_quadrature(*_setup(3)[::-1], 0.1)


@pytest.mark.parametrize("which", ["mixture", "empirical"])
def test_components_view_reproduces_the_law(which):
    """law.components(t) is P_t as a Gaussian mixture: its density (torch.distributions) equals
    law.log_prob, and the mean trace of Thm 4.3 is read from it for any law."""
    truth = theory.paper_mixture(3, 2, separation=2.0, trace=1.3, anisotropy=3.0, seed=4)
    law = truth if which == "mixture" else theory.EmpiricalLaw(truth.sample(5, 0.0, torch.Generator().manual_seed(0)))
    t = 0.2
    w, m, f = law.components(t)
    comps = torch.distributions.MultivariateNormal(m, scale_tril=torch.linalg.cholesky(f @ f.transpose(-1, -2)))
    x = law.sample(6, t, torch.Generator().manual_seed(1))
    mix = torch.logsumexp(comps.log_prob(x[:, None, :]) + torch.log(w), dim=1)
    assert torch.allclose(mix, law.log_prob(x, t), rtol=1e-12, atol=1e-12)
    expected = float(truth.weights @ torch.diagonal(truth.covariances, dim1=-2, dim2=-1).sum(-1)) if which == "mixture" else 0.0
    assert lossgap.mean_covariance_trace(law) == pytest.approx(expected, rel=1e-12, abs=1e-15)
