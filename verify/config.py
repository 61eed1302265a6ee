"""A module's configuration: its presets plus a researcher's own settings, typed and checked.

Every verify module's presets are (possibly nested) frozen dataclasses of plain values. A run starts from one
preset and changes some of its fields:

* ``--set KEY=VALUE`` on the command line (repeatable; nested fields by dotted keys, ``model.width=64``);
  the value is read as the field's type: int (``1000``, ``1e5``), float (``0.1``, ``1/3``), bool
  (``true``/``false``), str, or a tuple (``1,2,3`` or ``[1, 2, 3]``, elements typed like the preset's);
* ``--config FILE``: a JSON or TOML file of the same keys, nested (``{"model": {"width": 64}}``, a TOML
  table ``[model]``) or dotted; a configuration a run saved (``NAME.config.json``) is read too;
* ``verify.run(NAME, preset=..., **overrides)`` from Python (``model={"width": 64}`` or ``model__width=64``).

An unknown key names the valid ones (and the closest), a bad value names the key, its type and the preset's
value; both raise :class:`ConfigError` (a ``SetupError``: a one-line message, found before anything runs).
The overrides a run records are the settings that differ from its preset (``resolve``); ``describe`` is the
table that ``python -m verify NAME --help`` prints: every field with each preset's value.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import io
import json
import math
import textwrap
import tokenize
import typing
from fractions import Fraction
from pathlib import Path
from types import ModuleType

__all__ = ["SetupError", "ConfigError", "MissingInputError", "fields", "resolve", "parse_sets", "load_file", "describe", "flatten",
           "field_comments"]


class SetupError(ValueError):
    """A mistake in how a run was asked for, found before any computing starts; its message is one line
    (the command line prints it without a traceback and exits with status 2)."""


class ConfigError(SetupError):
    """An unknown setting or a value that does not fit its field."""


class MissingInputError(SetupError):
    """A file the run needs is absent (a data or network file, or the table ``--plot-only`` draws from);
    ``verify all`` skips such a module with a line instead of failing."""


@dataclasses.dataclass(frozen=True)
class Field:
    key: str            # dotted path, e.g. "model.width"
    type: type          # int, float, bool, str or tuple
    element: type | None  # for tuples: the element type (None: any plain value)
    optional: bool      # None allowed
    comment: str        # the field's trailing comment in its dataclass, if any


# --------------------------------------------------------------------------------------------- fields
def _hints(cls) -> dict:
    try:
        return typing.get_type_hints(cls)
    except Exception:  # unresolved forward references: fall back to the preset's values
        return {}


def _plain(annotation):
    """(base type, optional) of an annotation such as ``int``, ``tuple``, ``str | None``."""
    args = typing.get_args(annotation)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else None), True
    origin = typing.get_origin(annotation)
    if origin in (tuple, list):
        return tuple, False
    return annotation if isinstance(annotation, type) else None, False


def _element(value: tuple) -> type | None:
    kinds = {type(v) for v in value}
    if not kinds:
        return None
    if kinds <= {int} and bool not in kinds:
        return int
    if kinds <= {int, float} and bool not in kinds:
        return float
    return kinds.pop() if len(kinds) == 1 else None


def fields(config) -> dict[str, Field]:
    """Every leaf field of a (nested) dataclass instance by dotted key, with its type."""
    out: dict[str, Field] = {}

    def walk(obj, prefix: str) -> None:
        hints, comments = _hints(type(obj)), field_comments(type(obj))
        for f in dataclasses.fields(obj):
            value, key = getattr(obj, f.name), prefix + f.name
            if dataclasses.is_dataclass(value):
                walk(value, key + ".")
                continue
            base, optional = _plain(hints.get(f.name, type(value)))
            if base not in (int, float, bool, str, tuple):
                base = tuple if isinstance(value, (tuple, list)) else type(value)
            if value is None:
                optional = True
            element = _element(tuple(value)) if base is tuple and isinstance(value, (tuple, list)) else None
            out[key] = Field(key, base, element, optional, comments.get(f.name, ""))

    if not dataclasses.is_dataclass(config):
        raise TypeError(f"a preset must be a dataclass instance, got {type(config).__name__}")
    walk(config, "")
    return out


def field_comments(cls) -> dict[str, str]:
    """The trailing ``# comment`` of each field in a dataclass's source, continued on the comment-only lines
    right below it; {} where the source is not available."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
        tree = ast.parse(source)
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (OSError, TypeError, SyntaxError, tokenize.TokenError):
        return {}
    by_line = {t.start[0]: t.string.lstrip("#").strip() for t in tokens if t.type == tokenize.COMMENT}
    code_lines = {t.start[0] for t in tokens if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE,
                                                                 tokenize.INDENT, tokenize.DEDENT)}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    out = {}
    for node in body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            line, parts = node.end_lineno, []
            if line in by_line:
                parts.append(by_line[line])
                line += 1
                while line in by_line and line not in code_lines:
                    parts.append(by_line[line])
                    line += 1
            if parts:
                out[node.target.id] = " ".join(parts)
    return out


# --------------------------------------------------------------------------------------------- values
def _type_name(f: Field) -> str:
    if f.type is tuple:
        return f"tuple of {f.element.__name__}" if f.element else "tuple"
    return f.type.__name__ + (" or none" if f.optional else "")


def _bad(f: Field, value, base, why: str = "") -> ConfigError:
    return ConfigError(f"bad value {value!r} for {f.key}: expected {_type_name(f)}"
                       + (f" ({why})" if why else "") + (f"; the preset has {base!r}" if base is not None else ""))


def _scalar(text, kind: type, f: Field, base, from_text: bool):
    """``text`` (a string from the command line, or a value from a file) as a value of ``kind``."""
    if kind is bool:
        if isinstance(text, bool):
            return text
        if from_text and isinstance(text, str) and text.strip().lower() in _BOOLS:
            return _BOOLS[text.strip().lower()]
        raise _bad(f, text, base, "true or false")
    if kind is int:
        if isinstance(text, bool):
            raise _bad(f, text, base)
        if isinstance(text, int):
            return text
        number = text
        if isinstance(text, str) and from_text:
            s = text.strip().replace("_", "")
            try:
                return int(s)
            except ValueError:
                try:
                    number = float(s)
                except ValueError:
                    raise _bad(f, text, base) from None
        if isinstance(number, float) and math.isfinite(number) and number.is_integer():
            return int(number)
        raise _bad(f, text, base, "a whole number")
    if kind is float:
        if isinstance(text, bool):
            raise _bad(f, text, base)
        if isinstance(text, (int, float)):
            return float(text)
        if isinstance(text, str) and from_text:
            s = text.strip().replace("_", "")
            try:
                return float(s)
            except ValueError:
                try:
                    return float(Fraction(s))
                except (ValueError, ZeroDivisionError):
                    raise _bad(f, text, base) from None
        raise _bad(f, text, base)
    if kind is str:
        if isinstance(text, str):
            return text
        raise _bad(f, text, base, "a string")
    # elements of a tuple whose type the preset does not fix: a number if it reads as one, else the string
    if isinstance(text, str) and from_text:
        for conv in (int, float):
            try:
                return conv(text.strip())
            except ValueError:
                pass
        return text.strip()
    if isinstance(text, (int, float, str, bool)):
        return text
    raise _bad(f, text, base, "a plain value")


_BOOLS = {"true": True, "false": False, "yes": True, "no": False, "1": True, "0": False, "on": True, "off": False}


def convert(f: Field, value, *, from_text: bool, base=None):
    """``value`` for field ``f``: from a command-line string (``from_text``) or a typed value (a file, Python)."""
    if value is None or (from_text and isinstance(value, str) and value.strip().lower() in ("none", "null")
                         and f.optional):
        if f.optional:
            return None
        raise _bad(f, value, base, "it cannot be empty")
    if f.type is tuple:
        items = value
        if from_text and isinstance(value, str):
            s = value.strip()
            if s[:1] in "[(":
                try:
                    items = json.loads("[" + s[1:-1] + "]")
                except json.JSONDecodeError:
                    items = [p for p in s[1:-1].split(",") if p.strip()]
            else:
                items = [p for p in s.split(",") if p.strip()] if s else []
        elif not isinstance(value, (list, tuple)):
            items = [value]
        kind = f.element
        out = []
        for item in items:
            if isinstance(item, str) and from_text and kind in (int, float, None):
                item = item.strip()
            out.append(_scalar(item, kind if kind is not None else object, f, base,
                               from_text or isinstance(item, str) and kind in (int, float)))
        return tuple(out)
    return _scalar(value, f.type, f, base, from_text)


# --------------------------------------------------------------------------------------------- resolving
def flatten(values: dict, prefix: str = "") -> dict:
    """Nested dicts -> dotted keys (``{"model": {"width": 64}}`` -> ``{"model.width": 64}``); ``a__b`` keys
    (Python keyword arguments) read as ``a.b``."""
    out = {}
    for k, v in values.items():
        key = prefix + str(k).replace("__", ".")
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _unknown(key: str, valid: dict[str, Field], module_name: str) -> ConfigError:
    groups = sorted({k.split(".")[0] for k in valid if "." in k})
    if key in groups:
        members = [k for k in valid if k.startswith(key + ".")]
        return ConfigError(f"{key} of {module_name} is a group of settings: set one of {', '.join(members)}")
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return ConfigError(f"unknown setting {key!r} for {module_name}{hint}; valid settings: {', '.join(valid)}")


def parse_sets(items) -> dict[str, str]:
    """``["a=1", "model.width=64"]`` -> ``{"a": "1", "model.width": "64"}`` (values still text)."""
    out = {}
    for item in items or ():
        key, eq, value = str(item).partition("=")
        if not eq or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value
    return out


def load_file(path) -> tuple[dict, str | None, str | None]:
    """(settings as dotted keys, the file's module name or None, its preset or None) of a JSON or TOML file.
    A configuration saved by a run (``NAME.config.json``: keys module, preset, config) gives its ``config``;
    other files may name their base ``preset`` (and ``module``) at the top level."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"--config {path}: no such file")
    text = path.read_bytes()
    suffix = path.suffix.lower()
    try:
        if suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                try:
                    import tomli as tomllib
                except ModuleNotFoundError:
                    raise ConfigError(f"--config {path}: TOML needs Python 3.11+ (or `pip install tomli`); "
                                      "use JSON instead") from None
            data = tomllib.loads(text.decode())
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"--config {path}: expected a .json or .toml file")
    except ConfigError:
        raise
    except Exception as exc:  # a syntax error in the user's file: say where
        raise ConfigError(f"--config {path} is not valid {suffix[1:].upper()}: {exc}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path}: expected a table of settings at the top level, got {type(data).__name__}")
    module, preset = data.pop("module", None), data.pop("preset", None)
    if "config" in data and isinstance(data["config"], dict):       # a run's saved NAME.config.json
        data = data["config"]
    return flatten(data), module, preset


def _replace(config, values: dict):
    """A copy of the (nested, frozen) dataclass ``config`` with dotted ``values`` set."""
    top, nested = {}, {}
    for key, value in values.items():
        head, dot, rest = key.partition(".")
        if dot:
            nested.setdefault(head, {})[rest] = value
        else:
            top[head] = value
    for head, sub in nested.items():
        top[head] = _replace(getattr(config, head), sub)
    return dataclasses.replace(config, **top)


def get_value(config, key: str):
    for part in key.split("."):
        config = getattr(config, part)
    return config


def resolve(module: ModuleType, preset: str, *, sets: dict | None = None, values: dict | None = None,
            file=None) -> tuple[object, dict]:
    """(configuration, overrides) of ``module`` at ``preset`` with a config ``file``'s settings, then
    ``values`` (typed, from Python), then ``sets`` (text, from ``--set``) applied in that order. The overrides
    are the settings that differ from the preset, by dotted key, as plain JSON values (tuples as lists)."""
    name = getattr(module, "NAME", "module")
    presets = module.PRESETS
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r} for {name}; choose from {', '.join(presets)}")
    base = presets[preset]
    if not (sets or values or file):
        return base, {}
    valid = fields(base)
    given: dict[str, object] = {}
    if file is not None:
        data, file_module, _ = load_file(file)
        if file_module not in (None, name):
            raise ConfigError(f"--config {file} is for {file_module}, not {name}")
        for key, value in data.items():
            given[key] = (value, False)
    for key, value in flatten(values or {}).items():
        given[key] = (value, False)
    for key, value in (sets or {}).items():
        given[key] = (value, True)
    typed = {}
    for key, (value, from_text) in given.items():
        if key not in valid:
            raise _unknown(key, valid, name)
        typed[key] = convert(valid[key], value, from_text=from_text, base=get_value(base, key))
    config = _replace(base, typed)
    overrides = {k: _jsonable(v) for k, v in typed.items() if v != get_value(base, k)}
    return config, dict(sorted(overrides.items()))


def _jsonable(value):
    return list(value) if isinstance(value, tuple) else value


# --------------------------------------------------------------------------------------------- help
def _show(value) -> str:
    """A value as it would be typed after ``--set KEY=``."""
    if isinstance(value, tuple):
        return ",".join(_show(v) for v in value) if value else "()"
    if isinstance(value, str):
        return repr(value) if value == "" or " " in value or "," in value else value
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value)


def describe(module: ModuleType, width: int = 34) -> str:
    """Every field of the module's configuration with its type, each preset's value and its comment: the
    settings table of ``python -m verify NAME --help``."""
    presets = module.PRESETS
    first = next(iter(presets.values()))
    table = fields(first)
    names = list(presets)
    rows = [(key, _type_name(f), [_show(get_value(presets[p], key)) for p in names], f.comment)
            for key, f in table.items()]
    kw = max([len("setting")] + [len(r[0]) for r in rows])
    tw = max([len("type")] + [len(r[1]) for r in rows])
    vw = [min(width, max([len(p)] + [len(r[2][i]) for r in rows])) for i, p in enumerate(names)]
    lines = ["  " + "  ".join([f"{'setting':<{kw}}", f"{'type':<{tw}}"] + [f"{p:<{w}}" for p, w in zip(names, vw)]).rstrip()]
    for key, kind, vals, comment in rows:
        cells = [v if len(v) <= w else v[:w - 3] + "..." for v, w in zip(vals, vw)]
        lines.append("  " + "  ".join([f"{key:<{kw}}", f"{kind:<{tw}}"] + [f"{c:<{w}}" for c, w in zip(cells, vw)]).rstrip())
        for p, v, w in zip(names, vals, vw):
            if len(v) > w:
                lines.append(f"  {'':<{kw}}  {p} = {v}")
        if comment:
            lines.append(f"  {'':<{kw}}  {comment}")
    return "\n".join(lines)


def dump(config) -> dict:
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
