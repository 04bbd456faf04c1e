"""Where the work of ``divkit check`` and ``divkit sweep`` runs: this process, local worker
processes, or a Dask distributed cluster.

:func:`executor` gives a context manager with one method, ``imap(fn, items)``, that yields
``(index, fn(item))`` pairs as they finish (in any order; callers put them back in order).
``fn`` must be a module-level function (or a ``functools.partial`` of one) so that it can be
sent to another process; every unit of work is independent and deterministic, so the
results do not depend on where or in which order they run.

* ``workers=1`` and no scheduler: a plain loop in this process;
* ``workers=N``: ``N`` local processes (``multiprocessing``, forked on POSIX so that the
  workers inherit the loaded catalog; spawned elsewhere), created before any thread starts;
* ``scheduler="local"``: an in-process Dask ``LocalCluster`` with ``workers`` single-threaded
  worker processes (they import the same divkit as this process);
* ``scheduler="tcp://host:8786"`` (any Dask address): the workers of that cluster, which
  must have divkit installed (see docs/dask.md).
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = ["executor", "default_workers", "parse_workers", "WorkerError"]


class WorkerError(RuntimeError):
    """A unit of work could not run on the executor (not an error of the work itself)."""


def default_workers() -> int:
    """The CPUs this process may run on (the default of ``--workers``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def parse_workers(text: str) -> int:
    """``--workers N``: a positive integer (argparse type)."""
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}"
                                         ) from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _call(task):
    index, fn, item = task
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return index, fn(item)


class _Serial:
    workers = 1
    where = "this process"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def imap(self, fn: Callable, items: Iterable) -> Iterator:
        for i, item in enumerate(items):
            yield _call((i, fn, item))


class _Processes:
    def __init__(self, workers: int):
        import multiprocessing

        methods = multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if "fork" in methods else None)
        self.workers = workers
        self.where = f"{workers} local processes"
        # the loaded modules and caches go to the permanent generation: the children's
        # garbage collector does not walk them again (nor copy their pages on write)
        self._frozen = hasattr(gc, "freeze")
        if self._frozen:
            gc.freeze()
        # created now, before the caller starts a progress thread: the forked children
        # inherit no lock held by another thread
        self._pool = ctx.Pool(workers)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._pool.terminate()
        self._pool.join()
        if self._frozen:
            gc.unfreeze()
        return False

    def imap(self, fn, items):
        tasks = [(i, fn, item) for i, item in enumerate(items)]
        yield from self._pool.imap_unordered(_call, tasks, chunksize=1)


def _package_root() -> str:
    return str(Path(__file__).resolve().parents[1])


class _Dask:
    def __init__(self, scheduler: str, workers: int):
        try:
            from distributed import Client, LocalCluster
        except ImportError:
            raise ValueError("--scheduler needs dask's distributed package "
                             "(pip install 'distributed>=2024.1')") from None
        self._cluster = None
        if scheduler == "local":
            # worker processes import the divkit this process runs (also from a checkout)
            root = _package_root()
            path = os.environ.get("PYTHONPATH", "")
            if root not in path.split(os.pathsep):
                os.environ["PYTHONPATH"] = root + (os.pathsep + path if path else "")
            self._cluster = LocalCluster(n_workers=workers, threads_per_worker=1,
                                         processes=True, dashboard_address=None,
                                         silence_logs=50)
            self._client = Client(self._cluster)
            self.where = f"a Dask LocalCluster of {workers} worker processes"
        else:
            try:
                self._client = Client(scheduler, timeout=30)
            except (OSError, TimeoutError) as exc:
                raise ValueError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
            self.where = f"the Dask cluster at {scheduler}"
        self.workers = max(1, sum(self._client.nthreads().values()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        return False

    def imap(self, fn, items):
        from distributed import as_completed

        tasks = [(i, fn, item) for i, item in enumerate(items)]
        futures = self._client.map(_call, tasks, pure=False)
        for fut in as_completed(futures):
            try:
                yield fut.result()
            except Exception as exc:  # noqa: BLE001 - a worker that cannot run divkit
                raise WorkerError(f"a Dask worker ({self.where}) failed: "
                                  f"{type(exc).__name__}: {exc}") from exc


def executor(*, workers: int | None = None, scheduler: str | None = None):
    """The executor for ``workers`` local processes or a Dask ``scheduler`` (see the module).

    Parameters
    ----------
    workers : int, optional, keyword-only
        Local worker processes (``None``: :func:`default_workers`); with
        ``scheduler="local"`` the size of the LocalCluster.
    scheduler : str, optional, keyword-only
        ``"local"`` or the address of a Dask scheduler.
    """
    if workers is not None and (isinstance(workers, bool) or int(workers) != workers
                                or workers < 1):
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    n = default_workers() if workers is None else int(workers)
    if scheduler is not None:
        return _Dask(scheduler, n)
    if n == 1:
        return _Serial()
    return _Processes(n)


def stderr_is_terminal(args) -> bool:
    """Whether the user's stderr is a terminal (recorded by the CLI before the command's
    budget fork, whose child writes into a pipe)."""
    flag = getattr(args, "_stderr_tty", None)
    return sys.stderr.isatty() if flag is None else bool(flag)
