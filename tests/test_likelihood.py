import math

import pytest
import torch

import theory
from theory.evaluation.likelihood import exact_divergence, memorization_index, ode_log_likelihood


def test_exact_divergence_matches_hessian_trace():
    truth = theory.paper_mixture(2, 3, separation=1.0, seed=0)
    x = truth.sample(10, 0.3, torch.Generator().manual_seed(0))
    _, div = exact_divergence(lambda y, t: truth.score(y, t), x, torch.full((10,), 0.3, dtype=torch.float64))
    assert torch.allclose(div, torch.diagonal(truth.hessian(x, 0.3), dim1=1, dim2=2).sum(1), atol=1e-10)


def test_ode_loglik_of_gaussian_with_exact_score_is_closed_form():
    g = theory.GaussianMixture.gaussian(torch.tensor([1.0, -0.5]), torch.tensor([[1.5, 0.3], [0.3, 0.6]]))
    x = g.sample(20, 0.0, torch.Generator().manual_seed(1))
    t0 = 1e-3
    ll = ode_log_likelihood(g.score, x, t0=t0, T=20.0, steps=400)
    assert (ll - g.log_prob(x, t0)).abs().max() < 1e-3


def test_memorization_index_extremes():
    truth = theory.paper_mixture(2, 2, separation=2.0, trace=0.5, seed=0)
    emp = theory.EmpiricalLaw(truth.sample(30, 0.0, torch.Generator().manual_seed(0)))
    on_emp = memorization_index(emp.score, emp, truth, 0.01, 200, torch.Generator().manual_seed(1))
    on_true = memorization_index(truth.score, emp, truth, 0.01, 200, torch.Generator().manual_seed(1))
    assert on_emp["index"] == 1.0 and on_true["index"] == 0.0
    assert on_emp["to_true"].mean > 0


# ----------------------------------------------------------------------------- the crossover time t*
from theory.estimators.estimate import Estimate                                   # noqa: E402
from theory.evaluation.likelihood import index_crossover                          # noqa: E402

TIMES = [1e-3 * 10 ** (k / 3) for k in range(13)]     # 1e-3 .. 10


def _profile(values, se=0.1):
    return [Estimate(v, se, 500) for v in values]


def test_crossover_brackets_the_sign_change_and_interpolates_in_log_t():
    # significantly closer to the true score up to t_3, undecided at t_4, significantly closer to the
    # empirical score from t_5 on; the point estimates change sign between t_4 and t_5
    d = [-3, -3, -2, -1, -0.1, 0.3, 1, 2, 2, 1, 0.5, 0.1, 0.0]
    iv = index_crossover(TIMES, _profile(d))
    assert (iv.lo, iv.hi) == (TIMES[3], TIMES[5]) and iv.method == "grid_bracket"
    frac = 0.1 / 0.4
    assert iv.estimate == pytest.approx(TIMES[4] * (TIMES[5] / TIMES[4]) ** frac)


def test_crossover_censored_at_either_end():
    never = index_crossover(TIMES, _profile([-1.0] * 13))
    assert never.estimate == math.inf and (never.lo, never.hi) == (TIMES[-1], math.inf)
    always = index_crossover(TIMES, _profile([1.0] * 13))
    assert (always.estimate, always.lo, always.hi) == (TIMES[0], 0.0, TIMES[0])
    # positive but undecided below the first significant time: no time is significantly 'true', lo = 0
    weak = index_crossover(TIMES, _profile([0.05] * 4 + [1.0] * 9))
    assert (weak.lo, weak.hi) == (0.0, TIMES[4])
    with pytest.raises(ValueError):
        index_crossover(TIMES[::-1], _profile([1.0] * 13))


def test_crossover_of_a_score_that_switches_from_true_to_empirical():
    """A 'net' equal to the true score below t_c and to the empirical score above: its measured profile
    crosses at t_c, and the bracket of t* contains t_c."""
    truth = theory.paper_mixture(4, 4, separation=2.0, trace=1.0, seed=0)
    emp = theory.EmpiricalLaw(truth.sample(40, 0.0, torch.Generator().manual_seed(0)))
    t_c = 0.05

    def switch(x, t):
        t = torch.as_tensor(t, dtype=x.dtype).expand(x.shape[0])
        return torch.where((t >= t_c)[:, None], emp.score(x, t), truth.score(x, t))

    g = torch.Generator().manual_seed(2)
    diffs = [memorization_index(switch, emp, truth, t, 300, g)["difference"] for t in TIMES]
    iv = index_crossover(TIMES, diffs)
    assert iv.lo <= t_c <= iv.hi and iv.hi / iv.lo < 10 ** (2 / 3) + 1e-9
    assert all(e.mean > 0 for e, t in zip(diffs, TIMES) if t >= t_c)
