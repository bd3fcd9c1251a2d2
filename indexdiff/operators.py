"""The operator table: operators over indices (``softmax_j``, ``logsumexp_j``, ``mean_j``, ``max_j``, ``min_j`` and
the indicators ``ismax_j``, ``ismin_j``) and matrix functions (``inv``, ``det``, ``logdet``). Each has a numpy
implementation (stable), its derivative rule and its LaTeX form; ``expr.Op`` is the node, ``expr.BINDING`` says
which operators bind their indices.

Ties: the derivative of ``max_j`` is ``ismax_j``, which splits the derivative equally among the entries that attain
the maximum (as JAX does): 1 / (number of maxima) at each of them, 0 elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .errors import ShapeError
from .expr import ZERO, Add, Mul, Node, Number, Op, Sum, negate
from .lazy import numpy_on_demand

if TYPE_CHECKING:
    import numpy as np
else:
    np = numpy_on_demand(globals())  # the parser reads this table without importing numpy
from .functions import logsumexp, plain_exp_sum

__all__ = ["Operator", "OPERATORS", "INDEX_OPERATORS", "MATRIX_FUNCTIONS", "operator_derivative", "apply"]

#: Operators written with indices, ``name_j(...)``.
INDEX_OPERATORS = ("softmax", "logsumexp", "mean", "max", "min", "ismax", "ismin")
#: Functions of a matrix, written without indices: the argument has exactly two free indices.
MATRIX_FUNCTIONS = ("inv", "det", "logdet")


@dataclass(frozen=True)
class Operator:
    """``numpy(value, axes)`` computes the operator over ``axes`` of ``value`` (for a matrix function, the two
    axes of a 2-d value); ``latex`` is its LaTeX name."""

    numpy: Callable[[np.ndarray, tuple[int, ...]], np.ndarray]
    latex: str


def _softmax(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    if a.size == 0:  # an index of length 0: nothing to normalize, the result has no entries
        return np.exp(a)
    if plain_exp_sum(a, axes):  # no overflow, no row lost: exp(a) / Σ exp(a) as written
        e = np.exp(a)
        e /= np.sum(e, axis=axes, keepdims=True)
        return e
    m = np.max(a, axis=axes, keepdims=True)
    with np.errstate(invalid="ignore"):  # a row holding nan, +inf or only -inf is nan throughout, as in scipy and jax
        e = np.subtract(a, m, dtype=np.result_type(a, 1.0))
    np.exp(e, out=e)  # in place: a softmax makes one array, not three
    e /= np.sum(e, axis=axes, keepdims=True)
    return e


def _indicator(pick: str) -> Callable[[np.ndarray, tuple[int, ...]], np.ndarray]:
    def indicator(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        if a.size == 0:
            return np.zeros(a.shape, dtype=np.result_type(a, 1.0))
        hit = (a == getattr(np, pick)(a, axis=axes, keepdims=True)).astype(a.dtype)
        return hit / np.sum(hit, axis=axes, keepdims=True)

    return indicator


def _reduce(f: str) -> Callable[[np.ndarray, tuple[int, ...]], np.ndarray]:
    def reduce(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
        if not axes:
            return a
        if f != "mean" and any(a.shape[k] == 0 for k in axes):  # the mean of nothing is nan, as in numpy
            raise ShapeError(
                f"{f} over an index of length 0 has no value",
                hint="give the index a length of at least 1 (the arrays have an empty axis there)",
            )
        return getattr(np, f)(a, axis=axes)

    return reduce


class LinAlgProblem(ShapeError):
    """A matrix function undefined at the given values (a singular matrix, logdet of a negative determinant)."""


def singular() -> LinAlgProblem:
    """The error for inv of a singular matrix (every library's route raises this one)."""
    return LinAlgProblem("inv of a singular matrix", hint="the matrix has no inverse at these values; check the data")


def not_positive(sign: float) -> LinAlgProblem:
    """The error for logdet of a matrix whose determinant has the sign ``sign`` (0 or -1)."""
    what = "zero (a singular matrix)" if sign == 0 else "negative"
    return LinAlgProblem(
        f"logdet of a matrix whose determinant is {what}",
        hint="logdet is log(det(M)) and needs det(M) > 0 (e.g. a positive definite matrix); "
        "for log|det| write log(abs(det(M)))",
    )


def _linalg(a: np.ndarray) -> np.ndarray:
    """``a`` in a dtype numpy.linalg takes: float16 is computed in float32 (results are cast back)."""
    return a.astype(np.float32) if a.dtype == np.float16 else a


def _inv(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    try:
        out = np.linalg.inv(_linalg(a))
    except np.linalg.LinAlgError:
        raise singular() from None
    return out.astype(a.dtype, copy=False)


def _logdet(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    sign, value = np.linalg.slogdet(_linalg(a))
    if sign <= 0:
        raise not_positive(sign)
    return np.asarray(value, dtype=a.dtype)


OPERATORS: dict[str, Operator] = {
    "softmax": Operator(_softmax, r"\operatorname{softmax}"),
    "logsumexp": Operator(lambda a, axes: logsumexp(a, axes), r"\operatorname{logsumexp}"),
    "mean": Operator(_reduce("mean"), r"\operatorname{mean}"),
    "max": Operator(_reduce("max"), r"\max"),
    "min": Operator(_reduce("min"), r"\min"),
    "ismax": Operator(_indicator("max"), r"\operatorname{ismax}"),
    "ismin": Operator(_indicator("min"), r"\operatorname{ismin}"),
    "inv": Operator(_inv, r"\operatorname{inv}"),
    "det": Operator(lambda a, axes: np.asarray(np.linalg.det(_linalg(a)), dtype=a.dtype), r"\det"),
    "logdet": Operator(_logdet, r"\log\det"),
}


def apply(name: str, value: Any, axes: tuple[int, ...]) -> Any:
    """``name`` over ``axes`` of the numpy ``value``."""
    return OPERATORS[name].numpy(value, axes)


# -- derivative rules -------------------------------------------------------------------------------------------


def operator_derivative(node: Op, d: Node, fresh_names: Callable[[int], tuple[str, ...]]) -> Node:
    """∂node given ``d``, the derivative of its argument (same indices as the argument, plus the new ones);
    ``fresh_names(n)`` gives n index names used nowhere in ``node`` or ``d``."""
    from .names import rename

    name, indices, u = node.name, node.indices, node.arg
    if name in ("ismax", "ismin"):
        return ZERO
    if name == "mean":
        return Op("mean", indices, d)
    if name == "logsumexp":
        return Sum(indices, Mul((Op("softmax", indices, u), d)))
    if name in ("max", "min"):
        return Sum(indices, Mul((Op("is" + name, indices, u), d)))
    if name == "softmax":
        moved = dict(zip(indices, fresh_names(len(indices))))
        other = Sum(tuple(sorted(moved.values())), Mul((rename(node, moved), rename(d, moved))))
        return Mul((node, Add((d, negate(other)))))
    r, c = sorted(u.free)
    if name == "inv":  # d(M⁻¹) = -M⁻¹ dM M⁻¹
        a, b = fresh_names(2)
        left, right = Op("inv", (), rename(u, {c: a})), Op("inv", (), rename(u, {r: b}))
        return Sum((a, b), Mul((Number(Fraction(-1)), left, rename(d, {r: a, c: b}), right)))
    # d logdet(M) = Σ (M⁻¹)_cr dM_rc, d det(M) = det(M) d logdet(M)
    trace = Sum((r, c), Mul((Op("inv", (), rename(u, {r: c, c: r})), d)))
    return trace if name == "logdet" else Mul((node, trace))
