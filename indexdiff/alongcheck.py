"""Numerical verification of directional derivatives (``--check`` with ``--along``), the way ``ix.check`` verifies
derivatives: each differentiation, in the order ``directional`` takes them, against central differences of the
expression before it. A derivative contracted with v is compared with the derivative of t ↦ e(w + t v) at t = 0,
one scalar difference (Richardson-extrapolated, with ``check``'s error bound) instead of one per entry of w.

The directions are the given arrays where ``arrays`` holds them, else random: uniform in [-1, 1] times the largest
entry of the variable's data (so a step along v is of the variable's own scale).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .check import CheckReport, _compare, _given
from .data import random_arrays, shapes
from .directional import Along, _expr_step, _named, _spread_expr, along_label, along_names
from .errors import ArgumentError, expect_dims, expect_seed, expect_specs
from .evaluate import evaluate
from .expr import Expr, Program
from .names import tensor_names

__all__ = ["check_along"]

_T = "#t"  # the scalar a directional derivative is taken by (not a tensor name: no clash is possible)


def check_along(
    expr: Expr,
    wrt: Sequence[str],
    along: Along,
    arrays: Mapping[str, Any] | None = None,
    dims: Mapping[str, int] | None = None,
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> CheckReport:
    """Check ``ix.diff(expr, *wrt, along=along)`` level by level against central differences.

    >>> import indexdiff as ix
    >>> report = check_along(ix.parse("sum_i(log(1 + exp(-y_i X_ij w_j)))"), ["w", "w"], "v")
    >>> [str(r).split(":")[0] for r in report.results], report.ok
    (['d/dw along v', 'd/dw/dw along v'], True)
    """
    if isinstance(expr, Program):
        raise ArgumentError(
            "checking a program's directional derivative is not supported",
            str(expr.statements[-1]) if expr.statements else None,
            hint="check its full derivatives (--check without --along, or ix.check(p, 'w', 'w'))",
        )
    expect_specs(wrt, "check")
    seed, dims = expect_seed(seed), expect_dims(dims)
    wrt = tuple(wrt)
    entries = along_names(wrt, along, dict(expr.variables), set(expr.variables) | tensor_names(expr.node))
    specs, reserved = _named(expr, wrt, entries)
    if arrays is None:
        data, (_, sizes) = random_arrays(expr, dims, seed), shapes(expr, dims)
    else:
        data = _given(expr, arrays)
        sizes = dict(dims)
    rng = np.random.default_rng(seed + 1)
    for spec, v in zip(specs, entries):
        name = spec.partition("_")[0].strip()
        if v is not None and v not in data and name in data:
            given = arrays.get(v) if arrays is not None else None
            scale = float(np.max(np.abs(data[name]), initial=0.0)) or 1.0
            direction = np.asarray(given, float) if given is not None else scale * rng.uniform(-1, 1, data[name].shape)
            if name in expr.symmetric and given is None:  # a direction that keeps a symmetric matrix symmetric
                direction = (direction + direction.T) / 2
            data[v] = direction
    results, current, done = [], expr, []
    for k in sorted(range(len(specs)), key=lambda k: entries[k] is None):  # the order directional takes
        spec, v = specs[k], entries[k]
        name = spec.partition("_")[0].strip()
        nxt = _spread_expr(_expr_step(current, spec, v, reserved) if v is not None else _plain(current, spec))
        done.append(k)
        path = (_label(wrt, entries, sorted(done)),)
        with np.errstate(all="ignore"):
            symbolic = np.asarray(evaluate(nxt, data), dtype=np.float64)
        if v is None:
            f = lambda a, e=current: evaluate(e, a)  # noqa: E731
            result = _compare(f, symbolic, data, name, path, rtol, atol, symmetric=name in expr.symmetric)
        else:

            def moved(a: Mapping[str, np.ndarray], e: Expr = current, w: str = name, d: str = v) -> Any:
                return evaluate(e, {**a, w: a[w] + (a[_T] - 1.0) * a[d]})

            at_one = {**data, _T: np.array(1.0)}
            result = _compare(moved, symbolic, at_one, _T, path, rtol, atol)
        results.append(result)
        current = nxt
    return CheckReport(tuple(results), dict(sorted(sizes.items())), (), arrays is None)


def _label(wrt: tuple[str, ...], entries: tuple[str | None, ...], done: list[int]) -> str:
    """The derivatives taken so far as the command line labels them, without the leading ``d/d``: ``w/dw along v``
    (``CheckResult`` adds it)."""
    chain = [wrt[k].partition("_")[0].strip() for k in done]
    names = tuple(entries[k] for k in done)
    along = names[-1] if names[-1] is not None and not any(names[:-1]) else names
    return along_label(chain, along if any(names) else None)[3:]


def _plain(expr: Expr, spec: str) -> Expr:
    from .diff import diff

    return diff(expr, spec)
