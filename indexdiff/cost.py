"""What an expression costs to evaluate: FLOPs of its contractions in opt_einsum's order and naively.

Element-wise functions and powers count one FLOP per entry, a Σ one per entry summed. Operators count the passes
their evaluation makes over the argument's entries: softmax 5 (max, subtract, exp, sum, divide), logsumexp 4 (max,
subtract, exp, sum; plus a log per result), mean, max and min 1, ismax and ismin 4 (max, compare, count, divide).
A matrix function of an n×n matrix counts LAPACK's LU factorization, 2/3 n³: that is det's and logdet's cost;
inv adds the inversion of the factors, 4/3 n³, for 2 n³ in all. Each matrix function of one matrix counts once per
expression, as compiled code computes it once (``inv(C_ij)`` and ``inv(C_lk)`` in one derivative share it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import opt_einsum

from .canonical import canonical
from .data import shapes
from .errors import expect_expr
from .evaluate import plan_product, unique_sums
from .expr import Add, Delta, Expr, Func, Mul, Node, Number, Op, Pow, Program, Sum, Tensor, depth_safe
from .names import all_indices, rename, sum_by_terms, tensors
from .operators import MATRIX_FUNCTIONS

__all__ = ["cost", "Cost"]


@dataclass(frozen=True)
class Cost:
    """FLOPs (multiply-adds counted as opt_einsum counts them) with opt_einsum's contraction order and with the
    naive one, the largest intermediate (elements), and how many contractions the expression takes."""

    flops: int
    naive_flops: int
    largest_intermediate: int
    contractions: int

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.flops + other.flops,
            self.naive_flops + other.naive_flops,
            max(self.largest_intermediate, other.largest_intermediate),
            self.contractions + other.contractions,
        )


_NONE = Cost(0, 0, 0, 0)
#: Passes over the argument's entries an operator over an index makes (module docstring).
_PASSES = {"softmax": 5, "logsumexp": 4, "mean": 1, "max": 1, "min": 1, "ismax": 4, "ismin": 4}


def _elements(indices: frozenset[str], size: Mapping[str, int]) -> int:
    n = 1
    for i in indices:
        n *= size[i]
    return n


def _cost(node: Node, size: Mapping[str, int], seen: set[Any]) -> Cost:
    """``node``'s cost; ``seen`` holds the matrices whose inv, det or logdet is already counted."""
    if isinstance(node, (Number, Delta)) or (isinstance(node, Tensor) and len(set(node.indices)) == len(node.indices)):
        return _NONE  # a tensor alone is its array (or a view of it)
    parts = sum_by_terms(node)
    if parts is not None:  # term by term, as evaluation does: a term constant along n is scaled, not broadcast
        total = _NONE
        for term, _ in parts:
            total = total + _cost(term, size, seen)
        n = _elements(node.free, size) * len(parts)
        return total + Cost(n, n, 0, 0)
    if isinstance(node, (Tensor, Mul)) or (isinstance(node, Sum) and isinstance(node.body, (Tensor, Delta, Mul))):
        summed = frozenset(node.indices) if isinstance(node, Sum) else frozenset()
        body = node.body if isinstance(node, Sum) else node
        plan = plan_product(body, summed, size.__getitem__)
        inner, shapes = _NONE, []
        for f in plan.operands:
            if not isinstance(f, Tensor):
                inner = inner + _cost(f, size, seen)
            labels = f.indices if isinstance(f, Tensor) else tuple(sorted(f.free))
            shapes.append(tuple(size[i] for i in labels))
        shapes += [(n,) for n in plan.ones]
        if not shapes:
            return inner
        _, info = opt_einsum.contract_path(plan.spec, *shapes, shapes=True)
        here = Cost(int(info.opt_cost), int(info.naive_cost), int(info.largest_intermediate), 1)
        return inner + here
    if isinstance(node, Sum):
        return _cost(node.body, size, seen) + Cost(*(2 * [_elements(node.body.free, size)]), 0, 0)
    if isinstance(node, (Func, Pow)):
        child = node.arg if isinstance(node, Func) else node.base
        return _cost(child, size, seen) + Cost(*(2 * [_elements(node.free, size)]), 0, 0)
    if isinstance(node, Op):
        n = _elements(node.arg.free | frozenset(node.indices), size)
        if node.name in MATRIX_FUNCTIONS:
            # As compiled code does, one inversion (or factorization) per matrix, whatever its indices are called:
            # inv(C_ij), inv(C_pq) and inv(C_ji) (a transpose) count once.
            r, c = sorted(node.arg.free)
            keys = {(node.name, canonical(rename(node.arg, {r: a, c: b}))) for a, b in (("#0", "#1"), ("#1", "#0"))}
            if keys & seen:
                return _NONE
            seen.update(keys)
            m = size[r]
            here = 2 * m**3 if node.name == "inv" else (2 * m**3) // 3
        else:
            here = _PASSES[node.name] * n + (_elements(node.free, size) if node.name == "logsumexp" else 0)
        return _cost(node.arg, size, seen) + Cost(here, here, 0, 0)
    if isinstance(node, Add):
        total = _NONE
        for t in node.terms:
            total = total + _cost(t, size, seen)
        n = _elements(node.free, size) * (len(node.terms) - 1)
        return total + Cost(n, n, 0, 0)
    return _NONE


@depth_safe
def cost(expr: Expr | Program, dims: Mapping[str, int]) -> Cost:
    """The cost of evaluating ``expr`` when its indices have the sizes ``dims`` (every index needs one).

    >>> import indexdiff as ix
    >>> ix.cost(ix.parse("A_ij B_jk C_kl"), {"i": 10, "j": 1000, "k": 10, "l": 1000}).contractions
    1
    """
    expect_expr(expr, "cost")
    if isinstance(expr, Program):
        return _program_cost(expr, dims)
    _, sizes = shapes(expr, dims, defaults=False)
    node = unique_sums(expr.node)
    size = {i: sizes[i.split("#")[0]] for i in all_indices(node)} | {i: sizes[i] for i in expr.free if i in sizes}
    return _cost(node, size, set())


def _program_cost(program: Program, dims: Mapping[str, int]) -> Cost:
    """The sum of the statements' costs. Each statement's index lengths come from the shapes of the tensors it
    uses (inputs as first seen, earlier statements as computed) and from ``dims`` for the rest."""
    seen: dict[str, tuple[int, ...]] = {}
    total = _NONE
    for s in program.statements:
        letters = all_indices(s.node) | set(s.free)
        known = {i: n for i, n in dims.items() if i in letters}
        for t in tensors(s.node):
            known.update(zip(t.indices, seen.get(t.name, ())))
        for i, (name, axis) in s.origins.items():
            if name in seen and i in s.free:
                known[i] = seen[name][axis]
        found, sizes = shapes(s, known, defaults=False)
        for name, shape in found.items():
            seen.setdefault(name, shape)
        seen[s.name] = tuple(sizes[i] for i in s.free)
        total = total + cost(s, known)
    return total
