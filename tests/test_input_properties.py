"""Property-based tests of theory's input policy (issue 18, theory/_validate.py), with hypothesis.

For generated inputs (valid and invalid shapes; float64, float32, integer, boolean and complex data;
tensors, numpy arrays, lists and junk; NaN, infinities and large values; times that are 0, negative,
subnormal (5e-324), tiny, huge, booleans, strings, None, arrays and lists), every public function either
returns finite output of its documented shape, or raises a ValueError / TypeError whose one-line message
names one of its arguments. Nothing else (no other exception, no NaN, no wrong shape) is allowed.

Bounded: ``max_examples`` per function (50), no deadline, derandomized (the same examples every run, so
the suite is deterministic) and without an example database (nothing written to the repository).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

import theory
from benchmarks.input_probe import finite, names_argument
from theory.estimators import estimate, lipschitz, lossgap
from theory.evaluation import image_metrics, memorization, neighbours, samplers
from theory.laws import forward

pytestmark = pytest.mark.usefixtures("one_thread")

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])
D = 2
MIX = theory.paper_mixture(2, D, seed=0)
EMP = theory.EmpiricalLaw(MIX.sample(6, 0.0, torch.Generator().manual_seed(1)))
LAWS = {"mixture": MIX, "empirical": EMP}


# ------------------------------------------------------------------------------------------ strategies
special = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 5e-324, 1e-300, 1e150, -1e200])
reals = st.one_of(st.floats(-20.0, 20.0, allow_nan=False), st.floats(-20.0, 20.0, allow_nan=False), special)
JUNK = st.sampled_from(["abc", None, b"x", {"a": 1}, object()])


@st.composite
def arrays(draw, shapes, elements=reals):
    """An array-like of a drawn shape: a float64/float32/int64/bool/complex tensor, a numpy array or a
    nested list, or junk."""
    if draw(st.integers(0, 9)) == 0:
        return draw(JUNK)
    shape = draw(shapes)
    n = int(np.prod(shape)) if shape else 1
    values = np.array(draw(st.lists(elements, min_size=n, max_size=n)), dtype=np.float64).reshape(shape)
    kind = draw(st.sampled_from(["f64", "f64", "f64", "f32", "int", "bool", "complex"]))
    with np.errstate(all="ignore"):
        if kind == "f32":
            values = values.astype(np.float32)
        elif kind == "int":
            values = np.nan_to_num(values, nan=0, posinf=7, neginf=-7).clip(-100, 100).astype(np.int64)
        elif kind == "bool":
            values = values > 0
        elif kind == "complex":
            values = values.astype(np.complex128)
    values = np.asarray(values)                      # 0-d results of numpy ops are scalars
    form = draw(st.sampled_from(["tensor", "tensor", "numpy", "list"]))
    if form == "tensor":
        return torch.from_numpy(values.copy())
    return values if form == "numpy" else values.tolist()


def batch_shapes(d: int, extra: int = 0):
    """Mostly (B, d) (B in 1..5), sometimes wrong: (B,), (B, d + 1), (0, d), (B, d, 1), ()."""
    good = st.tuples(st.integers(1, 5), st.just(d), *[st.just(d)] * extra)
    bad = st.sampled_from([(3,), (3, d + 1), (0, d), (3, d, 1), ()])
    return st.one_of(good, good, good, bad)


times = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),                  # includes negatives and subnormals
    st.floats(1e-6, 20.0),
    st.floats(1e-6, 20.0),
    st.sampled_from([0.0, 5e-324, 1e-320, 1e-300, 1e-150, 1e300, True, False, "0.1", None, 1j, 2]),
    arrays(st.sampled_from([(3,), (2,), (3, 1), ()]), st.one_of(st.floats(1e-4, 10.0), special)),
)


def check(call, names, shape=None):
    """The property: ``call()`` returns finite output (of ``shape``, if given), or raises a ValueError /
    TypeError with a one-line message naming one of ``names``."""
    try:
        out = call()
    except (ValueError, TypeError) as err:
        msg = str(err)
        assert "\n" not in msg.strip(), msg
        assert names_argument(msg, names), (names, msg)
        return None
    assert finite(out), out
    if shape is not None:
        assert tuple(out.shape) == tuple(shape), (tuple(out.shape), shape)
    return out


def rows(value) -> int | None:
    """The leading size of an array-like (to state the documented output shape), None for junk."""
    try:
        return int(np.shape(value)[0]) if np.ndim(value) else None
    except Exception:                # noqa: BLE001 - junk has no shape
        return None


# ------------------------------------------------------------------------------------------ the laws
@pytest.mark.parametrize("law_name", list(LAWS))
@pytest.mark.parametrize("method", ["log_prob", "score", "hessian", "denoiser"])
@SETTINGS
@given(x=arrays(batch_shapes(D)), t=times)
def test_law_methods(law_name, method, x, t):
    law = LAWS[law_name]
    b = rows(x)
    shape = {"log_prob": (b,), "score": (b, D), "hessian": (b, D, D), "denoiser": (b, D)}[method]
    check(lambda: getattr(law, method)(x, t), ("x", "t"), shape)


@pytest.mark.parametrize("law_name", list(LAWS))
@SETTINGS
@given(m=st.one_of(st.integers(-2, 6), st.sampled_from([True, 2.5, "3", None, np.int64(4)])), t=times,
       generator=st.sampled_from([None, torch.Generator().manual_seed(0), "g", 3]))
def test_law_sample(law_name, m, t, generator):
    out = check(lambda: LAWS[law_name].sample(m, t, generator), ("m", "t", "generator"))
    if out is not None:
        assert out.shape == (int(m), D)


@SETTINGS
@given(weights=arrays(st.sampled_from([(2,), (3,), (2, 1)]), st.floats(-0.5, 1.0)),
       means=arrays(st.sampled_from([(2, D), (2,), (3, D)])),
       covariances=arrays(st.sampled_from([(2, D, D), (2, D)]), st.floats(-1.0, 2.0)))
def test_mixture_constructor(weights, means, covariances):
    law = check(lambda: theory.GaussianMixture(weights, means, covariances),
                ("weights", "means", "covariances"))
    if law is not None:
        assert law.dim == D and abs(float(law.weights.sum()) - 1) < 1e-6
        check(lambda: law.score(torch.zeros(2, D), 0.5), (), (2, D))


@SETTINGS
@given(samples=arrays(batch_shapes(D)), tile_size=st.sampled_from([1, 7, 2 ** 20, 0, -1, 2.5, True]))
def test_empirical_constructor(samples, tile_size):
    law = check(lambda: theory.EmpiricalLaw(samples, tile_size=tile_size), ("samples", "tile_size"))
    if law is not None:
        check(lambda: law.score(torch.zeros(2, law.dim), 0.3), (), (2, law.dim))


# ------------------------------------------------------------------------------------------ forward
@pytest.mark.parametrize("fn", [forward.alpha, forward.sigma, forward.sigma2])
@SETTINGS
@given(t=times)
def test_time_coefficients(fn, t):
    out = check(lambda: fn(t), ("t",))
    if out is not None:
        assert out.shape == np.shape(t) and bool((out >= 0).all())


@SETTINGS
@given(x0=arrays(batch_shapes(D)), t=times, noise=st.one_of(st.none(), arrays(batch_shapes(D))))
def test_add_noise(x0, t, noise):
    out = check(lambda: forward.add_noise(x0, t, noise, generator=torch.Generator().manual_seed(0))[0],
                ("x0", "t", "noise"))
    if out is not None:
        assert out.shape == np.shape(x0)


SCORES = {"zero": lambda x, t: torch.zeros_like(x), "linear": lambda x, t: -x,
          "column": lambda x, t: torch.zeros(x.shape[0], 1, dtype=x.dtype),
          "nan": lambda x, t: torch.full_like(x, math.nan), "law": EMP.score, "not callable": 3}


@SETTINGS
@given(score=st.sampled_from(list(SCORES)), x0=arrays(batch_shapes(D)), t=times,
       noise=arrays(batch_shapes(D)))
def test_dsm_loss(score, x0, t, noise):
    check(lambda: forward.dsm_loss(SCORES[score], x0, t, noise), ("score", "x0", "t", "noise", "x"),
          (rows(x0),))


@pytest.mark.parametrize("name", ["score_from_eps", "eps_from_score"])
@SETTINGS
@given(value=arrays(batch_shapes(D)), t=times)
def test_one_argument_conversions(name, value, t):
    arg = "eps" if name == "score_from_eps" else "score"
    check(lambda: getattr(forward, name)(value, t), (arg, "t"), np.shape(value))


@pytest.mark.parametrize("name", ["score_from_denoiser", "denoiser_from_score", "eps_from_denoiser", "dsm_target"])
@SETTINGS
@given(a=arrays(batch_shapes(D)), b=arrays(batch_shapes(D)), t=times)
def test_two_argument_conversions(name, a, b, t):
    first = {"score_from_denoiser": "denoised", "eps_from_denoiser": "denoised", "denoiser_from_score": "score",
             "dsm_target": "x_t"}[name]
    second = "x0" if name == "dsm_target" else "x"
    check(lambda: getattr(forward, name)(a, b, t), (first, second, "t"), np.shape(a))


# ------------------------------------------------------------------------------------------ estimators
@SETTINGS
@given(data=arrays(batch_shapes(D)), t=times,
       n_draws=st.one_of(st.none(), st.integers(-1, 6), st.sampled_from([True, 2.5, "4"])),
       truth=st.sampled_from(["mixture", "other dim", "nan score"]))
def test_loss_gap(data, t, n_draws, truth):
    truth = {"mixture": MIX, "other dim": theory.paper_mixture(2, D + 1, seed=0),
             "nan score": SCORES["nan"]}[truth]
    est = check(lambda: lossgap.loss_gap(truth, data, t, n_draws=n_draws, generator=torch.Generator().manual_seed(0)),
                ("truth", "data", "t", "n_draws", "score"))
    if est is not None:
        assert est.n >= 2 and est.stderr >= 0


@SETTINGS
@given(mean_p=arrays(st.sampled_from([(D,), (), (D + 1,)])), cov_p=arrays(st.sampled_from([(D, D), (D,)]),
                                                                          st.floats(-1.0, 2.0)),
       mean_q=arrays(st.sampled_from([(D,), (D, 1)])), cov_q=arrays(st.sampled_from([(D, D)]), st.floats(-1.0, 2.0)))
def test_gaussian_fisher_divergence(mean_p, cov_p, mean_q, cov_q):
    check(lambda: lossgap.gaussian_fisher_divergence(mean_p, cov_p, mean_q, cov_q),
          ("mean_p", "cov_p", "mean_q", "cov_q"), ())


@SETTINGS
@given(dim=st.one_of(st.integers(-1, 5), st.sampled_from([True, 2.0, "2"])), t=times,
       trace=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([True, "1", None]),
                       st.just(torch.tensor(2.0))))
def test_loss_gap_lower_bound(dim, t, trace):
    check(lambda: lossgap.loss_gap_lower_bound(dim, t, trace), ("dim", "t", "trace"), np.shape(t))


@SETTINGS
@given(values=arrays(st.sampled_from([(1,), (2,), (5,), (2, 3), (0,)])))
def test_running_moments(values):
    check(lambda: estimate.RunningMoments().update(values).estimate(), ("values", "n"))


@SETTINGS
@given(k=st.one_of(st.integers(-2, 12), st.sampled_from([2.5, math.nan, "3", True, np.int64(3)])),
       n=st.one_of(st.integers(-1, 12), st.sampled_from([2.0, math.inf, None])),
       level=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([True, "0.9"])))
def test_binomial_estimates(k, n, level):
    check(lambda: estimate.binomial_estimate(k, n), ("successes", "trials"))
    iv = check(lambda: estimate.wilson_interval(k, n, level), ("successes", "trials", "level"))
    if iv is not None:
        assert 0 <= iv.lo <= iv.estimate <= iv.hi <= 1


@SETTINGS
@given(cov=arrays(st.sampled_from([(D, D), (D,), (D, D + 1)]), st.floats(-1.0, 2.0)), t=times)
def test_gaussian_lipschitz(cov, t):
    check(lambda: lipschitz.gaussian_lipschitz(cov, t), ("covariance", "t"), np.shape(t))


@SETTINGS
@given(matrices=arrays(batch_shapes(D, extra=1)))
def test_spectral_norm(matrices):
    check(lambda: lipschitz.spectral_norm(matrices), ("matrices",), (rows(matrices),))


@SETTINGS
@given(data=arrays(batch_shapes(D)), t=times)
def test_empirical_lipschitz_lower_bound(data, t):
    check(lambda: lipschitz.empirical_lipschitz_lower_bound(data, t), ("data", "t"), np.shape(t))


# ------------------------------------------------------------------------------------------ evaluation
@SETTINGS
@given(queries=arrays(batch_shapes(D)), references=arrays(batch_shapes(D)),
       k=st.one_of(st.integers(-1, 4), st.sampled_from([True, 1.5])))
def test_nearest_neighbours(queries, references, k):
    out = check(lambda: neighbours.nearest_neighbours(queries, references, k), ("queries", "references", "k"))
    if out is not None:
        assert out[0].shape == out[1].shape == (rows(queries), k)


@SETTINGS
@given(samples=arrays(batch_shapes(D)), train=arrays(batch_shapes(D)),
       threshold=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([1 / 3, True, "a"])))
def test_memorization(samples, train, threshold):
    check(lambda: memorization.memorized(samples, train, threshold=threshold), ("samples", "train", "threshold"),
          (rows(samples),))
    est = check(lambda: memorization.memorization_fraction(samples, train, threshold=threshold),
                ("samples", "train", "threshold"))
    if est is not None:
        assert 0 <= est.mean <= 1 and est.n >= 2


@pytest.mark.parametrize("sampler", ["probability_flow", "reverse_sde"])
@SETTINGS
@given(score=st.sampled_from(list(SCORES)), x_T=arrays(batch_shapes(D)),
       T=st.one_of(st.floats(1e-3, 20.0), st.sampled_from([0.0, -1.0, math.nan, math.inf, True, "10"])),
       t0=st.one_of(st.floats(1e-5, 1.0), st.sampled_from([0.0, 5e-324, math.nan, None])),
       steps=st.one_of(st.integers(-1, 4), st.sampled_from([2.5, True])))
def test_samplers(sampler, score, x_T, T, t0, steps):
    kwargs = {"generator": torch.Generator().manual_seed(0)} if sampler == "reverse_sde" else {}
    check(lambda: getattr(samplers, sampler)(SCORES[score], x_T, T=T, t0=t0, steps=steps, **kwargs),
          ("score_fn", "x_T", "T", "t0", "steps"), np.shape(x_T))


@SETTINGS
@given(score=st.sampled_from(list(SCORES)), x=arrays(batch_shapes(D)), t=times)
def test_tweedie_denoise(score, x, t):
    check(lambda: samplers.tweedie_denoise(SCORES[score], x, t), ("score_fn", "x", "t"), np.shape(x))


FEATURES = st.one_of(st.tuples(st.integers(0, 8), st.just(3)), st.sampled_from([(5,), (5, 4), (4, 3, 1)]))


@SETTINGS
@given(a=arrays(FEATURES), b=arrays(FEATURES))
def test_fid(a, b):
    check(lambda: image_metrics.fid(a, b), ("features_a", "features_b"))


@SETTINGS
@given(mu1=arrays(st.sampled_from([(3,), (2,)])), cov1=arrays(st.sampled_from([(3, 3), (3,)]), st.floats(-1.0, 2.0)),
       mu2=arrays(st.sampled_from([(3,)])), cov2=arrays(st.sampled_from([(3, 3)]), st.floats(-1.0, 2.0)))
def test_frechet_distance(mu1, cov1, mu2, cov2):
    check(lambda: image_metrics.frechet_distance(mu1, cov1, mu2, cov2), ("mu1", "cov1", "mu2", "cov2"))


@SETTINGS
@given(points=arrays(FEATURES), centres=arrays(FEATURES), radii=arrays(st.sampled_from([(4,), (5,), (3,), ()]),
                                                                       st.floats(-1.0, 3.0)))
def test_inside_manifold(points, centres, radii):
    check(lambda: image_metrics.inside_manifold(points, centres, radii), ("points", "centres", "radii"),
          (rows(points),))


@SETTINGS
@given(real=arrays(FEATURES), generated=arrays(FEATURES), k=st.sampled_from([1, 3, 0, True]))
def test_precision_recall(real, generated, k):
    check(lambda: image_metrics.precision_recall(real, generated, k), ("real", "generated", "k"))
