"""Benchmark of verify.executor: cpu-preset modules on a local Dask cluster of 2 workers against the same
modules in this process (wall-clock ratio), and the per-point overhead of the Dask path on a trivial point.

    OMP_NUM_THREADS=1 python benchmarks/executor_overhead.py [--modules a,b,...] [--points 200]
        [--in-process-threads 1,2]

The thread policy (issue 17, item 3) is read from the last lines: the modules in this process with each of
``--in-process-threads`` torch threads, against the local cluster of ``--workers`` one-thread workers
(points side by side).

Everything is written to temporary folders (tables, figures, checkpoints); nothing of the repository
changes. A fixed reference (a 1024 x 1024 float32 matmul loop on one thread) is timed before and after, so
timings taken on a loaded machine can be rescaled; the script prints the machine's load average too.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

DEFAULT_MODULES = "lipschitz_vs_t,lossgap_identity,lossgap_rate,phase_2d,width_vs_n"


def _trivial_grid(cfg):
    return [{"x": i, "seed": 0} for i in range(cfg["points"])]


def _trivial_point(point, cfg, device):
    return {"y": point["x"] * 2}


def _trivial_plot(table, cfg):
    import matplotlib.pyplot as plt

    return plt.figure(figsize=(1, 1))


def trivial_module(points: int):
    return SimpleNamespace(NAME="trivial", CLAIM="", PRESETS={"smoke": {"points": points}}, grid=_trivial_grid,
                           run_point=_trivial_point, plot=_trivial_plot)


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--modules", default=DEFAULT_MODULES)
    ap.add_argument("--points", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--in-process-threads", default="1",
                    help="comma-separated torch thread counts for the in-process runs (first: the reference)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from verify import executor, get, runner
    from verify.cost import reference_matmul_s as reference_s

    tmp = Path(tempfile.mkdtemp(prefix="memsep-bench-"))
    os.environ["MEMSEP_CHECKPOINTS"] = str(tmp / "checkpoints")
    print(f"load average {os.getloadavg()}, {os.cpu_count()} cores; reference matmul {reference_s() * 1e3:.1f} ms")

    # per-point overhead on a trivial point
    mod = trivial_module(args.points)
    t_in = timed(lambda: runner.run_module(mod, "smoke", out=tmp / "t-in", quiet=True))
    start = time.perf_counter()
    with executor.executor(workers=args.workers, quiet=True) as ex:
        t_start = time.perf_counter() - start
        runner.run_module(trivial_module(4), "smoke", out=tmp / "t-warm", quiet=True, executor=ex)  # worker imports
        t_dask = timed(lambda: runner.run_module(mod, "smoke", out=tmp / "t-dask", quiet=True, executor=ex))
    with executor.executor(workers=1, quiet=True) as ex:
        runner.run_module(trivial_module(4), "smoke", out=tmp / "t-warm1", quiet=True, executor=ex)
        t_dask1 = timed(lambda: runner.run_module(mod, "smoke", out=tmp / "t-dask1", quiet=True, executor=ex))
    n = args.points
    print(f"trivial point x {n}: in process {t_in / n * 1e3:.1f} ms/point; Dask 1 worker {t_dask1 / n * 1e3:.1f} "
          f"ms/point (overhead {(t_dask1 - t_in) / n * 1e3:.1f} ms/point); Dask {args.workers} workers "
          f"{t_dask / n * 1e3:.1f} ms/point wall; cluster start {t_start:.1f} s")

    # cpu-preset modules: in process against a local cluster (cluster start included)
    names = [m for m in args.modules.split(",") if m]
    if not names:
        print(f"load average {os.getloadavg()}; reference matmul {reference_s() * 1e3:.1f} ms")
        return
    per_in, per_dask = {}, {}
    thread_counts = [int(v) for v in args.in_process_threads.split(",") if v]
    for k in thread_counts:
        torch.set_num_threads(k)
        per_in[k] = {}
        for name in names:
            per_in[k][name] = timed(lambda: runner.run_module(get(name), "cpu", out=tmp / f"in{k}", quiet=True))
            print(f"  {name}: in process, {k} thread(s) {per_in[k][name]:.1f} s", flush=True)
    torch.set_num_threads(1)
    ref = per_in[thread_counts[0]]
    start = time.perf_counter()
    with executor.executor(workers=args.workers, quiet=True) as ex:
        t_start = time.perf_counter() - start
        for name in names:
            per_dask[name] = timed(lambda: runner.run_module(get(name), "cpu", out=tmp / "dask", quiet=True,
                                                             executor=ex))
            print(f"  {name}: {args.workers} workers {per_dask[name]:.1f} s (ratio {ref[name] / per_dask[name]:.2f})",
                  flush=True)
    total_dask = sum(per_dask.values()) + t_start
    for k in thread_counts:
        total_in = sum(per_in[k].values())
        print(f"cpu modules {', '.join(names)}: in process with {k} thread(s) {total_in:.1f} s, {args.workers} "
              f"one-thread workers {total_dask:.1f} s (cluster start {t_start:.1f} s included): workers / in process "
              f"{total_in / total_dask:.2f}x")
    print(f"load average {os.getloadavg()}; reference matmul {reference_s() * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
