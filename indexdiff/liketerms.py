"""Like terms: a term's number and the rest, terms equal up to the names of their summed indices merged, and how
long a list of terms reads (for the simplifier's choice between a factored and an expanded form)."""

from __future__ import annotations

from collections import Counter
from fractions import Fraction

from .canonical import canonical, hashed_key
from .expr import ONE, ZERO, Add, Mul, Node, Number, Sum, memo
from .names import summed_indices
from .trace import TRACE

__all__ = ["product_of", "split_coef", "scale", "merged", "weight"]


def product_of(factors: list[Node]) -> Node:
    """The product of ``factors`` as one node (1 for none)."""
    if not factors:
        return ONE
    return factors[0] if len(factors) == 1 else Mul(tuple(factors))


def split_coef(term: Node) -> tuple[Fraction, Node]:
    """A term's number and the rest (cached on the term, so that copies of one term share the rest)."""
    cache = memo(term)
    found = cache.get("split")
    if found is None:
        found = cache["split"] = _split(term)
    return found


def _split(term: Node) -> tuple[Fraction, Node]:
    if isinstance(term, Number):
        return term.value, ONE
    if isinstance(term, Mul) and isinstance(term.factors[0], Number):
        return term.factors[0].value, product_of(list(term.factors[1:]))
    if isinstance(term, Sum):
        c, body = split_coef(term.body)
        return c, term if body is term.body else Sum(term.indices, body)
    return Fraction(1), term


def scale(node: Node, c: Fraction) -> Node:
    if c == 1:
        return node
    if node == ONE:
        return Number(c)
    if isinstance(node, Sum):
        return Sum(node.indices, scale(node.body, c))
    if isinstance(node, Mul):
        return Mul((Number(c), *node.factors))
    return Mul((Number(c), node))


def merged(flat: list[Node]) -> list[Node]:
    """Like terms merged: their numbers added, up to the names of summed indices."""
    scope = frozenset().union(*(t.free for t in flat))
    split = [split_coef(t) for t in flat]
    # Terms equal up to renaming have equal rename-blind sort keys: only those need canonical forms, and only
    # when they sum an index (without a Σ the sort key is exact).
    rough = [hashed_key(rest) for _, rest in split]
    crowded = {k for k, n in Counter(rough).items() if n > 1}
    order: list[object] = []
    groups: dict[object, list] = {}
    for (c, rest), like in zip(split, rough):
        key: object = (like, canonical(rest, scope)) if like in crowded and summed_indices(rest) else like
        if key not in groups:
            order.append(key)
            groups[key] = [Fraction(0), rest]
        groups[key][0] += c
    out = [scale(groups[k][1], groups[k][0]) for k in order if groups[k][0] != 0]
    if len(order) < len(flat) and (tracer := TRACE.get()) is not None:
        tracer.rule("like terms merged", Add(tuple(flat)), Add(tuple(out)) if len(out) > 1 else out[0] if out else ZERO)
    return out


def weight(terms: list[Node]) -> int:
    """How long the terms read: their factors, a sum factor counting its terms."""
    total = 0
    for t in terms:
        rest = split_coef(t)[1]
        for f in rest.factors if isinstance(rest, Mul) else (rest,):
            total += len(f.terms) if isinstance(f, Add) else 1
    return total
