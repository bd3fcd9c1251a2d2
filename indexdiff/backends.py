"""Array libraries: numpy by default; torch, jax and cupy arrays keep their own library for element-wise work; dask
arrays run numpy's implementations block by block (daskarrays.py)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from .functions import FUNCTIONS, Callables

__all__ = ["Backend", "backend_of"]

_STANDARD = ("exp", "log", "sin", "cos", "tan", "tanh", "sqrt", "abs", "sign")


class Backend:
    """What compiled code needs from an array library: its element-wise functions, ones, zeros and sums."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.xp: Any = np if name == "numpy" else importlib.import_module(_MODULES[name])
        self.functions: dict[str, Callable[[Any], Any]] = Callables(name, {})
        if name == "numpy":
            self.functions.update({f: spec.numpy for f, spec in FUNCTIONS.items()})
        elif name == "dask":  # numpy's stable implementations on each block: the same values as numpy's
            from .daskarrays import blockwise

            self.functions.update({f: blockwise(spec.numpy) for f, spec in FUNCTIONS.items()})
        else:
            self.functions.update({f: getattr(self.xp, f) for f in _STANDARD})
            self.functions.update(_SPECIAL[name](self.xp))

    def operator(self, name: str, value: Any, axes: tuple[int, ...]) -> Any:
        """The operator ``name`` (operators.py) over ``axes`` of ``value``, by the array's own library: its
        softmax, log-sum-exp and linear algebra, stable as numpy's (shifted by the maximum). A singular matrix or
        a determinant that is not positive for logdet is a LinAlgProblem, as with numpy, wherever the values
        are concrete (inside ``jax.jit`` they are not checked: inv and logdet are inf or nan there)."""
        if self.name == "numpy":
            from .operators import apply

            return apply(name, value, axes)
        if self.name == "dask":
            from .daskarrays import operator

            found = operator(name, value, axes)
            if found is not None:
                return found
        if name in ("inv", "det", "logdet"):
            return self._matrix(name, value)
        xp, torch = self.xp, self.name == "torch"

        def reduce(f: str, a: Any, keep: bool = False) -> Any:
            if torch:
                return getattr(xp, {"max": "amax", "min": "amin"}.get(f, f))(a, dim=axes, keepdim=keep)
            return getattr(xp, f)(a, axis=axes, keepdims=keep)

        if name == "softmax" and torch and len(axes) == 1:
            return xp.softmax(value, dim=axes[0])
        if name in ("softmax", "logsumexp") and self.name == "jax":
            import jax

            return getattr(jax.nn, name)(value, axis=axes)
        if name == "logsumexp" and torch:
            return xp.logsumexp(value, dim=axes)
        if name in ("softmax", "logsumexp"):  # cupy, dask over chunked axes, torch's softmax over several axes
            m = reduce("max", value, keep=True)
            m = xp.where(xp.isfinite(m), m, xp.zeros_like(m))
            e = xp.exp(value - m)
            if name == "softmax":
                return e / reduce("sum", e, keep=True)
            return xp.log(reduce("sum", e)) + xp.squeeze(m, axis=axes)
        if name in ("mean", "max", "min"):
            return reduce(name, value)
        hit = value == reduce(name[2:], value, keep=True)  # ismax, ismin: ties share the derivative
        hit = hit.to(value.dtype) if torch else hit.astype(value.dtype)
        return hit / reduce("sum", hit, keep=True)

    def _matrix(self, name: str, m: Any) -> Any:
        from .operators import not_positive, singular

        linalg = self.xp.linalg
        if name == "det":
            return linalg.det(m)
        if name == "inv":
            try:
                out = linalg.inv(m)
            except getattr(linalg, "LinAlgError", ()):  # torch's (jax and cupy give inf or nan instead)
                raise singular() from None
            if _concrete(out) and not bool(self.xp.all(self.xp.isfinite(out))):
                raise singular()
            return out
        sign, value = linalg.slogdet(m)
        if not _concrete(sign):  # inside jax.jit: nan, as the log of a negative number
            return self.xp.where(sign > 0, value, self.xp.nan)
        if not bool(sign > 0):
            raise not_positive(float(sign))
        return value

    def scalar(self, value: float, like: Any) -> Any:
        """A 0-d array of ``like``'s library, dtype (and device)."""
        if self.name == "torch":
            return self.xp.tensor(value, dtype=like.dtype, device=like.device)
        return self.xp.asarray(value, dtype=like.dtype)

    def ones(self, n: int, like: Any) -> Any:
        if self.name == "torch":
            return self.xp.ones(n, dtype=like.dtype, device=like.device)
        return self.xp.ones(n, dtype=like.dtype)

    def sum(self, value: Any, axes: tuple[int, ...]) -> Any:
        if self.name == "torch":
            return value.sum(dim=axes) if axes else value
        return value.sum(axis=axes)

    def transpose(self, value: Any, order: tuple[int, ...]) -> Any:
        return value.permute(*order) if self.name == "torch" else value.transpose(order)

    def eye(self, n: int, like: Any) -> Any:
        if self.name == "torch":
            return self.xp.eye(n, dtype=like.dtype, device=like.device)
        return self.xp.eye(n, dtype=like.dtype)


_MODULES = {"torch": "torch", "jax": "jax.numpy", "cupy": "cupy", "dask": "dask.array"}


def _concrete(a: Any) -> bool:
    """Whether ``a`` holds values (not a tracer inside ``jax.jit``)."""
    return "Tracer" not in type(a).__name__


def _torch(xp: Any) -> dict[str, Callable[[Any], Any]]:
    return {
        "sigmoid": xp.sigmoid,
        "relu": xp.relu,
        "softplus": xp.nn.functional.softplus,
        "step": lambda a: (a > 0).to(a.dtype),
    }


def _jax(xp: Any) -> dict[str, Callable[[Any], Any]]:
    import jax

    return {
        "sigmoid": jax.nn.sigmoid,
        "relu": jax.nn.relu,
        "softplus": jax.nn.softplus,
        "step": lambda a: (a > 0).astype(a.dtype),
    }


def _cupy(xp: Any) -> dict[str, Callable[[Any], Any]]:
    return {
        "sigmoid": lambda a: xp.exp(-xp.logaddexp(0, -a)),
        "relu": lambda a: xp.maximum(a, 0),
        "softplus": lambda a: xp.logaddexp(0, a),
        "step": lambda a: (a > 0).astype(a.dtype),
    }


_SPECIAL = {"torch": _torch, "jax": _jax, "cupy": _cupy}


def backend_of(array: Any) -> str:
    """The library an array belongs to: numpy, torch, jax, cupy or dask (anything else is converted with numpy)."""
    root = type(array).__module__.split(".")[0]
    if root in ("jax", "jaxlib"):
        return "jax"
    return root if root in _MODULES else "numpy"
