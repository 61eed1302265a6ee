import pytest

from verify import dim_sweep, phase_2d, sample_sweep, scale_sweep, weight_decay_grid
from verify.runner import run_module

COLUMNS = {"params", "width", "n", "d", "weight_decay", "mem_fraction", "mem_fraction_se", "test_loglik",
           "test_loglik_true", "test_loglik_empirical", "sample_logp_true", "mem_index_t0.01", "seed",
           "runtime_s", "sampler", "t0"}


@pytest.mark.parametrize("module", [phase_2d, scale_sweep, sample_sweep, dim_sweep, weight_decay_grid],
                         ids=lambda m: m.NAME)
def test_smoke(module, tmp_path):
    table = run_module(module, "smoke", out=tmp_path, quiet=True)
    summary = table[table["kind"] == "summary"]
    assert COLUMNS <= set(table.columns)
    cfg = module.PRESETS["smoke"]
    assert len(summary) == len(module.grid(cfg)) * len(cfg.ns) * len(cfg.weight_decays) * len(cfg.seeds)
    assert summary["mem_fraction"].between(0, 1).all()
    assert (tmp_path / f"{module.NAME}.png").exists()
    if module is phase_2d:
        assert (table["kind"] == "generated").sum() == len(summary) * cfg.n_generated


def test_killed_point_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A mixture point killed mid-training resumes from its checkpoint and gives the rows of an
    uninterrupted run; the checkpoint is removed once the rows exist."""
    from verify import _gmm
    gmm = _gmm

    cfg, point = phase_2d.PRESETS["smoke"], phase_2d.grid(phase_2d.PRESETS["smoke"])[0]
    monkeypatch.setenv("MEMSEP_CHECKPOINTS", str(tmp_path / "a"))
    reference = _gmm.run_point(point, cfg, "cpu")

    monkeypatch.setenv("MEMSEP_CHECKPOINTS", str(tmp_path / "b"))
    real_train = gmm.train

    def killed(*args, **kwargs):
        real_train(*args, stop_after=10, **kwargs)
        raise RuntimeError("killed")

    monkeypatch.setattr(gmm, "train", killed)
    with pytest.raises(RuntimeError, match="killed"):
        _gmm.run_point(point, cfg, "cpu")
    assert len(list((tmp_path / "b").rglob("*.pt"))) == 1
    monkeypatch.setattr(gmm, "train", real_train)
    resumed = _gmm.run_point(point, cfg, "cpu")
    assert not list((tmp_path / "b").rglob("*.pt"))
    for a, b in zip(reference, resumed):
        assert a["final_loss"] == pytest.approx(b["final_loss"], rel=1e-5)
        assert a["mem_fraction"] == b["mem_fraction"]
