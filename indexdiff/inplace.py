"""Element-wise steps that write their result into an operand no later step reads, as one writes ``z += b`` by
hand: numpy arrays only, and only an array that nothing else holds (no other value of the plan, no view of it, not
the caller's array), which the reference count tells exactly at each call.

A plan records on its first run which values each step reads last (steps.Plan); each element-wise step below
then offers a variant that writes into such an operand when its dtype and shape are the result's
(``inplace(dead, values, own)``: the values no later step reads, the first run's values and the step's own slot).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ENABLED", "SMALLEST", "function_step", "multiply_step", "scale_step", "square_step", "sum_step", "writable"]

Step = Callable[[list[Any]], Any]
Parts = tuple[tuple[int, tuple[int, ...] | None, int], ...]


def _references(v: list[Any], k: int) -> int:
    return sys.getrefcount(v[k])


#: References an array held only by the value list shows through _references (interpreters count differently).
_ALONE = _references([np.empty(1)], 0)


def _second_reference_seen() -> bool:
    v = [np.empty(1)]
    view = v[0][:]
    v.append(v[0])
    shared = _references(v, 0) > _ALONE
    v.pop()
    return shared and _references(v, 0) > _ALONE and view.base is v[0]


#: Whether references are counted as expected here; without that nothing is written in place.
ENABLED = _second_reference_seen()


def writable(v: list[Any], k: int) -> bool:
    """Whether ``v[k]`` is a numpy array that only the value list holds: no other slot, no view, no caller."""
    if _references(v, k) != _ALONE:
        return False
    x = v[k]
    return type(x) is np.ndarray and x.flags.owndata and x.flags.writeable


def _array(x: Any) -> bool:
    return type(x) is np.ndarray


#: Results smaller than this many bytes are left to allocate: small blocks come back quickly from the allocator,
#: and checking an operand costs about as much as a fresh one.
SMALLEST = 1 << 16


def _large(x: Any) -> bool:
    return _array(x) and x.nbytes >= SMALLEST


def _donor(slots: list[int], dead: set[int], values: list[Any], result: Any, first: int = 2) -> int | None:
    """The first of ``slots[:first]`` that no later step reads, used once here and shaped and typed as ``result``."""
    result_form = (result.shape, result.dtype)
    for slot in slots[:first]:
        x = values[slot]
        if slot in dead and slots.count(slot) == 1 and _array(x) and (x.shape, x.dtype) == result_form:
            return slot
    return None


def sum_terms(v: list[Any], parts: Parts) -> Any:
    """The sum of the terms' values (each reshaped to broadcast where given), a term of sign -1 subtracted."""
    total = None
    for slot, shape, sign in parts:
        value = v[slot] if shape is None else v[slot].reshape(shape)
        if total is None:
            total = value if sign > 0 else -value
            continue
        total = total + value if sign > 0 else total - value
    return total


def _sum_into(v: list[Any], parts: Parts, out: Any) -> Any:
    """sum_terms, the first two terms combined into ``out`` (a fresh array when None), the rest added to it."""
    (s0, shape0, sign0), (s1, shape1, sign1) = parts[:2]
    a = v[s0] if shape0 is None else v[s0].reshape(shape0)
    b = v[s1] if shape1 is None else v[s1].reshape(shape1)
    # -a + b as b - a (the same number)
    out = np.subtract(b, a, out=out) if sign0 < 0 else (np.add if sign1 > 0 else np.subtract)(a, b, out=out)
    for slot, shape, sign in parts[2:]:
        (np.add if sign > 0 else np.subtract)(out, v[slot] if shape is None else v[slot].reshape(shape), out=out)
    return out


def sum_step(parts: Parts) -> Step:
    """A sum of broadcast terms: ``(slot, shape to broadcast as or None, sign)`` each."""

    def run(v: list[Any]) -> Any:
        return sum_terms(v, parts)

    if len(parts) == 2 and parts[0][1:] == (None, 1) and parts[1][1] is None:  # a + b, a - b: called directly
        a, b = parts[0][0], parts[1][0]
        run = (lambda v: v[a] + v[b]) if parts[1][2] > 0 else (lambda v: v[a] - v[b])  # noqa: E731

    def inplace(dead: set[int], values: list[Any], own: int) -> Step | None:
        result = values[own]
        if len(parts) < 2 or (parts[0][2] < 0 and parts[1][2] < 0) or not _large(result):
            return None
        if any(getattr(values[slot], "dtype", None) != result.dtype for slot, _, _ in parts):
            return None  # writing into an array would cast a wider term down
        slots = [slot for slot, shape, _ in parts]
        full = [slot if shape is None else -1 for slot, shape, _ in parts]
        k = _donor(full, dead, values, result)
        if k is not None and slots.count(k) == 1:

            def into(v: list[Any]) -> Any:
                return _sum_into(v, parts, v[k] if writable(v, k) else None)

            return into
        if len(parts) > 2 and np.broadcast_shapes(*(np.shape(values[s]) for s in slots[:2])) == result.shape:
            return lambda v: _sum_into(v, parts, None)  # the first two make a fresh array; the rest add to it
        return None

    run.inplace = inplace  # type: ignore[attr-defined]
    return run


def _multiply_into(ops: list[Any], out: Any, dtype: Any) -> Any:
    value = np.multiply(ops[0], ops[1], out=out, dtype=dtype)
    for op in ops[2:]:
        np.multiply(value, op, out=value)
    return value


def multiply_step(
    sources: tuple[int, ...], coef: float, masks: tuple[Callable[[Any], Any] | None, ...] | None = None
) -> Step:
    """The element-wise product of the values in ``sources`` (the same axes everywhere), times ``coef``; a source
    with a function in ``masks`` (step) contributes that function of its value, which the in-place variant reads
    as the boolean mask ``value > 0`` (the same products: x·1 and x·0 are x·True and x·False)."""
    masks = masks or (None,) * len(sources)

    def operands(v: list[Any]) -> list[Any]:
        return [v[s] if f is None else f(v[s]) for s, f in zip(sources, masks)]

    def run(v: list[Any]) -> Any:
        ops = operands(v)
        value = ops[0] * ops[1]
        for op in ops[2:]:
            value = value * op
        return value if coef == 1.0 else value * coef

    if len(sources) == 2 and coef == 1.0 and not any(masks):  # a * b: called directly
        a, b = sources
        run = lambda v: v[a] * v[b]  # noqa: E731

    def inplace(dead: set[int], values: list[Any], own: int) -> Step | None:
        result = values[own]
        if not _large(result) or any(getattr(values[s], "dtype", None) != result.dtype for s in sources):
            return None  # (a mask's source in the result's dtype: step of it has that dtype too)
        k = _donor(list(sources), dead, values, result)
        if k is None and not (len(sources) > 2 or coef != 1.0 or any(masks)):
            return None
        if k is None and np.broadcast_shapes(*(np.shape(values[s]) for s in sources[:2])) != result.shape:
            return None
        boolean, dtype = tuple(f is not None for f in masks), result.dtype

        def into(v: list[Any]) -> Any:
            out = v[k] if k is not None and writable(v, k) else None
            ops = [np.greater(v[s], 0) if m else v[s] for s, m in zip(sources, boolean)]
            value = _multiply_into(ops, out, dtype)
            if coef != 1.0:
                np.multiply(value, coef, out=value)
            return value

        return into

    run.inplace = inplace  # type: ignore[attr-defined]
    return run


def square_step(slot: int) -> Step:
    """``x * x``, as ``x ** 2`` in numpy."""

    def run(v: list[Any]) -> Any:
        return v[slot] * v[slot]

    def inplace(dead: set[int], values: list[Any], own: int) -> Step | None:
        if not _large(values[own]) or _donor([slot], dead, values, values[own], 1) is None:
            return None

        def into(v: list[Any]) -> Any:
            if writable(v, slot):
                x = v[slot]
                return np.multiply(x, x, out=x)
            return v[slot] * v[slot]

        return into

    run.inplace = inplace  # type: ignore[attr-defined]
    return run


#: Functions of the table (functions.py) whose numpy form can write into its argument: the same ufunc call.
_IN_PLACE_FORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {"relu": lambda x: np.maximum(x, 0, out=x)}


def function_step(slot: int, f: Callable[[Any], Any], name: str) -> Step:
    """The element-wise function ``f`` (the table's ``name``) of ``v[slot]``."""

    def run(v: list[Any]) -> Any:
        return f(v[slot])

    form = _IN_PLACE_FORMS.get(name)

    def inplace(dead: set[int], values: list[Any], own: int) -> Step | None:
        if form is None or not _large(values[own]) or _donor([slot], dead, values, values[own], 1) is None:
            return None

        def into(v: list[Any]) -> Any:
            return form(v[slot]) if writable(v, slot) else f(v[slot])

        return into

    run.inplace = inplace  # type: ignore[attr-defined]
    return run


def scale_step(slot: int, coef: float) -> Step:
    """``coef`` times ``v[slot]``."""

    def run(v: list[Any]) -> Any:
        return v[slot] * coef

    def inplace(dead: set[int], values: list[Any], own: int) -> Step | None:
        if not _large(values[own]) or _donor([slot], dead, values, values[own], 1) is None:
            return None

        def into(v: list[Any]) -> Any:
            if writable(v, slot):
                x = v[slot]
                return np.multiply(x, coef, out=x)
            return v[slot] * coef

        return into

    run.inplace = inplace  # type: ignore[attr-defined]
    return run
