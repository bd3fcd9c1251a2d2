"""ix.compile: expressions as one callable; contraction plans built once per input shapes, shared subexpressions."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from fractions import Fraction
from operator import attrgetter
from typing import Any

import numpy as np

from .backends import Backend, backend_of
from .canonical import canonical
from .daskarrays import DaskPlan
from .errors import IndexDiffError, ShapeError
from .evaluate import _locate, as_exponent, as_float, index_sizes, plan_product, real_array, unique_summed
from .expr import (
    Add,
    Delta,
    Expr,
    Func,
    Mul,
    Node,
    Number,
    Op,
    Pow,
    Program,
    Sum,
    Tensor,
    bound_indices,
    deep,
    depth_safe,
    negate,
)
from .factoring import common_factor
from .inplace import function_step, multiply_step, scale_step, square_step, sum_step
from .names import all_indices, sum_by_terms
from .program import merged, used
from .sharing import first_pair, structure_keys
from .simplify import simplify
from .steps import Plan, broadcast_shape, contraction, diagonal, product_step
from .symmetric import declared_in, require_symmetric

__all__ = ["compile", "Compiled"]

Labels = tuple[str, ...]
Step = Callable[[list[Any]], Any]

#: What a plan is built for, per input array: its shape, dtype and type.
_SIGNATURE = attrgetter("shape", "dtype", "__class__")


class _Builder:
    """Turns nodes into plan steps for one set of input shapes; equal subexpressions are computed once."""

    def __init__(self, plan: Plan, shapes: dict[str, tuple[int, ...]], dtype: Any, backend: Backend, like: Any) -> None:
        self.plan = plan
        self.shapes = shapes
        self.dtype = dtype
        self.backend = backend
        self.like = like  # an input array: dtype and device for the arrays the plan makes
        self.slot = {name: k for k, name in enumerate(plan.names)}
        self.memo: dict[Any, tuple[int, Labels, tuple[int, ...]]] = {}
        self.matrices: dict[Any, tuple[int, tuple[int, ...]]] = {}  # inv/det/logdet of a matrix, by its structure
        # First contractions of sums and operators' values, by structure (names of free indices aside) and shape.
        self.shared: dict[Any, tuple[int, tuple[int, ...]]] = {}
        self.sizes: dict[str, int] = {}
        self.text = ""  # the statement being built, for messages

    def emit(self, node: Node) -> tuple[int, Labels, tuple[int, ...]]:
        """A slot holding ``node``'s value, with axes = its free indices sorted, and its shape."""
        key = (canonical(node), tuple((i, self.sizes.get(i)) for i in sorted(node.free)))
        if key not in self.memo:
            self.memo[key] = self._emit(node)
        return self.memo[key]

    def size(self, index: str) -> int:
        if index not in self.sizes:
            name = index.split("#")[0]
            raise ShapeError(
                f"the size of index '{name}' is unknown: no input has it",
                hint=f"pass its size when compiling, e.g. ix.compile(..., dims={{'{name}': 3}})",
            )
        return self.sizes[index]

    def _emit(self, node: Node) -> tuple[int, Labels, tuple[int, ...]]:
        if isinstance(node, Number):
            constant = self.backend.scalar(as_float(node.value), self.like)
            return self.plan.add(lambda v: constant), (), ()
        if isinstance(node, Tensor) and len(set(node.indices)) == len(node.indices):
            # A tensor alone: its array as it is, or a transposed view to sorted axes; never a copy.
            shape = self.shapes[node.name]
            labels = tuple(sorted(node.indices))
            order = tuple(node.indices.index(i) for i in labels)
            sorted_shape = tuple(shape[k] for k in order)
            slot = self.slot[node.name]
            if order == tuple(range(len(order))):
                return slot, labels, sorted_shape
            transpose = self.backend.transpose
            return self.plan.add(lambda v, s=slot, o=order: transpose(v[s], o)), labels, sorted_shape
        if isinstance(node, (Tensor, Delta, Mul)):
            return self.product(node, frozenset())
        if isinstance(node, Sum):
            parts = sum_by_terms(node)
            if parts is not None:  # a term constant along a summed index: its length times the term
                if isinstance(node.body, Mul):
                    for f in node.body.factors:  # the size witnesses: they give the summed indices' lengths
                        if not isinstance(f, Add):
                            self.emit(f)
                scaled: list[Node] = []
                for term, lacking in parts:
                    self.emit(term)  # the terms that carry the summed indices come first: they give the lengths
                    n = 1
                    for j in lacking:
                        n *= self.size(j)
                    scaled.append(term if n == 1 else Mul((Number(Fraction(n)), term)))
                return self.emit(Add(tuple(scaled)))
            if isinstance(node.body, (Tensor, Delta, Mul)):
                return self.product(node.body, frozenset(node.indices))
            slot, labels, shape = self.emit(node.body)
            axes = tuple(k for k, i in enumerate(labels) if i in node.indices)
            keep = tuple(k for k, i in enumerate(labels) if i not in node.indices)
            total = self.backend.sum
            return (
                self.plan.add(lambda v, s=slot, a=axes: total(v[s], a)),
                tuple(labels[k] for k in keep),
                tuple(shape[k] for k in keep),
            )
        if isinstance(node, Op):
            return self.operator(node)
        if isinstance(node, Func):
            slot, labels, shape = self.emit(node.arg)
            return self.plan.add(function_step(slot, self.backend.functions[node.name], node.name)), labels, shape
        if isinstance(node, Pow):
            slot, labels, shape = self.emit(node.base)
            p = as_exponent(node.exponent)
            if p == 2:
                return self.plan.add(square_step(slot)), labels, shape
            return self.plan.add(lambda v, s=slot, p=p: v[s] ** p), labels, shape
        if isinstance(node, Add):
            factored = common_factor(node)  # x (1 - s) - x s y as x ((1 - s) - s y): one product
            if factored is not node:
                return self.emit(factored)
            labels = tuple(sorted(node.free))
            # A negated term is subtracted (1 - s is one pass, not a negation and an addition); a number every
            # term carries multiplies the sum (2 h - 2 y as 2 (h - y)).
            split = [_coefficient(t) for t in node.terms]
            common = abs(split[0][0])
            if common not in (0, 1) and all(abs(c) == common for c, _ in split):
                # The sum without the number: computed once where another statement has it (h - y of a loss).
                inner = Add(tuple(rest if c > 0 else negate(rest) for c, rest in split))
                slot, own, shape = self.emit(inner)
                return self.plan.add(scale_step(slot, as_float(common))), own, shape
            parts = []
            for (c, rest), t in zip(split, node.terms):
                sign = 1 if c == 1 else -1 if c == -1 else 0
                slot, own, shape = self.emit(rest if sign else t)
                self.sizes.update(zip(own, shape))
                # (a scalar broadcasts as it is)
                parts.append((slot, broadcast_shape(own, labels, shape) if own else None, sign or 1))
            shape = tuple(self.size(i) for i in labels)
            return self.plan.add(sum_step(tuple(parts))), labels, shape
        raise AssertionError(node)

    def operator(self, node: Op) -> tuple[int, Labels, tuple[int, ...]]:
        """An operator over axes of its argument's value (broadcast first along an index the argument lacks).

        An operator is computed once whatever its free indices are called (structural); a matrix function once
        per matrix: ``inv(C_ij)``, ``inv(C_pq)`` and ``inv(C_ji)`` (its transpose) share one inversion."""
        if node.name not in ("inv", "det", "logdet"):
            return self.structural(node, lambda: self.function_of_axes(node))
        r, c = sorted(node.arg.free)
        keys = [(node.name, key) for key in structure_keys(node.arg)]
        for flipped, key in enumerate(keys):
            if key in self.matrices:
                slot, shape = self.matrices[key]
                if flipped and node.name == "inv":
                    slot = self.plan.add(lambda v, s=slot, t=self.backend.transpose: t(v[s], (1, 0)))
                return slot, ((r, c) if node.name == "inv" else ()), shape
        found = self.function_of_axes(node)
        self.matrices[keys[0]] = (found[0], found[2])
        return found

    def function_of_axes(self, node: Op) -> tuple[int, Labels, tuple[int, ...]]:
        slot, labels, shape = self.emit(node.arg)
        self.sizes.update(zip(labels, shape))
        missing = [i for i in node.indices if i not in labels]
        if missing:
            full = tuple(sorted((*labels, *missing)))
            target = tuple(self.size(i) for i in full)
            spread = broadcast_shape(labels, full, shape)
            xp = self.backend.xp
            slot = self.plan.add(lambda v, s=slot, b=spread, t=target: xp.broadcast_to(v[s].reshape(b), t))
            labels, shape = full, target
        if node.name in ("inv", "det", "logdet") and shape[0] != shape[1]:
            raise ShapeError(
                f"{node.name}(...) needs a square matrix, but its indices {labels[0]!r} and {labels[1]!r} have "
                f"sizes {shape[0]} and {shape[1]}",
                self.text,
                *_locate(self.text, node.name),
                hint="the argument's two free indices must have the same length",
            )
        axes = tuple(labels.index(i) for i in node.indices)
        keep = tuple(k for k, i in enumerate(labels) if i not in bound_indices(node))
        step = self.plan.add(_operator_step(self.backend.operator, node.name, slot, axes, self.text))
        return step, tuple(labels[k] for k in keep), tuple(shape[k] for k in keep)

    def product(self, node: Node, summed: frozenset[str]) -> tuple[int, Labels, tuple[int, ...]]:
        factors = node.factors if isinstance(node, Mul) else (node,)
        split = self.first_pair(factors, summed)
        if split is not None:
            return self.product(*split)
        slots: dict[int, tuple[int, tuple[int, ...]]] = {}
        masks = self.masks(factors, summed)
        for f in factors:
            if isinstance(f, Tensor):
                shape = self.shapes[f.name]
                self.sizes.update(zip(f.indices, shape))
                slots[id(f)] = (self.slot[f.name], shape)
            elif not isinstance(f, (Delta, Number)):
                slot, labels, shape = self.emit(masks.get(id(f), f))
                self.sizes.update(zip(labels, shape))
                slots[id(f)] = (slot, shape)
        plan = plan_product(node, summed, self.size)
        coef = as_float(plan.coef)
        sources = [slots[id(f)][0] for f in plan.operands]
        shapes = [slots[id(f)][1] for f in plan.operands]
        ones = [self.backend.ones(n, self.like) for n in plan.ones]
        if shapes or plan.ones:
            contract = contraction(plan.spec, [*shapes, *((n,) for n in plan.ones)], self.backend.name == "numpy")
        else:  # numbers and deltas only
            one = self.backend.scalar(1.0, self.like)
            contract = lambda: one  # noqa: E731
        out_shape = tuple(self.size(i) for i in plan.out)
        self.sizes.update(zip(plan.out, out_shape))
        terms, output = plan.spec.split("->")
        if len(sources) > 1 and not plan.ones and plan.diagonal is None and set(terms.split(",")) == {output}:
            # Element-wise (the same axes everywhere): multiplies, as by hand, written in place where allowed.
            step = self.backend.functions["step"]
            kinds = tuple(step if id(f) in masks else None for f in plan.operands)
            return self.plan.add(multiply_step(tuple(sources), coef, kinds)), plan.out, out_shape
        embed = None
        if plan.diagonal is not None:
            embed = diagonal(plan.diagonal, out_shape, self.dtype, self.backend, self.like)
        counts = [math.prod(s) for s in shapes]
        smallest = min(range(len(counts)), key=counts.__getitem__) if counts else None
        scale = smallest if smallest is not None and counts[smallest] < math.prod(out_shape) else None
        step = product_step(contract, tuple(sources), tuple(ones), coef, embed, scale)
        return self.plan.add(step), plan.out, out_shape

    def masks(self, factors: tuple[Node, ...], summed: frozenset[str]) -> dict[int, Node]:
        """The ``step(u)`` factors of an element-wise product of numpy arrays, by id, each with what the product
        reads instead: relu(u) when computed already (relu(u) > 0 where u > 0, and u may then be let go), else u.
        Once the dtypes allow (inplace.py) the product multiplies by the mask ``> 0`` of it rather than by an
        array of ones and zeros, as the relu backward is written by hand."""
        if summed or self.backend.name != "numpy":
            return {}
        axes = tuple(sorted(frozenset().union(*(f.free for f in factors))))
        found: dict[int, Node] = {}
        for f in factors:
            if isinstance(f, Delta) or (not isinstance(f, Number) and _labels(f) != axes):
                return {}
            if isinstance(f, Func) and f.name == "step":
                relu = Func("relu", f.arg)
                found[id(f)] = relu if self.known(relu) else f.arg
        return found if sum(not isinstance(f, Number) for f in factors) > 1 else {}

    def known(self, node: Node) -> bool:
        """Whether ``node`` has been emitted (its value is in a slot)."""
        return (canonical(node), tuple((i, self.sizes.get(i)) for i in sorted(node.free))) in self.memo

    def first_pair(self, factors: tuple[Node, ...], summed: frozenset[str]) -> tuple[Node, frozenset[str]] | None:
        """The sum with its first contraction (sharing.first_pair) a node of its own, emitted once by structure;
        None to contract the sum in one step."""
        found = first_pair(factors, summed, {i: n for i, n in self.sizes.items() if n is not None})
        if found is None:
            return None
        a, b, gone = found
        inner = Sum(gone, Mul((factors[a], factors[b])))
        self.share(inner)
        others = tuple(f for k, f in enumerate(factors) if k not in (a, b))
        return Mul((inner, *others)), summed - frozenset(gone)

    def share(self, node: Node) -> None:
        """Emit ``node`` once, or reuse a node equal to it up to the names of its free indices (structural)."""
        native = (canonical(node), tuple((i, self.sizes.get(i)) for i in sorted(node.free)))
        if native not in self.memo:
            self.memo[native] = self.structural(node, lambda: self.emit(node))

    def structural(
        self, node: Node, make: Callable[[], tuple[int, Labels, tuple[int, ...]]]
    ) -> tuple[int, Labels, tuple[int, ...]]:
        """The value of a node equal to ``node`` up to the names of its free indices (sharing.structure_keys),
        transposed when two are swapped (``softmax_j(a_kj)`` is ``softmax_l(a_kl)`` transposed); else
        ``make()``'s, recorded for the next such node."""
        free = tuple(sorted(node.free))
        sizes = tuple(self.sizes.get(i) for i in free)
        keys = structure_keys(node)
        if None not in sizes:
            for flipped, key in enumerate(keys):
                found = self.shared.get((key, sizes[::-1] if flipped else sizes))
                if found is not None:
                    slot, shape = found
                    if flipped:
                        slot = self.plan.add(lambda v, s=slot, t=self.backend.transpose: t(v[s], (1, 0)))
                        shape = shape[::-1]
                    return slot, free, shape
        slot, labels, shape = make()
        self.shared[(keys[0], shape)] = (slot, shape)
        return slot, labels, shape


def _coefficient(term: Node) -> tuple[Fraction, Node]:
    """A term as its leading number and the rest (under its Σ if it has one): ``-2 x`` is (-2, x),
    ``Σ_j -x_j y_j`` is (-1, Σ_j x_j y_j), ``x`` is (1, x)."""
    body = term.body if isinstance(term, Sum) else term
    if not (isinstance(body, Mul) and isinstance(body.factors[0], Number)):
        return Fraction(1), term
    rest = body.factors[1] if len(body.factors) == 2 else Mul(body.factors[1:])
    return body.factors[0].value, Sum(term.indices, rest) if isinstance(term, Sum) else rest


def _labels(node: Node) -> Labels:
    """The axes of an operand of a product (evaluate.plan_product's): a tensor's indices, or the sorted free
    indices of anything else."""
    return node.indices if isinstance(node, Tensor) else tuple(sorted(node.free))


def _operator_step(apply: Callable[..., Any], name: str, slot: int, axes: tuple[int, ...], text: str) -> Step:
    def run(v: list[Any]) -> Any:
        try:
            return apply(name, v[slot], axes)
        except ShapeError as err:  # a matrix function undefined at the values (operators.LinAlgProblem)
            raise type(err)(err.reason, text, *_locate(text, name), hint=err.hint) from None

    return run


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
        builder = _Builder(plan, {n: tuple(a.shape) for n, a in given.items()}, dtype, backend, like)
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
