"""The element-wise function table: each function's numpy implementation, derivative and LaTeX name."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Set
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from .errors import IndexDiffError
from .expr import ONE, Add, Func, Mul, Node, Number, Pow
from .lazy import numpy_on_demand

if TYPE_CHECKING:
    import numpy as np
else:
    np = numpy_on_demand(globals())  # parsing and differentiating read this table without importing numpy

__all__ = ["Function", "FUNCTIONS", "RESERVED", "Callables", "logsumexp"]


@dataclass(frozen=True)
class Function:
    """One element-wise function: ``numpy(a)`` computes it, ``derivative(u)`` is f'(u) as a node. ``custom`` is
    the derivative's text for a function registered with ``ix.function`` (None for a built-in one)."""

    numpy: Callable[[np.ndarray], np.ndarray]
    derivative: Callable[[Node], Node]
    latex: str
    custom: str | None = None


def _unknown(name: str) -> IndexDiffError:
    return IndexDiffError(
        f"unknown function '{name}': it is not registered (any more)",
        name,
        0,
        len(name),
        hint=f"register it with ix.function('{name}', ...) before using an expression that contains it",
    )


class _Table(dict[str, Function]):
    """The function table; a name not in it (a custom function removed after an expression using it was
    parsed) is an IndexDiffError, not a KeyError. ``version`` counts changed or removed definitions: derivatives
    cached on nodes are keyed by it, so a redefined function is never differentiated by its old rule."""

    version = 0

    def __setitem__(self, name: str, spec: Function) -> None:
        if name in self:
            self.version += 1
        super().__setitem__(name, spec)

    def __delitem__(self, name: str) -> None:
        self.version += 1
        super().__delitem__(name)

    def __missing__(self, name: str) -> Function:
        raise _unknown(name)


class Callables(dict[str, Callable[[Any], Any]]):
    """One array library's element-wise functions; a custom function (numpy only) or an unknown name is an
    IndexDiffError that says so."""

    def __init__(self, library: str, functions: dict[str, Callable[[Any], Any]]) -> None:
        super().__init__(functions)
        self.library = library

    def __missing__(self, name: str) -> Callable[[Any], Any]:
        spec = FUNCTIONS[name]  # an unknown name raises here
        if self.library == "numpy":
            return spec.numpy
        raise IndexDiffError(
            f"the custom function '{name}' has a numpy implementation only, not one for {self.library} arrays",
            name,
            0,
            len(name),
            hint="pass numpy arrays (np.asarray) to compute it",
        )


def _neg(node: Node) -> Node:
    return Mul((Number(Fraction(-1)), node))


def _one_minus(node: Node) -> Node:
    return Add((ONE, _neg(node)))


def _floating(a: np.ndarray) -> np.ndarray:
    """``a`` as an array of floats: its own float type, else float64 (as a ufunc computes an int array)."""
    a = np.asarray(a)
    return a if a.dtype.kind == "f" else a.astype(np.float64)


@functools.cache
def _exp_limit(dtype: np.dtype) -> float:
    """A whole number just below where exp overflows in ``dtype`` (708 in float64, 87 in float32): 1 + exp(x) is
    finite there, and exp(-x) far below the float's precision."""
    return float(np.floor(np.log(np.finfo(dtype).max))) - 1


def _scalar_like(t: np.ndarray) -> np.ndarray:
    # a 0-d result as numpy's ufuncs give it: a scalar
    return t if t.ndim else t[()]


def _sigmoid(a: np.ndarray) -> np.ndarray:
    # e / (1 + e), e = exp(a) with a capped where 1 + e stays finite: no overflow, and as fast as the naive
    # 1 / (1 + exp(-a)). Both tails are exact to a few ulps: the left one is exp(a) / 1 (subnormals and
    # underflow to 0 included); past the cap e / (1 + e) rounds to 1, which is sigmoid's value there.
    a = _floating(a)
    t = np.minimum(a, _exp_limit(a.dtype), out=np.empty_like(a))
    np.exp(t, out=t)
    np.divide(t, t + 1, out=t)
    return _scalar_like(t)


def _softplus(a: np.ndarray) -> np.ndarray:
    # max(a, 0) + log1p(exp(-|a|)): exact in both tails (softplus(-40) = 4.2e-18, softplus(1e4) = 1e4), no
    # overflow, and faster than the naive log1p(exp(a)) (log1p of arguments in (0, 1]).
    a = _floating(a)
    t = np.abs(a, out=np.empty_like(a))
    np.negative(t, out=t)
    np.exp(t, out=t)
    np.log1p(t, out=t)
    t += np.maximum(a, 0)
    return _scalar_like(t)


def _step(a: np.ndarray) -> np.ndarray:
    # 1 where a > 0, else 0 (so step(nan) = 0, as `a > 0` has it), in a's float type: never a boolean mask.
    a = np.asarray(a)
    return np.greater(a, 0).astype(a.dtype if np.issubdtype(a.dtype, np.floating) else np.float64)


def _numpy(name: str) -> Callable[[np.ndarray], np.ndarray]:
    """numpy's function ``name``, looked up when called."""

    def call(a: np.ndarray) -> np.ndarray:
        return getattr(np, name)(a)

    call.__name__ = name
    return call


FUNCTIONS: _Table = _Table(
    {
        "exp": Function(_numpy("exp"), lambda u: Func("exp", u), r"\exp"),
        "log": Function(_numpy("log"), lambda u: Pow(u, Fraction(-1)), r"\log"),
        "sin": Function(_numpy("sin"), lambda u: Func("cos", u), r"\sin"),
        "cos": Function(_numpy("cos"), lambda u: _neg(Func("sin", u)), r"\cos"),
        "tan": Function(_numpy("tan"), lambda u: Add((ONE, Pow(Func("tan", u), Fraction(2)))), r"\tan"),
        "tanh": Function(_numpy("tanh"), lambda u: _one_minus(Pow(Func("tanh", u), Fraction(2))), r"\tanh"),
        "sigmoid": Function(_sigmoid, lambda u: Mul((Func("sigmoid", u), _one_minus(Func("sigmoid", u)))), r"\sigma"),
        "relu": Function(lambda a: np.maximum(a, 0), lambda u: Func("step", u), r"\operatorname{relu}"),
        "step": Function(_step, lambda u: Number(Fraction(0)), r"\operatorname{step}"),
        "softplus": Function(_softplus, lambda u: Func("sigmoid", u), r"\operatorname{softplus}"),
        "sqrt": Function(
            _numpy("sqrt"), lambda u: Mul((Number(Fraction(1, 2)), Pow(Func("sqrt", u), Fraction(-1)))), r"\sqrt"
        ),
        "abs": Function(_numpy("abs"), lambda u: Func("sign", u), r"\operatorname{abs}"),
        "sign": Function(_numpy("sign"), lambda u: Number(Fraction(0)), r"\operatorname{sign}"),
    }
)


def logsumexp(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """log(Σ exp(a)) over ``axes`` without overflow: the largest term is factored out first."""
    if plain_exp_sum(a, axes):
        return np.log(np.sum(np.exp(a), axis=axes))
    m = np.max(a, axis=axes, keepdims=True, initial=-np.inf)  # an empty axis sums to 0: log 0 = -inf
    m = np.where(np.isfinite(m), m, 0)
    t = np.subtract(a, m)
    np.exp(t, out=t)
    with np.errstate(divide="ignore"):  # all terms 0 (or none): log 0 = -inf is the value
        return np.log(np.sum(t, axis=axes)) + np.squeeze(m, axis=axes)


def plain_exp_sum(a: np.ndarray, axes: tuple[int, ...]) -> bool:
    """Whether Σ exp(a) over ``axes`` is exact as written, without factoring out each row's maximum (log-sum-exp
    and softmax then save a subtraction): no sum can overflow, and every row's largest term is a normal number
    with the float's precision to spare (terms below the largest by more than the precision do not matter, even
    where they underflow). Two whole-array reductions decide it (cheap next to exp); a row's maximum only where
    some term is tiny (a mask of -inf, say)."""
    if not (axes and a.size and a.dtype.kind == "f"):
        return False
    low, high = _lse_range(a.dtype)
    if not a.max() < high - math.log(math.prod(a.shape[k] for k in axes)):
        return False
    return bool(a.min() > low or np.max(a, axis=axes).min() > low)


@functools.cache
def _lse_range(dtype: np.dtype) -> tuple[float, float]:
    """Where log-sum-exp's plain formula is exact: the row maxima above the first (the smallest normal number
    over the precision: -672 in float64, -71 in float32), every term below the second."""
    info = np.finfo(dtype)
    return float(np.log(info.smallest_normal / info.eps)), _exp_limit(dtype)


class _Reserved(Set[str]):
    """Names that cannot be tensors: the functions (built in and registered), the explicit sum and the delta."""

    _others = frozenset({"sum", "delta", "δ"})

    def __contains__(self, name: object) -> bool:
        return name in FUNCTIONS or name in self._others

    def __iter__(self) -> Iterator[str]:
        yield from FUNCTIONS
        yield from self._others

    def __len__(self) -> int:
        return len(FUNCTIONS) + len(self._others)

    @classmethod
    def _from_iterable(cls, names: Any) -> Any:  # RESERVED | {...} is a plain frozenset
        return frozenset(names)


#: Names that cannot be tensors (a live view: a function registered with ix.function joins it).
RESERVED: Set[str] = _Reserved()
