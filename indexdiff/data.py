"""Random data for numerical checks (``ix.check``, ``--check``) and generated modules: a shape for every tensor,
values scaled so that each contraction's result is of order one, and matrices that matrix functions can take.

Matrix functions (``inv``, ``det``, ``logdet``) need square, invertible arguments, and logdet a positive
determinant. The two free indices of a matrix function's argument get one length (they are joined, as a δ joins
its indices), and a tensor inside such an argument with two axes of that length (``A_ij`` in ``inv(A_ij)``, or in
``logdet(A_ij + B_ij)``) gets the identity on those axes plus uniform [0.5, 1.5] / (2n) off it: every row's
off-diagonal entries sum to less than 3/4 of its diagonal one, so the matrix is strictly diagonally dominant with
a positive diagonal, hence invertible, well conditioned and of positive determinant (Gershgorin: every eigenvalue
has a positive real part), and stays so under the check's small steps. Those two indices also get the smallest
default length, so that a product such as ``A_ik B_kj`` (k longer) has full rank; in a program, the tensors that
define a statement a matrix function takes count as inside its argument. Arguments built otherwise
(``X_ni X_nj + lam δ_ij`` with positive data is positive definite anyway) get the usual data; where that is
singular or has a negative determinant (``logdet(-A_ij)``), evaluating is an error: pass your own arrays.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import ShapeError, expect_dims, expect_seed
from .expr import Add, Delta, Expr, Mul, Node, Op, Sum, Tensor
from .names import UnionFind, all_indices, children, tensors
from .operators import MATRIX_FUNCTIONS

__all__ = [
    "shapes",
    "sizes_for",
    "random_arrays",
    "joined_indices",
    "matrix_axes",
    "well_conditioned",
    "refuse_large",
    "MAX_BYTES",
    "SMALLER",
]

MAX_BYTES = 2**30  # the most memory the random data, or one derivative's table of differences, may take
SMALLER = "check at smaller sizes (--dims i=50,j=20, or dims={...} in Python): a wrong formula fails at any size"


def shapes(
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
        if t.name in expr.symmetric:  # a symmetric matrix is square
            join(*t.indices)
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
    out = {name: tuple(size[find(i)] for i in letters) for name, letters in axes.items()}
    for name, rank in expr.variables.items():
        if name not in out:
            out[name] = (3,) * rank
    used = {i: size[find(i)] for i in sorted(letters_everywhere)}
    return out, used


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
    other uses, δs and matrix functions, as ``shapes`` joins them): the axes random data puts an identity on.
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
    return shapes(expr, dims)[1]


def _gib(n_bytes: float) -> str:
    return f"{n_bytes / 2**30:.3g} GiB" if n_bytes >= 2**30 else f"{n_bytes / 2**20:.3g} MiB"


def refuse_large(what: str, elements: int, text: str) -> None:
    if elements * 8 > MAX_BYTES:
        raise ShapeError(
            f"the check would need {_gib(elements * 8)} for {what}, more than its limit of {_gib(MAX_BYTES)}",
            text,
            hint=SMALLER,
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
    positive part (``well_conditioned``). A tensor declared symmetric (``expr.symmetric``) is square and
    symmetric: (a + aᵀ)/2."""
    shapes_of, sizes = shapes(expr, dims)
    rng = np.random.default_rng(expect_seed(seed))
    largest = max(shapes_of, key=lambda name: math.prod(shapes_of[name]), default=None)
    if largest is not None:
        what = f"the random data ({largest}: {' x '.join(map(str, shapes_of[largest]))} float64, the largest array)"
        refuse_large(what, sum(math.prod(s) for s in shapes_of.values()), str(expr))
    scale = _scales(expr.node, sizes)
    square = matrix_axes(expr, definitions)
    out = {}
    for name, shape in sorted(shapes_of.items()):
        a = rng.uniform(0.5, 1.5, size=shape)
        if name in square:
            a = well_conditioned(a, square[name])
        if name in expr.symmetric:  # still diagonally dominant where it was
            a = (a + a.T) / 2
        out[name] = np.asarray(a * scale.get(name, 1.0))
    return out
