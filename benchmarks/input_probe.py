"""Reliability probe of theory's public API (issue 18): tries a fixed list of inputs and classifies what
each call does, automatically.

    python benchmarks/input_probe.py [--verbose] [--json PATH]

Every case is one call with one input and is of one of three kinds:

* ``invalid`` (the input is wrong): a ``ValueError``/``TypeError`` with a one-line message that names the
  argument is a *clear* error; any other exception, a multi-line message or one that does not name the
  argument is a *deep* error; returning anything is a *silent* failure;
* ``valid`` (a legitimate input, often an edge case): a finite result that passes the case's check is
  *ok*; raising is a *rejected* valid input; a non-finite result or one failing the check is *silent*;
* ``edge`` (a legitimate input whose answer float64 may not represent, e.g. t = 1e-320): a finite result
  (passing the check) is *ok*, a clear error is *clear*; non-finite output is *silent*, anything else *deep*.

The argument is "named" when it occurs in the message as a word (``t`` in "t must be > 0", not in
"can't"). The script only uses the public API as it stood before the input policy, so it measures old and
new code alike (run it from the root of the checkout to measure). ``tests/test_input_policy.py`` runs it
and requires zero deep errors, silent failures and rejected valid inputs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import signal
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import theory  # noqa: E402
from theory.laws import forward  # noqa: E402
from theory.estimators import estimate, lipschitz, lossgap, quadrature  # noqa: E402
from theory.evaluation import image_metrics, likelihood, memorization, neighbours, samplers  # noqa: E402
from theory.networks import construction, dit, heads, relu_mlp, score_net  # noqa: E402
from theory.training import dsm, image, regression, schedule  # noqa: E402

NAN, INF = math.nan, math.inf


@dataclasses.dataclass
class Case:
    name: str
    call: Callable[[], Any]
    kind: str                       # "invalid", "valid" or "edge"
    arg: str | tuple = ()           # the argument an error must name (invalid and edge cases)
    check: Callable[[Any], bool] | None = None


def names_argument(message: str, arg) -> bool:
    """Whether ``message`` names ``arg`` (or one of several) as a word: not inside another word and not
    the t of "can't"."""
    args = (arg,) if isinstance(arg, str) else tuple(arg)
    return any(re.search(rf"(?<!\w)(?<!\w')({re.escape(a)})(?!\w)", message) for a in args)


def finite(value) -> bool:
    """Every number in ``value`` (tensors, arrays, numbers, tuples, lists, dicts, dataclasses) is finite."""
    if isinstance(value, torch.Tensor):
        return not (value.is_floating_point() or value.is_complex()) or bool(torch.isfinite(value).all())
    if isinstance(value, np.ndarray):
        return value.dtype.kind not in "fc" or bool(np.isfinite(value).all())
    if isinstance(value, (bool, int, str)) or value is None:
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, (tuple, list)):
        return all(finite(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return all(finite(getattr(value, f.name)) for f in dataclasses.fields(value))
    return True                    # an object (a law, a network): constructed


class Hang(Exception):
    """A case used more than ``TIME_LIMIT`` seconds of CPU time (counted as a deep error: it never answers).
    CPU time, not wall time, so that a loaded machine does not turn a slow answer into a hang."""


TIME_LIMIT = 20.0


def _alarm(signum, frame):
    raise Hang(f"no answer within {TIME_LIMIT:g} s of CPU time")


def classify(case: Case) -> tuple[str, str]:
    """(outcome, detail) of one case: outcome in clear, deep, silent, ok, rejected."""
    previous = signal.signal(signal.SIGPROF, _alarm)
    signal.setitimer(signal.ITIMER_PROF, TIME_LIMIT)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = case.call()
    except (ValueError, TypeError) as err:
        msg = str(err)
        clear = "\n" not in msg.strip() and names_argument(msg, case.arg) if case.arg else "\n" not in msg.strip()
        if case.kind == "valid":
            return "rejected", f"{type(err).__name__}: {msg}"
        return ("clear" if clear else "deep"), f"{type(err).__name__}: {msg}"
    except Exception as err:       # noqa: BLE001 - the probe classifies every exception
        if case.kind == "valid":
            return "rejected", f"{type(err).__name__}: {err}"
        return "deep", f"{type(err).__name__}: {err}"
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)
    good = finite(out)
    if good and case.check is not None:
        try:
            good = bool(case.check(out))
        except Exception as err:   # noqa: BLE001
            return "silent", f"check raised {type(err).__name__}: {err}"
    if case.kind == "invalid":
        return "silent", f"returned {_short(out)}"
    return ("ok" if good else "silent"), f"returned {_short(out)}"


def _short(value) -> str:
    text = repr(value).replace("\n", " ")
    return text if len(text) < 120 else text[:117] + "..."


# ------------------------------------------------------------------------------------------------ cases
D = 3


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


def _with(x, index, value):
    x = x.clone()
    x[index] = value
    return x


def _nan_score(x, t):
    return torch.full_like(x, NAN)


def _column_score(x, t):
    return torch.zeros(x.shape[0], 1, dtype=x.dtype)


def _zero_score(x, t):
    return torch.zeros_like(x)


def _unit_score(x, t):
    return -x


def _equal(expected, rtol=1e-10):
    return lambda out: torch.allclose(torch.as_tensor(out, dtype=torch.float64),
                                      torch.as_tensor(expected, dtype=torch.float64), rtol=rtol, atol=1e-12)


def law_cases() -> list[Case]:
    mix, emp = theory.paper_mixture(2, D, seed=0), theory.EmpiricalLaw(_randn(10, D, seed=1))
    x = _randn(4, D, seed=2)
    cases = []
    for lname, law in (("mixture", mix), ("empirical", emp)):
        ref = law.score(x, 0.5)
        cases += [
            Case(f"{lname}.score t=0.5", lambda law=law: law.score(x, 0.5), "valid"),
            Case(f"{lname}.score t=True", lambda law=law: law.score(x, True), "invalid", "t"),
            Case(f"{lname}.score t='0.5'", lambda law=law: law.score(x, "0.5"), "invalid", "t"),
            Case(f"{lname}.score t=None", lambda law=law: law.score(x, None), "invalid", "t"),
            Case(f"{lname}.score t=-1", lambda law=law: law.score(x, -1.0), "invalid", "t"),
            Case(f"{lname}.score t=nan", lambda law=law: law.score(x, NAN), "invalid", "t"),
            Case(f"{lname}.score t=inf", lambda law=law: law.score(x, INF), "invalid", "t"),
            Case(f"{lname}.score t bool tensor", lambda law=law: law.score(x, torch.ones(4, dtype=torch.bool)),
                 "invalid", "t"),
            Case(f"{lname}.score t complex", lambda law=law: law.score(x, 0.5 + 0.1j), "invalid", "t"),
            Case(f"{lname}.score t (3,) for B=4", lambda law=law: law.score(x, torch.ones(3, dtype=torch.float64)),
                 "invalid", "t"),
            Case(f"{lname}.score t (4, 1)", lambda law=law: law.score(x, torch.ones(4, 1, dtype=torch.float64)),
                 "invalid", "t"),
            Case(f"{lname}.score t=1 (int)", lambda law=law: law.score(x, 1), "valid"),
            Case(f"{lname}.score t numpy (4,)", lambda law=law: law.score(x, np.full(4, 0.5)), "valid",
                 check=_equal(ref)),
            Case(f"{lname}.score t list", lambda law=law: law.score(x, [0.5] * 4), "valid", check=_equal(ref)),
            Case(f"{lname}.score t np.float64", lambda law=law: law.score(x, np.float64(0.5)), "valid",
                 check=_equal(ref)),
            Case(f"{lname}.score t float32 tensor", lambda law=law: law.score(x, torch.tensor(0.5)), "valid",
                 check=_equal(ref)),
            Case(f"{lname}.score t=1e-320", lambda law=law: law.score(x, 1e-320), "edge", "t"),
            Case(f"{lname}.score t=5e-324", lambda law=law: law.score(x, 5e-324), "edge", "t"),
            Case(f"{lname}.hessian t=1e-200", lambda law=law: law.hessian(x, 1e-200), "edge", "t"),
            Case(f"{lname}.log_prob t=1e300", lambda law=law: law.log_prob(x, 1e300), "valid"),
            Case(f"{lname}.score x numpy", lambda law=law: law.score(x.numpy(), 0.5), "valid", check=_equal(ref)),
            Case(f"{lname}.score x list", lambda law=law: law.score(x.tolist(), 0.5), "valid", check=_equal(ref)),
            Case(f"{lname}.score x int64", lambda law=law: law.score(torch.ones(2, D, dtype=torch.int64), 0.5),
                 "valid", check=_equal(law.score(torch.ones(2, D, dtype=torch.float64), 0.5))),
            Case(f"{lname}.score x (3,)", lambda law=law: law.score(x[0], 0.5), "invalid", "x"),
            Case(f"{lname}.score x (4, 2)", lambda law=law: law.score(x[:, :2], 0.5), "invalid", "x"),
            Case(f"{lname}.score x NaN", lambda law=law: law.score(_with(x, (1, 1), NAN), 0.5), "invalid", "x"),
            Case(f"{lname}.score x empty", lambda law=law: law.score(x[:0], 0.5), "invalid", "x"),
            Case(f"{lname}.score x bool", lambda law=law: law.score(x > 0, 0.5), "invalid", "x"),
            Case(f"{lname}.score x str", lambda law=law: law.score("x", 0.5), "invalid", "x"),
            Case(f"{lname}.score x ragged list", lambda law=law: law.score([[1.0, 2.0, 3.0], [1.0]], 0.5),
                 "invalid", "x"),
            Case(f"{lname}.log_prob t=True", lambda law=law: law.log_prob(x, True), "invalid", "t"),
            Case(f"{lname}.denoiser x inf", lambda law=law: law.denoiser(_with(x, (0, 0), INF), 0.5), "invalid", "x"),
            Case(f"{lname}.sample m=0", lambda law=law: law.sample(0, 0.1), "invalid", "m"),
            Case(f"{lname}.sample m=True", lambda law=law: law.sample(True, 0.1), "invalid", "m"),
            Case(f"{lname}.sample m='3'", lambda law=law: law.sample("3", 0.1), "invalid", "m"),
            Case(f"{lname}.sample m=np.int64(3)", lambda law=law: law.sample(np.int64(3), 0.1, _gen()), "valid"),
            Case(f"{lname}.sample t=True", lambda law=law: law.sample(3, True), "invalid", "t"),
            Case(f"{lname}.sample generator='g'", lambda law=law: law.sample(3, 0.1, "g"), "invalid", "generator"),
            Case(f"{lname}.components t=-1", lambda law=law: law.components(-1.0), "invalid", "t"),
        ]
    cases.append(Case("empirical.score t=0", lambda: emp.score(x, 0.0), "invalid", "t"))
    cases.append(Case("mixture.score t=0", lambda: mix.score(x, 0.0), "valid"))
    return cases


def constructor_cases() -> list[Case]:
    w, mu, cov = torch.tensor([0.5, 0.5]), torch.zeros(2, D), torch.eye(D).expand(2, D, D).clone()
    third = torch.full((3,), 1 / 3, dtype=torch.float32)
    mu3, cov3 = _randn(3, D, seed=3), torch.eye(D).expand(3, D, D).clone()
    ref = theory.GaussianMixture(torch.full((3,), 1 / 3, dtype=torch.float64), mu3, cov3)
    x = _randn(4, D, seed=4)
    return [
        Case("GaussianMixture weights float32 1/3", lambda: theory.GaussianMixture(third, mu3, cov3).log_prob(x, 0.1),
             "valid", check=_equal(ref.log_prob(x, 0.1), rtol=1e-6)),
        Case("GaussianMixture numpy args", lambda: theory.GaussianMixture(w.numpy(), mu.numpy(), cov.numpy()), "valid"),
        Case("GaussianMixture list args", lambda: theory.GaussianMixture([0.5, 0.5], mu.tolist(), cov.tolist()), "valid"),
        Case("GaussianMixture weights negative", lambda: theory.GaussianMixture(torch.tensor([1.5, -0.5]), mu, cov),
             "invalid", "weights"),
        Case("GaussianMixture weights sum 1.1", lambda: theory.GaussianMixture(torch.tensor([0.5, 0.6]), mu, cov),
             "invalid", "weights"),
        Case("GaussianMixture weights NaN", lambda: theory.GaussianMixture(torch.tensor([NAN, 0.5]), mu, cov),
             "invalid", "weights"),
        Case("GaussianMixture weights str", lambda: theory.GaussianMixture("ab", mu, cov), "invalid", "weights"),
        Case("GaussianMixture means scalar", lambda: theory.GaussianMixture(w, 0.0, cov), "invalid", "means"),
        Case("GaussianMixture means NaN", lambda: theory.GaussianMixture(w, _with(mu, (0, 0), NAN), cov),
             "invalid", "means"),
        Case("GaussianMixture covariances indefinite", lambda: theory.GaussianMixture(w, mu, _with(cov, (0, 1, 1), -1.0)),
             "invalid", "covariances"),
        Case("GaussianMixture covariances singular", lambda: theory.GaussianMixture(w, mu, torch.zeros(2, D, D)),
             "invalid", "covariances"),
        Case("GaussianMixture covariances (2, 3, 4)", lambda: theory.GaussianMixture(w, mu, torch.zeros(2, D, D + 1)),
             "invalid", "covariances"),
        Case("GaussianMixture dtype='float64'", lambda: theory.GaussianMixture(w, mu, cov, dtype="float64"),
             "invalid", "dtype"),
        Case("GaussianMixture.gaussian scalar mean", lambda: theory.GaussianMixture.gaussian(0.0, torch.eye(1)),
             "invalid", "mean"),
        Case("GaussianMixture.gaussian lists", lambda: theory.GaussianMixture.gaussian([0.0, 1.0], [[1.0, 0.0], [0.0, 2.0]]),
             "valid"),
        Case("EmpiricalLaw int samples", lambda: theory.EmpiricalLaw(torch.arange(12).reshape(4, 3)).score(x, 0.1),
             "valid", check=_equal(theory.EmpiricalLaw(torch.arange(12.0, dtype=torch.float64).reshape(4, 3)).score(x, 0.1))),
        Case("EmpiricalLaw numpy samples", lambda: theory.EmpiricalLaw(np.ones((4, 3))), "valid"),
        Case("EmpiricalLaw empty", lambda: theory.EmpiricalLaw(torch.zeros(0, D)), "invalid", "samples"),
        Case("EmpiricalLaw (3,)", lambda: theory.EmpiricalLaw(torch.zeros(D)), "invalid", "samples"),
        Case("EmpiricalLaw NaN", lambda: theory.EmpiricalLaw(_with(torch.zeros(4, D), (0, 0), NAN)), "invalid", "samples"),
        Case("EmpiricalLaw str samples", lambda: theory.EmpiricalLaw("abc"), "invalid", "samples"),
        Case("EmpiricalLaw tile_size=0", lambda: theory.EmpiricalLaw(torch.zeros(4, D), tile_size=0), "invalid", "tile_size"),
        Case("paper_mixture n_components=0", lambda: theory.paper_mixture(0, D), "invalid", "n_components"),
        Case("paper_mixture dim=True", lambda: theory.paper_mixture(2, True), "invalid", "dim"),
        Case("paper_mixture separation='a'", lambda: theory.paper_mixture(2, D, separation="a"), "invalid", "separation"),
        Case("paper_mixture separation=True", lambda: theory.paper_mixture(2, D, separation=True), "invalid", "separation"),
        Case("paper_mixture trace=inf", lambda: theory.paper_mixture(2, D, trace=INF), "invalid", "trace"),
        Case("paper_mixture trace='a'", lambda: theory.paper_mixture(2, D, trace="a"), "invalid", "trace"),
        Case("paper_mixture anisotropy=nan", lambda: theory.paper_mixture(2, D, anisotropy=NAN), "invalid", "anisotropy"),
        Case("paper_mixture seed='s'", lambda: theory.paper_mixture(2, D, seed="s"), "invalid", "seed"),
    ]


def forward_cases() -> list[Case]:
    x0 = _randn(4, 2, seed=5)
    z = _randn(4, 2, seed=6)
    ref = forward.add_noise(x0, 0.3, z)[0]
    return [
        Case("alpha t=0", lambda: forward.alpha(0.0), "valid"),
        Case("sigma2 t=5e-324", lambda: forward.sigma2(5e-324), "valid", check=lambda v: float(v) > 0),
        Case("sigma t=1e300", lambda: forward.sigma(1e300), "valid"),
        Case("sigma2 t numpy", lambda: forward.sigma2(np.array([0.1, 1.0])), "valid"),
        Case("sigma2 t list", lambda: forward.sigma2([0.1, 1.0]), "valid"),
        Case("sigma2 t=True", lambda: forward.sigma2(True), "invalid", "t"),
        Case("sigma2 t='a'", lambda: forward.sigma2("a"), "invalid", "t"),
        Case("sigma2 t=None", lambda: forward.sigma2(None), "invalid", "t"),
        Case("alpha t=-1", lambda: forward.alpha(-1.0), "invalid", "t"),
        Case("add_noise x0 numpy", lambda: forward.add_noise(x0.numpy(), 0.3, z)[0], "valid", check=_equal(ref)),
        Case("add_noise x0 list", lambda: forward.add_noise(x0.tolist(), 0.3, z)[0], "valid", check=_equal(ref)),
        Case("add_noise x0 int64", lambda: forward.add_noise(torch.ones(4, 2, dtype=torch.int64), 0.3, z)[0], "valid",
             check=_equal(forward.add_noise(torch.ones(4, 2, dtype=torch.float64), 0.3, z)[0])),
        Case("add_noise x0 NaN", lambda: forward.add_noise(_with(x0, (0, 0), NAN), 0.3, z), "invalid", "x0"),
        Case("add_noise x0 (4,)", lambda: forward.add_noise(x0[:, 0], 0.3), "invalid", "x0"),
        Case("add_noise noise NaN", lambda: forward.add_noise(x0, 0.3, _with(z, (0, 0), NAN)), "invalid", "noise"),
        Case("add_noise noise (4, 3)", lambda: forward.add_noise(x0, 0.3, torch.zeros(4, 3)), "invalid", "noise"),
        Case("add_noise noise numpy", lambda: forward.add_noise(x0, 0.3, z.numpy())[0], "valid", check=_equal(ref)),
        Case("add_noise t='a'", lambda: forward.add_noise(x0, "a", z), "invalid", "t"),
        Case("add_noise t=True", lambda: forward.add_noise(x0, True, z), "invalid", "t"),
        Case("add_noise t (3,)", lambda: forward.add_noise(x0, torch.ones(3, dtype=torch.float64), z), "invalid", "t"),
        Case("add_noise generator=1", lambda: forward.add_noise(x0, 0.3, generator=1), "invalid", "generator"),
        Case("dsm_target t=0", lambda: forward.dsm_target(x0, x0, 0.0), "invalid", "t"),
        Case("dsm_target t=1e-320", lambda: forward.dsm_target(x0 + 1, x0, 1e-320), "edge", "t"),
        Case("dsm_target shapes", lambda: forward.dsm_target(x0, x0[:, :1], 0.1), "invalid", ("x_t", "x0")),
        Case("dsm_loss score (B, 1)", lambda: forward.dsm_loss(_column_score, x0, 0.3, z), "invalid", "score"),
        Case("dsm_loss score NaN", lambda: forward.dsm_loss(_nan_score, x0, 0.3, z), "invalid", "score"),
        Case("dsm_loss score not callable", lambda: forward.dsm_loss(3, x0, 0.3, z), "invalid", "score"),
        Case("dsm_loss x0 (4,)", lambda: forward.dsm_loss(_zero_score, x0[:, 0], 0.3, z), "invalid", "x0"),
        Case("dsm_loss numpy", lambda: forward.dsm_loss(_zero_score, x0.numpy(), 0.3, z.numpy()), "valid",
             check=_equal(forward.dsm_loss(_zero_score, x0, 0.3, z))),
        Case("dsm_loss t=1e-320", lambda: forward.dsm_loss(_zero_score, x0, 1e-320, z), "edge", "t"),
        Case("score_from_eps eps list", lambda: forward.score_from_eps(z.tolist(), 0.3), "valid",
             check=_equal(forward.score_from_eps(z, 0.3))),
        Case("score_from_eps eps NaN", lambda: forward.score_from_eps(_with(z, (0, 0), NAN), 0.3), "invalid", "eps"),
        Case("score_from_eps t=5e-324", lambda: forward.score_from_eps(z, 5e-324), "edge", "t"),
        Case("score_from_denoiser shapes", lambda: forward.score_from_denoiser(z, x0[:, :1], 0.3), "invalid",
             ("denoised", "x")),
        Case("score_from_denoiser t=1e-320", lambda: forward.score_from_denoiser(z, x0, 1e-320), "edge", "t"),
        Case("denoiser_from_score t='a'", lambda: forward.denoiser_from_score(z, x0, "a"), "invalid", "t"),
        Case("eps_from_denoiser x numpy", lambda: forward.eps_from_denoiser(z, x0.numpy(), 0.3), "valid",
             check=_equal(forward.eps_from_denoiser(z, x0, 0.3))),
        Case("marginal_variance data_variance='a'", lambda: forward.marginal_variance(0.1, "a"), "invalid",
             "data_variance"),
        Case("marginal_variance data_variance=nan", lambda: forward.marginal_variance(0.1, NAN), "invalid",
             "data_variance"),
        Case("marginal_variance data_variance=-1", lambda: forward.marginal_variance(0.1, -1.0), "invalid",
             "data_variance"),
    ]


def estimator_cases() -> list[Case]:
    truth = theory.paper_mixture(2, 2, seed=0)
    data = truth.sample(6, 0.0, _gen(7))
    emp = theory.EmpiricalLaw(data)
    other = theory.paper_mixture(2, 3, seed=0)
    eye = torch.eye(2, dtype=torch.float64)
    g = lambda: _gen(8)  # noqa: E731
    rm1 = lambda: estimate.RunningMoments().update(torch.tensor([1.0]))  # noqa: E731
    return [
        Case("RunningMoments.update list", lambda: estimate.RunningMoments().update([1.0, 2.0, 4.0]).estimate(), "valid"),
        Case("RunningMoments.update NaN", lambda: estimate.RunningMoments().update(torch.tensor([1.0, NAN])),
             "invalid", "values"),
        Case("RunningMoments.update str", lambda: estimate.RunningMoments().update("abc"), "invalid", "values"),
        Case("RunningMoments.estimate one sample", lambda: rm1().estimate(), "invalid", ("sample", "samples", "n")),
        Case("RunningMoments.estimate empty", lambda: estimate.RunningMoments().estimate(), "invalid",
             ("sample", "samples", "n")),
        Case("binomial_estimate 5 of 3", lambda: estimate.binomial_estimate(5, 3), "invalid", "successes"),
        Case("binomial_estimate -1 of 3", lambda: estimate.binomial_estimate(-1, 3), "invalid", "successes"),
        Case("binomial_estimate 1 of 1", lambda: estimate.binomial_estimate(1, 1), "invalid", "trials"),
        Case("binomial_estimate 'a' of 3", lambda: estimate.binomial_estimate("a", 3), "invalid", "successes"),
        Case("wilson_interval 'a'", lambda: estimate.wilson_interval("a", 10), "invalid", "successes"),
        Case("wilson_interval NaN", lambda: estimate.wilson_interval(NAN, 10), "invalid", "successes"),
        Case("wilson_interval level=1.5", lambda: estimate.wilson_interval(3, 10, 1.5), "invalid", "level"),
        Case("wilson_interval level='a'", lambda: estimate.wilson_interval(3, 10, "a"), "invalid", "level"),
        Case("wilson_interval numpy counts", lambda: estimate.wilson_interval(np.int64(3), np.int64(10)), "valid"),
        Case("normal_quantile level=True", lambda: estimate.normal_quantile(True), "invalid", "level"),
        Case("loss_gap n_draws=1", lambda: lossgap.loss_gap(truth, emp, 0.1, n_draws=1, generator=g()), "invalid",
             "n_draws"),
        Case("loss_gap n_draws=0", lambda: lossgap.loss_gap(truth, emp, 0.1, n_draws=0), "invalid", "n_draws"),
        Case("loss_gap data (3,)", lambda: lossgap.loss_gap(truth, torch.zeros(3), 0.1), "invalid", "data"),
        Case("loss_gap data numpy", lambda: lossgap.loss_gap(truth, data.numpy(), 0.1, generator=g()), "valid"),
        Case("loss_gap data list", lambda: lossgap.loss_gap(truth, data.tolist(), 0.1, generator=g()), "valid"),
        Case("loss_gap data of one point", lambda: lossgap.loss_gap(truth, data[:1], 0.1, generator=g()), "invalid",
             ("n_draws", "data")),
        Case("loss_gap t=True", lambda: lossgap.loss_gap(truth, emp, True), "invalid", "t"),
        Case("loss_gap t='a'", lambda: lossgap.loss_gap(truth, emp, "a"), "invalid", "t"),
        Case("loss_gap t=1e-320", lambda: lossgap.loss_gap(truth, emp, 1e-320, generator=g()), "edge", "t"),
        Case("loss_gap truth of another dim", lambda: lossgap.loss_gap(other, emp, 0.1), "invalid", ("truth", "data")),
        Case("loss_gap generator='g'", lambda: lossgap.loss_gap(truth, emp, 0.1, n_draws=4, generator="g"), "invalid",
             "generator"),
        Case("dsm_loss_estimate score NaN", lambda: lossgap.dsm_loss_estimate(_nan_score, emp, 0.1, generator=g()),
             "invalid", "score"),
        Case("dsm_loss_estimate score (B, 1)", lambda: lossgap.dsm_loss_estimate(_column_score, emp, 0.1,
                                                                                  generator=g()), "invalid", "score"),
        Case("dsm_loss_estimate baseline=3", lambda: lossgap.dsm_loss_estimate(truth, emp, 0.1, baseline=3), "invalid",
             "baseline"),
        Case("dsm_loss_estimate batch_size=0", lambda: lossgap.dsm_loss_estimate(truth, emp, 0.1, batch_size=0),
             "invalid", "batch_size"),
        Case("fisher_divergence p=3", lambda: lossgap.fisher_divergence(3, truth, 0.1, 10), "invalid", "p"),
        Case("fisher_divergence n_draws=1", lambda: lossgap.fisher_divergence(emp, truth, 0.1, 1, generator=g()),
             "invalid", "n_draws"),
        Case("fisher_divergence q of another dim", lambda: lossgap.fisher_divergence(emp, other, 0.1, 10, generator=g()),
             "invalid", "q"),
        Case("fisher_divergence q NaN", lambda: lossgap.fisher_divergence(emp, _nan_score, 0.1, 10, generator=g()),
             "invalid", "q"),
        Case("gaussian_fisher non-PD cov", lambda: lossgap.gaussian_fisher_divergence(
            torch.zeros(2), -eye, torch.zeros(2), eye), "invalid", "cov_p"),
        Case("gaussian_fisher singular cov", lambda: lossgap.gaussian_fisher_divergence(
            torch.zeros(2), torch.zeros(2, 2), torch.zeros(2), eye), "invalid", "cov_p"),
        Case("gaussian_fisher NaN mean", lambda: lossgap.gaussian_fisher_divergence(
            torch.tensor([NAN, 0.0]), eye, torch.zeros(2), eye), "invalid", "mean_p"),
        Case("gaussian_fisher scalar mean", lambda: lossgap.gaussian_fisher_divergence(0.0, eye, torch.zeros(2), eye),
             "invalid", "mean_p"),
        Case("gaussian_fisher mismatched dims", lambda: lossgap.gaussian_fisher_divergence(
            torch.zeros(2), eye, torch.zeros(3), torch.eye(3)), "invalid", ("mean_q", "cov_q")),
        Case("gaussian_fisher lists", lambda: lossgap.gaussian_fisher_divergence([0.0, 1.0], eye.tolist(), [0.0, 0.0],
                                                                                 (2 * eye).numpy()), "valid",
             check=_equal(lossgap.gaussian_fisher_divergence(torch.tensor([0.0, 1.0], dtype=torch.float64), eye,
                                                             torch.zeros(2, dtype=torch.float64), 2 * eye))),
        Case("loss_gap_lower_bound trace=inf", lambda: lossgap.loss_gap_lower_bound(2, 0.1, INF), "invalid", "trace"),
        Case("loss_gap_lower_bound trace=nan", lambda: lossgap.loss_gap_lower_bound(2, 0.1, NAN), "invalid", "trace"),
        Case("loss_gap_lower_bound trace='a'", lambda: lossgap.loss_gap_lower_bound(2, 0.1, "a"), "invalid", "trace"),
        Case("loss_gap_lower_bound dim=True", lambda: lossgap.loss_gap_lower_bound(True, 0.1, 1.0), "invalid", "dim"),
        Case("loss_gap_lower_bound t=5e-324", lambda: lossgap.loss_gap_lower_bound(2, 5e-324, 1.0), "edge", "t"),
        Case("loss_gap_lower_bound t numpy", lambda: lossgap.loss_gap_lower_bound(2, np.array([0.1, 1.0]), 1.0), "valid"),
        Case("mean_covariance_trace law=3", lambda: lossgap.mean_covariance_trace(3), "invalid", "law"),
        Case("fisher_divergence_quadrature d=3", lambda: quadrature.fisher_divergence_quadrature(
            theory.EmpiricalLaw(other.sample(3, 0.0, _gen())), other, 0.1), "invalid", ("d", "p")),
        Case("loss_gap_quadrature data numpy", lambda: quadrature.loss_gap_quadrature(
            truth, data.numpy(), 0.5, panels=4, order=4), "valid"),
        Case("gaussian_mixture_expectation lists", lambda: quadrature.gaussian_mixture_expectation(
            lambda x, j: x.pow(2).sum(1), [1.0], [[0.0]], [[[1.0]]]), "valid", check=lambda v: abs(v - 1) < 1e-8),
        Case("gaussian_mixture_expectation integrand NaN", lambda: quadrature.gaussian_mixture_expectation(
            lambda x, j: torch.full((x.shape[0],), NAN, dtype=x.dtype), torch.ones(1, dtype=torch.float64),
            torch.zeros(1, 1, dtype=torch.float64), torch.ones(1, 1, 1, dtype=torch.float64)), "invalid", "integrand"),
    ]


def lipschitz_cases() -> list[Case]:
    data = _randn(6, 2, seed=9)
    mix = theory.paper_mixture(2, 2, seed=0)
    x = _randn(5, 2, seed=10)
    H = mix.hessian(x, 0.3)
    return [
        Case("spectral_norm list", lambda: lipschitz.spectral_norm(H.tolist()), "valid",
             check=_equal(lipschitz.spectral_norm(H))),
        Case("spectral_norm (2, 2)", lambda: lipschitz.spectral_norm(H[0]), "invalid", "matrices"),
        Case("spectral_norm NaN", lambda: lipschitz.spectral_norm(_with(H, (0, 0, 0), NAN)), "invalid", "matrices"),
        Case("spectral_norm not symmetric", lambda: lipschitz.spectral_norm(_with(H, (0, 0, 1), 5.0)), "invalid",
             "matrices"),
        Case("local_lipschitz x list, t list", lambda: lipschitz.local_lipschitz(mix, x.tolist(), [0.3] * 5), "valid",
             check=_equal(lipschitz.local_lipschitz(mix, x, 0.3))),
        Case("local_lipschitz law=3", lambda: lipschitz.local_lipschitz(3, x, 0.3), "invalid", "law"),
        Case("local_lipschitz t=True", lambda: lipschitz.local_lipschitz(mix, x, True), "invalid", "t"),
        Case("nearest_pair one point", lambda: lipschitz.nearest_pair(data[:1]), "invalid", "data"),
        Case("nearest_pair (6,)", lambda: lipschitz.nearest_pair(data[:, 0]), "invalid", "data"),
        Case("nearest_pair numpy", lambda: lipschitz.nearest_pair(data.numpy()), "valid"),
        Case("neighbour_midpoints NaN", lambda: lipschitz.neighbour_midpoints(_with(data, (0, 0), NAN)), "invalid",
             "data"),
        Case("lipschitz_cloud m=0", lambda: lipschitz.lipschitz_cloud(data, 0.1, 0), "invalid", "m"),
        Case("lipschitz_cloud t=True", lambda: lipschitz.lipschitz_cloud(data, True, 3), "invalid", "t"),
        Case("empirical_lipschitz_lower_bound pairs='x'", lambda: lipschitz.empirical_lipschitz_lower_bound(
            data, 0.1, pairs="x"), "invalid", "pairs"),
        Case("empirical_lipschitz_lower_bound t=1e-320", lambda: lipschitz.empirical_lipschitz_lower_bound(
            data, 1e-320), "edge", "t"),
        Case("empirical_lipschitz_lower_bound t list", lambda: lipschitz.empirical_lipschitz_lower_bound(
            data, [0.1, 1.0]), "valid"),
        Case("gaussian_lipschitz list cov", lambda: lipschitz.gaussian_lipschitz([[1.0, 0.0], [0.0, 2.0]], 0.1), "valid"),
        Case("gaussian_lipschitz non-PD", lambda: lipschitz.gaussian_lipschitz(-torch.eye(2), 0.1), "invalid",
             "covariance"),
        Case("gaussian_lipschitz t=True", lambda: lipschitz.gaussian_lipschitz(torch.eye(2), True), "invalid", "t"),
        Case("gaussian_lipschitz t=5e-324", lambda: lipschitz.gaussian_lipschitz(torch.eye(2), 5e-324), "valid"),
    ]


def evaluation_cases() -> list[Case]:
    train = _randn(20, 2, seed=11)
    samples = train[:5] + 1e-3
    ref_mem = memorization.memorized(samples, train)
    int_train = torch.arange(40, dtype=torch.float64).reshape(20, 2)
    int_samples = torch.tensor([[0, 1], [10, 11], [3, 3]])
    truth = theory.paper_mixture(2, 2, seed=0)
    x_T = samplers.prior_sample((6, 2), generator=_gen(12))
    emp = theory.EmpiricalLaw(train)
    flow = samplers.probability_flow(emp.score, x_T, steps=8)
    int_x_T = torch.tensor([[1, -1], [0, 2], [2, 0]])
    feats = _randn(30, 4, seed=13)
    feats2 = _randn(25, 4, seed=14) + 0.5
    images = torch.randint(0, 256, (3, 8, 8, 3), generator=_gen(15), dtype=torch.uint8)
    pool = lambda x: torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)  # noqa: E731
    radii = torch.ones(30, dtype=torch.float64)
    eye = np.eye(4)
    return [
        Case("nearest_neighbours lists", lambda: neighbours.nearest_neighbours(train.tolist(), train.tolist(), 1), "valid"),
        Case("nearest_neighbours int queries", lambda: neighbours.nearest_neighbours(int_samples, int_train, 1), "valid"),
        Case("nearest_neighbours empty references", lambda: neighbours.nearest_neighbours(samples, train[:0], 1),
             "invalid", "references"),
        Case("nearest_neighbours k=True", lambda: neighbours.nearest_neighbours(samples, train, True), "invalid", "k"),
        Case("memorized numpy", lambda: memorization.memorized(samples.numpy(), train.numpy()), "valid",
             check=lambda m: bool((torch.as_tensor(m) == ref_mem).all())),
        Case("memorized lists", lambda: memorization.memorized(samples.tolist(), train.tolist()), "valid",
             check=lambda m: bool((torch.as_tensor(m) == ref_mem).all())),
        Case("memorization_fraction int samples vs float train", lambda: memorization.memorization_fraction(
            int_samples, int_train + 0.25), "valid",
            check=lambda e: e.mean == memorization.memorization_fraction(int_samples.double(), int_train + 0.25).mean),
        Case("memorization_fraction empty samples", lambda: memorization.memorization_fraction(samples[:0], train),
             "invalid", "samples"),
        Case("memorization_fraction samples NaN", lambda: memorization.memorization_fraction(
            _with(samples, (0, 0), NAN), train), "invalid", "samples"),
        Case("memorization_fraction train NaN", lambda: memorization.memorization_fraction(
            samples, _with(train, (0, 0), NAN)), "invalid", "train"),
        Case("memorization_fraction one sample", lambda: memorization.memorization_fraction(samples[:1], train),
             "invalid", ("samples", "trials")),
        Case("memorized threshold=0", lambda: memorization.memorized(samples, train, threshold=0.0), "invalid",
             "threshold"),
        Case("memorized threshold='a'", lambda: memorization.memorized(samples, train, threshold="a"), "invalid",
             "threshold"),
        Case("memorized train of one point", lambda: memorization.memorized(samples, train[:1]), "invalid", "train"),
        Case("memorized feature sizes differ", lambda: memorization.memorized(samples, torch.zeros(20, 3)), "invalid",
             ("samples", "train")),
        Case("memorized samples (5,)", lambda: memorization.memorized(samples[:, 0], train), "invalid", "samples"),
        Case("calibrated_memorization null list", lambda: memorization.calibrated_memorization(
            samples, train, null=truth.sample(8, 0.0, _gen()).tolist()), "valid"),
        Case("calibrated_memorization level=2", lambda: memorization.calibrated_memorization(samples, train, level=2.0),
             "invalid", "level"),
        Case("calibrated_memorization anchor NaN", lambda: memorization.calibrated_memorization(
            samples, train, anchor=_with(samples, (0, 0), NAN)), "invalid", "anchor"),
        Case("sample_quality generated of wrong dim", lambda: memorization.sample_quality(
            torch.zeros(5, 3), truth, truth.sample(5, 0.0, _gen())), "invalid", "generated"),
        Case("sample_quality law=3", lambda: memorization.sample_quality(samples, 3, samples), "invalid", "law"),
        Case("probability_flow score NaN", lambda: samplers.probability_flow(_nan_score, x_T, steps=4), "invalid",
             "score_fn"),
        Case("probability_flow score (B, 1)", lambda: samplers.probability_flow(_column_score, x_T, steps=4), "invalid",
             "score_fn"),
        Case("probability_flow score float32", lambda: samplers.probability_flow(
            lambda x, t: -x.float(), x_T, steps=4), "invalid", "score_fn"),
        Case("probability_flow score not callable", lambda: samplers.probability_flow(3, x_T, steps=4), "invalid",
             "score_fn"),
        Case("probability_flow x_T numpy", lambda: samplers.probability_flow(emp.score, x_T.numpy(), steps=8), "valid",
             check=_equal(flow)),
        Case("probability_flow x_T list", lambda: samplers.probability_flow(emp.score, x_T.tolist(), steps=8), "valid",
             check=_equal(flow)),
        Case("probability_flow x_T int", lambda: samplers.probability_flow(_unit_score, int_x_T, steps=8), "valid",
             check=_equal(samplers.probability_flow(_unit_score, int_x_T.double(), steps=8))),
        Case("probability_flow x_T NaN", lambda: samplers.probability_flow(_unit_score, _with(x_T, (0, 0), NAN),
                                                                            steps=4), "invalid", "x_T"),
        Case("probability_flow x_T empty", lambda: samplers.probability_flow(_unit_score, x_T[:0], steps=4), "invalid",
             "x_T"),
        Case("probability_flow steps=0", lambda: samplers.probability_flow(_unit_score, x_T, steps=0), "invalid", "steps"),
        Case("probability_flow steps=2.5", lambda: samplers.probability_flow(_unit_score, x_T, steps=2.5), "invalid",
             "steps"),
        Case("probability_flow t0=0", lambda: samplers.probability_flow(_unit_score, x_T, t0=0.0), "invalid", "t0"),
        Case("probability_flow T='a'", lambda: samplers.probability_flow(_unit_score, x_T, T="a"), "invalid", "T"),
        Case("probability_flow T=True", lambda: samplers.probability_flow(_unit_score, x_T, T=True, t0=0.5), "invalid",
             "T"),
        Case("probability_flow schedule='x'", lambda: samplers.probability_flow(_unit_score, x_T, schedule="x"),
             "invalid", "schedule"),
        Case("reverse_sde x_T NaN", lambda: samplers.reverse_sde(_unit_score, _with(x_T, (0, 0), NAN), steps=4,
                                                                  generator=_gen()), "invalid", "x_T"),
        Case("reverse_sde x_T int", lambda: samplers.reverse_sde(_unit_score, int_x_T, steps=8, generator=_gen(1)),
             "valid", check=_equal(samplers.reverse_sde(_unit_score, int_x_T.double(), steps=8, generator=_gen(1)))),
        Case("reverse_sde score NaN", lambda: samplers.reverse_sde(_nan_score, x_T, steps=4, generator=_gen()),
             "invalid", "score_fn"),
        Case("reverse_sde generator='g'", lambda: samplers.reverse_sde(_unit_score, x_T, steps=4, generator="g"),
             "invalid", "generator"),
        Case("time_grid T=nan", lambda: samplers.time_grid(NAN, 1e-3, 4), "invalid", "T"),
        Case("prior_sample shape 'ab'", lambda: samplers.prior_sample("ab"), "invalid", "shape"),
        Case("prior_sample shape (3, -1)", lambda: samplers.prior_sample((3, -1)), "invalid", "shape"),
        Case("tweedie_denoise t=0", lambda: samplers.tweedie_denoise(_unit_score, x_T, 0.0), "invalid", "t"),
        Case("tweedie_denoise t (6,)", lambda: samplers.tweedie_denoise(_unit_score, x_T, torch.full((6,), 0.1)),
             "valid"),
        Case("tweedie_denoise score NaN", lambda: samplers.tweedie_denoise(_nan_score, x_T, 0.1), "invalid",
             "score_fn"),
        Case("tweedie_denoise x list", lambda: samplers.tweedie_denoise(_unit_score, x_T.tolist(), 0.1), "valid",
             check=_equal(samplers.tweedie_denoise(_unit_score, x_T, 0.1))),
        Case("ode_log_likelihood score NaN", lambda: likelihood.ode_log_likelihood(_nan_score, x_T, steps=4), "invalid",
             "score_fn"),
        Case("ode_log_likelihood x list", lambda: likelihood.ode_log_likelihood(_unit_score, x_T.tolist(), steps=4),
             "valid", check=_equal(likelihood.ode_log_likelihood(_unit_score, x_T, steps=4))),
        Case("ode_log_likelihood x NaN", lambda: likelihood.ode_log_likelihood(_unit_score, _with(x_T, (0, 0), NAN),
                                                                                steps=4), "invalid", "x"),
        Case("memorization_index m=1", lambda: likelihood.memorization_index(_unit_score, emp, truth, 0.1, 1, _gen()),
             "invalid", "m"),
        Case("memorization_index t=True", lambda: likelihood.memorization_index(_unit_score, emp, truth, True, 4, _gen()),
             "invalid", "t"),
        Case("fid numpy", lambda: image_metrics.fid(feats.numpy(), feats2.numpy()), "valid",
             check=lambda v: abs(v - image_metrics.fid(feats, feats2)) < 1e-9),
        Case("fid lists", lambda: image_metrics.fid(feats.tolist(), feats2.tolist()), "valid"),
        Case("fid NaN features", lambda: image_metrics.fid(_with(feats, (0, 0), NAN), feats2), "invalid", "features_a"),
        Case("fid inf features", lambda: image_metrics.fid(feats, _with(feats2, (0, 0), INF)), "invalid", "features_b"),
        Case("fid one sample", lambda: image_metrics.fid(feats[:1], feats2), "invalid", "features_a"),
        Case("fid feature sizes differ", lambda: image_metrics.fid(feats, feats2[:, :3]), "invalid",
             ("features_a", "features_b")),
        Case("frechet_distance non-PSD", lambda: image_metrics.frechet_distance(np.zeros(4), -eye, np.zeros(4), -eye),
             "invalid", ("cov1", "cov2")),
        Case("frechet_distance NaN mean", lambda: image_metrics.frechet_distance(np.full(4, NAN), eye, np.zeros(4), eye),
             "invalid", "mu1"),
        Case("frechet_distance tensors", lambda: image_metrics.frechet_distance(
            torch.zeros(4), torch.eye(4), torch.ones(4), 2 * torch.eye(4)), "valid",
            check=lambda v: abs(v - (4 + 4 * (math.sqrt(2) - 1) ** 2)) < 1e-9),
        Case("frechet_distance shapes", lambda: image_metrics.frechet_distance(np.zeros(3), eye, np.zeros(4), eye),
             "invalid", ("mu1", "cov1")),
        Case("inside_manifold negative radii", lambda: image_metrics.inside_manifold(feats2, feats, -radii), "invalid",
             "radii"),
        Case("inside_manifold radii length", lambda: image_metrics.inside_manifold(feats2, feats, radii[:10]), "invalid",
             "radii"),
        Case("inside_manifold radii NaN", lambda: image_metrics.inside_manifold(feats2, feats, _with(radii, 0, NAN)),
             "invalid", "radii"),
        Case("inside_manifold numpy", lambda: image_metrics.inside_manifold(feats2.numpy(), feats.numpy(), radii.numpy()),
             "valid"),
        Case("manifold_radii k too large", lambda: image_metrics.manifold_radii(feats[:3], k=3), "invalid", "k"),
        Case("precision_recall numpy", lambda: image_metrics.precision_recall(feats.numpy(), feats2.numpy()), "valid"),
        Case("precision_recall NaN", lambda: image_metrics.precision_recall(feats, _with(feats2, (0, 0), NAN)),
             "invalid", "generated"),
        Case("extract_features empty", lambda: image_metrics.extract_features(images[:0], pool, size=None), "invalid",
             "images"),
        Case("extract_features numpy uint8", lambda: image_metrics.extract_features(images.numpy(), pool, size=None),
             "valid", check=_equal(image_metrics.extract_features(images, pool, size=None))),
        Case("extract_features float images", lambda: image_metrics.extract_features(images.float(), pool, size=None),
             "invalid", "images"),
        Case("extract_features network NaN", lambda: image_metrics.extract_features(
            images, lambda x: torch.full((x.shape[0], 4), NAN), size=None), "invalid", "network"),
        Case("extract_features batch_size=0", lambda: image_metrics.extract_features(images, pool, batch_size=0),
             "invalid", "batch_size"),
    ]


def network_cases() -> list[Case]:
    net = score_net.ScoreNet(2, 4, seeds=(0,))
    mlp = relu_mlp.ReLUMLP(2, 4, 1, [0], time_input=True)
    cfg = dit.DiTConfig(image_size=8, channels=3, patch=4, width=8, depth=1, heads=2, freq_dim=8)
    model = dit.DiT(cfg, generator=_gen())
    xs = torch.zeros(1, 3, 2)
    data = _randn(5, 2, seed=16)
    explicit = construction.empirical_score_network(data, 0.1, R=5.0, pieces=4)
    small = dsm.ScoreTrainConfig(steps=2, batch_size=4, warmup=1, checkpoint_every=0)
    laws = theory.paper_mixture(2, 2, seed=0)
    rcfg = regression.RegressionConfig(steps=2, batch_size=4, block_steps=1, eval_points=8, warmup=1)
    return [
        Case("ScoreNet forward t=True", lambda: net(xs, True), "invalid", "t"),
        Case("ScoreNet forward t='a'", lambda: net(xs, "a"), "invalid", "t"),
        Case("ScoreNet forward x list", lambda: net(xs.tolist(), 0.1), "invalid", "x"),
        Case("ScoreNet score t=0", lambda: net.score(xs, 0.0), "invalid", "t"),
        Case("ScoreNet flat_score t=True", lambda: net.flat_score()(torch.zeros(3, 2), True), "invalid", "t"),
        Case("ScoreNet width='a'", lambda: score_net.ScoreNet(2, "a"), "invalid", "width"),
        Case("ScoreNet data_variance='a'", lambda: score_net.ScoreNet(2, 4, data_variance="a"), "invalid",
             "data_variance"),
        Case("ReLUMLP forward t=True", lambda: mlp(torch.zeros(3, 2), True), "invalid", "t"),
        Case("ReLUMLP forward t='a'", lambda: mlp(torch.zeros(3, 2), "a"), "invalid", "t"),
        Case("ReLUMLP forward x numpy", lambda: mlp(np.zeros((3, 2)), 0.1), "invalid", "x"),
        Case("ReLUMLP widths='a'", lambda: relu_mlp.ReLUMLP(2, "a", 1, [0]), "invalid", "widths"),
        Case("DiT forward t='a'", lambda: model(torch.zeros(1, 3, 8, 8), "a"), "invalid", "t"),
        Case("DiT forward t=True", lambda: model(torch.zeros(1, 3, 8, 8), True), "invalid", "t"),
        Case("DiT forward t=0", lambda: model(torch.zeros(1, 3, 8, 8), 0.0), "invalid", "t"),
        Case("DiT score x list", lambda: model.score(torch.zeros(1, 3, 8, 8).tolist(), 0.1), "invalid", "x"),
        Case("empirical_score_network t=True", lambda: construction.empirical_score_network(data, True, tolerance=0.1),
             "invalid", "t"),
        Case("empirical_score_network t='a'", lambda: construction.empirical_score_network(data, "a", tolerance=0.1),
             "invalid", "t"),
        Case("empirical_score_network pieces=2.5", lambda: construction.empirical_score_network(data, 0.1, R=5.0,
                                                                                                pieces=2.5),
             "invalid", "pieces"),
        Case("ExplicitScoreNetwork x NaN", lambda: explicit(_with(data, (0, 0), NAN)), "invalid", "x"),
        Case("ExplicitScoreNetwork x list", lambda: explicit(data.tolist()), "valid", check=_equal(explicit(data))),
        Case("construction_parameters t='a'", lambda: construction.construction_parameters(4, 1.0, "a", 0.1), "invalid",
             "t"),
        Case("construction_parameters diameter=nan", lambda: construction.construction_parameters(4, NAN, 0.1, 0.1),
             "invalid", "diameter"),
        Case("score_error_bound n=0", lambda: construction.score_error_bound(0, 1.0, 0.1, 5.0, 4), "invalid", "n"),
        Case("set_head_mask list", lambda: heads.set_head_mask(model, [[1.0, 0.0]]), "valid"),
        Case("set_head_mask NaN", lambda: heads.set_head_mask(model, torch.tensor([[NAN, 1.0]])), "invalid", "mask"),
        Case("prune_mask importance NaN", lambda: heads.prune_mask(torch.tensor([[NAN, 1.0]]), 0.5), "invalid",
             "importance"),
        Case("prune_mask ratio=True", lambda: heads.prune_mask(torch.tensor([[0.0, 1.0]]), True), "invalid", "ratio"),
        Case("random_prune_mask ratio=2", lambda: heads.random_prune_mask((2, 2), 2.0, _gen()), "invalid", "ratio"),
        Case("train data list", lambda: dsm.train(score_net.ScoreNet(2, 4, seeds=(0,)), data.float().tolist(), small),
             "valid"),
        Case("train data NaN", lambda: dsm.train(score_net.ScoreNet(2, 4, seeds=(0,)), _with(data.float(), (0, 0), NAN),
                                                 small), "invalid", "data"),
        Case("train data empty", lambda: dsm.train(score_net.ScoreNet(2, 4, seeds=(0,)), data.float()[:0], small),
             "invalid", "data"),
        Case("ScoreTrainConfig lr=nan", lambda: dsm.ScoreTrainConfig(lr=NAN), "invalid", "lr"),
        Case("ScoreTrainConfig T=True", lambda: dsm.ScoreTrainConfig(T=True, t0=0.5), "invalid", "T"),
        Case("log_uniform_times t0=0", lambda: dsm.log_uniform_times((3,), 0.0, 1.0), "invalid", "t0"),
        Case("fit_score t=True", lambda: regression.fit_score(relu_mlp.ReLUMLP(2, 4, 1, [0]), laws, True, rcfg, [0]),
             "invalid", "t"),
        Case("fit_score laws=3", lambda: regression.fit_score(relu_mlp.ReLUMLP(2, 4, 1, [0]), 3, 0.1, rcfg, [0]),
             "invalid", "laws"),
        Case("RegressionConfig eval_points=1", lambda: regression.RegressionConfig(eval_points=1), "invalid",
             "eval_points"),
        Case("normalised_to_time u list", lambda: image.normalised_to_time([0.0, 0.5, 1.0], 1e-3, 10.0), "valid"),
        Case("normalised_to_time u NaN", lambda: image.normalised_to_time(torch.tensor([NAN]), 1e-3, 10.0), "invalid",
             "u"),
        Case("ImageTrainConfig steps=0", lambda: image.ImageTrainConfig(steps=0), "invalid", "steps"),
        Case("ImageTrainConfig t0=0", lambda: image.ImageTrainConfig(steps=1, t0=0.0), "invalid", "t0"),
        Case("train_denoiser images NaN", lambda: image.train_denoiser(
            model, torch.full((2, 3, 8, 8), NAN), image.ImageTrainConfig(steps=1, batch_size=2), seed=0), "invalid",
            "images"),
        Case("learning_rate steps=0", lambda: schedule.learning_rate(5, lr=1.0, steps=0, warmup=0, final_fraction=0.0),
             "invalid", "steps"),
        Case("learning_rate lr=nan", lambda: schedule.learning_rate(5, lr=NAN, steps=10, warmup=0, final_fraction=0.0),
             "invalid", "lr"),
    ]


def io_cases() -> list[Case]:
    from verify import _io

    folder = Path(tempfile.mkdtemp(prefix="memsep_probe_"))
    bad = folder / "not_torchscript.pt"
    bad.write_bytes(b"this is not a TorchScript archive")
    return [
        Case("load_inception non-TorchScript file", lambda: _io.load_inception(bad), "invalid", ("path", str(bad))),
        Case("load_inception missing file", lambda: _io.load_inception(folder / "missing.pt"), "invalid",
             ("path", "missing.pt")),
    ]


def all_cases() -> list[Case]:
    return (law_cases() + constructor_cases() + forward_cases() + estimator_cases() + lipschitz_cases()
            + evaluation_cases() + network_cases() + io_cases())


def run(verbose: bool = False) -> dict:
    torch.set_num_threads(1)
    rows = []
    for case in all_cases():
        start = time.process_time()
        outcome, detail = classify(case)
        rows.append({"case": case.name, "kind": case.kind, "outcome": outcome, "detail": detail,
                     "cpu_s": round(time.process_time() - start, 4)})
    counts = Counter(r["outcome"] for r in rows)
    summary = {"inputs": len(rows), "invalid": sum(r["kind"] == "invalid" for r in rows),
               "legitimate": sum(r["kind"] != "invalid" for r in rows),
               **{k: counts.get(k, 0) for k in ("clear", "deep", "silent", "rejected", "ok")}}
    if verbose:
        for r in rows:
            if r["outcome"] not in ("clear", "ok") or verbose > 1:
                print(f"{r['outcome']:8s} {r['kind']:7s} {r['case']}: {r['detail']}")
    return {"summary": summary, "rows": rows}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--verbose", "-v", action="count", default=0,
                        help="list the failures (-vv: every case with its outcome)")
    parser.add_argument("--json", help="write the summary and every case's outcome to this file")
    args = parser.parse_args(argv)
    result = run(args.verbose)
    s = result["summary"]
    print(f"{s['inputs']} inputs ({s['invalid']} invalid, {s['legitimate']} legitimate): {s['clear']} clear errors, "
          f"{s['deep']} deep errors, {s['silent']} silent failures, {s['rejected']} valid inputs rejected, "
          f"{s['ok']} correct results")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
