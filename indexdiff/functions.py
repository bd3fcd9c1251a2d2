"""The element-wise function table: each function's numpy implementation, derivative and LaTeX name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .expr import ONE, Add, Func, Mul, Node, Number, Pow

__all__ = ["Function", "FUNCTIONS", "RESERVED", "logsumexp", "logsumexp_parts"]


@dataclass(frozen=True)
class Function:
    """One element-wise function: ``numpy(a)`` computes it, ``derivative(u)`` is f'(u) as a node."""

    numpy: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[Node], Node]
    latex: str


def _neg(node: Node) -> Node:
    return Mul((Number(Fraction(-1)), node))


def _one_minus(node: Node) -> Node:
    return Add((ONE, _neg(node)))


def _sigmoid(a: np.ndarray) -> np.ndarray:
    # exp(-softplus(-a)): never overflows, accurate in both tails.
    return np.exp(-np.logaddexp(0, -a))


def _step(a: np.ndarray) -> np.ndarray:
    # 1 where a > 0, else 0 (so step(nan) = 0, as `a > 0` has it), in a's float type: never a boolean mask.
    a = np.asarray(a)
    return np.greater(a, 0).astype(a.dtype if np.issubdtype(a.dtype, np.floating) else np.float64)


FUNCTIONS: dict[str, Function] = {
    "exp": Function(np.exp, lambda u: Func("exp", u), r"\exp"),
    "log": Function(np.log, lambda u: Pow(u, Fraction(-1)), r"\log"),
    "sin": Function(np.sin, lambda u: Func("cos", u), r"\sin"),
    "cos": Function(np.cos, lambda u: _neg(Func("sin", u)), r"\cos"),
    "tan": Function(np.tan, lambda u: Add((ONE, Pow(Func("tan", u), Fraction(2)))), r"\tan"),
    "tanh": Function(np.tanh, lambda u: _one_minus(Pow(Func("tanh", u), Fraction(2))), r"\tanh"),
    "sigmoid": Function(_sigmoid, lambda u: Mul((Func("sigmoid", u), _one_minus(Func("sigmoid", u)))), r"\sigma"),
    "relu": Function(lambda a: np.maximum(a, 0), lambda u: Func("step", u), r"\operatorname{relu}"),
    "step": Function(_step, lambda u: Number(Fraction(0)), r"\operatorname{step}"),
    "softplus": Function(lambda a: np.logaddexp(0, a), lambda u: Func("sigmoid", u), r"\operatorname{softplus}"),
    "sqrt": Function(np.sqrt, lambda u: Mul((Number(Fraction(1, 2)), Pow(Func("sqrt", u), Fraction(-1)))), r"\sqrt"),
    "abs": Function(np.abs, lambda u: Func("sign", u), r"\operatorname{abs}"),
    "sign": Function(np.sign, lambda u: Number(Fraction(0)), r"\operatorname{sign}"),
}


def logsumexp(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """log(Σ exp(a)) over ``axes`` without overflow: the largest term is factored out first."""
    m = np.max(a, axis=axes, keepdims=True, initial=-np.inf)  # an empty axis sums to 0: log 0 = -inf
    m = np.where(np.isfinite(m), m, 0)
    with np.errstate(divide="ignore"):  # all terms 0 (or none): log 0 = -inf is the value
        return np.log(np.sum(np.exp(a - m), axis=axes)) + np.squeeze(m, axis=axes)


def logsumexp_parts(node: Node) -> tuple[Node, tuple[str, ...]] | None:
    """``(u, j)`` when ``node`` is ``log(sum_j(exp(u)))``, which is computed as a stable log-sum-exp."""
    from .expr import Sum

    if isinstance(node, Func) and node.name == "log" and isinstance(node.arg, Sum):
        body = node.arg.body
        if isinstance(body, Func) and body.name == "exp":
            return body.arg, node.arg.indices
    return None


#: Names that cannot be tensors: the functions, the explicit sum and the Kronecker delta.
RESERVED = frozenset(FUNCTIONS) | {"sum", "delta", "δ"}
