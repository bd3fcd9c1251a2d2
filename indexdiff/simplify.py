"""Named rewrite rules, one table per node type, run bottom-up to a fixed point.

Delta contraction (``Σ_j A_ij δ_jk -> A_ik``), zero and one removal, exact constant folding, like powers
combined, sums distributed over their terms, like terms merged up to the names of summed indices, and two
stability rewrites (``exp(u) / (1 + exp(u)) -> sigmoid(u)``, ``log(1 + exp(u)) -> softplus(u)``,
``exp(u) / Σ_j exp(v) -> exp(u - log Σ_j exp(v))``).
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

from .canonical import canonical, slot
from .expr import ONE, ZERO, Add, Delta, Func, Mul, Node, Number, Op, Pow, Sum, Tensor, exact_power, memo, negate
from .identities import contract, function, mergeable, operator
from .liketerms import merged, product_of, split_coef, weight
from .names import UnionFind, all_indices, children, rename, rename_summed, tensors, witness
from .printer import check_numbers
from .trace import TRACE

__all__ = ["simplify", "ones"]

_MAX_PASSES = 60


def ones(indices: frozenset[str] | set[str]) -> Node:
    """1 broadcast over ``indices`` (a product of one-index deltas)."""
    deltas = tuple(Delta((i,)) for i in sorted(indices))
    if not deltas:
        return ONE
    return deltas[0] if len(deltas) == 1 else Mul(deltas)


# -- products --------------------------------------------------------------------------------------------------


def _flatten_mul(factors: list[Node]) -> list[Node]:
    out: list[Node] = []
    for f in factors:
        out.extend(f.factors if isinstance(f, Mul) else (f,))
    return out


def _pull_sum(factors: list[Node], coef: Fraction, given: list[Node]) -> Node | None:
    """``a (Σ_j b) -> Σ_j a b``, renaming j away from a's indices: one product, one contraction."""
    for k, f in enumerate(factors):
        if isinstance(f, Sum):
            rest = factors[:k] + factors[k + 1 :]
            moved = rename_summed(f, set().union(*(all_indices(r) for r in rest)))
            if (tracer := TRACE.get()) is not None:
                rule = "renaming of a summed index" if moved.indices != f.indices else "Σ pulled out of a product"
                pulled = _flatten_mul([*([Number(coef)] if coef != 1 else []), *rest, moved.body])
                tracer.rule(rule, product_of(given), Sum(moved.indices, product_of(pulled)))
            return _sum(moved.indices, _product([Number(coef), *rest, moved.body]))
    return None


def _base(f: Node) -> Node:
    """What ``f`` is a power of: ``x`` for ``x^a``; a two-index delta with its indices sorted (deltas are
    idempotent: ``δ_ij δ_ji = δ_ij``); ``f`` itself for a power of a delta, which never merges with the delta
    (``δ_ij^0`` is 1 everywhere, a size witness like ``x_i^0``)."""
    if isinstance(f, Pow):
        return f if isinstance(f.base, Delta) else f.base
    if isinstance(f, Delta) and len(f.indices) == 2 and f.indices[0] > f.indices[1]:
        return Delta((f.indices[1], f.indices[0]))
    return f


def _powers(factors: list[Node]) -> list[Node]:
    """``x^a x^b -> x^(a+b)``; deltas are idempotent; one-index deltas vanish beside their index."""
    bases = {_base(f) for f in factors}
    if len(bases) == len(factors) and not any(_is_one(f) for f in factors):
        return factors  # nothing to combine (the common case)
    order: list[Node] = []
    exponents: dict[Node, Fraction] = {}
    for f in factors:
        base = _base(f)
        if base not in exponents:
            order.append(base)
            exponents[base] = Fraction(0)
        if isinstance(base, Delta) or (isinstance(base, Pow) and isinstance(base.base, Delta)):
            exponents[base] = Fraction(1)  # a repeated delta, or a repeated power of one, is itself
        else:
            exponents[base] += f.exponent if isinstance(f, Pow) else 1
    if len(order) < len(factors) and (tracer := TRACE.get()) is not None:
        tracer.rule("like powers combined", product_of(factors), None)
    out = [base if exponents[base] == 1 else Pow(base, exponents[base]) for base in order]
    out = [f if not isinstance(f, Pow) or f.exponent == 0 else _pow(f.base, f.exponent) for f in out]
    # x_p^0, δ_pq^0 and δ_p are 1 along p: drop them where another factor carries p, keep one where it is the
    # only record of p's length (Σ_p x_p / x_p = n_p), preferring x_p^0, which knows that length.
    # A witness x_p^0 is dropped only where a tensor or a two-index delta carries p: a one-index δ_p (exp(a δ_p))
    # knows no length.
    kept = [f for f in out if not _is_one(f)]
    covered = frozenset().union(*(f.free for f in kept))
    ones_ = sorted((f for f in out if _is_one(f)), key=lambda f: isinstance(f, Delta))
    carried = frozenset().union(*(_carried(f) for f in kept)) if ones_ and isinstance(ones_[0], Pow) else covered
    for f in ones_:
        if not f.free <= (covered if isinstance(f, Delta) else carried):
            kept.append(f)
            covered |= f.free
            carried |= f.free
    if len(kept) < len(out) and (tracer := TRACE.get()) is not None:
        tracer.rule("ones dropped (u^0 = 1, δ_i = 1)", None, None)
    return kept


def _carried(f: Node) -> frozenset[str]:
    """The free indices of ``f`` whose length a tensor or a two-index delta carries in every term of it."""
    if isinstance(f, Tensor):
        return f.free
    if isinstance(f, Delta):
        return f.free if len(f.indices) == 2 else frozenset()
    if isinstance(f, Add):
        return frozenset.intersection(*(_carried(t) for t in f.terms)) & f.free
    return frozenset().union(*(_carried(c) for c in children(f))) & f.free


def _is_one(f: Node) -> bool:
    return (isinstance(f, Delta) and len(f.indices) == 1) or (isinstance(f, Pow) and f.exponent == 0)


def _sigmoid(factors: list[Node]) -> list[Node]:
    """``exp(u) (1 + exp(u))^-1 -> sigmoid(u)``."""
    for k, f in enumerate(factors):
        if isinstance(f, Pow) and f.exponent == -1 and isinstance(f.base, Add) and len(f.base.terms) == 2:
            terms = f.base.terms
            one = [t for t in terms if t == ONE]
            exps = [t for t in terms if isinstance(t, Func) and t.name == "exp"]
            if one and exps and exps[0] in factors:
                rest = [g for m, g in enumerate(factors) if m != k]
                rest.remove(exps[0])
                if (tracer := TRACE.get()) is not None:
                    tracer.rule("stability rewrite: exp(u) / (1 + exp(u)) → sigmoid(u)", Mul((exps[0], f)), None)
                return [*rest, Func("sigmoid", exps[0].arg)]
    return factors


def _sum_of_exp(node: Node) -> bool:
    """Whether ``node`` is ``Σ_j exp(u)``, whose log ``identities.function`` makes a logsumexp."""
    return isinstance(node, Sum) and isinstance(node.body, Func) and node.body.name == "exp"


def _softmax(factors: list[Node]) -> list[Node]:
    """``exp(u) / Σ_j exp(v) -> exp(u - log(Σ_j exp(v)))``: the softmax, computed without overflow because
    log(Σ exp) is evaluated as a log-sum-exp. A higher power of the sum (``exp(a) exp(b) / (Σ_j exp(v))^2``, in
    a softmax's derivative) takes one exp at a time, until the exps or the power run out."""
    for k, f in enumerate(factors):
        e = f.exponent if isinstance(f, Pow) else None
        if e is not None and e < 0 and e.denominator == 1 and _sum_of_exp(f.base):
            for m, g in enumerate(factors):
                if isinstance(g, Func) and g.name == "exp":
                    shifted = Func("exp", Add((g.arg, negate(Func("log", f.base)))))
                    rest = [h for n, h in enumerate(factors) if n not in (k, m)]
                    if (tracer := TRACE.get()) is not None:
                        tracer.rule("stability rewrite: exp(u) / Σ_j exp(v) → exp(u - log Σ_j exp(v))", None, None)
                    return [*rest, shifted] + ([Pow(f.base, e + 1)] if e + 1 else [])
    return factors


def _cancel_sums(factors: list[Node]) -> list[Node]:
    """Powers of one Σ combined before the Σ is pulled out of the product, up to the names of its summed indices:
    ``(S_i T_ij) (S_k T_kj)^-1`` is ``(S_i T_ij)^0``, 1 along j."""
    sums = [f for f in factors if isinstance(f, Sum) or (isinstance(f, Pow) and isinstance(f.base, Sum))]
    if len(sums) < 2:
        return factors
    exponents: dict[Node, Fraction] = {}
    first: dict[Node, Node] = {}
    for f in sums:
        base, e = (f.base, f.exponent) if isinstance(f, Pow) else (f, Fraction(1))
        key = canonical(base, base.free)
        first.setdefault(key, base)
        exponents[key] = exponents.get(key, Fraction(0)) + e
    if len(exponents) == len(sums):
        return factors
    rest = [f for f in factors if not any(f is g for g in sums)]
    return rest + [first[k] if e == 1 else _pow(first[k], e) for k, e in exponents.items()]


def _product(factors: list[Node]) -> Node:
    given = factors
    factors = _flatten_mul(factors)
    coef = Fraction(1)
    others: list[Node] = []
    for f in factors:
        if isinstance(f, Number):
            coef *= f.value
        else:
            others.append(f)
    if len(others) < len(factors) - 1 and (tracer := TRACE.get()) is not None:
        tracer.rule("constants folded", None, None)
    if coef == 0:
        if (tracer := TRACE.get()) is not None:
            tracer.rule("zero factor (0 u = 0)", None, None)
        return ZERO
    others = _cancel_sums(others)
    pulled = _pull_sum(others, coef, given)
    if pulled is not None:
        return pulled
    others = _softmax(_sigmoid(_powers(others)))
    others = [f for f in others if f != ONE]
    if any(isinstance(f, Number) for f in others):
        return _product([Number(coef), *others])
    if coef != 1 and len(others) == 1 and isinstance(others[0], Add):
        if (tracer := TRACE.get()) is not None:
            tracer.rule("number distributed into a sum", None, None)
        return _terms([_product([Number(coef), t]) for t in others[0].terms])
    if coef != 1:
        others.insert(0, Number(coef))
    return product_of(others)


# -- powers and functions -------------------------------------------------------------------------------------


def _pow(base: Node, e: Fraction) -> Node:
    if e == 1:
        return base
    if e == 0:
        return ONE if not base.free else Pow(base, e)
    if isinstance(base, Number):
        value = exact_power(base.value, e)
        return Number(value) if value is not None else Pow(base, e)
    if isinstance(base, Delta) and e > 0:
        return base
    if e.denominator == 1:
        if isinstance(base, Pow):
            return _pow(base.base, base.exponent * e)
        if isinstance(base, Mul):
            return _product([_pow(f, e) for f in base.factors])
    return Pow(base, e)


_EXACT: dict[str, Callable[[Fraction], Fraction | None]] = {
    "exp": lambda v: Fraction(1) if v == 0 else None,
    "log": lambda v: Fraction(0) if v == 1 else None,
    "sin": lambda v: Fraction(0) if v == 0 else None,
    "cos": lambda v: Fraction(1) if v == 0 else None,
    "tan": lambda v: Fraction(0) if v == 0 else None,
    "tanh": lambda v: Fraction(0) if v == 0 else None,
    "sigmoid": lambda v: Fraction(1, 2) if v == 0 else None,
    "relu": lambda v: max(v, Fraction(0)),
    "step": lambda v: Fraction(1 if v > 0 else 0),
    "abs": lambda v: abs(v),
    "sign": lambda v: Fraction((v > 0) - (v < 0)),
    "sqrt": lambda v: exact_power(v, Fraction(1, 2)),
    "softplus": lambda v: None,
}


def _func(name: str, arg: Node) -> Node:
    rule, out = _function_rule(name, arg)
    if rule is not None and (tracer := TRACE.get()) is not None:
        tracer.rule(rule, Func(name, arg), out)
    return out


def _function_rule(name: str, arg: Node) -> tuple[str | None, Node]:
    """The rule that rewrites ``name(arg)`` (None: none applies) and the result."""
    found = function(name, arg)
    if found is not None:
        return "operator identity", found
    if isinstance(arg, Number):
        value = _EXACT[name](arg.value) if name in _EXACT else None  # a custom function: no exact values
        if value is not None:
            return "constants folded", Number(value)
    if name == "log" and isinstance(arg, Func) and arg.name == "exp":
        return "log(exp(u)) = u", arg.arg
    if name == "log" and isinstance(arg, Add) and len(arg.terms) == 2 and ONE in arg.terms:
        other = arg.terms[0] if arg.terms[1] == ONE else arg.terms[1]
        if isinstance(other, Func) and other.name == "exp":
            return "stability rewrite: log(1 + exp(u)) → softplus(u)", Func("softplus", other.arg)
    return None, Func(name, arg)


# -- sums of terms --------------------------------------------------------------------------------------------


def _terms(terms: list[Node]) -> Node:
    flat: list[Node] = []
    for t in terms:
        flat.extend(t.terms if isinstance(t, Add) else (t,))
    flat = [t for t in flat if t != ZERO]
    if not flat:
        return ZERO
    if len(flat) == 1:
        return flat[0]
    out = merged(flat)
    expanded = _expanded(out)
    if expanded is not None:
        out = expanded
    if not out:
        return ZERO
    return out[0] if len(out) == 1 else Add(tuple(out))


_EXPAND_TERMS = 8  # sums of at most this many terms, each a product with one small sum as a factor, are tried


def _expanded(out: list[Node]) -> list[Node] | None:
    """The terms with each product over a small sum distributed and like terms merged, when that is shorter:
    ``σ(u) (1 - t) - t (1 - σ(u))`` is ``σ(u) - t``. None when nothing is gained."""
    if not 2 <= len(out) <= _EXPAND_TERMS:
        return None
    pieces: list[Node] = []
    for t in out:
        c, rest = split_coef(t)
        factors = list(rest.factors) if isinstance(rest, Mul) else [rest]
        sums = [f for f in factors if isinstance(f, Add)]
        if len(sums) != 1 or len(sums[0].terms) > 4:
            pieces.append(t)
            continue
        others = [Number(c), *(f for f in factors if f is not sums[0])]
        pieces.extend(_product([*others, term]) for term in sums[0].terms)
    if len(pieces) == len(out):
        return None
    flat: list[Node] = []
    for p in pieces:
        flat.extend(p.terms if isinstance(p, Add) else (p,))
    shorter = merged([p for p in flat if p != ZERO])
    return shorter if weight(shorter) < weight(out) else None


# -- sums over indices (Σ) --------------------------------------------------------------------------------------


def _witnessed(term: Node, body: Node, summed: frozenset[str]) -> Node:
    """``term`` of the sum ``body``, with a witness of each summed index that only a one-index delta carries in it
    (Σ_b (m δ_b + x_b) splits into Σ_b m x_b^0 + Σ_b x_b, keeping b's length)."""
    joined = UnionFind()  # indices a delta of the term joins: one length
    for f in _flatten_mul([term]):
        if isinstance(f, Delta) and len(f.indices) == 2:
            joined.union(*f.indices)
    sized = {joined.find(i) for i in term.free - summed} | {joined.find(i) for t in tensors(term) for i in t.indices}
    lost = []
    for j in sorted(summed):
        if joined.find(j) not in sized and (w := witness(body, j)) is not None:
            lost.append(w)
            sized.add(joined.find(j))
    return Mul((*_flatten_mul([term]), *lost)) if lost else term  # _sum contracts the deltas before _product


def _sized(body: Node, summed: frozenset[str]) -> frozenset[str]:
    """The indices of ``summed`` whose length ``body`` knows: a tensor carries them, directly or through two-index
    deltas, or a delta joins them to an index that is free around the sum."""
    joined = UnionFind()
    known = set(body.free - summed)
    stack = [body]
    while stack:
        n = stack.pop()
        if isinstance(n, Tensor):
            known.update(n.indices)
        elif isinstance(n, Delta):
            if len(n.indices) == 2:
                joined.union(*n.indices)
        else:
            stack.extend(children(n))
    roots = {joined.find(i) for i in known}
    return frozenset(j for j in summed if joined.find(j) in roots)


def _contractible(term: Node, summed: frozenset[str]) -> bool:
    factors = term.factors if isinstance(term, Mul) else (term,)
    return any(isinstance(f, Delta) and len(f.indices) == 2 and set(f.indices) & summed for f in factors)


def _sum(indices: tuple[str, ...] | frozenset[str], body: Node) -> Node:
    summed = frozenset(indices)
    if not summed:
        return body
    if body == ZERO:
        return ZERO
    if isinstance(body, Sum):
        body = rename_summed(body, summed)
        return _sum(summed | frozenset(body.indices), body.body)
    missing = summed - body.free
    if missing:
        # Σ_j of something constant in j: keep j visible through δ_j (the all-ones vector).
        return _sum(summed, _product([body, ones(missing)]))
    if isinstance(body, Add):
        if all(summed <= t.free for t in body.terms):
            parts = [_witnessed(t, body, summed) for t in body.terms]
            if (tracer := TRACE.get()) is not None:
                indices = tuple(sorted(summed))
                tracer.rule("Σ split over the terms", Sum(indices, body), Add(tuple(Sum(indices, t) for t in parts)))
            return _terms([_sum(summed, t) for t in parts])
        # A term constant in a summed index stays inside: Σ_j (A_ij - a) keeps j's length visible through A.
        return Sum(tuple(sorted(summed)), body)
    factors = list(body.factors) if isinstance(body, Mul) else [body]
    for k, f in enumerate(factors):
        if isinstance(f, Delta) and len(f.indices) == 2:
            a, b = f.indices
            if a in summed or b in summed:
                src, dst = (a, b) if a in summed else (b, a)
                rest = product_of(factors[:k] + factors[k + 1 :])
                if not mergeable(rest, src, dst):
                    continue
                rest = rename(rest, {src: dst})
                if dst not in rest.free:
                    rest = _product([rest, Delta((dst,))])
                if (tracer := TRACE.get()) is not None:
                    left = tuple(sorted(summed - {src}))
                    tracer.rule("δ contraction", Sum(tuple(sorted(summed)), body), Sum(left, rest) if left else rest)
                return _sum(summed - {src}, _product([rest]))
    for k, f in enumerate(factors):
        if isinstance(f, Add) and any(_contractible(t, summed) for t in f.terms):
            rest = factors[:k] + factors[k + 1 :]
            if (tracer := TRACE.get()) is not None:
                indices = tuple(sorted(summed))
                terms = Add(tuple(product_of([*rest, t]) for t in f.terms))
                tracer.rule("distributed over a sum", Sum(indices, body), Sum(indices, terms))
            return _sum(summed, _terms([_product([*rest, t]) for t in f.terms]))
    identity = contract(summed, factors)
    if identity is not None:
        if (tracer := TRACE.get()) is not None:
            tracer.rule("operator identity", Sum(tuple(sorted(summed)), body), None)
        return _sum(identity[0], _product(identity[1]))
    return Sum(tuple(sorted(summed)), body)


# -- the pass ---------------------------------------------------------------------------------------------------


def _pass(node: Node) -> Node:
    """One bottom-up pass of the rules, cached on each node: a shared subtree is rewritten once, and a node the
    pass leaves as it is comes back as the same object (so the fixed-point test costs O(1))."""
    cache = memo(node)
    key = slot("pass")  # like terms merge by the canonical form, which a symmetric declaration changes
    done = cache.get(key)
    if done is not None:
        return done
    new = _rewrite(node)
    if new is not node and new == node:
        new = node
    cache[key] = new
    return new


def _rewrite(node: Node) -> Node:
    if isinstance(node, (Number, Tensor)):
        return node
    if isinstance(node, Delta):
        return Delta((node.indices[0],)) if len(set(node.indices)) == 1 else node
    if isinstance(node, Func):
        return _func(node.name, _pass(node.arg))
    if isinstance(node, Pow):
        base = _pass(node.base)
        out = _pow(base, node.exponent)
        if (tracer := TRACE.get()) is not None and out != Pow(base, node.exponent):
            rule = "constants folded" if isinstance(base, Number) else "power rules"
            tracer.rule(rule, Pow(base, node.exponent), out)
        return out
    if isinstance(node, Op):
        arg = _pass(node.arg)
        # An argument that lost one of the operator's indices (softmax_j(a + 0 u_j)) keeps its length through a
        # witness, as a Σ does: softmax_j(a u_j^0) is 1/n_j along j. A mean, max or min over it just drops it.
        kept = node.arg.free if node.name in ("inv", "det", "logdet") else frozenset(node.indices)
        lost = kept - arg.free
        if node.name not in ("mean", "max", "min") and lost:
            found = [w for j in sorted(lost) if (w := witness(node.arg, j)) is not None]
            if found:  # a number times the witnesses, unfolded: 0 would swallow them (softmax_q(0 A_iq^0) is 1/n_q)
                arg = Mul((arg, *found)) if isinstance(arg, Number) else _product([arg, *found])
        out = operator(node.name, node.indices, arg)
        if (tracer := TRACE.get()) is not None and out != Op(node.name, node.indices, arg):
            tracer.rule("operator identity", Op(node.name, node.indices, arg), out)
        return out
    if isinstance(node, Mul):
        factors = [_pass(f) for f in node.factors]
        out = _product(factors)
        if (tracer := TRACE.get()) is not None:
            tracer.rule(None, product_of(factors), out)
        return out
    if isinstance(node, Add):
        terms = [_pass(t) for t in node.terms]
        out = _terms(terms)
        if (tracer := TRACE.get()) is not None:
            tracer.rule(None, Add(tuple(terms)), out)
        return out
    if isinstance(node, Sum):
        body = _pass(node.body)
        # Cancellation can remove the last factor that carries a summed index (Σ_p (A_pi - A_pi + c)), and a
        # delta between two summed indices can outlive the witness it made redundant (Σ_pq δ_pq u_q^0): a witness
        # from the body as it was keeps the length of each index the body knew and no longer knows.
        summed = frozenset(node.indices)
        lost_length = set()
        if body is not node.body and (unsized := summed - _sized(body, summed)):
            lost_length = unsized & _sized(node.body, summed)
        lost = [
            w
            for j in node.indices
            if (j not in body.free or j in lost_length) and (w := witness(node.body, j)) is not None
        ]
        return _sum(node.indices, Mul((*_flatten_mul([body]), *lost)) if lost else body)
    raise AssertionError(node)


def simplify(node: Node, scope: frozenset[str] = frozenset()) -> Node:
    """``node`` rewritten to a fixed point, operands in canonical order, summed indices keeping their names."""
    tracer = TRACE.get()
    for _ in range(_MAX_PASSES):
        new = _pass(node)
        if tracer is not None:
            tracer.pass_done(node, new)
        if new is node:
            break
        node = new
    out = check_numbers(canonical(node, scope, rename=False))
    if tracer is not None:
        tracer.rule("canonical order", node, out)
    return out
