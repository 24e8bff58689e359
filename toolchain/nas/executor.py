"""Where the search's tasks run. One interface:

    ex = make_executor("local" | "ray" | "inline", ctx, workers)
    for result in ex.map(kind, payloads):   # results in the payloads' order
        ...
    ex.shutdown()                           # or ex.shutdown(kill=True) on Ctrl-C

local   a concurrent.futures ProcessPoolExecutor (spawned processes, one torch thread each,
        the context sent once per process by the initializer)
ray     Ray tasks, one CPU each: on the cluster at `ray_address`, else on a local instance
        started with `workers` CPUs; an already initialized Ray is used as is. The context is put in
        the object store once.
inline  this process, one task at a time (tests, debugging)

Results come back in submission order whatever order they finish in, so a search is the
same with any executor and any number of workers.
"""
from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator

from ..errors import EdgecError
from . import worker

EXECUTORS = ("local", "ray", "inline")


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)


def make_executor(kind: str, ctx: worker.Context, workers: int | None = None,
                  ray_address: str | None = None):
    workers = workers or default_workers()
    if kind == "local":
        return LocalExecutor(ctx, workers)
    if kind == "ray":
        return RayExecutor(ctx, workers, ray_address)
    if kind == "inline":
        return InlineExecutor(ctx)
    raise EdgecError(f"unknown executor '{kind}'; choose one of {', '.join(EXECUTORS)}")


class InlineExecutor:
    workers = 1

    def __init__(self, ctx: worker.Context):
        self.ctx = ctx

    def map(self, kind: str, payloads: list[dict]) -> Iterator[dict]:
        import torch
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # as in a worker: same numbers, same speed per task
        try:
            for p in payloads:
                yield worker.run_in(self.ctx, kind, p)
        finally:
            torch.set_num_threads(threads)

    def shutdown(self, kill: bool = False) -> None:
        pass


class LocalExecutor:
    def __init__(self, ctx: worker.Context, workers: int):
        from concurrent.futures import ProcessPoolExecutor
        self.workers = workers
        self.pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=worker.init, initargs=(ctx, 1, True))

    def map(self, kind: str, payloads: list[dict]) -> Iterator[dict]:
        futures = [self.pool.submit(worker.run, kind, p) for p in payloads]
        try:
            for f in futures:
                yield f.result()
        finally:  # an early stop (Ctrl-C, an error): drop what has not started
            for f in futures:
                f.cancel()

    def shutdown(self, kill: bool = False) -> None:
        if kill:  # Ctrl-C: stop running tasks now, not when they finish
            for p in list(getattr(self.pool, "_processes", {}).values()):
                p.terminate()
        self.pool.shutdown(wait=not kill, cancel_futures=True)


class RayExecutor:
    def __init__(self, ctx: worker.Context, workers: int, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise EdgecError("--executor ray needs Ray: pip install 'edgec[nas]'") from None
        self.ray = ray
        if not ray.is_initialized():
            if address:  # a running cluster brings its own CPUs
                ray.init(address=address, log_to_driver=False)
            else:  # a local instance with `workers` CPUs
                ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
            self.owns = True
        else:
            self.owns = False
        self.workers = int(ray.cluster_resources().get("CPU", workers))
        self.ctx_ref = ray.put(ctx)
        self.task = ray.remote(num_cpus=1, max_retries=0)(_ray_task)

    def map(self, kind: str, payloads: list[dict]) -> Iterator[dict]:
        refs = [self.task.remote(self.ctx_ref, kind, p) for p in payloads]
        done = 0
        try:
            for r in refs:
                result = self.ray.get(r)
                done += 1  # before the yield: a consumer may stop right after it
                yield result
        finally:
            # only what was not collected: cancelling a finished task can crash Ray 2.x's
            # driver ("Tried to complete task that was not pending")
            for r in refs[done:]:
                self.ray.cancel(r)

    def shutdown(self, kill: bool = False) -> None:
        if self.owns:
            self.ray.shutdown()


def _ray_task(ctx: worker.Context, kind: str, payload: dict) -> dict:
    worker.activate(ctx)
    return worker.run(kind, payload)
