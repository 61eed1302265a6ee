"""The explicit width-O(n) ReLU network for the empirical score (Thm 5.1 upper bound)."""

import math

import pytest
import torch

import theory
from theory.networks.construction import (construction_parameters, empirical_score_network, interpolation_error,
                                          layer_widths, score_error_bound)


def _data(n, d=2, seed=1):
    truth = theory.paper_mixture(3, d, separation=1.0, trace=float(d), seed=0)
    return truth.sample(n, 0.0, torch.Generator().manual_seed(seed))


def test_interpolation_error_bound_holds():
    """max over [-R, 0] of |g(u)/e^u - 1| for the linear interpolant is at most eta = h^2 e^h / 8."""
    R, P = 6.0, 20
    knots = torch.linspace(-R, 0, P + 1, dtype=torch.float64)
    u = torch.linspace(-R, 0, 20001, dtype=torch.float64)
    g = torch.from_numpy(__import__("numpy").interp(u.numpy(), knots.numpy(), torch.exp(knots).numpy()))
    worst = float((g / torch.exp(u) - 1).abs().max())
    assert worst <= interpolation_error(R, P)
    assert worst >= 0.5 * (R / P) ** 2 / 8          # and the bound is not loose by more than ~2x


@pytest.mark.parametrize("n,t,tol", [(8, 0.05, 0.5), (16, 0.2, 0.05)])
def test_construction_meets_its_tolerance_on_empirical_law(n, t, tol):
    data = _data(n)
    law = theory.EmpiricalLaw(data)
    net = empirical_score_network(data, t, tolerance=tol)
    assert net.error_bound <= tol
    x = torch.cat([law.sample(2000, t, torch.Generator().manual_seed(2)),
                   4 * torch.randn(200, 2, generator=torch.Generator().manual_seed(3), dtype=torch.float64)])
    err = float((net(x) - law.score(x, t)).norm(dim=1).max())
    assert err <= net.error_bound


def test_coarse_construction_is_visibly_wrong():
    """With a crude exp (2 pieces, R = 1) the error is large: the check above can fail."""
    data = _data(8)
    law = theory.EmpiricalLaw(data)
    net = empirical_score_network(data, 0.05, R=1.0, pieces=2)
    x = law.sample(500, 0.05, torch.Generator().manual_seed(2))
    err = float((net(x) - law.score(x, 0.05)).norm(dim=1).max())
    assert err > 0.1 and err <= net.error_bound


def test_width_and_nonzero_count_grow_linearly_in_n():
    """At fixed (R, pieces) the widest layer is n * pieces + 2d exactly, and the nonzero parameter count
    doubles (within a log-depth max-tree correction) when n doubles."""
    R, P = 8.0, 10
    counts = {}
    for n in (8, 16, 32, 64):
        net = empirical_score_network(_data(n), 0.1, R=R, pieces=P)
        assert max(net.widths) == n * P + 2 * 2
        assert len(net.widths) == 2 + math.ceil(math.log2(n))
        counts[n] = net.nonzero_parameter_count()
    for n in (8, 16, 32):
        assert 1.8 <= counts[2 * n] / counts[n] <= 2.3


def test_parameters_from_tolerance_and_errors():
    R, P = construction_parameters(16, 3.0, 0.1, 0.01)
    assert score_error_bound(16, 3.0, 0.1, R, P) <= 0.01
    with pytest.raises(ValueError, match="tolerance"):
        construction_parameters(16, 3.0, 0.1, -1.0)
    with pytest.raises(ValueError, match="data"):
        empirical_score_network(torch.zeros(0, 2), 0.1, tolerance=0.1)
    with pytest.raises(ValueError, match="t must"):
        empirical_score_network(_data(4), 0.0, tolerance=0.1)


@pytest.mark.parametrize("n,pieces", [(1, 3), (5, 2), (8, 4), (13, 1)])
def test_layer_widths_match_the_built_network(n, pieces):
    net = empirical_score_network(_data(n), 0.1, R=4.0, pieces=pieces)
    assert layer_widths(n, 2, pieces) == net.widths
