"""The canonical form: flattened products and sums, sorted operands, summed indices named by position.

Two nodes that differ only in the order of factors or terms, in nesting of products, sums or Σs, or in the
names of summed indices have the same canonical form.  It is what Expr equality and like-term merging compare.
"""

from __future__ import annotations

from contextvars import ContextVar
from fractions import Fraction
from typing import Any

from .expr import Add, Delta, Func, Mul, Node, Number, Op, Pow, Sum, Tensor, bound_indices, exact_power, memo, product
from .names import SUMMED_ORDER, all_indices, body_of, children, fresh, rename, separate, tensor_names

__all__ = ["canonical", "resorted", "flatten", "sort_key", "hashed_key", "HashedKey", "SYMMETRIC", "slot"]

#: The tensors declared symmetric (``S_ij = S_ji``) for the forms computed in this context (``symmetric.py``
#: sets it). A symmetric tensor's key sorts the colours of its two indices, as a delta's does, and its canonical
#: form (summed indices renamed) sorts the indices themselves: ``Σ_i S_ik x_i`` and ``Σ_j S_kj x_j`` are then one
#: form, so like terms merge and equality sees through the symmetry. Results cached on nodes are kept apart per
#: declaration (``slot``).
SYMMETRIC: ContextVar[frozenset[str]] = ContextVar("indexdiff_symmetric", default=frozenset())


def slot(name: str) -> Any:
    """The memo key for a result that depends on the symmetric declaration in force: ``name`` without one."""
    symmetric = SYMMETRIC.get()
    return (name, symmetric) if symmetric else name


_MASK = "?"
# Display order of factors in a product: numbers, tensors, deltas, powers, functions, sums, products.
_TAG = {Number: 0, Tensor: 1, Delta: 2, Pow: 3, Func: 4, Op: 5, Add: 6, Mul: 7, Sum: 8}


def sort_key(node: Node, masked: frozenset[str] | dict[str, str] = frozenset()) -> tuple[Any, ...]:
    """An ordering key that ignores the names of summed indices.

    ``masked`` indices read as ``?``, or as the colour a dict gives them (see ``_colors``).
    """
    colors = masked if isinstance(masked, dict) else dict.fromkeys(masked, _MASK)
    return _key(node, colors)


def _key(node: Node, colors: dict[str, str]) -> tuple[Any, ...]:
    # Only the colours of the node's own free indices matter (a Σ inside masks its own): with none of them,
    # the key is the node's own, cached on it.
    if not colors or node.free.isdisjoint(colors):
        cache = memo(node)
        key = slot("key")
        found = cache.get(key)
        if found is None:
            found = cache[key] = _make_key(node, {})
        return found
    return _make_key(node, colors)


def _make_key(node: Node, colors: dict[str, str]) -> tuple[Any, ...]:
    tag = _TAG[type(node)]
    if isinstance(node, Number):
        return (tag, node.value)
    if isinstance(node, Tensor):
        own = tuple(colors.get(i, i) for i in node.indices)
        return (tag, node.name, len(own), tuple(sorted(own)) if node.name in SYMMETRIC.get() else own)
    if isinstance(node, Delta):
        return (tag, len(node.indices), tuple(sorted(colors.get(i, i) for i in node.indices)))
    if isinstance(node, Func):
        return (tag, node.name, _key(node.arg, colors))
    if isinstance(node, Pow):
        return (tag, _key(node.base, colors), node.exponent)
    if isinstance(node, (Mul, Add)) and not colors:
        return (tag, tuple(_key(f, colors) for f in _sorted_parts(node)))
    if isinstance(node, (Mul, Add)):
        return (tag, tuple(sorted(_key(f, colors) for f in children(node))))
    if isinstance(node, Sum):
        return (tag, len(node.indices), _key(node.body, {**colors, **dict.fromkeys(node.indices, _MASK)}))
    if isinstance(node, Op) and bound_indices(node):
        inner = {**colors, **dict.fromkeys(node.indices, _MASK)}
        return (tag, node.name, len(node.indices), _key(node.arg, inner))
    if isinstance(node, Op):
        return (tag, node.name, tuple(sorted(colors.get(i, i) for i in node.indices)), _key(node.arg, colors))
    raise AssertionError(node)


class Order:
    """Orders nodes as their sort keys (no index masked) do, by a comparison cached on each node pair: comparing
    nested key tuples would descend the whole depth of two deep subtrees again in every sort."""

    __slots__ = ("node",)

    def __init__(self, node: Node) -> None:
        self.node = node

    def __lt__(self, other: Order) -> bool:
        return _compare(self.node, other.node) < 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Order) and _compare(self.node, other.node) == 0


def _sign(a: Any, b: Any) -> int:
    return (a > b) - (a < b)


def _sorted_parts(node: Node) -> tuple[Node, ...]:
    """A product's factors or a sum's terms in key order (cached on the node)."""
    cache = memo(node)
    key = slot("sorted")
    found = cache.get(key)
    if found is None:
        found = cache[key] = tuple(sorted(children(node), key=Order))
    return found


def _compare(a: Node, b: Node) -> int:
    """-1, 0 or 1 as ``sort_key(a)`` is less than, equal to or greater than ``sort_key(b)``."""
    if a is b:
        return 0
    ta, tb = _TAG[type(a)], _TAG[type(b)]
    if ta != tb:
        return -1 if ta < tb else 1
    if not isinstance(a, (Func, Pow, Mul, Add)):
        return _sign(_key(a, {}), _key(b, {}))
    cache = memo(a)
    key = (slot("order"), b)
    found = cache.get(key)
    if found is None:
        found = cache[key] = _compare_parts(a, b)
    return found


def _compare_parts(a: Node, b: Node) -> int:
    if isinstance(a, Func):
        assert isinstance(b, Func)
        return _sign(a.name, b.name) or _compare(a.arg, b.arg)
    if isinstance(a, Pow):
        assert isinstance(b, Pow)
        return _compare(a.base, b.base) or _sign(a.exponent, b.exponent)
    pa, pb = _sorted_parts(a), _sorted_parts(b)
    for x, y in zip(pa, pb):
        found = _compare(x, y)
        if found:
            return found
    return _sign(len(pa), len(pb))


class HashedKey:
    """Stands for a node's sort key (summed-index names ignored), with a hash made from its children's: hashing
    the nested key tuple itself would walk its whole depth on every dict lookup. The key tuple is only built
    when two hashes are equal."""

    __slots__ = ("node", "_hash")

    def __init__(self, node: Node, hashed: int) -> None:
        self.node = node
        self._hash = hashed

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, HashedKey)
            and self._hash == other._hash
            and (self.node is other.node or _key(self.node, {}) == _key(other.node, {}))
        )


def hashed_key(node: Node) -> HashedKey:
    """``sort_key(node)``, hashable in O(1) (its hash cached on each node)."""
    return HashedKey(node, _key_hash(node))


def _key_hash(node: Node) -> int:
    cache = memo(node)
    key = slot("key hash")
    found = cache.get(key)
    if found is None:
        if isinstance(node, Tensor) and node.name in SYMMETRIC.get():
            found = hash((node.name, tuple(sorted(node.indices))))
        elif isinstance(node, (Tensor, Number)):
            found = node._hash  # the key holds just the node's fields
        elif isinstance(node, Func):
            found = hash((4, node.name, _key_hash(node.arg)))
        elif isinstance(node, Pow):
            found = hash((3, node.exponent, _key_hash(node.base)))
        elif isinstance(node, (Mul, Add)):
            found = hash((_TAG[type(node)], tuple(sorted(_key_hash(p) for p in children(node)))))
        else:
            found = hash(_key(node, {}))
        cache[key] = found
    return found


def _colors(body: Node, summed: frozenset[str], rounds: int = 2) -> dict[str, str]:
    """A name-free description of each summed index: the tensors and positions it occurs at, refined by the
    descriptions of the indices it shares those tensors with. Factors that tie on masked keys (two ``A_??``) are
    then ordered by where their indices lead, not by how the input happened to be written."""
    colors = dict.fromkeys(summed, _MASK)
    symmetric = SYMMETRIC.get()
    for _ in range(rounds):
        seen: dict[str, list[tuple[str, int]]] = {j: [] for j in summed}
        stack = [body]
        while stack:
            n = stack.pop()
            if isinstance(n, (Tensor, Delta)):
                described = repr(_key(n, colors))
                for position, i in enumerate(n.indices):
                    if i in seen:
                        unordered = isinstance(n, Delta) or n.name in symmetric
                        seen[i].append((described, 0 if unordered else position))
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
    return (coef < 0, isinstance(node, Number), Order(node), coef)


def flatten(node: Node) -> Node:
    """Products and sums spliced, numbers in a product multiplied, nested Σs merged, whole powers distributed
    (cached on each node)."""
    cache = memo(node)
    found = cache.get("flat")
    if found is None:
        found = _flatten(node)
        cache["flat"] = node if found == node else found
    return cache["flat"]


def _flatten(node: Node) -> Node:
    if isinstance(node, Func):
        return Func(node.name, flatten(node.arg))
    if isinstance(node, Op):
        return Op(node.name, node.indices, flatten(node.arg))
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
    if isinstance(node, Tensor) and node.name in SYMMETRIC.get():
        out.extend(i for i in sorted(node.indices, key=lambda i: masked.get(i, i)) if i in wanted and i not in out)
    elif isinstance(node, (Tensor, Delta)):
        indices = node.indices if isinstance(node, Tensor) else sorted(node.indices, key=lambda i: i in wanted)
        out.extend(i for i in indices if i in wanted and i not in out)
    elif isinstance(node, Op) and bound_indices(node):
        inner = {**masked, **dict.fromkeys(node.indices, _MASK)}
        _first_appearance(node.arg, wanted - set(node.indices), inner, out)
    elif isinstance(node, (Func, Op)):
        _first_appearance(node.arg, wanted, masked, out)
    elif isinstance(node, Pow):
        _first_appearance(node.base, wanted, masked, out)
    elif isinstance(node, (Mul, Add)):
        parts = node.factors if isinstance(node, Mul) else node.terms
        for p in sorted(parts, key=lambda p: sort_key(p, masked)):
            _first_appearance(p, wanted, masked, out)
    elif isinstance(node, Sum):
        _first_appearance(node.body, wanted - set(node.indices), {**masked, **dict.fromkeys(node.indices, _MASK)}, out)


def _canon(node: Node, scope: frozenset[str], rename_sums: bool, done: dict[Any, Node]) -> Node:
    if isinstance(node, Tensor) and rename_sums and node.name in SYMMETRIC.get() and node.indices[1] < node.indices[0]:
        return Tensor(node.name, node.indices[::-1])  # summed indices have their canonical names by now
    if isinstance(node, (Number, Tensor)):
        return node
    found = done.get((node, scope))
    if found is None:
        found = _canon_node(node, scope, rename_sums, done)
        done[(node, scope)] = node if found == node else found
    return done[(node, scope)]


def _canon_node(node: Node, scope: frozenset[str], rename_sums: bool, done: dict[Any, Node]) -> Node:
    if isinstance(node, Delta):
        return Delta(tuple(sorted(node.indices)))
    if isinstance(node, Func):
        return Func(node.name, _canon(node.arg, scope, rename_sums, done))
    if isinstance(node, Op) and not (rename_sums and bound_indices(node)):
        inner = scope | frozenset(node.indices) if bound_indices(node) else scope
        return Op(node.name, tuple(sorted(node.indices)), _canon(node.arg, inner, rename_sums, done))
    if isinstance(node, Pow):
        return Pow(_canon(node.base, scope, rename_sums, done), node.exponent)
    if isinstance(node, Mul):
        return Mul(tuple(sorted((_canon(f, scope, rename_sums, done) for f in node.factors), key=Order)))
    if isinstance(node, Add):
        return Add(tuple(sorted((_canon(t, scope, rename_sums, done) for t in node.terms), key=_term_key)))
    if isinstance(node, Sum) and not rename_sums:
        return Sum(node.indices, _canon(node.body, scope | frozenset(node.indices), False, done))
    if bound_indices(node):
        summed = frozenset(bound_indices(node))
        inside = body_of(node)
        order: list[str] = []
        _first_appearance(inside, summed, _colors(inside, summed), order)
        order += sorted(summed - set(order))
        avoid = scope | (inside.free - summed)
        # Move the summed indices out of the way first, so the canonical names cannot collide with them.
        temp = fresh(avoid | all_indices(inside), len(order), "ιοκλμνξπρστυφχψω")
        body = rename(inside, dict(zip(order, temp)))
        names = fresh(avoid | tensor_names(inside), len(order), SUMMED_ORDER)  # never a scalar's name: k x_k
        body = rename(body, dict(zip(temp, names)))
        body = _canon(body, scope | frozenset(names), True, done)
        return Sum(tuple(sorted(names)), body) if isinstance(node, Sum) else Op(node.name, tuple(sorted(names)), body)  # type: ignore[attr-defined]
    return node


def resorted(node: Node, scope: frozenset[str] = frozenset()) -> Node:
    """``canonical(node, scope, rename=False)`` for a node that was in that form before its tensors were renamed
    (flat and separated still): only the operand order, which follows the names, is made again."""
    return _canon(node, scope | node.free, False, {})


def canonical(node: Node, scope: frozenset[str] = frozenset(), rename: bool = True) -> Node:
    """The canonical form of ``node``; ``scope`` holds the index names visible around it (kept as they are).

    With ``rename=False`` summed indices keep their names: only the structure and operand order are canonical.
    """
    scope = scope | node.free
    cache = memo(node)
    key = (slot("canonical"), scope, rename)
    found = cache.get(key)
    if found is None:
        found = cache[key] = _canon(flatten(separate(node, scope)), scope, rename, {})
    return found
