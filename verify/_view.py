"""A module's configuration without its heavy imports: what ``python -m verify NAME --help`` reads.

``config_view("verify.NAME")`` executes the module's source one top-level statement at a time in a fresh
namespace, with only the standard library and numpy importable: ``from .x import ...`` and ``from theory... import
...`` are resolved by viewing those files the same way, and any other import (torch, scipy, ...) binds an
*absent* stand-in: a class whose attributes and calls give more absent classes, so that ``isinstance(x,
torch.Tensor)`` is False, ``class Net(nn.Module)`` and ``@torch.no_grad()`` go through and a validating
``__post_init__`` runs as it would. A statement that fails still is skipped. What remains is the module's
dataclasses and literal presets, which is all the settings table needs, in about a tenth of a second
instead of the several seconds torch takes to import. Where the presets cannot be built this way,
``ViewError`` is raised and the caller imports the module for real; ``tests/test_cli.py`` checks, for every
module, that the view's settings table equals the imported module's.
"""

from __future__ import annotations

import __future__
import ast
import dataclasses
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_PACKAGES = ("verify", "theory")
_PREFIX = "_memsep_view."
_LIGHT = frozenset(sys.stdlib_module_names) | {"__future__", "numpy"}   # imported as written (numpy: ~0.1 s)
_cache: dict[str, types.ModuleType] = {}


class ViewError(RuntimeError):
    pass


class _AbsentMeta(type):
    """Stand-in for what a heavy import would have bound."""

    def __getattr__(cls, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return _absent(f"{cls.__name__}.{attr}")

    def __call__(cls, *args, **kwargs):
        return _absent(f"{cls.__name__}()")


def _absent(name: str) -> type:
    return _AbsentMeta(name, (), {})


def _has_absent(value) -> bool:
    if isinstance(value, _AbsentMeta):
        return True
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_has_absent(getattr(value, f.name)) for f in dataclasses.fields(value))
    if isinstance(value, (tuple, list)):
        return any(_has_absent(v) for v in value)
    if isinstance(value, dict):
        return any(_has_absent(v) for v in value.values())
    return False


def _path(import_name: str) -> Path | None:
    parts = import_name.split(".")
    if parts[0] not in _PACKAGES:
        return None
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = parts[: len(parts) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _run(node: ast.stmt, path: Path, ns: dict, flags: int) -> None:
    exec(compile(ast.Module([node], []), str(path), "exec", flags=flags, dont_inherit=True), ns)


def _bind_from(node: ast.ImportFrom, package: str, ns: dict) -> None:
    source = _absolute(node, package)
    top = source.split(".")[0]
    if top in _LIGHT:
        if top != "__future__":
            _run(node, Path("<view>"), ns, 0)
        return
    if top not in _PACKAGES:
        for alias in node.names:
            ns[alias.asname or alias.name] = _absent(alias.name)
        return
    for alias in node.names:
        bound = alias.asname or alias.name
        sub = f"{source}.{alias.name}"
        if _path(sub) is not None:                     # a submodule: from . import _gmm
            ns[bound] = config_view(sub)
            continue
        try:
            ns[bound] = getattr(config_view(source), alias.name)
        except (AttributeError, ViewError):            # it needed something left out
            ns[bound] = _absent(alias.name)


def config_view(import_name: str) -> types.ModuleType:
    """The light view of ``import_name`` (a module of verify/ or theory/); raises ViewError where it has no
    source file here."""
    if import_name in _cache:
        return _cache[import_name]
    path = _path(import_name)
    if path is None:
        raise ViewError(f"no source for {import_name}")
    view = types.ModuleType(_PREFIX + import_name)
    view.__file__ = str(path)
    package = import_name if path.name == "__init__.py" else import_name.rpartition(".")[0]
    view.__package__ = package
    sys.modules[view.__name__] = view                  # dataclasses and typing look classes' modules up there
    _cache[import_name] = view
    ns = view.__dict__
    tree = ast.parse(path.read_text(), filename=str(path))
    view.__doc__ = ast.get_docstring(tree)
    if path.name == "__init__.py" and import_name in _PACKAGES:
        return view                                    # the packages' own imports are the heavy ones
    future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and
                 any(a.name == "annotations" for a in n.names) for n in tree.body)
    flags = __future__.annotations.compiler_flag if future else 0    # each statement is compiled on its own
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in _LIGHT:
                    _run(ast.copy_location(ast.Import([alias]), node), path, ns, flags)
                else:                                  # import torch / import theory / import a.b as c
                    bound = alias.asname or alias.name.split(".")[0]
                    ns[bound] = _absent(bound)
            continue
        if isinstance(node, ast.ImportFrom):
            _bind_from(node, package, ns)
            continue
        if isinstance(node, ast.If):                   # `if __name__ == "__main__":` and the like
            continue
        try:
            _run(node, path, ns, flags)
        except Exception:                              # it needs something left out
            pass
    return view


def presets(import_name: str) -> dict:
    """The module's PRESETS as built by its light view; ViewError where they cannot be."""
    found = getattr(config_view(import_name), "PRESETS", None)
    if not isinstance(found, dict) or not found or _has_absent(found):
        raise ViewError(f"{import_name}: PRESETS need the module's heavy imports")
    return found
