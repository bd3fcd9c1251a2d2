"""Statement Jacobians for program derivatives (forward and reverse mode), with forward values reused by name.

``jacobian(s, h, new)`` is ∂s/∂h_new for one statement ``s``, simplified. ``reuse`` then writes every part of a
derivative that a forward statement computed by that statement's name: the adjoint of ``P_ij = softmax_j(S_ij)``
is written with P itself, ``dS_ij = P_ij dP_ij - P_ij P_ik dP_ik``, never a recomputed softmax.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import permutations

from .canonical import canonical
from .diff import derivative, with_indices
from .expr import Expr, Func, Node, Number, Op, Tensor, memo
from .names import all_indices, children, rebuild, rename, separate, tensor_names, tensors

__all__ = [
    "jacobian",
    "reuse",
    "forward_keys",
    "unique_name",
    "program_indices",
    "axis_origin",
    "tensor_shape",
    "rename_tensors",
]


def jacobian(s: Expr, name: str, new: tuple[str, ...], simplified: bool = True) -> Node:
    """∂s/∂name_new for a statement ``s``, simplified (or raw, for a caller that simplifies the expression it
    goes into); ``new`` must not clash with the indices of ``s``."""
    assert s.name is not None
    free = frozenset((*s.free, *new))
    raw = derivative(separate(s.node, free), name, new)
    return with_indices(raw, free) if simplified else raw


class ForwardKeys:
    """The forward statements' right-hand sides (free indices numbered by axis), for finding them in a derivative.
    A statement's key (a canonical form) is made the first time a subexpression that could equal it is looked up:
    most heads never are."""

    def __init__(self, statements: Iterable[Expr]) -> None:
        self.pending: dict[tuple[type, str | None, frozenset[str]], list[Expr]] = {}
        self.keys: dict[object, str] = {}
        for s in statements:
            if s.name is not None and not isinstance(s.node, Tensor) and len(s.free) <= 3:
                self.pending.setdefault(_head(s.node), []).append(s)

    def __bool__(self) -> bool:
        return bool(self.pending)

    def lookup(self, node: Node) -> str | None:
        """The name of the statement whose right-hand side ``node`` is, its free indices numbered in order."""
        head = _head(node)
        waiting = self.pending.get(head)
        if waiting is None:
            return None
        for s in waiting:  # keyed once, in program order (the first statement of a form names it)
            assert s.name is not None
            self.keys.setdefault(canonical(rename(s.node, {i: f"#{k}" for k, i in enumerate(s.free)})), s.name)
        waiting.clear()
        return self.keys.get(canonical(node))


def _head(node: Node) -> tuple[type, str | None, frozenset[str]]:
    """A cheap necessary condition for two nodes to be equal: their type, the function's name, the tensors."""
    name = node.name if isinstance(node, (Func, Op)) else None
    return type(node), name, tensor_names(node)


def forward_keys(statements: Iterable[Expr]) -> ForwardKeys:
    """The right-hand sides of ``statements``, for ``reuse``."""
    return ForwardKeys(statements)


def reuse(node: Node, forward: ForwardKeys) -> Node:
    """``node`` with every subexpression that is a forward statement's right-hand side replaced by its name:
    ``sigmoid(z_bi)`` becomes ``h_bi`` when ``h_bi = sigmoid(z_bi)`` was computed on the way forward."""
    if not forward:
        return node
    if len(node.free) <= 3 and not isinstance(node, (Tensor, Number)) and _head(node) in forward.pending:
        for order in permutations(sorted(node.free)):
            name = forward.lookup(rename(node, {i: f"#{k}" for k, i in enumerate(order)}))
            if name is not None:
                return Tensor(name, order)
    parts = children(node)
    return rebuild(node, tuple(reuse(p, forward) for p in parts)) if parts else node


def unique_name(base: str, taken: set[str]) -> str:
    """``base``, or ``base`` with a number appended, not in ``taken`` (which it is then added to)."""
    name, n = base, 1
    while name in taken:
        name, n = f"{base}{n}", n + 1
    taken.add(name)
    return name


def program_indices(statements: Sequence[Expr]) -> set[str]:
    """Every index letter any statement uses."""
    out: set[str] = set()
    for s in statements:
        out.update(s.free)
        out |= all_indices(s.node)
    return out


def axis_origin(
    name: str, axis: int, defined: Mapping[str, Expr], memo: dict[tuple[str, int], tuple[str, int]] | None = None
) -> tuple[str, int]:
    """Where the length of ``name``'s axis comes from: an input's axis when the statements lead to one (so that
    a derivative's index lengths need no statement it does not use), else the statement's own axis. ``memo``
    keeps the answers, so that following every statement of a program back is linear in its length."""
    memo = {} if memo is None else memo
    path: list[tuple[str, int]] = []
    at = (name, axis)
    while at not in memo and at[0] in defined and at not in path:
        path.append(at)
        s = defined[at[0]]
        found = s.origins.get(s.free[at[1]])
        if found is None:
            break
        at = found
    end = memo.get(at, at)
    for step in path:
        memo[step] = end
    return end


def tensor_shape(node: Node) -> tuple[Node, tuple[str, ...]]:
    """``node`` with its tensors named ``#0``, ``#1``, ... in the order ``tensors`` meets them, and their names in
    that order (cached on the node). Nodes equal up to the names of their tensors have equal shapes: the layers of
    a deep network do, and derive alike."""
    cache = memo(node)
    found = cache.get("tensor shape")
    if found is None:
        names = tuple(dict.fromkeys(t.name for t in tensors(node)))
        shape = rename_tensors(node, {n: f"#{k}" for k, n in enumerate(names)})
        found = cache["tensor shape"] = (shape, names)
    return found


def rename_tensors(node: Node, mapping: Mapping[str, str]) -> Node:
    """``node`` with the tensors named in ``mapping`` renamed (their indices as they are)."""
    done: dict[Node, Node] = {}

    def walk(n: Node) -> Node:
        found = done.get(n)
        if found is None:
            if isinstance(n, Tensor):
                found = Tensor(mapping[n.name], n.indices) if n.name in mapping else n
            else:
                parts = children(n)
                found = rebuild(n, tuple(walk(c) for c in parts)) if parts else n
            done[n] = found
        return found

    return walk(node)
