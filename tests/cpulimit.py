"""A CPU-time limit for the fuzzers: an input that takes longer is a hang, whatever the machine's load."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator


class Timeout(Exception):
    """The limit was reached."""


@contextlib.contextmanager
def cpu_limit(seconds: float) -> Iterator[None]:
    """Raise ``Timeout`` inside the block after ``seconds`` of CPU time (not wall time)."""

    def stop(signum: int, frame: object) -> None:
        raise Timeout

    old = signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)
