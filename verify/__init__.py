"""memsep.verify: one module per claim or figure of the paper.

A verify module defines

    NAME: str                       the name used on the command line and for its files
    CLAIM: str                      one line: what of the paper it checks (and where)
    PRESETS: dict[str, Config]      "smoke", "cpu", "paper" -> a (possibly nested) dataclass of plain values
    ESTIMATED_RUNTIME: dict         preset -> seconds on the machine named in README's timing table
    grid(config) -> list[dict]      the grid points (plain numbers and strings, with a "seed")
    run_point(point, config, device) -> dict | list[dict]   the measured row(s) of one point
    plot(table, config) -> Figure   the figure, drawn from the table alone

and ``verify.runner.run_module`` does the rest (configuration, resume, atomic tables, figure). Shared
pieces live in private modules: ``_io`` (files, paths, environment variables, checkpoints, CIFAR-10 and
Inception loading) and ``_gmm`` (the Gaussian-mixture memorization pipeline). Modules are discovered
automatically: any public module of this package that defines ``PRESETS``.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

_NOT_EXPERIMENTS = {"runner", "report", "claims"}


def modules() -> dict[str, ModuleType]:
    """All verify modules by name, in the order they should run in ``verify all``."""
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_") or info.name in _NOT_EXPERIMENTS:
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "PRESETS"):
            found[mod.NAME] = mod
    return dict(sorted(found.items(), key=lambda kv: (getattr(kv[1], "ORDER", 100), kv[0])))


def get(name: str) -> ModuleType:
    mods = modules()
    if name not in mods:
        raise ValueError(f"unknown verify module {name!r}; available: {', '.join(mods)}")
    return mods[name]
