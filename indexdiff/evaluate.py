"""The reference evaluator: each product term one opt_einsum contraction, functions through numpy.

Deltas never become dense identity matrices inside a contraction: the indices they join are merged, and a delta
whose two indices are both output indices writes the result onto a diagonal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import opt_einsum

from .errors import IndexDiffError, ShapeError, expect_dims
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
    depth_safe,
    with_bound,
)
from .functions import FUNCTIONS
from .names import UnionFind, all_indices, body_of, children, rebuild, rename, sum_by_terms, tensors

__all__ = [
    "evaluate",
    "index_sizes",
    "unique_sums",
    "unique_summed",
    "plan_product",
    "as_float",
    "as_exponent",
    "real_array",
]

Labels = tuple[str, ...]


def unique_sums(node: Node, taken: set[str] | None = None) -> Node:
    """``node`` with every Σ binding a name used nowhere else, so one size table serves the whole tree."""
    taken = set(node.free) if taken is None else taken
    if bound_indices(node):
        mapping = {}
        for j in bound_indices(node):
            name = j
            n = 0
            while name in taken:
                n += 1
                name = f"{j}#{n}"
            taken.add(name)
            mapping[j] = name
        inside = body_of(node)
        body = unique_sums(rename(inside, mapping), taken)
        if body is inside and all(a == b for a, b in mapping.items()):
            return node  # unchanged: keep the node (and what is cached on it)
        return with_bound(node, tuple(sorted(mapping.values())), body)  # type: ignore[arg-type]
    return rebuild(node, tuple(unique_sums(c, taken) for c in children(node)))


def unique_summed(node: Node, free: tuple[str, ...] | frozenset[str]) -> Node:
    """``node`` (with output indices ``free``) with unique Σ names, none clashing with an index used unbound."""
    return unique_sums(node, set(free) | all_indices(node) - _summed_names(node))


def as_exponent(value: Fraction) -> int | float:
    """An exponent as numpy takes it: an int when it is a (machine-size) integer, else a float."""
    if value.denominator == 1 and abs(value.numerator) < 2**31:
        return int(value)
    return as_float(value)


def as_float(value: Fraction) -> float:
    """An exact number as a float (±inf beyond the float range)."""
    try:
        return float(value)
    except OverflowError:
        return float("inf") if value > 0 else float("-inf")


def _user_name(index: str) -> str:
    return index.split("#")[0]


class _Sizes(UnionFind):
    """Index sizes, joined through deltas, with the tensor that set each one (for messages)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.size: dict[str, tuple[int, str]] = {}
        self.text = text

    def union(self, a: str, b: str) -> tuple[str, str]:
        ra, rb = super().union(a, b)
        if ra != rb and rb in self.size:
            self.set(ra, *self.size.pop(rb), index=a)
        return ra, rb

    def set(self, i: str, n: int, source: str, index: str | None = None) -> None:
        r = self.find(i)
        if r not in self.size:
            self.size[r] = (n, source)
            return
        m, other = self.size[r]
        if m != n:
            name = _user_name(index or i)
            raise ShapeError(
                f"index '{name}' has size {m} in {other} but size {n} in {source}",
                self.text,
                *_locate(self.text, source.split("[")[0].split(" ")[0]),
                hint=f"every occurrence of '{name}' must have the same length; check the arrays' shapes",
            )

    def get(self, i: str) -> int | None:
        found = self.size.get(self.find(i))
        return None if found is None else found[0]


def _locate(text: str, name: str) -> tuple[int | None, int | None]:
    m = re.search(rf"(?<![\w]){re.escape(name)}(?![A-Za-z0-9])", text)
    return (m.start(), m.end()) if m else (None, None)


def index_sizes(
    node: Node,
    arrays: Mapping[str, np.ndarray],
    origins: Mapping[str, tuple[str, int]],
    dims: Mapping[str, int],
    text: str,
) -> _Sizes:
    """The size of every index of ``node`` (whose Σs bind unique names) from the arrays, origins and dims."""
    sizes = _Sizes(text)
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Tensor):
            a = arrays[n.name]
            for axis, i in enumerate(n.indices):
                sizes.set(i, a.shape[axis], f"{n.name} (axis {axis} of shape {a.shape})", index=i)
        elif isinstance(n, Delta) and len(n.indices) == 2:
            sizes.union(*n.indices)
        stack.extend(children(n))
    for i, (name, axis) in origins.items():
        if name in arrays and sizes.get(i) is None:
            sizes.set(i, np.shape(arrays[name])[axis], f"{name} (axis {axis})", index=i)
    # dims give lengths by index name: to every index so named, the Σ indices evaluation renamed apart (b#1)
    # included; they fill what no array determines (and must agree with one another).
    named: dict[str, list[str]] = {}
    for j in sorted(all_indices(node) | set(origins)):
        named.setdefault(_user_name(j), []).append(j)
    for i, n in dims.items():
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ShapeError(
                f"dims gives index '{i}' the size {n!r}", text, hint="sizes are integers >= 0, e.g. dims={'i': 3}"
            )
        for j in named.get(i, [i]):
            known = sizes.size.get(sizes.find(j))
            if known is None or known[1] == "dims":
                sizes.set(j, int(n), "dims", index=j)
    return sizes


class _Evaluator:
    def __init__(self, arrays: Mapping[str, np.ndarray], sizes: _Sizes, dtype: np.dtype, text: str) -> None:
        self.arrays = arrays
        self.sizes = sizes
        self.dtype = dtype
        self.text = text

    def size(self, i: str) -> int:
        n = self.sizes.get(i)
        if n is None:
            raise ShapeError(
                f"the size of index '{_user_name(i)}' is unknown: no array has it",
                self.text,
                hint=f"pass its size, e.g. dims={{'{_user_name(i)}': 3}}",
            )
        return n

    def eval(self, node: Node) -> tuple[np.ndarray, Labels]:
        """The value of ``node`` and its axis labels: always its free indices in sorted order."""
        if isinstance(node, Number):
            return np.asarray(as_float(node.value), dtype=self.dtype), ()
        if isinstance(node, (Tensor, Delta, Mul)):
            return self.product(node, frozenset())
        if isinstance(node, Sum):
            parts = sum_by_terms(node)
            if parts is not None:
                return self.terms(node, parts)
            if isinstance(node.body, (Tensor, Delta, Mul)):
                return self.product(node.body, frozenset(node.indices))
            value, labels = self.eval(node.body)
            axes = tuple(k for k, i in enumerate(labels) if i in node.indices)
            return value.sum(axis=axes), tuple(i for i in labels if i not in node.indices)
        if isinstance(node, Func):
            value, labels = self.eval(node.arg)
            return FUNCTIONS[node.name].numpy(value), labels
        if isinstance(node, Pow):
            value, labels = self.eval(node.base)
            return np.power(value, as_exponent(node.exponent)), labels
        if isinstance(node, Op):
            return self.operator(node)
        if isinstance(node, Add):
            labels = tuple(sorted(node.free))
            total = None
            for t in node.terms:
                value, own = self.eval(t)
                aligned = _align(value, own, labels)
                total = aligned if total is None else total + aligned
            assert total is not None
            return np.asarray(total, dtype=self.dtype) if total.ndim == 0 else total, labels
        raise AssertionError(node)

    def terms(self, node: Node, parts: list[tuple[Node, tuple[str, ...]]]) -> tuple[np.ndarray, Labels]:
        """Σ over a sum of terms, term by term: a term lacking a summed index is multiplied by its length."""
        labels = tuple(sorted(node.free))
        total = None
        for term, lacking in parts:
            value, own = self.eval(term)
            for j in lacking:
                value = value * self.size(j)
            aligned = _align(np.asarray(value), own, labels)
            total = aligned if total is None else total + aligned
        assert total is not None
        return np.asarray(total, dtype=np.result_type(total, self.dtype)), labels

    def operator(self, node: Op) -> tuple[np.ndarray, Labels]:
        from .operators import OPERATORS

        value, labels = self.eval(node.arg)
        value, labels = self.spread(value, labels, node.indices)
        if node.name in ("inv", "det", "logdet"):
            self.square(node, labels)
        axes = tuple(labels.index(i) for i in node.indices)
        try:
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                out = OPERATORS[node.name].numpy(value, axes)
        except ShapeError as err:
            raise type(err)(err.reason, self.text, *_locate(self.text, node.name), hint=err.hint) from None
        return out, tuple(i for i in labels if i not in bound_indices(node))

    def spread(self, value: np.ndarray, labels: Labels, wanted: tuple[str, ...]) -> tuple[np.ndarray, Labels]:
        """``value`` broadcast along those of ``wanted`` it lacks (an operator's argument constant along its index)."""
        missing = [i for i in wanted if i not in labels]
        if not missing:
            return value, labels
        full = tuple(sorted((*labels, *missing)))
        shape = tuple(self.size(i) for i in full)
        return np.broadcast_to(_align(value, labels, full), shape), full

    def square(self, node: Op, labels: Labels) -> None:
        a, b = labels
        if self.size(a) != self.size(b):
            raise ShapeError(
                f"{node.name}(...) needs a square matrix, but its index '{_user_name(a)}' has size {self.size(a)} "
                f"and '{_user_name(b)}' has size {self.size(b)}",
                self.text,
                *_locate(self.text, node.name),
                hint="the argument's two free indices must have the same length",
            )

    def product(self, node: Node, summed: frozenset[str]) -> tuple[np.ndarray, Labels]:
        """One contraction: Σ_summed of the factors, deltas merged into the indices they join."""
        plan = plan_product(node, summed, self.size)
        operands = [self.arrays[f.name] if isinstance(f, Tensor) else self.eval(f)[0] for f in plan.operands]
        operands += [np.ones(n, dtype=self.dtype) for n in plan.ones]
        # With no operands the product is its numbers alone.
        value = opt_einsum.contract(plan.spec, *operands) if operands else np.ones(())
        value = np.asarray(value * as_float(plan.coef), dtype=np.result_type(value, self.dtype))
        if plan.diagonal is None:
            return value, plan.out
        full = np.zeros(plan.shape, dtype=value.dtype)
        np.einsum(plan.diagonal, full)[...] = value
        return full, plan.out


@dataclass(frozen=True)
class ProductPlan:
    """How one product becomes one einsum: the operands (each with its labels in ``spec``), the product of its
    numbers (``coef``, applied after the contraction so it never widens an intermediate), ones vectors for
    indices no operand carries, and, when a delta joins two output indices, the einsum that views the output's
    diagonal (``diagonal``) to write the result onto. ``terms`` and ``reps`` are ``spec`` in index names (the
    representative of each class of indices the deltas join): one label tuple per operand and ones vector, and
    the output's; einsum letters are assigned per product, so no product needs more than its own."""

    operands: tuple[Node, ...]
    coef: Fraction
    ones: tuple[int, ...]
    spec: str
    out: Labels
    diagonal: str | None
    shape: tuple[int, ...]
    terms: tuple[Labels, ...]
    reps: Labels
    classes: Labels  # the representative of each of ``out``


def plan_product(node: Node, summed: frozenset[str], size: Any) -> ProductPlan:
    """The einsum for Σ_summed of ``node``'s factors (``size(index)`` gives lengths where an operand cannot)."""
    factors = node.factors if isinstance(node, Mul) else (node,)
    joined = UnionFind()
    find = joined.find
    operands: list[Node] = []
    labels: list[Labels] = []
    coef = Fraction(1)
    for f in factors:
        if isinstance(f, Number):
            coef *= f.value
            continue
        if isinstance(f, Delta):
            if len(f.indices) == 2:
                a, b = f.indices
                # Prefer an output index as the class representative.
                joined.union(*((b, a) if find(a) in summed else (a, b)))
            continue
        operands.append(f)
        labels.append(f.indices if isinstance(f, Tensor) else _labels(f))
    out = tuple(sorted(node.free - summed))
    every = set(out) | set(summed) | {i for f in factors if isinstance(f, Delta) for i in f.indices}
    for i in every:
        find(i)
    present = {find(i) for own in labels for i in own}
    missing = sorted({find(i) for i in every} - present)
    labels += [(rep,) for rep in missing]
    reps = tuple(dict.fromkeys(find(i) for i in out))
    symbols: dict[str, str] = {}

    def sym(i: str) -> str:
        r = find(i)
        if r not in symbols:
            symbols[r] = opt_einsum.get_symbol(len(symbols))
        return symbols[r]

    spec = ",".join("".join(sym(i) for i in own) for own in labels) + "->" + "".join(sym(r) for r in reps)
    ones = tuple(size(rep) for rep in missing)
    terms = tuple(tuple(find(i) for i in own) for own in labels)
    if len(reps) == len(out):
        owners = tuple(_rep_owner(r, out, find) for r in reps)
        return ProductPlan(tuple(operands), coef, ones, spec, owners, None, (), terms, reps, reps)
    diagonal = "".join(sym(i) for i in out) + "->" + "".join(sym(r) for r in reps)
    shape = tuple(size(i) for i in out)
    return ProductPlan(tuple(operands), coef, ones, spec, out, diagonal, shape, terms, reps, tuple(map(find, out)))


def _labels(node: Node) -> Labels:
    """The axis labels a non-tensor operand is evaluated with (its free indices, sorted)."""
    return tuple(sorted(node.free))


def _rep_owner(rep: str, out: Labels, find: Any) -> str:
    return next(i for i in out if find(i) == rep)


def _align(value: np.ndarray, labels: Labels, target: Labels) -> np.ndarray:
    """``value`` transposed to ``target`` order, with length-1 axes where it lacks an index (broadcast)."""
    order = [labels.index(i) for i in target if i in labels]
    value = np.transpose(value, order) if order else value
    shape, k = [], 0
    for i in target:
        if i in labels:
            shape.append(value.shape[k])
            k += 1
        else:
            shape.append(1)
    return value.reshape(shape)


def _arrays_for(expr: Expr, node: Node, arrays: Mapping[str, Any], text: str) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    ranks = dict(expr.variables)
    for t in tensors(node):
        ranks.setdefault(t.name, len(t.indices))
    needed = {t.name for t in tensors(node)} | {n for n, _ in expr.origins.values() if n in arrays}
    for name in sorted(needed):
        if name not in arrays:
            raise ShapeError(
                f"no array given for '{name}'",
                text,
                *_locate(text, name),
                hint=f"pass {name}=... (the expression needs: {', '.join(sorted({t.name for t in tensors(node)}))})",
            )
        try:
            a = np.asarray(arrays[name])
        except (ValueError, TypeError) as err:
            raise ShapeError(
                f"the array for '{name}' is not a rectangular numeric array ({err})",
                text,
                *_locate(text, name),
                hint="pass a numpy array (all rows the same length)",
            ) from None
        try:
            a = real_array(name, a)
        except ShapeError as err:
            raise ShapeError(err.reason, text, *_locate(text, name), hint=err.hint) from None
        if name in ranks and a.ndim != ranks[name]:  # names only in origins just give sizes
            raise ShapeError(
                f"'{name}' has {ranks[name]} ind{'ex' if ranks[name] == 1 else 'ices'} but the array has "
                f"{a.ndim} ax{'is' if a.ndim == 1 else 'es'} (shape {a.shape})",
                text,
                *_locate(text, name),
                hint=f"pass an array with {ranks[name]} axes for {name}",
            )
        out[name] = a
    return out


def real_array(name: str, a: Any) -> Any:
    """``a`` (a numpy array or another library's) as a real floating array: integers and booleans become float64;
    complex, string and object arrays are refused (indexdiff computes with real arrays only)."""
    dtype = getattr(a, "dtype", None)
    if "complex" in str(dtype):
        raise ShapeError(
            f"the array for '{name}' is complex (dtype {dtype}); indexdiff computes with real arrays only",
            hint=f"pass the real and imaginary parts as separate tensors, or a real array for {name}",
        )
    if type(a) is not np.ndarray:
        return a  # another library's array: its own dtype rules
    if np.issubdtype(a.dtype, np.floating):
        return a
    if a.dtype == bool or np.issubdtype(a.dtype, np.integer):
        return a.astype(np.float64)  # integers and booleans are computed in float64
    raise ShapeError(f"the array for '{name}' is not numeric (dtype {a.dtype})", hint="pass a numeric array")


@depth_safe
def evaluate(
    expr: Expr | Program,
    arrays: Mapping[str, Any],
    dims: Mapping[str, int] | None = None,
    output: str | None = None,
) -> np.ndarray:
    """The value of ``expr`` for the given arrays, a numpy array with axes in ``expr.free`` order.

    ``dims`` gives sizes of indices no array determines. For a Program, the value of the last statement
    (or of ``output``); earlier statements are computed once and used by name.

    >>> import numpy as np, indexdiff as ix
    >>> A, x = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 1.0])
    >>> ix.evaluate(ix.parse("x_i A_ij x_j"), {"A": A, "x": x})
    array(10.)
    """
    if isinstance(expr, Program):
        values = dict(arrays)
        last = None
        for s in expr.statements:
            values[s.name] = last = evaluate(s, values, dims)
            if s.name == output:
                return last
        if output is not None:
            raise IndexDiffError(
                f"the program defines no '{output}'", str(expr), hint=f"choose one of: {', '.join(expr.names)}"
            )
        assert last is not None
        return last
    if not isinstance(expr, Expr):
        raise IndexDiffError(f"expected an expression from indexdiff.parse, got {type(expr).__name__}")
    if not isinstance(arrays, Mapping):
        raise ShapeError("arrays must be a mapping from tensor names to arrays", hint="pass {'x': x, 'A': A}")
    text = str(expr)
    node = unique_summed(expr.node, expr.free)
    given = _arrays_for(expr, node, arrays, text)
    if expr.symmetric:  # results assume the declared symmetry: refuse arrays without it
        from .symmetric import require_symmetric

        require_symmetric(expr.symmetric, given, text)
    sizes = index_sizes(node, given, expr.origins, expect_dims(dims, minimum=0), text)
    floats = [a.dtype for a in given.values() if np.issubdtype(a.dtype, np.inexact)]
    dtype = np.result_type(*floats) if floats else np.dtype(np.float64)
    ev = _Evaluator(given, sizes, dtype, text)
    value, labels = ev.eval(node)
    value = _align(np.asarray(value), labels, expr.free)
    shape = tuple(ev.size(i) for i in expr.free)
    if value.shape != shape:
        value = np.broadcast_to(value, shape)
    return np.array(value, dtype=np.result_type(value.dtype, dtype))


def _summed_names(node: Node) -> set[str]:
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        out.update(bound_indices(n))
        stack.extend(children(n))
    return out
