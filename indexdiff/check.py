"""Numerical verification: each derivative against central differences of the one before it, in float64.

Random data is scaled to the expression so that each contraction's result is of order one (no saturated sigmoid
makes a check vacuous); the differences are Richardson-extrapolated, and the tolerance adds their estimated
truncation and rounding error, so steep functions pass and a derivative off by 0.1% fails. A value that is not
finite is reported as such, not as a wrong derivative. Checks that would need too much memory or time are refused.
The random data (``data.py``) suits matrix functions: inv, det and logdet get square, well conditioned matrices.
A matrix declared symmetric (``Expr.symmetric``) is symmetric in the data and moves symmetrically in the
differences, so the check compares the derivative by it with sym(G) (``symmetric.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .data import MAX_BYTES, SMALLER, matrix_axes, random_arrays, refuse_large, shapes, sizes_for
from .errors import (
    ArgumentError,
    DiffError,
    IndexDiffError,
    ShapeError,
    expect_dims,
    expect_expr,
    expect_specs,
)
from .expr import Expr, Number, Program, depth_safe
from .names import tensors
from .operators import LinAlgProblem

__all__ = ["check", "random_arrays", "sizes_for", "matrix_axes", "CheckReport", "CheckResult", "MAX_BYTES"]

_STEP = 1e-3  # relative step of the coarser central difference (Richardson's optimum is near eps^(1/5))
_HALVINGS = 12  # at most: a step 4096 times smaller
_NOISE = 100 * float(np.finfo(np.float64).eps)  # rounding noise of a difference, per |f| / step
_TINY = 1e-12  # derivative values below this say nothing about the formula
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class CheckResult:
    """One derivative compared with central differences: the largest errors, whether they pass, and the cause
    when the comparison could not be made (a value that is not finite at the data)."""

    wrt: tuple[str, ...]
    max_abs_error: float
    max_rel_error: float
    ok: bool
    cause: str | None = None
    largest: float = math.nan

    def __str__(self) -> str:
        label = f"d/d{'/d'.join(self.wrt)}"
        if self.cause is not None:
            return f"{label}: NOT CHECKED: {self.cause}"
        status = "ok" if self.ok else "FAILED"
        return f"{label}: {status} (max abs error {self.max_abs_error:.2e}, relative {self.max_rel_error:.2e})"


@dataclass(frozen=True)
class CheckReport:
    """All derivatives checked, with the index sizes of the data and warnings about the check's strength."""

    results: tuple[CheckResult, ...]
    dims: dict[str, int] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()
    random: bool = True

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def __str__(self) -> str:
        sizes = ", ".join(f"{i}={n}" for i, n in self.dims.items())
        lines = [f"check {r}" for r in self.results] + [f"warning: {w}" for w in self.warnings]
        if sizes:
            lines.append(f"({'random data' if self.random else 'given arrays'}, sizes {sizes})")
        return "\n".join(lines)


def _finite(a: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(a)))


def _not_finite(what: str, a: np.ndarray) -> str:
    bad = ~np.isfinite(a)
    kind = "overflows" if np.any(np.isinf(a)) else "is nan (outside a function's domain, or inf - inf)"
    return f"{what} {kind} at this data ({int(bad.sum())} of {a.size} entries); try other data (--data, --seed)"


def _differences(
    f: Callable[[dict[str, np.ndarray]], np.ndarray],
    data: dict[str, np.ndarray],
    name: str,
    out_shape: tuple[int, ...],
    f_scale: float,
    step: Callable[[int], None] | None,
    symmetric: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The derivative of ``f`` by each entry of ``data[name]`` (trailing axes), and a bound on its error.

    A ``symmetric`` matrix is moved symmetrically: entries (i, j) and (j, i) together, which moves f by
    G_ij + G_ji, so half the difference is the entry of sym(G) = (G + Gᵀ)/2, the derivative by a symmetric
    matrix (``symmetric.py``).

    Central differences at steps s and s/2 are Richardson-extrapolated; the bound is the finer difference's
    estimated truncation error (which bounds the extrapolation's) plus rounding noise. s starts at 1e-3 |x| (a
    step never crosses zero, where log and sqrt end) and halves, up to 12 times, while truncation dominates the
    bound and the bound exceeds 1e-6 of the derivative: steep points get small steps. The smallest bound wins.
    """
    x = np.asarray(data[name], dtype=np.float64)
    typical = float(np.max(np.abs(x), initial=0.0)) or 1.0
    best, bound = np.empty(out_shape + x.shape), np.empty(out_shape + x.shape)
    moved = x.copy()
    args = {**data, name: moved}

    def central(idx: tuple[int, ...], s: float) -> np.ndarray:
        twin = idx[::-1] if symmetric and idx[0] != idx[1] else idx
        moved[idx], moved[twin] = x[idx] + s, x[twin] + s
        up, above = f(args), moved[idx]
        moved[idx], moved[twin] = x[idx] - s, x[twin] - s
        down, below = f(args), moved[idx]
        moved[idx], moved[twin] = x[idx], x[twin]
        return (up - down) / (above - below) / (1 if twin is idx else 2)  # the steps taken, after rounding

    for k, idx in enumerate(np.ndindex(*x.shape)):
        s = _STEP * (abs(float(x[idx])) or 1e-3 * typical)
        coarse, chosen = central(idx, s), None
        for _ in range(_HALVINGS):
            fine = central(idx, s / 2)
            estimate = (4 * fine - coarse) / 3
            truncation, noise = np.abs(fine - coarse) / 3, _NOISE * f_scale / (s / 2)
            error = truncation + noise
            if chosen is None or not np.max(error) >= np.max(chosen[1]):
                chosen = (estimate, error)
            converged = _finite(estimate) and np.max(error) <= 1e-6 * np.max(np.abs(estimate)) + 1e-9
            if converged or np.max(truncation) < noise:  # smaller steps would only add rounding noise
                break
            s, coarse = s / 2, fine
        assert chosen is not None
        best[(Ellipsis, *idx)], bound[(Ellipsis, *idx)] = chosen
        if step is not None:
            step(k + 1)
    return best, bound


def _compare(
    f: Callable[[dict[str, np.ndarray]], np.ndarray],
    symbolic: np.ndarray,
    data: dict[str, np.ndarray],
    name: str,
    wrt: tuple[str, ...],
    rtol: float = 1e-5,
    atol: float = 1e-7,
    step: Callable[[int], None] | None = None,
    symmetric: bool = False,
) -> CheckResult:
    """``symbolic``, the derivative of ``f`` by ``data[name]`` appended as trailing axes, against differences."""
    with np.errstate(all="ignore"):
        value = np.asarray(f(data), dtype=np.float64)
        symbolic = np.asarray(symbolic, dtype=np.float64)
        nan = math.nan
        if not _finite(value):
            return CheckResult(wrt, nan, nan, False, _not_finite("the value", value))
        if not _finite(symbolic):
            return CheckResult(wrt, nan, nan, False, _not_finite("the derivative", symbolic))
        f_scale = float(np.max(np.abs(value), initial=0.0))
        numeric, bound = _differences(f, data, name, value.shape, f_scale, step, symmetric)
        if not _finite(numeric):
            return CheckResult(wrt, nan, nan, False, _not_finite("the value a small step away", numeric))
    err = np.abs(symbolic - numeric)
    scale = max(1.0, float(np.max(np.abs(numeric), initial=0.0)))
    ok = bool(np.all(err <= atol * scale + rtol * np.abs(numeric) + bound))
    worst = float(np.max(err, initial=0.0))
    largest = float(max(np.max(np.abs(symbolic), initial=0.0), np.max(np.abs(numeric), initial=0.0)))
    return CheckResult(wrt, worst, worst / scale, ok, None, largest)


def _given(expr: Expr, arrays: Any) -> dict[str, np.ndarray]:
    """The user's arrays as float64, each validated: present, numeric and real, with the tensor's rank."""
    if not isinstance(arrays, Mapping):
        raise ArgumentError(
            f"arrays must map tensor names to arrays, got {type(arrays).__name__}", hint="pass {'x': x, 'A': A}"
        )
    from .evaluate import _locate

    text, out = str(expr), {}
    for name, rank in expr.variables.items():
        where = _locate(text, name)
        if name not in arrays:
            given = ", ".join(sorted(map(str, arrays))) or "none"
            raise ShapeError(
                f"no array given for '{name}'", text, *where, hint=f"add an array named {name} (given: {given})"
            )
        a = np.asarray(arrays[name])
        if not (np.issubdtype(a.dtype, np.number) or a.dtype == bool) or np.iscomplexobj(a):
            raise ShapeError(
                f"the array for '{name}' is not real numbers (dtype {a.dtype})",
                text,
                *where,
                hint="the check compares real derivatives in float64: pass integers or floats",
            )
        if a.ndim != rank:
            raise ShapeError(
                f"'{name}' has {rank} ind{'ex' if rank == 1 else 'ices'} but the array has {a.ndim} axes "
                f"(shape {a.shape})",
                text,
                *where,
                hint=f"pass an array with {rank} axes for {name}",
            )
        out[name] = a.astype(np.float64)
    return out


def _elements(expr: Expr, data: Mapping[str, np.ndarray], sizes: Mapping[str, int]) -> int:
    """The number of entries of ``expr``'s value."""
    origin = {i: data[t].shape[axis] for i, (t, axis) in expr.origins.items() if t in data}
    return math.prod(sizes.get(i) or origin.get(i, 1) for i in expr.free)


@depth_safe
def check(
    expr: Expr | Program,
    *wrt: str,
    arrays: Mapping[str, Any] | None = None,
    dims: Mapping[str, int] | None = None,
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-7,
    progress: Progress | None = None,
    max_seconds: float | None = 600.0,
) -> CheckReport:
    """Differentiate ``expr`` by ``wrt`` in turn and compare each derivative with central differences.

    ``progress(label, done, total)`` is told of the perturbations done, about once a second, when the check takes
    longer than a second; a check estimated to take more than ``max_seconds`` is refused (None: no limit).

    >>> import indexdiff as ix
    >>> ix.check(ix.parse("x_i A_ij x_j"), "x", "x").ok
    True
    """
    from .diff import diff
    from .evaluate import evaluate

    expect_expr(expr, "check")
    expect_specs(wrt, "check")
    if not wrt:
        raise DiffError("no variable to check the derivative by", hint="pass one, e.g. ix.check(e, 'x')")
    if not (isinstance(rtol, (int, float)) and isinstance(atol, (int, float)) and rtol >= 0 and atol >= 0):
        raise ArgumentError(f"the tolerances must be numbers >= 0, got rtol={rtol!r}, atol={atol!r}", hint="rtol=1e-5")
    top, value, final = expr, evaluate, lambda e: e
    if isinstance(expr, Program):  # evaluated statement by statement, differentiated into programs
        from .forward import check_parts

        top, expr, value, final = check_parts(expr, wrt)
    dims = expect_dims(dims)
    if arrays is None:
        _, sizes = shapes(expr, dims)
        definitions = {s.name: s.node for s in top.statements if s.name} if isinstance(top, Program) else None
        data = random_arrays(expr, dims, seed, definitions)
    else:
        data = _given(expr, arrays)
        sizes = {i: n for i, n in _actual_sizes(expr, data).items()}
        sizes.update(dims)
    levels, current = [], top
    for spec in wrt:
        nxt = diff(current, spec)
        name = spec.split("_")[0].strip()
        entries = _elements(final(current), data, sizes) * data[name].size
        refuse_large(f"the differences of d/d{name}", entries, str(nxt))
        levels.append((current, nxt, name))
        current = nxt
    try:
        with np.errstate(all="ignore"):
            if isinstance(top, Program):  # a program's first run compiles it: time the next one
                for e, _, _ in levels:
                    value(e, data, sizes)
            timed = [_timed(lambda e=e: value(e, data, sizes)) for e, _, _ in levels]
    except LinAlgProblem as err:  # a matrix function undefined at the data
        if arrays is not None:
            raise
        hint = f"{err.hint}; or check at your own arrays (--data, arrays=) or another seed (--seed, seed=)"
        raise LinAlgProblem(f"{err.reason}, at the random data", err.text, err.pos, err.end, hint=hint) from None
    counts = [4 * data[name].size for _, _, name in levels]
    estimate = sum(t * n for t, n in zip(timed, counts))
    if max_seconds is not None and estimate > max_seconds:
        raise IndexDiffError(
            f"the check would take about {estimate:.0f} s ({sum(counts)} evaluations of the value and derivatives)",
            str(expr),
            hint=SMALLER,
        )
    results = []
    for k, ((current, nxt, name), count) in enumerate(zip(levels, counts)):
        path = tuple(wrt[: k + 1])
        step = None
        if progress is not None and estimate > 1.0:
            step = _reporter(progress, f"d/d{'/d'.join(path)}", count // 4)
        with np.errstate(all="ignore"):
            symbolic = value(nxt, data, sizes)
        f = lambda a, e=current: value(e, a, sizes)  # noqa: E731
        result = _compare(f, symbolic, data, name, path, rtol, atol, step, name in expr.symmetric)
        results.append((result, isinstance(final(nxt).node, Number) and final(nxt).node.value == 0))
    return CheckReport(tuple(r for r, _ in results), dict(sorted(sizes.items())), _warnings(results), arrays is None)


def _timed(run: Callable[[], Any]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _reporter(progress: Progress, label: str, total: int) -> Callable[[int], None]:
    """A step callback that tells ``progress`` about once a second."""
    last = [time.monotonic()]

    def step(done: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0 or done == total:
            last[0] = now
            progress(label, done, total)

    return step


def _warnings(results: list[tuple[CheckResult, bool]]) -> tuple[str, ...]:
    checked = [r for r, zero in results if not zero and r.cause is None]
    if checked and all(r.largest < _TINY for r in checked):
        return (
            f"every derivative value checked is below {_TINY:.0e} in magnitude: the check says little; "
            "try --dims or --data (dims= or arrays= in Python)",
        )
    return ()


def _actual_sizes(expr: Expr, data: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Index letter -> length, read off the given arrays."""
    out: dict[str, int] = {}
    for t in tensors(expr.node):
        if t.name in data:
            for axis, i in enumerate(t.indices):
                out.setdefault(i, np.shape(data[t.name])[axis])
    return out
