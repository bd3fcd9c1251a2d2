"""Trees deeper than Python's recursion limit: the recursive passes run on a large stack when they need to.

The passes (derivative, simplify, canonical form, printing, evaluation) recurse once per level of the tree.
Derivatives and programs can build trees deeper than the default limit of 1000 frames allows.
"""

from __future__ import annotations

import functools
import gc
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .errors import IndexDiffError

__all__ = ["deep", "depth_safe"]

T = TypeVar("T")

_DEEP_STACK_BYTES = 1 << 29
_DEEP_RECURSION_LIMIT = 60_000
_deep_lock = threading.Lock()
_deep_state = threading.local()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """The passes allocate many small objects and free them by reference counting; pausing the cyclic garbage
    collector meanwhile halves their time (it would scan the growing heap again and again)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def depth_safe(fn: Callable[..., T]) -> Callable[..., T]:
    """Decorates a public function so that it runs through ``deep``: deep trees work, and trees too deep even
    for that are an IndexDiffError, never a RecursionError."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return deep(functools.partial(fn, *args, **kwargs))

    return wrapper


def deep(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, also for trees deeper than Python's recursion limit allows.

    The recursive passes (derivative, simplify, canonical form, printing) recurse once per level of the tree.
    Derivatives and programs can build trees deeper than the default limit of 1000 frames; when ``fn`` hits it,
    it runs again in a thread with a large stack and a raised limit. Deeper still is an IndexDiffError.
    The cyclic garbage collector is paused during the call.
    """
    if getattr(_deep_state, "active", False):
        return fn(*args)
    try:
        with _collector_paused():
            return fn(*args)
    except RecursionError:
        pass
    outcome: dict[str, Any] = {}

    def run() -> None:
        _deep_state.active = True
        try:
            with _collector_paused():
                outcome["value"] = fn(*args)
        except BaseException as err:  # handed to the calling thread
            outcome["error"] = err

    with _deep_lock:
        limit, stack = sys.getrecursionlimit(), threading.stack_size()
        sys.setrecursionlimit(max(limit, _DEEP_RECURSION_LIMIT))
        try:
            threading.stack_size(_DEEP_STACK_BYTES)  # applies to threads started from here on
            try:
                worker = threading.Thread(target=run, name="indexdiff-deep")
                worker.start()
            finally:
                threading.stack_size(stack)
            worker.join()
        finally:
            sys.setrecursionlimit(limit)
    err = outcome.get("error")
    if isinstance(err, RecursionError):
        raise IndexDiffError(
            "the expression is nested too deeply to process",
            hint="split it into a program of shorter statements (one per line)",
        ) from None
    if err is not None:
        raise err
    return outcome["value"]
