"""`verify all` end to end at the smoke preset, and the report's verdict rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import verify
from verify import claims, report
from verify.__main__ import main


@pytest.fixture(scope="module")
def smoke_all(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke_all")
    code = main(["all", "--preset", "smoke", "--out", str(out)])
    return out, code


def test_verify_all_smoke_runs_every_module_and_writes_report(smoke_all):
    out, code = smoke_all
    assert code == 0
    for name in verify.modules():
        assert (out / f"{name}.csv").exists(), name
        assert (out / f"{name}.png").exists(), name
        assert (out / f"{name}.config.json").exists(), name
    text = (out / "REPORT.md").read_text()
    table_rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| #")]
    claims_rows = [line for line in table_rows if line.split("|")[1].strip().isdigit()]
    assert len(claims_rows) == len(report.CLAIMS)
    verdicts = pd.read_csv(out / "REPORT.csv")
    assert len(verdicts) == len(report.CLAIMS)
    # every claim was decided from a table of this run (smoke data may be too small to say "holds")
    assert set(verdicts["verdict"]) <= {report.HOLDS, report.FAILS, report.INCONCLUSIVE}
    assert (verdicts["preset"] == "smoke").all()


def test_every_claim_names_an_existing_module_and_states_its_rule():
    names = set(verify.modules())
    for claim in report.CLAIMS:
        assert claim.module in names, claim.module
        assert len(claim.rule) > 20 and "Rule" not in claim.rule


def test_missing_table_is_not_run(tmp_path):
    verdicts = report.evaluate("smoke", out=tmp_path)
    assert (verdicts["verdict"] == report.NOT_RUN).all()


def _lipschitz_table(blowup: bool) -> pd.DataFrame:
    rows = []
    for law in ("mixture", "gaussian"):
        for t in (1e-4, 3e-4, 1e-3, 1e-1, 1.0):
            s2 = -math.expm1(-t)
            lip_true = 1.0 / (s2 + (1 - s2) * 0.5)
            lip_emp = 0.01 / s2**2 if blowup else lip_true
            rows.append({"law": law, "t": t, "sigma2_t": s2, "lip_empirical": lip_emp, "lip_true": lip_true,
                         "lip_true_analytic": lip_true, "bound_empirical": min(lip_emp, 0.005 / s2**2),
                         "device": "cpu", "preset": "smoke", "runtime_s": 0.1})
    return pd.DataFrame(rows)


def test_lipschitz_verdict_flips_on_a_violating_table():
    assert claims.judge_lipschitz_blowup(_lipschitz_table(blowup=True)).holds is True
    assert claims.judge_lipschitz_blowup(_lipschitz_table(blowup=False)).holds is False


def test_gaussian_lipschitz_verdict_flips():
    table = _lipschitz_table(blowup=True)
    assert claims.judge_gaussian_lipschitz(table).holds is True
    table.loc[table["law"] == "gaussian", "lip_true"] *= 1.01
    assert claims.judge_gaussian_lipschitz(table).holds is False


def test_report_written_from_tables(tmp_path):
    _lipschitz_table(blowup=False).to_csv(tmp_path / "lipschitz_vs_t.csv", index=False)
    path = report.write_report("smoke", out=tmp_path)
    verdicts = pd.read_csv(tmp_path / "REPORT.csv").set_index("module")
    assert (verdicts.loc["lipschitz_vs_t", "verdict"] == report.FAILS).any()
    assert "does not hold" in path.read_text()


def test_fit_slope_recovers_a_power_law():
    x = [1.0, 2.0, 4.0, 8.0]
    assert claims.fit_slope(x, [3 * v**-1.5 for v in x]) == pytest.approx(-1.5, abs=1e-12)


# ---------------------------------------------------------------- each rule holds on a table that satisfies
# its claim and flips on one that violates it (synthetic tables with the modules' columns)
def _identity_table(z_scale: float) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    z = rng.standard_normal(60) * z_scale
    fisher = np.full(60, 10.0)
    return pd.DataFrame({"d": 1, "t": np.geomspace(1e-3, 1, 60), "loss_gap": fisher + z * 0.1, "loss_gap_se": 0.07,
                         "fisher": fisher, "fisher_se": 0.07, "z_score": z, "quadrature": 10.0, "preset": "smoke"})


def test_identity_verdict_flips():
    assert claims.judge_lossgap_identity(_identity_table(1.0)).holds is True
    assert claims.judge_lossgap_identity(_identity_table(5.0)).holds is False


def _bound_table(ratio_in_regime: float) -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        for t in (1e-3, 1e-2, 1.0):
            for n in (100, 10_000):
                d = 8
                inside = t <= 1e-2 and math.log(n) <= d
                ratio = ratio_in_regime if inside else 1e-3
                rows.append({"d": d, "n": n, "trace_scale": 1.0, "separation": 2.0, "t": t, "seed": seed,
                             "loss_gap": ratio, "bound_rhs": 1.0, "ratio": ratio, "in_regime": inside,
                             "log_n_over_d": math.log(n) / d, "sigma_over_nn": 0.1, "preset": "smoke"})
    return pd.DataFrame(rows)


def test_bound_verdict_flips():
    assert claims.judge_lossgap_bound(_bound_table(0.5)).holds is True
    assert claims.judge_lossgap_bound(_bound_table(0.02)).holds is False


def _rate_table(exponent) -> pd.DataFrame:
    rows = []
    for d in (1, 2):
        for n in (100, 1000, 10_000, 100_000):
            for seed in (0, 1):
                gap = 50.0 * n ** exponent(d) * (1 + 0.01 * seed)
                rows.append({"d": d, "n": n, "t": 0.01, "seed": seed, "loss_gap": gap, "loss_gap_se": 0.01 * gap,
                             "memorization_level": 1e4, "preset": "cpu"})
    return pd.DataFrame(rows)


def test_rate_verdict_flips():
    assert claims.judge_lossgap_rate(_rate_table(lambda d: -1.0 / d)).holds is True
    assert claims.judge_lossgap_rate(_rate_table(lambda d: -1.0)).holds is False


def _width_table(empirical_slope: float) -> pd.DataFrame:
    rows = []
    for law in ("empirical", "true"):
        for n in (8, 16, 32, 64):
            ws = 4 * n ** empirical_slope if law == "empirical" else 10.0 * (1 + 0.01 * (n % 3))
            rows.append({"law": law, "t": 0.2, "n": n, "seed": 0, "width_star": ws, "params_star": 10 * ws})
    return pd.DataFrame(rows)


def test_width_verdict_flips():
    assert claims.judge_width_slopes(_width_table(0.9)).holds is True
    assert claims.judge_width_slopes(_width_table(0.05)).holds is False


def _duplication_table(follows_distinct: bool) -> pd.DataFrame:
    def distinct_w(k):
        return 5.0 * k
    rows = [{"kind": "distinct", "n_distinct": k, "m": 0, "t": 0.2, "seed": 0, "width_star": distinct_w(k)}
            for k in (8, 16, 32)]
    for m in (8, 24):
        w = distinct_w(8) * 1.1 if follows_distinct else distinct_w(8 + m) * 0.95
        rows.append({"kind": "duplicated", "n_distinct": 8, "m": m, "t": 0.2, "seed": 0, "width_star": w})
    return pd.DataFrame(rows)


def test_duplication_verdict_flips():
    assert claims.judge_duplication(_duplication_table(True)).holds is True
    assert claims.judge_duplication(_duplication_table(False)).holds is False


def _trend_table(x: str, values, fractions) -> pd.DataFrame:
    return pd.DataFrame([{x: v, "seed": s, "kind": "summary", "mem_fraction": f, "mem_fraction_se": 0.01,
                          "test_loglik": -4.0 - abs(i - 1), "test_loglik_se": 0.05}
                         for i, (v, f) in enumerate(zip(values, fractions)) for s in (0, 1)])


@pytest.mark.parametrize("judge, x, direction", [
    (claims.judge_memorization_grows_with_size, "params", +1),
    (claims.judge_memorization_falls_with_n, "n", -1),
    (claims.judge_memorization_falls_with_d, "d", -1),
    (claims.judge_phase_2d, "params", +1),
])
def test_trend_verdicts_flip(judge, x, direction):
    values, rising = [10, 100, 1000], [0.05, 0.2, 0.4]
    assert judge(_trend_table(x, values, rising if direction > 0 else rising[::-1])).holds is True
    assert judge(_trend_table(x, values, rising[::-1] if direction > 0 else rising)).holds is False
    flat = judge(_trend_table(x, values, [0.2, 0.2, 0.205]))
    assert flat.holds is False


def test_phase_verdict_needs_an_interior_likelihood_peak():
    table = _trend_table("params", [10, 100, 1000], [0.05, 0.2, 0.4])
    assert claims.judge_phase_2d(table).holds is True
    table["test_loglik"] = -table["params"].map({10: 3.0, 100: 4.0, 1000: 5.0})
    assert claims.judge_phase_2d(table).holds is False


def _decay_table(decay_helps: bool) -> pd.DataFrame:
    rows = []
    for n in (32, 100):
        for w in (32, 128):
            for wd in (0.0, 0.1, 1.0):
                mem = 0.3 - (0.2 * wd if decay_helps and n == 32 else 0.0)
                ll = -4.0 - (1.0 * wd if n == 100 else 0.0)
                rows.append({"n": n, "width": w, "weight_decay": wd, "seed": 0, "kind": "summary",
                             "mem_fraction": mem, "mem_fraction_se": 0.01, "test_loglik": ll, "test_loglik_se": 0.05})
    return pd.DataFrame(rows)


def test_weight_decay_verdict_flips():
    assert claims.judge_weight_decay(_decay_table(True)).holds is True
    assert claims.judge_weight_decay(_decay_table(False)).holds is False


def _cifar_table(pruned_memorization: float, original_memorization: float = 0.74) -> pd.DataFrame:
    values = {"original": (original_memorization, 15.5), "pruned": (pruned_memorization, 15.1), "random": (0.67, 17.1)}
    return pd.DataFrame([{"variant": v, "seed": s, "memorization": m, "memorization_se": 0.005, "fid": f}
                         for v, (m, f) in values.items() for s in range(5)])


def test_cifar_verdict_flips_and_needs_a_memorizing_original():
    assert claims.judge_cifar_pruning(_cifar_table(0.686)).holds is True  # the paper's own table
    assert claims.judge_cifar_pruning(_cifar_table(0.80)).holds is False
    assert claims.judge_cifar_pruning(_cifar_table(0.0, original_memorization=0.0)).holds is None


def test_seed_mean_takes_the_larger_of_propagated_and_spread_errors():
    t = pd.DataFrame({"g": [0, 0], "v": [0.0, 1.0], "se": [0.01, 0.01]})
    out = claims.seed_mean(t, "g", "v", "se").iloc[0]
    assert out["mean"] == pytest.approx(0.5)
    assert out["se"] == pytest.approx(np.std([0.0, 1.0], ddof=1) / math.sqrt(2))
    t["v"] = [0.5, 0.5]
    assert claims.seed_mean(t, "g", "v", "se").iloc[0]["se"] == pytest.approx(math.sqrt(2) * 0.01 / 2)


def _duplication_memorization_table(follows_distinct: bool) -> pd.DataFrame:
    mem = {8: 0.4, 16: 0.2, 32: 0.1}
    rows = [{"kind": "memorization", "data": "distinct", "n_distinct": k, "m": 0, "seed": 0,
             "mem_fraction": v, "mem_fraction_se": 0.02} for k, v in mem.items()]
    for m in (8, 24):
        v = 0.37 if follows_distinct else mem[8 + m] * 1.05
        rows.append({"kind": "memorization", "data": "duplicated", "n_distinct": 8, "m": m, "seed": 0,
                     "mem_fraction": v, "mem_fraction_se": 0.02})
    return pd.concat([_duplication_table(True), pd.DataFrame(rows)], ignore_index=True)


def test_duplication_memorization_verdict_flips():
    assert claims.judge_duplication_memorization(_duplication_memorization_table(True)).holds is True
    assert claims.judge_duplication_memorization(_duplication_memorization_table(False)).holds is False
    # the width rule ignores the memorization rows
    assert claims.judge_duplication(_duplication_memorization_table(False)).holds is True
