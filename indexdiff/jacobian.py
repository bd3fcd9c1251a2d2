"""Statement Jacobians for program derivatives (forward and reverse mode), with forward values reused by name.

``jacobian(s, h, new)`` is ∂s/∂h_new for one statement ``s``, simplified.  A softmax statement
``P_ij = exp(u_ij) / sum_k(exp(u_ik))`` differentiates as ``P_ij (∂u_ij - sum_k(P_ik ∂u_ik))``: its own name stands
for the softmax, so no derivative ever forms ``exp(u)`` alone or ``1/Σ exp`` (which overflow at large logits).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import permutations

from .canonical import canonical
from .diff import derivative, with_indices
from .expr import Add, Expr, Func, Mul, Node, Number, Pow, Sum, Tensor, negate
from .names import all_indices, children, fresh, rebuild, rename, separate, tensors

__all__ = ["jacobian", "reuse", "forward_keys", "unique_name", "program_indices", "axis_origin"]


def _softmax_axis(s: Expr, node: Node) -> tuple[Node, str] | None:
    """``(u, j)`` when ``node`` is ``exp(u) / sum_k(exp(u with j -> k))`` for a free index j of ``s``, else None."""
    if not isinstance(node, Mul) or len(node.factors) != 2:
        return None
    num = next((f for f in node.factors if isinstance(f, Func) and f.name == "exp"), None)
    den = next((f for f in node.factors if isinstance(f, Pow) and f.exponent == -1), None)
    if num is None or den is None or not isinstance(den.base, Sum) or len(den.base.indices) != 1:
        return None
    body = den.base.body
    if not isinstance(body, Func) or body.name != "exp":
        return None
    (k,) = den.base.indices
    u = num.arg
    for j in s.free:
        if j in u.free and j not in den.free:
            scope = frozenset(s.free)
            if canonical(rename(body.arg, {k: j}), scope) == canonical(u, scope):
                return u, j
    return None


def jacobian(s: Expr, name: str, new: tuple[str, ...], simplified: bool = True) -> Node:
    """∂s/∂name_new for a statement ``s``, simplified (or raw, for a caller that simplifies the expression it
    goes into); ``new`` must not clash with the indices of ``s``."""
    assert s.name is not None
    free = frozenset((*s.free, *new))
    node = separate(s.node, free)
    softmax = _softmax_axis(s, node)
    if softmax is None:
        raw = derivative(node, name, new)
    else:
        u, j = softmax
        du = derivative(u, name, new)
        (k,) = fresh(all_indices(node) | all_indices(du) | free, 1)
        moved = Tensor(s.name, tuple(k if i == j else i for i in s.free))
        mean = Sum((k,), Mul((moved, rename(du, {j: k}))))
        raw = Mul((Tensor(s.name, s.free), Add((du, negate(mean)))))
    return with_indices(raw, free) if simplified else raw


class ForwardKeys:
    """The forward statements' right-hand sides (free indices numbered by axis), for finding them in a derivative."""

    def __init__(self, statements: Iterable[Expr]) -> None:
        self.keys: dict[object, str] = {}
        self.heads: set[tuple[type, str | None, frozenset[str]]] = set()
        for s in statements:
            if s.name is not None and not isinstance(s.node, Tensor) and len(s.free) <= 3:
                key = canonical(rename(s.node, {i: f"#{k}" for k, i in enumerate(s.free)}))
                self.keys.setdefault(key, s.name)
                self.heads.add(_head(s.node))


def _head(node: Node) -> tuple[type, str | None, frozenset[str]]:
    """A cheap necessary condition for two nodes to be equal: their type, the function's name, the tensors."""
    return type(node), node.name if isinstance(node, Func) else None, frozenset(t.name for t in tensors(node))


def forward_keys(statements: Iterable[Expr]) -> ForwardKeys:
    """The right-hand sides of ``statements``, for ``reuse``."""
    return ForwardKeys(statements)


def reuse(node: Node, forward: ForwardKeys) -> Node:
    """``node`` with every subexpression that is a forward statement's right-hand side replaced by its name:
    ``sigmoid(z_bi)`` becomes ``h_bi`` when ``h_bi = sigmoid(z_bi)`` was computed on the way forward."""
    if not forward.keys:
        return node
    if len(node.free) <= 3 and not isinstance(node, (Tensor, Number)) and _head(node) in forward.heads:
        for order in permutations(sorted(node.free)):
            name = forward.keys.get(canonical(rename(node, {i: f"#{k}" for k, i in enumerate(order)})))
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
