"""The forward OU process: alpha_t, sigma_t^2 (to full precision at small t), noising, the DSM target
and the DSM loss (its exact minimum and its Monte-Carlo value under the true score)."""

import math

import mpmath
import pytest
import torch

import theory
from theory.laws import forward
from theory.estimators.estimate import RunningMoments
from theory.laws.mixture import GaussianMixture


@pytest.mark.parametrize("t", [1e-12, 1e-6, 1e-3, 0.5, 3.0, 40.0])
def test_sigma2_matches_high_precision(t):
    mpmath.mp.dps = 50
    exact = float(-mpmath.expm1(-mpmath.mpf(t)))
    got = float(forward.sigma2(t))
    assert abs(got - exact) <= 2 * math.ulp(exact)


def test_sigma2_small_t_series_and_naive_formula_fails():
    t = 1e-6
    series = t - t ** 2 / 2 + t ** 3 / 6 - t ** 4 / 24
    assert abs(float(forward.sigma2(t)) / series - 1) < 1e-15
    # the naive 1 - exp(-t) loses about ten digits here: the test would catch a regression to it
    assert abs((1 - math.exp(-t)) / series - 1) > 1e-12


def test_alpha_sigma_identities():
    t = torch.tensor([1e-8, 1e-3, 0.1, 1.0, 7.0, 30.0], dtype=torch.float64)
    a, s2, s = forward.alpha(t), forward.sigma2(t), forward.sigma(t)
    torch.testing.assert_close(a, torch.tensor([math.exp(-v / 2) for v in t.tolist()], dtype=torch.float64),
                               rtol=1e-15, atol=0)
    torch.testing.assert_close(a ** 2 + s2, torch.ones_like(t), rtol=1e-15, atol=0)
    torch.testing.assert_close(s * s, s2, rtol=1e-15, atol=0)
    assert float(forward.alpha(0.0)) == 1.0 and float(forward.sigma2(0.0)) == 0.0


def test_add_noise_formula_and_common_noise():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(5, 3, generator=g, dtype=torch.float64)
    t = torch.tensor([1e-4, 0.1, 1.0, 2.0, 9.0], dtype=torch.float64)     # per-sample times
    xt, z = forward.add_noise(x0, t, generator=torch.Generator().manual_seed(1))
    expected = torch.exp(-t / 2)[:, None] * x0 + torch.sqrt(1 - torch.exp(-t))[:, None] * z
    torch.testing.assert_close(xt, expected, rtol=1e-12, atol=1e-14)
    # reuse of the same noise gives the same point; the same seed gives the same noise
    xt2, z2 = forward.add_noise(x0, t, z)
    assert torch.equal(z2, z) and torch.equal(xt2, xt)
    xt3, z3 = forward.add_noise(x0, t, generator=torch.Generator().manual_seed(1))
    assert torch.equal(z3, z) and torch.equal(xt3, xt)
    # a different seed gives different noise
    _, z4 = forward.add_noise(x0, t, generator=torch.Generator().manual_seed(2))
    assert not torch.equal(z4, z)


def test_dsm_target_is_minus_z_over_sigma():
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(64, 4, generator=g, dtype=torch.float64) + 10.0
    for t in [1e-5, 0.3, 4.0]:
        xt, z = forward.add_noise(x0, t, generator=g)
        target = forward.dsm_target(xt, x0, t)
        torch.testing.assert_close(target, -z / math.sqrt(-math.expm1(-t)), rtol=1e-10,
                                   atol=0)


def test_dsm_loss_is_zero_for_the_per_point_target():
    g = torch.Generator().manual_seed(4)
    x0 = torch.randn(32, 3, generator=g, dtype=torch.float64)
    z = torch.randn(32, 3, generator=g, dtype=torch.float64)
    t = 0.7
    loss = forward.dsm_loss(lambda x, tt: forward.dsm_target(x, x0, tt), x0, t, z)
    assert loss.shape == (32,)
    assert float(loss.abs().max()) < 1e-20
    # and it is the squared residual: a score off by a constant vector c has loss |c|^2 everywhere
    c = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    loss_c = forward.dsm_loss(lambda x, tt: forward.dsm_target(x, x0, tt) + c, x0, t, z)
    torch.testing.assert_close(loss_c, torch.full((32,), float(c @ c), dtype=torch.float64))


def test_dsm_loss_of_true_score_has_closed_form_mean():
    """For x0 ~ N(0, Sigma) and the true score s*(x) = -C^{-1} x (C = a^2 Sigma + s2 I),
    E|-z/sigma - s*(X_t)|^2 = d/sigma_t^2 - tr C^{-1} (the DSM loss exceeds the Fisher loss by a
    constant). Checked by Monte Carlo within 5 standard errors."""
    d, t = 3, 0.4
    cov = torch.tensor([[2.0, 0.5, 0.0], [0.5, 1.0, 0.3], [0.0, 0.3, 0.5]], dtype=torch.float64)
    law = GaussianMixture.gaussian(torch.zeros(d), cov)
    g = torch.Generator().manual_seed(5)
    moments = RunningMoments()
    for _ in range(4):
        x0 = law.sample(20_000, 0.0, g)
        z = torch.randn(x0.shape, generator=g, dtype=torch.float64)
        moments.update(forward.dsm_loss(law.score, x0, t, z))
    est = moments.estimate()
    a2, s2 = math.exp(-t), -math.expm1(-t)
    C = a2 * cov + s2 * torch.eye(d, dtype=torch.float64)
    expected = d / s2 - float(torch.linalg.inv(C).trace())
    assert abs(est.mean - expected) < 5 * est.stderr, (est, expected)
    assert est.stderr < 0.02 * expected   # the test has power


def test_forward_bad_input():
    x0 = torch.zeros(4, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="x0"):
        forward.add_noise(torch.zeros(4, dtype=torch.float64), 0.1)
    with pytest.raises(ValueError, match="noise"):
        forward.add_noise(x0, 0.1, torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="t must"):
        forward.add_noise(x0, torch.ones(3, dtype=torch.float64))
    for bad in [-1.0, math.nan, math.inf]:
        with pytest.raises(ValueError, match="t must"):
            forward.sigma2(bad)
    with pytest.raises(ValueError, match="t must"):
        forward.dsm_target(x0, x0, 0.0)


def test_parametrisation_conversions_are_tweedie_on_both_laws(rel_err):
    """score <-> eps <-> denoiser as forward converts them agree with the laws' own closed-form
    denoiser (Tweedie) and invert each other, for scalar and per-sample t."""
    truth = GaussianMixture(torch.tensor([0.3, 0.7]), torch.tensor([[1.0, -2.0], [0.5, 1.5]]),
                            torch.stack([torch.eye(2) * 0.5, torch.tensor([[1.0, 0.3], [0.3, 0.4]])]))
    emp = theory.EmpiricalLaw(truth.sample(7, 0.0, torch.Generator().manual_seed(1)))
    for law in (truth, emp):
        for t in (0.05, torch.tensor([0.01, 0.2, 1.0, 3.0], dtype=torch.float64)):
            x = law.sample(4, 0.3, torch.Generator().manual_seed(2))
            score, denoised = law.score(x, t), law.denoiser(x, t)
            assert rel_err(forward.score_from_denoiser(denoised, x, t), score) < 1e-10
            assert rel_err(forward.denoiser_from_score(score, x, t), denoised) < 1e-10
            eps = forward.eps_from_score(score, t)
            assert rel_err(forward.eps_from_denoiser(denoised, x, t), eps) < 1e-10
            assert rel_err(forward.score_from_eps(eps, t), score) < 1e-12


def test_time_coefficients_are_checked_once_and_reused():
    tc = forward.coefficients(torch.tensor([[0.1, 1.0], [2.0, 5.0]], dtype=torch.float64))   # any shape
    assert torch.equal(tc.alpha, torch.exp(-0.5 * tc.t)) and torch.equal(tc.sigma2, -torch.expm1(-tc.t))
    x0 = torch.randn(2, 2, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    z = torch.randn_like(x0)
    xt, _ = forward.add_noise(x0, tc, z)                   # (E, B) times against (E, B, d)
    assert torch.allclose(xt, tc.alpha[..., None] * x0 + tc.sigma[..., None] * z, rtol=0, atol=1e-15)
    assert torch.allclose(forward.marginal_variance(tc, 0.5), 0.5 * tc.alpha ** 2 + tc.sigma2, rtol=1e-14)
    with pytest.raises(ValueError, match="t must"):
        forward.coefficients(torch.ones(3), batch=2)
    with pytest.raises(ValueError, match="t must"):
        forward.add_noise(x0, torch.ones(3, dtype=torch.float64))     # not a prefix of (2, 2, 3)
