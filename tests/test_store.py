"""verify.store and the runner's storage: resume keys with code, data and configuration hashes, complete
points only, damaged tables / configs / checkpoints moved aside and recomputed, the output-folder lock,
permissions from the umask, one-line write errors with the rows intact, and leftover temporaries."""

import dataclasses
import errno
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import sweep_fixture as fx
from verify import _io, runner, store
from verify.__main__ import main


def run(tmp_path, cfg=None, preset="smoke", quiet=False, **kw):
    module = fx
    if cfg is not None:
        module = _with_config(cfg, preset)
    return runner.run_module(module, preset, out=tmp_path, quiet=quiet, **kw)


def _with_config(cfg, preset):
    """sweep_fixture with another preset configuration (same code)."""
    from types import SimpleNamespace

    ns = SimpleNamespace(**{k: getattr(fx, k) for k in ("NAME", "CLAIM", "grid", "run_point", "plot",
                                                        "data_fingerprint")})
    ns.__file__ = fx.__file__
    ns.PRESETS = {preset: cfg}
    return ns


def table_of(tmp_path):
    return pd.read_csv(tmp_path / "sweep_fixture.csv")


def test_rows_carry_point_rows_and_the_three_hashes(tmp_path):
    table = run(tmp_path, preset="cpu")
    assert len(table) == 12 and set(table["point_rows"]) == {3}
    code = store.code_fingerprint(fx)
    assert set(table["code_hash"]) == {code.hash} and table["config_hash"].nunique() == 1
    saved = json.loads((tmp_path / "sweep_fixture.config.json").read_text())
    assert saved["code"]["hash"] == code.hash and saved["config_hash"] == table["config_hash"].iloc[0]
    assert "started" not in saved and "git" not in saved            # volatile values live in the run record
    record = json.loads((tmp_path / "sweep_fixture.run.json").read_text())
    assert {"started", "git", "host", "torch"} <= set(record)
    present = [c for c in store.RUNNER_COLUMNS if c in table.columns]      # "overrides" only on runs with them
    assert present == [c for c in store.RUNNER_COLUMNS if c != "overrides"]
    assert list(table.columns[-len(present):]) == present


def test_code_fingerprint_ignores_comments_and_docstrings_not_code(tmp_path):
    a = tmp_path / "a.py"
    a.write_text('"""doc"""\ndef f(x):\n    """doc"""\n    return x + 1  # note\n')
    h = store.source_hash(a)
    a.write_text('"""other doc"""\n\n\ndef f(x):\n    # a comment\n    return x + 1\n')
    assert store.source_hash(a) == h
    a.write_text('def f(x):\n    return x + 2\n')
    assert store.source_hash(a) != h


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod          # dataclasses look their module up while it executes
    spec.loader.exec_module(mod)
    return mod


NO_FILE = """
def grid(cfg):
    return [{"x": v, "seed": 0} for v in (1, 2)]

def run_point(point, cfg, device):
    return {"y": point["x"] * K, "in": point["x"] in {"a", "b", "c"}}
"""


def _file_less(k):
    from types import SimpleNamespace

    scope = {"K": k}
    exec(compile(NO_FILE.replace("K", str(k)), "<benchmark>", "exec"), scope)
    return SimpleNamespace(NAME="file_less", grid=scope["grid"], run_point=scope["run_point"])


def test_a_module_without_a_file_has_one_code_hash_in_every_process():
    """As a Dask worker sees it: functions pickled by value, no source to read."""
    import cloudpickle

    here = store.code_fingerprint(_file_less(2)).hash
    assert store.code_fingerprint(_file_less(3)).hash != here                    # other code, other hash
    blob = cloudpickle.dumps(_file_less(2)).hex()
    there = subprocess.run([sys.executable, "-c", textwrap.dedent(f"""
        import pickle, sys
        sys.path.insert(0, {str(Path(store.__file__).parents[1])!r})
        from verify import store
        print(store.code_fingerprint(pickle.loads(bytes.fromhex("{blob}"))).hash)
        """)], capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "12345"}, timeout=900)
    assert there.stdout.strip() == here, there.stderr[-2000:]


def test_changed_code_is_recomputed_and_reuse_stale_reuses_and_says_so(tmp_path, capsys):
    src = Path(fx.__file__).read_text()
    path = tmp_path / "mod" / "changing_fixture.py"
    path.parent.mkdir()
    path.write_text(src)
    out = tmp_path / "out"
    first = runner.run_module(_load(path, "changing_fixture"), "smoke", out=out, quiet=True)
    path.write_text(src.replace("return [{\"y\": x ** 2", "return [{\"y\": x ** 2 + 0"))   # a change to the code
    os.utime(path, ns=(time.time_ns() + 10 ** 9,) * 2)
    changed = _load(path, "changing_fixture")
    assert store.code_fingerprint(changed).hash != first["code_hash"].iloc[0]
    capsys.readouterr()
    again = runner.run_module(changed, "smoke", out=out, quiet=True)
    err = capsys.readouterr().err
    assert "3 made by other code" in err and "--reuse-stale" in err
    assert set(again["code_hash"]) == {store.code_fingerprint(changed).hash}
    assert list((out / ".memsep-aside").iterdir())                        # the old rows are kept aside
    path.write_text(src)                                                  # back to the first code
    os.utime(path, ns=(time.time_ns() + 2 * 10 ** 9,) * 2)
    original = _load(path, "changing_fixture")
    reused = runner.run_module(original, "smoke", out=out, quiet=True, reuse_stale=True)
    err = capsys.readouterr().err
    assert "reusing 3 point(s) made by other code" in err and "--reuse-stale" in err
    assert set(reused["code_hash"]) == set(again["code_hash"])            # rows keep their own code hash


ROWS_MODULE = """
import dataclasses

NAME = "rows_fixture"
CLAIM = "squares"
SCALE = 1


@dataclasses.dataclass(frozen=True)
class Config:
    values: tuple = (1, 2, 3)


PRESETS = {"smoke": Config()}


def grid(cfg):
    return [{"x": v, "seed": 0} for v in cfg.values]


def _square(x):
    return SCALE * x ** 2


def run_point(point, cfg, device):
    return {"y": _square(point["x"])}


def _mean(table):
    return table["y"].mean()


def judge_mean(table, *, low=1.0):
    return _mean(table) > low


def plot(table, cfg):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot(table["x"], table["y"], "o")
    ax.set_title("squares")
    return fig


CLAIMS = []
"""


@pytest.mark.parametrize("edit, row_code", [
    (("ax.set_title(\"squares\")", "ax.set_title(\"cubes\")"), False),        # the figure
    (("return _mean(table) > low", "return _mean(table) >= low"), False),       # a rule
    (("return table[\"y\"].mean()", "return table[\"y\"].median()"), False),  # a helper only rules use
    (("CLAIMS = []", "CLAIMS = [1]"), False),
    (("CLAIM = \"squares\"", "CLAIM = \"cubes\""), False),
    (("return SCALE * x ** 2", "return SCALE * x ** 3"), True),                 # a helper run_point uses
    (("SCALE = 1", "SCALE = 2"), True),                                         # a constant it reads
    (("values: tuple = (1, 2, 3)", "values: tuple = (1, 2)"), True),            # the configuration class
])
def test_only_code_that_makes_rows_is_in_the_code_hash(tmp_path, edit, row_code):
    """A module's rules, figure and descriptions are not part of the fingerprint of its rows: fixing a
    figure or a rule does not make hours of rows stale; anything grid or run_point reaches is."""
    path = tmp_path / "rows_fixture.py"
    path.write_text(ROWS_MODULE)
    before = store.code_fingerprint(_load(path, "rows_fixture"))
    assert ROWS_MODULE.count(edit[0]) == 1
    path.write_text(ROWS_MODULE.replace(*edit))
    os.utime(path, ns=(time.time_ns() + 10 ** 9,) * 2)
    after = store.code_fingerprint(_load(path, "rows_fixture"))
    assert (after.hash != before.hash) == row_code
    assert after.previous != before.previous                  # the old, whole-file fingerprint saw every edit


def test_rows_with_the_old_fingerprint_of_the_same_code_are_re_stamped_not_recomputed(tmp_path, capsys):
    """Rows made before the row-code fingerprint carry the whole-file hash of the code that made them: that
    same code now has another hash, and its rows are re-stamped (said once), never recomputed."""
    path = tmp_path / "rows_fixture.py"
    path.write_text(ROWS_MODULE)
    mod = _load(path, "rows_fixture")
    out = tmp_path / "out"
    first = runner.run_module(mod, "smoke", out=out, quiet=True)
    fp = store.code_fingerprint(mod)
    assert fp.previous and fp.previous != fp.hash and set(first["code_hash"]) == {fp.hash}
    old = pd.read_csv(out / "rows_fixture.csv").assign(code_hash=fp.previous)
    old.to_csv(out / "rows_fixture.csv", index=False)
    capsys.readouterr()
    calls = []
    mod.run_point = lambda *a: calls.append(a) or {"y": 0}
    again = runner.run_module(mod, "smoke", out=out)
    err = capsys.readouterr().err
    assert not calls and "3 point(s) made by this same code" in err and "re-stamped" in err
    assert set(pd.read_csv(out / "rows_fixture.csv")["code_hash"]) == {fp.hash}
    assert again["y"].tolist() == first["y"].tolist()
    other = old.assign(code_hash="0123456789ab")                 # any other hash is other code
    other.to_csv(out / "rows_fixture.csv", index=False)
    runner.run_module(mod, "smoke", out=out, quiet=True)
    assert len(calls) == 3


def test_changed_data_is_never_reused(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("SWEEP_FIXTURE_DATA", "aaaa")
    run(tmp_path)
    capsys.readouterr()
    monkeypatch.setenv("SWEEP_FIXTURE_DATA", "bbbb")
    table = run(tmp_path, reuse_stale=True)
    assert "3 other data" in capsys.readouterr().err
    assert set(table["data_hash"]) == {"bbbb"}


def test_a_point_with_missing_rows_is_recomputed_and_nothing_is_lost(tmp_path, capsys):
    full = run(tmp_path, preset="cpu")
    path = tmp_path / "sweep_fixture.csv"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:1 + 3 + 3 + 1]))             # header, two points, 1 of 3 rows of the third
    capsys.readouterr()
    again = run(tmp_path, preset="cpu")
    err = capsys.readouterr().err
    assert "1 incomplete" in err and "resuming: 2 of 4 points" in err
    pd.testing.assert_frame_equal(again.drop(columns="runtime_s"), full.drop(columns="runtime_s"))


def test_a_table_cut_mid_row_is_salvaged(tmp_path, capsys):
    full = run(tmp_path, preset="cpu")
    path = tmp_path / "sweep_fixture.csv"
    text = path.read_text()
    path.write_text(text[: len(text) - 25])                     # cut inside the last row
    read = store.read_table(path)
    assert "cut mid-row" in read.damage and len(read.frame) == 11
    capsys.readouterr()
    again = run(tmp_path, preset="cpu")
    err = capsys.readouterr().err
    assert f"table {path} is damaged (last line cut mid-row)" in err and "resuming: 3 of 4" in err
    pd.testing.assert_frame_equal(again.drop(columns="runtime_s"), full.drop(columns="runtime_s"))
    aside = list((tmp_path / ".memsep-aside").iterdir())
    assert [p.read_text() for p in aside] == [text[: len(text) - 25]]   # the damaged file is kept, not deleted


@pytest.mark.parametrize("garbage", [b"\x00\x01garbage\xff\n", b"", b"a,b\n1,2\n"])
def test_a_garbage_table_is_moved_aside_and_recomputed(tmp_path, capsys, garbage):
    (tmp_path / "sweep_fixture.csv").write_bytes(garbage)
    table = run(tmp_path)
    assert table["y"].tolist() == [1, 4, 9]
    assert "is damaged" in capsys.readouterr().err
    assert any(p.read_bytes() == garbage for p in (tmp_path / ".memsep-aside").iterdir())


@pytest.mark.parametrize("text", ['{"module": "sweep_fix', '[1, 2]', '{"module": 3}'])
def test_a_damaged_config_is_moved_aside_and_rewritten(tmp_path, capsys, text):
    run(tmp_path)
    (tmp_path / "sweep_fixture.config.json").write_text(text)
    capsys.readouterr()
    table = run(tmp_path)
    err = capsys.readouterr().err
    assert f"configuration {tmp_path / 'sweep_fixture.config.json'} is damaged" in err
    assert "resuming: 3 of 3" in err and len(table) == 3          # the rows carry their own hashes
    assert json.loads((tmp_path / "sweep_fixture.config.json").read_text())["module"] == "sweep_fixture"


def test_a_corrupt_checkpoint_is_named_moved_aside_and_recomputed(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEMSEP_CHECKPOINTS", str(tmp_path))
    ck = _io.Checkpoint.for_run("kind", {"a": 1})
    ck.save({"w": torch.arange(1000.0)})
    raw = ck.path.read_bytes()
    ck.path.write_bytes(raw[: len(raw) // 2])                   # truncated
    calls = []
    assert ck.cached(lambda: calls.append(1) or 5) == 5 and calls == [1]
    err = capsys.readouterr().err
    assert f"checkpoint {ck.path} is unreadable" in err and ".memsep-aside" in err
    assert ck.load() == 5


def test_checkpoints_record_their_code_and_fresh_ignores_old_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MEMSEP_CHECKPOINTS", str(tmp_path))
    ck = _io.Checkpoint(tmp_path / "c.pt")
    with _io.checkpoint_policy(_io.CheckpointPolicy(code="old")):
        ck.save(1)
    with _io.checkpoint_policy(_io.CheckpointPolicy(code="new")):
        assert ck.load() is None
    assert "made by other code (old, now new): not resumed" in capsys.readouterr().err
    with _io.checkpoint_policy(_io.CheckpointPolicy(code="new", reuse_stale=True)):
        assert ck.load() == 1
    assert "because of --reuse-stale" in capsys.readouterr().err
    with _io.checkpoint_policy(_io.CheckpointPolicy(code="old", not_before=time.time() + 1)):
        assert ck.load() is None                                # --fresh: written before the run started
    assert ck.load() == 1                                       # outside the runner: any readable checkpoint


def test_fresh_also_bypasses_caches(tmp_path, capsys):
    """A module caching a value through Checkpoint.cached: a rerun reuses the cache, --fresh recomputes it."""
    src = Path(fx.__file__).read_text().replace(
        "    draw = float(torch.rand(()))",
        "    from verify._io import Checkpoint\n    draw = float(Checkpoint(Path(cfg.marker_dir) / f'{x}.pt')"
        ".cached(lambda: torch.rand(())))")
    path = tmp_path / "caching_fixture.py"
    path.write_text(src)
    mod = _load(path, "caching_fixture")
    mod.PRESETS = {"smoke": fx.Config(marker_dir=str(tmp_path))}
    out = tmp_path / "o"
    first = runner.run_module(mod, "smoke", out=out, quiet=True)
    with _io.checkpoint_policy(_io.CheckpointPolicy(code=store.code_fingerprint(mod).hash)):
        _io.Checkpoint(tmp_path / "1.pt").save(torch.tensor(123.0))         # a cache left by an earlier run
    (out / "sweep_fixture.csv").unlink()
    assert runner.run_module(mod, "smoke", out=out, quiet=True)["draw"].tolist()[0] == 123.0   # reused
    fresh = runner.run_module(mod, "smoke", out=out, quiet=True, fresh=True)
    assert fresh["draw"].tolist() == first["draw"].tolist()                # recomputed (seeded per point)


def test_a_second_run_on_the_folder_is_refused_with_one_line(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(store.__file__).parents[1])!r})
        from verify.store import OutputLock
        with OutputLock({str(tmp_path)!r}):
            print("held", flush=True)
            time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(store.LockedError, match=f"{tmp_path} is being written by another verify run "
                                                    f"\\(pid {holder.pid} on "):
            run(tmp_path)
    finally:
        holder.kill()
        holder.wait()
    capsys.readouterr()
    run(tmp_path)                                              # the holder is gone: its lock is stale
    assert f"broke a stale lock on {tmp_path} left by pid {holder.pid}" in capsys.readouterr().err


def test_the_lock_refuses_a_second_run_in_the_same_process(tmp_path):
    with store.OutputLock(tmp_path):
        with pytest.raises(store.LockedError):
            run(tmp_path)
    run(tmp_path)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_output_files_follow_the_umask(tmp_path, mask, mode):
    old = os.umask(mask)
    try:
        run(tmp_path)
    finally:
        os.umask(old)
    for name in ("sweep_fixture.csv", "sweep_fixture.config.json", "sweep_fixture.png"):
        assert (tmp_path / name).stat().st_mode & 0o777 == mode, name


def test_a_full_disk_gives_one_line_naming_the_file_and_keeps_the_rows(tmp_path, monkeypatch, capsys):
    import tempfile

    run(tmp_path)
    path = tmp_path / "sweep_fixture.csv"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:3]))   # point 3 still to do
    before = path.read_text()
    real, calls = tempfile.mkstemp, []

    def full(*a, **k):
        calls.append(1)
        if len(calls) > 2:                                     # config and run record fit, the table not
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(_io.tempfile, "mkstemp", full)
    with pytest.raises(_io.OutputError) as info:
        run(tmp_path)
    msg = info.value.strerror
    assert msg.startswith(f"could not write {tmp_path / 'sweep_fixture.csv'}: No space left on device")
    assert "keeps the 2 row(s)" in msg and "\n" not in msg
    assert (tmp_path / "sweep_fixture.csv").read_text() == before


def test_the_command_line_says_a_write_error_in_one_line(tmp_path, monkeypatch, capsys):
    def readonly(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(_io.tempfile, "mkstemp", readonly)
    assert main(["lipschitz_vs_t", "--preset", "smoke", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("verify: error: ") and ("Read-only file system" in err[-1] or "cannot write" in err[-1])
    assert not any("Traceback" in line for line in err)


def test_leftover_temporaries_of_killed_runs_are_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMSEP_CHECKPOINTS", str(tmp_path / "ck"))
    dead = 2 ** 22 + 12345                                     # above pid_max: never alive
    host = _io._writer_tag().rsplit("-", 1)[0]
    (tmp_path / "ck" / "kind").mkdir(parents=True)
    stale = [tmp_path / f".sweep_fixture.csv.{host}-{dead}.x1y2.tmp", tmp_path / ".sweep_fixture.csv.abc123.tmp",
             tmp_path / "ck" / "kind" / f".c.pt.{host}-{dead}.q.tmp"]
    live = [tmp_path / "ck" / "kind" / f".d.pt.{host}-{os.getppid()}.q.tmp",   # a live writer's
            tmp_path / "ck" / "kind" / ".e.pt.old123.tmp",                     # unknown writer, recent
            tmp_path / f".other.csv.{host}-{dead}.z.tmp"]                       # another module's
    for p in stale + live:
        p.write_text("partial")
    run(tmp_path)
    assert not any(p.exists() for p in stale) and all(p.exists() for p in live)


def test_plot_only_refuses_a_missing_table_and_flags_an_incomplete_one(tmp_path):
    with pytest.raises(store.TableError, match="no table to draw at"):
        runner.run_module(fx, "cpu", out=tmp_path, quiet=True, plot_only=True)
    run(tmp_path, preset="cpu")
    path = tmp_path / "sweep_fixture.csv"
    path.write_text("".join(path.read_text().splitlines(keepends=True)[:6]))
    with pytest.raises(runner.SweepError, match=r"incomplete table .* \(1 of 4 points complete"):
        runner.run_module(fx, "cpu", out=tmp_path, quiet=True, plot_only=True)
    assert (tmp_path / "sweep_fixture.png").exists()


def test_results_do_not_depend_on_the_order_of_points(tmp_path):
    """Global generators are seeded per point from the module name and the point key."""
    forward = run(tmp_path / "a", fx.Config(values=(1, 2, 3)))
    backward = run(tmp_path / "b", fx.Config(values=(3, 1, 2)))
    assert dict(zip(forward["x"], forward["draw"])) == dict(zip(backward["x"], backward["draw"]))
    assert forward["draw"].nunique() == 3
    state = torch.random.get_rng_state()
    run(tmp_path / "c")
    assert torch.equal(state, torch.random.get_rng_state())   # the caller's generator is left as it was


def test_a_table_from_before_the_hashes_is_reused_only_with_reuse_stale():
    """A legacy table (no hash columns) whose config file matches: its code and data are unrecorded, so it is
    recomputed by default and reused (as stale) with --reuse-stale, also for a module with data files."""
    meta = {"module": "m", "preset": "cpu", "config": {"a": 1}}
    frame = pd.DataFrame({"point": ["p0", "p1"], "preset": ["cpu", "cpu"], "y": [1.0, 2.0]})
    keys = ["p0", "p1"]
    for data_hash in ("", "abc"):
        strict = store.Expected("cpu", "h", data_hash, "code", False)
        res = store.resume(store.legacy_resume(frame, keys, strict, meta, meta), keys, strict)
        assert not res.done and res.counts.get("made by other code", 0) + res.counts.get("other data", 0) == 2
        lenient = store.Expected("cpu", "h", data_hash, "code", True)
        res = store.resume(store.legacy_resume(frame, keys, lenient, meta, meta), keys, lenient)
        assert sorted(res.done) == keys and sorted(res.stale) == keys
    other = {**meta, "config": {"a": 2}}                      # another configuration: never reused
    res = store.resume(store.legacy_resume(frame, keys, lenient, other, meta), keys, lenient)
    assert not res.done and res.counts == {"other configuration": 2}
