"""Hypothesis strategies: random well-formed index notation whose free indices are known by construction.

Values stay in the domain of every function: arguments of log, sqrt and negative or fractional powers are built
from positive pieces (tensors hold positive random data in the checks), never from differences or deltas.

``case()`` draws the core notation. ``rich_case()`` and ``program()`` (the differential fuzzer's generators) also
draw the corners where bugs hid: deltas over summed indices, the one-index delta ``δ_b`` (all ones), sums over an
index only a delta carries (``sum_b(m δ_b)``, its size known only from ``dims``), ``^0`` (also of deltas), the
non-smooth functions step/relu/abs/sign, tan, index lists in braces, left-hand sides in non-sorted order, broadcasting
terms, and small multi-statement programs (with comments).
"""

from __future__ import annotations

from hypothesis import strategies as st

#: Tensor names by rank, so every name always has the same rank.
NAMES = {0: ["a", "c"], 1: ["u", "v", "w"], 2: ["A", "B"], 3: ["T"]}
LETTERS = "ijmnpqrs"
#: Multi-letter index names (written in braces with commas: A_{row,col}), for summed indices in rich mode.
LONG_INDICES = ("row", "col")
ANY_FUNCS = ["exp", "sin", "cos", "tanh", "sigmoid", "softplus"]
POSITIVE_FUNCS = ["exp", "sigmoid", "softplus"]
POSITIVE_ARG_FUNCS = ["log", "sqrt"]
#: Non-smooth functions: positive (or, for step and sign, exactly 1) on a positive argument.
KINK_FUNCS = ["relu", "abs", "step", "sign"]


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


def _index_list(draw: st.DrawFn, letters: tuple[str, ...] | list[str], rich: bool) -> str:
    """``_ij``, or in rich mode sometimes ``_{ij}`` or ``_{i,j}`` (the same indices)."""
    if not letters:
        return ""
    text = "".join(letters)
    style = draw(st.integers(0, 5)) if rich else 0
    if any(len(i) > 1 for i in letters):
        style = 5
    if style == 4:
        return "_{" + text + "}"
    if style == 5:
        return "_{" + ",".join(letters) + ("," if len(letters) == 1 else "") + "}"
    return "_" + text


@st.composite
def expression(
    draw: st.DrawFn,
    free: tuple[str, ...],
    bound: frozenset[str] = frozenset(),
    depth: int = 3,
    positive: bool = False,
    rich: bool = False,
    names: dict[int, list[str]] | None = None,
) -> str:
    """Text whose free indices (with ``bound`` indices never summed) are exactly ``free``.

    ``rich`` adds the corners listed in the module docstring; ``names`` overrides the tensor names by rank.
    """
    names = names or NAMES
    avoid = set(free) | set(bound)
    spare = [*LETTERS, *(LONG_INDICES if rich else ())]  # candidates for summed indices

    def idx(letters: tuple[str, ...]) -> str:
        return _index_list(draw, letters, rich)

    def sub(f: tuple[str, ...], b: frozenset[str] = bound, d: int = depth - 1, pos: bool = positive) -> str:
        return draw(expression(f, b, d, pos, rich, names))

    if len(free) > 3:
        # Too many indices for one tensor: an outer product of tensors of at most three.
        return " ".join(sub(free[k : k + 3], d=0) for k in range(0, len(free), 3))
    kinds = ["tensor"]
    if not free:
        kinds.append("number")
    if depth > 0:
        kinds += ["product", "product", "function", "power", "quotient", "sum_terms"]
        if len(free) < 3:
            kinds.append("explicit_sum")
        if not positive and len(free) == 2:
            kinds.append("delta")
        if rich:
            kinds += ["summed_delta", "kink"]
            if not positive:
                kinds.append("negate")
    if rich and len(free) == 1:
        kinds.append("ones")  # δ_b: all ones, so positive
    if rich and not free and not positive:
        kinds.append("trace_delta")
    kind = draw(st.sampled_from(kinds))
    if kind == "tensor":
        order = draw(st.permutations(free))
        choices = names.get(len(free)) or NAMES[len(free)]
        return draw(st.sampled_from(choices)) + _index_list(draw, order, rich)
    if kind == "number":
        extra = ["(1/3)", "0.25", "1e-1", "2.5e1", "2^-1", "0.1^-1", "(1/3)^2", "1^-1", "4^0.5", "(2/4)"]
        return draw(st.sampled_from(["2", "3", "0.5", "1.5"] + (extra if rich else [])))
    if kind == "ones":
        return "δ" + _index_list(draw, free, rich)
    if kind == "trace_delta":
        m = draw(st.sampled_from([c for c in spare if c not in avoid]))
        return f"(δ{idx((m, m))})"  # the identity's trace, the size of m (from dims only); grouped: m is its own
    if kind == "negate":
        return f"-{_atomic(sub(free))}"
    if kind == "delta":
        a, b = free
        if draw(st.booleans()):
            return f"δ{idx(draw(st.sampled_from([(a, b), (b, a)])))}"
        m = draw(st.sampled_from([c for c in spare if c not in avoid]))
        other = sub((m, b), pos=False)
        return f"δ{idx((a, m))} {_atomic(other)}"
    if kind == "summed_delta":
        # δ_am X_..m..: a summed index renamed through a delta (positive when X is).
        m = draw(st.sampled_from([c for c in spare if c not in avoid]))
        if not free:
            n = draw(st.sampled_from([c for c in spare if c not in avoid and c != m]))
            pair = draw(st.sampled_from([(m, n), (n, m)]))
            return f"δ{idx(pair)} {_atomic(sub((m, n)))}"
        a = draw(st.sampled_from(free))
        inner = tuple(m if i == a else i for i in free)
        pair = draw(st.sampled_from([(a, m), (m, a)]))
        return f"δ{idx(pair)} {_atomic(sub(inner))}"
    if kind == "kink":
        f = draw(st.sampled_from(KINK_FUNCS))
        return f"{f}({sub(free, pos=True)})" if positive else f"{f}({sub(free, pos=draw(st.booleans()))})"
    if kind == "function":
        if draw(st.integers(0, 7)) == 0 and rich:
            return f"tan(sigmoid({sub(free, pos=False)}))"  # tan on (0, 1): no pole, positive
        if positive:
            f = draw(st.sampled_from(POSITIVE_FUNCS))
            return f"{f}({sub(free, pos=False)})"
        f = draw(st.sampled_from(ANY_FUNCS + POSITIVE_ARG_FUNCS))
        arg = sub(free, pos=f in POSITIVE_ARG_FUNCS)
        return f"{f}({arg})"
    if kind == "power":
        e = draw(st.sampled_from(["2", "3", "-1", "0.5", "-2", "(1/3)"] + (["0", "1"] if rich else [])))
        if e == "0" and free and len(free) <= 2 and draw(st.booleans()):
            return f"δ{_index_list(draw, draw(st.permutations(free)), rich)}^0"  # 1, not δ
        base = sub(free, pos=positive or e not in ("2", "3", "1"))
        return f"{_atomic(base)}^{e}"
    if kind == "quotient" and rich and draw(st.integers(0, 4)) == 0:
        return f"{_atomic(sub(free))} / {draw(st.sampled_from(['2', '0.1', '3', '(1/3)', '2^-1']))}"
    if kind == "quotient":
        split = [draw(st.sampled_from(["num", "den", "both"])) for _ in free]
        num = tuple(i for i, s in zip(free, split) if s != "den")
        den = tuple(i for i, s in zip(free, split) if s != "num")
        n = sub(num)
        d = sub(den, pos=True)
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
            t = sub(own)
            sign = "+" if positive or k == 0 or draw(st.booleans()) else "-"
            terms.append(t if k == 0 else f"{sign} {_atomic(t) if t.startswith('-') else t}")
        return " ".join(terms)
    if kind == "explicit_sum":
        s = draw(st.sampled_from([c for c in spare if c not in avoid]))
        body = sub((*free, s), bound | {s})
        return f"sum{idx((s,))}({body})"
    # product: each free index in one factor (a bound one may be in several), each summed index in two.
    count = draw(st.integers(2, 3))
    summed = draw(st.lists(st.sampled_from([c for c in spare if c not in avoid]), max_size=2, unique=True))
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
    factors = [_atomic(sub(tuple(own))) for own in assigned]
    sep = " * " if draw(st.booleans()) else " "
    return sep.join(factors)


def _statement(draw: st.DrawFn, name: str, free: tuple[str, ...], body: str, rich: bool) -> str:
    lhs = draw(st.permutations(free))
    return f"{name}{_index_list(draw, lhs, rich)} = {body}"


@st.composite
def case(draw: st.DrawFn, rich: bool = False) -> str:
    """A bare expression with at most two (rich: three) free indices, or a statement with a left-hand side."""
    n = draw(st.integers(0, 3 if rich else 2))
    free = tuple(LETTERS[:n])
    if draw(st.integers(0, 2)) == 0:
        extra = draw(st.sampled_from(["", "p"]))
        body = draw(expression((*free, *extra), frozenset(free), depth=3, rich=rich))
        return _statement(draw, "F", free, body, rich)
    return draw(expression(free, depth=3, rich=rich))


def rich_case() -> st.SearchStrategy[str]:
    """``case`` with every corner of the notation (see the module docstring)."""
    return case(rich=True)


@st.composite
def program(draw: st.DrawFn) -> str:
    """Two or three statements: intermediates H (and G) of random rank, then F using them and the inputs.

    Intermediates are positive (so later statements may take their log or divide by them).
    """
    names = {rank: list(ns) for rank, ns in NAMES.items()}
    lines = []
    for name in ["H", "G"][: draw(st.integers(1, 2))]:
        n = draw(st.integers(0, 3))
        free = tuple(LETTERS[:n])
        extra = draw(st.sampled_from(["", "p"]))
        body = draw(expression((*free, *extra), frozenset(free), depth=2, positive=True, rich=True, names=names))
        lines.append(_statement(draw, name, free, body, rich=True))
        names[n] = [*names[n], name, name]  # likelier to be used
    n = draw(st.integers(0, 2))
    free = tuple(LETTERS[:n])
    body = draw(expression(free, frozenset(free), depth=3, rich=True, names=names))
    lines.append(_statement(draw, "F" if free else "L", free, body, rich=True))
    if draw(st.booleans()):
        return "\n".join(f"{line}  # statement {k}" for k, line in enumerate(lines))
    return draw(st.sampled_from(["\n", "; "])).join(lines)
