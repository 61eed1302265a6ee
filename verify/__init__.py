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
    check_data(config) (optional)   raise verify._io.MissingDataError if a data file the run needs is absent

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

``catalog()`` reads NAME, CLAIM, ORDER, the preset names and ESTIMATED_RUNTIME from the modules' source
without importing them (so ``python -m verify list`` and ``--help`` never load torch); ``modules()`` imports.
``run(NAME, preset=..., **overrides)`` runs one module from Python and returns its table and verdicts.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import importlib
import operator
import pkgutil
from pathlib import Path
from types import ModuleType

_NOT_EXPERIMENTS = {"runner", "report", "verdicts", "stats", "config", "preflight", "progress",
                    "plugin_memorization"}
COMMANDS = ("list", "all", "report", "memorization")    # command-line targets that are not modules


@dataclasses.dataclass(frozen=True)
class ModuleInfo:
    """What ``list`` and ``--help`` show of a module, read from its source."""

    name: str
    module: str                 # the import name, e.g. "verify.lipschitz_vs_t"
    claim: str
    order: float
    presets: tuple
    estimated_runtime: dict


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.Pow: operator.pow, ast.USub: operator.neg, ast.UAdd: operator.pos}


def _constant(node):
    """The value of a literal expression (numbers, strings, tuples, dicts, and arithmetic on numbers)."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        pass
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_constant(node.left), _constant(node.right))
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        return _OPS[type(node.op)](_constant(node.operand))
    if isinstance(node, ast.Dict):
        return {_constant(k): _constant(v) for k, v in zip(node.keys, node.values)}
    raise ValueError("not a literal")


def _read_info(path: Path, import_name: str) -> ModuleInfo | None:
    """The module's ModuleInfo from its source; None if it defines no PRESETS. Raises ValueError where a
    value is not a literal (the caller then imports the module)."""
    tree = ast.parse(path.read_text(), str(path))
    found = {}
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else (
            [node.target] if isinstance(node, ast.AnnAssign) and node.value is not None else [])
        for target in targets:
            if isinstance(target, ast.Name) and target.id in ("NAME", "CLAIM", "ORDER", "PRESETS",
                                                               "ESTIMATED_RUNTIME"):
                found[target.id] = node.value
    if "PRESETS" not in found:
        return None
    presets = found["PRESETS"]
    if not isinstance(presets, ast.Dict) or any(k is None for k in presets.keys):
        raise ValueError("PRESETS is not a dict literal")
    return ModuleInfo(name=_constant(found["NAME"]), module=import_name,
                      claim=_constant(found["CLAIM"]) if "CLAIM" in found else "",
                      order=_constant(found["ORDER"]) if "ORDER" in found else 100,
                      presets=tuple(_constant(k) for k in presets.keys),
                      estimated_runtime=_constant(found["ESTIMATED_RUNTIME"]) if "ESTIMATED_RUNTIME" in found else {})


def _imported_info(mod: ModuleType) -> ModuleInfo:
    return ModuleInfo(mod.NAME, mod.__name__, getattr(mod, "CLAIM", ""), getattr(mod, "ORDER", 100),
                      tuple(mod.PRESETS), dict(getattr(mod, "ESTIMATED_RUNTIME", {})))


def _candidates():
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_") and info.name not in _NOT_EXPERIMENTS:
            yield info.name


def catalog() -> dict[str, ModuleInfo]:
    """Every verify module's ModuleInfo by name, in ``verify all`` order, read from source (a module whose
    metadata is not literal is imported instead)."""
    found = {}
    for short in _candidates():
        import_name = f"{__name__}.{short}"
        path = Path(__path__[0]) / f"{short}.py"
        try:
            info = _read_info(path, import_name) if path.is_file() else _imported_info(
                importlib.import_module(import_name))
        except (ValueError, KeyError, SyntaxError):
            mod = importlib.import_module(import_name)
            info = _imported_info(mod) if hasattr(mod, "PRESETS") else None
        except AttributeError:
            info = None
        if info is not None:
            found[info.name] = info
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


def modules() -> dict[str, ModuleType]:
    """All verify modules by name (imported), in the order they should run in ``verify all``."""
    return {name: importlib.import_module(info.module) for name, info in catalog().items()}


def suggest(name: str, choices) -> str:
    """' (did you mean 'x'?)' for the closest of ``choices``, or ''."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" (did you mean {close[0]!r}?)" if close else ""


def unknown_module_message(name: str) -> str:
    names = list(catalog())
    return (f"unknown verify module {name!r}{suggest(name, names + list(COMMANDS))}; available: "
            f"{', '.join(names)} (or {', '.join(COMMANDS)})")


def get(name: str) -> ModuleType:
    info = catalog().get(name)
    if info is None:
        from .config import SetupError

        raise SetupError(unknown_module_message(name))
    return importlib.import_module(info.module)


def claims() -> list:
    """Every claim of every verify module, in module order; ``claim.module`` is its module's NAME."""
    out, keys = [], set()
    for name, mod in modules().items():
        for claim in getattr(mod, "CLAIMS", ()):
            if claim.key in keys:
                raise ValueError(f"claim key {claim.key!r} declared twice")
            keys.add(claim.key)
            out.append(dataclasses.replace(claim, module=name))
    return out


@dataclasses.dataclass
class RunResult:
    """What ``run`` returns: the table, the verdicts (claim key -> ``verify.verdicts.Finding``) and where the
    files went; unpacks as ``table, verdicts = verify.run(...)``."""

    table: object
    verdicts: dict
    paths: object

    def __iter__(self):
        yield self.table
        yield self.verdicts


def run(name: str, preset: str = "cpu", *, out=None, device: str = "auto", fresh: bool = False,
        plot_only: bool = False, quiet: bool = True, config=None, **overrides) -> RunResult:
    """Run (or resume) one module from Python, with the command line's checks and defaults.

    ``config``: a JSON/TOML file of settings (or a dict of them); ``overrides``: settings by name, nested as
    dicts (``model={"width": 64}``) or with ``__`` (``model__width=64``). A run whose settings differ from
    the preset writes to its own folder (``data/runs/NAME-PRESET-<hash>/``) unless ``out`` is given; smoke
    runs go to a fresh temporary folder. Mistakes raise ``verify.config.SetupError`` before anything runs.
    Returns a :class:`RunResult` (``table, verdicts = verify.run(...)``)."""
    from . import preflight
    from .runner import run_module

    values = dict(config) if isinstance(config, dict) else {}
    values.update(overrides)
    plan = preflight.prepare(name, preset, out=out, device=device, plot_only=plot_only,
                             file=None if isinstance(config, dict) else config, values=values)
    table = run_module(plan.module, plan.preset, out=plan.out, device=plan.device, fresh=fresh,
                       plot_only=plot_only, quiet=quiet, config=plan.config, overrides=plan.overrides)
    return RunResult(table, preflight.verdicts(plan.module, table), plan.paths)
