"""Numerical verification: each derivative against central differences of the one before it, in float64.

Random data is scaled to the expression so that each contraction's result is of order one (no saturated sigmoid
makes a check vacuous); the differences are Richardson-extrapolated, and the tolerance adds their estimated
truncation and rounding error, so steep functions pass and a derivative off by 0.1% fails. A value that is not
finite is reported as such, not as a wrong derivative. Checks that would need too much memory or time are refused.

Matrix functions (``inv``, ``det``, ``logdet``) need square, invertible arguments, and logdet a positive
determinant. The two free indices of a matrix function's argument get one length (they are joined, as a δ joins
its indices), and a tensor inside such an argument with two axes of that length (``A_ij`` in ``inv(A_ij)``, or in
``logdet(A_ij + B_ij)``) gets the identity on those axes plus uniform [0.5, 1.5] / (2n) off it: every row's
off-diagonal entries sum to less than 3/4 of its diagonal one, so the matrix is strictly diagonally dominant with
a positive diagonal, hence invertible, well conditioned and of positive determinant (Gershgorin: every eigenvalue
has a positive real part), and stays so under the check's small steps. Arguments built otherwise
(``X_ni X_nj + lam δ_ij`` with positive data is positive definite anyway) get the usual data; where that is
singular or has a negative determinant (``logdet(-A_ij)``), evaluating is an error: pass your own arrays.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import (
    ArgumentError,
    DiffError,
    IndexDiffError,
    ShapeError,
    expect_dims,
    expect_expr,
    expect_seed,
    expect_specs,
)
from .expr import Add, Delta, Expr, Mul, Node, Number, Op, Program, Sum, Tensor, depth_safe
from .names import UnionFind, all_indices, children, tensors
from .operators import MATRIX_FUNCTIONS, LinAlgProblem

__all__ = [
    "check",
    "random_arrays",
    "sizes_for",
    "joined_indices",
    "matrix_axes",
    "well_conditioned",
    "CheckReport",
    "CheckResult",
    "MAX_BYTES",
]

MAX_BYTES = 2**30  # the most memory the random data, or one derivative's table of differences, may take
_STEP = 1e-3  # relative step of the coarser central difference (Richardson's optimum is near eps^(1/5))
_HALVINGS = 12  # at most: a step 4096 times smaller
_NOISE = 100 * float(np.finfo(np.float64).eps)  # rounding noise of a difference, per |f| / step
_TINY = 1e-12  # derivative values below this say nothing about the formula
_SMALLER = "check at smaller sizes (--dims i=50,j=20, or dims={...} in Python): a wrong formula fails at any size"
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


def _shapes(
    expr: Expr, dims: Mapping[str, int] | None, defaults: bool = True
) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
    """A shape for each tensor: index letters that share a tensor axis get one size (from dims or a default)."""
    dims = expect_dims(dims)
    classes = UnionFind()
    find, join = classes.find, classes.union
    pairs = joined_indices(expr.node)
    for pair in pairs:
        join(*pair)
    axes: dict[str, list[str]] = {}
    for t in tensors(expr.node):
        first = axes.setdefault(t.name, list(t.indices))
        for a, b in zip(first, t.indices):
            join(a, b)
    for name in dims:
        find(name)
    letters_everywhere = all_indices(expr.node) | set(expr.free)
    for i in letters_everywhere:
        find(i)
    size: dict[str, int] = {}
    for i, n in dims.items():
        r = find(i)
        if r in size and size[r] != n:
            raise ShapeError(
                f"dims give different sizes to indices that name the same axis ({size[r]} and {n} for '{i}')",
                str(expr),
                hint="indices used for the same axis of a tensor need one size",
            )
        size[r] = n
    default = 3
    # Matrices first: their rows then have the smallest default length, so that a product like A_ik B_kj has full
    # rank (its summed k at least as long as i).
    matrices = [i for pair, matrix in pairs.items() if matrix for i in pair]
    for i in [*matrices, *(i for letters in axes.values() for i in letters), *sorted(letters_everywhere)]:
        r = find(i)
        if r not in size:
            if not defaults:
                text = str(expr)
                owner = next((t.name for t in tensors(expr.node) if i in t.indices), "")
                at = text.find(f"{owner}_") if owner else -1
                raise ShapeError(
                    f"no size given for index '{i}'",
                    text,
                    at if at >= 0 else None,
                    at + len(owner) if at >= 0 else None,
                    hint=f"give every index a size, e.g. dims={{'{i}': 100}} (--dims {i}=100)",
                )
            size[r] = default
            default += 1
    shapes = {name: tuple(size[find(i)] for i in letters) for name, letters in axes.items()}
    for name, rank in expr.variables.items():
        if name not in shapes:
            shapes[name] = (3,) * rank
    used = {i: size[find(i)] for i in sorted(letters_everywhere)}
    return shapes, used


def joined_indices(node: Node) -> dict[tuple[str, str], bool]:
    """Pairs of indices that must have one length: a δ's (False), and a matrix function's argument's two free
    indices (True)."""
    out: dict[tuple[str, str], bool] = {}
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Delta) and len(n.indices) == 2:
            out.setdefault((n.indices[0], n.indices[1]), False)
        elif isinstance(n, Op) and n.name in MATRIX_FUNCTIONS and len(n.arg.free) == 2:
            r, c = sorted(n.arg.free)
            out[r, c] = True
        stack.extend(children(n))
    return out


def matrix_axes(expr: Expr, definitions: Mapping[str, Node] | None = None) -> dict[str, tuple[int, int]]:
    """Tensors inside the argument of a matrix function with two axes of one index class (joined by the tensor's
    other uses, δs and matrix functions, as ``_shapes`` joins them): the axes random data puts an identity on.
    ``definitions`` (a program's statements) makes the tensors defining a statement used there inside it too."""
    classes = UnionFind()
    for pair in joined_indices(expr.node):
        classes.union(*pair)
    first: dict[str, tuple[str, ...]] = {}
    for t in tensors(expr.node):
        for a, b in zip(first.setdefault(t.name, t.indices), t.indices):
            classes.union(a, b)
    inside: list[str] = []
    stack = [expr.node]
    while stack:
        n = stack.pop()
        if isinstance(n, Op) and n.name in MATRIX_FUNCTIONS:
            inside += [t.name for t in tensors(n.arg)]
        stack.extend(children(n))
    for name in inside:  # grows while it is read: a statement's definition, that definition's statements...
        if definitions is not None and name in definitions:
            inside += [t.name for t in tensors(definitions[name]) if t.name not in inside]
    out: dict[str, tuple[int, int]] = {}
    for name in dict.fromkeys(inside):
        axes = [classes.find(i) for i in first.get(name, ())]
        pairs = [(p, q) for q in range(len(axes)) for p in range(q) if axes[p] == axes[q]]
        if pairs and (definitions is None or name not in definitions):
            out[name] = pairs[0]
    return dict(sorted(out.items()))


def well_conditioned(a: np.ndarray, axes: tuple[int, int]) -> np.ndarray:
    """``a`` (uniform in [0.5, 1.5]) / (2n) plus the identity on ``axes`` (length n): strictly diagonally dominant
    with a positive diagonal along them (see the module docstring)."""
    n = a.shape[axes[0]]
    out = a / (2 * n)
    at: list[Any] = [slice(None)] * a.ndim
    at[axes[0]] = at[axes[1]] = np.arange(n)
    out[tuple(at)] += 1.0
    return out


def sizes_for(expr: Expr, dims: Mapping[str, int] | None = None) -> dict[str, int]:
    """The length of every index letter of ``expr`` in the random data: ``dims`` where given, else a default."""
    return _shapes(expr, dims)[1]


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.3g} MiB"


def _refuse_large(what: str, elements: int, text: str) -> None:
    if elements * 8 > MAX_BYTES:
        raise ShapeError(
            f"the check would need {_gib(elements * 8)} for {what}, more than its limit of {_gib(MAX_BYTES)}",
            text,
            hint=_SMALLER,
        )


def _scales(node: Node, size: Mapping[str, int]) -> dict[str, float]:
    """For each tensor, 1/sqrt(n), n the largest product of the lengths of its indices summed in one product
    (functions and powers start afresh inside): then each contraction's result is of order one."""
    summed_over: dict[str, int] = {}
    stack: list[tuple[Node, frozenset[str]]] = [(node, frozenset())]
    while stack:
        n, summed = stack.pop()
        if isinstance(n, Tensor):
            k = math.prod(size.get(i, 1) for i in set(n.indices) & summed)
            summed_over[n.name] = max(summed_over.get(n.name, 1), k)
        elif isinstance(n, Sum):
            stack.append((n.body, summed | frozenset(n.indices)))
        else:
            inner = summed if isinstance(n, (Mul, Add)) else frozenset()
            stack.extend((c, inner) for c in children(n))
    return {name: 1 / math.sqrt(k) for name, k in summed_over.items()}


def random_arrays(
    expr: Expr, dims: Mapping[str, int] | None = None, seed: int = 0, definitions: Mapping[str, Node] | None = None
) -> dict[str, np.ndarray]:
    """Random float64 arrays, one per input tensor: uniform in [0.5, 1.5] (positive, inside the domain of log,
    sqrt and fractional powers) times 1/sqrt(n), n the product of the lengths of the indices summed over the
    tensor in one product, so that ``X_ij w_j`` stays of order one at any size. A square tensor inside a matrix
    function's argument (or inside a statement of ``definitions`` used there) is the identity plus a small
    positive part (``well_conditioned``)."""
    shapes, sizes = _shapes(expr, dims)
    rng = np.random.default_rng(expect_seed(seed))
    largest = max(shapes, key=lambda name: math.prod(shapes[name]), default=None)
    if largest is not None:
        what = f"the random data ({largest}: {' x '.join(map(str, shapes[largest]))} float64, the largest array)"
        _refuse_large(what, sum(math.prod(s) for s in shapes.values()), str(expr))
    scale = _scales(expr.node, sizes)
    square = matrix_axes(expr, definitions)
    out = {}
    for name, shape in sorted(shapes.items()):
        a = rng.uniform(0.5, 1.5, size=shape)
        if name in square:
            a = well_conditioned(a, square[name])
        out[name] = np.asarray(a * scale.get(name, 1.0))
    return out


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
) -> tuple[np.ndarray, np.ndarray]:
    """The derivative of ``f`` by each entry of ``data[name]`` (trailing axes), and a bound on its error.

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
        moved[idx] = x[idx] + s
        up, above = f(args), moved[idx]
        moved[idx] = x[idx] - s
        down, below = f(args), moved[idx]
        moved[idx] = x[idx]
        return (up - down) / (above - below)  # the steps actually taken, after rounding

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
        numeric, bound = _differences(f, data, name, value.shape, f_scale, step)
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
        _, sizes = _shapes(expr, dims)
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
        _refuse_large(f"the differences of d/d{name}", entries, str(nxt))
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
            hint=_SMALLER,
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
        result = _compare(f, symbolic, data, name, path, rtol, atol, step)
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
