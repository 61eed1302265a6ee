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
