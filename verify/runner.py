"""The sweep runner every verify module uses: the thin orchestration of one module's run.

A module is a grid of points; each point produces one or more table rows. The runner
* prints the resolved configuration and saves it beside the table (``NAME.config.json``, with the
  fingerprints of the code and data; volatile provenance such as the git commit goes to ``NAME.run.json``);
* holds a lock on the output folder for the run, so a second concurrent run is refused (``store.OutputLock``),
  and removes the temporary files of killed runs;
* skips points whose rows are all in the table, well formed, and made by the same configuration, data and
  code (``store.resume``; other code only with ``reuse_stale``); salvages a damaged table and moves aside,
  never deletes, any file whose finished rows it will not keep;
* sends the other points to an executor (``verify.executor``: this process, a local Dask cluster of
  ``workers`` processes, or the cluster at ``scheduler``) and saves each point's rows as it finishes:
  appended to the table (synced; the cost of its own rows, not of the table), the whole table rewritten
  atomically (``verify._io.atomic_write``) in grid order when the columns change and when the run ends
  (``TableWriter``);
* records ``seed``, ``preset``, ``device``, ``runtime_s``, ``point``, ``point_rows`` and the three hashes on
  every row; a failing point becomes a row with an ``error`` column, the sweep carries on and raises at the
  end;
* records an ``overrides`` column (the settings that differ from the preset, as JSON) on runs with overrides;
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
import socket
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import pandas as pd
import torch

from . import store
from ._io import (REPO_ROOT, OutputError, atomic_write, checkpoint_root, figure_stamp, move_aside, notice,
                  remove_temporaries, save_figure)
from .executor import RunContext, Task, device_name, executor as make_executor, resolve_device  # noqa: F401
from .store import RUNNER_COLUMNS, LockedError, TableError  # noqa: F401  (re-exported)

RESULTS = REPO_ROOT / "data" / "results"
FIGURES = REPO_ROOT / "figures"
RUNS = REPO_ROOT / "data" / "runs"       # runs with overrides (git-ignored; verify.preflight.output_folder)
COMMITTED_PRESETS = ("cpu", "paper")   # their tables and figures live in the repository, one folder per preset


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
               plot_only: bool = False, quiet: bool = False, workers: int | None = None,
               scheduler: str | None = None, reuse_stale: bool = False, executor=None, config=None,
               overrides: dict | None = None, progress=None, warn_paper: bool = True) -> pd.DataFrame:
    """Run (or resume) one verify module at a preset; returns its table and writes table, config and
    figure. ``fresh``: reuse nothing computed before (rows, checkpoints, caches); ``reuse_stale``: reuse
    rows and checkpoints made by other code (saying so); ``workers`` / ``scheduler`` / ``executor``: where
    the points run (``verify.executor.executor``); ``config``: the configuration to run (default: the
    preset's); ``overrides``: how it differs from the preset (recorded); ``progress``: ``progress(name,
    total)`` -> reporter (default ``verify.progress.reporter``); ``warn_paper``: say
    ``verify.preflight.paper_warning`` before a paper run on a CPU (the command line says it before any
    module starts, and passes False)."""
    from .progress import reporter

    name = module.NAME
    cfg_obj = preset_config(module, preset) if config is None else config
    config = _as_dict(cfg_obj)
    overrides = dict(overrides or {})
    paths = output_paths(name, preset, out)
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, file=sys.stderr))
    if plot_only:
        return _plot_only(module, preset, config, cfg_obj, paths, say)
    requested = device or "auto"
    here = resolve_device(requested)
    points = list(module.grid(cfg_obj))
    keys = [point_key(p) for p in points]
    if len(set(keys)) < len(keys):
        raise ValueError(f"{name}: the grid has repeated points")
    order = {k: i for i, k in enumerate(keys)}

    with store.OutputLock(paths.table.parent):
        started = time.time()
        _remove_temporaries(paths)
        say(f"[verify] {name} --preset {preset} on {here}"
            + (f" with {json.dumps(overrides)}" if overrides else "") + f"\n{json.dumps(config, indent=2, default=str)}")
        code = store.code_fingerprint(module)
        data = store.data_fingerprint(module, cfg_obj)
        expected = store.Expected(preset, store.config_hash(name, preset, config), data, code.hash, reuse_stale,
                                  (code.previous,) if code.previous and code.previous != code.hash else ())
        rows = _resumable_rows(module, preset, config, paths, keys, expected, fresh)
        _write_config(paths, name, preset, config, expected, code, overrides)

        todo = [(p, k) for p, k in zip(points, keys) if k not in rows]
        if len(todo) < len(points):
            say(f"[verify] resuming: {len(points) - len(todo)} of {len(points)} points already done")
        errors = []
        writer = TableWriter(paths.table, rows, order)
        with (make_executor(workers, scheduler, quiet=quiet) if executor is None else _given(executor)) as ex:
            _write_run_record(paths, here, ex, started)
            if warn_paper and preset == "paper" and getattr(ex, "local", False):   # a cluster has its own devices
                from .preflight import paper_warning

                warning = paper_warning([name], here, ex.workers)
                if warning:
                    say(warning)
            ctx = RunContext(preset, expected.config_hash, data, code.hash, reuse_stale,
                             not_before=started if fresh else None, threads=ex.threads())
            tasks = [Task(module, p, k, cfg_obj, requested, ctx) for p, k in todo]
            first_alone = bool(getattr(module, "SHARED_FIRST_POINT", False))
            bar = (progress or (lambda n, total: reporter(n, total, quiet=quiet)))(name, len(tasks))
            try:
                for result in ex.run(tasks, first_alone=first_alone):
                    if overrides:
                        for r in result.rows:
                            r["overrides"] = json.dumps(overrides, sort_keys=True)
                    if result.error is not None:
                        errors.append((result.key, result.error))
                    writer.add(result.key, result.rows)
                    bar.update(1)
            finally:
                bar.close()
                writer.close()

    table = store.frame([r for rs in rows.values() for r in rs], order)
    if errors:
        for key, tb in errors:
            say(f"[verify] point {key} failed:\n{tb}")
        raise SweepError(f"{name}: {len(errors)} of {len(points)} grid points failed; see the 'error' "
                         f"column of {paths.table}")
    if todo or figure_stamp(paths.figure) != _stamp(module, paths.table):
        _draw(module, table, cfg_obj, paths)
        say(f"[verify] wrote {paths.table} and {paths.figure}")
    else:
        say(f"[verify] nothing to compute: {paths.table} and {paths.figure} are current")
    return table


class _given:
    """An executor made by the caller (kept open across modules by ``verify all``)."""

    def __init__(self, ex):
        self.ex = ex

    def __enter__(self):
        return self.ex

    def __exit__(self, *exc):
        return False


def _remove_temporaries(paths: Paths) -> None:
    """The temporary files that killed runs left beside this module's outputs (no live writer can own them:
    we hold the folder's lock) and under $MEMSEP_CHECKPOINTS (those of dead processes of this host)."""
    removed = remove_temporaries(paths.table.parent, {paths.table.name, paths.config.name, _run_record(paths).name},
                                 unknown_age_s=None)
    removed += remove_temporaries(paths.figure.parent, {paths.figure.name}, unknown_age_s=None)
    removed += remove_temporaries(checkpoint_root(), recursive=True)
    if removed:
        notice(f"removed {len(removed)} temporary file(s) left by killed runs: {', '.join(str(p) for p in removed[:3])}"
               + (" ..." if len(removed) > 3 else ""))


def _resumable_rows(module, preset, config, paths: Paths, keys, expected: store.Expected, fresh: bool) -> dict:
    """point key -> rows of the saved table that this run keeps (``store.resume``), after salvaging a damaged
    table; the file is moved aside first if finished rows of it are not kept."""
    read = store.read_table(paths.table)
    saved = store.read_config(paths.config)
    meta = {"module": module.NAME, "preset": preset, "config": config}
    moved = None
    if read.damage is not None:
        moved = move_aside(paths.table, "damaged")
        kept = 0 if read.frame is None else len(read.frame)
        notice(f"table {paths.table} is damaged ({read.damage}): moved to {moved}; its {kept} readable row(s) "
               "are checked for reuse, the rest recomputed")
    frame = store.legacy_resume(read.frame, keys, expected, saved, meta)
    res = store.resume(None if fresh else frame, keys, expected)
    finished = 0 if frame is None else int(frame["error"].isna().sum() if "error" in frame else len(frame))
    dropped = finished if fresh else res.dropped_rows
    if res.counts and not fresh:
        why = ", ".join(f"{n} {reason}" for reason, n in res.counts.items())
        hint = "; rerun with --reuse-stale to keep rows of other code" if "made by other code" in res.counts else ""
        notice(f"{paths.table}: points recomputed: {why}{hint}")
    if res.stale:
        codes = sorted({str(r.get("code_hash")) for rs in res.stale.values() for r in rs})
        notice(f"reusing {len(res.stale)} point(s) made by other code (code {', '.join(codes)}; now "
               f"{expected.code_hash}) because of --reuse-stale")
    if dropped and moved is None and paths.table.exists():
        moved = move_aside(paths.table, "fresh" if fresh else "superseded")
        notice(f"{dropped} finished row(s) of {paths.table} are not reused: the old table is kept as {moved}")
    if res.restamped:
        notice(f"{paths.table}: {res.restamped} point(s) made by this same code carry its hash under the older "
               "fingerprint (the whole module file): re-stamped with the current one, not recomputed")
    if (moved is not None or res.restamped) and res.done:
        _save(dict(res.done), {k: i for i, k in enumerate(keys)}, paths.table)
    return dict(res.done)


def _write_config(paths: Paths, name, preset, config, expected: store.Expected, code: store.CodeFingerprint,
                  overrides: dict | None = None):
    """NAME.config.json: only values that change when the configuration, data or code do (no times, no
    paths), so a committed one does not churn; the overrides, if any."""
    store.write_json(paths.config, {
        "module": name, "preset": preset, "config": config, **({"overrides": overrides} if overrides else {}),
        "config_hash": expected.config_hash,
        "data_hash": expected.data_hash,
        "code": {"hash": code.hash, "theory": code.theory, "module": code.module, "files": list(code.files)}})


def _run_record(paths: Paths) -> Path:
    return paths.config.with_name(paths.config.name.replace(".config.json", ".run.json"))


def _write_run_record(paths: Paths, device: str, ex, started: float) -> None:
    """NAME.run.json (git-ignored): who ran it, when, where, from which commit."""
    store.write_json(_run_record(paths), {
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)), "host": socket.gethostname(),
        "git": store.git_state(), "device": device, "device_name": device_name(device),
        "executor": ex.description, "torch": torch.__version__, "python": platform.python_version(),
        "command": sys.argv})


def _plot_only(module, preset, config, cfg_obj, paths: Paths, say) -> pd.DataFrame:
    """Redraw the figure from the saved table; a missing table is an error, and a damaged or incomplete one
    is drawn but raises ``SweepError`` after saying what is missing."""
    read = store.read_table(paths.table)
    if read.frame is None or not len(read.frame):
        raise TableError(f"no table to draw at {paths.table}" + (f" ({read.damage})" if read.damage else "")
                         + "; run the module first")
    keys = [point_key(p) for p in module.grid(cfg_obj)]
    expected = store.Expected(preset, store.config_hash(module.NAME, preset, config),
                              store.data_fingerprint(module, cfg_obj), store.code_fingerprint(module).hash, True)
    frame = store.legacy_resume(read.frame, keys, expected, store.read_config(paths.config),
                                {"module": module.NAME, "preset": preset, "config": config})
    res = store.resume(frame, keys, expected)
    _draw(module, read.frame, cfg_obj, paths)
    if read.damage or len(res.done) < len(keys):
        why = [read.damage] if read.damage else []
        why += [f"{len(res.done)} of {len(keys)} points complete"] + [f"{n} {r}" for r, n in res.counts.items()]
        raise SweepError(f"{module.NAME}: drew {paths.figure} from an incomplete table {paths.table} "
                         f"({'; '.join(why)})")
    return read.frame


class TableWriter:
    """Saves a sweep's table as its points finish. A finished point's rows are appended to the file and
    synced to disk: a cost of its own rows, where rewriting the whole table each time grew with the table
    (1 s per point at 13,000 rows). The whole table is rewritten atomically, rows in grid order, when a point
    brings a column the file lacks, when the file is not there, and at ``close`` if anything was appended,
    so a finished run's table is the one a rewrite after every point would give, byte for byte. A run
    killed mid-append leaves a last line cut short (or a point with fewer than its ``point_rows`` rows):
    ``store.read_table`` salvages the rest and ``store.resume`` recomputes that point."""

    def __init__(self, path: Path, rows: dict, order: dict):
        self.path, self.rows, self.order = Path(path), rows, order
        self.header: list | None = None
        self.appended = False

    def add(self, key: str, new_rows: list[dict]) -> None:
        self.rows[key] = new_rows
        columns = {c for r in new_rows for c in r}
        if self.header is None or not columns <= set(self.header) or not self.path.exists():
            self._rewrite()
            return
        try:
            with open(self.path, "a", newline="") as fh:
                pd.DataFrame(new_rows, columns=self.header).to_csv(fh, header=False, index=False)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise OutputError(exc.errno, f"could not write {self.path}: {exc.strerror or exc}; stopped: the "
                                         "rows saved before are kept") from exc
        self.appended = True

    def close(self) -> None:
        if self.appended:
            self._rewrite()

    def _rewrite(self) -> None:
        self.header = _save(self.rows, self.order, self.path)
        self.appended = False


def _save(rows: dict, order: dict, path: Path) -> list:
    """Write the whole table atomically, rows in grid order; returns its columns."""
    table = store.frame([r for rs in rows.values() for r in rs], order)
    try:
        store.write_table(table, path)
    except OutputError as exc:
        saved = store.read_table(path).frame
        n = 0 if saved is None else len(saved)
        raise OutputError(exc.errno, f"{exc.strerror}; stopped: the table on disk keeps the {n} row(s) "
                                     "saved before") from exc
    return list(table.columns)


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


def _draw(module: ModuleType, table: pd.DataFrame, cfg, paths: Paths) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = module.plot(table, cfg)
    try:
        save_figure(fig, paths.figure, stamp=_stamp(module, paths.table) or None)
    finally:
        plt.close(fig)
