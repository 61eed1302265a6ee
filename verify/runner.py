"""The sweep runner every verify module uses.

A module is a grid of points; each point produces one or more table rows. The runner
* prints the resolved configuration and saves it beside the table (``NAME.config.json``: module, preset,
  configuration, the overrides if any, and the device and versions of the run that computed the rows; no
  timestamps, and the file is left as it is when a rerun computes nothing);
* skips points whose rows are already in the table (same configuration), so a killed sweep resumes;
* writes the whole table atomically (``verify._io.atomic_write``) after every finished point;
* records ``seed``, ``preset``, ``device``, ``runtime_s`` and a ``point`` key on every row, and an
  ``overrides`` column (the settings that differ from the preset, as JSON) on runs with overrides;
* turns a failing point into a row with an ``error`` column, carries on, and raises at the end;
* draws the figure from the saved table only, when the table or the module changed or the figure is
  missing (the PNG carries a stamp of both: ``verify._io.save_figure``); ``plot_only`` redraws it without
  computing anything;
* reports progress per finished point (``verify.progress``: a bar in a terminal, lines with ETA otherwise).

Hooks for callers (the command line, ``verify.run``): ``config`` (an already resolved configuration, e.g.
the preset with ``--set`` applied; ``verify.config``), ``overrides`` (what differs from the preset, recorded
in the config file and the rows) and ``progress`` (a factory ``progress(name, total)`` returning an object
with ``update(n)`` and ``close()``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from types import ModuleType

import pandas as pd
import torch

from ._io import REPO_ROOT, atomic_write, figure_stamp, save_figure

RESULTS = REPO_ROOT / "data" / "results"
FIGURES = REPO_ROOT / "figures"
RUNS = REPO_ROOT / "data" / "runs"       # runs with overrides (git-ignored; verify.preflight.output_folder)
COMMITTED_PRESETS = ("cpu", "paper")   # their tables and figures live in the repository, one folder per preset
RUNNER_COLUMNS = ["seed", "preset", "device", "runtime_s", "point", "overrides"]


class SweepError(RuntimeError):
    """Raised after a sweep in which some grid points failed (their rows carry the error)."""


@dataclasses.dataclass(frozen=True)
class Paths:
    table: Path
    figure: Path
    config: Path


def output_paths(name: str, preset: str, out: str | os.PathLike | None) -> Paths:
    """Where a module's table, figure and configuration go. Default, for the committed presets (cpu, paper):
    data/results/PRESET/NAME.csv (and NAME.config.json) and figures/PRESET/NAME.png in the repository; any
    other preset (smoke) goes to this process's fresh temporary folder (``smoke_dir``). With ``out``,
    everything goes into that folder."""
    if out is None and preset not in COMMITTED_PRESETS:
        out = smoke_dir()
    if out is not None:
        base = Path(out)
        return Paths(base / f"{name}.csv", base / f"{name}.png", base / f"{name}.config.json")
    return Paths(RESULTS / preset / f"{name}.csv", FIGURES / preset / f"{name}.png",
                 RESULTS / preset / f"{name}.config.json")


_SMOKE_DIR: Path | None = None


def smoke_dir() -> Path:
    """A fresh temporary folder for this process's uncommitted (smoke) output, made on first use."""
    global _SMOKE_DIR
    if _SMOKE_DIR is None:
        _SMOKE_DIR = Path(tempfile.mkdtemp(prefix="memsep-smoke-"))
    return _SMOKE_DIR


def point_key(point: dict) -> str:
    """A stable, readable key for a grid point: ``a=1|b=0.01|seed=0`` (keys sorted)."""
    plain = {k: (v.item() if hasattr(v, "item") else v) for k, v in point.items()}
    return "|".join(f"{k}={plain[k]!r}" for k in sorted(plain))


def resolve_device(device: str | None) -> str:
    """'auto' -> cuda if available, else cpu; other names checked (verify.preflight.check_device)."""
    from .preflight import check_device

    return check_device(device)


def device_name(device: str) -> str:
    """A human description of the device for the tables: ``cpu (2 cores)`` or the GPU's name."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({os.cpu_count()} cores)"


def preset_config(module: ModuleType, preset: str):
    """The module's configuration object at ``preset`` (a ValueError naming the presets if unknown)."""
    presets = module.PRESETS
    if preset not in presets:
        raise ValueError(f"unknown preset {preset!r} for {module.NAME}; choose from {sorted(presets)}")
    return presets[preset]


def _as_dict(cfg) -> dict:
    return dataclasses.asdict(cfg) if dataclasses.is_dataclass(cfg) else dict(cfg)


def resolved_config(module: ModuleType, preset: str) -> dict:
    return _as_dict(preset_config(module, preset))


def run_module(module: ModuleType, preset: str, *, out=None, device: str | None = None, fresh: bool = False,
               plot_only: bool = False, quiet: bool = False, config=None, overrides: dict | None = None,
               progress=None) -> pd.DataFrame:
    """Run (or resume) one verify module at a preset; returns its table and writes table, config and
    figure. ``config``: the configuration to run (default: the preset's); ``overrides``: how it differs from
    the preset (recorded); ``progress``: ``progress(name, total)`` -> reporter (default verify.progress)."""
    from .progress import reporter

    name = module.NAME
    cfg_obj = preset_config(module, preset) if config is None else config
    config = _as_dict(cfg_obj)
    overrides = dict(overrides or {})
    device = resolve_device(device)
    paths = output_paths(name, preset, out)
    meta = {"module": name, "preset": preset, "config": config, **({"overrides": overrides} if overrides else {})}
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))

    if plot_only:
        table = pd.read_csv(paths.table)
        _draw(module, table, cfg_obj, paths)
        return table

    say(f"[verify] {name} --preset {preset} on {device}"
        + (f" with {json.dumps(overrides)}" if overrides else "") + f"\n{json.dumps(config, indent=2, default=str)}")
    rows = [] if fresh else _finished_rows(paths, meta, say)
    points = list(module.grid(cfg_obj))
    done = {r["point"] for r in rows}
    todo = [p for p in points if point_key(p) not in done]
    if len(todo) < len(points):
        say(f"[verify] resuming: {len(points) - len(todo)} of {len(points)} points already done")
    if todo or not _same_meta(paths.config, meta):
        info = {**meta, "device": device, "device_name": device_name(device), "torch": torch.__version__,
                "python": platform.python_version()}
        atomic_write(paths.config, lambda p: Path(p).write_text(json.dumps(info, indent=2, default=str)))
    else:
        _drop_volatile_keys(paths.config)
    errors = []
    bar = (progress or (lambda n, total: reporter(n, total, quiet=quiet)))(name, len(todo))
    try:
        for point in todo:
            rows += _run_point(module, point, cfg_obj, preset, device, errors, overrides)
            _save(rows, paths.table)
            bar.update(1)
    finally:
        bar.close()

    table = _frame(rows)
    if errors:
        for point, tb in errors:
            say(f"[verify] point {point_key(point)} failed:\n{tb}")
        raise SweepError(f"{name}: {len(errors)} of {len(points)} grid points failed; see the 'error' "
                         f"column of {paths.table}")
    if todo or figure_stamp(paths.figure) != _stamp(module, paths.table):
        _draw(module, table, cfg_obj, paths)
        say(f"[verify] wrote {paths.table} and {paths.figure}")
    else:
        say(f"[verify] nothing to compute: {paths.table} and {paths.figure} are current")
    return table


def _same_meta(path: Path, meta: dict) -> bool:
    """Whether the saved configuration file has the same module, preset, configuration and overrides."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    keys = ("module", "preset", "config", "overrides")
    return isinstance(saved, dict) and {k: saved.get(k) for k in keys} == {
        k: v for k, v in json.loads(json.dumps({k: meta.get(k) for k in keys}, default=str)).items()}


VOLATILE_KEYS = ("started",)     # written by older runners: dropped (once) from a config file that has one


def _drop_volatile_keys(path: Path) -> None:
    """Rewrite a saved configuration without its volatile entries (the rest, the provenance of the rows, kept)."""
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError):
        return
    if isinstance(saved, dict) and any(k in saved for k in VOLATILE_KEYS):
        kept = {k: v for k, v in saved.items() if k not in VOLATILE_KEYS}
        atomic_write(path, lambda p: Path(p).write_text(json.dumps(kept, indent=2, default=str)))


def _stamp(module: ModuleType, table_path: Path) -> str:
    """A hash of the table's bytes and the module's source: a figure carrying it is current."""
    h = hashlib.sha256()
    try:
        h.update(Path(table_path).read_bytes())
    except OSError:
        return ""
    try:
        h.update(Path(inspect.getsourcefile(module)).read_bytes())
    except (OSError, TypeError):          # a module without a source file: always redraw
        return ""
    return h.hexdigest()[:16]


def _finished_rows(paths: Paths, meta: dict, say) -> list[dict]:
    """The error-free rows of a saved table made with the same module, preset and configuration."""
    if not (paths.table.exists() and paths.config.exists()):
        return []
    if not _same_meta(paths.config, meta):
        say(f"[verify] {paths.table} was made with another configuration: starting afresh")
        return []
    old = pd.read_csv(paths.table)
    if "error" in old.columns:
        old = old[old["error"].isna()].drop(columns="error")
    return old.to_dict("records")


def _run_point(module: ModuleType, point: dict, cfg, preset: str, device: str, errors: list,
               overrides: dict | None = None) -> list[dict]:
    """The rows of one grid point with the runner's columns; a failure becomes one row with an ``error``
    column (and is appended to ``errors``)."""
    start = time.perf_counter()
    try:
        produced = module.run_point(dict(point), cfg, device)
        produced = [produced] if isinstance(produced, dict) else list(produced)
        error = None
    except Exception as exc:  # recorded as a row and raised at the end, never swallowed
        produced, error = [{}], f"{type(exc).__name__}: {exc}"
        errors.append((point, traceback.format_exc()))
    runtime = time.perf_counter() - start
    rows = []
    for row in produced:
        full = {**point, **row, "preset": preset, "device": device_name(device),
                "runtime_s": round(runtime / len(produced), 4), "point": point_key(point)}
        full.setdefault("seed", point.get("seed"))
        if overrides:
            full["overrides"] = json.dumps(overrides, sort_keys=True)
        if error is not None:
            full["error"] = error
        rows.append(full)
    return rows


def _frame(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    front = [c for c in table.columns if c not in RUNNER_COLUMNS]
    return table[front + [c for c in RUNNER_COLUMNS if c in table.columns]]


def _save(rows: list[dict], path: Path) -> None:
    table = _frame(rows)
    atomic_write(path, lambda p: table.to_csv(p, index=False))


def _draw(module: ModuleType, table: pd.DataFrame, cfg, paths: Paths) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = module.plot(table, cfg)
    try:
        save_figure(fig, paths.figure, stamp=_stamp(module, paths.table) or None)
    finally:
        plt.close(fig)
