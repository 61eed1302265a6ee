"""The command line: every mistake is one line on stderr with exit status 2, found before anything is
computed (a traceback only with --debug); the paper preset on a CPU warns with its estimate; progress lines
without a terminal; `--help` and `list` import no torch (and answer fast); smoke runs get a fresh folder;
a clone without the data folder skips cifar_pruning in `all` with a line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import verify
from verify import executor, preflight, progress, runner
from verify.__main__ import main

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.usefixtures("one_thread")


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("verify: error: ") and "Traceback" not in err[0]
    return err[0]


@pytest.fixture
def no_computing(monkeypatch):
    """Fails the test if a grid point is run: every error must come before any computing."""
    def refuse(*a, **k):
        raise AssertionError("a point was computed")

    monkeypatch.setattr(executor, "run_task", refuse)


@pytest.fixture
def empty_data(tmp_path, monkeypatch):
    """A clone without the shared data folder: MEMSEP_DATA points at an empty folder."""
    folder = tmp_path / "no_data"
    folder.mkdir()
    monkeypatch.setenv("MEMSEP_DATA", str(folder))
    return folder


@pytest.mark.parametrize("argv, expected", [
    (["lipschitz", "--preset", "smoke"], "unknown verify module 'lipschitz' (did you mean 'lipschitz_vs_t'?)"),
    (["lipschitz_vs_t", "--device", "gpu"], "unknown device 'gpu': use auto, cpu, cuda or cuda:N (did you mean 'cuda'?)"),
    (["lipschitz_vs_t", "--device", "tpu:0"], "unknown device 'tpu:0'"),
    (["lipschitz_vs_t", "--device", "meta"], "device 'meta' is not supported by memsep"),
    (["lipschitz_vs_t", "--preset", "smoke", "--set", "nn=3"], "unknown setting 'nn' for lipschitz_vs_t (did you mean 'n'?)"),
    (["lipschitz_vs_t", "--preset", "smoke", "--set", "n=many"], "bad value 'many' for n: expected int"),
    (["lipschitz_vs_t", "--set", "n"], "--set expects KEY=VALUE, got 'n'"),
    (["lipschitz_vs_t", "--config", "/no/such.toml"], "--config /no/such.toml: no such file"),
    (["lipschitz_vs_t", "--preset", "huge"], "argument --preset: invalid choice: 'huge'"),
    (["lipschitz_vs_t", "--preset", "smoke", "--set", "n_times=0"], "the settings give an empty grid"),
    (["all", "--set", "n=3"], "--set and --config apply to one module"),
    (["report", "--preset", "smoke"], "give it with --out"),
    ([], "the following arguments are required: target"),
])
def test_mistakes_are_one_line_with_status_2(argv, expected, capsys, no_computing):
    assert main(argv) == 2
    assert expected in _error_line(capsys)


def test_cuda_that_is_not_there(capsys, no_computing):
    import torch

    if torch.cuda.is_available():
        assert main(["lipschitz_vs_t", "--preset", "smoke", "--device", f"cuda:{torch.cuda.device_count()}"]) == 2
        assert "GPU(s)" in _error_line(capsys)
    else:
        assert main(["lipschitz_vs_t", "--preset", "smoke", "--device", "cuda"]) == 2
        assert "CUDA is not available" in _error_line(capsys)


def test_an_out_folder_that_cannot_be_written(tmp_path, capsys, no_computing):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    assert main(["lipschitz_vs_t", "--preset", "smoke", "--out", str(blocker / "sub")]) == 2
    assert f"cannot write to the output folder {blocker / 'sub'}" in _error_line(capsys)
    assert main(["lipschitz_vs_t", "--preset", "smoke", "--out", str(blocker)]) == 2
    assert "it is a file, not a folder" in _error_line(capsys)


def test_plot_only_without_a_table(tmp_path, capsys, no_computing):
    assert main(["lipschitz_vs_t", "--preset", "smoke", "--plot-only", "--out", str(tmp_path)]) == 2
    assert "--plot-only: no table to draw from at" in _error_line(capsys)


def test_missing_data_and_inception_say_where_and_which_variable(tmp_path, empty_data, capsys, no_computing):
    assert main(["cifar_pruning", "--preset", "smoke", "--out", str(tmp_path / "o")]) == 2
    line = _error_line(capsys)
    assert "cifar10_train_5k.npz" in line and "cifar-10-batches-py" in line and "MEMSEP_DATA" in line
    assert str(empty_data) in line
    # training images present, the Inception network (cpu preset) not
    np.savez(empty_data / "cifar10_train_5k.npz", x=np.zeros((512, 32, 32, 3), np.uint8),
             y=np.zeros(512, np.int64))
    assert main(["cifar_pruning", "--preset", "cpu", "--out", str(tmp_path / "o")]) == 2
    line = _error_line(capsys)
    assert "fid_inception_2015-12-05_pool3.pt" in line and "MEMSEP_DATA" in line
    # too few images for the settings
    assert main(["cifar_pruning", "--preset", "smoke", "--set", "n_train=600", "--out", str(tmp_path / "o")]) == 2
    assert "holds 512 training images; this run needs 6" in _error_line(capsys)


def test_debug_shows_the_traceback():
    with pytest.raises(verify.config.SetupError, match="unknown device"):
        main(["lipschitz_vs_t", "--device", "gpu", "--debug"])


def test_a_real_process_prints_one_line_and_exits_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "verify", "lossgap_bond", "--preset", "smoke"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        proc.stderr.strip()] and "did you mean 'lossgap_bound'" in proc.stderr


def test_paper_on_a_cpu_warns_with_the_estimate(monkeypatch, capsys, tmp_path):
    calls = []
    monkeypatch.setattr(runner, "run_module", lambda *a, **k: calls.append(a) or __import__("pandas").DataFrame())
    assert main(["width_vs_n", "--preset", "paper", "--device", "cpu", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    estimate = preflight.fmt_seconds(verify.catalog()["width_vs_n"].estimated_runtime["paper"])
    assert "warning: --preset paper on a CPU" in err and f"about {estimate}" in err and calls
    assert preflight.paper_warning(["width_vs_n"], "cuda") is None


def test_line_progress_has_elapsed_and_eta():
    now = [0.0]
    out = io.StringIO()
    bar = progress.LineProgress("demo", 4, stream=out, every=10.0, clock=lambda: now[0])
    for t in (2.0, 4.0, 30.0, 31.0):
        now[0] = t
        bar.update(1)
    lines = out.getvalue().splitlines()
    assert lines == ["[verify] demo: 1/4 points (25%), 2 s elapsed, ETA 6 s",        # the first point
                     "[verify] demo: 3/4 points (75%), 30 s elapsed, ETA 10 s",      # 10 s after the last line
                     "[verify] demo: 4/4 points (100%), 31 s elapsed, done"]         # the end
    assert isinstance(progress.reporter("x", 3, stream=io.StringIO()), progress.LineProgress)
    assert isinstance(progress.reporter("x", 3, quiet=True), progress.NoProgress)


def test_a_sweep_without_a_terminal_prints_progress_lines(tmp_path, capsys, quick_plot):
    assert main(["lipschitz_vs_t", "--preset", "smoke", "--set", "n_times=2", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "[verify] lipschitz_vs_t: 4/4 points (100%)" in err and "elapsed" in err
    assert "[verify] claim lipschitz_blowup:" in err


def test_smoke_runs_get_a_fresh_temporary_folder_each_time():
    a = preflight.output_folder("x", "smoke", None, {})
    b = preflight.output_folder("x", "smoke", None, {})
    assert a != b and a.is_dir() and b.is_dir() and not list(a.iterdir())
    assert ROOT not in a.parents
    assert preflight.output_folder("x", "cpu", None, {}) is None                    # the committed folders
    assert runner.RUNS in preflight.output_folder("x", "cpu", None, {"n": 3}).parents


def test_help_and_list_import_no_torch_and_answer_fast():
    code = ("import sys, io, contextlib\nfrom verify.__main__ import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['list']) == 0\n"
            "    try:\n        main(['--help'])\n    except SystemExit as e:\n        assert e.code == 0\n"
            "heavy = [m for m in ('torch', 'pandas', 'scipy', 'matplotlib', 'numpy') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)
    # timing: the measured seconds against an empty interpreter on this (possibly loaded) machine
    def seconds(args):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], cwd=ROOT, check=True, capture_output=True, timeout=120)
        return time.perf_counter() - start

    bare = min(seconds(["-c", "pass"]) for _ in range(2))
    for args in (["-m", "verify", "--help"], ["-m", "verify", "list"]):
        took = seconds(args)
        assert took < 2.0 or took < 4 * bare, (args, took, bare)       # a loaded machine slows both alike


def test_module_help_reads_the_settings_without_torch():
    """`NAME --help` builds each module's presets from its light view (verify._view): the settings table is
    the imported module's, character for character, and no heavy library is imported to print it."""
    from types import SimpleNamespace

    from verify import _view
    from verify.config import describe

    for name, info in verify.catalog().items():
        view = SimpleNamespace(PRESETS=_view.presets(info.module))
        assert describe(view) == describe(verify.get(name)), name
    code = ("import sys, io, contextlib\nfrom verify.__main__ import main\nfrom verify import catalog\n"
            "for name in catalog():\n"
            "    with contextlib.redirect_stdout(io.StringIO()) as out:\n"
            "        try:\n            main([name, '--help'])\n        except SystemExit as e:\n"
            "            assert e.code == 0\n"
            "    assert 'settings (--set KEY=VALUE' in out.getvalue(), name\n"
            "heavy = [m for m in ('torch', 'pandas', 'scipy', 'matplotlib') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


def test_the_light_view_refuses_presets_it_cannot_build(tmp_path, monkeypatch):
    """A preset whose value needs a heavy import (here a torch dtype) is not shown from the view: ViewError,
    and the help imports the module instead."""
    from verify import _view

    pkg = tmp_path / "verify"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "fx.py").write_text("import dataclasses\nimport torch\n\n@dataclasses.dataclass(frozen=True)\n"
                               "class Config:\n    n: int\n    dtype: object = torch.float64\n\n"
                               "PRESETS = {'smoke': Config(n=3)}\n")
    (pkg / "ok.py").write_text("import dataclasses\nimport torch\nfrom .fx import Config as _C\n\n"
                               "@dataclasses.dataclass(frozen=True)\nclass Config:\n    n: int = 2   # size\n\n"
                               "    def __post_init__(self):\n        assert not isinstance(self.n, torch.Tensor)\n\n"
                               "PRESETS = {'smoke': Config(), 'cpu': Config(n=5)}\n")
    monkeypatch.setattr(_view, "ROOT", tmp_path)
    monkeypatch.setattr(_view, "_cache", {})
    with pytest.raises(_view.ViewError):
        _view.presets("verify.fx")
    found = _view.presets("verify.ok")
    assert [c.n for c in found.values()] == [2, 5]


def test_catalog_reads_the_same_metadata_as_importing():
    for name, mod in verify.modules().items():
        info = verify.catalog()[name]
        assert info == verify._imported_info(mod), name


def test_all_skips_a_module_whose_data_is_missing(empty_data, monkeypatch, capsys, tmp_path, quick_plot):
    """A clone without the data folder: `all --preset smoke` runs what it can, skips cifar_pruning with a
    line and exits 0 (two modules here, to keep the test short)."""
    import verify.__main__ as cli

    subset = {k: v for k, v in verify.catalog().items() if k in ("lipschitz_vs_t", "cifar_pruning")}
    monkeypatch.setattr(cli, "catalog", lambda: subset)
    assert main(["all", "--preset", "smoke", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "[verify all] skipping cifar_pruning: the CIFAR-10 training images are not in" in err
    assert "1 of 2 modules finished" in err and "skipped (missing inputs): cifar_pruning" in err
    assert (tmp_path / "lipschitz_vs_t.csv").exists() and not (tmp_path / "cifar_pruning.csv").exists()
    report = (tmp_path / "REPORT.csv").read_text()
    assert "not run at this preset" in report


def test_no_file_written_into_the_repository_by_a_smoke_run(capsys, quick_plot):
    def status():
        out = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=ROOT, capture_output=True,
                             text=True).stdout
        return [line for line in out.splitlines() if "__pycache__" not in line]

    before = status()
    assert main(["lipschitz_vs_t", "--preset", "smoke", "--set", "n_times=2"]) == 0
    assert status() == before
    assert "a smoke run: writing to " in capsys.readouterr().err


def test_width_estimates_are_the_cost_model_s():
    """width_vs_n declares its estimates as literals (read without imports): they are its cost model's."""
    from verify import width_vs_n

    est = width_vs_n.ESTIMATED_RUNTIME
    assert est["cpu"] == round(width_vs_n.estimated_seconds(width_vs_n.PRESETS["cpu"]))
    assert est["paper"] == round(width_vs_n.estimated_seconds(width_vs_n.PRESETS["paper"], "cuda"))
    from verify import duplication

    assert duplication.ESTIMATED_RUNTIME["paper"] == round(
        duplication.estimated_seconds(duplication.PRESETS["paper"], "cuda"))
