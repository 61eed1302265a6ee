import math

import pytest

from verify import _gmm, dim_sweep, duplication_memorization, phase_2d, sample_sweep, scale_sweep, weight_decay_grid
from verify.runner import run_module

pytestmark = pytest.mark.usefixtures("one_thread")
MODULES = [phase_2d, scale_sweep, sample_sweep, dim_sweep, weight_decay_grid, duplication_memorization]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.NAME)
def test_smoke_writes_every_column_of_the_pipeline(module, tmp_path):
    table = run_module(module, "smoke", out=tmp_path, quiet=True)
    assert set(module.COLUMNS) <= set(table.columns)
    assert set(_gmm.COLUMNS) <= set(module.COLUMNS)              # the pipeline owns the columns
    summary = table[table["kind"] == "summary"]
    cfg = module.PRESETS["smoke"]
    per_point = (len(duplication_memorization.data_sets(cfg)) if module is duplication_memorization
                 else len(cfg.ns) * len(cfg.weight_decays))
    assert len(summary) == len(module.grid(cfg)) * per_point * len(cfg.seeds)
    assert summary["mem_fraction"].between(0, 1).all() and (summary["mem_anchor"] >= 0).all()
    assert (summary["mem_fraction_lo"] <= summary["mem_fraction"]).all()
    assert summary[["mem_null", "mem_excess", "quality_gap", "test_loglik_median", "t_star_hi"]].notna().all().all()
    index = table[table["kind"] == "index"]
    assert len(index) == len(summary) * len(cfg.protocol.index_times)
    assert index["index"].between(0, 1).all()
    assert (tmp_path / f"{module.NAME}.png").exists()
    if module is phase_2d:
        assert (table["kind"] == "generated").sum() == (summary["seed"] == min(cfg.seeds)).sum() * cfg.protocol.n_generated


def test_killed_point_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A mixture point killed mid-training resumes from its checkpoint and gives the rows of an
    uninterrupted run; the checkpoint is removed once the rows exist."""
    cfg, point = scale_sweep.PRESETS["smoke"], scale_sweep.grid(scale_sweep.PRESETS["smoke"])[0]
    monkeypatch.setenv("MEMSEP_CHECKPOINTS", str(tmp_path / "a"))
    reference = _gmm.run_point(point, cfg, "cpu")

    monkeypatch.setenv("MEMSEP_CHECKPOINTS", str(tmp_path / "b"))
    real_train = _gmm.train

    def killed(*args, **kwargs):
        real_train(*args, stop_after=10, **kwargs)
        raise RuntimeError("killed")

    monkeypatch.setattr(_gmm, "train", killed)
    with pytest.raises(RuntimeError, match="killed"):
        _gmm.run_point(point, cfg, "cpu")
    assert len(list((tmp_path / "b").rglob("*.pt"))) == 1
    monkeypatch.setattr(_gmm, "train", real_train)
    resumed = _gmm.run_point(point, cfg, "cpu")
    assert not list((tmp_path / "b").rglob("*.pt"))
    for a, b in zip(reference, resumed):
        if a["kind"] == "summary":
            assert a["final_loss"] == pytest.approx(b["final_loss"], rel=1e-5)
            assert a["mem_count"] == b["mem_count"]
            assert (math.isinf(a["t_star"]) and math.isinf(b["t_star"])) or a["t_star"] == pytest.approx(b["t_star"])
