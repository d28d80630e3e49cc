"""Row-parallel NumPy work: split a batch's rows over threads, each with one BLAS thread.

The NumPy runtimes' products are small (a step of an LSTM over a few hundred
rows). OpenBLAS's own threads spin-wait between them, which on a shared
machine made decoding ten times slower; Python threads that each own a share
of the rows and call single-threaded BLAS meet only once per batch or step,
and NumPy releases the GIL inside products and element-wise loops, so they
use every core without that cost. ``OMP_NUM_THREADS`` / ``OPENBLAS_NUM_THREADS``
(or ``LSTMTEXT_THREADS``) set by the user turn the splitting off.
"""

from __future__ import annotations

import functools
import os
import threading
from typing import Callable, Sequence

import numpy as np

# Rows per worker thread at least: below this a step is too small to share.
MIN_ROWS = 32
# Items per thread at least for map_in_threads.
MIN_ITEMS = 4


def user_chose_threads() -> bool:
    """Whether the environment fixes BLAS threads (then the library leaves threading alone)."""
    return any(os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"))


# Set in the threads of run_concurrently and map_in_threads: work they run is not split again.
_inside = threading.local()


def workers(rows: int, min_rows: int | None = None) -> int:
    """Threads for ``rows`` rows: one per core (at most 8), each with at least ``min_rows`` (:data:`MIN_ROWS`) rows.

    ``LSTMTEXT_THREADS=N`` sets the most; otherwise ``OMP_NUM_THREADS`` and friends mean one.
    Inside a task of :func:`run_concurrently` or :func:`map_in_threads` it is
    one: the cores are taken already.
    """
    if getattr(_inside, "active", False):
        return 1
    min_rows = MIN_ROWS if min_rows is None else min_rows
    cap = os.environ.get("LSTMTEXT_THREADS")
    if cap is None and user_chose_threads():
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    most = min(cores, 8) if cap is None else max(1, int(cap))
    return max(1, min(most, rows // max(1, min_rows)))


_controller = None


def one_blas_thread():
    """A context with NumPy's BLAS on one thread (None without threadpoolctl).

    The libraries are looked up once (a scan of the process's loaded
    libraries: about 0.4 ms, once per batch before), the first time, after
    NumPy's import.
    """
    global _controller
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return None
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def interleaved(order: np.ndarray, n: int) -> list[np.ndarray]:
    """``order`` dealt into ``n`` groups (0, n, 2n, ...; 1, n+1, ...), keeping its order in each."""
    return [order[w::n] for w in range(n)]


def run_parallel(fn: Callable[[np.ndarray], None], groups: Sequence[np.ndarray]) -> None:
    """``fn(group)`` for every group, the groups on threads that each use one BLAS thread.

    ``fn`` writes its results itself (to disjoint rows of shared arrays).
    Without threadpoolctl, or with one group, everything runs here.
    """
    run_concurrently([functools.partial(fn, g) for g in groups if len(g)])


def run_concurrently(tasks: Sequence[Callable[[], object]]) -> list:
    """Each task on its own thread (the first in this one), NumPy's BLAS on one thread; their results in order.

    Without threadpoolctl, or with one task, the tasks run here one after
    another. The first exception a task raises is re-raised here, after all
    have finished.
    """
    limit = one_blas_thread() if len(tasks) > 1 else None
    if limit is None:
        return [task() for task in tasks]
    results: list = [None] * len(tasks)
    errors: list[BaseException] = []

    def guarded(k):
        try:
            results[k] = tasks[k]()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    with limit:
        _run_threads(guarded, range(len(tasks)))
    if errors:
        raise errors[0]
    return results


def map_in_threads(fn: Callable[[int], object], count: int, threads: int) -> list:
    """``[fn(0), ..., fn(count - 1)]``, computed by ``threads`` threads that each take the next index when free.

    For independent pieces of work of unequal size (batches of sentences):
    a thread that finishes early takes the next index, so give the largest
    first. NumPy's BLAS runs on one thread meanwhile, and work inside ``fn``
    is not split again (:func:`workers` is one there). With fewer than
    :data:`MIN_ITEMS` items a thread, a thread would sit idle while the last
    ones run: everything then runs here in order (and ``fn`` may split its
    own work), as it does without threadpoolctl. The first exception ``fn``
    raises is re-raised here once the threads have stopped (they take no new
    index after it).
    """
    threads = max(1, int(threads)) if count >= MIN_ITEMS * threads else 1
    limit = one_blas_thread() if threads > 1 else None
    if limit is None:
        return [fn(i) for i in range(count)]
    results: list = [None] * count
    errors: list[BaseException] = []
    lock = threading.Lock()
    next_index = iter(range(count))

    def worker(_):
        while not errors:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            try:
                results[i] = fn(i)
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

    with limit:
        _run_threads(worker, range(threads))
    if errors:
        raise errors[0]
    return results


def _run_threads(target: Callable[[int], None], ids: range) -> None:
    """``target(k)`` for each ``k`` of ``ids``, the first here and the others on new threads, all marked inside."""

    def inside(k):
        before = getattr(_inside, "active", False)
        _inside.active = True
        try:
            target(k)
        finally:
            _inside.active = before

    pool = [threading.Thread(target=inside, args=(k,), daemon=True) for k in ids[1:]]
    for t in pool:
        t.start()
    try:
        inside(ids[0])
    finally:
        for t in pool:
            t.join()
