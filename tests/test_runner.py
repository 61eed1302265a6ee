"""verify.runner with a tiny fake module: incremental writes, resume, configuration changes, error rows,
--fresh, plot_only, the runner's columns; and the command line (`list`, unknown names)."""

import dataclasses
import io
import json
from contextlib import redirect_stdout
from types import SimpleNamespace

import pandas as pd
import pytest

import verify
from verify import runner
from verify.__main__ import main


@dataclasses.dataclass(frozen=True)
class FakeConfig:
    values: tuple
    fail_on: tuple = ()


def fake_module(config: FakeConfig, table_path=None):
    """A module squaring each grid value; counts calls to run_point and, if ``table_path`` is given,
    records how many rows are on disk when each point starts."""
    calls, on_disk = [], []

    def grid(cfg):
        return [{"x": v, "seed": 0} for v in cfg.values]

    def run_point(point, cfg, device):
        calls.append(point["x"])
        if table_path is not None:
            on_disk.append(len(pd.read_csv(table_path)) if table_path.exists() else 0)
        if point["x"] in cfg.fail_on:
            raise RuntimeError(f"boom at {point['x']}")
        return {"y": point["x"] ** 2}

    def plot(table, cfg):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots()
        ax.plot(table["x"], table["y"], "o")
        return fig

    module = SimpleNamespace(NAME="fake", CLAIM="squares", PRESETS={"smoke": config, "cpu": config},
                             grid=grid, run_point=run_point, plot=plot)
    return module, calls, on_disk


def test_rows_are_written_as_each_point_finishes_and_have_runner_columns(tmp_path):
    module, calls, on_disk = fake_module(FakeConfig(values=(1, 2, 3)), tmp_path / "fake.csv")
    table = runner.run_module(module, "smoke", out=tmp_path, quiet=True)
    assert calls == [1, 2, 3]
    assert on_disk == [0, 1, 2]                      # the table grows point by point
    assert table["y"].tolist() == [1, 4, 9]
    for col in ["seed", "preset", "device", "runtime_s", "point"]:
        assert col in table.columns
    assert set(table["preset"]) == {"smoke"} and table["runtime_s"].ge(0).all()
    assert table["point"].tolist() == [runner.point_key({"x": v, "seed": 0}) for v in (1, 2, 3)]
    saved = pd.read_csv(tmp_path / "fake.csv")
    assert saved["y"].tolist() == [1, 4, 9]
    assert (tmp_path / "fake.png").stat().st_size > 0
    assert json.loads((tmp_path / "fake.config.json").read_text())["config"]["values"] == [1, 2, 3]


def test_rerun_skips_finished_points_and_fresh_recomputes(tmp_path):
    module, calls, _ = fake_module(FakeConfig(values=(1, 2, 3)))
    runner.run_module(module, "smoke", out=tmp_path, quiet=True)
    table = runner.run_module(module, "smoke", out=tmp_path, quiet=True)
    assert calls == [1, 2, 3] and len(table) == 3
    table = runner.run_module(module, "smoke", out=tmp_path, quiet=True, fresh=True)
    assert calls == [1, 2, 3, 1, 2, 3] and len(table) == 3


def test_changed_configuration_starts_afresh(tmp_path):
    module, calls, _ = fake_module(FakeConfig(values=(1, 2)))
    runner.run_module(module, "smoke", out=tmp_path, quiet=True)
    changed, calls2, _ = fake_module(FakeConfig(values=(1, 2, 5)))
    table = runner.run_module(changed, "smoke", out=tmp_path, quiet=True)
    assert calls2 == [1, 2, 5]                       # nothing reused from another configuration
    assert table["y"].tolist() == [1, 4, 25]
    # the same configuration under another preset name is another run, too
    runner.run_module(changed, "cpu", out=tmp_path, quiet=True)
    assert calls2 == [1, 2, 5, 1, 2, 5]


def test_failing_point_gives_an_error_row_and_raises(tmp_path):
    module, calls, _ = fake_module(FakeConfig(values=(1, 2, 3), fail_on=(2,)))
    with pytest.raises(runner.SweepError, match="1 of 3 grid points failed"):
        runner.run_module(module, "smoke", out=tmp_path, quiet=True)
    assert calls == [1, 2, 3]                        # the sweep carried on after the failure
    saved = pd.read_csv(tmp_path / "fake.csv")
    assert "error" in saved.columns
    failed = saved[saved["error"].notna()]
    assert failed["x"].tolist() == [2] and "RuntimeError: boom at 2" in failed["error"].iloc[0]
    assert saved[saved["error"].isna()]["y"].tolist() == [1, 9]
    # a rerun (same config) retries only the failed point
    with pytest.raises(runner.SweepError):
        runner.run_module(module, "smoke", out=tmp_path, quiet=True)
    assert calls == [1, 2, 3, 2]


def test_plot_only_redraws_from_the_table(tmp_path):
    module, calls, _ = fake_module(FakeConfig(values=(1, 2)))
    runner.run_module(module, "smoke", out=tmp_path, quiet=True)
    (tmp_path / "fake.png").unlink()
    table = runner.run_module(module, "smoke", out=tmp_path, quiet=True, plot_only=True)
    assert calls == [1, 2]
    assert (tmp_path / "fake.png").stat().st_size > 0
    assert table["y"].tolist() == [1, 4]


def test_unknown_preset_is_named(tmp_path):
    module, _, _ = fake_module(FakeConfig(values=(1,)))
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        runner.run_module(module, "huge", out=tmp_path, quiet=True)


def test_point_key_is_stable_and_order_free():
    assert runner.point_key({"b": 0.01, "a": 1}) == runner.point_key({"a": 1, "b": 0.01}) == "a=1|b=0.01"


def test_command_line_list_and_unknown_module():
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["list"]) == 0
    text = out.getvalue()
    assert "lipschitz_vs_t" in text
    for name in verify.modules():
        assert name in text
    assert main(["no_such_module", "--preset", "smoke"]) == 2          # one line, no traceback (tests/test_cli.py)
    with pytest.raises(ValueError, match="unknown verify module 'no_such_module'"):
        verify.get("no_such_module")


def test_checkpoint_helper_is_atomic_and_caches(tmp_path, monkeypatch):
    import torch

    from verify import _io

    monkeypatch.setenv("MEMSEP_CHECKPOINTS", str(tmp_path))
    ck = _io.Checkpoint.for_run("kind", {"a": 1})
    assert ck.path.parent == tmp_path / "kind" and ck.load() is None
    state = {"w": torch.arange(3.0)}
    ck.save(state)
    state["w"] += 1                                         # saved at once: later changes do not leak in
    assert torch.equal(ck.load()["w"], torch.arange(3.0))
    assert [p.name for p in ck.path.parent.iterdir()] == [ck.path.name]   # no temporary file left
    calls = []
    cache = _io.Checkpoint(tmp_path / "c.pt")
    assert cache.cached(lambda: calls.append(1) or 7) == 7 and cache.cached(lambda: calls.append(1) or 8) == 7
    assert calls == [1]
    ck.clear()
    assert ck.load() is None and _io.Checkpoint.for_run("kind", {"a": 2}).path != ck.path


# --------------------------------------------------------------------------------------------- no churn
MODULE_SOURCE = '''
import dataclasses

NAME = "filed"
CALLS = {"run": 0, "plot": 0}


@dataclasses.dataclass(frozen=True)
class Config:
    values: tuple


PRESETS = {"smoke": Config(values=(1, 2, 3)), "cpu": Config(values=(1, 2, 3))}


def grid(cfg):
    return [{"x": v, "seed": 0} for v in cfg.values]


def run_point(point, cfg, device):
    CALLS["run"] += 1
    return {"y": point["x"] ** 2}


def plot(table, cfg):
    import matplotlib.pyplot as plt

    CALLS["plot"] += 1
    fig, ax = plt.subplots()
    ax.plot(table["x"], table["y"], "o-")
    ax.set_title("squares")
    return fig
'''


def _filed_module(tmp_path, source=MODULE_SOURCE):
    """A verify-like module with a source file (the figure's stamp hashes the module's source)."""
    import importlib.util

    path = tmp_path / "filed_module.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("filed_module", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_a_rerun_that_computes_nothing_rewrites_nothing(tmp_path):
    mod = _filed_module(tmp_path)
    out = tmp_path / "out"
    runner.run_module(mod, "cpu", out=out, quiet=True)

    def committed():       # the files a repository keeps (the run record and the lock are git-ignored)
        return {p.name: p.read_bytes() for p in out.iterdir() if not p.name.endswith(".run.json")
                and p.name != ".verify.lock"}

    files = committed()
    assert sorted(files) == ["filed.config.json", "filed.csv", "filed.png"]
    saved = json.loads(files["filed.config.json"])
    assert "started" not in saved and set(saved) == {"module", "preset", "config", "config_hash", "data_hash", "code"}
    assert "started" in json.loads((out / "filed.run.json").read_text())      # the volatile provenance
    runner.run_module(mod, "cpu", out=out, quiet=True)
    assert mod.CALLS == {"run": 3, "plot": 1}                      # nothing computed, nothing drawn
    assert committed() == files
    # a changed table (or a changed module) makes the figure stale: it is redrawn, the same way each time
    table = pd.read_csv(out / "filed.csv")
    table.loc[0, "y"] = 2
    table.to_csv(out / "filed.csv", index=False)
    runner.run_module(mod, "cpu", out=out, quiet=True)
    assert mod.CALLS["plot"] == 2 and (out / "filed.png").read_bytes() != files["filed.png"]
    redrawn = _filed_module(tmp_path, MODULE_SOURCE.replace('"squares"', '"squares!"'))
    runner.run_module(redrawn, "cpu", out=out, quiet=True)      # a changed figure: redrawn, nothing recomputed
    assert redrawn.CALLS == {"run": 0, "plot": 1}
    changed = _filed_module(tmp_path, MODULE_SOURCE.replace('point["x"] ** 2', 'point["x"] ** 2 + 0'))
    runner.run_module(changed, "cpu", out=out, quiet=True)      # other row code: its rows are recomputed too
    assert changed.CALLS == {"run": 3, "plot": 1}


def test_an_old_timestamp_is_dropped_and_the_provenance_moves_to_the_run_record(tmp_path):
    """A config file written by an older runner (with a "started" time and the device) is rewritten on a
    rerun that computes nothing, without them: when and where a run happened is in NAME.run.json."""
    module, _, calls = fake_module(FakeConfig(values=(1, 2)))
    runner.run_module(module, "smoke", out=tmp_path, quiet=True)
    path = tmp_path / "fake.config.json"
    saved = json.loads(path.read_text())
    path.write_text(json.dumps({**saved, "device_name": "a GPU elsewhere", "started": "2026-01-01 00:00:00"}))
    n_calls = len(calls)
    runner.run_module(module, "smoke", out=tmp_path, quiet=True)
    assert len(calls) == n_calls
    assert json.loads(path.read_text()) == saved
    record = json.loads((tmp_path / "fake.run.json").read_text())
    assert {"started", "device", "device_name", "torch", "python"} <= set(record)


def test_redraws_are_byte_identical(tmp_path):
    """--plot-only twice gives the same bytes; so does drawing a committed table twice; the PNG names no
    software version and carries the stamp of its table and module."""
    from verify import _io, lipschitz_vs_t

    mod = _filed_module(tmp_path)
    runner.run_module(mod, "cpu", out=tmp_path, quiet=True)
    first = (tmp_path / "filed.png").read_bytes()
    runner.run_module(mod, "cpu", out=tmp_path, quiet=True, plot_only=True)
    assert (tmp_path / "filed.png").read_bytes() == first
    assert b"Matplotlib" not in first and b"Software" not in first
    assert _io.figure_stamp(tmp_path / "filed.png") == runner._stamp(mod, tmp_path / "filed.csv")
    assert _io.figure_stamp(tmp_path / "filed.csv") is None and _io.figure_stamp(tmp_path / "none.png") is None
    table = pd.read_csv(runner.RESULTS / "cpu" / "lipschitz_vs_t.csv")
    drawn = []
    for name in ("a", "b"):
        paths = runner.Paths(runner.RESULTS / "cpu" / "lipschitz_vs_t.csv", tmp_path / f"{name}.png", tmp_path / "x")
        runner._draw(lipschitz_vs_t, table, lipschitz_vs_t.PRESETS["cpu"], paths)
        drawn.append((tmp_path / f"{name}.png").read_bytes())
    assert drawn[0] == drawn[1]


def test_progress_hook_gets_one_update_per_point(tmp_path):
    module, _, _ = fake_module(FakeConfig(values=(1, 2, 3)))
    seen = []

    class Recorder:
        def __init__(self, name, total):
            seen.append(("start", name, total))

        def update(self, n=1):
            seen.append(("update", n))

        def close(self):
            seen.append(("close",))

    runner.run_module(module, "smoke", out=tmp_path, quiet=True, progress=Recorder)
    assert seen == [("start", "fake", 3), ("update", 1), ("update", 1), ("update", 1), ("close",)]


def test_points_are_appended_and_the_finished_table_is_the_full_rewrite(tmp_path, monkeypatch):
    """TableWriter: a finished point costs an append of its own rows, not a rewrite of the table (the whole
    table is written once at the first point and once at the end), and the finished file is byte for byte
    what writing the whole table in grid order gives."""
    module, calls, on_disk = fake_module(FakeConfig(values=(5, 1, 4, 2, 3, 6)), tmp_path / "fake.csv")
    saves = []
    real = runner._save
    monkeypatch.setattr(runner, "_save", lambda rows, order, path: saves.append(len(rows)) or real(rows, order, path))
    table = runner.run_module(module, "smoke", out=tmp_path, quiet=True)
    assert on_disk == [0, 1, 2, 3, 4, 5]                     # still saved point by point
    assert saves == [1, 6]                                   # first point, then the final grid-order rewrite
    rows = {k: g.to_dict("records") for k, g in table.groupby("point", sort=False)}
    real(rows, {k: i for i, k in enumerate(table["point"])}, tmp_path / "again.csv")
    assert (tmp_path / "fake.csv").read_bytes() == (tmp_path / "again.csv").read_bytes()


def test_a_run_killed_mid_append_keeps_every_whole_point(tmp_path):
    """The file a run killed while appending leaves: points in finishing order, the last line cut short.
    The rerun recomputes only the cut point (and those never reached) and ends with the complete table."""
    module, calls, _ = fake_module(FakeConfig(values=(1, 2, 3, 4, 5)))
    full = runner.run_module(module, "smoke", out=tmp_path, quiet=True)
    path = tmp_path / "fake.csv"
    header, *lines = path.read_text().splitlines(keepends=True)
    killed = header + lines[2] + lines[0] + lines[1] + lines[3][: len(lines[3]) // 2]   # 3, 1, 2 whole; 4 cut
    path.write_text(killed)
    calls.clear()
    again = runner.run_module(module, "smoke", out=tmp_path, quiet=True)
    assert calls == [4, 5]
    cols = [c for c in full.columns if c != "runtime_s"]
    pd.testing.assert_frame_equal(again[cols], full[cols])
    assert pd.read_csv(path)["y"].tolist() == [1, 4, 9, 16, 25]          # grid order again
