"""Batches worked on in forked processes while the main process writes, for the bulk
loads (the synthetic generator, the importers)."""

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.pool import AsyncResult
from typing import Any, TypeVar

Result = TypeVar("Result")


def in_order(
    work: Callable[..., Result], arguments: Iterable[tuple[Any, ...]], workers: int
) -> Iterator[Result]:
    """work(*args) for each args, in the order given: in this process, or in `workers`
    forked processes kept a few batches ahead of the caller, so that memory stays
    flat however many batches there are."""
    if workers <= 1:
        for args in arguments:
            yield work(*args)
        return
    with multiprocessing.get_context("fork").Pool(workers, initializer=_die_on_sigterm) as pool:
        pending: deque[AsyncResult[Result]] = deque()
        for args in arguments:
            pending.append(pool.apply_async(work, args))
            if len(pending) > 2 * workers:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()


def _die_on_sigterm() -> None:
    """In a worker: SIGTERM kills at once, as it does by default. A worker is forked
    with its parent's handlers, and the seed's Python-level SIGTERM handler would only
    run once the worker's main thread returns to Python, never if it is blocked in a
    lock: the pool's terminate() would then wait for it forever."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
