"""memsep.verify: one module per claim or figure of the paper.

A verify module defines

    NAME: str                       the name used on the command line and for its files
    CLAIM: str                      one line: what of the paper it checks (and where)
    CLAIMS: list[verdicts.Claim]    the claims its table decides, each with its judge (verify.verdicts)
    COLUMNS: tuple[str, ...]        the documented columns of its table (every smoke run has them)
    PRESETS: dict[str, Config]      "smoke", "cpu", "paper" -> a (possibly nested) dataclass of plain values
    ESTIMATED_RUNTIME: dict         preset -> seconds on the machine named in README's timing table
    grid(config) -> list[dict]      the grid points (plain numbers and strings, with a "seed")
    run_point(point, config, device) -> dict | list[dict]   the measured row(s) of one point
    plot(table, config) -> Figure   the figure, drawn from the table alone

and optionally (``verify.store``, ``verify.executor``, ``verify.cost``)

    data_fingerprint(config) -> str a hash of the data files it reads (rows and checkpoints of other data
                                    are never reused)
    SHARED_FIRST_POINT = True       the first grid point computes what the others reuse (runs alone first)
    COST_MODEL / cost(point, config, device)   how --dry-run costs a point cheaply

and ``verify.runner.run_module`` does the rest (configuration, resume, atomic tables, figure). Shared
pieces live in private modules: ``_io`` (files, paths, environment variables, checkpoints, CIFAR-10 and
Inception loading), ``_gmm`` (the Gaussian-mixture memorization pipeline) and ``_memorization`` (the
memorization row-builder and rules). Modules are discovered automatically: any public module of this
package that defines ``PRESETS``; ``claims()`` is the one registry of claims (every module's ``CLAIMS``, in
module order, each tagged with its module).
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

_NOT_EXPERIMENTS = {"runner", "report", "verdicts", "stats"}


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


def claims() -> list:
    """Every claim of every verify module, in module order; ``claim.module`` is its module's NAME."""
    import dataclasses

    out, keys = [], set()
    for name, mod in modules().items():
        for claim in getattr(mod, "CLAIMS", ()):
            if claim.key in keys:
                raise ValueError(f"claim key {claim.key!r} declared twice")
            keys.add(claim.key)
            out.append(dataclasses.replace(claim, module=name))
    return out
