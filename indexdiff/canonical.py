"""The canonical form: flattened products and sums, sorted operands, summed indices named by position.

Two nodes that differ only in the order of factors or terms, in nesting of products, sums or Σs, or in the
names of summed indices have the same canonical form.  It is what Expr equality and like-term merging compare.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from .expr import Add, Delta, Func, Mul, Node, Number, Pow, Sum, Tensor, exact_power, product
from .names import SUMMED_ORDER, all_indices, children, fresh, rename, separate

__all__ = ["canonical", "flatten", "sort_key"]

_MASK = "?"
# Display order of factors in a product: numbers, tensors, deltas, powers, functions, sums, products.
_TAG = {Number: 0, Tensor: 1, Delta: 2, Pow: 3, Func: 4, Add: 5, Mul: 6, Sum: 7}


def sort_key(node: Node, masked: frozenset[str] | dict[str, str] = frozenset()) -> tuple[Any, ...]:
    """An ordering key that ignores the names of summed indices.

    ``masked`` indices read as ``?``, or as the colour a dict gives them (see ``_colors``).
    """
    colors = masked if isinstance(masked, dict) else dict.fromkeys(masked, _MASK)
    return _key(node, colors)


def _key(node: Node, colors: dict[str, str]) -> tuple[Any, ...]:
    tag = _TAG[type(node)]
    if isinstance(node, Number):
        return (tag, node.value)
    if isinstance(node, Tensor):
        return (tag, node.name, len(node.indices), tuple(colors.get(i, i) for i in node.indices))
    if isinstance(node, Delta):
        return (tag, len(node.indices), tuple(sorted(colors.get(i, i) for i in node.indices)))
    if isinstance(node, Func):
        return (tag, node.name, _key(node.arg, colors))
    if isinstance(node, Pow):
        return (tag, _key(node.base, colors), node.exponent)
    if isinstance(node, Mul):
        return (tag, tuple(sorted(_key(f, colors) for f in node.factors)))
    if isinstance(node, Add):
        return (tag, tuple(sorted(_key(t, colors) for t in node.terms)))
    if isinstance(node, Sum):
        return (tag, len(node.indices), _key(node.body, {**colors, **dict.fromkeys(node.indices, _MASK)}))
    raise AssertionError(node)


def _colors(body: Node, summed: frozenset[str], rounds: int = 2) -> dict[str, str]:
    """A name-free description of each summed index: the tensors and positions it occurs at, refined by the
    descriptions of the indices it shares those tensors with. Factors that tie on masked keys (two ``A_??``) are
    then ordered by where their indices lead, not by how the input happened to be written."""
    colors = dict.fromkeys(summed, _MASK)
    for _ in range(rounds):
        seen: dict[str, list[tuple[str, int]]] = {j: [] for j in summed}
        stack = [body]
        while stack:
            n = stack.pop()
            if isinstance(n, (Tensor, Delta)):
                described = repr(_key(n, colors))
                for position, i in enumerate(n.indices):
                    if i in seen:
                        seen[i].append((described, position if isinstance(n, Tensor) else 0))
            else:
                stack.extend(children(n))
        colors = {j: repr(sorted(occurrences)) for j, occurrences in seen.items()}
    return colors


def _term_key(node: Node) -> tuple[Any, ...]:
    # Terms of a sum: positive terms first, numbers after the other terms of their sign.
    body = node.body if isinstance(node, Sum) else node
    coef = None
    if isinstance(body, Mul) and isinstance(body.factors[0], Number):
        coef = body.factors[0].value
        body = Mul(body.factors[1:]) if len(body.factors) > 2 else body.factors[1]
        node = Sum(node.indices, body) if isinstance(node, Sum) else body
    coef = coef if coef is not None else Fraction(-1 if isinstance(node, Number) and node.value < 0 else 1)
    return (coef < 0, isinstance(node, Number), sort_key(node), coef)


def flatten(node: Node) -> Node:
    """Products and sums spliced, numbers in a product multiplied, nested Σs merged, whole powers distributed."""
    if isinstance(node, Func):
        return Func(node.name, flatten(node.arg))
    if isinstance(node, Pow):
        base = flatten(node.base)
        if node.exponent.denominator == 1:
            folded = exact_power(base.value, node.exponent) if isinstance(base, Number) else None
            if folded is not None:
                return Number(folded)
            if isinstance(base, Pow):
                return flatten(Pow(base.base, base.exponent * node.exponent))
            if isinstance(base, Mul):
                return flatten(Mul(tuple(Pow(f, node.exponent) for f in base.factors)))
        return Pow(base, node.exponent)
    if isinstance(node, Mul):
        return product([flatten(f) for f in node.factors])
    if isinstance(node, Add):
        terms: list[Node] = []
        for t in (flatten(t) for t in node.terms):
            terms.extend(t.terms if isinstance(t, Add) else (t,))
        return terms[0] if len(terms) == 1 else Add(tuple(terms))
    if isinstance(node, Sum):
        body = flatten(node.body)
        if isinstance(body, Sum) and not set(body.indices) & set(node.indices):
            return Sum(tuple(sorted(node.indices + body.indices)), body.body)
        return Sum(node.indices, body)
    return node


def _first_appearance(node: Node, wanted: frozenset[str], masked: dict[str, str], out: list[str]) -> None:
    """Append the ``wanted`` indices in the order a canonical traversal meets them (``masked``: colours)."""
    if isinstance(node, (Tensor, Delta)):
        indices = node.indices if isinstance(node, Tensor) else sorted(node.indices, key=lambda i: i in wanted)
        out.extend(i for i in indices if i in wanted and i not in out)
    elif isinstance(node, Func):
        _first_appearance(node.arg, wanted, masked, out)
    elif isinstance(node, Pow):
        _first_appearance(node.base, wanted, masked, out)
    elif isinstance(node, (Mul, Add)):
        parts = node.factors if isinstance(node, Mul) else node.terms
        for p in sorted(parts, key=lambda p: sort_key(p, masked)):
            _first_appearance(p, wanted, masked, out)
    elif isinstance(node, Sum):
        _first_appearance(node.body, wanted - set(node.indices), {**masked, **dict.fromkeys(node.indices, _MASK)}, out)


def _canon(node: Node, scope: frozenset[str], rename_sums: bool = True) -> Node:
    if isinstance(node, Delta):
        return Delta(tuple(sorted(node.indices)))
    if isinstance(node, Func):
        return Func(node.name, _canon(node.arg, scope, rename_sums))
    if isinstance(node, Pow):
        return Pow(_canon(node.base, scope, rename_sums), node.exponent)
    if isinstance(node, Mul):
        return Mul(tuple(sorted((_canon(f, scope, rename_sums) for f in node.factors), key=sort_key)))
    if isinstance(node, Add):
        return Add(tuple(sorted((_canon(t, scope, rename_sums) for t in node.terms), key=_term_key)))
    if isinstance(node, Sum) and not rename_sums:
        return Sum(node.indices, _canon(node.body, scope | frozenset(node.indices), False))
    if isinstance(node, Sum):
        summed = frozenset(node.indices)
        order: list[str] = []
        _first_appearance(node.body, summed, _colors(node.body, summed), order)
        order += sorted(summed - set(order))
        avoid = scope | (node.body.free - summed)
        # Move the summed indices out of the way first, so the canonical names cannot collide with them.
        temp = fresh(avoid | all_indices(node.body), len(order), "ιοκλμνξπρστυφχψω")
        body = rename(node.body, dict(zip(order, temp)))
        names = fresh(avoid, len(order), SUMMED_ORDER)
        body = rename(body, dict(zip(temp, names)))
        return Sum(tuple(sorted(names)), _canon(body, scope | frozenset(names)))
    return node


def canonical(node: Node, scope: frozenset[str] = frozenset(), rename: bool = True) -> Node:
    """The canonical form of ``node``; ``scope`` holds the index names visible around it (kept as they are).

    With ``rename=False`` summed indices keep their names: only the structure and operand order are canonical.
    """
    scope = scope | node.free
    return _canon(flatten(separate(node, scope)), scope, rename)
