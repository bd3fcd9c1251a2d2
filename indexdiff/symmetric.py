"""Symmetric matrices: two-index tensors declared symmetric, ``S_ij = S_ji``.

A declaration travels with the expression (``Expr.symmetric``): ``ix.parse(text, symmetric={"S"})``,
``ix.diff(e, "x", symmetric={"S"})`` or ``--symmetric S`` make it, and every derivative keeps it. The rule itself
lives in the canonical form (``canonical.SYMMETRIC``): a symmetric tensor's two indices are unordered there, so
``Σ_i S_ik x_i`` and ``Σ_j S_kj x_j`` are like terms and merge. This module validates declarations, runs the
symbolic passes with the declaration in force, gives the derivative by a symmetric matrix its convention, and
refuses arrays that are not symmetric.

The derivative by a symmetric S is the gradient on the space of symmetric matrices with the Frobenius inner
product: ``sym(G) = (G + Gᵀ) / 2``, G the derivative that ignores the symmetry. In index notation it is one
δ rule, ``∂S_ij/∂S_kl = (δ_ik δ_jl + δ_il δ_jk) / 2``, applied here as ``(D_kl + D_lk) / 2`` to the derivative D
that treats S as unstructured. It is symmetric, and ``f(S + H) ≈ f(S) + Σ_kl ∂f/∂S_kl H_kl`` for every symmetric
step H. The Matrix Cookbook's partial derivatives by the independent entries (its §2.8) are
``2 sym(G) - sym(G) ∘ I``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from fractions import Fraction
from typing import Any, TypeVar

from .canonical import SYMMETRIC
from .errors import ArgumentError, ShapeError
from .expr import Add, Expr, Mul, Node, Number, Program, Tensor, bound_indices
from .names import children, rebuild, rename, separate, share, tensor_names

__all__ = ["declare", "within", "derivative_by", "symmetrized", "declared_in", "require_symmetric", "symmetric_lines"]

T = TypeVar("T")
_HALF = Number(Fraction(1, 2))
_HINT = "declare a two-index tensor of the expression, e.g. symmetric={'S'} (--symmetric S)"


def _names(symmetric: str | Iterable[str]) -> tuple[list[tuple[str, int]], str]:
    """The declared names with their positions in the declaration's text (``"S,T"``; a set reads sorted)."""
    if isinstance(symmetric, str):
        text = symmetric
    elif isinstance(symmetric, Iterable) and not isinstance(symmetric, Mapping):
        given = list(symmetric)
        bad = [n for n in given if not isinstance(n, str)]
        if bad:
            raise ArgumentError(f"symmetric= takes tensor names, got {type(bad[0]).__name__} {bad[0]!r}", hint=_HINT)
        if not given:
            return [], ""
        text = ",".join(given if isinstance(symmetric, (list, tuple)) else sorted(given))
    else:
        raise ArgumentError(f"symmetric= takes tensor names, got {type(symmetric).__name__}", hint=_HINT)
    out, pos = [], 0
    for part in text.split(","):
        name = part.strip()
        at = pos + len(part) - len(part.lstrip())
        if not name:
            raise ArgumentError("empty name in the symmetric declaration", text, at, hint=_HINT)
        out.append((name, at))
        pos += len(part) + 1
    return out, text


def _locate(text: str, name: str) -> tuple[int | None, int | None]:
    m = re.search(rf"(?<![\w]){re.escape(name)}(?![A-Za-z0-9])", text)
    return (m.start(), m.end()) if m else (None, None)


def declare(expr: Expr | Program, symmetric: str | Iterable[str] | None, source: str | None = None) -> Expr:
    """``expr`` with ``symmetric`` (names, or ``"S,T"``) added to its declared symmetric tensors.

    Each name must be a tensor of ``expr`` with two indices; ``source`` (the text ``expr`` was parsed from) is
    what an error about a tensor's indices points into.
    """
    if isinstance(expr, Program):
        raise ArgumentError(
            "a symmetric declaration applies to one expression, not to a program of several statements",
            hint="declare it on a single expression or statement, or write the symmetry out: (S_ij + S_ji) / 2",
        )
    if symmetric is None:
        return expr
    names, text = _names(symmetric)
    two = sorted(n for n, rank in expr.variables.items() if rank == 2)
    for name, at in names:
        if name not in expr.variables:
            raise ArgumentError(
                f"cannot declare '{name}' symmetric: the expression has no tensor '{name}'",
                text,
                at,
                at + len(name),
                hint=f"its two-index tensors are: {', '.join(two) or 'none'}",
            )
        rank = expr.variables[name]
        if rank != 2:
            shown = source if source is not None else str(expr)
            pos, end = _locate(shown, name)
            raise ArgumentError(
                f"only a matrix (a tensor with two indices) can be symmetric, and '{name}' has {rank} "
                f"ind{'ex' if rank == 1 else 'ices'}",
                shown,
                pos,
                end,
                hint=f"its two-index tensors are: {', '.join(two) or 'none'}",
            )
    added = expr.symmetric | {n for n, _ in names}
    if added == expr.symmetric:
        return expr
    return Expr(expr.node, expr.free, expr.name, expr.variables, expr.origins, added)


def within(symmetric: frozenset[str], fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with ``symmetric`` declared for the canonical form (run it inside ``deep``, whose worker
    thread does not inherit the caller's context)."""
    token = SYMMETRIC.set(symmetric)
    try:
        return fn(*args)
    finally:
        SYMMETRIC.reset(token)


def symmetrized(derivative: Node, new: tuple[str, ...], free: frozenset[str]) -> Node:
    """The derivative by a symmetric matrix, ``(D_kl + D_lk) / 2``, from the derivative D that ignores the
    symmetry (``new`` = (k, l)), simplified with the declaration in force."""
    from .diff import with_indices

    k, l = new  # noqa: E741
    swapped = rename(derivative, {k: l, l: k})
    return with_indices(Add((Mul((_HALF, derivative)), Mul((_HALF, swapped)))), free)


def declared_in(exprs: Iterable[Expr | Program]) -> tuple[frozenset[str], str | None]:
    """The declared symmetric tensors that ``exprs`` use, and the text of the first expression using one (for
    error messages)."""
    out: set[str] = set()
    text = None
    for e in exprs:
        if isinstance(e, Expr) and e.symmetric & tensor_names(e.node):
            out |= e.symmetric & tensor_names(e.node)
            text = text or str(e)
    return frozenset(out), text


def require_symmetric(names: Iterable[str], arrays: Mapping[str, Any], text: str | None = None) -> None:
    """A ShapeError unless each of ``names`` given in ``arrays`` is a square array equal to its transpose, up to
    √ε of its largest entry (1.5e-8 in float64: rounding, as in a computed inverse, passes)."""
    import numpy as np

    for name in sorted(names):
        a = arrays.get(name)
        if a is not None and not hasattr(a, "shape"):  # nested lists: numpy reads them as the caller will
            try:
                a = np.asarray(a, dtype=float)
            except (TypeError, ValueError):
                continue
        if a is None or len(a.shape) != 2:
            continue  # absent, unreadable or of the wrong rank: the caller's own checks say so
        where = _locate(text, name) if text else (None, None)
        if a.shape[0] != a.shape[1]:
            raise ShapeError(
                f"'{name}' is declared symmetric but its array has shape {tuple(a.shape)}",
                text,
                *where,
                hint="a symmetric matrix is square: pass one, or drop the declaration",
            )
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: nan, which passes (numpy computes on)
            empty = a.shape[0] == 0
            gap, largest = (0.0, 0.0) if empty else (float(abs(a - a.T).max()), float(abs(a).max()))
        if gap > _tolerance(a) * largest:
            raise ShapeError(
                f"'{name}' is declared symmetric but {name} - {name}ᵀ has max |·| = {gap:.3g} "
                f"(its largest entry is {largest:.3g})",
                text,
                *where,
                hint=f"pass a symmetric array, e.g. ({name} + {name}.T) / 2, or drop the declaration",
            )


def _tolerance(a: Any) -> float:
    import numpy as np

    try:
        eps = float(np.finfo(np.dtype(str(a.dtype).removeprefix("torch."))).eps)
    except (TypeError, ValueError):  # integers are exact; a dtype numpy does not know (bfloat16) gets float16's
        eps = 0.0 if "int" in str(a.dtype) else float(np.finfo(np.float16).eps)
    return eps**0.5


def derivative_by(symmetric: frozenset[str], node: Node, name: str, new: tuple[str, ...], free: frozenset[str]) -> Node:
    """∂node/∂name_new simplified with ``symmetric`` declared; by a symmetric tensor, ``symmetrized``."""
    from .diff import derivative, with_indices

    def run() -> Node:
        found = with_indices(derivative(share(separate(node, free)), name, new), free)
        return symmetrized(found, new, free) if name in symmetric else found

    return _oriented(within(symmetric, run), symmetric, free, {})


def _oriented(node: Node, symmetric: frozenset[str], free: frozenset[str], done: dict[Node, Node]) -> Node:
    """``node`` with each symmetric tensor whose two indices are both ``free`` (output indices) written in their
    sorted order, as the output's axes are: ∂ logdet(S)/∂S_kl prints inv(S_kl), S⁻¹, not inv(S_lk)."""
    if symmetric.isdisjoint(tensor_names(node)):
        return node
    found = done.get(node)
    if found is None:
        if isinstance(node, Tensor):
            flip = node.name in symmetric and set(node.indices) <= free and node.indices[1] < node.indices[0]
            found = Tensor(node.name, node.indices[::-1]) if flip else node
        else:
            inside = free - set(bound_indices(node))
            found = rebuild(node, tuple(_oriented(c, symmetric, inside, done) for c in children(node)))
        done[node] = found
    return found


def symmetric_lines(names: list[str]) -> dict[str, list[str]]:
    """The lines a generated module (``codegen.python_text``) adds for the matrices ``names`` (their Python
    names) declared symmetric, by where they go: none when ``names`` is empty. ``evaluate`` refuses arrays that
    are not symmetric, as ix.evaluate does; the self-check's random data is symmetric; and each function the
    self-check differentiates sees (S + Sᵀ)/2, whose differences by S's entries are sym(G)."""
    if not names:
        return {"constants": [], "evaluate": [], "functions": [], "data": []}
    return {
        "constants": [f"SYMMETRIC = {tuple(names)!r}  # matrices declared symmetric (S_ij = S_ji)"],
        "evaluate": ["    _check_symmetric(arrays)"],
        "functions": [
            "",
            "",
            "def _check_symmetric(arrays):",
            '    """Raise ValueError unless each matrix of SYMMETRIC is square and equal to its transpose (up to',
            '    sqrt(eps) of its largest entry): the formulas above assume it."""',
            "    for name in SYMMETRIC:",
            "        a = arrays[name]",
            "        if a.shape[0] != a.shape[1]:",
            '            raise ValueError(f"{name} is declared symmetric but has shape {a.shape}")',
            "        gap, largest = float(np.max(np.abs(a - a.T), initial=0.0)), float(np.max(np.abs(a), initial=0.0))",
            "        if gap > np.finfo(a.dtype).eps ** 0.5 * largest:",
            '            raise ValueError(f"{name} is declared symmetric but {name} - {name}.T has max |.| {gap:.3g}")',
            "",
            "",
            "def _symmetrized(f):",
            '    """f of (S + S.T) / 2 for each S of SYMMETRIC: the self-check\'s differences by the entries of S are',
            '    then the derivative by a symmetric matrix, (G + G.T) / 2."""',
            "    return lambda **a: f(**{**a, **{n: (a[n] + a[n].T) / 2 for n in SYMMETRIC}})",
            "",
            "",
            "_FUNCTIONS = {key: _symmetrized(f) for key, f in _FUNCTIONS.items()}",
        ],
        "data": ["    for name in SYMMETRIC:", "        arrays[name] = (arrays[name] + arrays[name].T) / 2"],
    }
