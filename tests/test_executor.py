"""verify.executor on a real Dask LocalCluster of 2 worker processes: the table equals the in-process one
(a real smoke module, and a module drawing from the global generator), a worker killed mid-point loses and
duplicates nothing, a point that raises is still an error row, the existing-scheduler path; and the
per-point seeds. One cluster serves the module (starting one takes seconds)."""

import dataclasses

import pandas as pd
import pytest

import sweep_fixture as fx
from verify import executor, lipschitz_vs_t, runner

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("distributed")
    with executor.executor(workers=2, quiet=True) as ex:
        yield ex


def _module(cfg):
    from types import SimpleNamespace

    ns = SimpleNamespace(**{k: getattr(fx, k) for k in ("NAME", "CLAIM", "grid", "run_point", "plot",
                                                        "data_fingerprint")})
    ns.__file__, ns.PRESETS = fx.__file__, {"smoke": cfg}
    return ns


def _same(a, b, ignore=()):
    """Equal saved tables, apart from the measured runtimes (and ``ignore``)."""
    drop = ["runtime_s", *ignore]
    pd.testing.assert_frame_equal(pd.read_csv(a).drop(columns=drop), pd.read_csv(b).drop(columns=drop))


def test_local_cluster_has_two_worker_processes(cluster):
    assert isinstance(cluster, executor.DaskExecutor) and cluster.workers == 2
    pids = cluster.client.run(lambda: __import__("os").getpid())
    assert len(set(pids.values())) == 2


def test_a_smoke_module_on_the_cluster_equals_the_in_process_table(cluster, tmp_path):
    runner.run_module(lipschitz_vs_t, "smoke", out=tmp_path / "here", quiet=True)
    runner.run_module(lipschitz_vs_t, "smoke", out=tmp_path / "there", quiet=True, executor=cluster)
    _same(tmp_path / "here" / "lipschitz_vs_t.csv", tmp_path / "there" / "lipschitz_vs_t.csv")


def test_global_draws_do_not_depend_on_the_worker(cluster, tmp_path):
    cfg = fx.Config(values=tuple(range(1, 9)), rows=2, sleep=0.05)
    runner.run_module(_module(cfg), "smoke", out=tmp_path / "here", quiet=True)
    runner.run_module(_module(cfg), "smoke", out=tmp_path / "there", quiet=True, executor=cluster)
    _same(tmp_path / "here" / "sweep_fixture.csv", tmp_path / "there" / "sweep_fixture.csv")


def test_a_killed_worker_loses_and_duplicates_nothing(cluster, tmp_path):
    cfg = fx.Config(values=tuple(range(1, 7)), rows=3, kill_on=(2,), marker_dir=str(tmp_path), sleep=0.2)
    runner.run_module(_module(cfg), "smoke", out=tmp_path / "there", quiet=True, executor=cluster)
    assert [p.name for p in tmp_path.glob("killed-*")] == ["killed-2"]      # the worker did die mid-point
    runner.run_module(_module(dataclasses.replace(cfg, kill_on=())), "smoke", out=tmp_path / "here", quiet=True)
    _same(tmp_path / "here" / "sweep_fixture.csv", tmp_path / "there" / "sweep_fixture.csv", ["config_hash"])
    saved = pd.read_csv(tmp_path / "there" / "sweep_fixture.csv")
    assert len(saved) == 18 and not saved.duplicated(["point", "row"]).any()


def test_a_point_that_raises_on_a_worker_is_an_error_row(cluster, tmp_path):
    cfg = fx.Config(values=(1, 2, 3), fail_on=(2,))
    with pytest.raises(runner.SweepError, match="1 of 3 grid points failed"):
        runner.run_module(_module(cfg), "smoke", out=tmp_path, quiet=True, executor=cluster)
    saved = pd.read_csv(tmp_path / "sweep_fixture.csv")
    assert saved["x"].tolist() == [1, 2, 3]
    assert saved["error"].notna().tolist() == [False, True, False]
    assert "RuntimeError: boom at 2" in saved["error"].iloc[1]


def test_an_existing_scheduler_by_address(cluster, tmp_path):
    address = cluster.client.scheduler.address
    table = runner.run_module(_module(fx.Config()), "smoke", out=tmp_path, quiet=True, scheduler=address)
    assert table["y"].tolist() == [1, 4, 9]


def test_point_seeds_depend_on_module_and_point_only():
    assert executor.point_seed("a", "x=1") == executor.point_seed("a", "x=1")
    assert len({executor.point_seed("a", "x=1"), executor.point_seed("b", "x=1"),
                executor.point_seed("a", "x=2")}) == 3
    with pytest.raises(ValueError, match="not both"):
        with executor.executor(workers=2, scheduler="tcp://127.0.0.1:1"):
            pass
