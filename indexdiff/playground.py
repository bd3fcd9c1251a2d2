"""What the playground page shows for one request: the derivative (text and MathML), the steps, the matrix form,
the numerical check, the cost and the generated Python module, each computed under a CPU-time limit.

This runs in a worker process (``serve.py`` starts it and kills it when it overruns). The user's text is parsed as
index notation, never run as Python: generated code is returned as text.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from typing import Any

from .cli import _indices, _with_origins, cost_table, parse_dims, split_specs
from .derivation import steps
from .diff import diff
from .errors import IndexDiffError
from .expr import Expr, Program
from .forward import needed
from .mathml import to_mathml
from .names import tensors
from .parser import parse
from .program import gradient_text

__all__ = ["derive", "worker", "TABS"]

#: The tabs after the derivative, cheapest first (a tab that runs out of time stops the ones after it only
#: when its computation cannot be interrupted cleanly).
TABS = ("python", "cost", "matrix", "steps", "check")
MEMORY_BYTES = 2 << 30  # address space of a worker


class Timeout(Exception):
    """A part of the request used up its CPU time."""


@contextmanager
def cpu_limit(seconds: float) -> Iterator[None]:
    """Raise ``Timeout`` inside the block after ``seconds`` of the process's CPU time (where the system has CPU
    timers; elsewhere the server's wall-clock deadline alone bounds a request)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise Timeout

    old = signal.signal(signal.SIGPROF, stop)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


def error_json(err: IndexDiffError) -> dict[str, Any]:
    """An error for the page: the full caret message, and its parts."""
    return {"message": str(err), "reason": err.reason, "hint": err.hint, "pos": err.pos, "end": err.end}


def _too_slow(limit: float, what: str) -> IndexDiffError:
    return IndexDiffError(
        f"{what} took more than {limit:g} s of CPU time",
        hint="split the expression into statements (one per line), or differentiate fewer times",
    )


def _derivative(parsed: Expr | Program, chains: list[list[str]]) -> list[dict[str, Any]]:
    if isinstance(parsed, Program):  # its backward pass (reverse mode), as the command line prints it
        text = gradient_text(parsed, None, chains)
        return [{"wrt": "; ".join(",".join(c) for c in chains), "text": text, "mathml": to_mathml(parse(text))}]
    out = []
    for chain in chains:
        d = diff(parsed, *chain)
        out.append({"wrt": ",".join(chain), "text": str(d), "mathml": to_mathml(d)})
    return out


def _steps(parsed: Expr | Program, chains: list[list[str]]) -> dict[str, Any]:
    """Each chain's derivation, one rule a step; a program's is its reverse mode, every variable at once."""
    if isinstance(parsed, Program):
        if any(len(c) != 1 for c in chains):
            raise IndexDiffError(
                "the steps of a program show its reverse mode: one variable per derivative", hint="write W; b"
            )
        labelled = [("; ".join(c[0] for c in chains), steps(parsed, *(c[0] for c in chains)))]
    else:
        labelled = [(",".join(c), steps(parsed, *c)) for c in chains]
    fields = ("rule", "note", "before", "after", "lhs")
    items = [{"wrt": wrt, "steps": [{k: getattr(s, k) for k in fields} for s in d]} for wrt, d in labelled]
    return {"status": "ok", "text": "\n\n".join(str(d) for _, d in labelled), "items": items}


def _matrix(expr: Expr | Program, chains: list[list[str]]) -> dict[str, Any]:
    from .codegen import codegen

    return {"status": "ok", "text": codegen(expr, *(",".join(c) for c in chains), format="matrix")}


def _check(expr: Expr | Program, chains: list[list[str]], seed: int, limit: float) -> dict[str, Any]:
    """Central differences at small random data (the sizes given are for the cost: a wrong formula fails at any
    size)."""
    from .check import check

    reports = [check(expr, *chain, seed=seed, max_seconds=limit) for chain in chains]
    return {"status": "ok", "ok": all(r.ok for r in reports), "text": "\n".join(str(r) for r in reports)}


def _cost(expr: Expr | Program, chains: list[list[str]], dims: dict[str, int]) -> dict[str, Any]:
    if not dims:
        return {"status": "unavailable", "text": "give the index sizes (e.g. i=1000, j=500) to see the cost"}
    from .cost import cost

    derivatives = [diff(expr, *c) for c in chains]
    costs = [cost(e, dims if isinstance(e, Program) else _with_origins(e, expr, dims)) for e in (expr, *derivatives)]
    labels = ["value", *(f"d/d{'/d'.join(c)}" for c in chains)]
    rows = [
        {"of": label, "flops": c.flops, "naive_flops": c.naive_flops, "largest_intermediate": c.largest_intermediate}
        for label, c in zip(labels, costs)
    ]
    return {"status": "ok", "text": cost_table(labels, costs, dims), "rows": rows}


def _python(expr: Expr | Program, chains: list[list[str]]) -> dict[str, Any]:
    from .codegen import codegen

    return {"status": "ok", "text": codegen(expr, *(",".join(c) for c in chains), format="python")}


def _chains(text: str, parsed: Expr | Program) -> list[list[str]]:
    """``"x; A_kl; x,x"`` -> one chain per derivative (``;`` or a new line separates them)."""
    parts = [p for p in text.replace("\n", ";").split(";") if p.strip()]
    if not parts:
        exprs = parsed.statements if isinstance(parsed, Program) else (parsed,)
        names = sorted({t.name for e in exprs for t in tensors(e.node)} - {s.name for s in exprs if s.name})
        raise IndexDiffError(
            "no variable to differentiate by",
            hint=f"the expression's tensors are: {', '.join(names) or 'none'} (x,x for a second derivative)",
        )
    return [split_specs(p) for p in parts]


class _Failure(Exception):
    """A part that could not be computed: the error to show, and whether the worker must be replaced."""

    def __init__(self, error: IndexDiffError, restart: bool = False, internal: bool = False) -> None:
        super().__init__(str(error))
        self.error, self.restart, self.internal = error, restart, internal


def _limited(part: Callable[[], Any], limit: float, what: str) -> Any:
    """``part()`` under ``limit`` seconds of CPU time; any failure is a ``_Failure``."""
    try:
        with cpu_limit(limit):
            return part()
    except Timeout:
        raise _Failure(_too_slow(limit, what), restart=True) from None
    except IndexDiffError as err:
        raise _Failure(err) from None
    except RecursionError:
        raise _Failure(IndexDiffError("the expression is too deeply nested", hint="split it into statements")) from None
    except MemoryError:
        raise _Failure(IndexDiffError("out of memory", hint="use smaller index sizes"), restart=True) from None
    except Exception as err:  # a bug in indexdiff: reported as such; the worker is replaced
        bug = IndexDiffError(f"internal error: {type(err).__name__}: {err}", hint="please report it, with the input")
        raise _Failure(bug, restart=True, internal=True) from None


def derive(request: dict[str, Any], limit: float) -> dict[str, Any]:
    """The page's data for ``request`` (``input``, ``wrt``, ``dims``, ``seed``), each part under ``limit``
    seconds of CPU time. ``restart`` says the worker should be replaced (a computation was cut off)."""

    def main() -> tuple[Any, ...]:
        parsed = parse(request["input"])
        chains = _chains(request.get("wrt", ""), parsed)
        dims = parse_dims(request.get("dims", ""), known=_indices(parsed)) if request.get("dims") else {}
        return parsed, chains, dims, _derivative(parsed, chains), to_mathml(parsed)

    try:
        parsed, chains, dims, items, shown = _limited(main, limit, "the derivative")
    except _Failure as failure:
        error = error_json(failure.error) | {"internal": failure.internal}
        return {"ok": False, "error": error, "restart": failure.restart}
    expr = Program(needed(parsed)) if isinstance(parsed, Program) else parsed
    seed = request.get("seed", 0)
    parts: dict[str, Callable[[], dict[str, Any]]] = {
        "python": lambda: _python(expr, chains),
        "cost": lambda: _cost(expr, chains, dims),
        "matrix": lambda: _matrix(expr, chains),
        "steps": lambda: _steps(parsed, chains),
        "check": lambda: _check(expr, chains, seed, limit),
    }
    tabs: dict[str, Any] = {}
    restart = False
    for name in TABS:
        if restart and any(t.name == "indexdiff-deep" for t in threading.enumerate()):  # depth.py's, cut off
            tabs[name] = {"status": "timeout", "text": "not computed: an earlier tab ran out of time"}
            continue
        try:
            tabs[name] = _limited(parts[name], limit, f"the {name} tab")
        except _Failure as failure:
            restart = restart or failure.restart
            status = "timeout" if "CPU time" in failure.error.reason else "error"
            tabs[name] = {"status": status, "text": str(failure.error)}
    out = {"ok": True, "kind": "program" if isinstance(parsed, Program) else "expression", "index": str(parsed)}
    return out | {"mathml": shown, "derivatives": items, "tabs": tabs, "restart": restart}


def worker(conn: Connection, limit: float) -> None:
    """A worker process: answers requests from ``conn`` until told to stop, or until a request was cut off."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the server, which stops its workers
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        import resource
    except ImportError:  # not a POSIX system: no memory limit
        pass
    else:
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        soft = MEMORY_BYTES if hard == resource.RLIM_INFINITY else min(MEMORY_BYTES, hard)
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    from . import check, codegen, cost  # noqa: F401  (numpy's import is not charged to the first request)

    conn.send("ready")
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        reply = derive(request, limit)
        conn.send(reply)
        if reply.get("restart"):
            return
