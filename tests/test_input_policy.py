"""The input policy of theory (theory/_validate.py, issue 18): one test per case the issue's probe found
(16 silent failures, 18 deep errors, 1 valid input rejected), each asserting the one-line error (its type,
the argument named) or the now-correct result; the valid range of t; the estimators' refusal of a standard
error from one draw; the samplers' per-step check of the score; and the probe itself (benchmarks/
input_probe.py), which must find no deep error, silent failure or rejected valid input."""

import math

import numpy as np
import pytest
import torch

import theory
from benchmarks.input_probe import names_argument, run as run_probe
from theory.estimators import lossgap
from theory.estimators.estimate import RunningMoments, binomial_estimate
from theory.evaluation import image_metrics, memorization, samplers
from theory.laws import forward
from verify import _io

D = 3


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def raises(exc, arg, fn, *args, **kwargs):
    """Call fn and require exc with a one-line message that names ``arg``; return the message."""
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg.strip(), msg
    assert names_argument(msg, arg), (arg, msg)
    assert type(info.value) is exc or exc is ValueError and isinstance(info.value, ValueError), msg
    return msg


@pytest.fixture(scope="module")
def mixture():
    return theory.paper_mixture(2, D, seed=0)


@pytest.fixture(scope="module")
def empirical():
    return theory.EmpiricalLaw(torch.randn(10, D, generator=_gen(1), dtype=torch.float64))


@pytest.fixture(scope="module")
def points():
    return torch.randn(4, D, generator=_gen(2), dtype=torch.float64)


def _nan_score(x, t):
    return torch.full_like(x, math.nan)


def _linear_score(x, t):
    return -x


# ------------------------------------------------------------------------------ the 16 silent failures
@pytest.mark.parametrize("which", ["mixture", "empirical"])
def test_a_bool_is_not_a_time(which, mixture, empirical, points):
    law = mixture if which == "mixture" else empirical
    for method in ("score", "log_prob", "hessian", "denoiser"):
        raises(TypeError, "t", getattr(law, method), points, True)
    raises(TypeError, "t", law.sample, 3, True)
    raises(TypeError, "t", law.score, points, torch.ones(4, dtype=torch.bool))


def test_empirical_score_at_t_1e_320_is_a_clear_error_not_nan(empirical, points):
    msg = raises(ValueError, "t", empirical.score, points, 1e-320)
    assert "float64" in msg and "1e-320" in msg
    raises(ValueError, "t", empirical.score, points, 5e-324)      # the smallest positive float64
    raises(ValueError, "t", empirical.hessian, points, 1e-200)    # 1/sigma_t^4 overflows first
    assert bool(torch.isfinite(empirical.score(points, 1e-280)).all())   # still representable


def test_add_noise_refuses_nan_in_x0():
    x0 = torch.zeros(4, 2, dtype=torch.float64)
    x0[1, 0] = math.nan
    raises(ValueError, "x0", forward.add_noise, x0, 0.3)
    raises(ValueError, "noise", forward.add_noise, torch.zeros(4, 2), 0.3, torch.full((4, 2), math.inf))


def test_dsm_loss_refuses_a_score_of_the_wrong_shape():
    x0, z = torch.zeros(4, 2, dtype=torch.float64), torch.randn(4, 2, generator=_gen(), dtype=torch.float64)
    msg = raises(ValueError, "score", forward.dsm_loss, lambda x, t: torch.zeros(x.shape[0], 1), x0, 0.3, z)
    assert "(4, 1)" in msg and "(4, 2)" in msg
    raises(ValueError, "score", forward.dsm_loss, _nan_score, x0, 0.3, z)


def test_loss_gap_with_one_draw_refuses_a_standard_error(mixture):
    emp = theory.EmpiricalLaw(mixture.sample(5, 0.0, _gen()))
    raises(ValueError, "n_draws", lossgap.loss_gap, mixture, emp, 0.1, n_draws=1, generator=_gen())
    raises(ValueError, "n_draws", lossgap.fisher_divergence, emp, mixture, 0.1, 1, generator=_gen())
    raises(ValueError, "n_draws", lossgap.loss_gap, mixture, emp.samples[:1], 0.1)   # one point, each once
    est = lossgap.loss_gap(mixture, emp, 0.1, n_draws=2, generator=_gen())
    assert est.n == 2 and est.stderr > 0


def test_loss_gap_lower_bound_refuses_an_infinite_trace():
    for bad in (math.inf, math.nan, -1.0):
        raises(ValueError, "trace", lossgap.loss_gap_lower_bound, 2, 0.1, bad)
    raises(TypeError, "trace", lossgap.loss_gap_lower_bound, 2, 0.1, "3")
    assert float(lossgap.loss_gap_lower_bound(2, 0.1, torch.tensor(3.0))) == pytest.approx(2 / -math.expm1(-0.1) + 3)


def test_gaussian_fisher_refuses_a_non_positive_definite_covariance():
    eye = torch.eye(2, dtype=torch.float64)
    raises(ValueError, "cov_p", lossgap.gaussian_fisher_divergence, torch.zeros(2), -eye, torch.zeros(2), eye)
    raises(ValueError, "cov_q", lossgap.gaussian_fisher_divergence, torch.zeros(2), eye, torch.zeros(2),
           torch.tensor([[1.0, 2.0], [2.0, 1.0]]))


def test_gaussian_fisher_refuses_nan_in_a_mean():
    eye = torch.eye(2, dtype=torch.float64)
    raises(ValueError, "mean_p", lossgap.gaussian_fisher_divergence, torch.tensor([math.nan, 0.0]), eye,
           torch.zeros(2), eye)
    raises(ValueError, "mean_q", lossgap.gaussian_fisher_divergence, torch.zeros(2), eye,
           torch.tensor([0.0, math.inf]), eye)


def test_probability_flow_names_the_step_where_the_score_was_not_finite():
    x_T = samplers.prior_sample((6, 2), generator=_gen())

    def late_nan(x, t):                 # finite until t drops below 1
        return -x if float(t[0]) >= 1.0 else torch.full_like(x, math.nan)

    msg = raises(ValueError, "score_fn", samplers.probability_flow, late_nan, x_T, T=10.0, t0=1e-3, steps=6)
    grid = samplers.time_grid(10.0, 1e-3, 6)
    first_bad = int((grid < 1.0).nonzero()[0])
    assert f"step {first_bad - 1}" in msg or f"step {first_bad}" in msg, msg
    assert "t = " in msg
    raises(ValueError, "score_fn", samplers.reverse_sde, _nan_score, x_T, steps=3, generator=_gen())
    raises(ValueError, "score_fn", samplers.probability_flow, lambda x, t: -x[:, :1], x_T, steps=3)
    raises(TypeError, "score_fn", samplers.probability_flow, lambda x, t: (-x).float(), x_T, steps=3)


def test_reverse_sde_refuses_nan_in_x_T():
    x_T = samplers.prior_sample((6, 2), generator=_gen())
    x_T[2, 1] = math.nan
    raises(ValueError, "x_T", samplers.reverse_sde, _linear_score, x_T, steps=3, generator=_gen())
    raises(ValueError, "x_T", samplers.probability_flow, _linear_score, x_T, steps=3)


def test_integer_x_T_is_converted_not_truncated():
    ints = torch.tensor([[1, -1], [0, 2], [3, 0]])
    floats = ints.to(torch.float64)
    out = samplers.probability_flow(_linear_score, ints, steps=8)
    assert out.dtype == torch.float64
    assert torch.equal(out, samplers.probability_flow(_linear_score, floats, steps=8))
    sde = samplers.reverse_sde(_linear_score, ints, steps=8, generator=_gen(3))
    assert torch.equal(sde, samplers.reverse_sde(_linear_score, floats, steps=8, generator=_gen(3)))


def test_integer_samples_against_float_training_data_are_not_truncated():
    train = torch.arange(40, dtype=torch.float64).reshape(20, 2) + 0.25
    ints = torch.tensor([[0, 1], [10, 11], [3, 3]])
    got = memorization.memorization_fraction(ints, train)
    want = memorization.memorization_fraction(ints.to(torch.float64), train)
    assert got.mean == want.mean and want.mean > 0        # truncating train to ints found 0.0


def test_frechet_distance_refuses_a_non_psd_covariance():
    eye = np.eye(3)
    raises(ValueError, "cov1", image_metrics.frechet_distance, np.zeros(3), -eye, np.zeros(3), eye)
    indefinite = np.array([[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]])     # eigenvalue -1
    raises(ValueError, "cov2", image_metrics.frechet_distance, np.zeros(3), eye, np.zeros(3), indefinite)
    # a singular covariance (fewer samples than features) is a covariance: accepted
    f = np.random.default_rng(0).normal(size=(3, 5))
    singular = np.cov(f, rowvar=False)
    assert math.isfinite(image_metrics.frechet_distance(f.mean(0), singular, f.mean(0), singular))


def test_frechet_distance_refuses_nan_means():
    eye = np.eye(3)
    raises(ValueError, "mu1", image_metrics.frechet_distance, np.full(3, np.nan), eye, np.zeros(3), eye)
    raises(ValueError, "mu2", image_metrics.frechet_distance, np.zeros(3), eye, np.array([0, np.inf, 0]), eye)


def test_inside_manifold_refuses_negative_radii():
    c = torch.randn(5, 2, generator=_gen(), dtype=torch.float64)
    raises(ValueError, "radii", image_metrics.inside_manifold, c, c, -torch.ones(5))
    assert bool(image_metrics.inside_manifold(c, c, torch.zeros(5)).all())      # r = 0 still holds the centre


# ------------------------------------------------------------------------------ the 18 deep errors
@pytest.mark.parametrize("t", ["0.5", b"0.5"])
def test_a_string_is_not_a_time(t, mixture, points):
    raises(TypeError, "t", mixture.score, points, t)


@pytest.mark.parametrize("kind", ["numpy", "list"])
def test_add_noise_accepts_arrays_and_lists(kind):
    x0, z = torch.randn(4, 2, generator=_gen(), dtype=torch.float64), torch.randn(4, 2, generator=_gen(1),
                                                                                  dtype=torch.float64)
    convert = (lambda a: a.numpy()) if kind == "numpy" else (lambda a: a.tolist())
    xt, noise = forward.add_noise(convert(x0), 0.3, convert(z))
    assert torch.equal(xt, forward.add_noise(x0, 0.3, z)[0]) and xt.dtype == torch.float64


@pytest.mark.parametrize("kind", ["numpy", "list"])
def test_probability_flow_accepts_arrays_and_lists(kind, empirical):
    x_T = samplers.prior_sample((5, D), generator=_gen(4))
    convert = (lambda a: a.numpy()) if kind == "numpy" else (lambda a: a.tolist())
    assert torch.equal(samplers.probability_flow(empirical.score, convert(x_T), steps=6),
                       samplers.probability_flow(empirical.score, x_T, steps=6))


@pytest.mark.parametrize("kind", ["numpy", "list"])
def test_memorization_accepts_arrays_and_lists(kind):
    train = torch.randn(20, 2, generator=_gen(5), dtype=torch.float64)
    samples = train[:6] + 1e-3
    convert = (lambda a: a.numpy()) if kind == "numpy" else (lambda a: a.tolist())
    assert torch.equal(memorization.memorized(convert(samples), convert(train)), memorization.memorized(samples, train))
    assert memorization.memorization_fraction(convert(samples), convert(train)).mean == 1.0


@pytest.mark.parametrize("kind", ["numpy", "list"])
def test_fid_accepts_arrays_and_lists(kind):
    a, b = torch.randn(30, 4, generator=_gen(6), dtype=torch.float64), torch.randn(25, 4, generator=_gen(7),
                                                                                   dtype=torch.float64) + 0.5
    convert = (lambda v: v.numpy()) if kind == "numpy" else (lambda v: v.tolist())
    assert image_metrics.fid(convert(a), convert(b)) == pytest.approx(image_metrics.fid(a, b), rel=1e-12)


def test_add_noise_converts_int64_x0_to_float64():
    xt, _ = forward.add_noise(torch.ones(4, 2, dtype=torch.int64), 0.3, torch.zeros(4, 2))
    assert xt.dtype == torch.float64
    assert torch.allclose(xt, torch.full((4, 2), math.exp(-0.15), dtype=torch.float64), rtol=1e-15)


def test_gaussian_fisher_refuses_a_singular_covariance():
    raises(ValueError, "cov_p", lossgap.gaussian_fisher_divergence, torch.zeros(2), torch.zeros(2, 2),
           torch.zeros(2), torch.eye(2))


def test_gaussian_fisher_refuses_a_scalar_mean():
    msg = raises(ValueError, "mean_p", lossgap.gaussian_fisher_divergence, 0.0, torch.eye(2), torch.zeros(2),
                 torch.eye(2))
    assert "(d,)" in msg


def test_empty_sample_sets_are_refused():
    train = torch.randn(10, 2, generator=_gen(), dtype=torch.float64)
    raises(ValueError, "samples", memorization.memorization_fraction, train[:0], train)
    raises(ValueError, "train", memorization.memorized, train, train[:0])
    images = torch.zeros(0, 8, 8, 3, dtype=torch.uint8)
    raises(ValueError, "images", image_metrics.extract_features, images, lambda x: x.flatten(1), size=None)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_fid_refuses_non_finite_features(bad):
    a, b = torch.randn(30, 4, generator=_gen(6), dtype=torch.float64), torch.randn(25, 4, generator=_gen(7),
                                                                                   dtype=torch.float64)
    a[3, 1] = bad
    raises(ValueError, "features_a", image_metrics.fid, a, b)
    raises(ValueError, "features_b", image_metrics.fid, b, a)


def test_inside_manifold_refuses_radii_of_the_wrong_length():
    c = torch.randn(5, 2, generator=_gen(), dtype=torch.float64)
    msg = raises(ValueError, "radii", image_metrics.inside_manifold, c, c, torch.ones(3))
    assert "(5,)" in msg


def test_load_inception_refuses_a_file_that_is_not_torchscript(tmp_path):
    bad = tmp_path / "weights.pt"
    bad.write_bytes(b"not a TorchScript archive")
    msg = raises(ValueError, "path", _io.load_inception, bad)
    assert str(bad) in msg
    torch.save({"a": torch.zeros(2)}, tmp_path / "state.pt")            # a pickle, not TorchScript
    raises(ValueError, "path", _io.load_inception, tmp_path / "state.pt")


# ------------------------------------------------------------------------------ the valid input rejected
def test_float32_weights_of_a_third_each_are_a_probability_vector():
    means = torch.randn(3, D, generator=_gen(8), dtype=torch.float64)
    covs = torch.eye(D, dtype=torch.float64).expand(3, D, D).clone()
    law32 = theory.GaussianMixture(torch.full((3,), 1 / 3, dtype=torch.float32), means, covs)
    law64 = theory.GaussianMixture(torch.full((3,), 1 / 3, dtype=torch.float64), means, covs)
    x = torch.randn(5, D, generator=_gen(9), dtype=torch.float64)
    assert float(law32.weights.sum()) == pytest.approx(1.0, abs=1e-15)     # renormalised in float64
    assert torch.allclose(law32.log_prob(x, 0.1), law64.log_prob(x, 0.1), rtol=0, atol=1e-13)
    # float64 weights keep their strict tolerance, and float32 ones cannot be far off
    raises(ValueError, "weights", theory.GaussianMixture, torch.tensor([0.5, 0.5 + 1e-7], dtype=torch.float64),
           means[:2], covs[:2])
    raises(ValueError, "weights", theory.GaussianMixture, torch.tensor([0.5, 0.501]), means[:2], covs[:2])


# ------------------------------------------------------------------------------ the range of t
def test_time_coefficients_are_exact_down_to_the_smallest_float64():
    for t in (5e-324, 1e-320, 1e-300, 1e-20):
        assert float(forward.sigma2(t)) == t and float(forward.alpha(t)) == 1.0
        assert float(forward.sigma(t)) == pytest.approx(math.sqrt(t), rel=1e-15)
    assert float(forward.alpha(1e300)) == 0.0 and float(forward.sigma2(1e300)) == 1.0


def test_the_mixture_is_finite_down_to_the_smallest_float64(mixture, points):
    for t in (5e-324, 1e-320, 1e-200):
        for method in ("log_prob", "score", "hessian", "denoiser"):
            out = getattr(mixture, method)(points, t)
            assert bool(torch.isfinite(out).all())
            assert torch.allclose(out, getattr(mixture, method)(points, 0.0), rtol=1e-12, atol=1e-12)


def test_overflowing_conversions_name_t():
    x = torch.randn(4, 2, generator=_gen(), dtype=torch.float64) + 1
    raises(ValueError, "t", forward.score_from_denoiser, torch.zeros(4, 2), x, 1e-320)
    raises(ValueError, "t", forward.dsm_target, x, torch.zeros(4, 2), 1e-320)
    raises(ValueError, "t", forward.dsm_loss, lambda y, t: torch.zeros_like(y), x, 1e-320, torch.ones(4, 2))
    raises(ValueError, "t", lossgap.loss_gap_lower_bound, 2, 5e-324, 1.0)
    assert bool(torch.isfinite(forward.score_from_eps(x, 5e-324)).all())        # -eps / sigma_t fits


# ------------------------------------------------------------------------------ standard errors
def test_running_moments_refuse_a_standard_error_from_one_sample():
    acc = RunningMoments().update(torch.tensor([2.5]))
    assert acc.mean == 2.5
    raises(ValueError, "n", acc.estimate)
    raises(ValueError, "n", RunningMoments().estimate)
    est = acc.update([3.5]).estimate()
    assert est.n == 2 and est.mean == 3.0 and est.stderr == pytest.approx(0.5)
    raises(ValueError, "values", RunningMoments().update, [1.0, math.nan])
    raises(ValueError, "trials", binomial_estimate, 1, 1)


def test_head_importance_reports_no_standard_error_from_one_taylor_draw():
    from theory.networks.dit import DiT, DiTConfig
    from theory.networks.heads import head_importance

    model = DiT(DiTConfig(image_size=8, patch=4, width=8, depth=1, heads=2, freq_dim=8), generator=_gen())
    images = torch.rand(4, 3, 8, 8, generator=_gen()) * 2 - 1
    kw = dict(batch_size=2, t0=1e-3, T=10.0, generator=_gen(1))
    taylor = head_importance(model, images, draws=1, method="taylor", **kw)
    assert taylor.stderr is None and taylor.n == 1 and taylor.mean.shape == (1, 2)
    assert head_importance(model, images, draws=2, method="taylor", **kw).stderr.shape == (1, 2)


# ------------------------------------------------------------------------------ the probe
def test_the_probe_finds_no_deep_error_silent_failure_or_rejected_input():
    result = run_probe()
    bad = [r for r in result["rows"] if r["outcome"] in ("deep", "silent", "rejected")]
    assert not bad, bad
    s = result["summary"]
    assert s["inputs"] >= 300 and s["clear"] + s["ok"] == s["inputs"]
