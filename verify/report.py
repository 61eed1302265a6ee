"""The claims-vs-measured report: one row per claim of the paper, its verdict computed from the tables.

Each :class:`Claim` names the paper's statement, where it is in the paper, the verify module whose table
decides it, and a ``judge`` function that reads that table and returns a
:class:`Finding` (the measured value(s) as text, and whether the rule is met); the judge's docstring
states the rule after ``Rule:``, and the report prints it. Verdicts are never typed
in: ``write_report`` reads the CSV files and applies the rules; a missing table gives "not run at this
preset". To add a claim, append a :class:`Claim` to ``CLAIMS``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from pathlib import Path
from typing import Callable, NamedTuple

import numpy as np
import pandas as pd

from .runner import atomic_write, output_paths

HOLDS, FAILS, NOT_RUN, INCONCLUSIVE = "holds", "does not hold", "not run at this preset", "inconclusive"


class Finding(NamedTuple):
    measured: str
    holds: bool | None  # None: the table cannot decide (too few points)


@dataclasses.dataclass(frozen=True)
class Claim:
    claim: str
    where: str
    module: str
    judge: Callable[[pd.DataFrame], Finding]

    @property
    def rule(self) -> str:
        """The rule in words: the judge's docstring from ``Rule:`` on."""
        doc = self.judge.__doc__ or ""
        return " ".join(doc.split("Rule:", 1)[-1].split())


def _ok(table: pd.DataFrame) -> pd.DataFrame:
    """Rows without an error."""
    return table[table["error"].isna()] if "error" in table.columns else table


def fit_slope(x, y) -> float:
    """Least-squares slope of log y against log x (positive values only)."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    if keep.sum() < 2 or np.ptp(np.log(x[keep])) == 0:
        return float("nan")
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


def _fmt(x: float, digits: int = 3) -> str:
    return "nan" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


# --------------------------------------------------------------------------------------------- rules
def judge_lipschitz_blowup(table: pd.DataFrame) -> Finding:
    """Rule: at t <= 1e-3 the empirical score's Lipschitz constant grows like sigma_t^-4 (fitted log-log
    slope against sigma_t^2 in [-2.5, -1.5]), exceeds the true score's by >= 100x at the smallest t, and
    never falls below the rigorous two-atom lower bounds (closest pair, and best nearest-neighbour pair)."""
    t = _ok(table)
    small = t[t["t"] <= 1e-3].groupby("t")[["sigma2_t", "lip_empirical", "lip_true"]].mean().reset_index()
    if len(small) < 2:
        return Finding("fewer than 2 times t <= 1e-3", None)
    slope = fit_slope(small["sigma2_t"], small["lip_empirical"])
    first = small.iloc[0]
    ratio = first["lip_empirical"] / first["lip_true"]
    bounds = [c for c in ("bound_empirical", "bound_empirical_neighbours") if c in t.columns]
    bound_ok = bool(all((t["lip_empirical"] >= t[c] * (1 - 1e-9)).all() for c in bounds))
    text = (f"slope of Lip(emp) vs sigma_t^2 = {_fmt(slope)} (theory -2); Lip(emp)/Lip(true) = "
            f"{_fmt(ratio)} at t = {_fmt(first['t'])}; bounds respected in all rows: {bound_ok}")
    if "bound_empirical_neighbours" in t.columns:
        at = t[t["t"] == t["t"].min()]
        tight = float((at["lip_empirical"] / at["bound_empirical_neighbours"]).max())
        loose = float((at["lip_empirical"] / at["bound_empirical"]).max())
        text += f"; measured / bound at smallest t: {_fmt(tight)} (best pair), {_fmt(loose)} (closest pair)"
    holds = (-2.5 <= slope <= -1.5) and ratio >= 100 and bound_ok
    return Finding(text, holds)


def judge_gaussian_lipschitz(table: pd.DataFrame) -> Finding:
    """Rule: for a Gaussian true law, the measured max Hessian norm equals 1/(sigma_t^2 + alpha_t^2
    lambda_min) to 1e-6 relative at every t."""
    t = _ok(table)
    g = t[t["law"] == "gaussian"]
    if g.empty:
        return Finding("no Gaussian rows", None)
    err = float((g["lip_true"] / g["lip_true_analytic"] - 1).abs().max())
    return Finding(f"max relative error {_fmt(err)} over {len(g)} rows", err <= 1e-6)


CLAIMS: list[Claim] = [
    Claim("Empirical score's Lipschitz constant blows up like sigma_t^-4 min|x_i - x_j|^2 as t -> 0",
          "Sec. 5 (smoothness)", "lipschitz_vs_t", judge_lipschitz_blowup),
    Claim("A Gaussian's score has Lipschitz constant 1/(sigma_t^2 + alpha_t^2 lambda_min(Sigma))",
          "Sec. 5 (smoothness)", "lipschitz_vs_t", judge_gaussian_lipschitz),
]


# --------------------------------------------------------------------------------------------- report
def evaluate(preset: str, out=None, claims: list[Claim] | None = None) -> pd.DataFrame:
    """Apply every claim's rule to its module's table; one row per claim."""
    rows = []
    for c in claims or CLAIMS:
        paths = output_paths(c.module, preset, out)
        row = {"claim": c.claim, "where": c.where, "module": c.module, "rule": c.rule,
               "table": str(paths.table), "figure": str(paths.figure)}
        if not paths.table.exists():
            rows.append({**row, "measured": "", "preset": preset, "machine": "", "verdict": NOT_RUN})
            continue
        table = pd.read_csv(paths.table)
        if "preset" in table.columns and not (table["preset"] == preset).all():
            rows.append({**row, "measured": "table is from another preset", "preset": preset, "machine": "",
                         "verdict": NOT_RUN})
            continue
        try:
            finding = c.judge(table)
            verdict = INCONCLUSIVE if finding.holds is None else (HOLDS if finding.holds else FAILS)
            measured = finding.measured
        except Exception as exc:  # a rule that cannot read its table is reported, not hidden
            verdict, measured = INCONCLUSIVE, f"rule failed: {type(exc).__name__}: {exc}"
        machine = ", ".join(sorted(table["device"].dropna().astype(str).unique())) if "device" in table else ""
        rows.append({**row, "measured": measured, "preset": preset, "machine": machine, "verdict": verdict})
    return pd.DataFrame(rows)


def timings(preset: str, out=None) -> pd.DataFrame:
    """Per module: the summed ``runtime_s`` of its table's rows (compute time of the points, without
    start-up and plotting), its machine and row count."""
    from . import modules

    rows = []
    for name in modules():
        path = output_paths(name, preset, out).table
        if path.exists():
            table = pd.read_csv(path)
            machine = ", ".join(sorted(table["device"].dropna().astype(str).unique()))
            rows.append({"module": name, "preset": preset, "machine": machine, "rows": len(table),
                         "runtime_s": round(float(table["runtime_s"].sum()), 1)})
    return pd.DataFrame(rows, columns=["module", "preset", "machine", "rows", "runtime_s"])


def _link(target: str, start: Path) -> str:
    return os.path.relpath(target, start)


def write_report(preset: str, out=None, claims: list[Claim] | None = None) -> Path:
    """Evaluate the claims and write ``REPORT.md`` (next to the figures) and ``REPORT.csv``; returns
    the path of REPORT.md."""
    verdicts = evaluate(preset, out, claims)
    folder = output_paths("REPORT", preset, out).figure.parent
    lines = [f"# memsep: the paper's claims against what was measured ({preset} preset)", "",
             f"Generated {time.strftime('%Y-%m-%d %H:%M')} by `python -m verify all --preset {preset}` from "
             "the tables; every verdict is computed by the rule listed below.", "",
             "| # | claim | where | measured | preset, machine | verdict | figure, table |",
             "|---|---|---|---|---|---|---|"]
    for i, r in verdicts.iterrows():
        links = (f"[png]({_link(r['figure'], folder)}), [csv]({_link(r['table'], folder)})"
                 if r["verdict"] != NOT_RUN else "")
        cell = lambda s: str(s).replace("|", "\\|")
        lines.append(f"| {i + 1} | {cell(r['claim'])} | {r['where']} | {cell(r['measured'])} | "
                     f"{r['preset']}, {cell(r['machine'])} | **{r['verdict']}** | {links} |")
    counts = verdicts["verdict"].value_counts()
    lines += ["", "Summary: " + ", ".join(f"{n} {v}" for v, n in counts.items()) + ".", "", "## Rules", ""]
    lines += [f"{i + 1}. ({r['module']}) {r['rule']}" for i, r in verdicts.iterrows()]
    timing = timings(preset, out)
    lines += ["", "## Compute time", "", "| module | preset | machine | rows | runtime (s) |", "|---|---|---|---|---|"]
    lines += [f"| {r.module} | {r.preset} | {r.machine} | {r.rows} | {r.runtime_s:.1f} |" for r in timing.itertuples()]
    lines += ["", f"Total: {timing['runtime_s'].sum():.0f} s."]
    path = folder / "REPORT.md"
    atomic_write(path, lambda p: Path(p).write_text("\n".join(lines) + "\n"))
    atomic_write(folder / "REPORT.csv", lambda p: verdicts.to_csv(p, index=False))
    return path
