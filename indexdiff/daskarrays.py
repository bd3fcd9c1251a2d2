"""Dask arrays in compiled plans: the plan's steps build one lazy Dask graph instead of computing.

``ix.compile(...)`` called with dask arrays (numpy parameters may join them) returns dask arrays; nothing is computed
until ``dask.compute(*outputs)``, which evaluates every output in one graph: a subexpression the outputs share is
one array in the plan and so one node in the graph, and each chunk of an input is read once. Contractions go through
opt_einsum's dask backend (``dask.array.tensordot`` and ``einsum``: a sum over a chunked axis is a product per chunk
and a tree reduction), element-wise functions and operators whose axes lie within one block run numpy's own stable
implementations on each block (``map_blocks``), so they give numpy's values.

Chunks: inputs must agree on the chunks of the axes an index joins. Where they disagree, each input is rechunked to
the chunking of the largest input (most elements) that has the index; numpy inputs become dask arrays with those
chunks (one block along any other axis). A matrix function (``inv``, ``det``, ``logdet``) of a matrix chunked along
either axis is refused: it needs the whole matrix in one block.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from .errors import ShapeError
from .evaluate import unique_summed
from .expr import Delta, Expr, Node, Tensor
from .names import children
from .operators import MATRIX_FUNCTIONS, apply
from .steps import Plan

__all__ = ["DaskPlan", "blockwise", "operator", "is_dask"]

Axis = tuple[str, int]  # (tensor name, axis)

#: Operators whose result lacks the axes they run over.
_REDUCING = ("logsumexp", "mean", "max", "min")


def is_dask(a: Any) -> bool:
    return type(a).__module__.split(".")[0] == "dask"


def blockwise(f: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """The element-wise function ``f`` (numpy's implementation) applied to each block of a dask array."""

    def run(a: Any) -> Any:
        return a.map_blocks(f, dtype=a.dtype)

    return run


def _on_block(name: str, axes: tuple[int, ...], block: np.ndarray) -> np.ndarray:
    return apply(name, block, axes)


def operator(name: str, value: Any, axes: tuple[int, ...]) -> Any:
    """The operator ``name`` over ``axes`` of the dask array ``value`` block by block, where those axes lie within
    one block (numpy's stable implementation on each block); None where an axis is chunked (the backend then
    uses dask's reductions). A matrix function of a chunked matrix is a ShapeError."""
    if name in MATRIX_FUNCTIONS:
        split = [(k, c) for k, c in enumerate(value.chunks) if len(c) > 1]
        if split:
            k, c = split[0]
            raise ShapeError(
                f"{name}(...) needs the whole matrix in one block, but the dask array is chunked along its "
                f"{('rows', 'columns')[k]}: chunks {value.chunks}",
                hint="rechunk that input to one block along both axes (C.rechunk(-1)), or pass it as a numpy array",
            )
        drop = [0, 1] if name != "inv" else []
        return value.map_blocks(functools.partial(_on_block, name, (0, 1)), drop_axis=drop, dtype=value.dtype)
    if any(len(value.chunks[k]) > 1 for k in axes):
        return None
    drop = list(axes) if name in _REDUCING else []
    return value.map_blocks(functools.partial(_on_block, name, axes), drop_axis=drop, dtype=value.dtype)


def _axis_groups(exprs: Iterable[Expr], inputs: Iterable[str], program: bool) -> list[list[Axis]]:
    """The inputs' axes joined by an index (directly, through a delta, or through a program's statement), in
    groups; each group lists the axes whose chunks must agree."""
    parent: dict[Any, Any] = {}

    def find(x: Any) -> Any:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: Any, b: Any) -> None:
        parent[find(a)] = find(b)

    for s, e in enumerate(exprs):
        if program:
            for k, i in enumerate(e.free):
                union(("axis", e.name, k), ("index", s, i))
        seen: set[int] = set()
        stack: list[Node] = [unique_summed(e.node, e.free)]
        while stack:
            n = stack.pop()
            if id(n) in seen:
                continue
            seen.add(id(n))
            if isinstance(n, Tensor):
                for axis, i in enumerate(n.indices):
                    union(("axis", n.name, axis), ("index", s, i))
            elif isinstance(n, Delta) and len(n.indices) == 2:
                union(("index", s, n.indices[0]), ("index", s, n.indices[1]))
            stack.extend(children(n))
    names = set(inputs)
    groups: dict[Any, list[Axis]] = {}
    for x in list(parent):
        if x[0] == "axis" and x[1] in names:
            groups.setdefault(find(x), []).append((x[1], x[2]))
    return [sorted(g) for g in groups.values() if len(g) > 1]


class DaskPlan(Plan):
    """A plan whose inputs are dask arrays (numpy ones are converted), their chunks aligned along shared indices;
    running it builds the graph and returns dask arrays."""

    def __init__(self, given: dict[str, Any], exprs: Iterable[Expr], program: bool) -> None:
        super().__init__(tuple(given))
        for name, a in given.items():
            if any(isinstance(n, float) and math.isnan(n) for n in a.shape):
                raise ShapeError(
                    f"the dask array for '{name}' has unknown chunk sizes (shape {a.shape})",
                    hint=f"compute them first: {name} = {name}.compute_chunk_sizes()",
                )
        self.groups = _axis_groups(exprs, given, program)

    def run(self, arrays: dict[str, Any]) -> list[Any]:
        import dask.array as da

        arrays = aligned({n: arrays[n] for n in self.names}, self.groups)
        return [o if is_dask(o) else da.asarray(o) for o in super().run(arrays)]


def aligned(arrays: dict[str, Any], groups: list[list[Axis]]) -> dict[str, Any]:
    """``arrays`` as dask arrays of floats whose chunks agree along every group of axes: the chunking of the
    group's largest dask array (most elements; the first by name among equals); numpy arrays are one block along
    the axes of no such group."""
    import dask.array as da

    chosen: dict[Axis, tuple[int, ...]] = {}
    for group in groups:
        lazy = [m for m in group if is_dask(arrays[m[0]])]
        if lazy:
            name, axis = max(lazy, key=lambda m: arrays[m[0]].size)
            chunks = arrays[name].chunks[axis]
            chosen.update(dict.fromkeys(group, chunks))
    out = {}
    for name, a in arrays.items():
        own = a.chunks if is_dask(a) else tuple((n,) for n in np.shape(a))
        chunks = tuple(chosen.get((name, k), c) for k, c in enumerate(own))
        if not is_dask(a):
            a = da.from_array(np.asarray(a), chunks=chunks)
        elif chunks != a.chunks:
            a = a.rechunk(chunks)
        if not np.issubdtype(a.dtype, np.inexact):
            a = a.astype(np.float64)  # integers and booleans are computed in float64, as with numpy
        if a.ndim >= 2:  # a block that is a strided view (X = data[:, :32]) would make BLAS ~3x slower
            a = a.map_blocks(np.ascontiguousarray, dtype=a.dtype)
        out[name] = a
    return out
