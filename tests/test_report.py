"""`verify all` end to end at the smoke preset (every module writes its documented columns), the report
(rows per claim per preset, relative links, no timestamps or absolute paths, the committed REPORT is
current) and the output locations."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

import verify
import verify.config
import verify.preflight
from verify import report, runner
from verify.__main__ import main

pytestmark = pytest.mark.usefixtures("one_thread")


def _missing_inputs() -> set:
    """Modules whose data files are absent here (a clone without the shared data folder): `all` skips them."""
    missing = set()
    for name, mod in verify.modules().items():
        try:
            verify.preflight.check_data(mod, mod.PRESETS["smoke"])
        except verify.config.MissingInputError:
            missing.add(name)
    return missing


@pytest.fixture(scope="module")
def smoke_all(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke_all")
    code = main(["all", "--preset", "smoke", "--out", str(out)])
    return out, code


def test_verify_all_smoke_runs_every_module_with_its_documented_columns(smoke_all):
    out, code = smoke_all
    assert code == 0
    skipped = _missing_inputs()
    for name, mod in verify.modules().items():
        if name in skipped:                 # e.g. cifar_pruning without CIFAR-10: skipped, not failed
            assert not (out / f"{name}.csv").exists()
            continue
        assert (out / f"{name}.png").exists() and (out / f"{name}.config.json").exists(), name
        table = pd.read_csv(out / f"{name}.csv", low_memory=False)
        missing = set(mod.COLUMNS) - set(table.columns)
        assert not missing, f"{name} lacks documented columns {sorted(missing)}"


def test_smoke_report_has_a_computed_row_per_claim(smoke_all):
    out, _ = smoke_all
    verdicts = pd.read_csv(out / "REPORT.csv")
    assert list(verdicts["key"]) == [c.key for c in verify.claims()]
    skipped = _missing_inputs()
    ran = verdicts[~verdicts["module"].isin(skipped)]
    assert set(ran["verdict"]) <= {"holds", "does not hold", "inconclusive"}
    assert (verdicts[verdicts["module"].isin(skipped)]["verdict"] == report.NOT_RUN).all()
    assert (verdicts["preset"] == "smoke").all()
    text = (out / "REPORT.md").read_text()
    rows = [line for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == len(verify.claims())


def test_missing_tables_are_not_run(tmp_path):
    verdicts = report.evaluate("smoke", out=tmp_path)
    assert (verdicts["verdict"] == report.NOT_RUN).all()


def test_a_partial_grid_is_not_judged(smoke_all, tmp_path):
    """A table cut short (a run in progress, or one split over sessions) gets no verdict at its preset: the
    row says how many grid points are finished. A table made with other settings is not held to the
    preset's grid."""
    out, _ = smoke_all
    name = "lossgap_bound"
    table = pd.read_csv(runner.output_paths(name, "smoke", out).table)
    done, total = report.completeness(name, "smoke", table)
    assert done == total > 1
    first = table[table["point"] == table["point"].iloc[0]]
    runner.output_paths(name, "smoke", tmp_path).table.parent.mkdir(parents=True, exist_ok=True)
    first.to_csv(runner.output_paths(name, "smoke", tmp_path).table, index=False)
    rows = report.evaluate("smoke", out=tmp_path)
    rows = rows[rows["module"] == name]
    assert len(rows) and (rows["verdict"] == report.INCONCLUSIVE).all()
    assert rows["measured"].str.fullmatch(f"table incomplete: 1 of {total} grid points finished").all()
    assert report.completeness(name, "smoke", first.assign(config_hash="other")) == (total, total)


def test_a_table_of_earlier_code_is_judged_with_a_note_naming_its_code(smoke_all, tmp_path):
    """Rows carrying another code hash (a table kept across a change to theory/) keep their verdict, and the
    row's confounds say which code made them; the current table has no such note."""
    out, _ = smoke_all
    name = "lossgap_rate"
    table = pd.read_csv(runner.output_paths(name, "smoke", out).table)
    assert report.earlier_code(name, table) == ""
    path = runner.output_paths(name, "smoke", tmp_path).table
    path.parent.mkdir(parents=True, exist_ok=True)
    table.assign(code_hash="0123456789ab").to_csv(path, index=False)
    current = report.evaluate("smoke", out=out).set_index("key")
    rows = report.evaluate("smoke", out=tmp_path)
    rows = rows[rows["module"] == name].set_index("key")
    assert len(rows)
    for key, r in rows.iterrows():
        assert r["verdict"] == current.loc[key, "verdict"]
        assert r["confounds"].startswith("made by earlier code (code 0123456789ab; the current code is ")
        assert "made by earlier code" not in str(current.loc[key, "confounds"])


def test_committed_report_is_current_relative_and_has_no_plus_minus():
    folder, text, csv = report.render_report()
    assert folder == runner.FIGURES
    committed = (runner.FIGURES / "REPORT.md").read_text()
    assert committed == text, "figures/REPORT.md is stale: run `python -m verify report`"
    committed_csv = pd.read_csv(runner.FIGURES / "REPORT.csv")
    assert list(committed_csv["key"]) == list(csv["key"]) and list(committed_csv["verdict"]) == list(csv["verdict"])
    assert "±" not in text and "/work/" not in text and not re.search(r"20\d\d-\d\d-\d\d", text)
    for target in re.findall(r"\]\(([^)]+)\)", text):           # every link resolves from figures/
        assert (runner.FIGURES / target).resolve().exists(), target
    for col in ("table", "figure", "theory_file"):
        assert not committed_csv[col].astype(str).str.startswith("/").any()
    # every row of a preset with tables carries its statistic, sensitivity and the two ranges
    measured = csv[csv["verdict"] != report.NOT_RUN]
    assert measured["statistic"].str.len().gt(0).all() and measured["sensitivity"].str.len().gt(0).all()
    assert measured["paper_range"].str.len().gt(0).all() and measured["range_tested"].str.len().gt(0).all()
    for kind in set(measured["interval"]):
        assert f"`{kind}`" in text                                # every interval kind used is defined


def test_cifar_verdict_is_decided_against_the_measured_null():
    csv = pd.read_csv(runner.FIGURES / "REPORT.csv").set_index(["preset", "key"])
    row = csv.loc[("cpu", "head_pruning")]
    assert row["verdict"] != report.NOT_RUN and "held-out test images" in str(row["measured"])


def test_output_locations_per_preset(tmp_path):
    cpu = runner.output_paths("x", "cpu", None)
    assert cpu.table == runner.RESULTS / "cpu" / "x.csv" and cpu.figure == runner.FIGURES / "cpu" / "x.png"
    assert runner.output_paths("x", "paper", None).table == runner.RESULTS / "paper" / "x.csv"
    smoke = runner.output_paths("x", "smoke", None)
    assert runner.REPO_ROOT not in smoke.table.parents and smoke.table.parent == runner.smoke_dir()
    assert runner.output_paths("x", "cpu", tmp_path).table == tmp_path / "x.csv"


def test_committed_tables_live_in_their_preset_folders():
    for name in verify.modules():
        assert (runner.RESULTS / "cpu" / f"{name}.csv").exists(), name
        assert (runner.FIGURES / "cpu" / f"{name}.png").exists(), name
    assert not list(Path(runner.RESULTS).glob("*.csv"))
