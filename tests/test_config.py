"""Own settings (verify.config, verify.run): --set typed against the preset's fields (nested included),
--config in JSON and TOML (and a run's saved NAME.config.json), unknown keys and bad values, the settings
table of NAME --help, the folder and the records of a run with overrides, and verify.run from Python."""

from __future__ import annotations

import dataclasses
import json

import pandas as pd
import pytest

import verify
from verify import cifar_pruning, config, lipschitz_vs_t, runner
from verify.__main__ import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_set_values_are_typed_by_the_field():
    cfg, over = config.resolve(lipschitz_vs_t, "cpu", sets={"n": "1e3", "t_min": "1/3", "seeds": "0,1",
                                                           "separation": "3"})
    assert cfg.n == 1000 and isinstance(cfg.n, int)
    assert cfg.t_min == pytest.approx(1 / 3) and cfg.separation == 3.0 and isinstance(cfg.separation, float)
    assert cfg.seeds == (0, 1) and all(isinstance(s, int) for s in cfg.seeds)
    assert over == {"n": 1000, "seeds": [0, 1], "separation": 3.0, "t_min": pytest.approx(1 / 3)}
    assert dataclasses.replace(cfg, n=500, t_min=1e-4, seeds=(0, 1, 2), separation=2.0) == lipschitz_vs_t.PRESETS["cpu"]
    # brackets, a single element, and a value equal to the preset's (not an override)
    cfg, over = config.resolve(lipschitz_vs_t, "cpu", sets={"seeds": "[4]", "n": "500"})
    assert cfg.seeds == (4,) and over == {"seeds": [4]}


def test_nested_settings_bools_and_strings():
    cfg, over = config.resolve(cifar_pruning, "smoke", sets={"model.width": "48", "pruning.law": "uniform",
                                                            "pruning.ratio_ablation": "1,2",
                                                            "training.lr": "5e-4", "training.fused": "false"})
    assert cfg.model.width == 48 and cfg.pruning.law == "uniform" and cfg.training.lr == 5e-4
    assert cfg.training.fused is False
    assert cfg.pruning.ratio_ablation == (1.0, 2.0) and all(isinstance(b, float) for b in cfg.pruning.ratio_ablation)
    assert cfg.model.depth == cifar_pruning.PRESETS["smoke"].model.depth          # the rest is the preset's
    assert over == {"model.width": 48, "pruning.ratio_ablation": [1.0, 2.0], "pruning.law": "uniform",
                    "training.fused": False, "training.lr": 5e-4}
    from verify import width_vs_n

    cfg, _ = config.resolve(width_vs_n, "smoke", sets={"stop_at_target": "false"})
    assert cfg.stop_at_target is False


@pytest.mark.parametrize("sets, message", [
    ({"nn": "5"}, r"unknown setting 'nn' for lipschitz_vs_t \(did you mean 'n'\?\); valid settings: dim, n, "),
    ({"n": "abc"}, r"bad value 'abc' for n: expected int; the preset has 500"),
    ({"n": "1.5"}, r"bad value '1.5' for n: expected int \(a whole number\)"),
    ({"t_min": "small"}, r"bad value 'small' for t_min: expected float"),
    ({"seeds": "0,0.5"}, r"bad value '0.5' for seeds: expected tuple of int"),
])
def test_unknown_keys_and_bad_values_are_named(sets, message):
    with pytest.raises(config.ConfigError, match=message):
        config.resolve(lipschitz_vs_t, "cpu", sets=sets)


def test_unknown_key_lists_every_valid_one_and_groups_are_explained():
    with pytest.raises(config.ConfigError) as err:
        config.resolve(cifar_pruning, "cpu", sets={"model.widht": "3"})
    text = str(err.value)
    assert "did you mean 'model.width'" in text and "\n" not in text
    assert all(key in text for key in config.fields(cifar_pruning.PRESETS["cpu"]))
    with pytest.raises(config.ConfigError, match="model of cifar_pruning is a group of settings: set one of model.image_size"):
        config.resolve(cifar_pruning, "cpu", sets={"model": "3"})
    with pytest.raises(config.ConfigError, match="bad value 'maybe' for stop_at_target: expected bool"):
        from verify import width_vs_n

        config.resolve(width_vs_n, "cpu", sets={"stop_at_target": "maybe"})
    with pytest.raises(config.ConfigError, match="--set expects KEY=VALUE, got 'n'"):
        config.parse_sets(["n"])


def test_config_files_json_toml_and_a_saved_run(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"model": {"width": 40}, "training.steps": 12, "seeds": [3]}))
    (tmp_path / "a.toml").write_text("seeds = [3]\n[model]\nwidth = 40\n[training]\nsteps = 12\n")
    a, over_a = config.resolve(cifar_pruning, "smoke", file=tmp_path / "a.json")
    b, over_b = config.resolve(cifar_pruning, "smoke", file=tmp_path / "a.toml")
    assert a == b and a.model.width == 40 and a.training.steps == 12 and a.seeds == (3,)
    assert over_a == over_b == {"model.width": 40, "seeds": [3], "training.steps": 12}
    # --set is applied after the file
    c, _ = config.resolve(cifar_pruning, "smoke", file=tmp_path / "a.toml", sets={"model.width": "44"})
    assert c.model.width == 44 and c.training.steps == 12
    # a typed file value of the wrong type, and a file for another module
    (tmp_path / "bad.json").write_text(json.dumps({"n": "many"}))
    with pytest.raises(config.ConfigError, match="bad value 'many' for n: expected int"):
        config.resolve(lipschitz_vs_t, "cpu", file=tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"module": "cifar_pruning", "config": {"n": 3}}))
    with pytest.raises(config.ConfigError, match="is for cifar_pruning, not lipschitz_vs_t"):
        config.resolve(lipschitz_vs_t, "cpu", file=tmp_path / "other.json")
    (tmp_path / "broken.toml").write_text("[model\nwidth = ")
    with pytest.raises(config.ConfigError, match="is not valid TOML"):
        config.resolve(cifar_pruning, "cpu", file=tmp_path / "broken.toml")
    with pytest.raises(config.ConfigError, match="no such file"):
        config.resolve(cifar_pruning, "cpu", file=tmp_path / "missing.json")


def test_a_saved_config_file_reproduces_its_run(tmp_path, quick_plot):
    """Editing a run's NAME.config.json and passing it back with --config is the documented way to start
    from a saved run: the untouched file gives exactly that run's configuration (no overrides)."""
    cfg, _ = config.resolve(lipschitz_vs_t, "smoke", sets={"n": "30", "n_times": "2"})
    runner.run_module(lipschitz_vs_t, "smoke", out=tmp_path, quiet=True, config=cfg)
    saved = tmp_path / "lipschitz_vs_t.config.json"
    again, over = config.resolve(lipschitz_vs_t, "smoke", file=saved)
    assert again == cfg and over == {"n": 30, "n_times": 2}
    back, over = config.resolve(lipschitz_vs_t, "cpu", file=saved)
    assert back.n == 30 and "n" in over


def test_describe_lists_every_field_with_each_presets_value():
    for name, mod in verify.modules().items():
        text = config.describe(mod)
        lines = text.splitlines()
        assert all(p in lines[0] for p in mod.PRESETS), name
        for key in config.fields(next(iter(mod.PRESETS.values()))):
            row = next((line for line in lines if line.split()[:1] == [key]), None)
            assert row is not None, (name, key)
            for preset, cfg in mod.PRESETS.items():
                shown = config._show(config.get_value(cfg, key))
                assert shown[:20] in text, (name, key, preset)
    assert "Delta_min / sqrt(d) of the mixture's means" in config.describe(lipschitz_vs_t)    # field comments


def test_module_help_shows_the_settings(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["lipschitz_vs_t", "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "Lipschitz constant of the empirical vs the true score" in text      # the module's docstring
    assert "--set KEY=VALUE" in text and "smoke" in text and "paper" in text
    assert "n_cloud" in text and "4000" in text                                  # a field, the paper's value


def _run_smoke_with_overrides(tmp_path, monkeypatch, *extra):
    monkeypatch.setattr(runner, "RUNS", tmp_path / "runs")
    committed = {p: p.read_bytes() for p in (runner.RESULTS / "cpu").glob("lipschitz_vs_t*")}
    code = main(["lipschitz_vs_t", "--preset", "cpu", "--set", "n=30", "--set", "n_times=2", "--set", "seeds=0",
                 "--set", "n_cloud=20", *extra])
    assert code == 0
    assert {p: p.read_bytes() for p in committed} == committed                 # committed files untouched
    (folder,) = (tmp_path / "runs").iterdir()
    return folder


def test_a_run_with_overrides_gets_its_own_folder_and_records_them(tmp_path, monkeypatch, capsys, quick_plot):
    folder = _run_smoke_with_overrides(tmp_path, monkeypatch)
    assert folder.name.startswith("lipschitz_vs_t-cpu-")
    assert str(folder) in capsys.readouterr().err
    saved = json.loads((folder / "lipschitz_vs_t.config.json").read_text())
    assert saved["overrides"] == {"n": 30, "n_cloud": 20, "n_times": 2, "seeds": [0]}
    assert saved["config"]["n"] == 30 and "started" not in saved
    table = pd.read_csv(folder / "lipschitz_vs_t.csv")
    assert (table["n"] == 30).all() and len(table) == 2 * 2
    assert table["overrides"].map(json.loads).tolist() == [saved["overrides"]] * len(table)
    # the same settings again: the same folder, nothing recomputed, no file rewritten (the git-ignored run
    # record NAME.run.json says when the last run started, so it is the one file that changes)
    def kept():
        return {p.name: p.read_bytes() for p in folder.iterdir() if not p.name.endswith(".run.json")}

    before = kept()
    assert _run_smoke_with_overrides(tmp_path, monkeypatch) == folder
    assert "nothing to compute" in capsys.readouterr().err
    assert kept() == before


def test_verify_run_from_python_returns_table_and_verdicts(tmp_path, quick_plot):
    table, verdicts = verify.run("lipschitz_vs_t", preset="smoke", out=tmp_path, n=25, n_times=2)
    assert (table["n"] == 25).all() and table["overrides"].notna().all()
    assert set(verdicts) == {c.key for c in lipschitz_vs_t.CLAIMS}
    assert all(str(f.verdict) in ("holds", "does not hold", "inconclusive") for f in verdicts.values())
    # nested settings from Python: dicts or double underscores (the path verify.run takes)
    cfg, over = config.resolve(cifar_pruning, "smoke", values={"model": {"width": 16}, "training__steps": 2,
                                                              "seeds": (0, 2)})
    assert cfg.model.width == 16 and cfg.training.steps == 2 and cfg.seeds == (0, 2)
    assert over == {"model.width": 16, "seeds": [0, 2], "training.steps": 2}
    with pytest.raises(config.ConfigError, match="unknown setting 'widht'"):
        verify.run("lipschitz_vs_t", preset="smoke", out=tmp_path, widht=3)

