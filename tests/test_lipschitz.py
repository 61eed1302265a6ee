"""Lipschitz tools: the Gaussian closed form 1/(sigma_t^2 + alpha_t^2 lambda_min), the empirical lower
bound (exact and small-t forms) against the measured maximum, and nearest_pair with duplicates."""

import math

import numpy as np
import pytest
import torch

from theory.laws.empirical import EmpiricalLaw
from theory.estimators.lipschitz import (empirical_lipschitz_lower_bound, gaussian_lipschitz, lipschitz_cloud,
                              local_lipschitz, nearest_pair, neighbour_midpoints, spectral_norm)
from theory.laws.mixture import GaussianMixture


def test_spectral_norm_matches_numpy():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(6, 5, 5, generator=g, dtype=torch.float64)
    H = A + A.transpose(1, 2)
    expected = np.linalg.norm(H.numpy(), ord=2, axis=(1, 2))
    np.testing.assert_allclose(spectral_norm(H).numpy(), expected, rtol=1e-12)


@pytest.mark.parametrize("t", [0.0, 1e-4, 0.1, 1.0, 8.0])
def test_gaussian_lipschitz_closed_form(t):
    g = torch.Generator().manual_seed(1)
    d = 4
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    lam = torch.tensor([0.05, 0.3, 1.0, 4.0], dtype=torch.float64)
    cov = q @ torch.diag(lam) @ q.T
    cov = 0.5 * (cov + cov.T)
    expected = 1.0 / (-math.expm1(-t) + math.exp(-t) * 0.05)
    law = GaussianMixture.gaussian(torch.full((d,), 2.0), cov)
    x = law.sample(50, t, g)
    local = local_lipschitz(law, x, t, batch_size=7)
    assert float((local / expected - 1).abs().max()) < 1e-8
    assert abs(float(gaussian_lipschitz(cov, t)) / expected - 1) < 1e-8


def test_local_lipschitz_batching_and_per_sample_times():
    law = EmpiricalLaw(torch.randn(20, 3, generator=torch.Generator().manual_seed(2), dtype=torch.float64))
    x = law.sample(30, 0.05, torch.Generator().manual_seed(3))
    t = torch.linspace(0.01, 1.0, 30, dtype=torch.float64)
    full = local_lipschitz(law, x, t, batch_size=1024)
    torch.testing.assert_close(local_lipschitz(law, x, t, batch_size=4), full, rtol=1e-12, atol=0)
    torch.testing.assert_close(full, spectral_norm(law.hessian(x, t)), rtol=1e-12, atol=0)


@pytest.mark.parametrize("offset", [0.0, 10.0])
def test_measured_empirical_lipschitz_exceeds_the_bound(offset):
    data = torch.randn(30, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64) + offset
    law = EmpiricalLaw(data)
    g = torch.Generator().manual_seed(5)
    times = np.geomspace(1e-4, 10.0, 7)
    bounds = empirical_lipschitz_lower_bound(data, torch.tensor(times, dtype=torch.float64))
    for t, bound in zip(times, bounds.tolist()):
        measured = float(local_lipschitz(law, lipschitz_cloud(data, float(t), 30, g), float(t)).max())
        assert measured >= bound * (1 - 1e-10), (t, measured, bound)


def test_small_t_form_is_the_limit_and_an_upper_envelope_of_the_exact_bound():
    data = torch.randn(25, 2, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    times = torch.tensor(np.geomspace(1e-5, 10.0, 12), dtype=torch.float64)
    exact = empirical_lipschitz_lower_bound(data, times, exact=True)
    small = empirical_lipschitz_lower_bound(data, times, exact=False)
    # w_i w_j / (w_i + w_j) <= (w_i + w_j)/4 <= 1/4: the exact bound never exceeds the small-t form
    assert bool((exact <= small * (1 + 1e-12) + 1e-12).all())
    assert abs(float(exact[0] / small[0]) - 1) < 1e-8                  # agree as t -> 0
    delta, _, _ = nearest_pair(data)
    s2 = -math.expm1(-1e-5)
    assert abs(float(small[0]) - (math.exp(-1e-5) * delta ** 2 / (4 * s2 ** 2) - 1 / s2)) < 1e-9 * float(small[0])
    # they come apart at large t, where the pair carries little posterior mass: the curvature terms
    # (bound + 1/sigma_t^2) are in the ratio 4 w_i w_j / (w_i + w_j) = 2 w_i (w_i = w_j at the midpoint)
    s2 = -torch.expm1(-times)
    ratio = (exact + 1 / s2) / (small + 1 / s2)
    assert float(ratio[-1]) < 0.5
    assert bool((ratio[1:] <= ratio[:-1] * (1 + 1e-9)).all())   # the pair's share shrinks as t grows


def test_nearest_pair_ignores_exact_duplicates():
    g = torch.Generator().manual_seed(7)
    base = torch.randn(15, 3, generator=g, dtype=torch.float64)
    data = torch.cat([base, base[4:5], base[9:10], base[9:10]])[torch.randperm(18, generator=g)]
    delta, i, j = nearest_pair(data)
    brute = torch.cdist(base, base, compute_mode="donot_use_mm_for_euclid_dist")
    brute.fill_diagonal_(math.inf)
    assert delta > 0
    assert abs(delta - float(brute.min())) < 1e-14
    assert not torch.equal(data[i], data[j])
    assert abs(float((data[i] - data[j]).norm()) - delta) < 1e-14
    with pytest.raises(ValueError, match="two distinct"):
        nearest_pair(torch.ones(3, 2, dtype=torch.float64))


def test_neighbour_midpoints_are_pair_midpoints():
    data = torch.tensor([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [10.0, 3.0], [10.0, 3.0]], dtype=torch.float64)
    mids = neighbour_midpoints(data)
    # nearest distinct neighbours: (0,0) <-> (1,0) and (10,0) <-> (10,3) (the duplicate is one atom);
    # each pair once
    assert sorted(tuple(r) for r in mids.tolist()) == [(0.5, 0.0), (10.0, 1.5)]


def test_bound_is_attained_along_the_closest_pair_at_small_t():
    """At the noised midpoint of the closest pair, u^T H u = -1/sigma_t^2 + alpha_t^2/sigma_t^4 Var_w<u, X_0>,
    and at small t only the pair carries posterior mass (Var = delta^2/4), so the bound is attained."""
    data = torch.randn(30, 3, generator=torch.Generator().manual_seed(8), dtype=torch.float64) + 10.0
    law = EmpiricalLaw(data)
    delta, i, j = nearest_pair(data)
    u = (data[i] - data[j]) / delta
    for t in [1e-4, 1e-3]:
        mid = math.exp(-t / 2) * 0.5 * (data[i] + data[j])
        curvature = float(u @ law.hessian(mid[None], t)[0] @ u)
        bound = float(empirical_lipschitz_lower_bound(data, t))
        assert bound > 0 and abs(curvature / bound - 1) < 1e-6, (t, curvature, bound)
