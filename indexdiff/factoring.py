"""A factor every term of a sum multiplies, taken out of the sum: ``P_ij dP_ij - P_ij P_ir dP_ir`` is
``P_ij (dP_ij - P_ir dP_ir)``, one product fewer per element (the softmax backward as written by hand). Reverse
mode writes adjoints so (reverse.py); the simplifier leaves a product of a sum as it is."""

from __future__ import annotations

from fractions import Fraction

from .expr import Add, Delta, Mul, Node, Number, Sum

__all__ = ["common_factor"]


def _parts(term: Node) -> tuple[tuple[str, ...], tuple[Node, ...]]:
    """A term as its Σ's indices and the factors under it."""
    indices: tuple[str, ...] = ()
    if isinstance(term, Sum):
        indices, term = term.indices, term.body
    return indices, (term.factors if isinstance(term, Mul) else (term,))


def _without(term: Node, factor: Node) -> Node:
    """``term`` with one occurrence of ``factor`` left out (1 when nothing is left)."""
    indices, factors = _parts(term)
    k = factors.index(factor)
    rest = factors[:k] + factors[k + 1 :]
    body = rest[0] if len(rest) == 1 else Mul(rest) if rest else Number(Fraction(1))
    return Sum(indices, body) if indices else body


def _shared(terms: tuple[Node, ...]) -> Node | None:
    """A factor (no number, no delta) of every term, outside each term's Σ; None if there is none."""
    parts = [_parts(t) for t in terms]
    for f in parts[0][1]:
        if isinstance(f, (Number, Delta)):
            continue
        if all(f in factors and f.free.isdisjoint(indices) for indices, factors in parts):
            return f
    return None


def common_factor(node: Node) -> Node:
    """``node`` with the factors common to every term of its top-level sum taken out:
    ``a b x + a b y`` is ``a b (x + y)``; anything else as it is."""
    if not isinstance(node, Add):
        return node
    terms, outside = node.terms, []
    while (f := _shared(terms)) is not None:
        outside.append(f)
        terms = tuple(_without(t, f) for t in terms)
    if not outside:
        return node
    return Mul((*outside, Add(terms)))
