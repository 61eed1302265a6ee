"""The verdict machinery: claims, their judges, findings, decisions and sensitivity.

A verify module declares its claims (``CLAIMS``: a list of :class:`Claim`); the registry
(``verify.claims()``) gathers them and verify.report applies them to the tables. A claim's ``judge`` reads
its module's table and returns a :class:`Finding`: the statistic it decides on, with its value and an
interval of a named kind (``verify.stats.INTERVAL_KINDS``), the three-valued verdict, the confounds it found
(failed fits, censored points, unjudged sets, missing baseline columns) and the range it tested. The
judge's free constants are keyword-only parameters declared as :class:`Constant` on the claim, so that
``sensitivity`` can rerun it with each constant halved and doubled: a verdict that changes is fragile.

Decisions: ``decide_above`` / ``decide_below`` / ``decide_within`` compare an interval with the claim's
boundary and answer "inconclusive" whenever the interval does not separate the claim from its negation;
``all_of`` joins the parts of a conjunctive claim, ``any_of`` those of a disjunctive one.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import math
from typing import Callable, Iterable, Sequence

import pandas as pd

from .stats import INTERVAL_KINDS, Interval, fmt_interval


class Verdict(str, enum.Enum):
    HOLDS = "holds"
    FAILS = "does not hold"
    INCONCLUSIVE = "inconclusive"
    NOT_RUN = "not run at this preset"

    def __str__(self) -> str:
        return self.value


HOLDS, FAILS, INCONCLUSIVE, NOT_RUN = Verdict.HOLDS, Verdict.FAILS, Verdict.INCONCLUSIVE, Verdict.NOT_RUN


@dataclasses.dataclass(frozen=True)
class Constant:
    """A free constant of a rule: its keyword name in the judge, its default and what it means."""

    name: str
    default: float
    meaning: str
    integer: bool = False

    def scaled(self, factor: float) -> float:
        value = self.default * factor
        return max(1, int(round(value))) if self.integer else value


@dataclasses.dataclass(frozen=True)
class Finding:
    """What a judge found. ``interval`` names a kind of ``verify.stats.INTERVAL_KINDS``."""

    statistic: str
    value: float
    lo: float
    hi: float
    interval: str
    verdict: Verdict
    text: str
    confounds: tuple = ()
    range_tested: str = ""

    def __post_init__(self):
        if self.interval not in INTERVAL_KINDS:
            raise ValueError(f"unknown interval kind {self.interval!r}; see verify.stats.INTERVAL_KINDS")
        object.__setattr__(self, "verdict", Verdict(self.verdict))
        object.__setattr__(self, "confounds", tuple(self.confounds))

    @property
    def summary(self) -> str:
        """'statistic = value [lo, hi]'."""
        if self.interval == "none":
            return f"{self.statistic}: not computed"
        if self.interval == "exact":
            return f"{self.statistic} = {fmt_interval(self.value, self.lo, self.hi).split(' [')[0]}"
        return f"{self.statistic} = {fmt_interval(self.value, self.lo, self.hi)}"


@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim of the paper and the rule that decides it from its module's table.

    key: short identifier; statement: the claim in words (no measured numbers); where: the paper's
    theorem/equation/section; paper_range: the range the paper states or uses; theory: the dotted path of
    the theory function the measurement rests on; judge(table, **constants) -> Finding, whose docstring
    states the rule after 'Rule:'; constants: its declared free constants; module: the verify module whose
    table it reads (filled in by the registry)."""

    key: str
    statement: str
    where: str
    paper_range: str
    theory: str
    judge: Callable[..., Finding]
    constants: tuple = ()
    module: str = ""

    @property
    def rule(self) -> str:
        doc = self.judge.__doc__ or ""
        return " ".join(doc.split("Rule:", 1)[-1].split())

    def defaults(self) -> dict:
        return {c.name: c.default for c in self.constants}

    def evaluate(self, table: pd.DataFrame, **overrides) -> Finding:
        unknown = set(overrides) - {c.name for c in self.constants}
        if unknown:
            raise ValueError(f"{self.key}: undeclared constants {sorted(unknown)}")
        return self.judge(table, **{**self.defaults(), **overrides})

    def check(self) -> None:
        """Raise if the declared constants do not match the judge's keyword-only parameters and defaults."""
        params = {p.name: p.default for p in inspect.signature(self.judge).parameters.values()
                  if p.kind is inspect.Parameter.KEYWORD_ONLY}
        declared = self.defaults()
        if params != declared:
            raise ValueError(f"{self.key}: judge keyword defaults {params} differ from declared constants {declared}")


# --------------------------------------------------------------------------------------------- decisions
def _bad(*xs) -> bool:
    return any(x is None or (isinstance(x, float) and math.isnan(x)) for x in xs)


def decide_above(lo: float, hi: float, bound: float) -> Verdict:
    """Claim: the quantity exceeds ``bound``. Holds if the whole interval is above it, does not hold if
    the whole interval is at or below it, inconclusive otherwise."""
    if _bad(lo, hi):
        return INCONCLUSIVE
    if lo > bound:
        return HOLDS
    if hi <= bound:
        return FAILS
    return INCONCLUSIVE


def decide_below(lo: float, hi: float, bound: float) -> Verdict:
    """Claim: the quantity is below ``bound`` (the mirror of ``decide_above``)."""
    if _bad(lo, hi):
        return INCONCLUSIVE
    if hi < bound:
        return HOLDS
    if lo >= bound:
        return FAILS
    return INCONCLUSIVE


def decide_within(lo: float, hi: float, low: float, high: float) -> Verdict:
    """Claim: the quantity lies in [low, high] (an equivalence band). Holds if the interval is inside the
    band, does not hold if it is entirely outside it, inconclusive if it straddles an edge."""
    if _bad(lo, hi):
        return INCONCLUSIVE
    if low <= lo and hi <= high:
        return HOLDS
    if hi < low or lo > high:
        return FAILS
    return INCONCLUSIVE


def conjunction(verdicts: Iterable[Verdict]) -> Verdict:
    """All parts must hold: any part that does not hold decides; else any inconclusive part decides."""
    vs = list(verdicts)
    if any(v is FAILS for v in vs):
        return FAILS
    if vs and all(v is HOLDS for v in vs):
        return HOLDS
    return INCONCLUSIVE


def _negation(v: Verdict) -> Verdict:
    return {HOLDS: FAILS, FAILS: HOLDS}.get(v, v)


def disjunction(verdicts: Iterable[Verdict]) -> Verdict:
    """Some part must hold: any part that holds decides; else all parts not holding decide; else
    inconclusive (the dual of ``conjunction``: not (all of the negations))."""
    return _negation(conjunction(_negation(v) for v in verdicts))


def finding(statistic: str, iv: Interval | tuple, verdict: Verdict, text: str, *, interval: str | None = None,
            confounds: Sequence[str] = (), range_tested: str = "") -> Finding:
    """A Finding from an Interval (or an (estimate, lo, hi) tuple with ``interval`` naming its kind)."""
    if isinstance(iv, Interval):
        est, lo, hi, kind = iv.estimate, iv.lo, iv.hi, interval or iv.method
    else:
        (est, lo, hi), kind = iv, interval
    return Finding(statistic, float(est), float(lo), float(hi), kind, verdict, text, tuple(confounds), range_tested)


def inconclusive(statistic: str, text: str, *, confounds: Sequence[str] = (), range_tested: str = "",
                 value: float = math.nan) -> Finding:
    """A Finding for a table that cannot decide (no statistic computed)."""
    return Finding(statistic, value, -math.inf, math.inf, "none", INCONCLUSIVE, text, tuple(confounds), range_tested)


def all_of(parts: Sequence[Finding], *, confounds: Sequence[str] = (), range_tested: str = "") -> Finding:
    """A conjunctive claim: its verdict is ``conjunction`` of the parts'; its statistic is the deciding
    part's (the first that does not hold, else the first inconclusive one, else the first); its text joins
    the parts' texts; its confounds are the parts' and ``confounds``."""
    verdict = conjunction(p.verdict for p in parts)
    deciding = next((p for p in parts if p.verdict is verdict), parts[0])
    text = "; ".join(f"[{p.verdict}] {p.text}" for p in parts) if len(parts) > 1 else parts[0].text
    seen = []
    for c in [c for p in parts for c in p.confounds] + list(confounds):
        if c not in seen:
            seen.append(c)
    return dataclasses.replace(deciding, verdict=verdict, text=text, confounds=tuple(seen),
                               range_tested=range_tested or deciding.range_tested)


def any_of(parts: Sequence[Finding], *, confounds: Sequence[str] = (), range_tested: str = "") -> Finding:
    """A disjunctive claim (``disjunction`` of the parts' verdicts), assembled like ``all_of``."""
    joined = all_of(parts, confounds=confounds, range_tested=range_tested)
    verdict = disjunction(p.verdict for p in parts)
    deciding = next((p for p in parts if p.verdict is verdict), parts[0])
    return dataclasses.replace(joined, statistic=deciding.statistic, value=deciding.value, lo=deciding.lo,
                               hi=deciding.hi, interval=deciding.interval, verdict=verdict)


# --------------------------------------------------------------------------------------------- sensitivity
@dataclasses.dataclass(frozen=True)
class Sensitivity:
    base: Verdict
    changes: tuple          # (constant name, factor, value, verdict) for every constant and factor

    @property
    def fragile(self) -> bool:
        return any(v is not self.base for *_, v in self.changes)

    def describe(self) -> str:
        if not self.changes:
            return "no free constants"
        flips = [f"{name} x{factor:g} ({value:g}) -> {v}" for name, factor, value, v in self.changes if v is not self.base]
        if flips:
            return "fragile: " + "; ".join(flips)
        names = sorted({c[0] for c in self.changes})
        return f"robust: same verdict with {', '.join(names)} halved and doubled"


FACTORS = (0.5, 2.0)


def sensitivity(claim: Claim, table: pd.DataFrame, base: Finding | None = None) -> Sensitivity:
    """Rerun the claim's judge with each declared constant halved and doubled (one at a time)."""
    base = base or claim.evaluate(table)
    changes = []
    for c in claim.constants:
        for f in FACTORS:
            value = c.scaled(f)
            try:
                v = claim.evaluate(table, **{c.name: value}).verdict
            except Exception:  # a constant that breaks the rule is reported as inconclusive there
                v = INCONCLUSIVE
            changes.append((c.name, f, value, v))
    return Sensitivity(base.verdict, tuple(changes))
