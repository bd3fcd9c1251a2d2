"""Turns simplified expressions into the steps of a compiled plan (steps.Plan) for one set of input shapes: each
node once (by canonical form, and by structure up to the names of its free indices), products as contractions,
element-wise work as the steps of inplace.py."""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

from .backends import Backend
from .canonical import canonical
from .errors import ShapeError
from .evaluate import _locate, as_exponent, as_float, plan_product
from .expr import Add, Delta, Func, Mul, Node, Number, Op, Pow, Sum, Tensor, bound_indices, negate
from .factoring import common_factor
from .inplace import function_step, multiply_step, scale_step, square_step, sum_step
from .names import sum_by_terms
from .sharing import first_pair, structure_keys
from .steps import Plan, broadcast_shape, contraction, diagonal, product_step

__all__ = ["Builder"]

Labels = tuple[str, ...]
Step = Callable[[list[Any]], Any]


class Builder:
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
