"""verify.verdicts: the three-valued decisions, conjunctions, declared constants and sensitivity; and the one
registry of claims (every module has claims, three presets and its documented columns)."""

from __future__ import annotations

import inspect
import math

import pandas as pd
import pytest

import verify
from verify import report, verdicts
from verify.verdicts import FAILS, HOLDS, INCONCLUSIVE, Claim, Constant, all_of, finding


def test_decisions_are_inconclusive_unless_the_interval_separates_claim_and_negation():
    assert verdicts.decide_above(0.2, 0.5, 0.1) is HOLDS
    assert verdicts.decide_above(0.0, 0.1, 0.1) is FAILS
    assert verdicts.decide_above(0.05, 0.5, 0.1) is INCONCLUSIVE
    assert verdicts.decide_above(math.nan, 0.5, 0.1) is INCONCLUSIVE
    assert verdicts.decide_below(0.0, 0.09, 0.1) is HOLDS and verdicts.decide_below(0.1, 0.2, 0.1) is FAILS
    assert verdicts.decide_within(-2.1, -1.9, -2.5, -1.5) is HOLDS
    assert verdicts.decide_within(-1.2, -0.8, -2.5, -1.5) is FAILS
    assert verdicts.decide_within(-1.7, -1.2, -2.5, -1.5) is INCONCLUSIVE
    assert verdicts.decide_within(-math.inf, math.inf, -2.5, -1.5) is INCONCLUSIVE


def _part(v, name="s"):
    return finding(name, (1.0, 0.0, 2.0), v, f"{name} text", interval="normal", confounds=(f"{name} confound",))


def test_conjunction_is_decided_by_the_first_failing_then_inconclusive_part():
    both = all_of([_part(HOLDS, "a"), _part(HOLDS, "b")])
    assert both.verdict is HOLDS and both.statistic == "a"
    mixed = all_of([_part(HOLDS, "a"), _part(INCONCLUSIVE, "b"), _part(FAILS, "c")])
    assert mixed.verdict is FAILS and mixed.statistic == "c"
    assert all_of([_part(HOLDS, "a"), _part(INCONCLUSIVE, "b")]).statistic == "b"
    assert mixed.confounds == ("a confound", "b confound", "c confound")


def test_a_finding_names_a_known_interval_kind():
    with pytest.raises(ValueError):
        finding("s", (0.0, 0.0, 0.0), HOLDS, "t", interval="two sigma")


def _threshold_judge(table, *, floor=0.3):
    """Rule: the value's normal interval lies above floor."""
    iv = (float(table["v"].mean()), float(table["v"].mean() - 0.05), float(table["v"].mean() + 0.05))
    return finding("v", iv, verdicts.decide_above(iv[1], iv[2], floor), "t", interval="normal")


def test_sensitivity_halves_and_doubles_each_constant_and_marks_flips_fragile():
    claim = Claim("toy", "v exceeds a floor", "none", "none", "theory.alpha", _threshold_judge,
                  (Constant("floor", 0.3, "the floor"),))
    claim.check()
    robust = verdicts.sensitivity(claim, pd.DataFrame({"v": [1.0]}))
    assert not robust.fragile and [c[:3] for c in robust.changes] == [("floor", 0.5, 0.15), ("floor", 2.0, 0.6)]
    fragile = verdicts.sensitivity(claim, pd.DataFrame({"v": [0.5]}))       # holds at 0.3, not at 0.6
    assert fragile.base is HOLDS and fragile.fragile
    assert fragile.describe() == "fragile: floor x2 (0.6) -> does not hold"


def test_declared_constants_must_match_the_judge_signature():
    with pytest.raises(ValueError):
        Claim("toy", "s", "w", "r", "theory.alpha", _threshold_judge, (Constant("floor", 0.2, "m"),)).check()
    with pytest.raises(ValueError):
        Claim("toy", "s", "w", "r", "theory.alpha", _threshold_judge,
              (Constant("floor", 0.3, "m"),)).evaluate(pd.DataFrame({"v": [1.0]}), ceiling=1.0)


def test_registry_every_module_has_claims_presets_and_columns_and_every_claim_is_well_formed():
    mods = verify.modules()
    claims = verify.claims()
    assert {c.module for c in claims} == set(mods)
    assert len({c.key for c in claims}) == len(claims)
    for name, mod in mods.items():
        assert set(mod.PRESETS) == {"smoke", "cpu", "paper"}, name
        assert len(mod.COLUMNS) == len(set(mod.COLUMNS)) and {"seed", "preset", "device"} <= set(mod.COLUMNS), name
        assert mod.CLAIMS, name
    for c in claims:
        c.check()
        assert "Rule:" in (c.judge.__doc__ or "") and len(c.rule) > 40, c.key
        assert inspect.getmodule(c.judge).__name__.startswith("verify."), c.key
        assert callable(report.resolve(c.theory)) or inspect.isclass(report.resolve(c.theory)), c.theory
        assert report.theory_file(c.theory).name.endswith(".py")
        assert c.paper_range and c.where and c.statement


def test_disjunction_holds_on_any_holding_part_and_fails_only_when_all_fail():
    from verify.verdicts import any_of, disjunction

    assert disjunction([FAILS, HOLDS]) is HOLDS and disjunction([FAILS, FAILS]) is FAILS
    assert disjunction([FAILS, INCONCLUSIVE]) is INCONCLUSIVE and disjunction([]) is INCONCLUSIVE
    either = any_of([_part(FAILS, "a"), _part(HOLDS, "b")])
    assert either.verdict is HOLDS and either.statistic == "b"
    assert any_of([_part(FAILS, "a"), _part(INCONCLUSIVE, "b")]).statistic == "b"
    neither = any_of([_part(FAILS, "a"), _part(FAILS, "b")])
    assert neither.verdict is FAILS and neither.confounds == ("a confound", "b confound")
