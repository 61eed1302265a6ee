"""The runner's storage: what is in an output folder, and which of it may be reused.

* Fingerprints. ``code_fingerprint``: a hash of the code that produces a module's rows (every ``theory``
  file; of the module's own file, the statements its ``grid`` and ``run_point`` can reach, not its rules,
  figure or descriptions: ``row_statements``; the verify files it imports, minus those that only judge,
  draw or run: ``NOT_ROW_CODE``), over a canonical form of their syntax trees, so comments, docstrings and
  layout do not count and the hash is the same on every machine and Python version for the same code.
  Rows that carry the hash the same code had before ``row_statements`` (the whole module file:
  ``CodeFingerprint.previous``) are re-stamped on the next run, not recomputed.
  ``data_fingerprint``: the module's own hook (``data_fingerprint(config) -> str``) for data it reads from
  files (cifar_pruning's images), "" otherwise. ``config_hash``: module, preset and resolved configuration.
  ``git_state``: the commit (and whether the tree was dirty), provenance only (see below).
* Tables. Every row carries ``point`` (the grid point's key), ``point_rows`` (how many rows that point
  produced), ``config_hash``, ``data_hash`` and ``code_hash``. On resume (``resume``) a point counts as done
  only if all its rows are present, well formed, error-free and carry the current hashes; rows of other code
  are reused only with ``reuse_stale`` (and said so); rows of other data or configuration never. A table
  that cannot be read whole (cut mid-row, garbage, not a table) is salvaged row by row (``read_table``);
  before a table is written without some of the finished rows of the file it replaces, that file is moved
  to ``.memsep-aside/`` beside it (``verify._io.move_aside``): no finished row is ever deleted.
* Files beside the table: ``NAME.config.json`` (stable: module, preset, configuration and the
  fingerprints, so a committed one changes only when they do) and ``NAME.run.json`` (volatile provenance:
  start time, git commit, host, versions, executor; git-ignored). A damaged config is moved aside and
  rewritten.
* ``OutputLock``: one run at a time per output folder (an exclusive ``flock`` on ``.verify.lock``, which
  the kernel releases when its holder dies, so a stale lock is noticed and broken, never waited on).
* The resume key of a point is thus (point, config_hash, data_hash, code_hash). The git commit is
  recorded, not keyed: a commit that touches only documentation must not invalidate hours of rows, and the
  content hashes already change with every change to code that can change a row.
"""

from __future__ import annotations

import ast
import csv
import dataclasses
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType

import pandas as pd

from ._io import REPO_ROOT, atomic_write, move_aside, notice

#: runner columns, in this order at the end of every row
RUNNER_COLUMNS = ["seed", "preset", "device", "runtime_s", "point", "point_rows", "config_hash", "data_hash",
                  "code_hash", "overrides"]
#: verify files that do not produce rows (they judge, draw, run or store them): not fingerprinted
NOT_ROW_CODE = {"__init__", "__main__", "verdicts", "stats", "report", "runner", "store", "executor", "cost",
                "config"}
THEORY = REPO_ROOT / "theory"
VERIFY = Path(__file__).resolve().parent
HASH_LENGTH = 12


class LockedError(RuntimeError):
    """Another run is writing this output folder."""


class TableError(ValueError):
    """A table could not be used (e.g. ``--plot-only`` of a missing or unreadable table)."""


# ------------------------------------------------------------------------------------------- fingerprints
def _canonical(node) -> str:
    """A syntax tree as text: node types and field values only, leaving out empty fields (so fields a newer
    Python adds, empty for old code, do not change it), positions and docstrings."""
    if isinstance(node, ast.AST):
        fields = []
        for name, value in ast.iter_fields(node):
            if name in ("type_comment", "kind") or value is None or value == []:
                continue
            if name == "body" and isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                value = _strip_docstring(value)
            fields.append(f"{name}={_canonical(value)}")
        return f"{type(node).__name__}({','.join(fields)})"
    if isinstance(node, list):
        return "[" + ",".join(_canonical(v) for v in node) + "]"
    return repr(node)


def _strip_docstring(body: list) -> list:
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
            and isinstance(body[0].value.value, str):
        return body[1:]
    return body


_SOURCE_HASHES: dict = {}

#: what the runner calls to make a module's rows: the roots of ``row_statements``
ROW_ROOTS = frozenset({"NAME", "PRESETS", "grid", "run_point", "data_fingerprint"})
#: module-level names that only describe, judge, cost or draw (reachable from a root, they count after all)
NOT_ROW_NAMES = frozenset({"CLAIM", "CLAIMS", "ORDER", "COLUMNS", "ESTIMATED_RUNTIME", "COST_MODEL",
                           "SHARED_FIRST_POINT", "plot", "check_data", "cost"})


def _defined(node: ast.stmt) -> set[str]:
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {node.name}
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return {(a.asname or a.name).split(".")[0] for a in node.names}
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}


def row_statements(tree: ast.Module) -> list[ast.stmt]:
    """The top-level statements of a verify module that can change its rows: the imports, the statements
    that define ``ROW_ROOTS`` or anything else not in ``NOT_ROW_NAMES`` except functions and classes, and,
    transitively, every function and class they name. A module's rules (``judge_*`` functions, ``CLAIMS``),
    its figure (``plot``) and its cost hints are left out unless row code uses them, so editing a rule or a
    figure does not make hours of rows stale."""
    body = _strip_docstring(tree.body)
    defines = [_defined(n) for n in body]
    owner: dict = {}
    for i, names in enumerate(defines):
        for name in names:
            owner.setdefault(name, []).append(i)
    keep = set()
    for i, (node, names) in enumerate(zip(body, defines)):
        is_def = isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
        if isinstance(node, (ast.Import, ast.ImportFrom)) or names & ROW_ROOTS or (
                not is_def and not names <= NOT_ROW_NAMES) or (not is_def and not names):
            keep.add(i)
    todo = list(keep)
    while todo:
        used = {n.id for n in ast.walk(body[todo.pop()]) if isinstance(n, ast.Name)}
        for name in used:
            for j in owner.get(name, ()):
                if j not in keep:
                    keep.add(j)
                    todo.append(j)
    return [body[i] for i in sorted(keep)]


def source_hash(path: Path, rows_only: bool = False) -> str:
    """Hash of one Python file's canonical syntax tree (cached by path, size and modification time);
    ``rows_only``: of its ``row_statements`` alone (a verify module's own file)."""
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns, rows_only)
    if key not in _SOURCE_HASHES:
        text = path.read_text(encoding="utf-8")
        try:
            tree = ast.parse(text)
            canon = _canonical(ast.Module(row_statements(tree), []) if rows_only else tree)
        except SyntaxError:
            canon = text
        _SOURCE_HASHES[key] = hashlib.sha256(canon.encode()).hexdigest()
    return _SOURCE_HASHES[key]


def _verify_imports(path: Path) -> set[str]:
    """Names of the verify modules that ``path`` imports (relative or absolute)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found.update(a.name for a in node.names)
            elif node.level == 0 and node.module and node.module.split(".")[0] == "verify":
                parts = node.module.split(".")
                found.update([parts[1]] if len(parts) > 1 else [a.name for a in node.names])
        elif isinstance(node, ast.Import):
            for a in node.names:
                parts = a.name.split(".")
                if parts[0] == "verify" and len(parts) > 1:
                    found.add(parts[1])
    return found


def row_code_files(module) -> list[Path]:
    """The files whose code can change a module's rows: every theory file, the module's file and,
    transitively, the verify files it imports (minus ``NOT_ROW_CODE``)."""
    files = sorted(THEORY.rglob("*.py"))
    path = getattr(module, "__file__", None)
    if path is None:
        return files
    seen, todo = [], [Path(path).resolve()]
    while todo:
        f = todo.pop()
        if f in seen or not f.is_file():
            continue
        seen.append(f)
        if f.parent == VERIFY:
            todo += [VERIFY / f"{m}.py" for m in _verify_imports(f) if m not in NOT_ROW_CODE]
    return files + sorted(seen)


@dataclasses.dataclass(frozen=True)
class CodeFingerprint:
    hash: str              # of everything below
    theory: str            # of theory/
    module: str            # of the module's file (its row statements) and its verify imports
    files: tuple           # the module-side files (repository-relative)
    previous: str = ""     # ``hash`` as it was before row_statements (the whole module file): rows carrying it
    #                        were made by this same code, and are re-stamped rather than recomputed


_CODE: dict = {}


def code_fingerprint(module) -> CodeFingerprint:
    """The fingerprint of the code that produces ``module``'s rows (see the module docstring). A module
    without a file (a namespace built in a test or a benchmark) is fingerprinted by the compiled code of its
    ``grid`` and ``run_point`` (``_functions_digest``)."""
    files = row_code_files(module)
    theory_files = [f for f in files if THEORY in f.parents]
    module_files = [f for f in files if THEORY not in f.parents]
    stamp = tuple((str(f), f.stat().st_mtime_ns) for f in files)
    own = "" if module_files else _functions_digest(module)
    key = (getattr(module, "NAME", id(module)), stamp, own)
    if key in _CODE:
        return _CODE[key]
    th = hashlib.sha256()
    for f in theory_files:
        th.update(f"{f.relative_to(THEORY)}\0{source_hash(f)}\0".encode())
    t = th.hexdigest()[:HASH_LENGTH]
    own_file = Path(module.__file__).resolve() if module_files else None

    def module_hash(rows_only: bool) -> str:
        mh = hashlib.sha256()
        for f in module_files:
            mh.update(f"{f.name}\0{source_hash(f, rows_only and f.resolve() == own_file)}\0".encode())
        mh.update(own.encode())
        return mh.hexdigest()[:HASH_LENGTH]

    m, whole = module_hash(True), module_hash(False)
    rel = tuple(_relative(f) for f in module_files)
    combined = lambda mm: hashlib.sha256(f"{t}{mm}".encode()).hexdigest()[:HASH_LENGTH]  # noqa: E731
    fp = CodeFingerprint(combined(m), t, m, rel, previous=combined(whole) if module_files else "")
    _CODE[key] = fp
    return fp


def _functions_digest(module) -> str:
    """A hash of the compiled code of a file-less module's ``grid`` and ``run_point``: the same in every
    process (a Dask worker gets such functions pickled by value, often without their source)."""
    h = hashlib.sha256()
    for name in ("grid", "run_point"):
        code = getattr(getattr(module, name, None), "__code__", None)
        h.update(f"{name}\0".encode())
        if code is not None:
            _code_digest(code, h)
    return h.hexdigest()[:HASH_LENGTH]


def _code_digest(code, h) -> None:
    import types

    h.update(code.co_code)
    h.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)).encode())
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            _code_digest(c, h)
        elif isinstance(c, frozenset):                    # its order follows the process's string hashing
            h.update(repr(sorted(map(repr, c))).encode())
        else:
            h.update(repr(c).encode())


def _relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_ROOT))
    except ValueError:
        return path.name


def data_fingerprint(module, cfg) -> str:
    """The module's fingerprint of the data files it reads (its ``data_fingerprint(config)`` hook), or ""."""
    hook = getattr(module, "data_fingerprint", None)
    return str(hook(cfg)) if hook is not None else ""


def config_hash(name: str, preset: str, config: dict) -> str:
    text = json.dumps({"module": name, "preset": preset, "config": config}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_LENGTH]


def git_state() -> dict:
    """{'commit': sha or None, 'dirty': bool or None} of the repository, if it is a git checkout."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                                timeout=10)
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
                                capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


# ------------------------------------------------------------------------------------------------ tables
_TEXT_COLUMNS = {"point": str, "config_hash": str, "data_hash": str, "code_hash": str}   # never parsed as numbers


@dataclasses.dataclass
class TableRead:
    frame: pd.DataFrame | None    # the readable rows (None: no file, or nothing readable)
    damage: str | None = None     # what was wrong with the file, if anything


def read_table(path: Path) -> TableRead:
    """The rows of a saved table. A file that cannot be read whole is salvaged: a last line cut mid-row
    (the file does not end in a newline), rows with the wrong number of fields and unparseable text are
    left out, and ``damage`` says so; a file without a header of runner columns yields no rows."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return TableRead(None)
    except OSError as exc:
        raise TableError(f"could not read {path}: {exc.strerror or exc}") from exc
    text = raw.decode("utf-8", errors="replace")
    problems = []
    if "\ufffd" in text:
        problems.append("bytes that are not UTF-8")
    if not text.strip():
        return TableRead(None, "empty file")
    records, cut = [], not text.endswith("\n")
    reader = csv.reader(io.StringIO(text), strict=True)
    try:
        header = next(reader)
        for rec in reader:
            records.append(rec)
    except csv.Error:
        problems.append(f"unparseable text after row {len(records)}")
        cut = False
    except StopIteration:
        header = []
    if "point" not in header:
        return TableRead(None, "no header with a 'point' column (not a memsep table)")
    if cut and records:
        records.pop()
        problems.append("last line cut mid-row")
    good = [r for r in records if len(r) == len(header)]
    if len(good) < len(records):
        problems.append(f"{len(records) - len(good)} row(s) with the wrong number of fields")
    if not problems:
        try:
            return TableRead(pd.read_csv(io.StringIO(text), dtype=_TEXT_COLUMNS))
        except (pd.errors.ParserError, ValueError) as exc:
            problems.append(f"unparseable ({exc})")
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header] + good)
    buf.seek(0)
    try:
        frame = pd.read_csv(buf, dtype=_TEXT_COLUMNS)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError):
        frame = None
    return TableRead(frame, "; ".join(problems))


@dataclasses.dataclass(frozen=True)
class Expected:
    """What a finished row must carry to be reused."""

    preset: str
    config_hash: str
    data_hash: str
    code_hash: str
    reuse_stale: bool = False
    code_aliases: tuple = ()         # other hashes of this same code (CodeFingerprint.previous)


@dataclasses.dataclass
class Resume:
    done: dict                       # point key -> its rows (dicts), the points that need no recomputing
    stale: dict                      # point key -> rows reused although made by other code (reuse_stale)
    counts: dict                     # why the other points of the file are recomputed: reason -> points
    dropped_rows: int                # finished (error-free) rows of the file that are not kept
    restamped: int = 0               # points kept whose rows carried an alias of the code hash (now the hash)


def _blank(v) -> bool:
    return v is None or (isinstance(v, float) and v != v) or v == ""


def resume(frame: pd.DataFrame | None, keys: list[str], expected: Expected) -> Resume:
    """Which grid points (``keys``) of a saved table are done. A point is done if the file holds exactly
    ``point_rows`` rows for it, all with its preset, configuration, data and code hashes (other code: only
    with ``reuse_stale``) and no error. Tables written before rows carried these columns count as made by
    unrecorded code and data."""
    res = Resume({}, {}, {}, 0)
    if frame is None or not len(frame):
        return res
    records = frame.to_dict("records")
    finished = [r for r in records if _blank(r.get("error"))]
    wanted = set(keys)
    by_point: dict = {}
    for r in records:
        by_point.setdefault(r.get("point"), []).append(r)

    def count(reason):
        res.counts[reason] = res.counts.get(reason, 0) + 1

    kept = 0
    for key, rows in by_point.items():
        if key not in wanted:
            count("not in this grid")
            continue
        if any(not _blank(r.get("error")) for r in rows):
            count("failed before")
            continue
        if any(r.get("preset") != expected.preset or str(r.get("config_hash")) != expected.config_hash
               for r in rows):
            count("other configuration")
            continue
        data = {"" if _blank(r.get("data_hash")) else str(r.get("data_hash")) for r in rows}
        if data != {expected.data_hash}:
            count("other data")
            continue
        n = {r.get("point_rows") for r in rows}
        if len(n) != 1 or _blank(next(iter(n))) or int(float(next(iter(n)))) != len(rows):
            count("incomplete")
            continue
        code = {str(r.get("code_hash")) for r in rows}
        if code and code <= set(expected.code_aliases):       # this same code, fingerprinted the old way
            for r in rows:
                r["code_hash"] = expected.code_hash
            res.restamped += 1
            code = {expected.code_hash}
        if code != {expected.code_hash}:
            if not expected.reuse_stale:
                count("made by other code")
                continue
            res.stale[key] = rows
        for r in rows:
            r["data_hash"] = expected.data_hash       # "" reads back as NaN
        res.done[key] = rows
        kept += len(rows)
    res.dropped_rows = len(finished) - kept
    return res


def legacy_resume(frame: pd.DataFrame | None, keys: list[str], expected: Expected, saved_config: dict | None,
                  meta: dict) -> pd.DataFrame | None:
    """A table from before rows carried their hashes (no ``config_hash`` column) as one with them, when its
    config file shows the same module, preset and configuration: its code and data are unrecorded, so its
    points are reused only with ``reuse_stale`` (which then also vouches for the unrecorded data of a module
    that reads data files; the run says which points it reused). Rows whose data hash *is* recorded and
    differs are never reused (``resume``)."""
    if frame is None or "config_hash" in frame.columns:
        return frame
    same = saved_config is not None and {k: saved_config.get(k) for k in meta} == json.loads(
        json.dumps(meta, default=str))
    frame = frame.copy()
    frame["config_hash"] = expected.config_hash if same else "unrecorded"
    frame["data_hash"] = expected.data_hash if (expected.reuse_stale or not expected.data_hash) else "unrecorded"
    frame["code_hash"] = "unrecorded"
    frame["point_rows"] = frame.groupby("point")["point"].transform("size") if "point" in frame else 0
    return frame


def frame(rows: list[dict], order: dict | None = None) -> pd.DataFrame:
    """The table of ``rows``: in grid order (``order``: point key -> position; rows of one point keep their
    order), runner columns last."""
    if order is not None:
        rows = sorted(rows, key=lambda r: order.get(r.get("point"), len(order)))
    table = pd.DataFrame(rows)
    front = [c for c in table.columns if c not in RUNNER_COLUMNS and c != "error"]
    back = (["error"] if "error" in table.columns else []) + [c for c in RUNNER_COLUMNS if c in table.columns]
    return table[front + back]


def write_table(table: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda p: table.to_csv(p, index=False))


# ----------------------------------------------------------------------------------- config and run record
def read_config(path: Path) -> dict | None:
    """The saved configuration, or None (no file). A damaged one (not JSON, or not an object with module,
    preset and config) is moved aside with a one-line notice and treated as absent."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problem = str(getattr(exc, "strerror", None) or exc)
    else:
        try:
            saved = json.loads(text)
            if isinstance(saved, dict) and isinstance(saved.get("module"), str) and isinstance(saved.get("config"), dict):
                return saved
            problem = "not an object with 'module', 'preset' and 'config'"
        except json.JSONDecodeError as exc:
            problem = f"not JSON: {exc}"
    moved = move_aside(path, "damaged")
    notice(f"configuration {path} is damaged ({problem}): moved to {moved}; writing a new one")
    return None


def write_json(path: Path, value: dict) -> None:
    atomic_write(path, lambda p: Path(p).write_text(json.dumps(value, indent=2, default=str) + "\n"))


# ------------------------------------------------------------------------------------------------ the lock
def _process_start(pid: int) -> str | None:
    """The start time of a process (Linux: field 22 of /proc/PID/stat), to tell a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class OutputLock:
    """An exclusive lock on an output folder, held for one run: ``with OutputLock(folder): ...``. A second
    run (another process, or another run in this one) is refused with a one-line ``LockedError`` naming the
    holder. The lock is an ``flock`` on ``folder/.verify.lock``, released by the kernel if its holder dies;
    the holder's description inside is then left behind, and the next run says it broke that stale lock."""

    NAME = ".verify.lock"

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.path = self.folder / self.NAME
        self.fd = None

    def __enter__(self):
        import fcntl

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            from ._io import OutputError

            raise OutputError(exc.errno, f"could not write {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(fd)
            os.close(fd)
            who = (f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}: "
                   f"{holder.get('command')}") if holder else "a process that has not described itself yet"
            raise LockedError(f"{self.folder} is being written by another verify run ({who}); wait for it to "
                              "finish or stop it") from None
        except OSError:
            pass                                          # no flock on this file system: best effort
        old = self._holder(fd)
        if old:
            notice(f"broke a stale lock on {self.folder} left by pid {old.get('pid')} on {old.get('host')} "
                   f"(since {old.get('since')}), which is gone")
        me = {"pid": os.getpid(), "host": socket.gethostname(), "start": _process_start(os.getpid()),
              "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)[:300]}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(me).encode(), 0)
        self.fd = fd
        return self

    @staticmethod
    def _holder(fd) -> dict:
        try:
            text = os.pread(fd, 65536, 0).decode("utf-8", errors="replace").strip()
            return json.loads(text) if text else {}
        except (OSError, json.JSONDecodeError):
            return {"pid": "?", "host": "?", "since": "?", "command": "?"}

    def __exit__(self, *exc):
        import fcntl

        if self.fd is not None:
            try:
                os.ftruncate(self.fd, 0)                  # released cleanly: nothing stale left behind
                fcntl.flock(self.fd, fcntl.LOCK_UN)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = None
        return False
