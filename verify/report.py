"""The claims-vs-measured report: one row per claim of the paper (verify.claims), its verdict computed from
the tables. Verdicts are never typed in: ``write_report`` reads the CSV files and applies each claim's
rule; a missing table (or one from another preset) gives "not run at this preset"."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pandas as pd

from .claims import CLAIMS, Claim
from ._io import atomic_write
from .runner import output_paths

HOLDS, FAILS, NOT_RUN, INCONCLUSIVE = "holds", "does not hold", "not run at this preset", "inconclusive"


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
