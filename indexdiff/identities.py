"""Operator identities and the naive spellings that become operators, for the simplifier and the parser.

Naive spellings (recognized where they are parsed, and in derivatives):
``log(sum_j(exp(u)))`` is ``logsumexp_j(u)``; ``exp(u - logsumexp_k(u'))`` with u' = u renamed j -> k is
``softmax_j(u)`` (so is ``exp(u_ij) / sum_k(exp(u_ik))``, through the simplifier's softmax rewrite);
``log(softmax_j(u))`` is ``u - logsumexp_j(u)`` (stable log-softmax); ``sum_j(x_ij) / δ_jj`` is ``mean_j(x_ij)``.

Identities: softmax rows sum to one (``Σ_j softmax_j(u) = 1``), ``Σ_j inv(M)_ij M_jk = δ_ik``,
``logdet(inv(M)) = -logdet(M)``, ``det(inv(M)) = det(M)^-1``, ``inv(inv(M)) = M``; a mean, max or min over an
index its argument lacks is the argument; a mean is linear and contracts a delta that pins its index,
``mean_i(δ_bi u_ic) = u_bc / Σ_i T_ic^0`` with T a tensor carrying i (the length n_i in one pass over T).
"""

from __future__ import annotations

from fractions import Fraction
from itertools import permutations

from .canonical import canonical
from .expr import Add, Delta, Func, Mul, Node, Number, Op, Pow, Sum, negate
from .names import children, rebuild, rename, tensors, witness

__all__ = ["operator", "function", "contract", "recognize", "mergeable"]


def operator(name: str, indices: tuple[str, ...], arg: Node) -> Node:
    """The operator ``name`` over ``indices`` of the (simplified) ``arg``, by the identities above."""
    if name in ("mean", "max", "min"):
        kept = tuple(i for i in indices if i in arg.free)
        if not kept:
            return arg
        indices = kept
    if name == "mean" and isinstance(arg, (Mul, Add, Sum)):
        return _mean_of_terms(indices, arg.terms if isinstance(arg, Add) else (arg,))
    inner = arg.name if isinstance(arg, Op) else None
    if inner == "inv" and isinstance(arg, Op):
        if name == "logdet":
            return negate(Op("logdet", indices, arg.arg))
        if name == "det":
            return Pow(Op("det", indices, arg.arg), Fraction(-1))
        if name == "inv":
            return arg.arg
    return Op(name, indices, arg)


def _mean_of_terms(indices: tuple[str, ...], terms: tuple[Node, ...]) -> Node:
    """A mean is linear: over a sum it is the sum of the terms' means, and factors constant along its indices come
    out (``mean_j(a_i x_ij) = a_i mean_j(x_ij)``). A delta that pins one of its indices to an index outside the
    mean contracts (``mean_j(x_ij δ_jl) = x_il / n_j``), so no term keeps a delta times the rest inside the mean,
    which would evaluate as an array one axis larger. The terms are split only when one of them contracts; those
    pinning the same indices share one factor 1/n (``_reciprocal_length``)."""
    arg = terms[0] if len(terms) == 1 else Add(terms)
    means = [_mean_of_product(indices, t) for t in terms]
    if len(terms) > 1 and not any(pins for pins, _ in means):
        return Op("mean", indices, arg)
    groups: dict[tuple[Delta, ...], list[Node]] = {}
    for pins, rest in means:
        groups.setdefault(pins, []).append(rest)
    out = []
    for pins, rests in groups.items():
        total = rests[0] if len(rests) == 1 else Add(tuple(rests))
        out.append(Mul((*_reciprocal_length(arg, indices, pins), total)) if pins else total)
    return out[0] if len(out) == 1 else Add(tuple(out))


def _mean_of_product(indices: tuple[str, ...], term: Node) -> tuple[tuple[Delta, ...], Node]:
    """The deltas that pin indices of the mean in ``term`` (mean index first), and the mean over the other indices
    of the rest with those pinned renamed, factors constant along the mean's indices outside. Through a Σ of the
    term: ``mean_i(Σ_j δ_bi x_ij) = Σ_j x_bj / n_i``."""
    if isinstance(term, Sum):
        pins, rest = _mean_of_product(indices, term.body)
        if pins:
            return pins, Sum(term.indices, rest)
    factors = list(term.factors) if isinstance(term, Mul) else [term]
    pins: list[Delta] = []
    left = list(indices)
    pinned = True
    while pinned:
        pinned = False
        for k, f in enumerate(factors):
            if not (isinstance(f, Delta) and len(f.indices) == 2 and len(set(f.indices) & set(left)) == 1):
                continue
            j, other = f.indices if f.indices[0] in left else f.indices[::-1]
            rest = factors[:k] + factors[k + 1 :]
            if not all(mergeable(g, j, other) for g in rest):
                continue
            pins.append(Delta((j, other)))
            factors = [rename(g, {j: other}) for g in rest] or [Delta((other,))]
            left.remove(j)
            pinned = True
            break
    kept = tuple(i for i in left if any(i in f.free for f in factors))
    outside = [f for f in factors if f.free.isdisjoint(kept)]
    inside = [f for f in factors if not f.free.isdisjoint(kept)]
    if inside and (pins or outside):
        outside.append(Op("mean", kept, inside[0] if len(inside) == 1 else Mul(tuple(inside))))
    elif inside:
        return (), Op("mean", kept, term)
    return tuple(sorted(pins, key=lambda d: d.indices)), outside[0] if len(outside) == 1 else Mul(tuple(outside))


def _reciprocal_length(arg: Node, indices: tuple[str, ...], pins: tuple[Delta, ...]) -> list[Node]:
    """Π 1/n_j over the indices j the deltas ``pins`` pin in the mean over ``indices`` of ``arg``:
    ``(Σ_J T_Jc^0)^-1`` from a tensor of ``arg`` that carries the indices J (its other indices that are not free
    around the mean summed inside a witness, ``(Σ_k T_jk^0)^0``), one pass over T; ``mean_j(δ_jl)`` for an index
    no tensor carries."""
    zero = Fraction(0)
    around = arg.free - set(indices)
    left = {d.indices[0]: d for d in pins}
    out: list[Node] = []
    while left:
        carriers = [t for t in tensors(arg) if not left.keys().isdisjoint(t.indices)]
        if not carriers:
            out.extend(Op("mean", (j,), left[j]) for j in sorted(left))
            break
        carrier = min(carriers, key=lambda t: (-len(left.keys() & set(t.indices)), len(set(t.indices)), str(t)))
        own = tuple(sorted(left.keys() & set(carrier.indices)))
        inner = tuple(sorted(set(carrier.indices) - set(own) - around))
        one = Pow(carrier, zero) if not inner else Pow(Sum(inner, Pow(carrier, zero)), zero)
        out.append(Pow(Sum(own, one), Fraction(-1)))
        for j in own:
            del left[j]
    return out


def function(name: str, arg: Node) -> Node | None:
    """``name(arg)`` as an operator when it is a naive spelling of one, else None."""
    if name == "log" and isinstance(arg, Sum) and isinstance(arg.body, Func) and arg.body.name == "exp":
        return Op("logsumexp", arg.indices, arg.body.arg)
    if name == "log" and isinstance(arg, Op) and arg.name == "softmax":
        return Add((arg.arg, negate(Op("logsumexp", arg.indices, arg.arg))))
    if name == "exp" and isinstance(arg, Add):
        return _softmax(arg)
    return None


def _softmax(arg: Add) -> Node | None:
    """``exp(u - logsumexp_k(u'))`` -> ``softmax_j(u)`` when u' is u with j renamed to k."""
    for n, term in enumerate(arg.terms):
        lse = _negated_logsumexp(term)
        if lse is None:
            continue
        rest = arg.terms[:n] + arg.terms[n + 1 :]
        u = rest[0] if len(rest) == 1 else Add(rest)
        own = tuple(sorted(u.free - lse.free))
        if len(own) != len(lse.indices) or not lse.free <= u.free:
            continue
        target = canonical(u)
        for order in permutations(own):
            if canonical(rename(lse.arg, dict(zip(lse.indices, order)))) == target:
                return Op("softmax", own, u)
    return None


def _negated_logsumexp(term: Node) -> Op | None:
    if isinstance(term, Mul) and len(term.factors) == 2 and term.factors[0] == Number(Fraction(-1)):
        inner = term.factors[1]
        if isinstance(inner, Op) and inner.name == "logsumexp":
            return inner
    return None


def contract(summed: frozenset[str], factors: list[Node]) -> tuple[frozenset[str], list[Node]] | None:
    """Σ_summed of the product ``factors`` by the identities over a sum (rows of a softmax sum to one, an inverse
    times its matrix is δ); None when none applies."""
    for k, f in enumerate(factors):
        if isinstance(f, Op) and f.name == "softmax" and set(f.indices) <= summed:
            rest = factors[:k] + factors[k + 1 :]
            if all(set(f.indices).isdisjoint(g.free) for g in rest):
                gone = Sum(f.indices, f.arg)  # the rows' indices are summed away: witnesses keep them bound
                keep = [w for i in sorted(gone.free) if (w := witness(gone, i)) is not None]
                return summed - set(f.indices), rest + keep
        if isinstance(f, Op) and f.name == "inv":
            found = _inverse_pair(summed, factors, k)
            if found is not None:
                return found
    return None


def _inverse_pair(summed: frozenset[str], factors: list[Node], k: int) -> tuple[frozenset[str], list[Node]] | None:
    """``Σ_j inv(M)_xj M_jy = δ_xy`` (in either order, M's rows either index)."""
    f = factors[k]
    assert isinstance(f, Op)
    if len(f.free) != 2:
        return None
    for j in sorted(f.free & summed):
        (x,) = f.free - {j}
        others = [n for n, g in enumerate(factors) if n != k and j in g.free]
        if len(others) != 1:
            continue
        g = factors[others[0]]
        if len(g.free) != 2 or x in g.free:
            continue
        (y,) = g.free - {j}
        if canonical(g) == canonical(rename(f.arg, {x: j, j: y})):
            rest = [h for n, h in enumerate(factors) if n not in (k, others[0])]
            return summed - {j}, [*rest, Delta((x, y))]
    return None


def _ones_sum(node: Node) -> bool:
    """Whether ``node`` is Σ_k δ_k (a length, as ``δ_kk`` parses)."""
    return isinstance(node, Sum) and len(node.indices) == 1 and node.body == Delta(node.indices)


def _mean(node: Mul) -> Node | None:
    """``Σ_J x / (Σ_k δ_k)...`` with one length per summed index -> ``mean_J(x)``."""
    lengths = [f for f in node.factors if isinstance(f, Pow) and f.exponent == -1 and _ones_sum(f.base)]
    sums = [f for f in node.factors if isinstance(f, Sum) and len(f.indices) == len(lengths)]
    if not lengths or len(sums) != 1:
        return None
    rest = [f for f in node.factors if f not in lengths and f is not sums[0]]
    mean = Op("mean", sums[0].indices, sums[0].body)
    return mean if not rest else Mul((*rest, mean))


def _softmax_product(node: Mul) -> Node | None:
    """``exp(u) / Σ_k exp(u')`` (u' = u with j renamed to k) -> ``softmax_j(u)``."""
    for p in node.factors:
        if isinstance(p, Pow) and p.exponent == -1 and isinstance(p.base, Sum):
            body = p.base.body
            if not (isinstance(body, Func) and body.name == "exp"):
                continue
            lse = Op("logsumexp", p.base.indices, body.arg)
            for e in node.factors:
                if isinstance(e, Func) and e.name == "exp":
                    found = _softmax(Add((e.arg, negate(lse))))
                    if found is not None:
                        rest = [f for f in node.factors if f is not p and f is not e]
                        return found if not rest else Mul((*rest, found))
    return None


def recognize(node: Node) -> Node:
    """``node`` with the naive spellings of operators (module docstring) made operators, bottom-up."""
    parts = children(node)
    if parts:
        node = rebuild(node, tuple(recognize(c) for c in parts))
    if isinstance(node, Func):
        return function(node.name, node.arg) or node
    if isinstance(node, Mul):
        return _softmax_product(node) or _mean(node) or node
    return node


def mergeable(node: Node, a: str, b: str) -> bool:
    """Whether renaming ``a`` to ``b`` in ``node`` means the diagonal (a = b) of its value, as it does for tensors,
    products and element-wise functions. Not where an operator works along a or b: for ``inv(M_ab)`` and
    ``softmax_b(z_ab)`` the diagonal is not the operator of the argument's diagonal, so a delta joining a and b
    must stay a delta there."""
    stack = [node]
    while stack:
        n = stack.pop()
        if a not in n.free or b not in n.free:
            continue
        if isinstance(n, Op) and (n.name == "inv" or a in n.indices or b in n.indices):
            return False
        stack.extend(children(n))
    return True
