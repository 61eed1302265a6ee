"""`verify all` end to end at the smoke preset, and the report's verdict rules."""

from __future__ import annotations

import math

import pandas as pd
import pytest

import verify
from verify import report
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
    assert report.judge_lipschitz_blowup(_lipschitz_table(blowup=True)).holds is True
    assert report.judge_lipschitz_blowup(_lipschitz_table(blowup=False)).holds is False


def test_gaussian_lipschitz_verdict_flips():
    table = _lipschitz_table(blowup=True)
    assert report.judge_gaussian_lipschitz(table).holds is True
    table.loc[table["law"] == "gaussian", "lip_true"] *= 1.01
    assert report.judge_gaussian_lipschitz(table).holds is False


def test_report_written_from_tables(tmp_path):
    _lipschitz_table(blowup=False).to_csv(tmp_path / "lipschitz_vs_t.csv", index=False)
    path = report.write_report("smoke", out=tmp_path)
    verdicts = pd.read_csv(tmp_path / "REPORT.csv").set_index("module")
    assert (verdicts.loc["lipschitz_vs_t", "verdict"] == report.FAILS).any()
    assert "does not hold" in path.read_text()


def test_fit_slope_recovers_a_power_law():
    x = [1.0, 2.0, 4.0, 8.0]
    assert report.fit_slope(x, [3 * v**-1.5 for v in x]) == pytest.approx(-1.5, abs=1e-12)
