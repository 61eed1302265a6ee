"""Checks made before a run computes anything, and where its files go.

``prepare`` turns what was asked for (a module name, a preset, settings, an output folder, a device) into a
:class:`Plan`, or raises a :class:`verify.config.SetupError` with a one-line message: an unknown module (with
the closest name), a device torch does not know or this machine cannot use, an output folder that cannot be
written, ``--plot-only`` without a table, a data or Inception file that is missing (where to put it and the
variable to set), an unknown setting or a bad value, a grid that cannot be built from the settings.

Output folders (``output_folder``): ``out`` if given; else a fresh temporary folder for smoke (one per run);
else, for a run whose settings differ from its preset, ``data/runs/NAME-PRESET-<hash of the settings>/`` in
the repository (git-ignored: such a run never writes over the committed tables, and rerunning the same
settings resumes it); else the committed folders data/results/PRESET/ and figures/PRESET/.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import tempfile
from pathlib import Path
from types import ModuleType

from . import catalog, get
from .config import MissingInputError, SetupError, parse_sets, resolve


class OneLineParser(argparse.ArgumentParser):
    """argparse whose errors are one-line SetupErrors (printed by verify.__main__.main, exit status 2)."""

    def error(self, message):
        raise SetupError(f"{message} (see {self.prog} --help)")


@dataclasses.dataclass
class Plan:
    module: ModuleType
    preset: str
    config: object          # the resolved configuration (the preset with the settings applied)
    overrides: dict         # the settings that differ from the preset (dotted keys)
    out: Path | None        # None: the committed folders
    device: str
    paths: object           # verify.runner.Paths


# --------------------------------------------------------------------------------------------- device
def check_device(device: str | None) -> str:
    """'auto' -> 'cuda' where a GPU is visible, else 'cpu'; 'cpu', 'cuda', 'cuda:N' checked against this
    machine; anything else refused with a one-line SetupError."""
    import torch

    if device in (None, "", "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    text = str(device).strip()
    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        lowered = text.lower()
        hint = "cuda" if lowered in ("gpu", "nvidia") or lowered.startswith(("gpu", "cuda")) else (
            "cpu" if lowered.startswith("cpu") else None)
        raise SetupError(f"unknown device {text!r}: use auto, cpu, cuda or cuda:N"
                         + (f" (did you mean {hint!r}?)" if hint else "")) from None
    if parsed.type == "cpu":
        return "cpu"
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            why = ("this torch is a CPU-only build" if torch.version.cuda is None
                   else "no GPU is visible (check CUDA_VISIBLE_DEVICES and the driver)")
            raise SetupError(f"device {text!r} asked for, but CUDA is not available: {why}; use --device cpu")
        count = torch.cuda.device_count()
        if parsed.index is not None and parsed.index >= count:
            raise SetupError(f"device {text!r} asked for, but this machine has {count} GPU(s): "
                             f"use cuda:0..cuda:{count - 1}")
        return text
    raise SetupError(f"device {text!r} is not supported by memsep (its computations need float64): "
                     "use cpu or cuda")


# --------------------------------------------------------------------------------------------- folders
def fresh_temporary_folder(prefix: str = "memsep-smoke-") -> Path:
    """A new empty folder under the system's temporary directory (one per run)."""
    return Path(tempfile.mkdtemp(prefix=prefix))


def output_folder(name: str, preset: str, out, overrides: dict) -> Path | None:
    """Where a run's table, configuration and figure go (module docstring); None: the committed folders."""
    from ._io import key_tag
    from .runner import COMMITTED_PRESETS, RUNS

    if out is not None:
        return Path(out)
    if preset not in COMMITTED_PRESETS:
        return fresh_temporary_folder()
    if overrides:
        return RUNS / f"{name}-{preset}-{key_tag({'module': name, 'preset': preset, 'overrides': overrides}, 8)}"
    return None


def check_writable(folder: Path, what: str = "output folder") -> None:
    """Create ``folder`` if needed and write (then remove) a probe file in it; a SetupError otherwise."""
    folder = Path(folder)
    try:
        if folder.exists() and not folder.is_dir():
            raise SetupError(f"cannot write to the {what} {folder}: it is a file, not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".memsep-probe-")
        os.close(fd)
        os.remove(probe)
    except SetupError:
        raise
    except OSError as exc:
        raise SetupError(f"cannot write to the {what} {folder}: {exc.strerror or exc}") from None


# --------------------------------------------------------------------------------------------- the plan
def prepare(name: str, preset: str = "cpu", *, out=None, device: str | None = "auto", plot_only: bool = False,
            file=None, sets=None, values: dict | None = None, check_files: bool = True) -> Plan:
    """Resolve and check everything a run of one module needs (module docstring); raises SetupError."""
    from .runner import output_paths

    if name not in catalog():
        from . import unknown_module_message

        raise SetupError(unknown_module_message(name))
    module = get(name)
    config, overrides = resolve(module, preset, sets=parse_sets(sets) if isinstance(sets, (list, tuple)) else sets,
                                values=values, file=file)
    device = check_device(device)
    folder = output_folder(module.NAME, preset, out, overrides)
    paths = output_paths(module.NAME, preset, folder)
    if plot_only:
        if not paths.table.is_file():
            raise MissingInputError(f"--plot-only: no table to draw from at {paths.table}; run {module.NAME} "
                                    "without --plot-only first")
        check_writable(paths.figure.parent, "figure folder")
    else:
        for parent in sorted({paths.table.parent, paths.figure.parent, paths.config.parent}):
            check_writable(parent)
        if check_files:
            check_data(module, config)
        try:
            points = list(module.grid(config))
        except Exception as exc:
            raise SetupError(f"{module.NAME}: the settings give no valid grid: {type(exc).__name__}: {exc}") from None
        if not points:
            raise SetupError(f"{module.NAME}: the settings give an empty grid (nothing to run)")
    return Plan(module, preset, config, overrides, folder, device, paths)


def check_data(module: ModuleType, config) -> None:
    """The module's own ``check_data(config)`` (data and network files it reads), as a SetupError."""
    from ._io import MissingDataError

    check = getattr(module, "check_data", None)
    if check is None:
        return
    try:
        check(config)
    except MissingDataError as exc:
        raise MissingInputError(f"{module.NAME}: {exc}") from None


# --------------------------------------------------------------------------------------------- messages
def paper_warning(names, device: str, workers: int = 1) -> str | None:
    """The one warning for the paper preset on a CPU, or None on another device: the modules' recorded
    estimate (``ESTIMATED_RUNTIME``: seconds of one process on the 2-core machine of README's timing table),
    spread over ``workers``; ``--dry-run`` measures the points on this machine instead. Costs nothing."""
    if not device.startswith("cpu"):
        return None
    info = catalog()
    seconds = sum(info[n].estimated_runtime.get("paper", 0) for n in names if n in info)
    which = names[0] if len(names) == 1 else f"{len(names)} modules"
    return (f"[verify] warning: --preset paper on a CPU (no GPU in use): {which} is estimated at about "
            f"{fmt_seconds(seconds / max(1, workers))} on {max(1, workers)} worker(s) of README's reference CPU "
            "(--dry-run measures it here); it is sized for a GPU or a cluster (--device cuda, --workers, "
            "--scheduler). Finished points are kept, so it can be stopped (Ctrl-C) and resumed.")


def fmt_seconds(seconds: float) -> str:
    """A duration for people: '45 s', '12 min', '3.5 h', '2.1 days' ('?' when unknown)."""
    seconds = float(seconds)
    if not math.isfinite(seconds):
        return "?"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def verdicts(module: ModuleType, table) -> dict:
    """Each of the module's claims judged on ``table``: claim key -> Finding (a rule that cannot read the
    table gives an inconclusive Finding that says why)."""
    from .verdicts import INCONCLUSIVE, Finding

    out = {}
    for claim in getattr(module, "CLAIMS", ()):
        try:
            out[claim.key] = claim.evaluate(table)
        except Exception as exc:  # reported, not hidden
            out[claim.key] = Finding(claim.key, float("nan"), float("nan"), float("nan"), "none", INCONCLUSIVE,
                                     f"rule failed: {type(exc).__name__}: {exc}")
    return out
