"""Numerical verification: each derivative against central differences of the one before it, in float64."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import IndexDiffError, ShapeError
from .expr import Delta, Expr, Node, Program
from .names import UnionFind, all_indices, children, tensors

__all__ = ["check", "random_arrays", "sizes_for", "CheckReport", "CheckResult"]


@dataclass(frozen=True)
class CheckResult:
    """One derivative compared with central differences: the largest errors and whether they pass."""

    wrt: tuple[str, ...]
    max_abs_error: float
    max_rel_error: float
    ok: bool

    def __str__(self) -> str:
        status = "ok" if self.ok else "FAILED"
        return (
            f"d/d{'/d'.join(self.wrt)}: {status} (max abs error {self.max_abs_error:.2e}, "
            f"relative {self.max_rel_error:.2e})"
        )


@dataclass(frozen=True)
class CheckReport:
    """All derivatives checked, with the index sizes of the random data."""

    results: tuple[CheckResult, ...]
    dims: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def __str__(self) -> str:
        sizes = ", ".join(f"{i}={n}" for i, n in self.dims.items())
        return "\n".join(f"check {r}" for r in self.results) + (f"\n(random data, sizes {sizes})" if sizes else "")


def _shapes(
    expr: Expr, dims: Mapping[str, int], defaults: bool = True
) -> tuple[dict[str, tuple[int, ...]], dict[str, int]]:
    """A shape for each tensor: index letters that share a tensor axis get one size (from dims or a default)."""
    classes = UnionFind()
    find, join = classes.find, classes.union
    for d in _deltas(expr.node):
        if len(d.indices) == 2:
            join(*d.indices)
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
            raise IndexDiffError(
                f"dims give different sizes to indices that name the same axis ({size[r]} and {n} for '{i}')",
                hint="indices used for the same axis of a tensor need one size",
            )
        size[r] = int(n)
    default = 3
    for i in [*(i for letters in axes.values() for i in letters), *sorted(letters_everywhere)]:
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


def _deltas(node: Node) -> list[Delta]:
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Delta):
            out.append(n)
        stack.extend(children(n))
    return out


def sizes_for(expr: Expr, dims: Mapping[str, int] | None = None) -> dict[str, int]:
    """The length of every index letter of ``expr`` in the random data: ``dims`` where given, else a default."""
    return _shapes(expr, dims or {})[1]


def random_arrays(expr: Expr, dims: Mapping[str, int] | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """Random float64 arrays, uniform in [0.5, 1.5] (inside the domain of log and sqrt), one per input tensor."""
    shapes, _ = _shapes(expr, dims or {})
    rng = np.random.default_rng(seed)
    return {name: rng.uniform(0.5, 1.5, size=shape) for name, shape in sorted(shapes.items())}


_STEP = 1e-5


def _central(f: Any, arrays: dict[str, np.ndarray], name: str) -> np.ndarray:
    x = np.asarray(arrays[name], dtype=np.float64)
    base = np.asarray(f(arrays))
    out = np.empty(base.shape + x.shape)
    for idx in np.ndindex(*x.shape):
        h = _STEP * max(1.0, abs(float(x[idx])))
        xp, xm = x.copy(), x.copy()
        xp[idx] += h
        xm[idx] -= h
        out[(Ellipsis, *idx)] = (f({**arrays, name: xp}) - f({**arrays, name: xm})) / (2 * h)
    return out


def check(
    expr: Expr | Program,
    *wrt: str,
    arrays: Mapping[str, Any] | None = None,
    dims: Mapping[str, int] | None = None,
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-7,
) -> CheckReport:
    """Differentiate ``expr`` by ``wrt`` in turn and compare each derivative with central differences.

    >>> import indexdiff as ix
    >>> ix.check(ix.parse("x_i A_ij x_j"), "x", "x").ok
    True
    """
    from .diff import diff
    from .evaluate import evaluate

    if isinstance(expr, Program):
        from .program import inline

        expr = inline(expr)
    if arrays is None:
        shapes, sizes = _shapes(expr, dims or {})
        data = random_arrays(expr, dims, seed)
    else:
        data = {name: np.asarray(a, dtype=np.float64) for name, a in arrays.items()}
        sizes = {i: n for i, n in _actual_sizes(expr, data).items()}
        sizes.update(dims or {})
    for name in expr.variables:
        if name not in data:
            from .evaluate import _locate

            text = str(expr)
            raise ShapeError(
                f"no array given for '{name}'", text, *_locate(text, name), hint=f"pass {name}=... or leave arrays out"
            )
    current, results, path = expr, [], []
    for spec in wrt:
        nxt = diff(current, spec)
        name = spec.split("_")[0].strip()
        path.append(spec)
        symbolic = evaluate(nxt, data, sizes)
        numeric = _central(lambda a, e=current: evaluate(e, a, sizes), data, name)
        err = np.abs(symbolic - numeric)
        scale = max(1.0, float(np.max(np.abs(numeric), initial=0.0)))
        # Central differences carry rounding noise of about eps |f| / h besides their O(h^2) error.
        f_scale = float(np.max(np.abs(evaluate(current, data, sizes)), initial=0.0))
        noise = 100 * np.finfo(np.float64).eps * f_scale / _STEP
        finite = bool(np.all(np.isfinite(symbolic)) and np.all(np.isfinite(numeric)))
        ok = finite and bool(np.all(err <= atol * scale + rtol * np.abs(numeric) + noise))
        worst = float(np.max(err, initial=0.0)) if finite else float("nan")
        results.append(CheckResult(tuple(path), worst, worst / scale, ok))
        current = nxt
    return CheckReport(tuple(results), dict(sorted(sizes.items())))


def _actual_sizes(expr: Expr, data: Mapping[str, np.ndarray]) -> dict[str, int]:
    """Index letter -> length, read off the given arrays."""
    out: dict[str, int] = {}
    for t in tensors(expr.node):
        if t.name in data:
            for axis, i in enumerate(t.indices):
                out.setdefault(i, np.shape(data[t.name])[axis])
    return out
