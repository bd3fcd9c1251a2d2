"""Index names: fresh names, every name a node uses, capture-avoiding renaming, where a free index comes from."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .expr import Add, Delta, Func, Mul, Node, Number, Pow, Sum, Tensor

__all__ = [
    "DERIVATIVE_ORDER",
    "SUMMED_ORDER",
    "fresh",
    "all_indices",
    "children",
    "rename",
    "separate",
    "origin",
    "tensors",
    "witness",
    "rebuild",
    "rename_summed",
    "UnionFind",
]

#: New derivative indices are taken in this order (then k1, l1, ...), skipping names in use.
DERIVATIVE_ORDER = "klmnpqrstuvwabcdefghij"
#: Summed indices get canonical names in this order.
SUMMED_ORDER = "ijklmnpqrstuvwabcdefgh"


def _candidates(order: str) -> Iterator[str]:
    yield from order
    n = 1
    while True:
        for c in order:
            yield f"{c}{n}"
        n += 1


def fresh(avoid: Iterable[str], count: int, order: str = DERIVATIVE_ORDER) -> tuple[str, ...]:
    """``count`` names from ``order`` that are not in ``avoid``."""
    taken = set(avoid)
    out: list[str] = []
    if count <= 0:
        return ()
    for name in _candidates(order):
        if name not in taken:
            out.append(name)
            taken.add(name)
            if len(out) == count:
                return tuple(out)
    raise AssertionError("unreachable")


def all_indices(node: Node) -> set[str]:
    """Every index name in ``node``, free or summed."""
    out: set[str] = set()
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, (Tensor, Delta)):
            out.update(n.indices)
        elif isinstance(n, Sum):
            out.update(n.indices)
            stack.append(n.body)
        else:
            stack.extend(children(n))
    return out


def children(node: Node) -> tuple[Node, ...]:
    """The sub-nodes of ``node``."""
    if isinstance(node, (Mul,)):
        return node.factors
    if isinstance(node, Add):
        return node.terms
    if isinstance(node, Func):
        return (node.arg,)
    if isinstance(node, Pow):
        return (node.base,)
    if isinstance(node, Sum):
        return (node.body,)
    return ()


def rebuild(node: Node, parts: tuple[Node, ...]) -> Node:
    """``node`` with its sub-nodes replaced by ``parts`` (in the order ``children`` gives them); ``node`` itself
    when every part is the one it had."""
    if all(a is b for a, b in zip(parts, children(node))):
        return node
    if isinstance(node, Mul):
        return Mul(parts)
    if isinstance(node, Add):
        return Add(parts)
    if isinstance(node, Func):
        return Func(node.name, parts[0])
    if isinstance(node, Pow):
        return Pow(parts[0], node.exponent)
    if isinstance(node, Sum):
        return Sum(node.indices, parts[0])
    return node


def rename_summed(node: Sum, avoid: set[str] | frozenset[str]) -> Sum:
    """``node`` with those of its summed indices that are in ``avoid`` renamed to fresh names."""
    clash = [j for j in node.indices if j in avoid]
    if not clash:
        return node
    new = fresh(set(avoid) | all_indices(node), len(clash), SUMMED_ORDER)
    mapping = dict(zip(clash, new))
    return Sum(tuple(sorted(mapping.get(j, j) for j in node.indices)), rename(node.body, mapping))


class UnionFind:
    """Index names joined into classes (by deltas, or by sharing a tensor axis)."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, i: str) -> str:
        self.parent.setdefault(i, i)
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: str, b: str) -> tuple[str, str]:
        """Join a's and b's classes; returns (kept root, absorbed root)."""
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra
        return ra, rb


def rename(node: Node, mapping: dict[str, str]) -> Node:
    """``node`` with its free indices renamed by ``mapping``; summed indices are renamed out of the way."""
    mapping = {a: b for a, b in mapping.items() if a != b and a in node.free}
    if not mapping:
        return node
    if isinstance(node, Tensor):
        return Tensor(node.name, tuple(mapping.get(i, i) for i in node.indices))
    if isinstance(node, Delta):
        idx = tuple(mapping.get(i, i) for i in node.indices)
        return Delta((idx[0],)) if len(idx) == 2 and idx[0] == idx[1] else Delta(idx)
    if isinstance(node, Sum):
        node = rename_summed(node, set(mapping.values()))
        return Sum(node.indices, rename(node.body, mapping))
    return rebuild(node, tuple(rename(c, mapping) for c in children(node)))


def origin(node: Node, index: str, _seen: frozenset[str] = frozenset()) -> tuple[str, int] | None:
    """A tensor axis that has the free ``index`` of ``node``, directly or through deltas: (name, axis)."""
    if index not in node.free or index in _seen:
        return None
    if isinstance(node, Tensor):
        return node.name, node.indices.index(index)
    for child in children(node):
        found = origin(child, index, _seen)
        if found is not None:
            return found
    if isinstance(node, Mul):
        for f in node.factors:
            if isinstance(f, Delta) and len(f.indices) == 2 and index in f.indices:
                partner = f.indices[1] if f.indices[0] == index else f.indices[0]
                found = origin(node, partner, _seen | {index})
                if found is not None:
                    return found
    return None


def witness(body: Node, index: str) -> Node | None:
    """1 along ``index``, made from a tensor of ``body`` that carries it, so it knows the index's length.

    ``T_pj^0`` when T's other indices are free in ``body``; ``(Σ_i T_pi^0)^0`` when T also carries indices
    that ``body`` sums (then they must stay bound inside the witness).
    """
    from fractions import Fraction

    zero = Fraction(0)
    for t in tensors(body):
        if index in t.indices:
            inner = set(t.indices) - body.free
            if not inner:
                return Pow(t, zero)
            return Pow(Sum(tuple(sorted(inner)), Pow(t, zero)), zero)
    return None


def tensors(node: Node) -> Iterator[Tensor]:
    """Every tensor occurrence in ``node``."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Tensor):
            yield n
        elif not isinstance(n, (Number, Delta)):
            stack.extend(children(n))


def separate(node: Node, scope: frozenset[str]) -> Node:
    """``node`` with every summed index renamed where it repeats a name visible around it (``scope``)."""
    if isinstance(node, Sum):
        node = rename_summed(node, scope)
        body = separate(node.body, scope | frozenset(node.indices))
        return node if body is node.body else Sum(node.indices, body)
    return rebuild(node, tuple(separate(c, scope) for c in children(node)))
