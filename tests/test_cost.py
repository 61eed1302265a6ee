"""verify.cost: the cost model recovers known FLOPs from a few cheap runs, every module's cost model names
real configuration fields, the projection, --dry-run on a real smoke module, and the paper-on-CPU warning.
The slow test runs the first point of every paper preset at full model size on the CPU."""

import io
import json
import math
import os
import subprocess
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

import cost_fixture as cf
import verify
from verify import cost, runner
from verify.__main__ import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_cost_model_extrapolates_flops_exactly_from_cheap_runs():
    cfg = cf.PRESETS["paper"]
    c = cost.measure(cf, {"k": 0, "seed": 0}, cfg, "cpu", cf.COST_MODEL)
    assert c.flops == pytest.approx(cf.exact_flops(cfg), rel=1e-9)
    assert c.seconds > 0 and c.how.startswith("model")
    by_term = {t.fields: t for t in c.terms}
    assert by_term[("steps", "inner.batch")].flops == pytest.approx(2 * 64 * 64, rel=1e-9)
    assert by_term[("samples",)].units == 20_000 and c.fixed_flops == pytest.approx(2 * 64 ** 3, rel=1e-9)


def test_a_module_without_a_model_is_run_once_and_seeds_are_costed_once(monkeypatch):
    calls = []
    monkeypatch.setattr(cost, "run_counted", lambda m, p, c, d: calls.append(p) or (10.0, 1.0))
    monkeypatch.setattr(cf, "COST_MODEL", None)
    monkeypatch.setitem(cost.DECLARED, "cost_fixture", None)
    mc = cost.module_cost(cf, "smoke", "cpu", workers=2)
    assert len(calls) == 2 and len(mc.points) == 3               # k=0 (two seeds) measured once, k=1 once
    assert mc.flops == 30 and mc.wall_s == 2.0 and mc.points[0][1].how == "full run"


@pytest.mark.parametrize("name", sorted(verify.modules()))
def test_every_cost_model_names_integer_fields_of_every_preset(name):
    module = verify.get(name)
    model = cost.cost_model(module)
    assert model is not None or callable(getattr(module, "cost", None)), f"{name} has no cost model"
    for preset, cfg in module.PRESETS.items():
        if model is not None:
            cost.check_model(model, cfg)


def test_makespan_longest_first():
    assert cost.makespan([1, 2, 3, 4], 2) == 5 and cost.makespan([1, 2, 3, 4], 1) == 10
    assert cost.makespan([5, 1, 1], 2, first_alone=True) == 6
    assert cost.makespan([], 4) == 0


def _register(monkeypatch, mod):
    """Make ``mod`` a module the command line knows by name (the catalog and ``verify.get``, as the command
    line and its preflight see them)."""
    import verify.__main__ as cli
    from verify import preflight

    real_catalog, real_get = verify.catalog, verify.get
    info = verify.ModuleInfo(mod.NAME, getattr(mod, "__name__", mod.NAME), mod.CLAIM, 100, tuple(mod.PRESETS),
                             dict(getattr(mod, "ESTIMATED_RUNTIME", {})))

    def catalog():
        return {**real_catalog(), mod.NAME: info}

    def get(name):
        return mod if name == mod.NAME else real_get(name)

    for where in (verify, cli, preflight):
        monkeypatch.setattr(where, "catalog", catalog, raising=False)
    for where in (verify, preflight):
        monkeypatch.setattr(where, "get", get)
    monkeypatch.setattr(verify, "modules", lambda: {mod.NAME: mod})


def test_dry_run_prints_the_grid_costs_and_projection(monkeypatch):
    _register(monkeypatch, cf)
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["cost_fixture", "--preset", "paper", "--dry-run", "--workers", "2"]) == 0
    text = out.getvalue()
    assert "cost_fixture --preset paper: 3 points" in text and text.count("|seed=") == 3
    assert "stepsxbatch=2.56e+07: 8.19e+03 FLOP" in text               # per step x batch: 2 * 64 * 64
    assert "projected wall time on 2 worker(s)" in text
    exact = cf.exact_flops(cf.PRESETS["paper"])
    assert f"total {exact * 3:.3g} FLOP" in text


def test_paper_on_a_cpu_warns_once_without_costing(tmp_path, capsys, monkeypatch):
    """The paper-on-CPU warning has one owner (preflight.paper_warning): the Python API says it, the
    command line says it once before anything starts, and neither runs a point to cost it."""
    from types import SimpleNamespace

    import verify
    from verify import preflight

    mod = SimpleNamespace(**{k: getattr(cf, k) for k in ("NAME", "CLAIM", "grid", "run_point", "plot")})
    mod.__file__, mod.COST_MODEL = cf.__file__, cf.COST_MODEL
    mod.PRESETS, mod.ESTIMATED_RUNTIME = {"paper": cf.Config(steps=30, samples=3)}, {"paper": 5400}
    _register(monkeypatch, mod)
    monkeypatch.setattr(cost, "measure", lambda *a, **k: pytest.fail("the warning must not cost points"))
    estimate = preflight.fmt_seconds(verify.catalog()["cost_fixture"].estimated_runtime.get("paper", 0))
    runner.run_module(mod, "paper", out=tmp_path, device="cpu")
    err = capsys.readouterr().err
    assert estimate == "90 min" and err.count("warning: --preset paper on a CPU") == 1 and f"about {estimate}" in err
    assert main(["cost_fixture", "--preset", "paper", "--device", "cpu", "--out", str(tmp_path / "cli")]) == 0
    assert capsys.readouterr().err.count("warning: --preset paper on a CPU") == 1


MEASURE = """
import json, resource, sys, torch
torch.set_num_threads(1)
from verify import cost, get
m = get(sys.argv[1]); cfg = m.PRESETS["paper"]; p = m.grid(cfg)[0]
c = cost.point_cost(m, p, cfg, "cpu", "paper")
print(json.dumps({"flops": c.flops, "seconds": c.seconds, "how": c.how, "costing_s": c.costing_s,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(verify.modules()))
def test_first_point_of_every_paper_preset_runs_at_full_model_size_on_the_cpu(name):
    """Costing runs the point for real with its step and sample counts reduced: a shape or memory error of
    the paper preset shows up here. Peak memory per module: README (Costing)."""
    root = Path(verify.__file__).parents[1]
    done = subprocess.run([sys.executable, "-c", MEASURE, name], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, timeout=3600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n[paper first point] {name}: {result}")
    report = os.environ.get("MEMSEP_SLOW_REPORT")
    if report:
        with open(report, "a") as fh:
            fh.write(json.dumps({"module": name, **result}) + "\n")
    assert result["seconds"] > 0 and (math.isnan(result["flops"]) or result["flops"] > 0)
