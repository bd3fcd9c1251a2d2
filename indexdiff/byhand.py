"""A product of several operands as one writes it in numpy by hand, for compiled plans (steps.py) and generated
modules (einsumcode.py) alike: operands with the same axes multiplied element-wise; while more than two remain,
one whose indices are all output indices (and another operand's) set aside to multiply the result, and one whose
indices another operand has (and a third one too) multiplied into that one, broadcast; the last two as one matrix
product where they make one (``matrix_product``), else one einsum. ``Σ_i X_ik X_il y_i s_i`` is
``(X * (y * s)[:, None]).T @ X``; ``y_i X_ij w_j`` is ``(X @ w) * y``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

__all__ = ["HandPlan", "MatrixProduct", "hand_contraction", "matrix_product", "plan_by_hand"]

Labels = tuple[Any, ...]


class MatrixProduct(NamedTuple):
    """``matrix_product``'s answer: the operand on the left, and whether each side is transposed."""

    left: int
    transpose_left: bool
    transpose_right: bool


def matrix_product(terms: Sequence[Sequence[Any]], output: Sequence[Any]) -> MatrixProduct | None:
    """How a two-operand contraction is one matrix (or matrix-vector) product ``a @ b``: which operand goes left
    (the one whose free axis comes first in ``output``) and which are transposed (as views), so that the result
    comes out in ``output``'s axis order, contiguous; None when it is not one. ``terms`` and ``output`` are the
    operands' and the result's axes (letters, or any labels)."""
    t1, t2 = (tuple(t) for t in terms)
    out = tuple(output)
    shared = set(t1) & set(t2)
    if len(shared) != 1 or len(t1) > 2 or len(t2) > 2 or len(set(t1)) < len(t1) or len(set(t2)) < len(t2):
        return None
    (s,) = shared
    if s in out or set(out) != (set(t1) | set(t2)) - {s}:
        return None
    rest1, rest2 = tuple(i for i in t1 if i != s), tuple(i for i in t2 if i != s)
    left = 0 if (rest1 and out[: len(rest1)] == rest1) or not rest2 else 1
    lt, rt = (t1, t2) if left == 0 else (t2, t1)
    return MatrixProduct(left, len(lt) == 2 and lt[1] != s, len(rt) == 2 and rt[0] != s)


class HandPlan(NamedTuple):
    """``groups``: the working operands, each its axes and the operands (positions) multiplied element-wise into
    it; ``moves``, in order, on the working list: ``(s, t)`` multiplies operand s into t (broadcast) and removes
    it, ``(s, None)`` removes s, to multiply the result by at the end; ``final``: the two operands left as one
    matrix product, or None (one einsum of those left)."""

    groups: tuple[tuple[Labels, tuple[int, ...]], ...]
    moves: tuple[tuple[int, int | None], ...]
    final: MatrixProduct | None


def plan_by_hand(terms: Sequence[Sequence[Any]], out: Sequence[Any]) -> HandPlan | None:
    """The plan for the product of operands with axes ``terms`` summed to ``out``; None when an operand repeats
    an index (a diagonal: einsum's)."""
    out = tuple(out)
    if any(len(set(t)) < len(t) for t in terms):
        return None
    merged: dict[Labels, list[int]] = {}
    for k, t in enumerate(terms):
        merged.setdefault(tuple(t), []).append(k)
    groups = [(own, tuple(ks)) for own, ks in merged.items()]
    if len(groups) == 1 and groups[0][0] != out and len(groups[0][1]) > 1:  # Σ_i x_i y_i z_i: (x y) @ z
        own, ks = groups[0]
        groups = [(own, ks[:-1]), (own, ks[-1:])]
    axes = [own for own, _ in groups]

    def elsewhere(i: Any, *skip: int) -> bool:
        return any(i in t for k, t in enumerate(axes) if k not in skip)

    moves: list[tuple[int, int | None]] = []
    while len(axes) > 2:
        s = next((s for s, own in enumerate(axes) if all(i in out and elsewhere(i, s) for i in own)), None)
        if s is not None:
            moves.append((s, None))
            del axes[s]
            continue
        pair = next(
            (
                (s, t)
                for s, own in enumerate(axes)
                for t, other in enumerate(axes)
                if s != t and set(own) < set(other) and all(elsewhere(i, s, t) for i in own)
            ),
            None,
        )
        if pair is None:
            break
        moves.append(pair)
        del axes[pair[0]]
    final = matrix_product(axes, out) if len(axes) == 2 else None
    return HandPlan(tuple(groups), tuple(moves), final)


def aligned_shape(own: Labels, target: Labels, sizes: dict[Any, int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """How an operand with axes ``own`` (a subset of ``target``'s) lines up with ``target``: the transposition
    of its axes into target's order, and the shape (1 where it lacks an index) to reshape it to."""
    order = tuple(own.index(i) for i in target if i in own)
    return order, tuple(sizes[i] if i in own else 1 for i in target)


def hand_contraction(
    terms: list[str], out: str, sizes: dict[str, int], rest: Callable[[str, list[tuple[int, ...]]], Any]
) -> Callable[..., Any] | None:
    """The numpy contraction ``terms -> out`` (einsum letters; ``sizes`` per letter) run by ``plan_by_hand``;
    ``rest(spec, shapes)`` contracts what the plan leaves to einsum. None when the plan changes nothing."""
    plan = plan_by_hand(terms, out)
    if plan is None or (not plan.moves and plan.final is None and len(plan.groups) == len(terms)):
        return None
    groups = [ks for _, ks in plan.groups]
    axes = [own for own, _ in plan.groups]
    into: list[tuple[int, int | None, tuple[int, ...], tuple[int, ...]]] = []
    for s, t in plan.moves:
        into.append((s, t, *aligned_shape(axes[s], tuple(out) if t is None else axes[t], sizes)))
        del axes[s]
    if plan.final is not None:
        f = plan.final
        left, right = (0, 1) if f.left == 0 else (1, 0)

        def finish(ops: list[Any]) -> Any:
            a, b = ops[left], ops[right]
            return (a.T if f.transpose_left else a) @ (b.T if f.transpose_right else b)

    else:
        spec = ",".join("".join(own) for own in axes) + "->" + out
        contract = rest(spec, [tuple(sizes[i] for i in own) for own in axes])

        def finish(ops: list[Any]) -> Any:
            return contract(*ops)

    def run(*values: Any) -> Any:
        ops = []
        for ks in groups:
            value = values[ks[0]]
            for k in ks[1:]:
                value = value * values[k]
            ops.append(value)
        later = []
        for s, t, order, shape in into:
            value = ops.pop(s).transpose(order).reshape(shape)
            if t is None:
                later.append(value)
            else:
                ops[t if t < s else t - 1] = ops[t if t < s else t - 1] * value
        result = finish(ops)
        for value in later:
            result = result * value
        return result

    return run
