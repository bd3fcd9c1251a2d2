"""Index names: fresh names, every name a node uses, capture-avoiding renaming, where a free index comes from."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from operator import attrgetter
from typing import Any, TypeVar

from .expr import Add, Delta, Func, Mul, Node, Number, Op, Pow, Sum, Tensor, bound_indices, memo, with_bound

T = TypeVar("T")
_MISSING = object()

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
    "tensor_names",
    "summed_indices",
    "share",
    "witness",
    "rebuild",
    "rename_summed",
    "UnionFind",
    "sum_by_terms",
]

#: New derivative indices are taken in this order (then k1, l1, ...), skipping names in use.
DERIVATIVE_ORDER = "klmnpqrstuvwabcdefghij"
#: Summed indices get canonical names in this order.
SUMMED_ORDER = "ijklmnpqrstuvwabcdefgh"


def _candidates(order: str, count: int) -> Iterator[str]:
    """``order``'s names, then with suffixes 1, 2, ...: ``count`` rounds of them, no more."""
    yield from order
    for n in range(1, count + 1):
        for c in order:
            yield f"{c}{n}"


def fresh(avoid: Iterable[str], count: int, order: str = DERIVATIVE_ORDER) -> tuple[str, ...]:
    """``count`` names from ``order`` that are not in ``avoid``.

    Bounded: ``len(avoid) + count`` rounds of ``order`` hold more than enough names that ``avoid`` lacks.
    """
    taken = set(avoid)
    out: list[str] = []
    if count <= 0:
        return ()
    for name in _candidates(order, len(taken) + count):
        if name not in taken:
            out.append(name)
            taken.add(name)
            if len(out) == count:
                return tuple(out)
    raise AssertionError("unreachable: more candidate names than names to avoid")


def all_indices(node: Node) -> frozenset[str]:
    """Every index name in ``node``, free or summed (cached on each node)."""
    return _bottom_up(node, "indices", _indices_of)


def _indices_of(node: Node, parts: list[frozenset[str]]) -> frozenset[str]:
    if isinstance(node, (Tensor, Delta)):
        return frozenset(node.indices)
    own = frozenset(node.indices) if isinstance(node, (Sum, Op)) else frozenset()
    if len(parts) == 1 and not own:
        return parts[0]
    return own.union(*parts)


def tensor_names(node: Node) -> frozenset[str]:
    """The names of the tensors in ``node`` (cached on each node)."""
    return _bottom_up(node, "tensor names", _names_of)


def _names_of(node: Node, parts: list[frozenset[str]]) -> frozenset[str]:
    if isinstance(node, Tensor):
        return frozenset((node.name,))
    if len(parts) == 1:
        return parts[0]
    return frozenset().union(*parts)


def _bottom_up(node: Node, key: str, combine: Callable[[Node, list[T]], T]) -> T:
    """``combine(node, [results of its children])``, cached on every node under ``key``; iterative, so a deep
    tree needs no deep recursion, and a shared subtree is visited once."""
    cache = memo(node)
    found = cache.get(key, _MISSING)
    if found is not _MISSING:
        return found
    parts = children(node)
    known = [c._memo.get(key, _MISSING) if c._memo is not None else _MISSING for c in parts]
    if _MISSING not in known:  # the common case: a new node over known parts
        found = cache[key] = combine(node, known)
        return found
    stack = [node]
    while stack:
        n = stack[-1]
        cache = memo(n)
        if key in cache:
            stack.pop()
            continue
        parts = children(n)
        pending = [c for c in parts if c._memo is None or key not in c._memo]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        cache[key] = combine(n, [memo(c)[key] for c in parts])
    return memo(node)[key]


def children(node: Node) -> tuple[Node, ...]:
    """The sub-nodes of ``node``."""
    return _CHILDREN[type(node)](node)


_CHILDREN: dict[type, Callable[[Any], tuple[Node, ...]]] = {
    Mul: attrgetter("factors"),
    Add: attrgetter("terms"),
    Func: lambda n: (n.arg,),
    Pow: lambda n: (n.base,),
    Sum: lambda n: (n.body,),
    Op: lambda n: (n.arg,),
    Number: lambda n: (),
    Tensor: lambda n: (),
    Delta: lambda n: (),
}


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
    if isinstance(node, Op):
        return Op(node.name, node.indices, parts[0])
    return node


def body_of(node: Node) -> Node:
    """The one sub-node of a Σ or an operator."""
    return node.body if isinstance(node, Sum) else node.arg  # type: ignore[attr-defined]


def rename_summed(node: Node, avoid: set[str] | frozenset[str]) -> Node:
    """``node`` (a Σ or a binding operator) with those of its bound indices that are in ``avoid`` renamed to fresh
    names."""
    clash = [j for j in bound_indices(node) if j in avoid]
    if not clash:
        return node
    new = fresh(set(avoid) | all_indices(node) | tensor_names(node), len(clash), SUMMED_ORDER)
    mapping = dict(zip(clash, new))
    indices = tuple(sorted(mapping.get(j, j) for j in node.indices))  # type: ignore[attr-defined]
    return with_bound(node, indices, rename(body_of(node), mapping))  # type: ignore[arg-type]


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
    return _rename(node, {a: b for a, b in mapping.items() if a != b}, {})


def _rename(node: Node, mapping: dict[str, str], done: dict[Node, Node]) -> Node:
    if node.free.isdisjoint(mapping):
        return node
    found = done.get(node)
    if found is not None:
        return found
    if isinstance(node, Tensor):
        new: Node = Tensor(node.name, tuple(mapping.get(i, i) for i in node.indices))
    elif isinstance(node, Delta):
        idx = tuple(mapping.get(i, i) for i in node.indices)
        new = Delta((idx[0],)) if len(idx) == 2 and idx[0] == idx[1] else Delta(idx)
    elif bound_indices(node):
        moved = rename_summed(node, set(mapping.values()))
        own = bound_indices(moved)
        inner = {a: b for a, b in mapping.items() if a not in own}  # bound names are not renamed
        body = _rename(body_of(moved), inner, done if len(inner) == len(mapping) else {})
        new = with_bound(moved, own, body)  # type: ignore[arg-type]
    elif isinstance(node, Op):
        new = Op(node.name, tuple(mapping.get(i, i) for i in node.indices), _rename(node.arg, mapping, done))
    else:
        new = rebuild(node, tuple(_rename(c, mapping, done) for c in children(node)))
    done[node] = new
    return new


def origin(node: Node, index: str, _seen: frozenset[str] = frozenset()) -> tuple[str, int] | None:
    """A tensor axis that has the free ``index`` of ``node``, directly or through deltas: (name, axis)."""
    if index not in node.free or index in _seen:
        return None
    if isinstance(node, Tensor):
        return node.name, node.indices.index(index)
    inner = _seen - set(bound_indices(node))  # a Σ's own i is another index
    for child in children(node):
        found = origin(child, index, inner)
        if found is not None:
            return found
    if isinstance(node, Mul):
        for d in _joins(node):
            if index in d.indices:
                partner = d.indices[1] if d.indices[0] == index else d.indices[0]
                found = origin(node, partner, _seen | {index})
                if found is not None:
                    return found
    return None


def _joins(node: Node) -> Iterator[Delta]:
    """The two-index deltas inside ``node`` (in a factor, a power, a function: δ_ij^0 and sigmoid(δ_ij) join i and
    j as δ_ij does) whose indices are ``node``'s own, not bound by a Σ on the way."""
    stack: list[tuple[Node, frozenset[str]]] = [(node, frozenset())]
    while stack:
        n, bound = stack.pop()
        if isinstance(n, Delta):
            if len(n.indices) == 2 and not bound & set(n.indices):
                yield n
        elif bound_indices(n):
            stack.append((body_of(n), bound | set(bound_indices(n))))
        else:
            stack.extend((c, bound) for c in children(n))


def witness(body: Node, index: str) -> Node | None:
    """1 along ``index``, made from a tensor of ``body`` that carries it, so it knows the index's length.

    ``T_pj^0`` when T's other indices are free in ``body``; ``(Σ_i T_pi^0)^0`` when T also carries indices
    that ``body`` sums (then they must stay bound inside the witness).
    """
    from fractions import Fraction

    zero = Fraction(0)
    carrier: Node | None = next((t for t in tensors(body) if index in t.indices), None)
    if carrier is None:  # only through a delta (Σ_j δ_ij u_j): the smallest part of body that knows the length
        carrier = _knows(body, index)
        if carrier is None:
            return None
    inner = set(carrier.free) - body.free
    if not inner:
        return Pow(carrier, zero)
    return Pow(Sum(tuple(sorted(inner)), Pow(carrier, zero)), zero)


def _knows(node: Node, index: str) -> Node | None:
    """The deepest part of ``node`` with ``index`` free whose length a tensor gives through deltas, or None."""
    if index not in node.free:
        return None
    for child in children(node):
        found = _knows(child, index)
        if found is not None:
            return found
    return node if origin(node, index) is not None else None


def tensors(node: Node) -> Iterator[Tensor]:
    """Every tensor occurrence in ``node``."""
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Tensor):
            yield n
        elif not isinstance(n, (Number, Delta)):
            stack.extend(children(n))


def share(node: Node) -> Node:
    """``node`` with equal subtrees made one object, so that the work cached on nodes (derivatives, simplified
    forms, sort keys) is done once for all the copies: ``f + f + ... + f`` as parsed holds n separate copies."""
    table: dict[Node, Node] = {}
    done: dict[int, Node] = {}  # by identity: every node stays alive in ``node`` meanwhile
    stack = [node]
    while stack:
        n = stack[-1]
        if id(n) in done:
            stack.pop()
            continue
        parts = children(n)
        pending = [c for c in parts if id(c) not in done]
        if pending:
            stack.extend(pending)
            continue
        stack.pop()
        new = rebuild(n, tuple(done[id(c)] for c in parts))
        done[id(n)] = table.setdefault(new, new)
    return done[id(node)]


def summed_indices(node: Node) -> frozenset[str]:
    """The indices that the Σs inside ``node`` bind (cached on each node)."""
    return _bottom_up(node, "summed", _summed_of)[0]


def _summed_of(node: Node, parts: list[tuple[frozenset[str], bool]]) -> tuple[frozenset[str], bool]:
    """The indices Σs in ``node`` bind, and whether one of them shadows another (``Σ_i (... Σ_i ...)``)."""
    shadows = any(shadow for _, shadow in parts)
    own = bound_indices(node)
    if own:
        inner = parts[0][0]
        return inner.union(own), shadows or not inner.isdisjoint(own)
    if len(parts) == 1:
        return parts[0]
    return frozenset().union(*(summed for summed, _ in parts)), shadows


def separate(node: Node, scope: frozenset[str]) -> Node:
    """``node`` with every summed index renamed where it repeats a name visible around it (``scope``)."""
    return _separate(node, scope, {})


def _separate(node: Node, scope: frozenset[str], done: dict[tuple[Node, frozenset[str]], Node]) -> Node:
    summed, shadows = _bottom_up(node, "summed", _summed_of)
    if not shadows and summed.isdisjoint(scope):
        return node
    found = done.get((node, scope))
    if found is not None:
        return found
    if bound_indices(node):
        moved = rename_summed(node, scope)
        own = bound_indices(moved)
        body = _separate(body_of(moved), scope | frozenset(own), done)
        new = moved if body is body_of(moved) else with_bound(moved, own, body)  # type: ignore[arg-type]
    else:
        new = rebuild(node, tuple(_separate(c, scope, done) for c in children(node)))
    done[(node, scope)] = new
    return new


def sum_by_terms(node: Node) -> list[tuple[Node, tuple[str, ...]]] | None:
    """``Σ_J (t1 + t2 + ...)`` where a term lacks some of J, as its terms summed one by one: each term Σ-ed over
    the indices of J it has, with the indices it lacks (whose lengths multiply it). For evaluation: the sum of a
    term constant along n is n times the term, never the term broadcast along n and then summed. None for any
    other node."""
    if not isinstance(node, Sum):
        return None
    body = node.body
    if isinstance(body, Mul):  # Σ_n r_n^0 (a + b_n): a factor that is 1 everywhere (a size witness) multiplies nothing
        sums = [f for f in body.factors if isinstance(f, Add)]
        if len(sums) != 1 or not all(f is sums[0] or _is_ones(f) for f in body.factors):
            return None
        body = sums[0]
    if not isinstance(body, Add):
        return None
    summed = frozenset(node.indices)
    if all(summed <= t.free for t in body.terms):
        return None
    out: list[tuple[Node, tuple[str, ...]]] = []
    for t in body.terms:
        own = tuple(j for j in node.indices if j in t.free)
        if own and isinstance(t, Sum) and not set(own) & set(t.indices):  # one Σ: Σ_n Σ_ij is one contraction
            t, own = t.body, tuple(sorted((*own, *t.indices)))
        out.append((Sum(own, t) if own else t, tuple(j for j in node.indices if j not in t.free)))
    out.sort(key=lambda part: len(part[1]))  # terms that carry the indices first (they give the lengths)
    return out


def _is_ones(node: Node) -> bool:
    """A factor that is 1 everywhere: a size witness ``x_p^0`` or a one-index delta."""
    return (isinstance(node, Pow) and node.exponent == 0) or (isinstance(node, Delta) and len(node.indices) == 1)
