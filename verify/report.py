"""The claims-vs-measured report: one row per claim (the registry ``verify.claims()``) per preset whose tables
exist, every verdict computed from the tables by the claim's rule, with its statistic, interval, sensitivity
to the rule's constants and the confounds it found. Nothing is typed in; nothing time-dependent or absolute
is written, so rerunning on the same tables gives the same files (figures/REPORT.md and REPORT.csv)."""

from __future__ import annotations

import hashlib
import importlib
import inspect
import os
from pathlib import Path

import pandas as pd

from . import claims as registry
from ._io import REPO_ROOT, atomic_write
from .runner import COMMITTED_PRESETS, FIGURES, output_paths, smoke_dir
from .stats import INTERVAL_KINDS
from .verdicts import FAILS, HOLDS, INCONCLUSIVE, NOT_RUN, Claim, Finding, sensitivity

__all__ = ["evaluate", "render_report", "write_report", "timings", "completeness", "earlier_code", "HOLDS", "FAILS", "INCONCLUSIVE", "NOT_RUN"]

COLUMNS = ["preset", "key", "module", "claim", "where", "paper_range", "range_tested", "statistic", "value", "lo",
           "hi", "interval", "verdict", "fragile", "sensitivity", "confounds", "measured", "rule", "constants",
           "theory", "theory_file", "table", "figure", "machine"]


def resolve(dotted: str):
    """The object named by a dotted path such as ``theory.lossgap.loss_gap``."""
    parts = dotted.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


def theory_file(dotted: str) -> Path:
    return Path(inspect.getsourcefile(resolve(dotted))).resolve()


def _rel(path: Path, start: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), Path(start).resolve())).as_posix()


def _constants(claim: Claim) -> str:
    return "; ".join(f"{c.name} = {c.default:g}: {c.meaning}" for c in claim.constants) or "none"


def evaluate(preset: str, out=None, claims: list[Claim] | None = None) -> pd.DataFrame:
    """Apply every claim's rule to its module's table at ``preset``; one row per claim (COLUMNS). Paths are
    relative to the repository root."""
    rows = []
    for c in claims if claims is not None else registry():
        paths = output_paths(c.module, preset, out)
        row = {"preset": preset, "key": c.key, "module": c.module, "claim": c.statement, "where": c.where,
               "paper_range": c.paper_range, "rule": c.rule, "constants": _constants(c), "theory": c.theory,
               "theory_file": _rel(theory_file(c.theory), REPO_ROOT), "table": _rel(paths.table, REPO_ROOT),
               "figure": _rel(paths.figure, REPO_ROOT), "range_tested": "", "statistic": "", "value": float("nan"),
               "lo": float("nan"), "hi": float("nan"), "interval": "none", "fragile": False, "sensitivity": "",
               "confounds": "", "measured": "", "machine": "", "summary": ""}
        if not paths.table.exists():
            rows.append({**row, "verdict": str(NOT_RUN), "measured": "no table"})
            continue
        table = pd.read_csv(paths.table, low_memory=False)
        row["machine"] = (", ".join(sorted(table["device"].dropna().astype(str).unique()))
                          if "device" in table.columns else "")
        if "preset" in table.columns and not (table["preset"] == preset).all():
            rows.append({**row, "verdict": str(NOT_RUN), "measured": "table is from another preset"})
            continue
        done, total = completeness(c.module, preset, table)
        if done < total:                   # a run still in progress (or cut short): no verdict from part of a grid
            rows.append({**row, "verdict": str(INCONCLUSIVE),
                         "measured": f"table incomplete: {done} of {total} grid points finished",
                         "confounds": "a partial grid is not judged: rerun the module to finish it (finished "
                                      "points are kept)"})
            continue
        provenance = earlier_code(c.module, table)
        try:
            f: Finding = c.evaluate(table)
            sens = sensitivity(c, table, f)
        except Exception as exc:  # a rule that cannot read its table is reported, not hidden
            rows.append({**row, "verdict": str(INCONCLUSIVE), "measured": f"rule failed: {type(exc).__name__}: {exc}",
                         "confounds": "the rule could not read its table"})
            continue
        rows.append({**row, "range_tested": f.range_tested, "statistic": f.statistic, "value": f.value, "lo": f.lo,
                     "hi": f.hi, "interval": f.interval, "verdict": str(f.verdict), "fragile": sens.fragile,
                     "sensitivity": sens.describe(), "confounds": "; ".join(([provenance] if provenance else [])
                                                                            + list(f.confounds)), "measured": f.text,
                     "summary": f.summary})
    frame = pd.DataFrame(rows)
    return frame[[c for c in COLUMNS if c in frame.columns] + [c for c in frame.columns if c not in COLUMNS]]


def earlier_code(name: str, table: pd.DataFrame) -> str:
    """A note when ``table``'s rows carry code hashes other than the current code's fingerprint (a table kept
    from before a change to theory/ or to the module's row code), else "". The verdict is still given: the
    note says which code made it, so a reader can rerun the module to judge the current code."""
    from . import get, store

    if "code_hash" not in table.columns:
        return ""
    code = store.code_fingerprint(get(name))
    other = sorted(set(table["code_hash"].dropna().astype(str)) - {code.hash, code.previous})
    if not other:
        return ""
    return (f"made by earlier code (code {', '.join(other)}; the current code is {code.hash}): rerun "
            f"`python -m verify {name}` to judge the current code")


def completeness(name: str, preset: str, table: pd.DataFrame) -> tuple[int, int]:
    """(grid points of the module's ``preset`` present in ``table``, grid points in all). A table made with
    other settings (``--set``; its rows carry another ``config_hash``) or by older code without a ``point``
    column is not compared with the preset's grid: it counts as complete."""
    from . import get, store
    from .runner import point_key, preset_config, resolved_config

    module = get(name)
    keys = {point_key(p) for p in module.grid(preset_config(module, preset))}
    if "point" not in table.columns:
        return len(keys), len(keys)
    if "config_hash" in table.columns:
        mine = table["config_hash"].astype(str) == store.config_hash(name, preset, resolved_config(module, preset))
        if not mine.any():
            return len(keys), len(keys)
        table = table[mine]
    return len(keys & set(table["point"].astype(str))), len(keys)


def timings(preset: str, out=None) -> pd.DataFrame:
    """Per module: the summed ``runtime_s`` of its table's rows (compute time of the points, without
    start-up and plotting), its machine and row count."""
    from . import modules

    rows = []
    for name in modules():
        path = output_paths(name, preset, out).table
        if path.exists():
            table = pd.read_csv(path, low_memory=False)
            machine = ", ".join(sorted(table["device"].dropna().astype(str).unique()))
            rows.append({"module": name, "preset": preset, "machine": machine, "rows": len(table),
                         "runtime_s": round(float(table["runtime_s"].sum()), 1)})
    return pd.DataFrame(rows, columns=["module", "preset", "machine", "rows", "runtime_s"])


def tables_digest(preset: str, out=None) -> tuple[int, str]:
    """(number of tables, first 12 hex digits of the sha256 of their names and contents) at ``preset``."""
    from . import modules

    h, k = hashlib.sha256(), 0
    for name in sorted(modules()):
        path = output_paths(name, preset, out).table
        if path.exists():
            h.update(name.encode() + b"\0" + path.read_bytes())
            k += 1
    return k, h.hexdigest()[:12]


def _cell(s) -> str:
    return str(s).replace("|", "\\|").replace("\n", " ")


def _interval_text(r) -> str:
    if r["interval"] == "none" or not r.get("summary"):
        return r.get("summary") or ""
    return r["summary"]


def _preset_section(preset: str, verdicts: pd.DataFrame, folder: Path, out) -> list[str]:
    machines = ", ".join(sorted({m for m in verdicts["machine"] if m})) or "no table"
    n, digest = tables_digest(preset, out)
    counts = verdicts["verdict"].value_counts()
    lines = [f"## {preset} preset", "",
             f"Measured on: {machines}. Inputs: {n} tables under `{_rel(output_paths('x', preset, out).table.parent, REPO_ROOT)}/` "
             f"(sha256 of their contents: `{digest}`).",
             ("The cpu preset is a small-scale check on a 2-core CPU: compare the range tested with the paper's range "
              "in every row; no cpu row is a measurement at the paper's scale." if preset == "cpu" else ""), "",
             "Summary: " + ", ".join(f"{k} {v}" for v, k in counts.items()) + ".", "",
             "| # | claim (paper) | paper's range | range tested | statistic [interval] (kind) | verdict | sensitivity "
             "| confounds | links |", "|---|---|---|---|---|---|---|---|---|"]
    for i, r in verdicts.reset_index(drop=True).iterrows():
        links = ""
        if r["verdict"] != str(NOT_RUN):
            links = (f"[table]({_rel(REPO_ROOT / r['table'], folder)}), [figure]({_rel(REPO_ROOT / r['figure'], folder)}), ")
        links += f"[module]({_rel(REPO_ROOT / 'verify' / (r['module'] + '.py'), folder)}), " \
                 f"[`{r['theory']}`]({_rel(REPO_ROOT / r['theory_file'], folder)})"
        stat = _interval_text(r) + (f" ({r['interval']})" if r["interval"] not in ("none",) and r.get("summary") else "")
        lines.append(f"| {i + 1} | **{_cell(r['key'])}**: {_cell(r['claim'])} ({_cell(r['where'])}) | {_cell(r['paper_range'])} "
                     f"| {_cell(r['range_tested'])} | {_cell(stat)} | **{r['verdict']}** | {_cell(r['sensitivity'])} "
                     f"| {_cell(r['confounds']) or 'none found'} | {links} |")
    lines += ["", f"### What each rule measured ({preset})", ""]
    lines += [f"{i + 1}. **{r['key']}** ({r['module']}): {r['measured']}" for i, r in verdicts.reset_index(drop=True).iterrows()]
    timing = timings(preset, out)
    if len(timing):
        lines += ["", f"### Compute time ({preset})", "", "| module | machine | rows | runtime (s) |", "|---|---|---|---|"]
        lines += [f"| {r.module} | {r.machine} | {r.rows} | {r.runtime_s:.1f} |" for r in timing.itertuples()]
        lines += ["", f"Total: {timing['runtime_s'].sum():.0f} s (the summed `runtime_s` of the rows)."]
    return lines + [""]


def _preamble(used_kinds: list[str], presets: list[str], missing: list[str], committed: bool = True) -> list[str]:
    made = ("Produced by `python -m verify report` (also the last step of `python -m verify all --preset cpu`) from "
            "the committed tables under `data/results/PRESET/` (their digests are in each preset's section)"
            if committed else
            f"Produced by `python -m verify report --preset {presets[0] if presets else 'PRESET'} --out FOLDER` (also "
            "the last step of `python -m verify all --out FOLDER`) from the tables in this folder")
    lines = ["# memsep: the paper's claims against what was measured", "",
             made + "; every verdict is computed by its claim's rule (see *Rules and constants*). The file has no "
             "timestamps or absolute paths: rerunning it on the same tables and code gives the same file.", "",
             "Presets with tables: " + (", ".join(presets) or "none")
             + ("; without tables (not run): " + ", ".join(missing) if missing else "") + ".", "",
             "## How to read a row", "",
             "- **verdict**: *holds* (the interval lies on the claim's side of its boundary), *does not hold* (it "
             "lies on the negation's side), *inconclusive* (the interval straddles the boundary, or the table "
             "cannot compute the statistic: the confounds say why), *not run at this preset* (no table).",
             "- **statistic [interval] (kind)**: the quantity the rule decides on, its value and its interval "
             "[lo, hi]; the kind says what the interval is (below). This report uses no plus-minus sign: every uncertainty is an "
             "interval of a named kind.",
             "- **sensitivity**: the rule rerun with each declared constant halved and doubled, one at a time; "
             "*fragile* lists every change that flips the verdict.",
             "- **confounds**: what the rule found that limits the verdict: failed fits, censored points, sets it "
             "could not judge, missing baseline columns. A point named there is never counted as support.",
             "- **paper's range / range tested**: the scale the paper states beside the scale of this table.", "",
             "Interval kinds used:", ""]
    lines += [f"- `{k}`: {INTERVAL_KINDS[k]}" for k in used_kinds]
    return lines + [""]


def render_report(preset: str | None = None, out=None, claims: list[Claim] | None = None):
    """(folder, REPORT.md text, REPORT.csv frame) as ``write_report`` would write them."""
    claims = claims if claims is not None else registry()
    if out is None and preset in (None, *COMMITTED_PRESETS):
        folder, presets = FIGURES, [p for p in COMMITTED_PRESETS if tables_digest(p)[0] > 0]
        missing = [p for p in COMMITTED_PRESETS if p not in presets]
    else:
        folder = Path(out) if out is not None else smoke_dir()
        presets, missing = [preset or "smoke"], []
    frames = {p: evaluate(p, out, claims) for p in presets}
    allv = pd.concat(frames.values(), ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    used = [k for k in INTERVAL_KINDS if k in set(allv.get("interval", []))]
    lines = _preamble(used, presets, missing, committed=folder == FIGURES)
    for p in presets:
        lines += _preset_section(p, frames[p], folder, out)
    lines += ["## Rules and constants", ""]
    for c in claims:
        lines += [f"- **{c.key}** ({c.module}; {c.where}; rests on `{c.theory}`): {c.rule}",
                  f"  Constants: {_constants(c)}."]
    csv = allv.drop(columns=[c for c in ("summary",) if c in allv.columns])
    return folder, "\n".join(lines) + "\n", csv


def write_report(preset: str | None = None, out=None, claims: list[Claim] | None = None) -> Path:
    """Write REPORT.md and REPORT.csv; returns the path of REPORT.md.

    Without ``out`` and for a committed preset (or None): one report in figures/ covering every committed
    preset whose tables exist. With ``out`` (or for smoke): a report in that folder for ``preset``."""
    folder, text, csv = render_report(preset, out, claims)
    path = folder / "REPORT.md"
    atomic_write(path, lambda p: Path(p).write_text(text))
    atomic_write(folder / "REPORT.csv", lambda p: csv.to_csv(p, index=False))
    return path
