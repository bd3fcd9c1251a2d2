"""Hypothesis strategies for the operator fuzzer: index notation mixing the operators with the rest of the notation,
free indices known by construction (see test_fuzz_operators.py's docstring). Leaves are ``strategies.expression``.
"""

from __future__ import annotations

import re

from hypothesis import strategies as st
from strategies import NAMES, expression

SPARE = "ijklmnpqrs"
#: Naive spellings substitute index letters textually: no multi-letter indices or braces in them.
INDEX_LIST = re.compile(r"_(\w+)")


def _idx(letters: tuple[str, ...] | str) -> str:
    return "_" + "".join(letters)


def _fresh(draw: st.DrawFn, avoid: set[str] | frozenset[str], n: int = 1) -> tuple[str, ...]:
    spare = [c for c in SPARE if c not in avoid]
    return tuple(draw(st.lists(st.sampled_from(spare), min_size=n, max_size=n, unique=True)))


def _atomic(text: str) -> str:
    return (
        text
        if re.fullmatch(r"[A-Za-z]\w*", text) or re.fullmatch(r"[a-z]+(_\w+)?\(.*\)", text) and _closed(text)
        else f"({text})"
    )


def _closed(text: str) -> bool:
    """Whether the first '(' of ``text`` closes at its end (one call, not ``f(x) + g(y)``)."""
    depth = 0
    for k, c in enumerate(text):
        depth += c == "("
        depth -= c == ")"
        if depth == 0 and c == ")" and k < len(text) - 1:
            return False
    return True


@st.composite
def matrix_form(
    draw: st.DrawFn, r: str, c: str, bound: frozenset[str], depth: int, names: dict[int, list[str]]
) -> tuple[str, bool]:
    """Text with free indices exactly (r, c), a square matrix with positive determinant, well conditioned for any
    data in [0, 2] at lengths ≤ 3 (and symmetric positive definite when the flag is true)."""
    avoid = bound | {r, c}
    kind = draw(st.sampled_from(["gram", "gram", "tanh", "softmax", "product", "inverse", "scaled", "transpose"]))
    if depth <= 0:
        kind = "gram"
    if kind == "gram":
        (n,) = _fresh(draw, avoid)
        x = draw(st.sampled_from(names[2]))
        lam = draw(st.sampled_from(["", "2 ", "1.5 ", "(3/2) "]))
        text = f"{x}_{n}{r} {x}_{n}{c} + {lam}δ_{r}{c}"
        if draw(st.booleans()):
            v = draw(st.sampled_from(names[1]))
            text += f" + {v}_{r} {v}_{c}"
        return text, True
    if kind == "tanh":
        inner = draw(op_expression((r, c), bound, depth - 1, names=names))
        return f"δ_{r}{c} + 0.2 tanh({inner})", False
    if kind == "softmax":
        inner = draw(op_expression((r, c), bound | {c}, depth - 1, names=names))
        return f"δ_{r}{c} + 0.5 softmax_{c}({inner})", False
    if kind == "product":
        (m,) = _fresh(draw, avoid)
        left, _ = draw(matrix_form(r, m, bound | {c}, depth - 2, names))  # products of products: too slow
        right, _ = draw(matrix_form(m, c, bound | {r}, depth - 2, names))
        return f"({left}) ({right})", False
    if kind == "inverse":
        inner, spd = draw(matrix_form(r, c, bound, depth - 1, names))
        return f"inv({inner})", spd
    if kind == "scaled":
        inner, spd = draw(matrix_form(r, c, bound, depth - 1, names))
        return f"{draw(st.sampled_from(['2', '0.5', '(1/3)']))} ({inner})", spd
    inner, spd = draw(matrix_form(c, r, bound, depth - 1, names))  # the transpose: the same form, indices swapped
    return inner, spd


def _renamed(text: str, old: str, new: str) -> str:
    """``text`` with the index ``old`` renamed ``new`` in every index list (single-letter indices only)."""
    return INDEX_LIST.sub(lambda m: "_" + m.group(1).replace(old, new), text)


@st.composite
def op_expression(  # noqa: C901
    draw: st.DrawFn,
    free: tuple[str, ...],
    bound: frozenset[str] = frozenset(),
    depth: int = 3,
    positive: bool = False,
    names: dict[int, list[str]] | None = None,
) -> str:
    """Text whose free indices are exactly ``free`` (``bound``: indices bound around it, never summed inside)."""
    names = names or {**NAMES, 2: ["A", "B", "X"]}
    avoid = frozenset(free) | bound

    def sub(f: tuple[str, ...], b: frozenset[str] = bound, pos: bool = positive, d: int = depth - 1) -> str:
        return draw(op_expression(f, b, d, pos, names))

    kinds = ["leaf"]
    if depth > 0:
        kinds += ["product", "product", "sum_terms", "function", "power"]
        if free:
            kinds += ["softmax", "softmax"]
            if not positive:
                kinds.append("indicator")
        if len(free) <= 2:
            kinds += ["logsumexp", "reduce", "reduce", "naive"]
            if len(free) < 2:
                kinds.append("explicit_sum")
        if len(free) == 2 and not positive:
            kinds += ["inv", "inv"]
        if not free:
            kinds += ["det", "det"] + ([] if positive else ["logdet", "logdet"])
    kind = draw(st.sampled_from(kinds))
    if kind == "leaf":
        return draw(expression(free, bound, depth=draw(st.integers(0, 1)), positive=positive, names=names))
    if kind == "softmax":
        own = tuple(draw(st.lists(st.sampled_from(free), min_size=1, max_size=2, unique=True)))
        return f"softmax{_idx(own)}({sub(free, bound | set(own), False)})"
    if kind == "indicator":
        own = (draw(st.sampled_from(free)),)
        name = draw(st.sampled_from(["ismax", "ismin"]))
        t = draw(st.sampled_from(names.get(len(free), []) or ["T"])) if len(free) <= 3 else None
        arg = f"{t}{_idx(draw(st.permutations(free)))}" if t else sub(free, bound | set(own), False)
        return f"{name}{_idx(own)}({arg})"
    if kind in ("logsumexp", "reduce"):
        own = _fresh(draw, avoid, draw(st.integers(1, 3 - len(free))) if len(free) < 2 else 1)
        name = "logsumexp" if kind == "logsumexp" else draw(st.sampled_from(["mean", "mean", "max", "min"]))
        pos = positive and name != "logsumexp"
        return f"{name}{_idx(own)}({sub(free + own, bound | set(own), pos)})"
    if kind == "naive":
        spelling = draw(st.sampled_from(["mean", "logsumexp", "softmax"][: 1 + (not positive) + bool(free)]))
        if spelling == "softmax":  # exp(u_..j..) / sum_k(exp(u_..k..)), a softmax over j
            j = draw(st.sampled_from(free))
            (k,) = _fresh(draw, avoid)
            body = sub(free, bound | {j, k}, False, min(depth - 1, 1))
            return f"exp({body}) / sum_{k}(exp({_renamed(body, j, k)}))"
        (j,) = _fresh(draw, avoid)
        body = sub(free + (j,), bound | {j}, positive and spelling == "mean", min(depth - 1, 1))
        if spelling == "logsumexp":
            return f"log(sum_{j}(exp({body})))"
        return f"sum_{j}({body}) / δ_{j}{j}"
    if kind == "inv":
        r, c = draw(st.permutations(free))
        form, _ = draw(matrix_form(r, c, bound, depth - 1, names))
        return f"inv({form})"
    if kind in ("det", "logdet"):
        r, c = _fresh(draw, avoid, 2)
        form, _ = draw(matrix_form(r, c, bound, depth - 1, names))
        return f"{kind}({form})"
    if kind == "function":
        f = draw(
            st.sampled_from(["exp", "sigmoid", "softplus"] if positive else ["exp", "tanh", "sigmoid", "log", "sq"])
        )
        if f == "sq":
            return f"{_atomic(sub(free, pos=False))}^2"
        return f"{f}({sub(free, pos=f == 'log')})"
    if kind == "power":
        e = draw(st.sampled_from(["2", "-1", "0.5"]))
        return f"{_atomic(sub(free, pos=positive or e != '2'))}^{e}"
    if kind == "sum_terms":
        first = sub(free)
        own = () if draw(st.integers(0, 3)) == 0 else free
        second = sub(own)
        sign = "+" if positive or draw(st.booleans()) else "-"
        return f"{first} {sign} {_atomic(second) if second.startswith('-') else second}"
    if kind == "explicit_sum":
        (s,) = _fresh(draw, avoid)
        return f"sum_{s}({sub(free + (s,), bound | {s})})"
    # product: each free index in one factor, a summed index in both
    summed = _fresh(draw, avoid, draw(st.integers(0, 1)))
    left = tuple(i for i in free if draw(st.booleans()))
    right = tuple(i for i in free if i not in left)
    return f"{_atomic(sub(left + summed))} {_atomic(sub(right + summed))}"


@st.composite
def op_case(draw: st.DrawFn) -> str:
    """A bare expression with at most two free indices, or a statement with a left-hand side."""
    free = tuple("ij"[: draw(st.integers(0, 2))])
    if draw(st.integers(0, 2)) == 0:
        body = draw(op_expression(free, frozenset(free), depth=3))
        return f"F{_idx(draw(st.permutations(free))) if free else ''} = {body}"
    return draw(op_expression(free, depth=3))


@st.composite
def op_program(draw: st.DrawFn) -> str:
    """One or two intermediates (positive, of rank 0 to 2) with operators, then a scalar loss using them."""
    names = {**NAMES, 2: ["A", "B", "X"]}
    names = {rank: list(ns) for rank, ns in names.items()}
    lines = []
    for name in ["H", "G"][: draw(st.integers(1, 2))]:
        free = tuple("ij"[: draw(st.integers(0, 2))])
        body = draw(op_expression(free, frozenset(free), depth=2, positive=True, names=names))
        lines.append(f"{name}{_idx(draw(st.permutations(free))) if free else ''} = {body}")
        names[len(free)] = [*names[len(free)], name, name]
    lines.append(f"L = {draw(op_expression((), frozenset(), depth=3, names=names))}")
    return "\n".join(lines)
