"""Hypothesis strategies: random well-formed index notation whose free indices are known by construction.

Values stay in the domain of every function: arguments of log, sqrt and negative or fractional powers are built
from positive pieces (tensors hold positive random data in the checks), never from differences or deltas.
"""

from __future__ import annotations

from hypothesis import strategies as st

#: Tensor names by rank, so every name always has the same rank.
NAMES = {0: ["a", "c"], 1: ["u", "v", "w"], 2: ["A", "B"], 3: ["T"]}
LETTERS = "ijmnpqrs"
ANY_FUNCS = ["exp", "sin", "cos", "tanh", "sigmoid", "softplus"]
POSITIVE_FUNCS = ["exp", "sigmoid", "softplus"]
POSITIVE_ARG_FUNCS = ["log", "sqrt"]


def _atomic(text: str) -> str:
    """Parenthesize unless ``text`` is a single tensor, number or call (so it is one factor of a product)."""
    if text.replace("_", "").replace("{", "").replace("}", "").replace(",", "").isalnum():
        return text
    depth = 0
    for k, c in enumerate(text):
        depth += c == "("
        depth -= c == ")"
        if depth == 0 and k < len(text) - 1 and c == ")":
            return f"({text})"
        if depth == 0 and c in " +-*/^":
            return f"({text})"
    return text if text.endswith(")") else f"({text})"


@st.composite
def expression(
    draw: st.DrawFn,
    free: tuple[str, ...],
    bound: frozenset[str] = frozenset(),
    depth: int = 3,
    positive: bool = False,
) -> str:
    """Text whose free indices (with ``bound`` indices never summed) are exactly ``free``."""
    avoid = set(free) | set(bound)
    if len(free) > 3:
        # Too many indices for one tensor: an outer product of tensors of at most three.
        return " ".join(draw(expression(free[k : k + 3], bound, 0, positive)) for k in range(0, len(free), 3))
    kinds = ["tensor"]
    if not free:
        kinds.append("number")
    if depth > 0:
        kinds += ["product", "product", "function", "power", "quotient", "sum_terms"]
        if len(free) < 3:
            kinds.append("explicit_sum")
        if not positive and len(free) == 2:
            kinds.append("delta")
    kind = draw(st.sampled_from(kinds))
    if kind == "tensor":
        order = draw(st.permutations(free))
        name = draw(st.sampled_from(NAMES[len(free)]))
        return name + ("_" + "".join(order) if order else "")
    if kind == "number":
        return draw(st.sampled_from(["2", "3", "0.5", "1.5"]))
    if kind == "delta":
        a, b = free
        if draw(st.booleans()):
            return f"δ_{draw(st.sampled_from([a + b, b + a]))}"
        m = draw(st.sampled_from([c for c in LETTERS if c not in avoid]))
        other = draw(expression((m, b), bound, depth - 1))
        return f"δ_{a}{m} {_atomic(other)}"
    if kind == "function":
        if positive:
            f = draw(st.sampled_from(POSITIVE_FUNCS))
            return f"{f}({draw(expression(free, bound, depth - 1))})"
        f = draw(st.sampled_from(ANY_FUNCS + POSITIVE_ARG_FUNCS))
        arg = draw(expression(free, bound, depth - 1, positive=f in POSITIVE_ARG_FUNCS))
        return f"{f}({arg})"
    if kind == "power":
        e = draw(st.sampled_from(["2", "3", "-1", "0.5", "-2", "(1/3)"]))
        base = draw(expression(free, bound, depth - 1, positive=positive or e not in ("2", "3")))
        return f"{_atomic(base)}^{e}"
    if kind == "quotient":
        split = [draw(st.sampled_from(["num", "den", "both"])) for _ in free]
        num = tuple(i for i, s in zip(free, split) if s != "den")
        den = tuple(i for i, s in zip(free, split) if s != "num")
        n = draw(expression(num, bound, depth - 1, positive=positive))
        d = draw(expression(den, bound, depth - 1, positive=True))
        return f"{_atomic(n)} / {_atomic(d)}"
    if kind == "sum_terms":
        terms = []
        for k in range(draw(st.integers(2, 3))):
            own = free
            if k == 0:
                pass  # the first term keeps every index, so the sum has exactly ``free``
            elif bound & set(free) and draw(st.booleans()):
                own = tuple(i for i in free if i not in bound or draw(st.booleans()))  # broadcast a bound index
            if k and draw(st.integers(0, 4)) == 0:
                own = ()  # scalar expansion
            t = draw(expression(own, bound, depth - 1, positive=positive))
            sign = "+" if positive or k == 0 or draw(st.booleans()) else "-"
            terms.append(t if k == 0 else f"{sign} {_atomic(t) if t.startswith('-') else t}")
        return " ".join(terms)
    if kind == "explicit_sum":
        s = draw(st.sampled_from([c for c in LETTERS if c not in avoid]))
        body = draw(expression((*free, s), bound | {s}, depth - 1, positive=positive))
        return f"sum_{s}({body})"
    # product: each free index in one factor (a bound one may be in several), each summed index in two.
    count = draw(st.integers(2, 3))
    summed = draw(st.lists(st.sampled_from([c for c in LETTERS if c not in avoid]), max_size=2, unique=True))
    assigned: list[list[str]] = [[] for _ in range(count)]
    for i in free:
        holders = {draw(st.integers(0, count - 1))}
        if i in bound and draw(st.booleans()):
            holders.add(draw(st.integers(0, count - 1)))  # Hadamard over a bound index
        for h in holders:
            assigned[h].append(i)
    for j in summed:
        a = draw(st.integers(0, count - 1))
        b = draw(st.integers(0, count - 2))
        b = b + 1 if b >= a else b
        assigned[a].append(j)
        assigned[b].append(j)
    factors = []
    for own in assigned:
        factors.append(_atomic(draw(expression(tuple(own), bound, depth - 1, positive=positive))))
    sep = " * " if draw(st.booleans()) else " "
    return sep.join(factors)


@st.composite
def case(draw: st.DrawFn) -> str:
    """A bare expression with at most two free indices, or a statement with a left-hand side."""
    n = draw(st.integers(0, 2))
    free = tuple(LETTERS[:n])
    if draw(st.integers(0, 2)) == 0:
        extra = draw(st.sampled_from(["", "p"]))
        lhs = draw(st.permutations(free))
        body = draw(expression((*free, *extra), frozenset(free), depth=3))
        return f"F{'_' + ''.join(lhs) if lhs else ''} = {body}"
    return draw(expression(free, depth=3))
