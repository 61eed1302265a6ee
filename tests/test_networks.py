"""ReLU MLP ensembles: exact parameter counts, masked widths, batched training = separate trainings."""

import math

import pytest
import torch

import theory
from theory.networks.relu_mlp import ReLUMLP, relu_mlp_parameter_count as parameter_count
from theory.training.regression import RegressionConfig, fit_score, relative_error


def hand_count(d_in, w, depth, d_out):
    total = d_in * w + w                      # first hidden layer
    for _ in range(depth - 1):
        total += w * w + w                    # hidden -> hidden
    return total + w * d_out + d_out          # output layer


@pytest.mark.parametrize("d_in,w,depth,d_out", [(2, 5, 1, 2), (3, 7, 3, 2), (9, 16, 2, 8)])
def test_parameter_count_matches_hand_count_and_modules(d_in, w, depth, d_out):
    assert parameter_count(d_in, w, depth, d_out) == hand_count(d_in, w, depth, d_out)
    time_input = d_in == d_out + 1
    net = ReLUMLP(d_out, [w], depth, [0], time_input=time_input) if time_input or d_in == d_out else None
    if net is not None:
        assert net.parameter_counts()[0] == hand_count(d_in, w, depth, d_out)
        # a single unpadded member: every stored parameter is one of the counted ones, all nonzero a.s.
        assert sum(p.numel() for p in net.parameters()) == hand_count(d_in, w, depth, d_out)
        assert int(net.nonzero_parameter_counts()[0]) == hand_count(d_in, w, depth, d_out)


def test_parameter_count_rejects_bad_input():
    with pytest.raises(ValueError, match="width"):
        parameter_count(2, 0, 1, 2)
    with pytest.raises(ValueError, match="widths"):
        ReLUMLP(2, [4, 8], 1, [0])
    with pytest.raises(ValueError, match="x must"):
        ReLUMLP(2, 4, 1, [0, 1])(torch.zeros(3, 5))


def test_padded_member_equals_standalone_net():
    """Member e of a mixed-width ensemble computes exactly its own-width net (same init, padding inert),
    and its nonzero count is that width's parameter count."""
    x = torch.randn(50, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ens = ReLUMLP(3, [4, 16, 9], 2, [5, 6, 7], dtype=torch.float64)
    out = ens(x)
    for e, (w, s) in enumerate(zip([4, 16, 9], [5, 6, 7])):
        alone = ReLUMLP(3, w, 2, [s], dtype=torch.float64)
        torch.testing.assert_close(out[e], alone(x)[0], rtol=1e-12, atol=1e-12)
        assert int(ens.nonzero_parameter_counts()[e]) == parameter_count(3, w, 2, 3)
        torch.testing.assert_close(ens.member(e)(x)[0], out[e], rtol=1e-12, atol=1e-12)


def test_time_input_feature():
    net = ReLUMLP(2, 8, 1, [0, 1], time_input=True, dtype=torch.float64)
    x = torch.randn(6, 2, dtype=torch.float64)
    a = net(x, 0.3)
    b = net(x, torch.full((6,), 0.3, dtype=torch.float64))
    torch.testing.assert_close(a, b)
    assert not torch.allclose(net(x, 0.3), net(x, 0.9))
    with pytest.raises(ValueError, match="t is required"):
        net(x)


def test_ensemble_training_equals_separate_trainings():
    """E members (mixed widths, laws and times) trained as one ensemble == E one-member trainings with the
    same seeds and data streams, to round-off in float64."""
    truth = theory.paper_mixture(3, 2, separation=1.0, trace=2.0, seed=0)
    data = truth.sample(6, 0.0, torch.Generator().manual_seed(1))
    laws = [theory.EmpiricalLaw(data), truth, theory.EmpiricalLaw(data)]
    times, widths, seeds, data_seeds = [0.1, 0.3, 0.5], [4, 8, 6], [1, 2, 3], [11, 12, 13]
    cfg = RegressionConfig(steps=12, batch_size=32, lr=1e-2, weight_decay=1e-3, warmup=3, block_steps=5,
                           eval_points=64)
    ens = ReLUMLP(2, widths, 2, seeds, dtype=torch.float64)
    res = fit_score(ens, laws, times, cfg, data_seeds)
    for e in range(3):
        alone = ReLUMLP(2, [widths[e]], 2, [seeds[e]], dtype=torch.float64)
        r1 = fit_score(alone, [laws[e]], [times[e]], cfg, [data_seeds[e]])
        for p_ens, p_one in zip(ens.member(e).parameters(), alone.parameters()):
            torch.testing.assert_close(p_ens, p_one, rtol=1e-9, atol=1e-11)
        assert math.isclose(res.rel_error[e].mean, r1.rel_error[0].mean, rel_tol=1e-8)
        assert math.isclose(res.final_loss[e], r1.final_loss[0], rel_tol=1e-8)


def test_relative_error_of_exact_and_zero_predictors():
    """An exact score gives relative error 0; the zero score gives exactly 1 (delta-method stderr 0)."""

    class Exact(torch.nn.Module):
        """Stand-in net: returns the exact denoiser (parameterisation 'denoiser') or zero ('score')."""
        members, dim, time_input = 1, 2, False

        def __init__(self, law, t, zero):
            super().__init__()
            self.law, self.t, self.zero = law, t, zero
            self.p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

        def forward(self, x, t=None):
            if self.zero:
                return torch.zeros_like(x)
            return self.law.denoiser(x[0], self.t)[None]

    truth = theory.paper_mixture(2, 2, separation=1.0, trace=2.0, seed=0)
    exact = relative_error(Exact(truth, 0.2, False), truth, 0.2, 500, [0], parameterisation="denoiser")[0]
    zero = relative_error(Exact(truth, 0.2, True), truth, 0.2, 500, [0], parameterisation="score")[0]
    assert exact.mean < 1e-20
    assert zero.mean == pytest.approx(1.0, abs=1e-12) and zero.stderr < 1e-10


def test_training_reduces_error_on_true_score():
    """A width-32 net fitted to a Gaussian mixture score at t = 0.5 beats the trivial predictor by a
    wide margin (relative error < 0.2, well outside 3 stderr of 1)."""
    truth = theory.paper_mixture(2, 2, separation=1.0, trace=2.0, seed=0)
    net = ReLUMLP(2, [32], 2, [0])
    res = fit_score(net, truth, 0.5, RegressionConfig(steps=150, batch_size=128, lr=1e-2, eval_points=1024), [0])
    est = res.rel_error[0]
    assert est.mean < 0.2 and est.mean + 3 * est.stderr < 1.0


def test_per_member_broadcasts_or_checks_length():
    from theory.networks.ensemble import per_member

    assert per_member(0.5, 3, "wd") == [0.5, 0.5, 0.5]
    assert per_member(torch.tensor(2.0), 2, "wd") == [2.0, 2.0]
    assert per_member(torch.tensor([1.0, 2.0]), 2, "wd") == [1.0, 2.0]
    assert per_member([1, 2, 3], 3, "n") == [1, 2, 3]
    with pytest.raises(ValueError, match="wd must"):
        per_member([1.0, 2.0], 3, "wd")
    with pytest.raises(ValueError, match="wd must"):
        per_member(torch.ones(2, 2), 2, "wd")
