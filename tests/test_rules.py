"""The non-memorization rules: each reaches holds, does not hold and inconclusive; where it is cheap the
tables come from the modules' own run_point (realistic data), with a violation injected or a setting outside
the theorem's hypotheses judged as if inside."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest

from verify import (cifar_pruning, duplication, lipschitz_vs_t, lossgap_bound, lossgap_identity, lossgap_rate,
                    width_vs_n)
from verify.runner import output_paths
from verify.verdicts import FAILS, HOLDS, INCONCLUSIVE

pytestmark = pytest.mark.usefixtures("one_thread")


def _rows(module, cfg, points) -> pd.DataFrame:
    rows = []
    for p in points:
        out = module.run_point(dict(p), cfg, "cpu")
        rows += [{**p, **r, "preset": "smoke"} for r in ([out] if isinstance(out, dict) else out)]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------- Thm 4.3
@pytest.fixture(scope="module")
def bound_table():
    cfg = dataclasses.replace(lossgap_bound.PRESETS["smoke"], ns=(1, 30, 300), trace_scales=(0.01, 1.0, 1000.0),
                              times=(1e-3, 1e-2, 3e-2, 0.1, 1.0), n_draws=64, seeds=(0, 1))
    return _rows(lossgap_bound, cfg, lossgap_bound.grid(cfg))


def test_bound_rules_on_lossgap_bound_run_point(bound_table):
    as_written, consistent = lossgap_bound.CLAIMS
    # tr Sigma = 1000 d inside the regime: the gap stays below d/sigma_t^2, so the as-written ratio collapses
    f = as_written.evaluate(bound_table)
    assert f.verdict is FAILS and f.hi < 0.1
    g = consistent.evaluate(bound_table)
    assert g.verdict is HOLDS and g.lo > 0.1
    # where tr Sigma << d/sigma_t^2 the two readings agree and the as-written one holds too
    small = bound_table[(bound_table["trace_scale"] <= 1.0) & (bound_table["t"] <= 1e-2)]
    assert as_written.evaluate(small).verdict is HOLDS
    # the consistent reading fails where components narrower than the noise are judged as if wide
    assert consistent.evaluate(bound_table, width_max=1e3).verdict is FAILS
    # an interval straddling the floor is inconclusive; no wide cell at all is inconclusive
    assert consistent.evaluate(bound_table, floor=(g.lo + g.hi) / 2).verdict is INCONCLUSIVE
    narrow = bound_table[bound_table["trace_scale"] == 0.01]
    assert consistent.evaluate(narrow[narrow["t"] >= 0.1]).verdict is INCONCLUSIVE


# --------------------------------------------------------------------------------------------- Prop 4.1
@pytest.fixture(scope="module")
def identity_table():
    cfg = dataclasses.replace(lossgap_identity.PRESETS["cpu"], dims=(1, 2), n_times=6, n_draws=2000, expected_dims=(1,),
                              expected_times=(1e-2, 0.1, 1.0), n_datasets=24)
    return _rows(lossgap_identity, cfg, lossgap_identity.grid(cfg))


def test_identity_rule_on_real_rows(identity_table):
    claim = lossgap_identity.CLAIMS[0]
    assert claim.evaluate(identity_table).verdict is HOLDS
    # a systematic 30% gap between the two estimators (a wrong identity) inflates the z-scores
    biased = identity_table.assign(fisher=1.3 * identity_table["fisher"])
    biased["z_score"] = (biased["loss_gap"] - biased["fisher"]) / biased["difference_se"]
    assert claim.evaluate(biased).verdict is FAILS
    # too few settings, or too imprecise to see a gap of 10%
    assert claim.evaluate(identity_table.head(4)).verdict is INCONCLUSIVE
    assert claim.evaluate(identity_table, max_relative_se=1e-4).verdict is INCONCLUSIVE


def test_expected_identity_rule_on_real_rows(identity_table):
    claim = lossgap_identity.CLAIMS[1]
    assert claim.evaluate(identity_table).verdict is HOLDS
    # forgetting J(P_t) (E_D[Loss-Gap] = E_D[J(P^_t)], a wrong identity) and a wrong n = 1 closed form fail
    wrong = identity_table.copy()
    wrong["identity_z"] = (wrong["ed_loss_gap"] - wrong["ed_fisher_empirical"]) / wrong["identity_difference_se"]
    wrong["closed_form_z"] = (wrong["ed_loss_gap"] - wrong["memorization_level"]) / wrong["ed_loss_gap_se"]
    assert claim.evaluate(wrong).verdict is FAILS
    assert claim.evaluate(identity_table, max_relative_se=1e-6).verdict is INCONCLUSIVE
    assert claim.evaluate(identity_table[identity_table["check"] == "per_dataset"]).verdict is INCONCLUSIVE


# --------------------------------------------------------------------------------------------- Lipschitz
@pytest.fixture(scope="module")
def lipschitz_table():
    cfg = dataclasses.replace(lipschitz_vs_t.PRESETS["smoke"], n=30, t_min=1e-4, t_max=1e-3, n_times=4,
                              seeds=(0, 1))
    return _rows(lipschitz_vs_t, cfg, lipschitz_vs_t.grid(cfg))


def test_lipschitz_rules_on_real_rows(lipschitz_table):
    blowup, gaussian = lipschitz_vs_t.CLAIMS
    assert blowup.evaluate(lipschitz_table).verdict is HOLDS
    smooth = lipschitz_table.assign(lip_empirical=lipschitz_table["lip_true"],
                                    bound_empirical=0.0, bound_empirical_neighbours=0.0)
    assert blowup.evaluate(smooth).verdict is FAILS          # a smooth score has slope ~0, not -2
    below = lipschitz_table.assign(lip_empirical=0.5 * lipschitz_table["bound_empirical_neighbours"])
    assert blowup.evaluate(below).verdict is FAILS           # under a rigorous lower bound: wrong
    assert blowup.evaluate(lipschitz_table[lipschitz_table["t"] == lipschitz_table["t"].min()]).verdict is INCONCLUSIVE
    assert gaussian.evaluate(lipschitz_table).verdict is HOLDS
    off = lipschitz_table.copy()
    off.loc[off["law"] == "gaussian", "lip_true"] *= 1.01
    assert gaussian.evaluate(off).verdict is FAILS
    assert gaussian.evaluate(lipschitz_table[lipschitz_table["law"] == "mixture"]).verdict is INCONCLUSIVE


# --------------------------------------------------------------------------------------------- rate
def _rate_table(exponent, noise=0.01, seeds=(0, 1, 2)) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for d in (1, 2):
        for n in (100, 1000, 10_000, 100_000):
            for seed in seeds:
                gap = 50.0 * n ** exponent(d) * math.exp(noise * rng.standard_normal())
                rows.append({"d": d, "n": n, "t": 0.01, "seed": seed, "loss_gap": gap, "loss_gap_se": 0.01 * gap,
                             "memorization_level": 1e4, "preset": "cpu"})
    return pd.DataFrame(rows)


def test_rate_rule_three_verdicts():
    claim = lossgap_rate.CLAIMS[0]
    assert claim.evaluate(_rate_table(lambda d: -1.0 / d)).verdict is HOLDS
    assert claim.evaluate(_rate_table(lambda d: -1.0)).verdict is FAILS
    plateau = _rate_table(lambda d: 0.0).assign(memorization_level=1.0)    # never leaves its plateau
    f = claim.evaluate(plateau)
    assert f.verdict is INCONCLUSIVE and f.confounds


def _crossover_table(slope_of_d, noise=0.02, sigmas=(0.01, 0.03, 0.1, 0.3)) -> pd.DataFrame:
    """E_D ratio 1 / (1 + (n / n*)^1.5) with n*(sigma) = 5 sigma^-slope(d), n on a half-decade grid."""
    rng = np.random.default_rng(2)
    rows = []
    for d in (1, 2):
        for s in sigmas:
            n_star = 5 * s ** (-slope_of_d(d))
            for n in np.unique(np.round(np.geomspace(3, 3e6, 25)).astype(int)):
                for seed in (0, 1, 2):
                    r = 1 / (1 + (n / n_star) ** 1.5) * math.exp(noise * rng.standard_normal())
                    rows.append({"d": d, "n": int(n), "t": -math.log1p(-s * s), "sigma_t": s, "seed": seed,
                                 "ratio": r, "ratio_se": noise * r, "first_order_crossover": 0.5 * n_star,
                                 "preset": "cpu"})
    return pd.DataFrame(rows)


def test_crossover_rule_three_verdicts():
    claim = lossgap_rate.CLAIMS[1]
    assert claim.evaluate(_crossover_table(lambda d: float(d))).verdict is HOLDS
    assert claim.evaluate(_crossover_table(lambda d: 0.5 * d)).verdict is FAILS
    f = claim.evaluate(_crossover_table(lambda d: float(d), sigmas=(0.01, 0.1)))     # two crossings per d
    assert f.verdict is INCONCLUSIVE and f.confounds


def test_crossover_rule_on_real_d1_rows():
    """d = 1 from the module's own run_point: n* moves like sigma_t^-1 (slope within -1 -+ 25%)."""
    cfg = dataclasses.replace(lossgap_rate.PRESETS["smoke"], times_by_dim=((1, (1e-5, 1e-4, 1e-3, 1e-2)),),
                              n_min=3, n_max=10_000, n_ns=9, n_draws=64, n_pairs=5000, seeds=(0, 1))
    table = _rows(lossgap_rate, cfg, lossgap_rate.grid(cfg)).assign(preset="smoke")
    f = lossgap_rate.CLAIMS[1].evaluate(table)
    assert f.verdict is HOLDS, f.text



# --------------------------------------------------------------------------------------------- Thm 5.1
def _width_table(empirical_slope: float, seeds=(0, 1, 2), noise=0.05, censor_last=False) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    rows = []
    for law in ("empirical", "true"):
        for n in (8, 16, 32, 64, 128):
            for s in seeds:
                ws = (4 * n ** empirical_slope if law == "empirical" else 10.0) * math.exp(noise * rng.standard_normal())
                if censor_last and law == "empirical" and n == 128:
                    ws = math.nan
                rows.append({"law": law, "t": 0.1, "n": n, "seed": s, "width": 4, "net_seed": 0, "d": 2,
                             "width_star": ws, "params_star": 10 * ws})
    return pd.DataFrame(rows)


def test_width_rule_three_verdicts_and_censoring():
    claim = width_vs_n.CLAIMS[0]
    assert claim.evaluate(_width_table(1.0)).verdict is HOLDS
    assert claim.evaluate(_width_table(0.05)).verdict is FAILS
    assert claim.evaluate(_width_table(1.0, seeds=(0,), noise=0.6)).verdict is INCONCLUSIVE
    censored = claim.evaluate(_width_table(1.0, censor_last=True))
    assert any("censored" in c and "n=128" in c for c in censored.confounds)


def _duplicate_rows(dup_star: float) -> pd.DataFrame:
    """Width rows whose error crosses the target 0.2 exactly at W* (error = 0.2 W*/w), widths 4..512."""
    stars = {("distinct", 8, 0): 10.0, ("distinct", 32, 0): 200.0, ("duplicated", 8, 24): dup_star}
    rows = []
    for (kind, k, m), star in stars.items():
        for w in (4, 8, 16, 32, 64, 128, 256, 512):
            rows.append({"kind": kind, "n_distinct": k, "m": m, "t": 0.1, "seed": 0, "net_seed": 0, "width": w,
                         "rel_error": 0.2 * star / w, "target_error": 0.2, "width_star": star, "n": k + m})
    return pd.DataFrame(rows)


def test_duplicate_width_rule_three_verdicts():
    claim = duplication.CLAIMS[0]
    assert duplication.width_bracket([4, 8, 16], [0.5, 0.3, 0.1], 0.2) == (8.0, 16.0)
    assert duplication.width_bracket([4, 8], [0.5, 0.3], 0.2) == (8.0, math.inf)
    assert claim.evaluate(_duplicate_rows(11.0)).verdict is HOLDS        # with its 8 distinct points
    assert claim.evaluate(_duplicate_rows(190.0)).verdict is FAILS       # with its 32 points
    assert claim.evaluate(_duplicate_rows(40.0)).verdict is INCONCLUSIVE   # in between, at the grid's resolution


# --------------------------------------------------------------------------------------------- CIFAR
def _cifar_table(pruned: float, original: float = 0.7382, seeds: int = 5, samples: int = 10_000) -> pd.DataFrame:
    fids = {"original": 15.47, "pruned": 15.07, "random": 17.14}
    mems = {"original": original, "pruned": pruned, "random": 0.6687}
    rng = np.random.default_rng(2)
    return pd.DataFrame([{"variant": v, "seed": s, "memorization": mems[v] + 0.002 * rng.standard_normal(),
                          "memorization_se": math.sqrt(mems[v] * (1 - mems[v]) / samples),
                          "fid": fids[v] * (1 + 0.005 * rng.standard_normal()), "n_generated": samples, "n_train": 5000,
                          "params": 33_000_000, "dit": "W384-L12-H6-p2", "heads_pruned": 14, "heads_total": 72}
                         for v in mems for s in range(seeds)])


def test_cifar_rule_three_verdicts_and_todays_table_is_inconclusive():
    claim = cifar_pruning.CLAIMS[0]
    assert claim.evaluate(_cifar_table(0.6858)).verdict is HOLDS           # the paper's own numbers
    assert claim.evaluate(_cifar_table(0.80)).verdict is FAILS
    assert claim.evaluate(_cifar_table(0.0, original=0.0)).verdict is INCONCLUSIVE
    f = claim.evaluate(pd.read_csv(output_paths("cifar_pruning", "cpu", None).table))
    # 2 seeds x 64 samples: original 0.133 against pruned 0.070 cannot be told apart
    assert f.verdict is INCONCLUSIVE and f.lo < 0 < f.hi
