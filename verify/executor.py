"""Where grid points run: in this process (the default), on a local Dask cluster of worker processes
(``workers=N``), or on an existing Dask cluster (``scheduler="tcp://host:port"``).

A point is one task, ``run_task(task) -> TaskResult``: the same function in every case, so a point's rows do
not depend on where it ran. It resolves the device where it runs ("auto": that worker's GPU if it has one),
sets that worker's torch threads, seeds the global random generators from the module's name and the point's
key (``point_seed``; every module also draws from explicit generators seeded by the point's values, but the
global ones must not leak order or worker into a row), sets the checkpoint policy (``verify._io``), checks
that the worker runs the driver's code (a cluster of other checkouts would give rows that lie about their
code), runs ``module.run_point`` and adds the runner's columns; an exception becomes one row with an
``error`` column. Results come back to the driver as they finish; only the driver writes files.

On Dask a worker that dies mid-point (killed, out of memory) has its point retried on another worker by the
scheduler (``distributed.scheduler.allowed-failures`` times, default 3, then the point becomes an error row
``KilledWorker``). Dask itself is imported only when a cluster is used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import os
import random
import sys
import time
import traceback
from typing import Iterator

import numpy as np
import torch

from . import _io


@dataclasses.dataclass(frozen=True)
class RunContext:
    """What every task of a run shares: the hashes its rows carry and the checkpoint policy."""

    preset: str
    config_hash: str
    data_hash: str
    code_hash: str                   # the driver's; a worker running other code refuses the point
    reuse_stale: bool = False
    not_before: float | None = None  # --fresh: files written before the run started are ignored
    threads: int | None = None       # torch threads for the point (None: leave as is)


@dataclasses.dataclass(frozen=True)
class Task:
    module: object                   # the verify module (pickled by reference: workers import it)
    point: dict
    key: str
    cfg: object
    device: str                      # as requested ("auto" is resolved where the task runs)
    context: RunContext


@dataclasses.dataclass
class TaskResult:
    key: str
    rows: list
    error: str | None = None         # the traceback, if the point failed
    where: str = ""                  # host-pid that ran it


# --------------------------------------------------------------------------------------- device helpers
def resolve_device(device: str | None) -> str:
    """'auto' -> cuda if available, else cpu; other names checked (``verify.preflight.check_device``, the
    one owner of the device check; on a worker this resolves 'auto' against the worker's devices)."""
    from .preflight import check_device

    return check_device(device)


def device_name(device: str) -> str:
    """A human description of the device for the tables: ``cpu (2 cores)`` or the GPU's name."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"cpu ({os.cpu_count()} cores)"


def point_seed(name: str, key: str) -> int:
    """The seed of a point's global random generators: a hash of the module's name and the point's key."""
    return int.from_bytes(hashlib.sha256(f"{name}\0{key}".encode()).digest()[:8], "little") >> 1


@contextlib.contextmanager
def seeded_globals(seed: int):
    """Seed torch's, numpy's and Python's global generators for the block, restoring their state after."""
    states = (torch.random.get_rng_state(), np.random.get_state(), random.getstate())
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    torch.manual_seed(seed)
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)
    try:
        yield
    finally:
        torch.random.set_rng_state(states[0])
        np.random.set_state(states[1])
        random.setstate(states[2])
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


@contextlib.contextmanager
def torch_threads(n: int | None):
    old = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


# ---------------------------------------------------------------------------------------------- the task
def run_task(task: Task) -> TaskResult:
    """One grid point's rows, with the runner's columns (see the module docstring)."""
    from .store import code_fingerprint

    ctx, where = task.context, f"{_io._writer_tag()}"
    start = time.perf_counter()
    produced, error, device = [{}], None, task.device
    try:
        device = resolve_device(task.device)
        mine = code_fingerprint(task.module).hash
        if mine != ctx.code_hash:
            raise RuntimeError(f"this worker ({where}) runs other code (code hash {mine}) than the driver "
                               f"({ctx.code_hash}); start the workers from the same checkout")
        policy = _io.CheckpointPolicy(code=ctx.code_hash, reuse_stale=ctx.reuse_stale, not_before=ctx.not_before)
        with torch_threads(ctx.threads), seeded_globals(point_seed(task.module.NAME, task.key)), \
                _io.checkpoint_policy(policy):
            out = task.module.run_point(dict(task.point), task.cfg, device)
        produced = [out] if isinstance(out, dict) else list(out)
        if not produced:
            raise RuntimeError("run_point returned no rows")
    except Exception as exc:  # recorded as a row and raised at the end of the sweep, never swallowed
        produced, error = [{}], traceback.format_exc()
        error_line = f"{type(exc).__name__}: {exc}"
    runtime = time.perf_counter() - start
    try:
        name = device_name(device)
    except Exception:
        name = str(device)
    rows = [finish_row(task, row, runtime / len(produced), len(produced), name) for row in produced]
    if error is not None:
        rows[0]["error"] = error_line
    return TaskResult(task.key, rows, error, where)


def finish_row(task: Task, row: dict, runtime: float, count: int, device: str) -> dict:
    ctx = task.context
    full = {**task.point, **row, "preset": ctx.preset, "device": device, "runtime_s": round(runtime, 4),
            "point": task.key, "point_rows": count, "config_hash": ctx.config_hash, "data_hash": ctx.data_hash,
            "code_hash": ctx.code_hash}
    full.setdefault("seed", task.point.get("seed"))
    return full


def error_result(task: Task, exc: BaseException) -> TaskResult:
    """The error row of a task that never returned (its worker died too often, or it could not be sent)."""
    text = f"{type(exc).__name__}: {exc}"
    row = finish_row(task, {}, math.nan, 1, "unknown")
    row["error"] = text
    return TaskResult(task.key, [row], text, "")


# ----------------------------------------------------------------------------------------------- executors
class InProcess:
    """Points one after another in this process (the default)."""

    workers = 1
    local = True                     # the points run on this machine
    description = "in this process"

    def threads(self) -> int | None:
        return None

    def run(self, tasks: list[Task], first_alone: bool = False) -> Iterator[TaskResult]:
        for task in tasks:
            yield run_task(task)


class DaskExecutor:
    """Points as tasks of a Dask cluster, results in the order they finish."""

    def __init__(self, client, cluster=None, threads: int | None = None):
        self.client, self.cluster, self._threads = client, cluster, threads
        self.workers = cluster_workers(client)
        self.local = cluster is not None
        kind = "a local Dask cluster" if cluster is not None else f"the Dask cluster at {client.scheduler.address}"
        self.description = f"{kind} of {self.workers} workers"

    def threads(self) -> int | None:
        return self._threads

    def run(self, tasks: list[Task], first_alone: bool = False) -> Iterator[TaskResult]:
        from distributed import as_completed

        if not tasks:
            return
        if first_alone and len(tasks) > 1:   # the first point computes what the others reuse
            yield from self.run(tasks[:1])
            tasks = tasks[1:]
        futures = {self.client.submit(run_task, t, key=f"{t.module.NAME}-{_io.key_tag(t.key)}-{time.time_ns()}",
                                      pure=False): t for t in tasks}
        for future in as_completed(futures):
            task = futures.pop(future)
            try:
                result = future.result()
            except Exception as exc:          # KilledWorker after repeated deaths, serialisation errors
                result = error_result(task, exc)
            future.release()
            yield result


def cluster_workers(client) -> int:
    """How many workers the client's cluster has (all of them: newer ``distributed`` lists a few by default)."""
    info = client.scheduler_info(n_workers=-1) if _accepts_n_workers(client) else client.scheduler_info()
    return max(1, len(info.get("workers", {})))


def _accepts_n_workers(client) -> bool:
    import inspect

    try:
        return "n_workers" in inspect.signature(client.scheduler_info).parameters
    except (TypeError, ValueError):
        return False


def local_threads(workers: int) -> int:
    """torch threads per worker so that workers x threads <= cores."""
    return max(1, (os.cpu_count() or 1) // workers)


@contextlib.contextmanager
def executor(workers: int | None = None, scheduler: str | None = None, *, quiet: bool = False):
    """The executor of a run: ``InProcess()`` by default; with ``workers`` a local cluster of that many
    worker processes (one point at a time each, ``local_threads`` torch threads; on a machine with GPUs
    worker i sees GPU i mod #GPUs alone), with ``scheduler`` the existing cluster at that address. The
    dashboard's address is printed."""
    if workers is None and scheduler is None:
        yield InProcess()
        return
    if workers is not None and scheduler is not None:
        raise ValueError("give --workers (a local cluster) or --scheduler (an existing one), not both")
    if workers is not None and (isinstance(workers, bool) or int(workers) < 1):
        raise ValueError(f"--workers must be a positive integer, got {workers!r}")
    import logging

    from distributed import Client

    say = (lambda *a: None) if quiet else _io.notice
    if scheduler is not None:
        with Client(scheduler, timeout="30s") as client:
            ex = DaskExecutor(client)
            say(f"executor: {ex.description}; dashboard {client.dashboard_link}")
            yield ex
        return
    cluster = local_cluster(int(workers))
    try:
        with Client(cluster) as client:
            ex = DaskExecutor(client, cluster, threads=local_threads(int(workers)))
            say(f"executor: {ex.description}, {ex.threads()} torch thread(s) each; dashboard "
                f"{client.dashboard_link}" + ("" if _has_bokeh() else " (install bokeh to serve it)"))
            yield ex
    finally:
        logging.getLogger("distributed").setLevel(logging.CRITICAL)   # no shutdown chatter
        cluster.close()


def _has_bokeh() -> bool:
    import importlib.util

    return importlib.util.find_spec("bokeh") is not None


def local_cluster(workers: int):
    """A ``distributed`` cluster of ``workers`` worker processes on this machine (a SpecCluster, so each
    worker gets its own environment: ``MEMSEP_WORKER`` = its index and, where there are GPUs,
    ``CUDA_VISIBLE_DEVICES`` = one of them)."""
    import logging

    from distributed import Nanny, Scheduler, SpecCluster

    import psutil

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    threads = local_threads(workers)
    memory = int(psutil.virtual_memory().total / workers)      # a worker beyond this is restarted
    specs = {}
    for i in range(workers):
        env = {"MEMSEP_WORKER": str(i), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(i % gpus)
        specs[f"worker-{i}"] = {"cls": Nanny, "options": {"nthreads": 1, "env": env, "silence_logs": logging.ERROR,
                                                          "memory_limit": memory}}
    scheduler = {"cls": Scheduler, "options": {"dashboard_address": ":0"}}
    return SpecCluster(workers=specs, scheduler=scheduler, silence_logs=logging.ERROR, name="memsep")
