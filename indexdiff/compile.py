"""ix.compile: expressions as one callable; contraction plans built once per input shapes, shared subexpressions."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import attrgetter
from typing import Any

import numpy as np

from .backends import Backend, backend_of
from .builder import Builder
from .daskarrays import DaskPlan
from .errors import IndexDiffError, ShapeError
from .evaluate import index_sizes, real_array, unique_summed
from .expr import Expr, Node, Program, deep, depth_safe
from .names import all_indices
from .program import merged, used
from .simplify import simplify
from .steps import Plan, broadcast_shape
from .symmetric import declared_in, require_symmetric

__all__ = ["compile", "Compiled"]

Labels = tuple[str, ...]

#: What a plan is built for, per input array: its shape, dtype and type.
_SIGNATURE = attrgetter("shape", "dtype", "__class__")


def _inputs(exprs: tuple[Expr, ...], program: bool) -> set[str]:
    """The tensors ``exprs`` use that none of them defines (a program's statements define their names)."""
    defined = {e.name for e in exprs} if program else set()
    return {n for e in exprs for n in e.variables} - defined


def _simplified(e: Expr) -> Node:
    """``e``'s node simplified; an error simplification raises quotes ``e``."""
    try:
        return simplify(e.node, frozenset(e.free))
    except IndexDiffError as err:
        raise err.with_source(str(e)) from None


class Compiled:
    """Expressions compiled together: ``f(**arrays)`` returns one array, or a tuple for several expressions.

    Each product term is one opt_einsum contraction whose plan is built once per input shapes; a subexpression
    used by several terms or expressions (``sigmoid(X_ij w_j)``, an inner contraction) is computed once per call.
    """

    def __init__(
        self, exprs: tuple[Expr, ...], outputs: tuple[str, ...] | None = None, dims: Mapping[str, int] | None = None
    ) -> None:
        if dims is not None and not isinstance(dims, Mapping):
            raise IndexDiffError(
                f"dims must map index names to sizes, got {type(dims).__name__}", hint="pass dims={'i': 3}"
            )
        self.dims = dict(dims or {})
        self.symmetric, self.symmetric_text = declared_in(exprs)  # checked on every call: results assume it
        self.exprs = tuple(Expr(_simplified(e), e.free, e.name, e.variables, e.origins) for e in exprs)
        self.sources = dict(zip((id(e) for e in self.exprs), exprs))  # each simplified statement -> as written
        # A program: its statements run in order, each once; ``outputs`` name what the call returns.
        self.outputs = outputs
        every_input = _inputs(self.exprs, outputs is not None)
        if outputs is not None:
            self.exprs = used(self.exprs, outputs)
        defined = {e.name for e in self.exprs} if outputs is not None else set()
        ranks: dict[str, int] = {}
        for e in self.exprs:
            for name, rank in e.variables.items():
                if ranks.setdefault(name, rank) != rank:
                    raise IndexDiffError(
                        f"'{name}' has {ranks[name]} indices in one expression and {rank} in another",
                        hint="compile expressions that agree on their tensors",
                    )
        self.inputs = dict(sorted((n, r) for n, r in ranks.items() if n not in defined))
        # Inputs only statements the outputs do not need take: accepted by a call, and not used.
        self.unused = every_input - set(self.inputs)
        self._plans: dict[tuple[Any, ...], Plan] = {}

    def __call__(self, *args: Any, **arrays: Any) -> Any:
        if args:
            call = ", ".join(f"{n}=..." for n in self.inputs)
            raise IndexDiffError(
                f"a compiled function takes its arrays by keyword, not by position (got {len(args)} positional)",
                f"f({call})",
                hint=f"call it as f({call})",
            )
        if self.symmetric:
            require_symmetric(self.symmetric, arrays, self.symmetric_text)
        # Fast path: arrays whose shapes, dtypes and types match a plan already built (and validated).
        if len(arrays) == len(self.inputs):
            try:
                plan = self._plans.get(tuple(map(_SIGNATURE, map(arrays.__getitem__, self.inputs))))
            except (KeyError, AttributeError):
                plan = None
            if plan is not None:
                out = plan.run(arrays)
                return out[0] if len(out) == 1 else tuple(out)
        given = self._validate(arrays)
        signature = tuple(map(_SIGNATURE, given.values()))
        plan = self._plans.get(signature)
        if plan is None:
            plan = self._plans[signature] = deep(self._build, given)
        out = plan.run(given)
        return out[0] if len(out) == 1 else tuple(out)

    def _validate(self, arrays: dict[str, Any]) -> dict[str, np.ndarray]:
        unexpected = sorted(set(arrays) - set(self.inputs) - self.unused)
        if unexpected:
            raise ShapeError(
                f"unexpected array '{unexpected[0]}'",
                " ".join(self.inputs),
                hint=f"the inputs are: {', '.join(self.inputs)}",
            )
        given = {}
        for name, rank in self.inputs.items():
            if name not in arrays:
                raise ShapeError(
                    f"no array given for '{name}'", hint=f"pass {name}=... (the inputs are: {', '.join(self.inputs)})"
                )
            a = arrays[name]
            if type(a) is not np.ndarray and backend_of(a) == "numpy":
                try:
                    a = np.asarray(a)
                except (ValueError, TypeError) as err:
                    raise ShapeError(
                        f"the array for '{name}' is not a rectangular numeric array ({err})",
                        hint="pass a numpy array (all rows the same length)",
                    ) from None
            a = real_array(name, a)
            if a.ndim != rank:
                raise ShapeError(
                    f"'{name}' has {rank} ind{'ex' if rank == 1 else 'ices'} but the array has {a.ndim} "
                    f"ax{'is' if a.ndim == 1 else 'es'} (shape {a.shape})",
                    hint=f"pass an array with {rank} axes",
                )
            given[name] = a
        return given

    def _build(self, given: dict[str, np.ndarray]) -> Plan:
        libraries = {backend_of(a) for a in given.values()}
        if "dask" in libraries:
            libraries.discard("numpy")  # numpy parameters join dask data (daskarrays.py)
        if len(libraries) > 1:
            raise ShapeError(
                f"the arrays come from different libraries ({', '.join(sorted(libraries))})",
                hint="pass arrays of one library (numpy, torch, jax or cupy)",
            )
        backend = Backend(libraries.pop() if libraries else "numpy")
        like = next(iter(given.values()), np.zeros(0))
        if backend.name in ("numpy", "dask"):
            floats = [a.dtype for a in given.values() if np.issubdtype(a.dtype, np.inexact)]
            dtype = np.result_type(*floats) if floats else np.dtype(np.float64)
            like = np.zeros(0, dtype=dtype)
        else:
            dtype = like.dtype
        plan = DaskPlan(given, self.exprs, self.outputs is not None) if backend.name == "dask" else Plan(tuple(given))
        builder = Builder(plan, {n: tuple(a.shape) for n, a in given.items()}, dtype, backend, like)
        known: dict[str, Any] = dict(given)  # what index_sizes reads shapes from: inputs, then statements
        for e in self.exprs:
            # Check the arrays against the statement as written, as the evaluator does, and take the output's
            # lengths from it; every other index's length comes from the simplified statement that runs (its Σs
            # renamed apart, so that no length depends on a summed index's name). Where the simplified statement
            # lacks a length the statement as written has (an index the simplifier renamed, which dims name by
            # its written name, or a size witness it dropped), the statement runs as written.
            written = self.sources[id(e)]
            text = builder.text = str(written)
            source = unique_summed(written.node, written.free)
            outer = index_sizes(source, known, written.origins, self.dims, text)
            node = unique_summed(e.node, e.free)
            sizes = index_sizes(node, known, e.origins, self.dims, text)
            if any(sizes.get(i) is None for i in all_indices(node)):
                node, sizes = source, outer
            builder.sizes = {i: n for i in sizes.parent if (n := sizes.get(i)) is not None}
            out_shape = []
            for i in e.free:
                n = outer.get(i)
                if n is None:
                    raise ShapeError(
                        f"the size of index '{i}' is unknown: no input has it",
                        text,
                        hint=f"pass the arrays it comes from, or its size: ix.compile(..., dims={{'{i}': 3}})",
                    )
                out_shape.append(n)
                builder.sizes[i] = n
            slot, labels, _ = builder.emit(node)
            result = _output(slot, labels, tuple(e.free), tuple(out_shape), dtype, backend)
            if self.outputs is None:
                plan.outputs.append(result)
                continue
            # A statement's value, in its left-hand side's axis order, is what later statements read.
            builder.slot[e.name] = plan.add(result)
            builder.shapes[e.name] = tuple(out_shape)
            known[e.name] = _Shape(tuple(out_shape))
        if self.outputs is not None:
            plan.outputs = [lambda v, s=builder.slot[name]: v[s] for name in self.outputs]
        return plan


class _Shape:
    """Stands for a statement's value where only its shape is read."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.shape = shape


def _output(
    slot: int, labels: Labels, free: Labels, shape: tuple[int, ...], dtype: Any, backend: Backend
) -> Callable[[list[Any]], Any]:
    present = tuple(i for i in free if i in labels)
    order = tuple(labels.index(i) for i in present)
    aligned = broadcast_shape(present, free, tuple(shape[free.index(i)] for i in present))

    transpose = order != tuple(range(len(order)))

    if backend.name != "numpy":

        def foreign(v: list[Any]) -> Any:
            value = v[slot]
            if transpose:
                value = value.permute(*order) if backend.name == "torch" else value.transpose(order)
            if aligned is not None:
                value = value.reshape(aligned) * backend.xp.ones(shape, dtype=dtype)
            return value

        return foreign

    def out(v: list[Any]) -> Any:
        value = v[slot]
        if type(value) is not np.ndarray or value.dtype != dtype:
            value = np.asarray(value, dtype=np.result_type(value, dtype))
        if transpose:
            value = value.transpose(order)
        if aligned is not None:
            value = np.broadcast_to(value.reshape(aligned), shape).copy()
        return value

    return out


@depth_safe
def compile(*exprs: Expr | Program, dims: Mapping[str, int] | None = None) -> Compiled:  # noqa: A001
    """One callable computing all ``exprs``, sharing work between them (``dims``: sizes no array determines).

    >>> import numpy as np, indexdiff as ix
    >>> e = ix.parse("x_i A_ij x_j")
    >>> f = ix.compile(e, ix.diff(e, "x"), ix.diff(e, "x", "x"))
    >>> value, grad, hess = f(A=np.eye(2), x=np.array([1.0, 2.0]))
    >>> value, grad, hess.shape
    (array(5.), array([2., 4.]), (2, 2))
    """
    if not exprs:
        raise IndexDiffError("nothing to compile", hint="pass one or more expressions: ix.compile(e, ix.diff(e, 'x'))")
    if len(exprs) == 1 and isinstance(exprs[0], Program):
        return Compiled(exprs[0].statements, exprs[0].outputs, dims)
    if any(isinstance(e, Program) for e in exprs) and all(isinstance(e, (Expr, Program)) for e in exprs):
        together = merged(exprs)  # one program, statement by statement: shared statements run once
        return Compiled(together.statements, together.outputs, dims)
    resolved = []
    for e in exprs:
        if not isinstance(e, Expr):
            raise IndexDiffError(f"expected an expression from indexdiff.parse, got {type(e).__name__}")
        resolved.append(e)
    return Compiled(tuple(resolved), dims=dims)
